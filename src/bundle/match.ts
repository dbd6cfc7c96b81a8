/**
 * The matching primitives of the policy language: host patterns, filesystem paths, argv
 * token patterns, tool-name globs and argument matchers (formats.md, seed 003). The tighten
 * check, the evaluator and the diff all use these, so "covers" means the same everywhere.
 */
import path from 'node:path'

import type {ArgMatcher} from './model.js'

// ---- hosts -------------------------------------------------------------------------

/**
 * True when host pattern `parent` allows everything `child` allows. `*.x.com` covers
 * `a.x.com`, `b.a.x.com` and `*.a.x.com`, never `x.com` itself nor `evilx.com`; an exact
 * name covers only itself.
 */
export function hostCovers(parent: string, child: string): boolean {
  if (parent === child) return true
  if (!parent.startsWith('*.')) return false
  const suffix = parent.slice(1) // ".x.com"
  const c = child.startsWith('*.') ? child.slice(1) : child
  return c.endsWith(suffix) && c.length > suffix.length
}

/** True when a host name matches a pattern (exact, or a strict subdomain of a `*.` suffix). */
export function hostMatches(pattern: string, host: string): boolean {
  return hostCovers(pattern, host.toLowerCase())
}

// ---- paths -------------------------------------------------------------------------

/** POSIX normalisation without a trailing slash ("/a/b/../c/" → "/a/c"); `..` never climbs above "/". */
export function normalizePath(p: string): string {
  const n = path.posix.normalize(p)
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n
}

/** True when `p` is `ancestor` or below it (segment-wise: /home covers /home/x, not /homex). */
export function pathCovers(ancestor: string, p: string): boolean {
  const a = normalizePath(ancestor)
  const q = normalizePath(p)
  return a === q || a === '/' || q.startsWith(a + '/')
}

// ---- argv token patterns (tools.rules) ----------------------------------------------

/** A tools rule matches an argv when its tokens are a prefix of it, "*" matching exactly one token. */
export function argvMatches(pattern: readonly string[], argv: readonly string[]): boolean {
  if (argv.length < pattern.length) return false
  for (let i = 0; i < pattern.length; i++) if (pattern[i] !== '*' && pattern[i] !== argv[i]) return false
  return true
}

/** True when every argv matched by `child` is matched by `parent` (pattern containment). */
export function argvCovers(parent: readonly string[], child: readonly string[]): boolean {
  if (parent.length > child.length) return false
  for (let i = 0; i < parent.length; i++) if (parent[i] !== '*' && parent[i] !== child[i]) return false
  return true
}

/**
 * Splits a command line into argv tokens: whitespace separates, single and double quotes
 * group, backslash escapes outside single quotes. No expansion of any kind.
 */
export function splitCommand(line: string): string[] {
  const out: string[] = []
  let cur = ''
  let has = false
  let quote: '"' | "'" | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (quote) {
      if (c === quote) quote = undefined
      else if (c === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i]
      else cur += c
      continue
    }
    if (c === '"' || c === "'") {
      quote = c
      has = true
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i]
      has = true
    } else if (/\s/.test(c)) {
      if (has) out.push(cur)
      cur = ''
      has = false
    } else {
      cur += c
      has = true
    }
  }
  if (quote) throw new Error(`unterminated ${quote === '"' ? 'double' : 'single'} quote`)
  if (has) out.push(cur)
  return out
}

/** Quotes argv tokens for display ("git commit -m 'a b'"). */
export function joinCommand(argv: readonly string[]): string {
  return argv.map((t) => (t === '' || /[\s'"\\]/.test(t) ? `'${t.replace(/'/g, "'\\''")}'` : t)).join(' ')
}

// ---- tool-name globs ----------------------------------------------------------------

/** Whole-string glob match, '*' the only wildcard, case-sensitive (seed 003). */
export function globMatches(pattern: string, s: string): boolean {
  let p = 0
  let i = 0
  let star = -1
  let mark = 0
  while (i < s.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === s[i]) {
      p++
      i++
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++
      mark = i
    } else if (star >= 0) {
      p = star + 1
      i = ++mark
    } else {
      return false
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++
  return p === pattern.length
}

/**
 * A glob whose language is inside both `a` and `b` (one branch of their intersection, kept as
 * general as the search finds: a wildcard stays a wildcard where both patterns have one), or
 * undefined when the languages are disjoint. Callers instantiate it by filling the '*'s.
 */
export function globIntersection(a: string, b: string): string | undefined {
  const dead = new Set<number>()
  const key = (i: number, j: number) => i * (b.length + 1) + j
  const go = (i: number, j: number): string | undefined => {
    if (i === a.length && j === b.length) return ''
    if (dead.has(key(i, j))) return undefined
    const ca = a[i]
    const cb = b[j]
    let r: string | undefined
    if (ca === '*' && cb === '*') {
      r = prefix('*', go(i + 1, j + 1)) ?? go(i + 1, j) ?? go(i, j + 1)
    } else if (ca === '*') {
      r = go(i + 1, j) ?? (cb !== undefined ? prefix(cb, go(i, j + 1)) : undefined)
    } else if (cb === '*') {
      r = go(i, j + 1) ?? (ca !== undefined ? prefix(ca, go(i + 1, j)) : undefined)
    } else if (ca !== undefined && ca === cb) {
      r = prefix(ca, go(i + 1, j + 1))
    }
    if (r === undefined) dead.add(key(i, j))
    return r
  }
  return go(0, 0)
}

function prefix(c: string, rest: string | undefined): string | undefined {
  return rest === undefined ? undefined : c + rest
}

// ---- argument matchers ----------------------------------------------------------------

/** True when the matcher's value is a path (starts with '/'): arguments are then compared as normalised paths. */
export function isPathMatcher(m: ArgMatcher): boolean {
  const v = 'equals' in m ? m.equals : m.startsWith
  return v.startsWith('/')
}

/**
 * Seed 003 semantics: a missing or non-string argument never matches. For path matchers
 * (a value starting with '/'), the argument must be an absolute path; it is normalised first
 * so that `..` cannot escape an allowed prefix (`/home/u/../../etc` is `/etc`), and
 * `startsWith` compares whole segments (`/home` does not cover `/homeevil`).
 */
export function argMatches(m: ArgMatcher, v: unknown): boolean {
  if (typeof v !== 'string') return false
  if (!isPathMatcher(m)) return 'equals' in m ? v === m.equals : v.startsWith(m.startsWith)
  if (!v.startsWith('/') || v.includes('\u0000')) return false
  const nv = normalizePath(v)
  if ('equals' in m) return nv === normalizePath(m.equals)
  const p = normalizePath(m.startsWith)
  if (p === '/') return true
  if (m.startsWith.endsWith('/')) return nv.startsWith(p + '/')
  return nv === p || nv.startsWith(p + '/')
}

/**
 * `WWW-Authenticate` parsing (RFC 9110 §11.6.1) and registry token scopes (distribution
 * token-auth spec "scope"). Robust to several challenges in one header, commas and escaped
 * quotes inside quoted values, token68 credentials, odd spacing and scheme case.
 */

export interface Challenge {
  /** Lower-case scheme: `basic`, `bearer`, … */
  scheme: string
  /** Parameters with lower-case names (`realm`, `service`, `scope`, `error`, …). */
  params: Record<string, string>
  /** A token68 value instead of parameters, if any. */
  token68?: string
}

const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/
const TOKEN68_CHAR = /[A-Za-z0-9._~+/-]/

/** Parses one or more `WWW-Authenticate` header values into challenges, in order. Unparseable tails are ignored. */
export function parseWwwAuthenticate(values: string | string[] | undefined): Challenge[] {
  if (values === undefined) return []
  const out: Challenge[] = []
  for (const v of Array.isArray(values) ? values : [values]) out.push(...parseOne(v))
  return out
}

function parseOne(s: string): Challenge[] {
  const out: Challenge[] = []
  let i = 0
  const n = s.length
  const skipWs = () => {
    while (i < n && (s[i] === ' ' || s[i] === '\t')) i++
  }
  const skipWsCommas = () => {
    while (i < n && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++
  }
  const readToken = (): string => {
    const start = i
    while (i < n && TCHAR.test(s[i]!)) i++
    return s.slice(start, i)
  }
  const readQuoted = (): string => {
    // s[i] === '"'
    i++
    let v = ''
    while (i < n && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < n) i++
      v += s[i]
      i++
    }
    if (i < n) i++ // closing quote
    return v
  }
  let current: Challenge | undefined
  while (i < n) {
    skipWsCommas()
    if (i >= n) break
    const save = i
    const name = readToken()
    if (name === '') {
      // Not a token: skip one character to guarantee progress (garbage is ignored).
      i = save + 1
      continue
    }
    skipWs()
    if (current && s[i] === '=') {
      // Either an auth-param (name=value) or a token68 ending in '='.
      let j = i + 1
      while (j < n && (s[j] === ' ' || s[j] === '\t')) j++
      if (j < n && (s[j] === '"' || TCHAR.test(s[j]!)) && s[j] !== '=') {
        i = j
        const value = s[i] === '"' ? readQuoted() : readToken()
        current.params[name.toLowerCase()] = value
        continue
      }
    }
    if (current && Object.keys(current.params).length === 0 && current.token68 === undefined && sawSpaceBefore(s, save)) {
      // `Scheme token68` (e.g. `Negotiate abc==`): only directly after the scheme.
      if (isToken68Start(s, save)) {
        i = save
        const start = i
        while (i < n && TOKEN68_CHAR.test(s[i]!)) i++
        while (i < n && s[i] === '=') i++
        const t = s.slice(start, i)
        skipWs()
        if (i >= n || s[i] === ',') {
          current.token68 = t
          continue
        }
        i = save + name.length
      }
    }
    // A new challenge starts with its scheme.
    current = {scheme: name.toLowerCase(), params: {}}
    out.push(current)
  }
  return out
}

function sawSpaceBefore(s: string, pos: number): boolean {
  return pos > 0 && (s[pos - 1] === ' ' || s[pos - 1] === '\t')
}

function isToken68Start(s: string, pos: number): boolean {
  // token68 directly after a scheme: the next non-token68 char is '=' padding, ',' or the end.
  let i = pos
  while (i < s.length && TOKEN68_CHAR.test(s[i]!)) i++
  while (i < s.length && s[i] === '=') i++
  while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++
  return i >= s.length || s[i] === ','
}

/** Resource → actions, e.g. `repository:policies/org` → {pull, push}. */
export type ScopeSet = Map<string, Set<string>>

/** Parses space-separated scopes (`repository:a/b:pull,push registry:catalog:*`). Malformed entries are ignored. */
export function parseScopes(scopes: string | string[] | undefined): ScopeSet {
  const set: ScopeSet = new Map()
  if (scopes === undefined) return set
  for (const item of (Array.isArray(scopes) ? scopes : [scopes]).flatMap((s) => s.split(/\s+/))) {
    if (!item) continue
    const last = item.lastIndexOf(':')
    if (last <= 0) continue
    const resource = item.slice(0, last)
    if (!resource.includes(':')) continue
    const actions = item.slice(last + 1).split(',').filter(Boolean)
    const have = set.get(resource) ?? new Set<string>()
    for (const a of actions) have.add(a)
    set.set(resource, have)
  }
  return set
}

/** Union of scope sets. */
export function mergeScopes(...sets: ScopeSet[]): ScopeSet {
  const out: ScopeSet = new Map()
  for (const set of sets) {
    for (const [r, actions] of set) {
      const have = out.get(r) ?? new Set<string>()
      for (const a of actions) have.add(a)
      out.set(r, have)
    }
  }
  return out
}

/** True when `have` grants every action of `want` (`*` grants all actions of a resource). */
export function coversScopes(have: ScopeSet, want: ScopeSet): boolean {
  for (const [r, actions] of want) {
    const h = have.get(r)
    if (!h) return false
    if (h.has('*')) continue
    for (const a of actions) if (!h.has(a)) return false
  }
  return true
}

/** Scope strings, sorted (resources, then actions within each), for cache keys and token requests. */
export function formatScopes(set: ScopeSet): string[] {
  return [...set.keys()].sort().map((r) => `${r}:${[...set.get(r)!].sort().join(',')}`)
}

/** `repository:<name>:<actions>` */
export function repositoryScope(repository: string, ...actions: string[]): string {
  return `repository:${repository}:${actions.join(',')}`
}

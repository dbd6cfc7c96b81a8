/**
 * `tools.rules` of the AI-Box v1 layout: argv token-prefix rules, "*" matching exactly one
 * token, first match wins, and no match means denied (fail closed). Two rule lists are
 * compared exactly, not by syntax: every equivalence class of command lines is visited (a
 * walk over the rules' token tries, with one "fresh" token standing for anything no rule
 * names) and the decisions of both lists are compared on it. That is what catches the
 * loosening the tighten-only table describes as "an earlier, more general allow that shadows
 * a parent deny", without flagging harmless reorderings.
 */
import {InputError} from '../errors.js'
import type {Origin} from './layers.js'
import {argvMatches, joinCommand} from './match.js'
import {type Risk, RISKS} from './model.js'

/** A tools rule after inheritance: `allow` and `risk` are always set. */
export interface LayerToolRule {
  match: string[]
  allow: boolean
  risk: Risk
  from: Origin
}

export interface ToolDecision {
  allow: boolean
  risk: Risk
  /** The rule that decided, or undefined when none matched (denied by default). */
  rule?: LayerToolRule
}

/** Stands for "a token no rule names" in explored command lines. */
export const ANY_TOKEN = '\u0000any'

/** Most command-line classes explored before a rule set is declared too complex to verify. */
export const MAX_ARGV_CLASSES = 200_000

export function decideTools(rules: readonly LayerToolRule[], argv: readonly string[]): ToolDecision {
  for (const r of rules) if (argvMatches(r.match, argv)) return {allow: r.allow, risk: r.risk, rule: r}
  return {allow: false, risk: 'blocked-by-default'}
}

/** 0 (allowed, safe) … 2 (allowed, blocked by default) … 3 (denied). */
export function toolStrictness(d: {allow: boolean; risk: Risk}): number {
  return d.allow ? RISKS.indexOf(d.risk) : RISKS.length
}

/** Visits one argv from every class of command lines the given rules can tell apart. */
export function exploreArgv(lists: ReadonlyArray<readonly LayerToolRule[]>, visit: (argv: string[]) => void): void {
  const patterns: string[][] = []
  const seen = new Set<string>()
  for (const l of lists) {
    for (const r of l) {
      const k = JSON.stringify(r.match)
      if (!seen.has(k)) {
        seen.add(k)
        patterns.push(r.match)
      }
    }
  }
  const maxLen = patterns.reduce((m, p) => Math.max(m, p.length), 0)
  let states = 0
  const dfs = (prefix: string[], alive: number[]): void => {
    if (++states > MAX_ARGV_CLASSES) {
      throw new InputError('TOOLS_TOO_COMPLEX', `tools.rules are too complex to verify (more than ${MAX_ARGV_CLASSES} command classes)`, {
        suggestions: ['use fewer wildcard tokens or fewer rules'],
      })
    }
    if (prefix.length > 0) visit(prefix)
    const d = prefix.length
    if (d >= maxLen) return
    const incomplete = alive.filter((i) => patterns[i].length > d)
    if (incomplete.length === 0) return
    const literals = new Set<string>()
    let wildcard = false
    for (const i of incomplete) {
      const t = patterns[i][d]
      if (t === '*') wildcard = true
      else literals.add(t)
    }
    const next = [...[...literals].sort()]
    // A token no rule names behaves like any other unnamed token; it matters only under a "*".
    if (wildcard || d === 0) next.push(ANY_TOKEN)
    for (const t of next) {
      dfs(
        [...prefix, t],
        alive.filter((i) => patterns[i].length <= d || patterns[i][d] === '*' || patterns[i][d] === t),
      )
    }
  }
  dfs(
    [],
    patterns.map((_, i) => i),
  )
}

export interface ToolLoosening {
  /** An example command line (ANY_TOKEN shown as "…"). */
  argv: string[]
  parent: ToolDecision
  child: ToolDecision
}

/**
 * Every way `child` decides a command line less strictly than `parent`: one example per pair
 * of deciding rules.
 */
export function compareToolLists(parent: readonly LayerToolRule[], child: readonly LayerToolRule[]): ToolLoosening[] {
  const out = new Map<string, ToolLoosening>()
  exploreArgv([parent, child], (argv) => {
    const p = decideTools(parent, argv)
    const c = decideTools(child, argv)
    if (toolStrictness(c) >= toolStrictness(p)) return
    const key = `${c.rule ? JSON.stringify(c.rule.match) : '-'}|${p.rule ? JSON.stringify(p.rule.match) : '-'}`
    if (!out.has(key)) out.set(key, {argv: [...argv], parent: p, child: c})
  })
  return [...out.values()]
}

/** "git push" for display; the fresh token prints as "…". */
export function showArgv(argv: readonly string[]): string {
  return joinCommand(argv.map((t) => (t === ANY_TOKEN ? '…' : t)))
}

export function showMatch(match: readonly string[]): string {
  return joinCommand(match)
}

/**
 * Tool-call rules (HELM style, seed 003): a call is a tool name plus arguments; the first
 * rule whose glob matches the whole name and whose argument matchers all match decides.
 *
 * Across tiers (formats.md: "rules in tier order: org first"), each tier decides with its own
 * first match, and a deny from any tier wins; a tier with no matching rule abstains; when
 * every tier abstains the strictest `defaultVerdict` applies (deny when none is set: fail
 * closed). A child tier can therefore only add denials, and an allow of its own matters only
 * where every parent tier abstains under a default of allow.
 *
 * Comparing rule sets uses witness calls: for a rule and each rule it overlaps, the most
 * generic call both match (wildcards filled with a character no pattern uses, prefixes
 * extended by one fresh segment). Decisions of both sides are compared on those calls.
 */
import type {Origin} from './layers.js'
import {argMatches, globIntersection, globMatches, isPathMatcher, normalizePath} from './match.js'
import type {ArgMatcher, CallRule, Tier, Verdict} from './model.js'

export interface CallTier {
  origin: Origin
  rules: readonly CallRule[]
  defaultVerdict?: Verdict
}

export interface Call {
  tool: string
  args: Record<string, unknown>
}

export interface CallDecision {
  verdict: Verdict
  /** The deciding rule, or undefined for the default verdict. */
  rule?: CallRule
  /** Where the deciding rule (or default) comes from. */
  origin?: Origin
  reason: string
}

export function ruleMatches(rule: CallRule, call: Call): boolean {
  if (!globMatches(rule.match.toolName, call.tool)) return false
  const args = rule.match.args
  if (!args) return true
  for (const name of Object.keys(args)) {
    const v = Object.prototype.hasOwnProperty.call(call.args, name) ? call.args[name] : undefined
    if (!argMatches(args[name], v)) return false
  }
  return true
}

export function firstMatch(rules: readonly CallRule[], call: Call): CallRule | undefined {
  for (const r of rules) if (ruleMatches(r, call)) return r
  return undefined
}

export function ruleReason(rule: CallRule): string {
  return rule.reason ?? (rule.verdict === 'deny' ? 'denied-by-rule' : 'allowed-by-rule')
}

/** The default of a stack: deny if any tier says deny or none says anything (fail closed). */
export function stackDefault(tiers: readonly CallTier[]): {verdict: Verdict; origin?: Origin} {
  let allowFrom: Origin | undefined
  for (const t of tiers) {
    if (t.defaultVerdict === 'deny') return {verdict: 'deny', origin: t.origin}
    if (t.defaultVerdict === 'allow' && !allowFrom) allowFrom = t.origin
  }
  return allowFrom ? {verdict: 'allow', origin: allowFrom} : {verdict: 'deny'}
}

/** The decision of a stack of tiers for a call (per-tier first match, deny overrides, then the default). */
export function decideCall(tiers: readonly CallTier[], call: Call): CallDecision {
  let allow: CallDecision | undefined
  for (const t of tiers) {
    const r = firstMatch(t.rules, call)
    if (!r) continue
    if (r.verdict === 'deny') return {verdict: 'deny', rule: r, origin: t.origin, reason: ruleReason(r)}
    allow ??= {verdict: 'allow', rule: r, origin: t.origin, reason: ruleReason(r)}
  }
  if (allow) return allow
  const d = stackDefault(tiers)
  return {verdict: d.verdict, origin: d.origin, reason: d.verdict === 'deny' ? 'default-deny' : 'default-allow'}
}

/** A character that no tool-name pattern or matcher value uses, to fill wildcard positions. */
export function freshChar(rules: Iterable<CallRule>): string {
  const used = new Set<string>()
  for (const r of rules) {
    for (const ch of r.match.toolName) used.add(ch)
    for (const m of Object.values(r.match.args ?? {})) for (const ch of 'equals' in m ? m.equals : m.startsWith) used.add(ch)
  }
  // Not NUL: a path argument containing NUL never matches a path matcher.
  for (const c of ['\uE000', '\uE001', '\uE002', '§', '¤', '\u0001']) if (!used.has(c)) return c
  for (let cp = 0xe100; ; cp++) if (!used.has(String.fromCharCode(cp))) return String.fromCharCode(cp)
}

function argWitness(ms: ArgMatcher[], fresh: string): string | undefined {
  const candidates: string[] = []
  for (const m of ms) {
    if ('equals' in m) candidates.push(isPathMatcher(m) ? normalizePath(m.equals) : m.equals)
  }
  if (candidates.length === 0) {
    for (const m of ms) {
      if (!('startsWith' in m)) continue
      if (isPathMatcher(m)) {
        const p = normalizePath(m.startsWith)
        candidates.push(p === '/' ? `/${fresh}` : `${p}/${fresh}`)
      } else {
        candidates.push(m.startsWith + fresh)
      }
    }
    candidates.sort((a, b) => b.length - a.length)
  }
  return candidates.find((v) => ms.every((m) => argMatches(m, v)))
}

/** The most generic call matched by every given rule (undefined when they cannot all match). */
export function genericCall(rules: readonly CallRule[], fresh: string): Call | undefined {
  let pattern: string | undefined = '*'
  for (const r of rules) {
    pattern = globIntersection(pattern, r.match.toolName)
    if (pattern === undefined) return undefined
  }
  const tool = pattern.replaceAll('*', fresh)
  const names = new Set<string>()
  for (const r of rules) for (const n of Object.keys(r.match.args ?? {})) names.add(n)
  const args: Record<string, unknown> = Object.create(null) as Record<string, unknown>
  for (const n of names) {
    const ms = rules.map((r) => r.match.args?.[n]).filter((m): m is ArgMatcher => m !== undefined)
    const v = argWitness(ms, fresh)
    if (v === undefined) return undefined
    args[n] = v
  }
  const call = {tool, args}
  return rules.every((r) => ruleMatches(r, call)) ? call : undefined
}

/** Witness calls inside `target` (or anywhere, when undefined), one per rule it overlaps. */
export function witnessCalls(target: CallRule | undefined, others: readonly CallRule[], fresh: string): Call[] {
  const base = target ? [target] : []
  const out: Call[] = []
  const seen = new Set<string>()
  const push = (c: Call | undefined) => {
    if (!c) return
    const k = JSON.stringify([c.tool, Object.entries(c.args)])
    if (!seen.has(k)) {
      seen.add(k)
      out.push(c)
    }
  }
  push(genericCall(base, fresh))
  for (const o of others) push(genericCall([...base, o], fresh))
  return out
}

/** "read_file(path="/etc/…")" for messages; the fresh character prints as "…". */
export function showCall(call: Call, fresh: string): string {
  const f = (s: string) => s.split(fresh).join('…')
  const args = Object.keys(call.args)
    .sort()
    .map((k) => `${k}=${JSON.stringify(typeof call.args[k] === 'string' ? f(call.args[k] as string) : call.args[k])}`)
  return `${f(call.tool)}(${args.join(', ')})`
}

export function tierOf(o: Origin | undefined): Tier | undefined {
  return o?.tier
}

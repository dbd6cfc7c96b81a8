/**
 * The tighten-only check of a stack (org → team → project; formats.md): every tier is
 * compared with the merge of the tiers above it, field by field, and every loosening is
 * reported, not just the first. Tool-call rules are checked against the parent stack's
 * decisions: an allow the parent stack would deny, or a default of allow under a parent
 * deny, is refused.
 */
import {InputError, type Problem, ValidationError, VerificationError} from '../errors.js'
import {type CallTier, decideCall, firstMatch, freshChar, showCall, stackDefault, witnessCalls} from './calls.js'
import {compareLayers, type Layer, mergeLayers, type Origin, resolveLayer, type Violation, violationMessage} from './layers.js'
import {KIND_LABEL, type LoadedBundle, type Tier, TIERS} from './model.js'

export interface CheckResult {
  ok: boolean
  violations: Violation[]
}

/** The analysis of a stack: violations plus the merged layer and call tiers (for the effective policy). */
export interface StackAnalysis extends CheckResult {
  stack: LoadedBundle[]
  layer: Layer
  callTiers: CallTier[]
}

/**
 * Gives each file its tier: its own `metadata.tier`, else the position (the first file is the
 * org baseline, each next one the tier below the previous). Tiers must go from org to project.
 */
export function assignTiers(bundles: readonly LoadedBundle[]): LoadedBundle[] {
  let prev: Tier | undefined
  let prevProfile = false
  return bundles.map((b, i) => {
    const tier = b.tier ?? (prev === undefined ? 'org' : TIERS[TIERS.indexOf(prev) + 1])
    if (!tier) {
      throw new InputError('TOO_MANY_TIERS', `${b.file}: a stack has at most three tiers (org, team, project)`, {suggestions: ['pass the org baseline, then the team policy, then the project policy']})
    }
    // A profile overlay (profiles.ts) is a layer of the org tier right after the org bundle.
    const overlay = b.profile !== undefined && tier === 'org' && i === 1 && prev === 'org' && !prevProfile
    prevProfile = b.profile !== undefined
    if (b.profile !== undefined && !overlay) throw new InputError('PROFILE_POSITION', `${b.file}: a profile overlay must directly follow the org bundle it belongs to`)
    if (prev !== undefined && !overlay && TIERS.indexOf(tier) <= TIERS.indexOf(prev)) {
      throw new InputError('TIER_ORDER', `${b.file} is a ${tier} tier but comes after a ${prev} tier; give the files from org to project`, {
        suggestions: ['order the files org, team, project (for check: --base ORG --base TEAM CHILD)'],
      })
    }
    prev = tier
    return b.tier === tier ? b : {...b, tier}
  })
}

/** Analyses a stack given from the most general tier to the most specific. */
export function analyzeStack(bundles: readonly LoadedBundle[]): StackAnalysis {
  if (bundles.length === 0) throw new InputError('EMPTY_STACK', 'no policy files given')
  for (const b of bundles) {
    if (b.kind === 'helm-bundle') {
      throw new InputError('UNSUPPORTED_KIND', `${b.file} is a ${KIND_LABEL[b.kind]}: its rules are CEL expressions, which aibox carries but does not evaluate`, {
        suggestions: ['use an aibox bundle, an AI-Box v1 policy file or a HELM policy file in a stack'],
      })
    }
  }
  const stack = assignTiers(bundles)
  const problems: Problem[] = []
  const violations: Violation[] = []
  let layer: Layer | undefined
  const callTiers: CallTier[] = []
  for (const b of stack) {
    const origin: Origin = {tier: b.tier, file: b.file}
    const resolved = resolveLayer(layer, b.policy, origin, problems)
    if (layer) violations.push(...compareLayers(layer, resolved, origin))
    const tier: CallTier = {origin, rules: b.rules, defaultVerdict: b.defaultVerdict}
    if (callTiers.length > 0) violations.push(...checkCallTier(callTiers, tier))
    layer = mergeLayers(layer, resolved)
    callTiers.push(tier)
  }
  if (problems.length > 0) {
    throw new ValidationError('INCOMPLETE_POLICY', `the stack cannot be resolved: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, problems, {
      suggestions: ['give every new network.allow entry its hosts and ports, or reuse the id of a parent entry to inherit them'],
    })
  }
  return {ok: violations.length === 0, violations, stack, layer: layer!, callTiers}
}

/** Checks that every tier only tightens the tiers above it; returns ALL violations. */
export function checkStack(bundles: readonly LoadedBundle[]): CheckResult {
  const a = analyzeStack(bundles)
  return {ok: a.ok, violations: a.violations}
}

/** Throws the stack's violations as one VerificationError (exit 2). */
export function loosenedError(violations: readonly Violation[]): VerificationError {
  const n = violations.length
  return new VerificationError('POLICY_LOOSENED', `${n} loosening${n === 1 ? '' : 's'} refused (a tier may only tighten the tiers above it):\n${violations.map((v) => `  ${v.message}`).join('\n')}`, {
    details: {violations},
    suggestions: ['tighten instead (README "Tighten-only rules" lists what each field allows)', 'ask the owners of the parent tier to make the change there'],
  })
}

/**
 * Tool-call rules of a child tier against its parent stack: an allow rule may not allow a
 * call the parent stack denies (for a call that reaches it in the child's own order), and the
 * child's default may not be allow under a parent default of deny.
 */
export function checkCallTier(parents: readonly CallTier[], child: CallTier): Violation[] {
  const out: Violation[] = []
  const parentRules = parents.flatMap((t) => t.rules)
  const fresh = freshChar([...parentRules, ...child.rules])
  const seen = new Set<string>()
  for (const c of child.rules) {
    if (c.verdict !== 'allow') continue
    for (const w of witnessCalls(c, parentRules, fresh)) {
      if (firstMatch(child.rules, w) !== c) continue
      const d = decideCall(parents, w)
      if (d.verdict !== 'deny') continue
      const key = `${c.id}\u0000${d.rule?.id ?? ''}`
      if (seen.has(key)) continue
      seen.add(key)
      const call = showCall(w, fresh)
      out.push(
        withMessage({
          tier: child.origin.tier,
          file: child.origin.file,
          field: `rules[${c.id}]`,
          against: d.rule ? `rules[${d.rule.id}]` : 'defaultVerdict',
          ...(d.origin?.tier ? {againstTier: d.origin.tier} : {}),
          ...(d.origin ? {againstFile: d.origin.file} : {}),
          rule: c.id,
          value: call,
          parentValue: d.rule ? {id: d.rule.id, verdict: 'deny'} : 'deny',
          code: 'CALL_ALLOWED',
          detail: d.rule ? `allow rule "${c.id}" allows ${call}, which parent rule "${d.rule.id}" denies` : `allow rule "${c.id}" allows ${call}, which the parent stack denies by default`,
          inverse: `denies ${call} (was allowed by rule "${c.id}")`,
        }),
      )
    }
  }
  const pd = stackDefault(parents)
  if (child.defaultVerdict === 'allow' && pd.verdict === 'deny') {
    const from = pd.origin ?? parents[0]?.origin
    out.push(
      withMessage({
        tier: child.origin.tier,
        file: child.origin.file,
        field: 'defaultVerdict',
        against: 'defaultVerdict',
        ...(from?.tier ? {againstTier: from.tier} : {}),
        ...(from ? {againstFile: from.file} : {}),
        rule: null,
        value: 'allow',
        parentValue: 'deny',
        code: 'DEFAULT_ALLOW',
        detail: 'sets defaultVerdict to allow under a parent default of deny',
        inverse: 'sets defaultVerdict to deny (was allow)',
      }),
    )
  }
  return out
}

/**
 * Every call that `children` allows and `parents` denies (both complete stacks, e.g. two
 * effective policies or two versions of a bundle), one example per pair of deciding rules.
 */
export function compareCallStacks(parents: readonly CallTier[], children: readonly CallTier[], who: Origin): Violation[] {
  const all = [...parents.flatMap((t) => t.rules), ...children.flatMap((t) => t.rules)]
  const fresh = freshChar(all)
  const out: Violation[] = []
  const seen = new Set<string>()
  const targets = [...children.flatMap((t) => t.rules).filter((r) => r.verdict === 'allow'), undefined]
  for (const target of targets) {
    for (const w of witnessCalls(target, all, fresh)) {
      const dc = decideCall(children, w)
      if (dc.verdict !== 'allow') continue
      const dp = decideCall(parents, w)
      if (dp.verdict !== 'deny') continue
      const key = `${dc.rule?.id ?? ''}\u0000${dp.rule?.id ?? ''}`
      if (seen.has(key)) continue
      seen.add(key)
      const call = showCall(w, fresh)
      const by = (r: typeof dc.rule) => (r ? `rule "${r.id}"` : 'default')
      out.push(
        withMessage({
          tier: who.tier,
          file: who.file,
          field: dc.rule ? `rules[${dc.rule.id}]` : 'defaultVerdict',
          against: dp.rule ? `rules[${dp.rule.id}]` : 'defaultVerdict',
          ...(dp.origin?.tier ? {againstTier: dp.origin.tier} : {}),
          ...(dp.origin ? {againstFile: dp.origin.file} : {}),
          rule: dc.rule?.id ?? null,
          value: call,
          parentValue: 'deny',
          code: dc.rule ? 'CALL_ALLOWED' : 'DEFAULT_ALLOW',
          detail: `allows ${call} (by ${by(dc.rule)}; was denied by ${by(dp.rule)})`,
          inverse: `denies ${call} (by ${by(dp.rule)}; was allowed by ${by(dc.rule)})`,
        }),
      )
    }
  }
  return out
}

function withMessage(v: Omit<Violation, 'message'>): Violation {
  return {...v, message: violationMessage(v)}
}

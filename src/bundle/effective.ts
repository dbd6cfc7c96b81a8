/**
 * The effective policy of a stack: the merge of its tiers under the tighten-only rules
 * (formats.md: deny lists unioned, limits minimised, rules in tier order, org first). Its
 * RFC 8785 canonical JSON is what `aibox start` hands to the sandbox, and its digest is what
 * the audit log and the policy lock (`AIBOX_POLICY_LOCK=1`) record, so this shape is a stable
 * public contract:
 *
 *   {apiVersion: "aibox.dev/v1", kind: "EffectivePolicy",
 *    stack: [{tier, name?, version?, digest}],          // org first
 *    policy: {…AI-Box v1 layout, every list explicit…},
 *    rules: [{…rule, tier}],                            // org first; per tier first match, deny overrides
 *    defaultVerdict: "allow" | "deny"}
 */
import {InputError} from '../errors.js'
import {type CallTier, stackDefault} from './calls.js'
import {canonicalJson, sha256Digest} from './canonical.js'
import {isObject} from './json.js'
import {compareLayers, layerToPolicy, type Origin, resolveLayer, type Violation} from './layers.js'
import type {CallRule, LoadedBundle, SandboxPolicy, Tier, Verdict} from './model.js'
import {SCHEMA_IDS, validateValue} from './schema.js'
import {analyzeStack, compareCallStacks, loosenedError} from './tighten.js'

export interface EffectivePolicyDocument {
  apiVersion: 'aibox.dev/v1'
  kind: 'EffectivePolicy'
  stack: Array<{tier?: Tier; name?: string; version?: string; profile?: string; digest: string}>
  policy: SandboxPolicy
  /** `profile`: a rule of the selected profile overlay, a call tier of its own after the org's rules. */
  rules: Array<CallRule & {tier?: Tier; profile?: string}>
  defaultVerdict: Verdict
}

export interface ResolvedEffective {
  document: EffectivePolicyDocument
  /** RFC 8785 canonical JSON of `document`: the bytes handed to the sandbox. */
  canonical: string
  /** `sha256:<hex>` of `canonical`. */
  digest: string
}

/**
 * The effective policy of a stack (org first). Throws VerificationError (POLICY_LOOSENED, exit
 * 2) when a tier loosens the tiers above it: a loosening stack has no effective policy.
 */
export function effectivePolicy(stack: readonly LoadedBundle[]): EffectivePolicyDocument {
  const a = analyzeStack(stack)
  if (!a.ok) throw loosenedError(a.violations)
  const doc: EffectivePolicyDocument = {
    apiVersion: 'aibox.dev/v1',
    kind: 'EffectivePolicy',
    stack: a.stack.map((b) => {
      const e: EffectivePolicyDocument['stack'][number] = {digest: b.digest}
      if (b.tier) e.tier = b.tier
      if (b.name) e.name = b.name
      if (b.version) e.version = b.version
      if (b.profile !== undefined) e.profile = b.profile
      return e
    }),
    policy: layerToPolicy(a.layer),
    rules: a.stack.flatMap((b) => b.rules.map((r) => ({...r, ...(b.tier ? {tier: b.tier} : {}), ...(b.profile !== undefined ? {profile: b.profile} : {})}))),
    defaultVerdict: stackDefault(a.callTiers).verdict,
  }
  return doc
}

/** `sha256:<hex>` of the canonical JSON of an effective policy. */
export function effectiveDigest(doc: EffectivePolicyDocument): string {
  return sha256Digest(canonicalJson(doc))
}

/** The effective policy with its canonical bytes and digest. */
export function resolveEffective(stack: readonly LoadedBundle[]): ResolvedEffective {
  const document = effectivePolicy(stack)
  const canonical = canonicalJson(document)
  return {document, canonical, digest: sha256Digest(canonical)}
}

/** The call tiers of an effective policy (its rules grouped by tier, in order). */
export function effectiveCallTiers(doc: EffectivePolicyDocument, file = 'effective policy'): CallTier[] {
  const tiers: CallTier[] = []
  const keys: string[] = []
  for (const r of doc.rules) {
    const {tier, profile, ...rule} = r
    // A profile's rules decide as a tier of their own (first match there, a deny from any tier wins).
    const key = `${tier ?? ''}\u0000${profile ?? ''}`
    let t = tiers[keys.indexOf(key)]
    if (!t) {
      t = {origin: {tier, file}, rules: []}
      tiers.push(t)
      keys.push(key)
    }
    ;(t.rules as CallRule[]).push(rule as CallRule)
  }
  if (tiers.length === 0) tiers.push({origin: {file}, rules: []})
  tiers[0].defaultVerdict = doc.defaultVerdict
  return tiers
}

export interface EffectiveComparison {
  /** True when `next` allows anything `previous` does not. */
  weaker: boolean
  /** What `next` allows beyond `previous`. */
  looser: Violation[]
  /** What `next` no longer allows (the same comparison the other way round). */
  tighter: Violation[]
}

/** Checks that a value is an effective policy document (e.g. read back from a cache). */
export function assertEffectivePolicy(v: unknown, file = 'effective policy'): asserts v is EffectivePolicyDocument {
  const problems = isObject(v) && v.kind === 'EffectivePolicy' && v.apiVersion === 'aibox.dev/v1' && isObject(v.policy) ? validateValue(v.policy, SCHEMA_IDS.aiboxPolicy, file) : [{file, message: 'not an aibox EffectivePolicy document'}]
  if (problems.length > 0) {
    throw new InputError('NOT_EFFECTIVE_POLICY', `${file} is not a valid effective policy: ${problems.map((p) => `${p.pointer ?? ''} ${p.message}`.trim()).join('; ')}`)
  }
}

/**
 * Compares two effective policies, e.g. the last one loaded and a new one: the policy lock
 * (`AIBOX_POLICY_LOCK=1`) refuses `next` when it is weaker. "Weaker" is exactly what the
 * tighten-only check refuses, applied to complete policies (a limit that disappears is a
 * loosening).
 */
export function compareEffective(previous: EffectivePolicyDocument, next: EffectivePolicyDocument): EffectiveComparison {
  assertEffectivePolicy(previous, 'previous effective policy')
  assertEffectivePolicy(next, 'next effective policy')
  const po: Origin = {file: 'previous'}
  const no: Origin = {file: 'next'}
  const pl = resolveLayer(undefined, previous.policy, po)
  const nl = resolveLayer(undefined, next.policy, no)
  const pt = effectiveCallTiers(previous, 'previous')
  const nt = effectiveCallTiers(next, 'next')
  const looser = [...compareLayers(pl, nl, no), ...compareCallStacks(pt, nt, no)]
  const tighter = [...compareLayers(nl, pl, po), ...compareCallStacks(nt, pt, po)]
  return {weaker: looser.length > 0, looser, tighter}
}

/** True when `next` allows anything `previous` does not (see compareEffective). */
export function isWeakerPolicy(previous: EffectivePolicyDocument, next: EffectivePolicyDocument): boolean {
  return compareEffective(previous, next).weaker
}

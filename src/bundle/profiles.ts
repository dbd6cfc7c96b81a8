/**
 * Policy profiles (README "Profiles", seed 000): named overlays on the org policy that the org
 * admin lists, weakest first, in the signed org bundle. A profile may only tighten the org policy
 * (the tighten-only check of tighten.ts), and each profile's effective policy (org ⊕ profile)
 * must be at least as strict as the one listed before it, so the order is proven, not declared.
 *
 * With a profile selected, the stack is org ⊕ profile ⊕ team ⊕ project: the overlay is a layer
 * of its own between the org bundle and the team tier, so team and project are checked against
 * org + profile, and the profile's rules decide as a call tier of their own.
 */
import {InputError, type Problem, ValidationError} from '../errors.js'
import {canonicalJson, sha256Digest} from './canonical.js'
import {compareEffective, effectivePolicy, type EffectivePolicyDocument} from './effective.js'
import {isObject, type JsonObject, own} from './json.js'
import {tierLabel, type Violation} from './layers.js'
import type {LoadedBundle, ProfileDef} from './model.js'
import {analyzeStack} from './tighten.js'

/** The profile names of an org bundle, weakest first (empty when it defines none). */
export function profileNames(org: LoadedBundle): string[] {
  return (org.profiles ?? []).map((p) => p.name)
}

/** The overlay of profile `def` of `org`, as a pseudo-bundle that follows the org bundle in a stack. */
export function profileOverlay(org: LoadedBundle, def: ProfileDef): LoadedBundle {
  const i = (org.profiles ?? []).indexOf(def)
  const raw = Array.isArray(own(org.document, 'profiles')) ? (own(org.document, 'profiles') as unknown[])[i] : undefined
  const document = (isObject(raw) ? raw : {name: def.name}) as JsonObject
  return {
    file: `${org.file}#profiles/${def.name}`,
    format: org.format,
    kind: 'aibox-bundle',
    tier: 'org',
    ...(org.name !== undefined ? {name: org.name} : {}),
    ...(org.version !== undefined ? {version: org.version} : {}),
    document,
    digest: sha256Digest(canonicalJson(document)),
    ...(def.policy ? {policy: def.policy} : {}),
    rules: def.rules,
    profile: def.name,
    source: org.source,
  }
}

export interface ProfileSelection {
  /** The org bundle, then the selected profile's overlay (when there is one). */
  stack: LoadedBundle[]
  /** The selected profile, or undefined when the org bundle defines none. */
  profile?: string
  /** Its position in the catalog (0 = weakest). */
  rank?: number
  /** The catalog, weakest first. */
  profiles: string[]
  defaultProfile?: string
}

/**
 * Selects a profile of `org`: `requested` (aibox.yaml `profile:` or AIBOX_PROFILE), else the
 * org's defaultProfile. An unknown name is refused (exit 1, PROFILE_UNKNOWN) listing the allowed
 * ones; without profiles in the org bundle the stack is the org bundle alone (and a requested
 * profile is unknown).
 */
export function selectProfile(org: LoadedBundle, requested: string | undefined, requestedBy = 'aibox.yaml profile'): ProfileSelection {
  const names = profileNames(org)
  const base = {profiles: names, ...(org.defaultProfile !== undefined ? {defaultProfile: org.defaultProfile} : {})}
  const name = requested ?? org.defaultProfile
  if (name === undefined) return {...base, stack: [org]}
  const rank = names.indexOf(name)
  if (rank < 0) {
    throw new InputError(
      'PROFILE_UNKNOWN',
      names.length === 0
        ? `${requestedBy} ${JSON.stringify(name)}: the org policy ${org.name ?? org.file}${org.version ? ` ${org.version}` : ''} defines no profiles`
        : `${requestedBy} ${JSON.stringify(name)} is not a profile of the org policy ${org.name ?? org.file}${org.version ? ` ${org.version}` : ''} (allowed, weakest first: ${names.join(', ')})`,
      {
        suggestions: names.length === 0 ? ['remove profile: from aibox.yaml (and unset AIBOX_PROFILE)'] : [`select one of: ${names.join(', ')} (aibox profile list shows them)`],
        details: {profile: name, allowed: names},
      },
    )
  }
  return {...base, stack: [org, profileOverlay(org, org.profiles![rank]!)], profile: name, rank}
}

/** `profile 'dev-fast' loosens org baseline rule 'network.allow[x].hosts': adds "…"`. */
function looseningMessage(name: string, v: Violation): string {
  return `profile '${name}' loosens ${tierLabel(v.againstTier ?? 'org')} rule '${v.against}': ${v.detail}`
}

/**
 * The profile problems of an org bundle, located at the profile (file:line): every overlay must
 * only tighten the org policy, and every profile's effective policy must be at least as strict as
 * the previous one's. Empty when the bundle defines no profiles.
 */
export function profileProblems(org: LoadedBundle): Problem[] {
  const profiles = org.profiles ?? []
  const problems: Problem[] = []
  const at = (ptr: string, message: string): Problem => ({file: org.file, ...(org.source.locate(ptr, true) ?? {}), pointer: ptr, message})
  const effective: Array<EffectivePolicyDocument | undefined> = []
  profiles.forEach((def, i) => {
    let eff: EffectivePolicyDocument | undefined
    try {
      const a = analyzeStack([org, profileOverlay(org, def)])
      for (const v of a.violations) {
        const ptr = v.field.startsWith('rules[') || v.field === 'defaultVerdict' ? `/profiles/${i}/rules` : `/profiles/${i}/policy`
        problems.push(at(org.source.locate(ptr) ? ptr : `/profiles/${i}/name`, looseningMessage(def.name, v)))
      }
      if (a.ok) eff = effectivePolicy(a.stack)
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err
      for (const p of err.problems) problems.push(at(`/profiles/${i}/policy`, `profile '${def.name}': ${p.message}`))
    }
    effective.push(eff)
    const prev = i > 0 ? effective[i - 1] : undefined
    if (eff && prev) {
      const cmp = compareEffective(prev, eff)
      if (cmp.weaker) {
        const what = cmp.looser.map((v) => `'${v.field}' ${v.detail}`).join('; ')
        problems.push(at(`/profiles/${i}/name`, `profile '${def.name}' is weaker than '${profiles[i - 1]!.name}' listed before it: ${what} (list profiles weakest first)`))
      }
    }
  })
  return problems
}

/**
 * The profile gate of `aibox start` (README "Profiles", seed 000): a comparison of the profile
 * about to be loaded with the one this configured stack loaded last, on the cache state alone (no
 * parsing: it runs on the warm path too).
 *
 * - the same profile, or none: nothing to decide;
 * - a profile at least as strict (same or later position in the org's list, weakest first):
 *   loaded, `policy.profile.changed`; a profile taint lifts when the profile is at least as
 *   strict as the one before the weaker change (`policy.override.reverted`);
 * - a weaker profile: refused outright with AIBOX_POLICY_LOCK=1 (PROFILE_LOCKED), else loaded only
 *   when `aibox profile set` recorded an approved change from the last profile to this one
 *   (PROFILE_CHANGE_UNAPPROVED otherwise); then runs are tainted `policy_override` (override
 *   `profile`) until reverted.
 */
import {GovernanceError} from '../errors.js'
import type {ProfileChange, ProfileState, Taint} from '../cache/state.js'

export interface ProfileLoad {
  /** The profile about to be loaded (undefined: the org defines none). */
  profile?: string
  /** The org's catalog, weakest first. */
  profiles: string[]
}

export type ProfileDecision =
  | {kind: 'same'}
  | {kind: 'refuse'; error: GovernanceError; from: string}
  | {kind: 'change'; from?: string; to: string; rank: number; weaker: boolean; change?: ProfileChange; taint?: Taint; reverted?: Taint}

/** The rank of `name` in `profiles`, else the rank remembered with it (a profile the org removed since). */
function rankOf(profiles: string[], name: string, remembered?: number): number {
  const i = profiles.indexOf(name)
  return i >= 0 ? i : (remembered ?? -1)
}

/** The approved-change flow, for suggestions. */
export function changeFlow(from: string, to: string): string[] {
  return [
    `an org admin approves the change: aibox profile approve --key ADMIN.key --from ${from} --to ${to} --ticket CHG-… --reason "…" -o approval.json`,
    `then: aibox profile set ${to} --ticket CHG-… --reason "…" --approval approval.json (runs are tainted policy_override until a profile as strict as ${from} is loaded again)`,
    `or stay on ${from} (or a stricter profile)`,
  ]
}

/** Decides (see the module comment); `effective` is the effective policy about to be loaded, `actor` who starts. */
export function decideProfile(state: ProfileState | undefined, load: ProfileLoad, opts: {lockOn: boolean; effective: string; actor: string; now: Date}): ProfileDecision {
  const to = load.profile
  if (to === undefined) return {kind: 'same'}
  const last = state?.profile
  const rank = load.profiles.indexOf(to)
  if (!last) {
    // The first load of this stack: nothing to compare with; a change recorded before it is consumed.
    const first = state?.change?.to === to ? state.change : undefined
    return {kind: 'change', to, rank, weaker: false, ...(first ? {change: first} : {})}
  }
  if (last.name === to) return {kind: 'same'}
  const lastRank = rankOf(load.profiles, last.name, last.rank)
  const weaker = rank < lastRank
  const change = state?.change && state.change.to === to && (state.change.from === null || state.change.from === last.name) ? state.change : undefined
  const taint = state?.taint
  // The profile taint in force, also when another override's taint is on top of it.
  const profileTaint = taint?.override === 'profile' ? taint : taint?.previous?.override === 'profile' ? taint.previous : undefined
  if (!weaker) {
    let reverted: Taint | undefined
    if (profileTaint?.baselineProfile !== undefined && rank >= rankOf(load.profiles, profileTaint.baselineProfile)) reverted = profileTaint
    return {kind: 'change', from: last.name, to, rank, weaker: false, ...(change ? {change} : {}), ...(reverted ? {reverted} : {})}
  }
  const order = load.profiles.join(' < ')
  if (opts.lockOn) {
    return {
      kind: 'refuse',
      from: last.name,
      error: new GovernanceError('PROFILE_LOCKED', `AIBOX_POLICY_LOCK=1: profile '${to}' is weaker than '${last.name}', the profile this stack loaded last (${order}); the policy lock refuses a weaker profile outright`, {
        suggestions: [`load '${last.name}' or a stricter profile (unset AIBOX_PROFILE, or set profile: ${last.name} in aibox.yaml)`, 'a weaker profile needs a session without the policy lock and an admin-approved change (aibox profile approve / set)'],
        details: {from: last.name, to, profiles: load.profiles},
      }),
    }
  }
  if (!change || !change.weaker) {
    return {
      kind: 'refuse',
      from: last.name,
      error: new GovernanceError('PROFILE_CHANGE_UNAPPROVED', `profile '${to}' is weaker than '${last.name}', the profile this stack loaded last (${order}): a weaker profile needs an admin-approved change, and none from '${last.name}' to '${to}' is recorded`, {
        suggestions: changeFlow(last.name, to),
        details: {from: last.name, to, profiles: load.profiles},
      }),
    }
  }
  // Already tainted by an earlier weaker change: the baseline stays the strongest profile before it.
  const baselineProfile = profileTaint?.baselineProfile ?? last.name
  const newTaint: Taint = {
    taint: 'policy_override',
    override: 'profile',
    reason: `${change.ticket}: ${change.reason}`,
    actor: change.actor,
    since: opts.now.toISOString(),
    effective: opts.effective,
    baselineProfile,
  }
  return {kind: 'change', from: last.name, to, rank, weaker: true, change, taint: newTaint}
}

/** Applies a `change` decision to the stack's state (the caller commits it under the cache lock). */
export function applyProfile(state: ProfileState, d: Extract<ProfileDecision, {kind: 'change'}>, now: Date): void {
  state.profile = {name: d.to, rank: d.rank, loadedAt: now.toISOString()}
  if (d.change) delete state.change
  if (d.taint) {
    // Another override's taint (verification, lock) stays on top; the profile taint waits under it.
    if (!state.taint || state.taint.override === 'profile') state.taint = d.taint
    else state.taint.previous = d.taint
  }
  if (d.reverted) {
    if (state.taint === d.reverted) delete state.taint
    else if (state.taint?.previous === d.reverted) delete state.taint.previous
  }
}

/**
 * `aibox approve` with separation of duties checked before anything is attached (README
 * "Governance"): the approver's key must not have signed the digest (its author), must not have
 * approved it already (one key fills one role per digest), and, with a trust policy, must be a
 * valid key of that policy holding the claimed role. Verification applies the same rules (an
 * approval that slips through counts for nothing); refusing here saves a useless attestation and
 * tells the approver at once.
 */
import type {AuditOptions} from '../audit/append.js'
import {type ApproveReferenceResult, approveReference} from '../distribute/push.js'
import {listPolicyReferrers, verifyReferrers} from '../distribute/referrers.js'
import type {OpenOptions} from '../distribute/targets.js'
import {GovernanceError} from '../errors.js'
import {ANNOTATION} from '../oci/media.js'
import type {PrivateKeyInfo} from '../sign/keys.js'
import {type TrustTarget, roleRefusal, scopeApplies, targetFromReference} from '../trust/evaluate.js'
import type {Tier, TrustKey, TrustPolicy} from '../trust/policy.js'

export interface GovernedApproveOptions extends OpenOptions {
  reference: string
  key: PrivateKeyInfo
  role: string
  note: string
  ticket?: string
  incident?: string
  /** Checks the key and role against this trust policy. */
  trust?: TrustPolicy
  audit?: AuditOptions
  now?: Date
  signal?: AbortSignal
}

export interface GovernedApproveResult extends ApproveReferenceResult {
  /** The trust policy's name of the approving key, when a trust policy was given. */
  keyName?: string
  /** Notes for the approver (e.g. no scope requires this role). */
  notes: string[]
}

/** The trust policy's entry for a public key id, if any. */
export function trustKeyFor(policy: TrustPolicy, keyId: string): TrustKey | undefined {
  return policy.keys.find((k) => k.keyId === keyId)
}

/** Refuses (GovernanceError, exit 5) a key that may not approve in `role` under `policy` at `now`. */
export function assertMayApprove(policy: TrustPolicy, keyId: string, role: string, now: Date = new Date()): TrustKey {
  const key = trustKeyFor(policy, keyId)
  if (!key) {
    throw new GovernanceError('KEY_NOT_TRUSTED', `the approving key ${keyId} is not in the trust policy '${policy.file}': its approval would count for nothing`, {
      suggestions: ['approve with a key listed in the trust policy, or ask its owners to add yours'],
    })
  }
  const refusal = roleRefusal(policy, key, role, now)
  if (refusal?.code === 'KEY_NOT_VALID') throw new GovernanceError('KEY_NOT_VALID', `${refusal.message}: its approval would count for nothing`)
  if (refusal) {
    throw new GovernanceError('ROLE_NOT_HELD', refusal.message, {
      suggestions: [`approve in one of its roles (--role ${key.roles[0]}), or with a key that holds '${role}'`],
    })
  }
  return key
}

/** `display` pinned to `digest`, without repeating a digest the reference already names. */
function pinned(display: string, digest: string): string {
  return display.endsWith(`@${digest}`) ? display : `${display}@${digest}`
}

/** Approves REF (see the module comment); nothing is written when a check refuses. */
export async function governedApprove(options: GovernedApproveOptions): Promise<GovernedApproveResult> {
  const now = options.now ?? new Date()
  const keyId = options.key.public.keyId
  const notes: string[] = []
  let keyName: string | undefined
  if (options.trust) keyName = assertMayApprove(options.trust, keyId, options.role, now).name
  const who = keyName ? `key '${keyName}' (${keyId})` : `key ${keyId}`
  const r = await approveReference({
    ...options,
    now,
    beforeAttach: async ({target, subject, annotations, display}) => {
      // Only the approver's own public key matters: did it sign (or already approve) this exact digest?
      const records = await listPolicyReferrers(target, subject, {signal: options.signal})
      const own = verifyReferrers(records, subject, [{...options.key.public, ...(keyName ? {name: keyName} : {})}])
      if (own.signatures.length > 0) {
        throw new GovernanceError('SELF_APPROVAL', `${who} signed ${pinned(display, subject.digest)}: the author of a digest cannot approve it (separation of duties)`, {
          suggestions: ['ask someone who did not sign this version to approve it'],
        })
      }
      const earlier = own.approvals[0]
      if (earlier) {
        throw new GovernanceError(
          'ALREADY_APPROVED',
          `${who} already approved ${pinned(display, subject.digest)} as '${earlier.role}' (${earlier.approvedAt}): one key fills one role per digest`,
          {suggestions: ['a second approval by the same key never counts; ask another approver'], details: {referrer: earlier.referrer}},
        )
      }
      if (options.trust) {
        const tier = annotations[ANNOTATION.tier] as Tier | undefined
        let target: TrustTarget
        try {
          target = {...targetFromReference(options.reference, tier)}
        } catch {
          target = {display, ...(tier ? {tier} : {})}
        }
        const scopes = options.trust.scopes.filter((s) => scopeApplies(s, target))
        const wanted = scopes.some((s) => s.require.approvals?.[options.role] !== undefined)
        if (!wanted) notes.push(`no scope of '${options.trust.file}' that applies here requires '${options.role}' approvals: this approval is recorded but does not change the verdict`)
      }
    },
  })
  return {...r, ...(keyName ? {keyName} : {}), notes}
}

/**
 * Who signed and who approved each published version, with its quorum status (`aibox discover`,
 * README "Governance"). The verdict comes from the same `verifyPolicyArtifact` that pull and start
 * use, so the report never says "met" for something they would refuse; the signer and approval
 * lists come from the referrers verified with the trust policy's (or the given) keys.
 */
import {sortTags} from '../distribute/inspect.js'
import {isDraftTag} from '../distribute/pack.js'
import {verifyAttachments} from '../distribute/referrers.js'
import {type ApprovalSummary, readPolicyManifest, summarizeApprovals, verifyPolicyArtifact} from '../distribute/verify.js'
import {AiboxError, InputError, errorMessage} from '../errors.js'
import {ANNOTATION} from '../oci/media.js'
import type {Descriptor, ReadOnlyTarget, TagLister} from '../oci/target.js'
import type {VerificationKey} from '../sign/types.js'
import {type ScopeResult, type TrustDecision, resolveSigner} from '../trust/evaluate.js'
import type {TrustPolicy} from '../trust/policy.js'

export interface SignerReport {
  /** The trust policy's key or identity name (or key file's name), else the key id. */
  key: string
  keyId: string
  /** Keyless signatures: the identity the verified Fulcio certificate binds (issuer, subject). */
  identity?: {issuer: string; subject: string}
  /** The key's (or identity's) roles in the trust policy (empty with plain keys). */
  roles: string[]
  /** The roles this signature was counted for, per the trust decision. */
  countedAs: string[]
  referrer: string
  format: 'sigstore-bundle' | 'cosign-legacy'
  created?: string
}

export type QuorumStatus = 'met' | 'met-emergency' | 'approvals-missing' | 'unmet' | 'invalid' | 'unchecked'

export interface VersionGovernance {
  digest: string
  /** Tags naming this digest (empty when asked by digest). */
  tags: string[]
  version: string | null
  tier: string | null
  /** True when every tag naming it is a `draft-` tag. */
  draft: boolean
  emergency?: {incident: string; pendingApproval?: boolean}
  signers: SignerReport[]
  approvals: ApprovalSummary[]
  quorum: {
    /**
     * `met`: pull/start accept it; `met-emergency`: accepted through an emergency path, approval
     * pending; `approvals-missing`: signatures fine, approvals short (exit 5 at pull/start); `unmet`:
     * signatures short; `invalid`: refused for another reason; `unchecked`: plain keys, no trust policy.
     */
    status: QuorumStatus
    scopes: ScopeResult[]
    missing: string[]
    code?: string
    message?: string
  }
}

export interface GovernanceReportOptions {
  trust?: TrustPolicy
  keys?: VerificationKey[]
  /** The reference the policy is published under, for trust scopes (default: the target's). */
  reference?: string
  signal?: AbortSignal
}

function decisionOf(err: unknown): TrustDecision | undefined {
  const d = (err as AiboxError).details?.decision
  return d && typeof d === 'object' && 'scopes' in d ? (d as TrustDecision) : undefined
}

/** The governance report of one manifest (tag, digest or descriptor) in `target`. */
export async function governanceOf(target: ReadOnlyTarget, ref: string | Descriptor, options: GovernanceReportOptions, tags: string[] = []): Promise<VersionGovernance> {
  const keys = options.trust?.keys ?? options.keys
  // A trust policy may name only keyless identities (with its Sigstore trust material), and no key.
  const keyless = options.trust?.keyless
  if (!keys || (keys.length === 0 && !keyless)) throw new InputError('KEYS_OR_TRUST', 'a governance report needs --trust TRUST.yaml (or --key PUB) to verify who signed and approved')
  const desc = typeof ref === 'string' ? await target.resolve(ref, {signal: options.signal}) : ref
  const subject = {mediaType: desc.mediaType, digest: desc.digest, size: desc.size}
  const report: VersionGovernance = {digest: desc.digest, tags, version: null, tier: null, draft: tags.length > 0 && tags.every(isDraftTag), signers: [], approvals: [], quorum: {status: 'unchecked', scopes: [], missing: []}}
  let annotations: Record<string, string>
  try {
    annotations = (await readPolicyManifest(target, subject, options.signal)).manifest.annotations ?? {}
  } catch (err) {
    if (!(err instanceof AiboxError) || err.exit !== 2) throw err
    report.quorum = {status: 'invalid', scopes: [], missing: [], code: err.code, message: err.message}
    return report
  }
  report.version = annotations[ANNOTATION.version] ?? null
  report.tier = annotations[ANNOTATION.tier] ?? null
  if (annotations[ANNOTATION.emergency] !== undefined) report.emergency = {incident: annotations[ANNOTATION.emergency]!}

  const v = await verifyAttachments(target, subject, keys, {signal: options.signal, ...(keyless ? {keyless} : {})})
  let decision: TrustDecision | undefined
  if (options.trust) {
    try {
      const verified = await verifyPolicyArtifact(target, subject, {trust: options.trust, reference: options.reference, signal: options.signal})
      decision = verified.trust
      report.quorum.status = verified.emergency?.pendingApproval ? 'met-emergency' : 'met'
    } catch (err) {
      if (!(err instanceof AiboxError) || (err.exit !== 2 && err.exit !== 5)) throw err
      decision = decisionOf(err)
      report.quorum.status = err.code === 'APPROVALS_NOT_SATISFIED' ? 'approvals-missing' : decision ? 'unmet' : 'invalid'
      report.quorum.code = err.code
      report.quorum.message = errorMessage(err)
    }
    if (decision) {
      report.quorum.scopes = decision.scopes
      report.quorum.missing = decision.missing
      if (report.emergency && decision.emergency) report.emergency.pendingApproval = decision.emergency.pendingApproval
    }
  }
  const counted = (name: string) =>
    (decision?.scopes ?? []).flatMap((s) => [...s.requirements, ...(s.via === 'emergency' ? (s.emergency?.requirements ?? []) : [])]).filter((r) => r.kind === 'signatures' && r.keys.includes(name)).map((r) => r.role)
  report.signers = v.signatures.map((s) => {
    // The policy principal it counts as: the key, or for a keyless signature the identity its certificate matches.
    const tk = options.trust ? resolveSigner(options.trust, s.signer).principal : undefined
    const key = tk?.name ?? s.signer.name ?? s.signer.identity?.subject ?? s.signer.keyId
    return {
      key,
      keyId: s.signer.keyId,
      ...(s.signer.identity ? {identity: s.signer.identity} : {}),
      roles: tk?.roles ?? [],
      countedAs: [...new Set(counted(key))],
      referrer: s.referrer,
      format: s.format,
      ...(s.created ? {created: s.created} : {}),
    }
  })
  report.approvals = summarizeApprovals(v.approvals, decision)
  return report
}

/** The report of every tagged version of a repository or layout, grouped by digest, in `aibox tags` order. */
export async function governanceByVersion(target: ReadOnlyTarget & TagLister, options: GovernanceReportOptions): Promise<VersionGovernance[]> {
  const tags = sortTags(await target.tags({signal: options.signal}))
  const byDigest = new Map<string, {desc: Descriptor; tags: string[]}>()
  for (const tag of tags) {
    const desc = await target.resolve(tag, {signal: options.signal})
    const entry = byDigest.get(desc.digest) ?? {desc, tags: []}
    entry.tags.push(tag)
    byDigest.set(desc.digest, entry)
  }
  const out: VersionGovernance[] = []
  for (const {desc, tags: t} of byDigest.values()) out.push(await governanceOf(target, desc, options, t))
  return out
}

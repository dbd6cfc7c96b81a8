/**
 * The one verification of a published policy (formats.md "Policy artifact", "Signatures and
 * approvals"), shared by pull, start, import and governance. It reads only the given target and
 * accepts nothing it has not checked:
 *
 * 1. the manifest is read and verified against its digest, and is a policy artifact;
 * 2. signature referrers over that exact manifest digest are verified offline with the given
 *    keys (or the trust policy's keys) BEFORE the policy content is parsed;
 * 3. the canonical layer is read (digest and size checked against the signed manifest), must be
 *    RFC 8785 canonical JSON of a valid aibox bundle, and its digest must equal the
 *    `dev.aibox.policy.digest` annotation; title/version/tier annotations must agree with it; an
 *    optional source layer must have the same content;
 * 4. with a trust policy, the decision uses the registry/repository of the reference and the tier
 *    taken from the SIGNED content (never from the unsigned annotations of a referrer, nor from the
 *    policy manifest's annotations alone); approvals count by role with separation of duties, and
 *    a manifest carrying the signed `dev.aibox.policy.emergency` annotation may be accepted through
 *    a scope's emergency path (src/trust/evaluate.ts, README "Governance");
 * 5. a `draft-` tag is refused unless `allowDraft` (drafts are never a release).
 *
 * Every failure is a VerificationError (exit 2), or a GovernanceError (exit 5) for missing approvals
 * and drafts: `aibox start` never falls back on either.
 */
import {canonicalBytes} from '../bundle/canonical.js'
import {loadBundleText} from '../bundle/load.js'
import type {LoadedBundle, Tier} from '../bundle/model.js'
import {MAX_DOCUMENT_BYTES} from '../bundle/parse.js'
import {AiboxError, EXIT, GovernanceError, InputError, VerificationError, errorMessage} from '../errors.js'
import {fetchAll, sha256Digest, verifyBytes} from '../oci/content.js'
import {type ImageManifest, parseManifest} from '../oci/manifest.js'
import {ANNOTATION, MT} from '../oci/media.js'
import {parseReference} from '../oci/reference.js'
import {RemoteRepository} from '../oci/stores/remote.js'
import type {Descriptor, ReadOnlyTarget} from '../oci/target.js'
import type {SignerInfo, VerificationKey} from '../sign/types.js'
import {type TrustDecision, type TrustEvidence, type TrustTarget, assertTrusted, evaluateTrust, statementKind} from '../trust/evaluate.js'
import type {TrustPolicy} from '../trust/policy.js'
import {POLICY_NAME_RE, incidentProblem, isDraftTag} from './pack.js'
import {
  APPROVAL_PREDICATE_TYPE,
  type ReferrerVerification,
  type RejectedReferrer,
  type VerifiedApproval,
  type VerifiedAttestation,
  type VerifiedPolicySignature,
  listPolicyReferrers,
  verifyReferrers,
} from './referrers.js'

export interface VerifyPolicyOptions {
  /** Trusted public keys: at least one signature by one of them must verify. Exactly one of keys/trust. */
  keys?: VerificationKey[]
  /** A trust policy: its scopes for this reference and tier must be satisfied. */
  trust?: TrustPolicy
  /**
   * The reference the policy is published under, for trust-policy scopes (`registry/repo[:tag]`).
   * Default: the registry and repository of a RemoteRepository target; for a layout, none (then
   * only scopes without registry/repository conditions can apply).
   */
  reference?: string
  /** Also read cosign's legacy `.sig` signatures (default true). */
  legacy?: boolean
  /**
   * Accept a `draft-` tag (a draft push, README "Governance"). Default false: pull and start never
   * take a draft for a release; `aibox verify` sets it so reviewers can check a draft before approving.
   */
  allowDraft?: boolean
  now?: Date
  signal?: AbortSignal
}

export interface VerifiedPolicy {
  /** Where it was read, e.g. `127.0.0.1:5000/policies/org` or `oci:/tmp/layout`. */
  location: string
  manifest: Descriptor
  manifestBytes: Buffer
  annotations: Record<string, string>
  /** The bundle parsed from the verified canonical layer. */
  bundle: LoadedBundle
  /** The canonical JSON bytes (= layers[0]). */
  canonical: Buffer
  contentDigest: string
  /** The YAML source layer, when the artifact has one (same content, checked). */
  source?: Buffer
  name: string
  version: string
  tier: Tier
  /** The signed metadata.tenant (absent when the policy names no tenant); README "Tenants". */
  tenant?: string
  /** Signatures that verified with a trusted key (for a trust policy: with one of its keys). */
  signatures: VerifiedPolicySignature[]
  approvals: VerifiedApproval[]
  attestations: VerifiedAttestation[]
  /** Signature-shaped referrers that did not verify, with the reason. */
  rejected: RejectedReferrer[]
  /** Referrers that are not signatures (other artifact types, dangling entries). */
  skipped: RejectedReferrer[]
  /** The trust decision when a trust policy was used (with every approval and whether it counted). */
  trust?: TrustDecision & {policy: string}
  /**
   * An emergency change (the signed `dev.aibox.policy.emergency` annotation): its incident, and with a
   * trust policy whether it was accepted through an emergency path and still lacks its retroactive approval.
   */
  emergency?: {incident: string; pendingApproval?: boolean; scopes?: string[]}
  /**
   * Who approved, in short: per approval its key, role and whether it counted (from the trust
   * decision, or as verified with keys). Always set by verifyPolicyArtifact; optional so that
   * records built elsewhere (e.g. from a cache) stay valid.
   */
  approvalSummary?: ApprovalSummary[]
}

/** One approval of the verified digest, for results and logs. */
export interface ApprovalSummary {
  key: string
  keyId: string
  role: string
  note: string
  ticket?: string
  incident?: string
  approvedAt: string
  referrer: string
  /** With a trust policy: whether it may count (valid key holding the role, not the digest's signer); null with plain keys. */
  eligible: boolean | null
  reason?: string
}

/** A failure while reading that means "do not trust this" becomes a VerificationError (exit 2). */
function asVerification(err: unknown, what: string): unknown {
  if (err instanceof VerificationError) return err
  if (err instanceof AiboxError && err.exit === EXIT.VERIFY) {
    return new VerificationError(err.code, `${what}: ${err.message}`, {
      cause: err,
      suggestions: err.suggestions ?? ['the content does not match what was published: do not use it; fetch it again from a trusted copy'],
      details: err.details,
    })
  }
  return err
}

async function guarded<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw asVerification(err, what)
  }
}

function refuse(code: string, message: string, suggestions?: string[], details?: Record<string, unknown>): VerificationError {
  return new VerificationError(code, message, {...(suggestions ? {suggestions} : {}), ...(details ? {details} : {})})
}

/** The trust-policy target of a reference string or a target (registry/repository, or a display name). */
export function trustTargetFor(target: ReadOnlyTarget, reference: string | undefined, tier: Tier): TrustTarget {
  if (reference !== undefined) {
    const r = parseReference(reference)
    if (r.kind === 'registry') return {registry: r.registry, repository: r.repository, tier}
    return {display: reference, tier}
  }
  if (target instanceof RemoteRepository) return {registry: target.registry, repository: target.repository, tier}
  return {display: target.location, tier}
}

/** Reads and checks the manifest of a policy artifact (step 1). */
export async function readPolicyManifest(target: ReadOnlyTarget, desc: Descriptor, signal?: AbortSignal): Promise<{bytes: Buffer; manifest: ImageManifest}> {
  return guarded(`policy manifest ${desc.digest} in ${target.location}`, async () => {
    if (desc.mediaType !== MT.ociManifest) {
      throw refuse('NOT_A_POLICY', `${target.location}@${desc.digest} is a ${desc.mediaType}, not an OCI image manifest of a policy`, [
        'point at a reference pushed with aibox push',
      ])
    }
    const bytes = await fetchAll({fetch: (d) => target.fetch(d, {signal})}, desc)
    verifyBytes(desc, bytes, target.location)
    const parsed = parseManifest(bytes, desc, target.location)
    if (parsed.kind !== 'manifest') throw refuse('NOT_A_POLICY', `${target.location}@${desc.digest} is an index, not a policy artifact`)
    const m = parsed.manifest
    const layer = m.layers[0]
    if (m.artifactType !== MT.policyBundle || layer?.mediaType !== MT.policyBundle) {
      throw refuse(
        'NOT_A_POLICY',
        `${target.location}@${desc.digest} is not an aibox policy artifact (artifactType ${m.artifactType ?? m.config.mediaType}, first layer ${layer?.mediaType ?? 'none'})`,
        ['point at a reference pushed with aibox push'],
      )
    }
    const extra = m.layers.slice(1).filter((l) => l.mediaType !== MT.policySource)
    if (m.layers.length > 2 || extra.length > 0) {
      throw refuse('NOT_A_POLICY', `${target.location}@${desc.digest} has unexpected layers (${m.layers.map((l) => l.mediaType).join(', ')}): a policy artifact holds the canonical JSON and optionally its YAML source`)
    }
    return {bytes, manifest: m}
  })
}

/** Resolves `ref` (tag or digest) or takes `desc` as it is. */
export async function resolvePolicy(target: ReadOnlyTarget, ref: string | Descriptor, signal?: AbortSignal): Promise<Descriptor> {
  if (typeof ref !== 'string') return ref
  return target.resolve(ref, {signal})
}

function noSignatures(location: string, digest: string, v: ReferrerVerification, keyCount: number, identityCount = 0): VerificationError {
  const tried = [...v.rejected, ...v.skipped]
  if (v.rejected.length === 0) {
    return refuse(
      'NO_SIGNATURES',
      `${location}@${digest} has no signature: no Sigstore bundle referrer (or legacy .sig) names this manifest${v.skipped.length ? ` (${v.skipped.length} other referrer(s) skipped)` : ''}`,
      ['sign it with aibox sign REF --key KEY (or push it with aibox push, which signs)', 'when copying, keep the referrers (aibox copy copies them unless --no-referrers)'],
      {rejected: tried},
    )
  }
  const lines = v.rejected.map((r) => `  ${r.reason}`)
  return refuse(
    'SIGNATURE_INVALID',
    `${location}@${digest}: no signature verifies with the ${keyCount === 1 ? 'trusted key' : `${keyCount} trusted keys`}${identityCount > 0 ? ` or as a keyless signature (${identityCount} trusted identit${identityCount === 1 ? 'y' : 'ies'})` : ''}:\n${lines.join('\n')}`,
    ['check that you pass the public key of the signer (aibox discover REF lists who signed)', 'a signature over another digest means the manifest was changed after signing'],
    {rejected: tried},
  )
}

/**
 * Verifies the policy at `ref` (tag, digest or descriptor) in `target`: see the module comment.
 * Resolves to everything a consumer needs; throws VerificationError (exit 2) on any failure to
 * verify, NotFound/transient OciErrors only for reading failures.
 */
export async function verifyPolicyArtifact(target: ReadOnlyTarget, ref: string | Descriptor, options: VerifyPolicyOptions): Promise<VerifiedPolicy> {
  if ((options.keys === undefined) === (options.trust === undefined)) {
    throw new InputError('KEYS_OR_TRUST', 'verifying a policy needs either trusted keys or a trust policy (exactly one)', {suggestions: ['pass --key PUB or --trust TRUST.yaml']})
  }
  const keys = options.trust ? options.trust.keys : options.keys!
  const keyless = options.trust?.keyless
  if (keys.length === 0 && !keyless) throw refuse('NO_KEYS', 'no trusted key was given', ['pass --key PUB or a trust policy with keys'])
  const {signal} = options
  if (typeof ref === 'string' && isDraftTag(ref) && !options.allowDraft) {
    throw new GovernanceError('DRAFT_NOT_RELEASE', `${target.location}:${ref} is a draft (pushed with --draft): drafts are never used as a release`, {
      suggestions: ['review it with aibox verify or aibox discover, then publish it without --draft (the same bundle gets the same digest, so approvals carry over)'],
    })
  }
  const desc = await resolvePolicy(target, ref, signal)
  const {bytes: manifestBytes, manifest} = await readPolicyManifest(target, desc, signal)
  const subject: Descriptor = {mediaType: desc.mediaType, digest: desc.digest, size: desc.size}

  // 2. Signatures over this exact manifest digest, before anything of the content is parsed.
  const records = await guarded(`referrers of ${desc.digest}`, () => listPolicyReferrers(target, subject, {legacy: options.legacy, signal}))
  const v = verifyReferrers(records, subject, keys, keyless ? {keyless} : {})
  if (v.signatures.length === 0) throw noSignatures(target.location, desc.digest, v, keys.length, options.trust?.identities?.length ?? 0)

  // 3. The content, bound to the signed manifest by its descriptor.
  const layer = manifest.layers[0]!
  if (layer.size > MAX_DOCUMENT_BYTES) throw refuse('POLICY_TOO_LARGE', `the policy layer of ${desc.digest} declares ${layer.size} bytes, over the ${MAX_DOCUMENT_BYTES}-byte limit`)
  const canonical = await guarded(`policy layer ${layer.digest} of ${target.location}@${desc.digest}`, () =>
    fetchAll({fetch: (d) => target.fetch(d, {signal})}, layer, MAX_DOCUMENT_BYTES).then((b) => {
      verifyBytes(layer, b, target.location)
      return b
    }),
  )
  const annotations = manifest.annotations ?? {}
  const label = `${target.location}@${desc.digest}`
  let bundle: LoadedBundle
  try {
    bundle = loadBundleText(canonical, `${label} (policy layer)`, {format: 'json', accept: ['aibox-bundle']})
  } catch (err) {
    throw refuse('POLICY_CONTENT_INVALID', `the signed policy layer of ${label} is not a valid aibox bundle: ${errorMessage(err)}`, [
      'the publisher signed an invalid bundle; ask for a corrected version',
    ])
  }
  let recanonical: Buffer
  try {
    recanonical = canonicalBytes(bundle.document)
  } catch (err) {
    throw refuse('NOT_CANONICAL', `the policy layer of ${label} cannot be canonicalised: ${errorMessage(err)}`)
  }
  if (!recanonical.equals(canonical)) {
    throw refuse('NOT_CANONICAL', `the policy layer of ${label} is not RFC 8785 canonical JSON (re-canonicalising it changes ${canonical.length} bytes into ${recanonical.length})`, [
      'artifacts written by aibox push hold canonical JSON; this one was packed by something else or altered',
    ])
  }
  const contentDigest = sha256Digest(canonical)
  const claimed = annotations[ANNOTATION.policyDigest]
  if (claimed === undefined) throw refuse('ANNOTATION_MISSING', `${label} has no ${ANNOTATION.policyDigest} annotation`)
  if (claimed !== contentDigest) {
    throw refuse('CONTENT_DIGEST_MISMATCH', `${label}: annotation ${ANNOTATION.policyDigest} says ${claimed}, but the policy content digest is ${contentDigest}`)
  }
  const name = bundle.name
  const version = bundle.version
  const tier = bundle.tier
  if (name === undefined || version === undefined || tier === undefined || !POLICY_NAME_RE.test(name)) {
    throw refuse('POLICY_CONTENT_INVALID', `the signed policy of ${label} lacks a valid metadata.name, version or tier`)
  }
  const mismatches: string[] = []
  const check = (key: string, expected: string) => {
    const got = annotations[key]
    if (got !== undefined && got !== expected) mismatches.push(`${key} is ${JSON.stringify(got)} but the signed content says ${JSON.stringify(expected)}`)
  }
  check(ANNOTATION.title, name)
  check(ANNOTATION.version, version)
  check(ANNOTATION.tier, tier)
  // The tenant annotation is informational, but one that disagrees with the signed content is a forgery.
  const tenantAnnotation = annotations[ANNOTATION.tenant]
  if (tenantAnnotation !== undefined && tenantAnnotation !== bundle.tenant) {
    mismatches.push(`${ANNOTATION.tenant} is ${JSON.stringify(tenantAnnotation)} but the signed content says ${bundle.tenant === undefined ? 'no tenant' : JSON.stringify(bundle.tenant)}`)
  }
  const emergencyIncident = annotations[ANNOTATION.emergency]
  if (emergencyIncident !== undefined && incidentProblem(emergencyIncident)) {
    mismatches.push(`${ANNOTATION.emergency} ${incidentProblem(emergencyIncident)}`)
  }
  if (layer.annotations?.[ANNOTATION.title] !== undefined && layer.annotations[ANNOTATION.title] !== `${name}.json`) {
    mismatches.push(`layer title is ${JSON.stringify(layer.annotations[ANNOTATION.title])}, expected "${name}.json"`)
  }
  if (mismatches.length > 0) {
    throw refuse('ANNOTATION_MISMATCH', `${label}: the manifest annotations disagree with the signed policy content:\n  ${mismatches.join('\n  ')}`, [
      'the artifact was packed inconsistently or its annotations were forged; do not use it',
    ])
  }

  let source: Buffer | undefined
  const srcLayer = manifest.layers[1]
  if (srcLayer) {
    source = await guarded(`source layer ${srcLayer.digest} of ${label}`, async () => {
      if (srcLayer.size > MAX_DOCUMENT_BYTES) throw refuse('POLICY_TOO_LARGE', `the source layer of ${label} is over ${MAX_DOCUMENT_BYTES} bytes`)
      const b = await fetchAll({fetch: (d) => target.fetch(d, {signal})}, srcLayer, MAX_DOCUMENT_BYTES)
      verifyBytes(srcLayer, b, target.location)
      return b
    })
    let sourceDigest: string | undefined
    try {
      sourceDigest = loadBundleText(source, `${label} (source layer)`, {format: 'yaml', accept: ['aibox-bundle']}).digest
    } catch (err) {
      throw refuse('SOURCE_MISMATCH', `the source layer of ${label} is not a valid bundle: ${errorMessage(err)}`)
    }
    if (sourceDigest !== contentDigest) {
      throw refuse('SOURCE_MISMATCH', `the source layer of ${label} has content digest ${sourceDigest}, not the policy's ${contentDigest}`)
    }
  }

  // 4. Trust: keys alone need one verified signature (done); a trust policy decides on scope + tier.
  let trust: VerifiedPolicy['trust']
  if (options.trust) {
    const evidence: TrustEvidence[] = [
      ...v.signatures.map((s) => ({kind: statementKind(undefined), signer: s.signer, source: s.referrer})),
      ...v.approvals.map((a) => ({kind: statementKind(APPROVAL_PREDICATE_TYPE), signer: a.signer, source: a.referrer, role: a.role})),
      ...v.attestations.map((a) => ({kind: statementKind(a.predicateType), signer: a.signer, source: a.referrer})),
    ]
    const trustTarget = {...trustTargetFor(target, options.reference, tier), ...(emergencyIncident === undefined ? {} : {emergency: emergencyIncident})}
    const decision = evaluateTrust(options.trust, trustTarget, evidence, {now: options.now})
    assertTrusted(decision, options.trust.file, v.rejected.map((r) => ({source: r.referrer, message: r.reason})))
    trust = {policy: options.trust.file, ...decision}
  }
  const approvalSummary = summarizeApprovals(v.approvals, trust)
  let emergency: VerifiedPolicy['emergency']
  if (emergencyIncident !== undefined) {
    emergency = {incident: emergencyIncident, ...(trust?.emergency ? {pendingApproval: trust.emergency.pendingApproval, scopes: trust.emergency.scopes} : {})}
  }

  return {
    location: target.location,
    manifest: desc,
    manifestBytes,
    annotations,
    bundle,
    canonical,
    contentDigest,
    ...(source ? {source} : {}),
    name,
    version,
    tier,
    ...(bundle.tenant !== undefined ? {tenant: bundle.tenant} : {}),
    signatures: v.signatures,
    approvals: v.approvals,
    attestations: v.attestations,
    rejected: v.rejected,
    skipped: v.skipped,
    ...(trust ? {trust} : {}),
    ...(emergency ? {emergency} : {}),
    approvalSummary,
  }
}

/** Approvals as verified, joined with the trust decision's verdict on each (same referrer). */
export function summarizeApprovals(approvals: VerifiedApproval[], trust?: Pick<TrustDecision, 'approvals'>): ApprovalSummary[] {
  return approvals.map((a) => {
    const outcome = trust?.approvals.find((o) => o.source === a.referrer)
    const s: ApprovalSummary = {
      key: outcome?.key ?? a.signer.name ?? a.signer.keyId,
      keyId: a.signer.keyId,
      role: a.role,
      note: a.note,
      approvedAt: a.approvedAt,
      referrer: a.referrer,
      eligible: outcome ? outcome.eligible : null,
    }
    if (a.ticket !== undefined) s.ticket = a.ticket
    if (a.incident !== undefined) s.incident = a.incident
    if (outcome?.reason) s.reason = outcome.message ?? outcome.reason
    return s
  })
}

/** Names a signer for humans: the trust policy's (or key file's) name, else the key id. */
export function signerLabel(s: SignerInfo): string {
  return s.name === undefined ? s.keyId : `'${s.name}' (${s.keyId})`
}


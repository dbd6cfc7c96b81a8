/**
 * `aibox push`, `aibox sign REF`, `aibox approve REF`: publishing is pack → copy(memory →
 * destination) → sign → tag (architecture.md "One transfer engine"). Tags are written last, so a
 * version or channel tag never points at an artifact without its signature.
 */
import {type AuditOptions, appendAuditEvents} from '../audit/append.js'
import {loadBundle} from '../bundle/load.js'
import type {LoadedBundle, Tier} from '../bundle/model.js'
import {AiboxError, InputError, errorMessage} from '../errors.js'
import {type CopyGraphOptions, copyGraph} from '../oci/copy.js'
import {assertTag} from '../oci/reference.js'
import type {Descriptor, GraphTarget} from '../oci/target.js'
import type {KeylessSigner} from '../sign/keyless.js'
import type {PrivateKeyInfo} from '../sign/keys.js'
import {LocalKeySigner} from '../sign/signer.js'
import {DRAFT_TAG_PREFIX, type PackPolicyOptions, isDraftTag, packPolicy} from './pack.js'
import {type ApprovalPredicate, type AttachedReferrer, attachApproval, attachKeylessSignature, attachLegacySignature, attachSignature, signSubjectKeyless} from './referrers.js'
import {type OpenOptions, type OpenedTarget, openForWrite, requireSelector, withDigest, withTag} from './targets.js'
import {readPolicyManifest} from './verify.js'

/** A semver `+build` suffix is not valid in a tag: it is written as `_` (the Helm/OCI convention). */
export function versionTag(version: string): string {
  return version.replace(/\+/g, '_')
}

export interface PushPolicyOptions extends OpenOptions, Pick<PackPolicyOptions, 'includeSource' | 'created' | 'env'> {
  /** The bundle file, or a bundle already loaded. */
  bundle: string | LoadedBundle
  /** `registry/repo`, `registry/repo:channel` or `oci:DIR[:tag]`. */
  reference: string
  /** The signing key; exactly one of `key` and `keyless`. */
  key?: PrivateKeyInfo
  /** Sign keyless with your own Sigstore instead of a key (README "Keyless signing"). */
  keyless?: KeylessSigner
  /** More channel tags (`stable`, …); the version tag and the reference's tag are always set. */
  tags?: string[]
  /** Also write cosign's legacy `sha256-<hex>.sig` signature. */
  cosignLegacy?: boolean
  /** Progress of the transfer (bytes of each blob so far). */
  onProgress?: CopyGraphOptions['onProgress']
  /** Write `policy.pushed` / `policy.signed` to this audit log (nothing when absent). */
  audit?: AuditOptions
  /**
   * A draft (README "Governance"): tagged `draft-<version>` only (REF's tag and `tags` must then
   * start with `draft-`), never the version or a channel.
   */
  draft?: boolean
  /**
   * An emergency change: the incident goes into the signed manifest (`dev.aibox.policy.emergency`)
   * and `policy.emergency` is logged with the reason.
   */
  emergency?: {incident: string; reason?: string; ticket?: string}
  /** The submit gate's outcome, recorded in `policy.pushed`. */
  gate?: 'passed' | 'failed' | 'not-protected'
  now?: Date
  signal?: AbortSignal
}

export interface PushPolicyResult {
  /** The destination repository or layout, without tag. */
  repository: string
  digest: string
  manifest: Descriptor
  contentDigest: string
  name: string
  version: string
  tier: Tier
  tags: string[]
  /** Every reference that now names the artifact: one per tag, and the digest reference. */
  refs: string[]
  layers: Descriptor[]
  /** Bytes of the artifact (manifest, config and layers). */
  size: number
  signature: SignatureSummary
  legacySignature?: {tag: string; digest: string; layers: number}
  /** True for a draft push (only `draft-` tags). */
  draft: boolean
  /** The incident of an emergency change. */
  emergency?: {incident: string; reason: string}
}

/** The tags a push writes (see `PushPolicyOptions.draft`); refuses `draft-` tags on a release and other tags on a draft. */
export function pushTags(version: string, refTag: string | undefined, extra: string[], draft: boolean): string[] {
  const asked = [...(refTag ? [refTag] : []), ...extra]
  if (draft) {
    const wrong = asked.filter((t) => !isDraftTag(t))
    if (wrong.length > 0) {
      throw new InputError('DRAFT_TAGS', `a draft is tagged ${DRAFT_TAG_PREFIX}<version> only, never a release tag or channel: ${wrong.map((t) => JSON.stringify(t)).join(', ')}`, {
        suggestions: [`drop the tag from the reference and --tag, or use tags starting with ${DRAFT_TAG_PREFIX}`],
      })
    }
    return [...new Set([`${DRAFT_TAG_PREFIX}${versionTag(version)}`, ...asked])]
  }
  const reserved = asked.filter(isDraftTag)
  if (reserved.length > 0) {
    throw new InputError('RESERVED_TAG', `tags starting with ${DRAFT_TAG_PREFIX} mark drafts, which pull and start refuse: ${reserved.map((t) => JSON.stringify(t)).join(', ')}`, {
      suggestions: ['push with --draft for a draft, or pick another tag for a release'],
    })
  }
  return [...new Set([versionTag(version), ...asked])]
}

/** The signature referrer written, and for keyless signatures who was certified and what witnessed it. */
export interface SignatureSummary {
  digest: string
  keyId: string
  keyless?: AttachedReferrer['keyless']
}

function summary(sig: AttachedReferrer): SignatureSummary {
  return {digest: sig.descriptor.digest, keyId: sig.keyId, ...(sig.keyless ? {keyless: sig.keyless} : {})}
}

/** Exactly one of key / keyless; the legacy `.sig` layout is key-only. Checked before any work. */
function signingMode(options: {key?: PrivateKeyInfo; keyless?: KeylessSigner; cosignLegacy?: boolean}): LocalKeySigner | KeylessSigner {
  if ((options.key === undefined) === (options.keyless === undefined)) {
    throw new InputError('KEY_OR_KEYLESS', 'signing needs exactly one of a key (--key) or keyless signing (--keyless)')
  }
  if (options.keyless && options.cosignLegacy) {
    throw new InputError('LEGACY_WITH_KEYLESS', "--cosign-legacy writes cosign's key-signed .sig layout; keyless signatures are Sigstore bundle referrers only", {
      suggestions: ['drop --cosign-legacy (cosign v3 reads the bundle referrer)'],
    })
  }
  return options.keyless ?? new LocalKeySigner(options.key!)
}

/** Audit fields of a signature: the key id, and for keyless signatures the certified identity. */
function signedFields(sig: AttachedReferrer): {keyId: string; signature: string; identity?: string; issuer?: string} {
  return {keyId: sig.keyId, signature: sig.descriptor.digest, ...(sig.keyless ? {identity: sig.keyless.identity.subject, issuer: sig.keyless.identity.issuer} : {})}
}

function auditFailure(err: unknown, what: string): AiboxError {
  return new AiboxError('AUDIT_FAILED', `${what}, but the audit log could not be written: ${errorMessage(err)}`, {
    cause: err,
    exit: err instanceof AiboxError ? err.exit : 1,
    suggestions: ['fix the audit log (aibox audit verify) and record the event; the registry side is complete'],
  })
}

async function withTarget<T>(reference: string, options: OpenOptions, fn: (t: OpenedTarget<GraphTarget>) => Promise<T>): Promise<T> {
  const opened = await openForWrite(reference, options)
  try {
    return await fn(opened)
  } finally {
    await opened.close()
  }
}

/** Loads, validates, canonicalises, packs, pushes, signs and tags a policy bundle. */
export async function pushPolicy(options: PushPolicyOptions): Promise<PushPolicyResult> {
  const mode = signingMode(options)
  const bundle = typeof options.bundle === 'string' ? loadBundle(options.bundle) : options.bundle
  if (options.draft && options.emergency) throw new InputError('DRAFT_EMERGENCY', 'an emergency change is a release: it cannot be a draft')
  const packed = await packPolicy(bundle, {includeSource: options.includeSource, created: options.created, env: options.env, ...(options.emergency ? {emergency: options.emergency.incident} : {})})
  return withTarget(options.reference, options, async (dst) => {
    if (dst.reference.digest !== undefined) {
      throw new InputError('DIGEST_DESTINATION', `${options.reference}: push to a repository or a tag, not to a digest (the digest is computed from the bundle)`)
    }
    const tags = pushTags(packed.version, dst.reference.tag, options.tags ?? [], options.draft ?? false)
    for (const t of tags) assertTag(t)
    // Keyless: certificate and witnesses before anything is written, so an unreachable Fulcio leaves the destination untouched.
    const keylessSignature = mode instanceof LocalKeySigner ? undefined : await signSubjectKeyless(mode, packed.manifest)
    await copyGraph(packed.store, dst.target, packed.manifest, {onProgress: options.onProgress, signal: options.signal})
    const attach = {now: options.now, signal: options.signal}
    const sig = keylessSignature
      ? await attachKeylessSignature(dst.target, packed.manifest, keylessSignature, attach)
      : await attachSignature(dst.target, packed.manifest, mode as LocalKeySigner, attach)
    let legacy: PushPolicyResult['legacySignature']
    if (options.cosignLegacy && mode instanceof LocalKeySigner) {
      const signer = mode
      const r = dst.reference
      const dockerReference = r.kind === 'registry' ? `${r.registry}/${r.repository}` : dst.display
      const l = await attachLegacySignature(dst.target, packed.manifest, signer, {dockerReference, now: options.now, signal: options.signal})
      legacy = {tag: l.tag, digest: l.descriptor.digest, layers: l.layers}
    }
    for (const t of tags) await dst.target.tag(packed.manifest, t, {signal: options.signal})
    const repository = withTag(dst.reference, '').replace(/:$/, '')
    const result: PushPolicyResult = {
      repository,
      digest: packed.manifest.digest,
      manifest: packed.manifest,
      contentDigest: packed.contentDigest,
      name: packed.name,
      version: packed.version,
      tier: packed.tier,
      tags,
      refs: [...tags.map((t) => withTag(dst.reference, t)), withDigest(dst.reference, packed.manifest.digest)],
      layers: packed.layers,
      size: packed.manifest.size + 2 + packed.layers.reduce((n, l) => n + l.size, 0),
      signature: summary(sig),
      ...(legacy ? {legacySignature: legacy} : {}),
      draft: options.draft ?? false,
    }
    const em = options.emergency
    if (em) result.emergency = {incident: em.incident, reason: em.reason ?? `emergency change for incident ${em.incident}`}
    if (options.audit) {
      const subject = {ref: result.refs[0]!, digest: result.digest, version: result.version}
      const pushed = {
        ...subject,
        tier: result.tier,
        tags,
        contentDigest: result.contentDigest,
        ...(options.draft ? {draft: true} : {}),
        ...(result.emergency ? {emergency: true, incident: result.emergency.incident} : {}),
        ...(options.gate ? {gate: options.gate} : {}),
      }
      try {
        await appendAuditEvents(
          [
            {event: 'policy.pushed', fields: pushed},
            {event: 'policy.signed', fields: {...subject, ...signedFields(sig)}},
            ...(result.emergency
              ? [{event: 'policy.emergency' as const, fields: {...subject, keyId: sig.keyId, reason: result.emergency.reason, incident: result.emergency.incident, ...(em?.ticket ? {ticket: em.ticket} : {})}}]
              : []),
          ],
          options.audit,
        )
      } catch (err) {
        throw auditFailure(err, `pushed and signed ${result.refs[0]} (${result.digest})`)
      }
    }
    return result
  })
}

export interface SignReferenceOptions extends OpenOptions {
  reference: string
  /** Exactly one of `key` and `keyless`. */
  key?: PrivateKeyInfo
  keyless?: KeylessSigner
  cosignLegacy?: boolean
  audit?: AuditOptions
  now?: Date
  signal?: AbortSignal
}

export interface SignReferenceResult {
  reference: string
  digest: string
  version: string | null
  signature: SignatureSummary
  legacySignature?: {tag: string; digest: string; layers: number}
}

/** `aibox sign REF`: signs an already pushed policy manifest (it must be a policy artifact). */
export async function signReference(options: SignReferenceOptions): Promise<SignReferenceResult> {
  const mode = signingMode(options)
  return withTarget(options.reference, options, async (dst) => {
    const sel = requireSelector(dst)
    const desc = await dst.target.resolve(sel, {signal: options.signal})
    const {manifest} = await readPolicyManifest(dst.target, desc, options.signal)
    const subject = {mediaType: desc.mediaType, digest: desc.digest, size: desc.size}
    const sig = await attachSignature(dst.target, subject, mode, {now: options.now, signal: options.signal})
    let legacy: SignReferenceResult['legacySignature']
    if (options.cosignLegacy && mode instanceof LocalKeySigner) {
      const signer = mode
      const r = dst.reference
      const l = await attachLegacySignature(dst.target, subject, signer, {
        dockerReference: r.kind === 'registry' ? `${r.registry}/${r.repository}` : withTag(r, '').replace(/:$/, ''),
        now: options.now,
        signal: options.signal,
      })
      legacy = {tag: l.tag, digest: l.descriptor.digest, layers: l.layers}
    }
    const version = manifest.annotations?.['org.opencontainers.image.version'] ?? null
    const result: SignReferenceResult = {
      reference: withDigest(dst.reference, desc.digest),
      digest: desc.digest,
      version,
      signature: summary(sig),
      ...(legacy ? {legacySignature: legacy} : {}),
    }
    if (options.audit) {
      try {
        await appendAuditEvents([{event: 'policy.signed', fields: {ref: dst.display, digest: desc.digest, version, ...signedFields(sig)}}], options.audit)
      } catch (err) {
        throw auditFailure(err, `signed ${dst.display} (${desc.digest})`)
      }
    }
    return result
  })
}

export interface ApproveReferenceOptions extends OpenOptions {
  reference: string
  key: PrivateKeyInfo
  role: string
  note: string
  ticket?: string
  incident?: string
  audit?: AuditOptions
  /**
   * Called with the resolved manifest before anything is attached (governance checks: separation of
   * duties, roles); throwing refuses the approval with nothing written.
   */
  beforeAttach?: (ctx: {target: GraphTarget; subject: Descriptor; annotations: Record<string, string>; display: string}) => Promise<void>
  now?: Date
  signal?: AbortSignal
}

export interface ApproveReferenceResult {
  reference: string
  digest: string
  version: string | null
  approval: ApprovalPredicate
  attestation: {digest: string; keyId: string}
}

/** `aibox approve REF`: attaches an approval attestation bound to the exact manifest digest. */
export async function approveReference(options: ApproveReferenceOptions): Promise<ApproveReferenceResult> {
  return withTarget(options.reference, options, async (dst) => {
    const sel = requireSelector(dst)
    const desc = await dst.target.resolve(sel, {signal: options.signal})
    const {manifest} = await readPolicyManifest(dst.target, desc, options.signal)
    const subject = {mediaType: desc.mediaType, digest: desc.digest, size: desc.size}
    if (options.beforeAttach) await options.beforeAttach({target: dst.target, subject, annotations: manifest.annotations ?? {}, display: dst.display})
    const a = await attachApproval(
      dst.target,
      subject,
      new LocalKeySigner(options.key),
      {role: options.role, note: options.note, ...(options.ticket === undefined ? {} : {ticket: options.ticket}), ...(options.incident === undefined ? {} : {incident: options.incident})},
      {now: options.now, signal: options.signal},
    )
    const version = manifest.annotations?.['org.opencontainers.image.version'] ?? null
    if (options.audit) {
      try {
        await appendAuditEvents(
          [
            {
              event: 'policy.approved',
              fields: {
                ref: dst.display,
                digest: desc.digest,
                version,
                keyId: a.keyId,
                role: a.approval.role,
                note: a.approval.note,
                ...(a.approval.ticket === undefined ? {} : {ticket: a.approval.ticket}),
                ...(a.approval.incident === undefined ? {} : {incident: a.approval.incident}),
                attestation: a.descriptor.digest,
              },
            },
          ],
          options.audit,
        )
      } catch (err) {
        throw auditFailure(err, `approved ${dst.display} (${desc.digest})`)
      }
    }
    return {reference: withDigest(dst.reference, desc.digest), digest: desc.digest, version, approval: a.approval, attestation: {digest: a.descriptor.digest, keyId: a.keyId}}
  })
}

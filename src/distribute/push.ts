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
import type {PrivateKeyInfo} from '../sign/keys.js'
import {LocalKeySigner} from '../sign/signer.js'
import {type PackPolicyOptions, packPolicy} from './pack.js'
import {type ApprovalPredicate, attachApproval, attachLegacySignature, attachSignature} from './referrers.js'
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
  key: PrivateKeyInfo
  /** More channel tags (`stable`, …); the version tag and the reference's tag are always set. */
  tags?: string[]
  /** Also write cosign's legacy `sha256-<hex>.sig` signature. */
  cosignLegacy?: boolean
  /** Progress of the transfer (bytes of each blob so far). */
  onProgress?: CopyGraphOptions['onProgress']
  /** Write `policy.pushed` / `policy.signed` to this audit log (nothing when absent). */
  audit?: AuditOptions
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
  signature: {digest: string; keyId: string}
  legacySignature?: {tag: string; digest: string; layers: number}
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
  const bundle = typeof options.bundle === 'string' ? loadBundle(options.bundle) : options.bundle
  const packed = await packPolicy(bundle, options)
  return withTarget(options.reference, options, async (dst) => {
    if (dst.reference.digest !== undefined) {
      throw new InputError('DIGEST_DESTINATION', `${options.reference}: push to a repository or a tag, not to a digest (the digest is computed from the bundle)`)
    }
    const tags = [...new Set([versionTag(packed.version), ...(dst.reference.tag ? [dst.reference.tag] : []), ...(options.tags ?? [])])]
    for (const t of tags) assertTag(t)
    const signer = new LocalKeySigner(options.key)
    await copyGraph(packed.store, dst.target, packed.manifest, {onProgress: options.onProgress, signal: options.signal})
    const sig = await attachSignature(dst.target, packed.manifest, signer, {now: options.now, signal: options.signal})
    let legacy: PushPolicyResult['legacySignature']
    if (options.cosignLegacy) {
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
      signature: {digest: sig.descriptor.digest, keyId: sig.keyId},
      ...(legacy ? {legacySignature: legacy} : {}),
    }
    if (options.audit) {
      const subject = {ref: result.refs[0]!, digest: result.digest, version: result.version}
      try {
        await appendAuditEvents(
          [
            {event: 'policy.pushed', fields: {...subject, tier: result.tier, tags, contentDigest: result.contentDigest}},
            {event: 'policy.signed', fields: {...subject, keyId: sig.keyId, signature: sig.descriptor.digest}},
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
  key: PrivateKeyInfo
  cosignLegacy?: boolean
  audit?: AuditOptions
  now?: Date
  signal?: AbortSignal
}

export interface SignReferenceResult {
  reference: string
  digest: string
  version: string | null
  signature: {digest: string; keyId: string}
  legacySignature?: {tag: string; digest: string; layers: number}
}

/** `aibox sign REF`: signs an already pushed policy manifest (it must be a policy artifact). */
export async function signReference(options: SignReferenceOptions): Promise<SignReferenceResult> {
  return withTarget(options.reference, options, async (dst) => {
    const sel = requireSelector(dst)
    const desc = await dst.target.resolve(sel, {signal: options.signal})
    const {manifest} = await readPolicyManifest(dst.target, desc, options.signal)
    const subject = {mediaType: desc.mediaType, digest: desc.digest, size: desc.size}
    const signer = new LocalKeySigner(options.key)
    const sig = await attachSignature(dst.target, subject, signer, {now: options.now, signal: options.signal})
    let legacy: SignReferenceResult['legacySignature']
    if (options.cosignLegacy) {
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
      signature: {digest: sig.descriptor.digest, keyId: sig.keyId},
      ...(legacy ? {legacySignature: legacy} : {}),
    }
    if (options.audit) {
      try {
        await appendAuditEvents([{event: 'policy.signed', fields: {ref: dst.display, digest: desc.digest, version, keyId: sig.keyId, signature: sig.descriptor.digest}}], options.audit)
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

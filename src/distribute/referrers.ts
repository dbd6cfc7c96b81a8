/**
 * Signatures and approvals attached to a policy manifest (formats.md "Signatures and approvals").
 *
 * Writing: a Sigstore bundle v0.3 referrer byte-for-byte in the shape cosign v3 writes
 * (cosign-formats.md §b "Referrer manifest": ggcr's field order, the empty config carrying the
 * artifactType, one bundle layer, the three annotations, the subject from the manifest), pushed by
 * digest; optionally cosign's legacy `sha256-<hex>.sig` simple-signing manifest (§a), appended to,
 * never clobbered. Approvals use the same container with the approval predicate.
 *
 * Reading works on any ReadOnlyGraphTarget: referrers that are not Sigstore bundles are skipped,
 * dangling entries (a referrers tag index naming a deleted manifest, registry-notes.md §8.11) are
 * tolerated, and each bundle is verified offline against the given keys with the statement
 * subject bound to the manifest digest.
 */
import {type SerializedBundle, signStatement, signSubjects, verifyBundle} from '../sign/bundle.js'
import {SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, simpleSigningPayload, verifySimpleSigning} from '../sign/cosign.js'
import {decodeBase64, encodeBase64} from '../sign/encoding.js'
import type {PrivateKeyInfo} from '../sign/keys.js'
import {signRaw} from '../sign/raw.js'
import {LocalKeySigner} from '../sign/signer.js'
import {COSIGN_SIGN_PREDICATE_TYPE} from '../sign/statement.js'
import type {SignerInfo, VerificationKey, VerifiedSignature} from '../sign/types.js'
import {MAX_SIGNATURE_BYTES} from '../sign/verify.js'
import {APPROVAL_PREDICATE_TYPE} from '../trust/evaluate.js'
import {AiboxError, InputError, VerificationError, errorMessage} from '../errors.js'
import {descriptorFor, fetchAll} from '../oci/content.js'
import {isOciError} from '../oci/errors.js'
import {parseManifest} from '../oci/manifest.js'
import {ANNOTATION, EMPTY_DESCRIPTOR, EMPTY_JSON, MT} from '../oci/media.js'
import {type Descriptor, type ReadOnlyGraphTarget, type ReadOnlyTarget, type Target, isGraphTarget} from '../oci/target.js'

export {APPROVAL_PREDICATE_TYPE}

/** The empty config descriptor of a cosign referrer: cosign also puts the artifactType in it (write.go:373). */
const SIGSTORE_CONFIG = {...EMPTY_DESCRIPTOR, artifactType: MT.sigstoreBundleV03}

/** RFC 3339 UTC to the second, as Go's time.RFC3339 prints a UTC time. */
export function rfc3339Seconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** A descriptor in ggcr's `v1.Descriptor` field order (mediaType, size, digest, …, artifactType). */
function ggcrDescriptor(d: Descriptor): Record<string, unknown> {
  const o: Record<string, unknown> = {mediaType: d.mediaType, size: d.size, digest: d.digest}
  if (d.annotations && Object.keys(d.annotations).length > 0) o.annotations = sortKeys(d.annotations)
  if (d.artifactType !== undefined) o.artifactType = d.artifactType
  return o
}

function sortKeys(r: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.keys(r).sort().map((k) => [k, r[k]!]))
}

export interface ReferrerBlobs {
  /** Blobs to push before the manifest, children first. */
  blobs: Array<{desc: Descriptor; bytes: Buffer}>
  manifest: {desc: Descriptor; bytes: Buffer}
}

/**
 * The referrer manifest cosign v3 writes for a Sigstore bundle (cosign `pkg/oci/remote/write.go`
 * `WriteReferrer`): Go encoding/json of ggcr's manifest plus a top-level artifactType.
 */
export function packSigstoreReferrer(bundle: SerializedBundle | Record<string, unknown>, subject: Descriptor, options: {predicateType: string; created: Date}): ReferrerBlobs {
  const layerBytes = Buffer.from(JSON.stringify(bundle), 'utf8')
  const layer = descriptorFor(MT.sigstoreBundleV03, layerBytes)
  const annotations = sortKeys({
    [ANNOTATION.bundleContent]: 'dsse-envelope',
    [ANNOTATION.bundlePredicateType]: options.predicateType,
    [ANNOTATION.created]: rfc3339Seconds(options.created),
  })
  const doc = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: ggcrDescriptor(SIGSTORE_CONFIG),
    layers: [ggcrDescriptor(layer)],
    annotations,
    subject: ggcrDescriptor({mediaType: subject.mediaType, size: subject.size, digest: subject.digest}),
    artifactType: MT.sigstoreBundleV03,
  }
  const bytes = Buffer.from(JSON.stringify(doc), 'utf8')
  const desc = descriptorFor(MT.ociManifest, bytes, {artifactType: MT.sigstoreBundleV03, annotations})
  return {blobs: [{desc: {...EMPTY_DESCRIPTOR}, bytes: EMPTY_JSON}, {desc: layer, bytes: layerBytes}], manifest: {desc, bytes}}
}

/** Pushes a referrer's blobs then its manifest, by digest (cosign: no tag, write.go:386-394). */
export async function pushReferrer(target: Target, r: ReferrerBlobs, opts: {signal?: AbortSignal} = {}): Promise<Descriptor> {
  for (const b of r.blobs) await target.push(b.desc, b.bytes, opts)
  await target.push(r.manifest.desc, r.manifest.bytes, opts)
  return r.manifest.desc
}

function signerOfKey(key: PrivateKeyInfo | LocalKeySigner): LocalKeySigner {
  return key instanceof LocalKeySigner ? key : new LocalKeySigner(key)
}

export interface AttachOptions {
  /** `org.opencontainers.image.created` of the referrer (default now; signatures are not reproducible anyway). */
  now?: Date
  signal?: AbortSignal
}

export interface AttachedReferrer {
  /** The referrer manifest. */
  descriptor: Descriptor
  /** The Sigstore bundle it carries. */
  bundle: SerializedBundle
  keyId: string
}

/**
 * Signs `subject` (the policy manifest) like `cosign sign --key`: an in-toto statement whose subject
 * is the manifest digest with predicateType https://sigstore.dev/cosign/sign/v1, attached as a referrer.
 */
export async function attachSignature(target: Target, subject: Descriptor, key: PrivateKeyInfo | LocalKeySigner, options: AttachOptions = {}): Promise<AttachedReferrer> {
  const signer = signerOfKey(key)
  const bundle = await signSubjects([{digest: subject.digest, annotations: {}}], signer)
  const packed = packSigstoreReferrer(bundle, subject, {predicateType: COSIGN_SIGN_PREDICATE_TYPE, created: options.now ?? new Date()})
  const descriptor = await pushReferrer(target, packed, options)
  return {descriptor, bundle, keyId: signer.key.public.keyId}
}

/** The approval predicate (formats.md "Approval"). */
export interface ApprovalPredicate {
  role: string
  note: string
  ticket?: string
  incident?: string
  /** RFC 3339. */
  approvedAt: string
}

const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/
const MAX_FIELD = 4096

/** Checks an approval's fields (what `aibox approve` takes and what readers accept); every problem at once. */
export function approvalProblems(p: Record<string, unknown>): string[] {
  const out: string[] = []
  const str = (k: string, required: boolean) => {
    const v = p[k]
    if (v === undefined) {
      if (required) out.push(`"${k}" is missing`)
      return
    }
    if (typeof v !== 'string') out.push(`"${k}" is not a string`)
    else if (required && v.trim() === '') out.push(`"${k}" is empty`)
    else if (v.length > MAX_FIELD) out.push(`"${k}" is longer than ${MAX_FIELD} characters`)
    else if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(v)) out.push(`"${k}" contains control characters`)
  }
  str('role', true)
  str('note', true)
  str('ticket', false)
  str('incident', false)
  str('approvedAt', true)
  if (typeof p.approvedAt === 'string' && !RFC3339_RE.test(p.approvedAt)) out.push('"approvedAt" is not an RFC 3339 date-time')
  return out
}

/**
 * Attaches an approval attestation signed by the approver: predicateType
 * https://aibox.dev/attestations/policy-approval/v1, predicate {role, note, ticket?, incident?,
 * approvedAt}, subject the exact manifest digest.
 */
export async function attachApproval(
  target: Target,
  subject: Descriptor,
  key: PrivateKeyInfo | LocalKeySigner,
  approval: Omit<ApprovalPredicate, 'approvedAt'> & {approvedAt?: string},
  options: AttachOptions = {},
): Promise<AttachedReferrer & {approval: ApprovalPredicate}> {
  const now = options.now ?? new Date()
  const predicate: ApprovalPredicate = {role: approval.role, note: approval.note, approvedAt: approval.approvedAt ?? rfc3339Seconds(now)}
  if (approval.ticket !== undefined) predicate.ticket = approval.ticket
  if (approval.incident !== undefined) predicate.incident = approval.incident
  const problems = approvalProblems(predicate as unknown as Record<string, unknown>)
  if (problems.length > 0) throw new InputError('INVALID_APPROVAL', `invalid approval: ${problems.join('; ')}`)
  const signer = signerOfKey(key)
  const bundle = await signStatement(
    {subjects: [{digest: subject.digest, annotations: {}}], predicateType: APPROVAL_PREDICATE_TYPE, predicate: predicate as unknown as Record<string, unknown>},
    signer,
  )
  const packed = packSigstoreReferrer(bundle, subject, {predicateType: APPROVAL_PREDICATE_TYPE, created: now})
  const descriptor = await pushReferrer(target, packed, options)
  return {descriptor, bundle, keyId: signer.key.public.keyId, approval: predicate}
}

// ---------------------------------------------------------------------------------------------
// cosign's legacy `.sig` layout (cosign-formats.md §a)

/** `sha256-<hex>.sig`: where cosign ≤ v2 keeps the signatures of a manifest. */
export function legacySignatureTag(digest: string): string {
  return `sha256-${digest.slice('sha256:'.length)}.sig`
}

/** ggcr's ConfigFile for an image of `diffIds` layers, as Go encoding/json writes it (§a "Manifest"). */
function legacyConfig(diffIds: string[]): Buffer {
  const zero = '0001-01-01T00:00:00Z'
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: zero,
      history: diffIds.map(() => ({created: zero})),
      os: '',
      rootfs: {type: 'layers', diff_ids: diffIds},
      config: {},
    }),
    'utf8',
  )
}

const MAX_LEGACY_LAYERS = 1000

/** Reads the `.sig` manifest of `subject` from `target` (undefined when there is none). */
async function readLegacyManifest(target: ReadOnlyTarget, subject: string): Promise<{desc: Descriptor; layers: Descriptor[]} | undefined> {
  let desc: Descriptor
  try {
    desc = await target.resolve(legacySignatureTag(subject))
  } catch (err) {
    if (isOciError(err, 'NOT_FOUND')) return undefined
    throw err
  }
  const bytes = await fetchAll(target, desc)
  const parsed = parseManifest(bytes, desc, target.location)
  if (parsed.kind !== 'manifest') return undefined
  return {desc, layers: parsed.manifest.layers}
}

/**
 * Appends a simple-signing signature to `sha256-<hex>.sig` (read, modify, write; an identical
 * signature already there is kept once; other signatures are never dropped).
 */
export async function attachLegacySignature(
  target: Target,
  subject: Descriptor,
  key: PrivateKeyInfo | LocalKeySigner,
  options: AttachOptions & {dockerReference: string},
): Promise<{descriptor: Descriptor; tag: string; layers: number}> {
  const signer = signerOfKey(key)
  const payload = simpleSigningPayload(options.dockerReference, subject.digest)
  const signature = encodeBase64(signRaw(payload, signer))
  const layer = descriptorFor(MT.cosignSimpleSigning, payload, {annotations: {[SIGNATURE_ANNOTATION]: signature}})
  const existing = (await readLegacyManifest(target, subject.digest))?.layers ?? []
  // ECDSA signatures are randomised: the same key signing twice adds a second layer, as cosign does.
  const layers = existing.some((l) => l.digest === layer.digest && l.annotations?.[SIGNATURE_ANNOTATION] === signature) ? existing : [...existing, layer]
  if (layers.length > MAX_LEGACY_LAYERS) {
    throw new InputError('TOO_MANY_SIGNATURES', `${legacySignatureTag(subject.digest)} already holds ${existing.length} signatures (cosign's limit is ${MAX_LEGACY_LAYERS})`)
  }
  const config = legacyConfig(layers.map((l) => l.digest))
  const configDesc = descriptorFor(MT.ociConfig, config)
  const doc = {schemaVersion: 2, mediaType: MT.ociManifest, config: ggcrDescriptor(configDesc), layers: layers.map(ggcrDescriptor)}
  const bytes = Buffer.from(JSON.stringify(doc), 'utf8')
  const desc = descriptorFor(MT.ociManifest, bytes)
  await target.push(layer, payload, options)
  await target.push(configDesc, config, options)
  await target.push(desc, bytes, options)
  const tag = legacySignatureTag(subject.digest)
  await target.tag(desc, tag, options)
  return {descriptor: desc, tag, layers: layers.length}
}

// ---------------------------------------------------------------------------------------------
// Reading and verifying

export type ReferrerKind = 'sigstore-bundle' | 'cosign-legacy' | 'other' | 'dangling' | 'invalid'

/** One referrer of a manifest (or one layer of its legacy `.sig` manifest), before verification. */
export interface ReferrerRecord {
  /** Referrer manifest digest, or `sha256-<hex>.sig#<layer index>` for a legacy signature. */
  id: string
  kind: ReferrerKind
  descriptor: Descriptor
  artifactType?: string
  annotations?: Record<string, string>
  /** What its annotations claim (unauthenticated until verified). */
  claimedPredicateType?: string
  created?: string
  /** The Sigstore bundle JSON (sigstore-bundle). */
  bundle?: Record<string, unknown>
  /** Legacy simple signing: payload and decoded signature. */
  legacy?: {payload: Buffer; signature: Buffer}
  /** Why it was skipped (other, dangling, invalid). */
  problem?: string
}

export interface ListReferrersOptions {
  /** Also read cosign's legacy `sha256-<hex>.sig` tag (default true). */
  legacy?: boolean
  signal?: AbortSignal
}

function isSigstoreLayer(d: Descriptor): boolean {
  return d.mediaType.startsWith('application/vnd.dev.sigstore.bundle')
}

/**
 * Lists every referrer of `subject` on `target` with the Sigstore bundle it carries, plus the
 * layers of a legacy `.sig` manifest. Never throws for one bad referrer: it is listed with its
 * kind (`other`, `dangling`, `invalid`) and the reason.
 */
export async function listPolicyReferrers(target: ReadOnlyTarget, subject: Descriptor, options: ListReferrersOptions = {}): Promise<ReferrerRecord[]> {
  const out: ReferrerRecord[] = []
  const preds = isGraphTarget(target) ? await (target as ReadOnlyGraphTarget).predecessors(subject, {signal: options.signal}) : []
  for (const d of preds) out.push(await readReferrer(target, subject, d))
  if (options.legacy ?? true) out.push(...(await readLegacy(target, subject)))
  return out
}

async function readReferrer(target: ReadOnlyTarget, subject: Descriptor, d: Descriptor): Promise<ReferrerRecord> {
  const base: ReferrerRecord = {id: d.digest, kind: 'other', descriptor: d}
  if (d.artifactType !== undefined) base.artifactType = d.artifactType
  if (d.annotations) base.annotations = d.annotations
  let bytes: Buffer
  try {
    bytes = await fetchAll(target, d)
  } catch (err) {
    if (isOciError(err, 'NOT_FOUND')) return {...base, kind: 'dangling', problem: `the referrers list names ${d.digest}, which is not in ${target.location}`}
    if (err instanceof AiboxError && err.exit === 2) return {...base, kind: 'invalid', problem: err.message}
    throw err
  }
  let parsed
  try {
    parsed = parseManifest(bytes, d, target.location)
  } catch (err) {
    return {...base, kind: 'invalid', problem: errorMessage(err)}
  }
  if (parsed.kind !== 'manifest') return {...base, problem: 'an image index, not a signature'}
  const m = parsed.manifest
  const rec: ReferrerRecord = {...base, artifactType: m.artifactType ?? m.config.mediaType}
  if (m.annotations) rec.annotations = m.annotations
  rec.claimedPredicateType = m.annotations?.[ANNOTATION.bundlePredicateType]
  if (m.annotations?.[ANNOTATION.created]) rec.created = m.annotations[ANNOTATION.created]
  if (m.subject?.digest !== subject.digest) return {...rec, kind: 'invalid', problem: `its subject is ${m.subject?.digest ?? 'missing'}, not ${subject.digest}`}
  // cosign's rule (§b "What cosign verify checks" 1): exactly one layer whose type is a Sigstore bundle.
  if (m.layers.length !== 1 || !isSigstoreLayer(m.layers[0]!)) return {...rec, kind: 'other', problem: `not a Sigstore bundle (artifactType ${rec.artifactType})`}
  const layer = m.layers[0]!
  let json: unknown
  try {
    const data = await fetchAll(target, layer, MAX_SIGNATURE_BYTES)
    json = JSON.parse(data.toString('utf8'))
  } catch (err) {
    if (isOciError(err, 'NOT_FOUND')) return {...rec, kind: 'dangling', problem: `its bundle layer ${layer.digest} is not in ${target.location}`}
    if (err instanceof AiboxError && err.exit !== 2) throw err
    return {...rec, kind: 'invalid', problem: `its bundle layer cannot be read: ${errorMessage(err)}`}
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return {...rec, kind: 'invalid', problem: 'its bundle layer is not a JSON object'}
  return {...rec, kind: 'sigstore-bundle', bundle: json as Record<string, unknown>}
}

async function readLegacy(target: ReadOnlyTarget, subject: Descriptor): Promise<ReferrerRecord[]> {
  let found
  try {
    found = await readLegacyManifest(target, subject.digest)
  } catch (err) {
    if (err instanceof AiboxError && err.exit === 2) {
      return [{id: legacySignatureTag(subject.digest), kind: 'invalid', descriptor: {mediaType: MT.ociManifest, digest: subject.digest, size: 0}, problem: err.message}]
    }
    throw err
  }
  if (!found) return []
  const tag = legacySignatureTag(subject.digest)
  const out: ReferrerRecord[] = []
  for (const [i, layer] of found.layers.slice(0, MAX_LEGACY_LAYERS).entries()) {
    const rec: ReferrerRecord = {id: `${tag}#${i}`, kind: 'cosign-legacy', descriptor: layer, artifactType: layer.mediaType}
    if (layer.annotations) rec.annotations = layer.annotations
    if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) {
      out.push({...rec, kind: 'other', problem: `layer type ${layer.mediaType} is not a simple-signing payload`})
      continue
    }
    const sig = layer.annotations?.[SIGNATURE_ANNOTATION]
    const signature = typeof sig === 'string' ? decodeBase64(sig) : undefined
    if (!signature) {
      out.push({...rec, kind: 'invalid', problem: `annotation ${SIGNATURE_ANNOTATION} is missing or not base64`})
      continue
    }
    try {
      const payload = await fetchAll(target, layer, MAX_SIGNATURE_BYTES)
      out.push({...rec, legacy: {payload, signature}})
    } catch (err) {
      if (isOciError(err, 'NOT_FOUND')) out.push({...rec, kind: 'dangling', problem: `payload ${layer.digest} is not in ${target.location}`})
      else if (err instanceof AiboxError && err.exit === 2) out.push({...rec, kind: 'invalid', problem: err.message})
      else throw err
    }
  }
  return out
}

export interface VerifiedPolicySignature {
  referrer: string
  format: 'sigstore-bundle' | 'cosign-legacy'
  signer: SignerInfo
  created?: string
}

export interface VerifiedApproval extends ApprovalPredicate {
  referrer: string
  signer: SignerInfo
}

export interface VerifiedAttestation {
  referrer: string
  predicateType: string
  signer: SignerInfo
}

export interface RejectedReferrer {
  referrer: string
  kind: ReferrerKind
  code: string
  reason: string
}

export interface ReferrerVerification {
  signatures: VerifiedPolicySignature[]
  approvals: VerifiedApproval[]
  /** Other statements that verified (SBOM, provenance…): listed, never counted as signatures. */
  attestations: VerifiedAttestation[]
  /** Signature-shaped referrers that did not verify, with why. */
  rejected: RejectedReferrer[]
  /** Referrers that are not signatures at all (other artifact types, dangling entries). */
  skipped: RejectedReferrer[]
}

/**
 * Verifies every listed referrer offline with `keys`, binding each statement's subject to the
 * subject manifest digest. Nothing throws for one bad referrer: it is rejected with a reason.
 */
export function verifyReferrers(records: ReferrerRecord[], subject: Descriptor, keys: VerificationKey[]): ReferrerVerification {
  const result: ReferrerVerification = {signatures: [], approvals: [], attestations: [], rejected: [], skipped: []}
  for (const r of records) {
    if (r.kind === 'other' || r.kind === 'dangling') {
      result.skipped.push({referrer: r.id, kind: r.kind, code: r.kind === 'dangling' ? 'DANGLING_REFERRER' : 'NOT_A_SIGNATURE', reason: r.problem ?? r.kind})
      continue
    }
    if (r.kind === 'invalid') {
      result.rejected.push({referrer: r.id, kind: r.kind, code: 'REFERRER_INVALID', reason: r.problem ?? 'invalid'})
      continue
    }
    let v: VerifiedSignature
    try {
      if (r.kind === 'cosign-legacy') {
        v = verifySimpleSigning({payload: r.legacy!.payload, signature: r.legacy!.signature, annotations: r.annotations ?? {}}, {keys, manifestDigest: subject.digest, source: r.id})
      } else {
        v = verifyBundle(r.bundle, {keys, subjectDigests: [subject.digest], source: `referrer ${r.id}`})
        if (v.binding.kind !== 'subject') throw new VerificationError('SUBJECT_MISMATCH', `referrer ${r.id}: the signed payload does not name ${subject.digest}`)
      }
    } catch (err) {
      if (!(err instanceof VerificationError)) throw err
      result.rejected.push({referrer: r.id, kind: r.kind, code: err.code, reason: err.message})
      continue
    }
    const signer = v.signers[0]!
    if (r.kind === 'cosign-legacy') {
      result.signatures.push({referrer: r.id, format: 'cosign-legacy', signer})
      continue
    }
    const pt = v.predicateType
    if (pt === COSIGN_SIGN_PREDICATE_TYPE) {
      result.signatures.push({referrer: r.id, format: 'sigstore-bundle', signer, ...(r.created ? {created: r.created} : {})})
    } else if (pt === APPROVAL_PREDICATE_TYPE) {
      const predicate = (v.statement?.predicate ?? {}) as Record<string, unknown>
      const problems = approvalProblems(predicate)
      if (problems.length > 0) {
        result.rejected.push({referrer: r.id, kind: r.kind, code: 'APPROVAL_INVALID', reason: `referrer ${r.id}: the approval is signed but malformed: ${problems.join('; ')}`})
        continue
      }
      const a: VerifiedApproval = {referrer: r.id, signer, role: predicate.role as string, note: predicate.note as string, approvedAt: predicate.approvedAt as string}
      if (typeof predicate.ticket === 'string') a.ticket = predicate.ticket
      if (typeof predicate.incident === 'string') a.incident = predicate.incident
      result.approvals.push(a)
    } else {
      result.attestations.push({referrer: r.id, predicateType: pt ?? '(none)', signer})
    }
  }
  return result
}

/** Lists and verifies every signature and approval of `subject` on any target in one call. */
export async function verifyAttachments(target: ReadOnlyTarget, subject: Descriptor, keys: VerificationKey[], options: ListReferrersOptions = {}): Promise<ReferrerVerification> {
  const d = {mediaType: subject.mediaType, digest: subject.digest, size: subject.size}
  return verifyReferrers(await listPolicyReferrers(target, d, options), d, keys)
}

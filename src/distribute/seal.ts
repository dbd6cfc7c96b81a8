/**
 * The seal of a sealed export (formats.md "Sealed export (air gap)"): an artifact of type
 * `application/vnd.aibox.seal.v1+json` whose one layer is a Sigstore bundle v0.3 (DSSE, in-toto
 * Statement v1) signed by the exporter. Its subjects are every manifest in the archive except the
 * seal itself — each policy artifact, every referrer (signatures, approvals, and theirs) and
 * cosign's legacy `.sig` manifests — and its predicate says, for each, what it is, which tags it
 * has in the archive, where a policy was exported from, who exported it and when.
 *
 * Import trusts nothing in the archive before this signature verifies, and then only what the
 * seal lists (import.ts compares the archive with it, both ways).
 */
import {AiboxError, VerificationError, errorMessage} from '../errors.js'
import {descriptorFor, fetchAll, verifyBytes} from '../oci/content.js'
import {packManifest, parseManifest} from '../oci/manifest.js'
import {ANNOTATION, EMPTY_DESCRIPTOR, EMPTY_JSON, MT} from '../oci/media.js'
import {isValidTag} from '../oci/reference.js'
import type {Descriptor, ReadOnlyTarget} from '../oci/target.js'
import {type SerializedBundle, signStatement, verifyBundle} from '../sign/bundle.js'
import type {LocalKeySigner} from '../sign/signer.js'
import type {SignerInfo, VerificationKey} from '../sign/types.js'
import {keyStatus} from '../trust/evaluate.js'
import type {TrustPolicy} from '../trust/policy.js'

/** The in-toto predicate type of a seal statement. */
export const SEAL_PREDICATE_TYPE = 'https://aibox.dev/attestations/seal/v1'
/** The tag the seal has in the archive (so skopeo and oras can address it). */
export const SEAL_TAG = 'aibox-seal'
/** Largest seal bundle read: a 100,000-manifest export fits with room to spare. */
export const MAX_SEAL_BYTES = 64 * 1024 * 1024

export type SealedKind = 'policy' | 'referrer' | 'legacy-signature'

/** One manifest of the export, as the seal lists it. */
export interface SealedArtifact {
  digest: string
  mediaType: string
  size: number
  artifactType?: string
  kind: SealedKind
  /** Its `org.opencontainers.image.ref.name`s in the archive (every manifest has at least one). */
  tags: string[]
  /** A referrer's subject, or the policy a legacy `.sig` manifest signs. */
  subject?: string
  /** A policy: the reference it was exported from (registry/repo:tag, …@digest or oci:DIR:tag). */
  source?: string
  /** A policy: every reference it was exported under, `source` first (when the export named it more than once). */
  sources?: string[]
  /** A policy: its signed metadata at export time (informative; import re-verifies the content). */
  name?: string
  version?: string
  tier?: string
  /** A policy: its signed metadata.tenant at export time (README "Tenants"); import checks it against the verified content. */
  tenant?: string
}

export interface SealPredicate {
  /** RFC 3339: SOURCE_DATE_EPOCH when set, else the time of the export. */
  exportedAt: string
  /** Who exported it (AIBOX_ACTOR, else user@host). */
  exporter: string
  /** `aibox-policy <version>`. */
  tool: string
  /** Every manifest in the archive but the seal, sorted by digest. */
  artifacts: SealedArtifact[]
}

export interface PackedSeal {
  bundle: SerializedBundle
  /** The bundle layer and the empty config, pushed before the manifest. */
  blobs: Array<{desc: Descriptor; bytes: Buffer}>
  manifest: {desc: Descriptor; bytes: Buffer}
}

/** Signs the seal statement and packs the seal artifact (deterministic for a deterministic signer). */
export async function packSeal(predicate: SealPredicate, signer: LocalKeySigner): Promise<PackedSeal> {
  const artifacts = [...predicate.artifacts].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
  if (artifacts.length === 0) throw new TypeError('a seal needs at least one artifact')
  const bundle = await signStatement(
    {
      subjects: artifacts.map((a) => ({digest: a.digest, name: a.source ?? a.tags[0] ?? a.digest})),
      predicateType: SEAL_PREDICATE_TYPE,
      predicate: {...predicate, artifacts} as unknown as Record<string, unknown>,
    },
    signer,
  )
  const layerBytes = Buffer.from(JSON.stringify(bundle), 'utf8')
  const layer = descriptorFor(MT.sigstoreBundleV03, layerBytes, {annotations: {[ANNOTATION.title]: 'seal.sigstore.json'}})
  const packed = packManifest({
    artifactType: MT.seal,
    layers: [layer],
    annotations: {
      [ANNOTATION.bundleContent]: 'dsse-envelope',
      [ANNOTATION.bundlePredicateType]: SEAL_PREDICATE_TYPE,
      [ANNOTATION.title]: 'aibox seal',
    },
    created: predicate.exportedAt,
  })
  return {
    bundle,
    blobs: [
      {desc: {...EMPTY_DESCRIPTOR}, bytes: EMPTY_JSON},
      {desc: layer, bytes: layerBytes},
    ],
    manifest: {desc: packed.descriptor, bytes: packed.bytes},
  }
}

// ---------------------------------------------------------------------------------------------
// Reading and verifying

export interface SealVerifyOptions {
  /** Keys that may have signed the seal. Exactly one of keys/trust. */
  keys?: VerificationKey[]
  /** A trust policy: the seal's key must be one of its keys, valid (not revoked, not expired) now. */
  trust?: TrustPolicy
  /** With a trust policy: the seal's key must also hold one of these roles. */
  roles?: string[]
  now?: Date
  signal?: AbortSignal
}

export interface VerifiedSeal {
  descriptor: Descriptor
  signer: SignerInfo
  /** The subjects' digests (`sha256:<hex>`), as signed. */
  subjects: string[]
  predicate: SealPredicate
}

function refuse(code: string, message: string, suggestions?: string[]): VerificationError {
  return new VerificationError(code, message, suggestions ? {suggestions} : {})
}

const SHA256_RE = /^sha256:[a-f0-9]{64}$/
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/
const KINDS: readonly SealedKind[] = ['policy', 'referrer', 'legacy-signature']

/** Checks the predicate's shape; every problem is collected and reported at once. */
export function parseSealPredicate(value: unknown, where: string): SealPredicate {
  const problems: string[] = []
  const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
  if (!obj(value)) throw refuse('SEAL_INVALID', `${where}: the seal's predicate is not a JSON object`)
  const str = (o: Record<string, unknown>, k: string, at: string, required: boolean): void => {
    if (o[k] === undefined) {
      if (required) problems.push(`${at}${k} is missing`)
    } else if (typeof o[k] !== 'string' || o[k] === '') problems.push(`${at}${k} is not a non-empty string`)
  }
  str(value, 'exportedAt', '', true)
  if (typeof value.exportedAt === 'string' && !RFC3339_RE.test(value.exportedAt)) problems.push('exportedAt is not an RFC 3339 date-time')
  str(value, 'exporter', '', true)
  str(value, 'tool', '', true)
  const arts = value.artifacts
  if (!Array.isArray(arts) || arts.length === 0) problems.push('artifacts is not a non-empty list')
  const seen = new Set<string>()
  const tagOwner = new Map<string, string>()
  for (const [i, a] of (Array.isArray(arts) ? arts : []).entries()) {
    const at = `artifacts[${i}].`
    if (!obj(a)) {
      problems.push(`artifacts[${i}] is not an object`)
      continue
    }
    if (typeof a.digest !== 'string' || !SHA256_RE.test(a.digest)) problems.push(`${at}digest is not sha256:<64 hex>`)
    else if (seen.has(a.digest)) problems.push(`${at}digest ${a.digest} is listed twice`)
    else seen.add(a.digest)
    str(a, 'mediaType', at, true)
    if (!Number.isSafeInteger(a.size) || (a.size as number) < 0) problems.push(`${at}size is not a non-negative integer`)
    str(a, 'artifactType', at, false)
    if (!KINDS.includes(a.kind as SealedKind)) problems.push(`${at}kind is not one of ${KINDS.join(', ')}`)
    if (!Array.isArray(a.tags) || a.tags.some((t) => typeof t !== 'string' || !isValidTag(t))) problems.push(`${at}tags is not a list of valid tags`)
    else {
      for (const t of a.tags as string[]) {
        const owner = tagOwner.get(t)
        if (owner !== undefined && owner !== a.digest) problems.push(`${at}tags: tag "${t}" is also given to ${owner}`)
        tagOwner.set(t, String(a.digest))
      }
    }
    if (a.subject !== undefined && (typeof a.subject !== 'string' || !SHA256_RE.test(a.subject))) problems.push(`${at}subject is not sha256:<64 hex>`)
    if ((a.kind === 'referrer' || a.kind === 'legacy-signature') && a.subject === undefined) problems.push(`${at}subject is missing`)
    for (const k of ['source', 'name', 'version', 'tier', 'tenant']) str(a, k, at, a.kind === 'policy' && k === 'source')
    if (a.sources !== undefined && (!Array.isArray(a.sources) || a.sources.length === 0 || a.sources[0] !== a.source || a.sources.some((x) => typeof x !== 'string' || x === ''))) {
      problems.push(`${at}sources is not a list of references starting with source`)
    }
  }
  if (problems.length > 0) {
    throw refuse('SEAL_INVALID', `${where}: the seal is signed but malformed:\n  ${problems.slice(0, 20).join('\n  ')}${problems.length > 20 ? `\n  … and ${problems.length - 20} more` : ''}`, [
      'the archive was not written by a compatible aibox export; ask its producer for a new one',
    ])
  }
  return value as unknown as SealPredicate
}

/**
 * Verifies the seal at `desc` in `store`: the manifest and bundle layer against their digests, the
 * DSSE signature with the given keys (or the trust policy's keys, valid now, with one of `roles`),
 * the predicate type and shape. Every failure is a VerificationError (exit 2).
 */
export async function verifySeal(store: ReadOnlyTarget, desc: Descriptor, options: SealVerifyOptions): Promise<VerifiedSeal> {
  const where = `seal ${desc.digest} in ${store.location}`
  const keys = options.trust ? options.trust.keys : (options.keys ?? [])
  if (keys.length === 0) throw refuse('NO_KEYS', 'no trusted key was given to verify the seal', ['pass --key PUB or --trust TRUST.yaml'])
  let bundleJson: unknown
  try {
    const bytes = await fetchAll({fetch: (d) => store.fetch(d, {signal: options.signal})}, desc)
    verifyBytes(desc, bytes, store.location)
    const parsed = parseManifest(bytes, desc, store.location)
    if (parsed.kind !== 'manifest') throw refuse('SEAL_INVALID', `${where} is an index, not a seal manifest`)
    const m = parsed.manifest
    if (m.artifactType !== MT.seal) throw refuse('SEAL_INVALID', `${where} has artifactType ${m.artifactType ?? '(none)'}, not ${MT.seal}`)
    if (m.layers.length !== 1 || !m.layers[0]!.mediaType.startsWith('application/vnd.dev.sigstore.bundle')) {
      throw refuse('SEAL_INVALID', `${where} must hold exactly one Sigstore bundle layer (it has ${m.layers.map((l) => l.mediaType).join(', ') || 'none'})`)
    }
    const layer = m.layers[0]!
    const data = await fetchAll({fetch: (d) => store.fetch(d, {signal: options.signal})}, layer, MAX_SEAL_BYTES)
    verifyBytes(layer, data, store.location)
    bundleJson = JSON.parse(data.toString('utf8'))
  } catch (err) {
    if (err instanceof VerificationError) throw err
    if (err instanceof SyntaxError) throw refuse('SEAL_INVALID', `${where}: its bundle layer is not JSON`)
    if (err instanceof AiboxError && err.exit !== 2 && err.code !== 'MANIFEST_TOO_LARGE') throw err
    throw refuse(err instanceof AiboxError ? err.code : 'SEAL_INVALID', `${where}: ${errorMessage(err)}`)
  }
  let verified
  try {
    verified = verifyBundle(bundleJson, {keys, source: where})
  } catch (err) {
    if (!(err instanceof VerificationError)) throw err
    throw new VerificationError(err.code === 'SIGNATURE_INVALID' ? 'SEAL_SIGNATURE_INVALID' : err.code, err.message, {
      cause: err,
      suggestions: ["the archive was changed after it was sealed, or sealed with a key you do not trust: check the exporter's public key (--key) or your trust policy"],
    })
  }
  if (verified.predicateType !== SEAL_PREDICATE_TYPE || !verified.statement) {
    throw refuse('SEAL_INVALID', `${where}: the signed statement has predicateType ${verified.predicateType ?? '(none)'}, not ${SEAL_PREDICATE_TYPE}`)
  }
  const signer = verified.signers[0]!
  if (options.trust) {
    const key = options.trust.keys.find((k) => k.keyId === signer.keyId)!
    const status = keyStatus(key, options.now ?? new Date())
    if (!status.ok) throw refuse('SEAL_KEY_REFUSED', `${where}: ${status.message}`, [`the trust policy '${options.trust.file}' no longer accepts this exporter's key; ask for a new export`])
    const roles = options.roles ?? []
    if (roles.length > 0 && !roles.some((r) => key.roles.includes(r))) {
      throw refuse('SEAL_ROLE', `${where}: signed by key '${key.name}' (${key.keyId}), which holds ${key.roles.join(', ')}, not ${roles.join(' or ')}`, [
        `seals must be signed by a key with role ${roles.join(' or ')} in '${options.trust.file}'`,
      ])
    }
  }
  const predicate = parseSealPredicate(verified.statement.predicate, where)
  const subjects: string[] = []
  for (const s of verified.statement.subject) {
    const hex = s.digest.sha256
    if (typeof hex !== 'string' || !/^[a-f0-9]{64}$/.test(hex)) throw refuse('SEAL_INVALID', `${where}: a subject has no sha256 digest`)
    subjects.push(`sha256:${hex}`)
  }
  const listed = new Set(predicate.artifacts.map((a) => a.digest))
  const subjectSet = new Set(subjects)
  if (subjectSet.size !== subjects.length || subjectSet.size !== listed.size || [...listed].some((d) => !subjectSet.has(d))) {
    throw refuse('SEAL_INVALID', `${where}: the statement's subjects and the predicate's artifacts differ`)
  }
  return {descriptor: desc, signer, subjects: subjects.sort(), predicate}
}

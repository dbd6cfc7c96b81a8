/**
 * Sigstore bundles (protobuf-specs sigstore_bundle.proto), signed and verified fully offline.
 *
 * Signing uses `@sigstore/sign`'s `DSSEBundleBuilder` / `MessageSignatureBundleBuilder` with a
 * local-key `Signer` and `witnesses: []` (toolchain.md §C), then normalises the result to what
 * cosign v3 writes for `--key` (cosign-formats.md §b): v0.3 media type, `publicKey.hint` =
 * base64(sha256(SPKI)), exactly one DSSE signature with no keyid (or the SSH fingerprint), no
 * empty tlog/timestamp fields.
 *
 * Verification uses `@sigstore/verify` with a trust material that holds only the caller's keys
 * and thresholds of 0 (toolchain.md §D). Transparency-log entries and timestamps are not
 * verified (there is no trusted root offline); they are counted and reported as ignored. Two
 * gaps of @sigstore/verify are closed here: it never compares a message signature's digest with
 * the artifact, and it cannot verify Ed25519 message signatures (it passes 'sha256' to OpenSSL);
 * both are done with node:crypto.
 */
import {X509Certificate, createHash, verify as cryptoVerify} from 'node:crypto'

import {
  BUNDLE_V01_MEDIA_TYPE,
  BUNDLE_V02_MEDIA_TYPE,
  BUNDLE_V03_LEGACY_MEDIA_TYPE,
  BUNDLE_V03_MEDIA_TYPE,
  type Bundle,
  type SerializedBundle,
  bundleFromJSON,
  bundleToJSON,
} from '@sigstore/bundle'
import {Verifier, toSignedEntity, toTrustMaterial} from '@sigstore/verify'

import {AiboxError, VerificationError, errorMessage} from '../errors.js'
import {decodeBase64} from './encoding.js'
import {type KeylessVerified, verifyKeylessBundle} from './keyless-trust.js'
import type {PrivateKeyInfo} from './keys.js'
import {bindPayload, keysMissing, orderByHint, signatureMismatch} from './raw.js'
import {LocalKeySigner} from './signer.js'
import {
  COSIGN_SIGN_PREDICATE_TYPE,
  IN_TOTO_PAYLOAD_TYPE,
  STATEMENT_V1,
  type StatementInput,
  buildStatement,
  statementBytes,
} from './statement.js'
import {type BundleDetails, type SignatureVerifyOptions, type VerificationKey, type VerifiedSignature, signerInfo} from './types.js'
import {shownValue} from '../util/text.js'

/**
 * `@sigstore/sign` loaded on first use: it pulls in an HTTP stack (make-fetch-happen, cacache)
 * that costs every other command ~0.3 s of start-up, and only signing needs it.
 */
const sigstoreSign = () => import('@sigstore/sign')

export {BUNDLE_V03_MEDIA_TYPE}
export type {SerializedBundle}

const MEDIA_TYPE_VERSIONS: Record<string, string> = {
  [BUNDLE_V01_MEDIA_TYPE]: '0.1',
  [BUNDLE_V02_MEDIA_TYPE]: '0.2',
  [BUNDLE_V03_LEGACY_MEDIA_TYPE]: '0.3',
  [BUNDLE_V03_MEDIA_TYPE]: '0.3',
}

export interface BundleSignOptions {
  /**
   * The DSSE signature's keyid: `none` (omitted, what cosign writes; default) or `fingerprint`
   * (the SSH fingerprint; sigstore-go refuses any other non-empty keyid, cosign-formats.md §b.3).
   */
  keyid?: 'none' | 'fingerprint'
}

function signerFor(key: PrivateKeyInfo | LocalKeySigner): LocalKeySigner {
  return key instanceof LocalKeySigner ? key : new LocalKeySigner(key)
}

/** Signs any payload into a DSSE bundle v0.3. */
export async function signDsseBundle(
  payload: Uint8Array,
  payloadType: string,
  key: PrivateKeyInfo | LocalKeySigner,
  options: BundleSignOptions = {},
): Promise<SerializedBundle> {
  const signer = signerFor(key)
  const {DSSEBundleBuilder} = await sigstoreSign()
  const bundle = await new DSSEBundleBuilder({signer, witnesses: []}).create({data: Buffer.from(payload), type: payloadType})
  const json = normalise(bundleToJSON(bundle))
  const sig = json.dsseEnvelope!.signatures[0] as {sig: string; keyid?: string}
  // DSSEBundleBuilder copies the signer hint into the keyid; sigstore-go only accepts "" or the SSH fingerprint.
  if (options.keyid === 'fingerprint') sig.keyid = signer.key.public.fingerprint
  else delete sig.keyid
  return json
}

/**
 * Signs an in-toto Statement v1 into a DSSE bundle v0.3: the container of every signature,
 * approval and seal (formats.md "Signatures and approvals"). With the cosign sign predicate and
 * `{}` predicate this is exactly what `cosign verify --key k.pub --insecure-ignore-tlog` accepts.
 */
export async function signStatement(input: StatementInput, key: PrivateKeyInfo | LocalKeySigner, options: BundleSignOptions = {}): Promise<SerializedBundle> {
  const signer = signerFor(key)
  const json = await signDsseBundle(statementBytes(buildStatement(input)), IN_TOTO_PAYLOAD_TYPE, signer, options)
  assertCosignCompatible(json, signer.key.public.fingerprint)
  return json
}

/** A plain signature over some subjects: cosign's sign predicate with an empty predicate. */
export async function signSubjects(subjects: StatementInput['subjects'], key: PrivateKeyInfo | LocalKeySigner, options: BundleSignOptions = {}): Promise<SerializedBundle> {
  return signStatement({subjects, predicateType: COSIGN_SIGN_PREDICATE_TYPE, predicate: {}}, key, options)
}

/**
 * A message-signature bundle v0.3 over `data` (what `cosign sign-blob --bundle` writes).
 * MessageSignatureBundleBuilder labels every bundle v0.2 (toolchain.md §C); a public-key
 * message-signature bundle is valid v0.3, so it is relabelled.
 */
export async function signMessageBundle(data: Uint8Array, key: PrivateKeyInfo | LocalKeySigner): Promise<SerializedBundle> {
  const {MessageSignatureBundleBuilder} = await sigstoreSign()
  const bundle = await new MessageSignatureBundleBuilder({signer: signerFor(key), witnesses: []}).create({data: Buffer.from(data)})
  const json = normalise(bundleToJSON(bundle))
  json.mediaType = BUNDLE_V03_MEDIA_TYPE
  bundleFromJSON(json)
  return json
}

/** Drops empty tlogEntries / timestampVerificationData, which carry nothing and which cosign does not write. */
function normalise(json: SerializedBundle): SerializedBundle {
  const vm = json.verificationMaterial as Record<string, unknown>
  if (Array.isArray(vm.tlogEntries) && vm.tlogEntries.length === 0) delete vm.tlogEntries
  const tvd = vm.timestampVerificationData as {rfc3161Timestamps?: unknown[]} | undefined
  if (tvd && (tvd.rfc3161Timestamps ?? []).length === 0) delete vm.timestampVerificationData
  return json
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Parses bundle JSON (text or value) with strict base64, or throws BUNDLE_INVALID (exit 2). */
export function parseBundle(doc: unknown, source: string): {bundle: Bundle; json: Record<string, unknown>; version: string} {
  const bad = (msg: string) =>
    new VerificationError('BUNDLE_INVALID', `${source}: invalid Sigstore bundle: ${msg}`, {
      suggestions: ['the signature file may be truncated or edited; fetch or re-create it'],
    })
  let json = doc
  if (typeof doc === 'string' || Buffer.isBuffer(doc)) {
    try {
      json = JSON.parse(doc.toString())
    } catch {
      throw bad('not JSON')
    }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('not a JSON object')
  const obj = json as Record<string, unknown>
  const version = typeof obj.mediaType === 'string' ? MEDIA_TYPE_VERSIONS[obj.mediaType] : undefined
  if (!version) throw bad(`unsupported mediaType ${shownValue(obj.mediaType)} (supported: v0.1, v0.2, v0.3)`)
  // A bundle's envelope holds exactly one signature (sigstore-go pkg/verify/signature.go:226); say so plainly.
  const sigs = (obj.dsseEnvelope as {signatures?: unknown} | undefined)?.signatures
  if (Array.isArray(sigs) && sigs.length !== 1) throw bad(`a Sigstore bundle's DSSE envelope must hold exactly one signature, found ${sigs.length}`)
  for (const [pointer, value] of base64Fields(obj)) {
    if (typeof value !== 'string' || !decodeBase64(value)) throw bad(`${pointer} is not base64`)
  }
  let bundle: Bundle
  try {
    bundle = bundleFromJSON(obj)
  } catch (err) {
    const fields = (err as {fields?: string[]}).fields
    throw bad(fields?.length ? `missing or invalid ${fields.join(', ')}` : errorMessage(err))
  }
  return {bundle, json: obj, version}
}

/** The base64 fields whose corruption Buffer.from would silently hide. */
function base64Fields(b: Record<string, unknown>): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = []
  const get = (o: unknown, k: string) => (typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[k] : undefined)
  const env = get(b, 'dsseEnvelope')
  if (env !== undefined) {
    out.push(['dsseEnvelope.payload', get(env, 'payload')])
    const sigs = get(env, 'signatures')
    if (Array.isArray(sigs)) sigs.forEach((s, i) => out.push([`dsseEnvelope.signatures[${i}].sig`, get(s, 'sig')]))
  }
  const ms = get(b, 'messageSignature')
  if (ms !== undefined) {
    out.push(['messageSignature.signature', get(ms, 'signature')])
    out.push(['messageSignature.messageDigest.digest', get(get(ms, 'messageDigest'), 'digest')])
  }
  const vm = get(b, 'verificationMaterial')
  const cert = get(vm, 'certificate')
  if (cert !== undefined) out.push(['verificationMaterial.certificate.rawBytes', get(cert, 'rawBytes')])
  const chain = get(get(vm, 'x509CertificateChain'), 'certificates')
  if (Array.isArray(chain)) chain.forEach((c, i) => out.push([`verificationMaterial.x509CertificateChain.certificates[${i}].rawBytes`, get(c, 'rawBytes')]))
  return out
}

/** The public key of a bundle's leaf certificate (for `certificate` / `x509CertificateChain` bundles), as SPKI DER. */
export function bundleCertificate(bundle: Bundle): X509Certificate | undefined {
  const c = bundle.verificationMaterial.content
  const raw = c.$case === 'certificate' ? c.certificate.rawBytes : c.$case === 'x509CertificateChain' ? c.x509CertificateChain.certificates[0]?.rawBytes : undefined
  if (!raw) return undefined
  try {
    return new X509Certificate(raw)
  } catch (err) {
    throw new VerificationError('BUNDLE_INVALID', `the bundle's certificate cannot be parsed: ${errorMessage(err)}`)
  }
}

const EMPTY_TRUSTED_ROOT = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
}

const HASH_ALGORITHMS: Record<number, string> = {1: 'sha256', 2: 'sha384', 3: 'sha512'}

/** One signature check with one key through @sigstore/verify (or node:crypto for Ed25519 message signatures). */
function signatureVerifies(bundle: Bundle, key: VerificationKey, artifact: Uint8Array | undefined): boolean {
  const content = bundle.content
  if (content.$case === 'messageSignature' && key.algorithm === 'ed25519') {
    // @sigstore/verify calls crypto.verify('sha256', …) which OpenSSL refuses for Ed25519 (toolchain.md §D).
    try {
      return cryptoVerify(null, artifact!, key.keyObject, content.messageSignature.signature)
    } catch {
      return false
    }
  }
  // Key pinning: the caller's key stands in for whatever key material the bundle names, and
  // tlog entries and timestamps are set aside (they cannot be checked without a trusted root).
  const stripped: Bundle = {
    ...bundle,
    verificationMaterial: {content: {$case: 'publicKey', publicKey: {hint: 'aibox'}}, tlogEntries: [], timestampVerificationData: undefined},
  } as Bundle
  const trust = toTrustMaterial(EMPTY_TRUSTED_ROOT as never, () => ({publicKey: key.keyObject, validFor: () => true}))
  try {
    new Verifier(trust, {tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0}).verify(toSignedEntity(stripped, artifact ? Buffer.from(artifact) : undefined))
    return true
  } catch (err) {
    if ((err as {code?: string}).code === 'SIGNATURE_ERROR') return false
    throw new VerificationError('BUNDLE_INVALID', `bundle verification failed: ${errorMessage(err)}`, {cause: err})
  }
}

/**
 * Verifies a Sigstore bundle (v0.1–v0.3; DSSE or message signature; public key or
 * certificate) against the given keys, offline. For DSSE the in-toto statement is parsed and
 * its subject bound to the artifact (`options.artifact` / `options.subjectDigests`); a message
 * signature needs the artifact. Throws VerificationError (exit 2) with a precise code.
 */
export function verifyBundle(doc: unknown, options: SignatureVerifyOptions): VerifiedSignature {
  const source = options.source ?? 'bundle'
  const {bundle, version} = parseBundle(doc, source)
  if (options.keys.length === 0 && !options.keyless) throw keysMissing(source)
  const warnings: string[] = []
  const vm = bundle.verificationMaterial
  const present = {
    tlogEntries: vm.tlogEntries.length,
    timestamps: vm.timestampVerificationData?.rfc3161Timestamps.length ?? 0,
  }
  const details: BundleDetails = {
    mediaType: bundle.mediaType,
    version,
    content: bundle.content.$case === 'dsseEnvelope' ? 'dsse' : 'message-signature',
    keyMaterial: vm.content.$case,
    ignored: present,
  }

  // Which keys may have signed: the certificate's key if there is one, else every key, the hinted one first.
  // A certificate whose key is not trusted directly is verified as a keyless signature when the
  // caller has keyless trust material (verifyKeylessBundle), after the cheap binding checks below.
  let candidates: VerificationKey[] | undefined
  let keyless: KeylessVerified | undefined
  const cert = bundleCertificate(bundle)
  if (cert) {
    const spki = cert.publicKey.export({format: 'der', type: 'spki'})
    const pinned = options.keys.filter((k) => k.spki.equals(spki))
    if (pinned.length > 0) {
      candidates = pinned
      warnings.push('the certificate chain and validity were not checked: the certificate only carries a key that you trust directly')
    } else if (!options.keyless) {
      throw new VerificationError('KEY_MISMATCH', `${source}: the bundle is signed with the key of certificate "${(cert.subject ?? '').replace(/\n/g, ', ') || cert.subjectAltName?.replace(/^(URI|email):/, '') || cert.serialNumber}", which is not one of the trusted keys`, {
        suggestions: ['pass the public key of that certificate with --key, or add it to the trust policy', 'a keyless signature is verified with a trust policy that has keyless trust material and identities'],
      })
    }
  } else {
    if (options.keys.length === 0) {
      throw new VerificationError('KEY_MISMATCH', `${source}: the bundle is signed with a key, but the trust policy has no keys (only keyless identities)`, {
        suggestions: ["add the signer's public key under keys: in the trust policy"],
      })
    }
    candidates = orderByHint(options.keys, vm.content.$case === 'publicKey' ? vm.content.publicKey.hint : undefined)
  }
  const keylessCheck = (artifact: Uint8Array | undefined): VerificationKey[] => {
    if (candidates) return candidates
    keyless = verifyKeylessBundle(bundle, options.keyless!, {artifact, source})
    details.ignored = {tlogEntries: 0, timestamps: 0}
    details.keyless = keyless.verified
    candidates = [keyless.key]
    return candidates
  }
  const signer = (key: VerificationKey) => signerInfo(key, keyless?.identity)
  const noteIgnored = () => {
    if (!keyless && present.tlogEntries + present.timestamps > 0) {
      warnings.unshift(`${present.tlogEntries} transparency-log entr${present.tlogEntries === 1 ? 'y' : 'ies'} and ${present.timestamps} timestamp(s) not verified (offline key verification, like cosign --insecure-ignore-tlog)`)
    }
  }

  if (bundle.content.$case === 'messageSignature') {
    if (!options.artifact) {
      throw new VerificationError('ARTIFACT_REQUIRED', `${source}: a message-signature bundle can only be verified together with the signed file`)
    }
    const md = bundle.content.messageSignature.messageDigest
    const alg = HASH_ALGORITHMS[md?.algorithm ?? 1]
    if (!alg) throw new VerificationError('BUNDLE_INVALID', `${source}: unsupported message digest algorithm ${md?.algorithm}`)
    const actual = createHash(alg).update(options.artifact).digest()
    if (md && !actual.equals(Buffer.from(md.digest))) {
      throw new VerificationError(
        'DIGEST_MISMATCH',
        `${source}: the bundle's message digest ${alg}:${Buffer.from(md.digest).toString('hex')} is not the digest of ${options.artifactName ?? 'the file'} (${alg}:${actual.toString('hex')})`,
        {suggestions: ['this bundle signs a different file']},
      )
    }
    const key = keylessCheck(options.artifact).find((k) => signatureVerifies(bundle, k, options.artifact))
    if (!key) throw signatureMismatch(source, candidates!, `message signature over ${options.artifactName ?? 'the file'}`)
    noteIgnored()
    return {format: 'sigstore-bundle', source, signers: [signer(key)], bundle: details, binding: {kind: 'message-digest', digest: `${alg}:${actual.toString('hex')}`}, warnings}
  }

  const env = bundle.content.dsseEnvelope
  const key = keylessCheck(undefined).find((k) => signatureVerifies(bundle, k, undefined))
  if (!key) throw signatureMismatch(source, candidates!, 'DSSE signature')
  noteIgnored()
  const keyid = env.signatures[0].keyid
  if (keyid && keyid !== key.fingerprint) {
    warnings.push(`the DSSE keyid ${shownValue(keyid)} is neither empty nor the key's SSH fingerprint ${key.fingerprint}: cosign and sigstore-go refuse such bundles`)
  }
  const bound = bindPayload(env.payloadType, Buffer.from(env.payload), options, source, warnings)
  return {
    format: 'sigstore-bundle',
    source,
    signers: [signer(key)],
    bundle: details,
    payloadType: env.payloadType,
    ...(bound.statement ? {statement: bound.statement, predicateType: bound.statement.predicateType} : {}),
    binding: bound.binding,
    warnings,
  }
}

// ---------------------------------------------------------------------------------------------
// cosign compatibility (cosign-formats.md, "What we must produce")

const STATEMENT_FIELDS = new Set(['_type', 'subject', 'predicateType', 'predicate'])
const DESCRIPTOR_FIELDS = new Set(['name', 'uri', 'digest', 'content', 'downloadLocation', 'mediaType', 'annotations'])

/**
 * Every reason `cosign verify --key k.pub --insecure-ignore-tlog` (sigstore-go, strict
 * protojson) would refuse this bundle as an image signature; [] when it is acceptable. We run
 * it on every bundle we write and tests assert it.
 */
export function cosignCompatibilityProblems(json: SerializedBundle | Record<string, unknown>, expected: {fingerprint?: string} = {}): string[] {
  const problems: string[] = []
  const unknown = (obj: unknown, allowed: string[], where: string) => {
    if (typeof obj !== 'object' || obj === null) return problems.push(`${where} is not an object`)
    for (const k of Object.keys(obj)) if (!allowed.includes(k)) problems.push(`${where} has a field unknown to protojson: ${k}`)
  }
  const b = json as Record<string, any>
  if (b.mediaType !== BUNDLE_V03_MEDIA_TYPE) problems.push(`mediaType is ${shownValue(b.mediaType)}, not ${BUNDLE_V03_MEDIA_TYPE}`)
  unknown(b, ['mediaType', 'verificationMaterial', 'dsseEnvelope', 'messageSignature'], 'bundle')
  unknown(b.verificationMaterial, ['publicKey', 'certificate', 'tlogEntries', 'timestampVerificationData'], 'verificationMaterial')
  if (b.verificationMaterial?.publicKey) unknown(b.verificationMaterial.publicKey, ['hint'], 'verificationMaterial.publicKey')
  else if (!b.verificationMaterial?.certificate) problems.push('verificationMaterial has neither publicKey nor certificate')
  if (!b.dsseEnvelope) {
    problems.push('no dsseEnvelope (cosign refuses message-signature bundles for images: "bundle does not contain a DSSE envelope")')
    return problems
  }
  const env = b.dsseEnvelope
  unknown(env, ['payload', 'payloadType', 'signatures'], 'dsseEnvelope')
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) problems.push(`payloadType is ${shownValue(env.payloadType)}, not ${IN_TOTO_PAYLOAD_TYPE}`)
  if (!Array.isArray(env.signatures) || env.signatures.length !== 1) problems.push(`the envelope must hold exactly 1 signature, has ${env.signatures?.length ?? 0}`)
  for (const [i, s] of (env.signatures ?? []).entries()) {
    unknown(s, ['sig', 'keyid'], `dsseEnvelope.signatures[${i}]`)
    const keyid = (s as {keyid?: string}).keyid
    if (keyid !== undefined && keyid !== '' && !(expected.fingerprint ? keyid === expected.fingerprint : keyid.startsWith('SHA256:'))) {
      problems.push(`dsseEnvelope.signatures[${i}].keyid ${shownValue(keyid)} is neither empty nor the key's SSH fingerprint`)
    }
  }
  let statement: Record<string, any>
  try {
    statement = JSON.parse(Buffer.from(env.payload ?? '', 'base64').toString('utf8'))
  } catch {
    problems.push('the payload is not JSON')
    return problems
  }
  unknown(statement, [...STATEMENT_FIELDS], 'statement')
  if (statement._type !== STATEMENT_V1) problems.push(`statement _type is ${shownValue(statement._type)}, not ${STATEMENT_V1}`)
  if (typeof statement.predicateType !== 'string') problems.push('statement has no predicateType')
  if (statement.predicate !== undefined && (typeof statement.predicate !== 'object' || statement.predicate === null || Array.isArray(statement.predicate))) {
    problems.push('statement predicate is not a JSON object')
  }
  if (!Array.isArray(statement.subject) || statement.subject.length === 0) problems.push('statement has no subject')
  for (const [i, s] of (Array.isArray(statement.subject) ? statement.subject : []).entries()) {
    unknown(s, [...DESCRIPTOR_FIELDS], `statement.subject[${i}]`)
    if (typeof s?.digest?.sha256 !== 'string') problems.push(`statement.subject[${i}] has no sha256 digest`)
  }
  return problems
}

/** Throws if a bundle we are about to write would be refused by cosign (a bug, never user input). */
export function assertCosignCompatible(json: SerializedBundle, fingerprint?: string): void {
  const problems = cosignCompatibilityProblems(json, {fingerprint})
  if (problems.length > 0) throw new AiboxError('INTERNAL', `refusing to write a bundle cosign would not accept: ${problems.join('; ')}`)
}

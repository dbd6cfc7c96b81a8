/**
 * cosign's legacy container-signature formats (cosign-formats.md §a, §e): the simple-signing
 * payload, containers/image's `sigstore-json` signature files, cosign's `LocalSignedPayload`
 * (`sign-blob --bundle` before v3), and the Rekor SET in the `dev.sigstore.cosign/bundle`
 * annotation. Signatures are always checked over the exact payload bytes, never re-serialised.
 */
import {createHash, verify as cryptoVerify} from 'node:crypto'

import canonicalize from 'canonicalize'

import {VerificationError} from '../errors.js'
import {decodeBase64} from './encoding.js'
import type {PublicKeyInfo} from './keys.js'
import {signatureMismatch, verifyRawWithKey} from './raw.js'
import {type SignatureVerifyOptions, type VerifiedSignature, signerInfo} from './types.js'

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json'
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'
export const REKOR_BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle'
const SIMPLE_SIGNING_TYPE = 'cosign container image signature'

/**
 * The simple-signing payload cosign signs for an image, byte-identical to Go `encoding/json`
 * of sigstore's `payload.Cosign` (payload.go): fixed field order, compact, `optional` null
 * without annotations (sorted keys otherwise), `<>&` escaped as Go does.
 */
export function simpleSigningPayload(dockerReference: string, manifestDigest: string, annotations?: Record<string, string>): Buffer {
  const optional = annotations && Object.keys(annotations).length > 0 ? Object.fromEntries(Object.keys(annotations).sort().map((k) => [k, annotations[k]])) : null
  const json = JSON.stringify({
    critical: {identity: {'docker-reference': dockerReference}, image: {'docker-manifest-digest': manifestDigest}, type: SIMPLE_SIGNING_TYPE},
    optional,
  })
  return Buffer.from(json.replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026'), 'utf8')
}

/** The manifest digest a simple-signing payload claims (`critical.image.docker-manifest-digest`, any case, as Go decodes it). */
export function simpleSigningClaim(payload: Uint8Array, source: string): string {
  let doc: any
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'))
  } catch {
    throw new VerificationError('PAYLOAD_INVALID', `${source}: the simple-signing payload is not JSON`)
  }
  const critical = findKey(doc, 'critical')
  const image = findKey(critical, 'image')
  const digest = findKey(image, 'docker-manifest-digest')
  if (typeof digest !== 'string') throw new VerificationError('PAYLOAD_INVALID', `${source}: the simple-signing payload has no critical.image.docker-manifest-digest`)
  return digest
}

function findKey(obj: unknown, name: string): unknown {
  if (typeof obj !== 'object' || obj === null) return undefined
  const key = Object.keys(obj).find((k) => k.toLowerCase() === name)
  return key === undefined ? undefined : (obj as Record<string, unknown>)[key]
}

export interface SimpleSignature {
  payload: Buffer
  /** The decoded `dev.cosignproject.cosign/signature` annotation. */
  signature: Buffer
  annotations: Record<string, string>
}

const CONTAINERS_PREFIX = Buffer.concat([Buffer.from([0]), Buffer.from('sigstore-json\n')])

/** True for a containers/image `dir:` signature file holding a cosign signature (`\0sigstore-json\n{…}`). */
export function isContainersSigstoreSignature(bytes: Uint8Array): boolean {
  return Buffer.from(bytes).subarray(0, CONTAINERS_PREFIX.length).equals(CONTAINERS_PREFIX)
}

/** Parses a containers/image `sigstore-json` signature: `{"mimeType","payload","annotations"}`. */
export function parseContainersSigstoreSignature(bytes: Uint8Array, source: string): SimpleSignature {
  const bad = (msg: string) => new VerificationError('SIGNATURE_MALFORMED', `${source}: invalid sigstore-json signature: ${msg}`)
  let doc: any
  try {
    doc = JSON.parse(Buffer.from(bytes).subarray(CONTAINERS_PREFIX.length).toString('utf8'))
  } catch {
    throw bad('not JSON after the header')
  }
  if (doc?.mimeType !== SIMPLE_SIGNING_MEDIA_TYPE) throw bad(`mimeType ${JSON.stringify(doc?.mimeType)} is not ${SIMPLE_SIGNING_MEDIA_TYPE}`)
  const payload = typeof doc.payload === 'string' ? decodeBase64(doc.payload) : undefined
  if (!payload) throw bad('"payload" is missing or not base64')
  const annotations = (doc.annotations ?? {}) as Record<string, string>
  const sig = typeof annotations[SIGNATURE_ANNOTATION] === 'string' ? decodeBase64(annotations[SIGNATURE_ANNOTATION]) : undefined
  if (!sig) throw bad(`annotation ${SIGNATURE_ANNOTATION} is missing or not base64`)
  return {payload, signature: sig, annotations}
}

/**
 * Verifies a cosign simple signature like `cosign verify --key … --insecure-ignore-tlog` does
 * for one layer (§a steps 3-4): the signature over the payload bytes, then the claim: the
 * payload's docker-manifest-digest must equal `manifestDigest` exactly. Without a manifest
 * digest, the artifact may be the payload itself.
 */
export function verifySimpleSigning(sig: SimpleSignature, options: SignatureVerifyOptions & {manifestDigest?: string}): VerifiedSignature {
  const source = options.source ?? 'signature'
  const key = options.keys.find((k) => verifyRawWithKey(sig.payload, sig.signature, k))
  if (!key) throw signatureMismatch(source, options.keys, 'simple-signing signature')
  const warnings: string[] = []
  const claimed = simpleSigningClaim(sig.payload, source)
  let manifestDigest = options.manifestDigest
  if (!manifestDigest && options.artifact) {
    if (Buffer.from(options.artifact).equals(sig.payload)) {
      return {format: 'simple-signing', source, signers: [signerInfo(key)], payloadType: SIMPLE_SIGNING_MEDIA_TYPE, binding: {kind: 'payload'}, warnings}
    }
    manifestDigest = `sha256:${createHash('sha256').update(options.artifact).digest('hex')}`
  }
  if (!manifestDigest) {
    warnings.push('no manifest given: the docker-manifest-digest claim was not checked')
    return {format: 'simple-signing', source, signers: [signerInfo(key)], payloadType: SIMPLE_SIGNING_MEDIA_TYPE, binding: {kind: 'none'}, warnings}
  }
  if (claimed !== manifestDigest) {
    throw new VerificationError(
      'CLAIM_MISMATCH',
      `${source}: the signature is valid, but it claims manifest ${claimed}, not ${options.artifactName ?? 'the manifest'} (${manifestDigest})`,
      {suggestions: ['this signature belongs to a different image manifest']},
    )
  }
  return {format: 'simple-signing', source, signers: [signerInfo(key)], payloadType: SIMPLE_SIGNING_MEDIA_TYPE, binding: {kind: 'claim', digest: claimed}, warnings}
}

/** cosign's legacy `LocalSignedPayload` (`{"base64Signature","cert","rekorBundle"}`), fetch.go:48-52. */
export interface LocalSignedPayload {
  signature: Buffer
  /** PEM text of the certificate or public key (the JSON holds base64 of the PEM). */
  certPem?: string
  hasRekorBundle: boolean
}

export function parseLocalSignedPayload(doc: Record<string, unknown>, source: string): LocalSignedPayload {
  const sig = typeof doc.base64Signature === 'string' ? decodeBase64(doc.base64Signature, {ignoreWhitespace: true}) : undefined
  if (!sig || sig.length === 0) throw new VerificationError('SIGNATURE_MALFORMED', `${source}: "base64Signature" is missing or not base64`)
  let certPem: string | undefined
  if (typeof doc.cert === 'string' && doc.cert !== '') {
    const pem = decodeBase64(doc.cert, {ignoreWhitespace: true})
    if (!pem) throw new VerificationError('SIGNATURE_MALFORMED', `${source}: "cert" is not base64`)
    certPem = pem.toString('utf8')
  }
  return {signature: sig, ...(certPem ? {certPem} : {}), hasRekorBundle: doc.rekorBundle !== undefined && doc.rekorBundle !== null}
}

export interface RekorSetResult {
  logIndex: number
  integratedTime: number
  logID: string
}

/**
 * Verifies the Rekor SignedEntryTimestamp of a `dev.sigstore.cosign/bundle` annotation
 * (§a "bundle value"): an ECDSA signature by the log's key over SHA-256 of the RFC 8785 JSON
 * of `{body, integratedTime, logID, logIndex}`; the log is picked by logID = hex sha256 of its
 * key. With `payload`, the hashedrekord body must record sha256(payload). Offline: the caller
 * supplies the Rekor public keys.
 */
export function verifyRekorSet(annotation: string | Record<string, unknown>, rekorKeys: PublicKeyInfo[], options: {payload?: Uint8Array} = {}): RekorSetResult {
  const bad = (msg: string) => new VerificationError('REKOR_SET_INVALID', `Rekor bundle: ${msg}`)
  let doc: any = annotation
  if (typeof annotation === 'string') {
    try {
      doc = JSON.parse(annotation)
    } catch {
      throw bad('not JSON')
    }
  }
  const p = doc?.Payload
  if (typeof doc?.SignedEntryTimestamp !== 'string' || typeof p !== 'object' || p === null) throw bad('missing SignedEntryTimestamp or Payload')
  const set = decodeBase64(doc.SignedEntryTimestamp)
  if (!set) throw bad('SignedEntryTimestamp is not base64')
  const key = rekorKeys.find((k) => createHash('sha256').update(k.spki).digest('hex') === p.logID)
  if (!key) throw bad(`no Rekor key with logID ${p.logID}`)
  const signed = canonicalize({body: p.body, integratedTime: p.integratedTime, logID: p.logID, logIndex: p.logIndex})
  if (signed === undefined) throw bad('Payload cannot be canonicalised')
  let ok = false
  try {
    ok = cryptoVerify('sha256', Buffer.from(signed, 'utf8'), key.keyObject, set)
  } catch {
    ok = false
  }
  if (!ok) throw bad('the SignedEntryTimestamp does not verify with the Rekor key')
  if (options.payload) {
    let body: any
    try {
      body = JSON.parse(decodeBase64(String(p.body))?.toString('utf8') ?? '')
    } catch {
      throw bad('the entry body is not base64 JSON')
    }
    const want = createHash('sha256').update(options.payload).digest('hex')
    const got = body?.spec?.data?.hash?.value
    if (body?.kind !== 'hashedrekord' || got !== want) throw bad(`the log entry records hash ${got ?? '(none)'}, not sha256 ${want} of the payload`)
  }
  return {logIndex: Number(p.logIndex), integratedTime: Number(p.integratedTime), logID: String(p.logID)}
}

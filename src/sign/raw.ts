/**
 * Signatures over raw bytes (cosign-formats.md §e): what `cosign sign-blob` writes (base64 DER
 * over the blob, with or without a trailing newline, or raw bytes with `--b64=false`) and what a
 * simple-signing layer carries (over the payload bytes). Also the statement/subject binding shared
 * by DSSE envelopes and bundles.
 */
import {createHash, verify as cryptoVerify} from 'node:crypto'

import {VerificationError} from '../errors.js'
import {decodeBase64, encodeBase64} from './encoding.js'
import {type PrivateKeyInfo, signatureDigest} from './keys.js'
import {LocalKeySigner} from './signer.js'
import {IN_TOTO_PAYLOAD_TYPE, type Statement, matchSubject, parseStatement, subjectDigests} from './statement.js'
import {type SignatureVerifyOptions, type VerificationKey, type VerifiedSignature, signerInfo} from './types.js'

/** Signs the bytes themselves (ECDSA/RSA over SHA-256, pure Ed25519), like `cosign sign-blob`. */
export function signRaw(data: Uint8Array, key: PrivateKeyInfo | LocalKeySigner): Buffer {
  return (key instanceof LocalKeySigner ? key : new LocalKeySigner(key)).signSync(data)
}

/** `cosign sign-blob --output-signature` format: padded std base64, no newline. */
export function encodeRawSignature(sig: Uint8Array): string {
  return encodeBase64(sig)
}

/** True when `sig` verifies over `data` with `key` (a malformed signature is just false). */
export function verifyRawWithKey(data: Uint8Array, sig: Uint8Array, key: VerificationKey): boolean {
  try {
    return cryptoVerify(signatureDigest(key), data, key.keyObject, sig)
  } catch {
    return false
  }
}

/** The keys in the order to try them: those whose id, hint or fingerprint equals `hint` first (hints are unauthenticated). */
export function orderByHint(keys: VerificationKey[], hint: string | undefined): VerificationKey[] {
  if (!hint) return keys
  const first = keys.filter((k) => k.hint === hint || k.fingerprint === hint || k.keyId === hint)
  return [...first, ...keys.filter((k) => !first.includes(k))]
}

/**
 * Decodes a raw signature file the way `cosign verify-blob` does (verify_blob.go:298-325):
 * base64 (newlines and surrounding whitespace ignored) when it is base64, raw bytes otherwise.
 */
export function decodeRawSignature(bytes: Uint8Array): {signature: Buffer; encoding: 'base64' | 'der'} {
  const text = Buffer.from(bytes).toString('latin1').trim()
  const b64 = /^[A-Za-z0-9+/=_\-\r\n]+$/.test(text) ? decodeBase64(text, {ignoreWhitespace: true}) : undefined
  if (b64 && b64.length > 0) return {signature: b64, encoding: 'base64'}
  return {signature: Buffer.from(bytes), encoding: 'der'}
}

export function keysMissing(source: string): VerificationError {
  return new VerificationError('NO_KEYS', `${source}: no verification key was given`, {suggestions: ['pass --key PUB or --trust TRUST.yaml']})
}

/** Verifies a raw signature over `artifact` with any of the keys. */
export function verifyRawSignature(sigBytes: Uint8Array, options: SignatureVerifyOptions): VerifiedSignature {
  const source = options.source ?? 'signature'
  if (!options.artifact) throw new TypeError('verifyRawSignature needs the artifact bytes')
  if (options.keys.length === 0) throw keysMissing(source)
  const {signature, encoding} = decodeRawSignature(sigBytes)
  const key = options.keys.find((k) => verifyRawWithKey(options.artifact!, signature, k))
  if (!key) throw signatureMismatch(source, options.keys, `${encoding === 'base64' ? 'base64' : 'binary'} signature over ${options.artifactName ?? 'the file'}`)
  return {
    format: 'raw',
    source,
    signers: [signerInfo(key)],
    binding: {kind: 'signature'},
    warnings: [],
  }
}

/** @deprecated The same as `signerInfo` (types.ts); kept as a public name. */
export const signerOf = signerInfo

/** The SIGNATURE_INVALID error: names the signature, what it covers and every key tried. */
export function signatureMismatch(source: string, keys: VerificationKey[], what: string): VerificationError {
  const tried = keys.map((k) => (k.name === undefined ? k.keyId : `'${k.name}' (${k.keyId})`))
  return new VerificationError(
    'SIGNATURE_INVALID',
    `${source}: the ${what} does not verify with ${tried.length === 1 ? `key ${tried[0]}` : `any of the keys ${tried.join(', ')}`}`,
    {
      suggestions: [
        'check that you pass the public key matching the private key that signed',
        'check that the file is exactly the one that was signed (any byte change breaks the signature)',
      ],
      details: {keysTried: keys.map((k) => k.keyId)},
    },
  )
}

function isInTotoType(payloadType: string): boolean {
  return payloadType === IN_TOTO_PAYLOAD_TYPE || /^application\/vnd\.in-toto\.[^/]+\+json$/.test(payloadType)
}

const HASHES: Record<string, string> = {sha256: 'sha256', sha384: 'sha384', sha512: 'sha512'}

/**
 * Binds a signed payload to the artifact: an in-toto statement must list the artifact's digest
 * as a subject unless the payload is the artifact itself; any other payload must be the
 * artifact. Without an artifact or digests nothing is bound (and a warning says so).
 */
export function bindPayload(
  payloadType: string,
  payload: Buffer,
  options: SignatureVerifyOptions,
  source: string,
  warnings: string[],
): {binding: VerifiedSignature['binding']; statement?: Statement} {
  const artifactName = options.artifactName ?? 'the file'
  const samePayload = options.artifact !== undefined && payload.equals(Buffer.from(options.artifact))
  if (isInTotoType(payloadType)) {
    const statement = parseStatement(payload, source)
    // Acceptable subjects: the digests the caller names, plus the artifact's own digests in every algorithm the statement uses.
    const wanted = [...(options.subjectDigests ?? [])]
    if (options.artifact) {
      const algs = new Set(['sha256', ...subjectDigests(statement).map((d) => d.split(':')[0]).filter((a) => HASHES[a])])
      for (const a of algs) wanted.push(`${a}:${createHash(HASHES[a]).update(options.artifact).digest('hex')}`)
    }
    if (wanted.length === 0) {
      warnings.push('no artifact given: the statement subject was not checked')
      return {binding: {kind: 'none'}, statement}
    }
    const hit = matchSubject(statement, wanted)
    if (hit) return {binding: {kind: 'subject', digest: hit}, statement}
    if (samePayload) return {binding: {kind: 'payload'}, statement}
    throw new VerificationError(
      'SUBJECT_MISMATCH',
      `${source}: the signature is valid, but the statement's subjects (${subjectDigests(statement).join(', ')}) do not include ${artifactName}'s digest ${[...new Set(wanted)].join(' or ')}`,
      {suggestions: ['this signature is for a different file; check that you verify the file that was signed']},
    )
  }
  if (options.artifact === undefined) {
    warnings.push(`no artifact given: the payload of type ${JSON.stringify(payloadType)} was not compared with a file`)
    return {binding: {kind: 'none'}}
  }
  if (samePayload) return {binding: {kind: 'payload'}}
  throw new VerificationError(
    'PAYLOAD_MISMATCH',
    `${source}: the signature is valid, but its payload (type ${JSON.stringify(payloadType)}) is not ${artifactName} and is not an in-toto statement naming it`,
    {suggestions: ['this signature is for a different file']},
  )
}

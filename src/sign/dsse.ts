/**
 * DSSE (secure-systems-lab/dsse v1.0.2): pre-authentication encoding and envelopes.
 *
 * Envelopes are read in either field order, with std or URL-safe base64 (envelope.md: verifiers
 * MUST accept both), keyid absent, "" or anything else (it is an unauthenticated hint), and
 * unknown fields ignored. We write `{"payloadType","payload","signatures":[{"keyid","sig"}]}`
 * with the key's SSH fingerprint as keyid, the one non-empty value sigstore-go accepts.
 */
import {verify as cryptoVerify} from 'node:crypto'

import {dsse} from '@sigstore/core'

import {VerificationError} from '../errors.js'
import {decodeBase64, encodeBase64} from './encoding.js'
import type {PrivateKeyInfo, PublicKeyInfo} from './keys.js'
import {signatureDigest} from './keys.js'
import {LocalKeySigner} from './signer.js'

export interface EnvelopeSignature {
  keyid?: string
  sig: Buffer
}

export interface Envelope {
  payloadType: string
  payload: Buffer
  signatures: EnvelopeSignature[]
}

export interface SerializedEnvelope {
  payloadType: string
  payload: string
  signatures: Array<{keyid?: string; sig: string}>
}

/** `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body` (protocol.md), via @sigstore/core. */
export function preAuthEncoding(payloadType: string, payload: Uint8Array): Buffer {
  return dsse.preAuthEncoding(payloadType, Buffer.from(payload))
}

/** Signs `payload` into a one-signature envelope; keyid is the SSH fingerprint unless `keyid: ''`. */
export function signEnvelope(payload: Uint8Array, payloadType: string, key: PrivateKeyInfo | LocalKeySigner, options: {keyid?: string} = {}): Envelope {
  const signer = key instanceof LocalKeySigner ? key : new LocalKeySigner(key)
  const sig = signer.signSync(preAuthEncoding(payloadType, payload))
  const keyid = options.keyid ?? signer.key.public.fingerprint
  return {payloadType, payload: Buffer.from(payload), signatures: [{...(keyid === '' ? {} : {keyid}), sig}]}
}

export function envelopeToJSON(env: Envelope): SerializedEnvelope {
  return {
    payloadType: env.payloadType,
    payload: encodeBase64(env.payload),
    signatures: env.signatures.map((s) => ({...(s.keyid === undefined ? {} : {keyid: s.keyid}), sig: encodeBase64(s.sig)})),
  }
}

/** Parses an envelope JSON value, or throws ENVELOPE_INVALID (exit 2: a corrupt signature is a verification failure). */
export function parseEnvelope(doc: unknown, source: string): Envelope {
  const bad = (msg: string) => new VerificationError('ENVELOPE_INVALID', `${source}: invalid DSSE envelope: ${msg}`)
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('not a JSON object')
  const e = doc as Record<string, unknown>
  if (typeof e.payloadType !== 'string') throw bad('"payloadType" must be a string')
  if (typeof e.payload !== 'string') throw bad('"payload" must be a base64 string')
  const payload = decodeBase64(e.payload)
  if (!payload) throw bad('"payload" is not base64')
  if (!Array.isArray(e.signatures) || e.signatures.length === 0) throw bad('"signatures" must be a non-empty list')
  const signatures = e.signatures.map((s, i): EnvelopeSignature => {
    if (typeof s !== 'object' || s === null) throw bad(`signatures[${i}] is not an object`)
    const {keyid, sig} = s as Record<string, unknown>
    if (keyid !== undefined && keyid !== null && typeof keyid !== 'string') throw bad(`signatures[${i}].keyid must be a string`)
    const bytes = typeof sig === 'string' ? decodeBase64(sig) : undefined
    if (!bytes || bytes.length === 0) throw bad(`signatures[${i}].sig is missing or not base64`)
    return {...(typeof keyid === 'string' ? {keyid} : {}), sig: bytes}
  })
  return {payloadType: e.payloadType, payload, signatures}
}

/**
 * Verifies one DSSE signature over PAE with one key. ECDSA signatures are ASN.1 DER (Sigstore,
 * cosign); the 64-byte IEEE P1363 r‖s form of the DSSE spec's own test vector is accepted for
 * P-256 too, for standalone envelopes only (bundles go through @sigstore/verify, DER only).
 */
export function verifyEnvelopeSignature(env: Envelope, sig: Buffer, key: PublicKeyInfo): boolean {
  const pae = preAuthEncoding(env.payloadType, env.payload)
  const digest = signatureDigest(key)
  try {
    if (cryptoVerify(digest, pae, key.keyObject, sig)) return true
    if (key.algorithm === 'ecdsa-p256' && sig.length === 64) {
      return cryptoVerify(digest, pae, {key: key.keyObject, dsaEncoding: 'ieee-p1363'}, sig)
    }
  } catch {
    // A malformed signature (bad DER) makes OpenSSL throw: that is simply "does not verify".
  }
  return false
}

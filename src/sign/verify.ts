/**
 * Verifying a detached signature of any kind against a file, offline. `verifySignature`
 * detects the kind from the bytes (what `aibox verify` does), the others verify one kind.
 *
 * Every failure is a VerificationError (exit 2) with a stable code: SIGNATURE_INVALID,
 * SUBJECT_MISMATCH, PAYLOAD_MISMATCH, CLAIM_MISMATCH, DIGEST_MISMATCH, KEY_MISMATCH,
 * BUNDLE_INVALID, ENVELOPE_INVALID, STATEMENT_INVALID, SIGNATURE_MALFORMED.
 */
import {VerificationError} from '../errors.js'
import {verifyBundle} from './bundle.js'
import {isContainersSigstoreSignature, parseContainersSigstoreSignature, parseLocalSignedPayload, verifySimpleSigning} from './cosign.js'
import {type Envelope, parseEnvelope, verifyEnvelopeSignature} from './dsse.js'
import {parsePublicKey} from './keys.js'
import {bindPayload, keysMissing, orderByHint, signatureMismatch, verifyRawSignature} from './raw.js'
import {type SignatureFormat, type SignatureVerifyOptions, type VerificationKey, type VerifiedSignature, signerInfo} from './types.js'

/** Signature files are small; anything bigger is refused before parsing. */
export const MAX_SIGNATURE_BYTES = 16 * 1024 * 1024

/**
 * Verifies a standalone DSSE envelope: every signature that verifies with one of the keys counts
 * (distinct keys; a DSSE envelope may carry several), at least one must. Then the payload is
 * bound to the artifact (see `bindPayload`).
 */
export function verifyEnvelope(doc: unknown, options: SignatureVerifyOptions): VerifiedSignature {
  const source = options.source ?? 'envelope'
  const env: Envelope = parseEnvelope(doc, source)
  if (options.keys.length === 0) throw keysMissing(source)
  const signers: VerificationKey[] = []
  for (const s of env.signatures) {
    const key = orderByHint(options.keys, s.keyid).find((k) => !signers.includes(k) && verifyEnvelopeSignature(env, s.sig, k))
    if (key) signers.push(key)
  }
  if (signers.length === 0) throw signatureMismatch(source, options.keys, `DSSE signature${env.signatures.length > 1 ? 's' : ''}`)
  const warnings: string[] = []
  const bound = bindPayload(env.payloadType, env.payload, options, source, warnings)
  return {
    format: 'dsse',
    source,
    signers: signers.map(signerInfo),
    payloadType: env.payloadType,
    ...(bound.statement ? {statement: bound.statement, predicateType: bound.statement.predicateType} : {}),
    binding: bound.binding,
    warnings,
  }
}

/** Detects the kind of a signature file from its bytes. */
export function detectSignatureFormat(bytes: Uint8Array): {format: SignatureFormat; json?: Record<string, unknown>} {
  if (isContainersSigstoreSignature(bytes)) return {format: 'simple-signing'}
  const text = Buffer.from(bytes).toString('utf8').trim()
  if (text.startsWith('{')) {
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch {
      throw new VerificationError('SIGNATURE_MALFORMED', 'the signature file looks like JSON but does not parse', {
        suggestions: ['the file may be truncated; fetch or re-create the signature'],
      })
    }
    const json = doc as Record<string, unknown>
    if (typeof json.mediaType === 'string' && json.mediaType.startsWith('application/vnd.dev.sigstore.bundle')) return {format: 'sigstore-bundle', json}
    if ('payloadType' in json && 'payload' in json && 'signatures' in json) return {format: 'dsse', json}
    if ('base64Signature' in json) return {format: 'cosign-local-bundle', json}
    throw new VerificationError('SIGNATURE_MALFORMED', 'the signature file is JSON but neither a Sigstore bundle, a DSSE envelope nor a cosign bundle', {
      suggestions: ['pass the file written by aibox sign, cosign sign-blob or cosign attest-blob'],
    })
  }
  return {format: 'raw'}
}

/**
 * Verifies a signature file of any supported kind over `options.artifact` (the signed file):
 * Sigstore bundle v0.1–v0.3, DSSE envelope, cosign LocalSignedPayload, containers/image
 * sigstore-json, or a raw signature (base64 with or without newline, or DER bytes).
 */
export function verifySignature(signature: Uint8Array, options: SignatureVerifyOptions): VerifiedSignature {
  const source = options.source ?? 'signature'
  if (signature.length === 0) throw new VerificationError('SIGNATURE_MALFORMED', `${source} is empty`)
  if (signature.length > MAX_SIGNATURE_BYTES) throw new VerificationError('SIGNATURE_MALFORMED', `${source} is larger than ${MAX_SIGNATURE_BYTES} bytes`)
  if (options.keys.length === 0) throw keysMissing(source)
  let detected
  try {
    detected = detectSignatureFormat(signature)
  } catch (err) {
    if (err instanceof VerificationError) throw new VerificationError(err.code, `${source}: ${err.message}`, {suggestions: err.suggestions})
    throw err
  }
  const opts = {...options, source}
  switch (detected.format) {
    case 'sigstore-bundle':
      return verifyBundle(detected.json, opts)
    case 'dsse':
      return verifyEnvelope(detected.json, opts)
    case 'simple-signing':
      return verifySimpleSigning(parseContainersSigstoreSignature(signature, source), opts)
    case 'cosign-local-bundle': {
      const local = parseLocalSignedPayload(detected.json!, source)
      if (!options.artifact) throw new VerificationError('ARTIFACT_REQUIRED', `${source}: a cosign bundle can only be verified together with the signed file`)
      const warnings: string[] = []
      if (local.hasRekorBundle) warnings.push('the rekorBundle was not verified (offline key verification, like cosign --insecure-ignore-tlog)')
      const result = verifyRawSignature(Buffer.from(local.signature.toString("base64")), opts)
      if (local.certPem) {
        // The embedded cert/key is unauthenticated; it must at least be the key that verified.
        const embedded = safeKey(local.certPem, source)
        if (embedded && !options.keys.some((k) => k.spki.equals(embedded.spki) && k.keyId === result.signers[0].keyId)) {
          warnings.push('the certificate/public key embedded in the cosign bundle is not the key that verified the signature')
        }
      }
      return {...result, format: 'cosign-local-bundle', warnings: [...warnings, ...result.warnings]}
    }
    default: {
      if (!options.artifact) throw new VerificationError('ARTIFACT_REQUIRED', `${source}: a raw signature can only be verified together with the signed file`)
      return verifyRawSignature(signature, opts)
    }
  }
}

function safeKey(pem: string, source: string) {
  try {
    return parsePublicKey(pem, `${source} (embedded cert)`)
  } catch {
    return undefined
  }
}

/**
 * src/sign: Cosign-compatible keys, signing and offline verification.
 *
 * - keys: generate / encrypt / decrypt / load / import cosign key files, key identifiers
 * - password: COSIGN_PASSWORD / AIBOX_PASSWORD, --password-stdin, no-echo TTY prompt
 * - signer: a @sigstore/sign `Signer` over a local key
 * - dsse, statement: DSSE PAE and envelopes, in-toto statements
 * - bundle: Sigstore bundle v0.3 signing (DSSE statement, message signature) and verification
 * - raw, cosign: sign-blob signatures, simple signing, LocalSignedPayload, Rekor SET
 * - verify: detect and verify any detached signature kind
 * - subject: the subject digest of a signed file (hook for the canonical bundle digest)
 * - keyless: keyless signing with your own Sigstore (Fulcio certificate, Rekor entry, RFC 3161 timestamp)
 * - keyless-trust: offline keyless verification with a trusted root / PEM trust material
 */
export * from './bundle.js'
export * from './cosign.js'
export * from './dsse.js'
export * from './keyless.js'
export * from './keyless-trust.js'
export * from './keys.js'
export * from './password.js'
export * from './raw.js'
export * from './signer.js'
export * from './statement.js'
export * from './subject.js'
export * from './types.js'
export * from './verify.js'
export * from './files.js'
export * from './deterministic.js'

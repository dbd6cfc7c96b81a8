/** Types shared by every verifier in src/sign (bundles, DSSE, raw, legacy cosign formats). */
import type {KeylessTrust} from './keyless-trust.js'
import type {PublicKeyInfo} from './keys.js'
import type {Statement} from './statement.js'

/** A key a verifier may accept, optionally named (trust policies name their keys). */
export interface VerificationKey extends PublicKeyInfo {
  name?: string
}

/** Who signed: enough to name the key to a human and to a trust policy. */
export interface SignerInfo {
  keyId: string
  name?: string
  algorithm: PublicKeyInfo['algorithm']
  hint: string
  fingerprint: string
  /**
   * Keyless signatures only: the identity the verified Fulcio certificate binds to the key (OIDC
   * issuer and SAN). The key fields then describe the certificate's ephemeral key.
   */
  identity?: {issuer: string; subject: string}
}

/**
 * - `sigstore-bundle`: Sigstore bundle v0.1–v0.3 (DSSE or message signature)
 * - `dsse`: a bare DSSE envelope (cosign attest-blob, in-toto tooling)
 * - `raw`: a signature over the file's bytes, base64 or DER (cosign sign-blob)
 * - `cosign-local-bundle`: cosign's legacy `LocalSignedPayload` JSON (`sign-blob --bundle`, v1/v2)
 * - `simple-signing`: a cosign container signature (payload + signature) in containers/image's `sigstore-json` file
 */
export type SignatureFormat = 'sigstore-bundle' | 'dsse' | 'raw' | 'cosign-local-bundle' | 'simple-signing'

export interface BundleDetails {
  mediaType: string
  version: string
  content: 'dsse' | 'message-signature'
  keyMaterial: 'publicKey' | 'certificate' | 'x509CertificateChain'
  /**
   * Transparency-log entries and RFC 3161 timestamps present but not verified: key-based
   * verification is offline and checks only the signature and the digest, like
   * `cosign verify --key … --insecure-ignore-tlog`.
   */
  ignored: {tlogEntries: number; timestamps: number}
  /** Keyless verification: the evidence verified against the trust policy's Sigstore trust material. */
  keyless?: {tlogEntries: number; timestamps: number; scts: number}
}

export interface VerifiedSignature {
  format: SignatureFormat
  /** The signature file or a label for it. */
  source: string
  /** Every trusted key whose signature verified (one for bundles; a DSSE envelope may carry several). */
  signers: SignerInfo[]
  bundle?: BundleDetails
  payloadType?: string
  statement?: Statement
  predicateType?: string
  /** How the signature was bound to the artifact. */
  binding: {
    kind: 'subject' | 'payload' | 'message-digest' | 'signature' | 'claim' | 'none'
    digest?: string
  }
  warnings: string[]
}

export interface SignatureVerifyOptions {
  keys: VerificationKey[]
  /** The signed file's bytes: required for raw and message signatures, and enables the subject check. */
  artifact?: Uint8Array
  /**
   * Acceptable subject digests (`alg:hex`), in addition to the artifact's own sha256 (and any other
   * algorithm the statement uses); without an artifact, the only ones. E.g. a manifest digest, or
   * a policy bundle's canonical content digest.
   */
  subjectDigests?: string[]
  /** Name of the artifact for messages. */
  artifactName?: string
  /** Name of the signature for messages. */
  source?: string
  /**
   * Keyless trust material (a trust policy's `keyless`): a bundle whose certificate key is none of
   * `keys` is then verified as a keyless signature (chain, tlog, timestamps) and its signer carries
   * the certificate identity. Without it, a certificate only carries a key that must be in `keys`.
   */
  keyless?: KeylessTrust
}

export function signerInfo(key: VerificationKey, identity?: SignerInfo['identity']): SignerInfo {
  return {
    keyId: key.keyId,
    ...(key.name === undefined ? {} : {name: key.name}),
    algorithm: key.algorithm,
    hint: key.hint,
    fingerprint: key.fingerprint,
    ...(identity ? {identity} : {}),
  }
}

/** `key 'alice' (ab12…)` or `key ab12…` for messages. */
export function describeKey(key: {name?: string; keyId: string}): string {
  return key.name === undefined ? `key ${key.keyId}` : `key '${key.name}' (${key.keyId})`
}

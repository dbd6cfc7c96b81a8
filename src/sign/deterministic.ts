/**
 * A signer whose signatures are a function of the key and the data alone, so that a sealed
 * export signed twice from the same inputs is byte-identical (issue 6 "Deterministic").
 *
 * Ed25519 (RFC 8032) and RSA PKCS#1 v1.5 are deterministic already; Node's ECDSA draws a random
 * nonce, so ECDSA P-256 is signed with RFC 6979 deterministic nonces through @noble/curves
 * (audited, constant-time scalar arithmetic). The result is an ordinary ASN.1 DER ECDSA signature
 * over SHA-256 that every verifier (node:crypto, cosign, sigstore-go) accepts unchanged.
 */
import {createHash} from 'node:crypto'

import {p256} from '@noble/curves/p256'

import {LocalKeySigner} from './signer.js'

export class DeterministicKeySigner extends LocalKeySigner {
  private scalar?: Uint8Array

  override signSync(data: Uint8Array): Buffer {
    if (this.key.public.algorithm !== 'ecdsa-p256') return super.signSync(data)
    if (this.scalar === undefined) {
      const jwk = this.key.keyObject.export({format: 'jwk'})
      if (typeof jwk.d !== 'string') throw new TypeError('the ECDSA private key has no private scalar')
      this.scalar = Buffer.from(jwk.d, 'base64url')
    }
    const digest = createHash('sha256').update(data).digest()
    return Buffer.from(p256.sign(digest, this.scalar).toDERRawBytes())
  }
}

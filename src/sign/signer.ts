/**
 * A `@sigstore/sign` `Signer` over a local key (toolchain.md §C). The KeyObject is parsed once
 * and cached: re-parsing a PEM per signature is 17× slower than signing (toolchain.md table 6).
 */
import {sign as cryptoSign} from 'node:crypto'

import type {Signature, Signer} from '@sigstore/sign'

import {type PrivateKeyInfo, signatureDigest} from './keys.js'

export class LocalKeySigner implements Signer {
  readonly key: PrivateKeyInfo
  private readonly digest: 'sha256' | null

  constructor(key: PrivateKeyInfo) {
    this.key = key
    this.digest = signatureDigest(key.public)
  }

  /**
   * Signs `data` as given: the builders pass PAE bytes for DSSE and the artifact for message
   * signatures. ECDSA gives an ASN.1 DER signature over SHA-256 (never P1363), RSA PKCS#1 v1.5
   * over SHA-256, Ed25519 pure Ed25519 — what cosign produces for these keys.
   */
  async sign(data: Buffer): Promise<Signature> {
    return {
      signature: this.signSync(data),
      // The hint is what cosign writes as publicKey.hint; callers fix the DSSE keyid afterwards (see bundle.ts).
      key: {$case: 'publicKey', publicKey: this.key.public.pem, hint: this.key.public.hint},
    }
  }

  signSync(data: Uint8Array): Buffer {
    return cryptoSign(this.digest, data, this.key.keyObject)
  }
}

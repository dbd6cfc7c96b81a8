/** What `aibox key generate` and `aibox key import` print about the key pair they wrote (one wording for both). */
import type {KeyFilesResult} from '../sign/index.js'

export function keyFilesLines(result: KeyFilesResult): string[] {
  return [
    `Private key written to ${result.privateKey}`,
    `Public key written to ${result.publicKey}`,
    `Key ${result.keyId} (${result.algorithm}), fingerprint ${result.fingerprint}`,
  ]
}

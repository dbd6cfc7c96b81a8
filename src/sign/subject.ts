/**
 * What a signature of a file names as its subject. `aibox sign FILE` signs an in-toto
 * statement whose subject is `subjectDigestFor(FILE)`.
 *
 * For a policy document (any kind `loadBundle` reads and validates: aibox bundle, bare AI-Box
 * policy, HELM bundle or policy file) the subject is its content digest: sha256 of the RFC 8785
 * canonical JSON (formats.md "Content digest"), so a re-formatted YAML (comments, key order,
 * quoting) keeps its signature, and the same digest names the policy layer once it is pushed.
 * Any other file (or a policy file that does not validate) is named by the sha256 of its bytes.
 * Verification accepts both digests (`artifactDigests`), so signatures made before this change,
 * over the raw bytes, still verify.
 */
import {loadBundleText} from '../bundle/load.js'
import {AiboxError} from '../errors.js'
import {sha256Digest} from './encoding.js'

/** The content digest of `bytes` when they are a valid policy document, else undefined. */
export function policyContentDigest(file: string, bytes: Uint8Array): string | undefined {
  try {
    const b = loadBundleText(bytes, file)
    return b.digest === '' ? undefined : b.digest
  } catch (err) {
    // Not a (valid) policy document: the bytes name it. Anything unexpected is a real error.
    if (err instanceof AiboxError) return undefined
    throw err
  }
}

/** The subject digest `aibox sign` puts in the statement for this file (see the module comment). */
export async function subjectDigestFor(file: string, bytes: Uint8Array): Promise<string> {
  return policyContentDigest(file, bytes) ?? sha256Digest(bytes)
}

/** Every digest under which a file may legitimately be named as a subject: its bytes' sha256, and the subject digest. */
export async function artifactDigests(file: string, bytes: Uint8Array): Promise<string[]> {
  const digests = [sha256Digest(bytes), await subjectDigestFor(file, bytes)]
  return [...new Set(digests)]
}

/**
 * What a signature of a file names as its subject. `aibox sign FILE` signs an in-toto
 * statement whose subject is `subjectDigestFor(FILE)`.
 *
 * HOOK: for policy bundles the subject should be the bundle's content digest (sha256 of the
 * RFC 8785 canonical JSON, formats.md "Content digest"), so that a re-formatted YAML keeps its
 * signature. That digest is computed by `src/bundle`, which is being written in parallel; until
 * it lands on main this is sha256 of the file bytes. Switch here (and only here) once
 * `contentDigest` exists. Verification accepts both digests via `artifactDigests`.
 */
import {sha256Digest} from './encoding.js'

/** The subject digest `aibox sign` puts in the statement for this file (see the HOOK above). */
export async function subjectDigestFor(_file: string, bytes: Uint8Array): Promise<string> {
  return sha256Digest(bytes)
}

/** Every digest under which a file may legitimately be named as a subject: its bytes' sha256, and the subject digest. */
export async function artifactDigests(file: string, bytes: Uint8Array): Promise<string[]> {
  const digests = [sha256Digest(bytes), await subjectDigestFor(file, bytes)]
  return [...new Set(digests)]
}

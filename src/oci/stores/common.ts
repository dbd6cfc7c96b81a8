/**
 * Small pieces shared by the local stores: reference and tag checks, and reading a push body
 * with verification (nothing is stored unless it hashes to its descriptor).
 */
import {Readable} from 'node:stream'

import {assertDigest, readAll, toReadable, verifyBytes, VerifyingStream} from '../content.js'
import {AiboxError} from '../../errors.js'
import {OciError} from '../errors.js'
import {abortError, throwIfAborted} from '../abort.js'
import type {Descriptor} from '../target.js'
import {shownValue} from '../../util/text.js'

/** Docker/OCI tag grammar (distribution reference.go); invalid tags are route misses on 2.8 (registry-notes §8.14). */
export const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/

export function assertTag(tag: string): void {
  if (!TAG_RE.test(tag)) {
    throw new OciError('INVALID_REFERENCE', `invalid tag "${tag.slice(0, 200)}": expected [A-Za-z0-9_][A-Za-z0-9._-]{0,127}`)
  }
}

/** A reference that names content by digest (`algo:hex`; tags cannot contain ":", so any such reference is one, and non-sha256 ones are then refused). */
export function isDigestRef(ref: string): boolean {
  return /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(ref)
}

export function assertDescriptorShape(desc: Descriptor): void {
  assertDigest(desc.digest)
  if (!Number.isSafeInteger(desc.size) || desc.size < 0) {
    throw new OciError('INVALID_MANIFEST', `descriptor ${desc.digest} has an invalid size ${shownValue(desc.size)}`)
  }
  if (typeof desc.mediaType !== 'string' || desc.mediaType === '') {
    throw new OciError('INVALID_MANIFEST', `descriptor ${desc.digest} has no mediaType`)
  }
}

/** What the local stores' `predecessors` return: the referrers of `artifactType` (all when undefined), sorted by digest, as copies. */
export function predecessorList(found: Iterable<Descriptor>, artifactType: string | undefined): Descriptor[] {
  return [...found]
    .filter((d) => artifactType === undefined || d.artifactType === artifactType)
    .sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
    .map((d) => structuredClone(d))
}

/** Destroys a body we will not read (content already present), so its source is released. */
export function discardBody(body: Readable | Uint8Array): void {
  if (body instanceof Readable) body.destroy()
}

/** Reads a whole small body (manifest) and verifies it against `desc`. */
export async function readVerified(desc: Descriptor, body: Readable | Uint8Array, max: number, location: string, signal?: AbortSignal): Promise<Buffer> {
  throwIfAborted(signal, `push of ${desc.digest}`)
  if (body instanceof Uint8Array) {
    const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
    verifyBytes(desc, buf, location)
    return buf
  }
  if (desc.size > max) {
    body.destroy()
    throw new OciError('MANIFEST_TOO_LARGE', `${desc.digest} declares ${desc.size} bytes, more than the ${max}-byte limit`)
  }
  const v = new VerifyingStream(desc, location)
  const onAbort = () => v.destroy(abortError(signal, `push of ${desc.digest}`))
  signal?.addEventListener('abort', onAbort, {once: true})
  body.on('error', (err) => v.destroy(err))
  try {
    return await readAll(body.pipe(v), max, desc.digest)
  } catch (err) {
    if (signal?.aborted) throw abortError(signal, `push of ${desc.digest}`)
    if (err instanceof AiboxError) throw err
    throw new OciError('IO_ERROR', `${location}: reading the content of ${desc.digest} failed: ${(err as Error)?.message ?? String(err)}`, {cause: err})
  } finally {
    signal?.removeEventListener('abort', onAbort)
    if (!body.destroyed) body.destroy()
  }
}

/** A verifying read stream over in-memory bytes. */
export function verifiedReadable(desc: Descriptor, data: Buffer, location: string): Readable {
  const v = new VerifyingStream(desc, location)
  const src = toReadable(data)
  src.on('error', (err) => v.destroy(err))
  return src.pipe(v)
}

/** `location:tag` or `location@digest`, for messages. */
export function refString(location: string, ref: string): string {
  return isDigestRef(ref) ? `${location}@${ref}` : `${location}:${ref}`
}

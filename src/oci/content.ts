/**
 * Content helpers shared by every store: digest parsing, verify-on-read streams and bounded
 * reads. No caller ever trusts bytes it has not hashed (style.md rule 3).
 */
import {createHash} from 'node:crypto'
import {Readable, Transform, type TransformCallback} from 'node:stream'

import {OciError} from './errors.js'
import type {Descriptor} from './target.js'

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/

/** Largest manifest/index we read or write: distribution's own limit (registry-notes.md §8.15). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

/** Throws INVALID_REFERENCE unless `digest` is `sha256:<64 lowercase hex>`. */
export function assertDigest(digest: string, what = 'digest'): void {
  if (!DIGEST_RE.test(digest)) {
    throw new OciError('INVALID_REFERENCE', `invalid ${what} "${digest}": expected sha256:<64 lowercase hex>`)
  }
}

export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s)
}

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

/** Descriptor for in-memory bytes. */
export function descriptorFor(mediaType: string, data: Uint8Array, extra: Partial<Descriptor> = {}): Descriptor {
  return {mediaType, digest: sha256Digest(data), size: data.byteLength, ...extra}
}

/** Checks `data` against `desc` (size, then digest). */
export function verifyBytes(desc: Descriptor, data: Uint8Array, location = ''): void {
  const where = location ? ` from ${location}` : ''
  if (data.byteLength !== desc.size) {
    throw new OciError('SIZE_MISMATCH', `content ${desc.digest}${where} has ${data.byteLength} bytes, descriptor says ${desc.size}`)
  }
  const got = sha256Digest(data)
  if (got !== desc.digest) {
    throw new OciError('DIGEST_MISMATCH', `content${where} does not match its digest: expected ${desc.digest}, got ${got}`)
  }
}

/**
 * A pass-through stream that hashes what flows through it and errors when more than
 * `desc.size` bytes arrive (a hard cap: a lying server cannot make us buffer or write more)
 * or, at the end, when the size or digest differs.
 */
export class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256')
  private seen = 0
  constructor(
    /** What this stream verifies (public so a consumer can skip hashing the same bytes twice). */
    readonly desc: Descriptor,
    private readonly location = '',
  ) {
    super()
    assertDigest(desc.digest)
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length
    if (this.seen > this.desc.size) {
      cb(
        new OciError(
          'SIZE_MISMATCH',
          `content ${this.desc.digest}${this.location ? ` from ${this.location}` : ''} is larger than its descriptor size ${this.desc.size}`,
        ),
      )
      return
    }
    this.hash.update(chunk)
    cb(null, chunk)
  }

  override _flush(cb: TransformCallback): void {
    const where = this.location ? ` from ${this.location}` : ''
    if (this.seen !== this.desc.size) {
      cb(new OciError('SIZE_MISMATCH', `content ${this.desc.digest}${where} ended after ${this.seen} bytes, descriptor says ${this.desc.size}`))
      return
    }
    const got = `sha256:${this.hash.digest('hex')}`
    if (got !== this.desc.digest) {
      cb(new OciError('DIGEST_MISMATCH', `content${where} does not match its digest: expected ${this.desc.digest}, got ${got}`))
      return
    }
    cb()
  }
}

/** True when `stream` is already verifying `desc` (its size and digest are checked by the stream itself). */
export function isVerifying(stream: unknown, desc: Descriptor): boolean {
  return stream instanceof VerifyingStream && stream.desc.digest === desc.digest && stream.desc.size === desc.size
}

/** Wraps `source` so that reading it verifies `desc`; errors of `source` propagate. */
export function verifying(source: Readable, desc: Descriptor, location = ''): Readable {
  const v = new VerifyingStream(desc, location)
  source.on('error', (err) => v.destroy(err))
  v.on('close', () => {
    if (!source.destroyed) source.destroy()
  })
  return source.pipe(v)
}

/**
 * Reads a whole stream into memory, refusing more than `max` bytes. For manifests, indexes,
 * configs and signatures only; blobs are streamed.
 */
export async function readAll(stream: Readable, max: number, what = 'content'): Promise<Buffer> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of stream) {
    total += (chunk as Buffer).length
    if (total > max) {
      stream.destroy()
      throw new OciError('MANIFEST_TOO_LARGE', `${what} exceeds ${max} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** Fetches and fully reads small content (manifest, index, config, signature) with the manifest size cap. */
export async function fetchAll(
  target: {fetch(d: Descriptor): Promise<Readable>},
  desc: Descriptor,
  max = MAX_MANIFEST_BYTES,
): Promise<Buffer> {
  if (desc.size > max) throw new OciError('MANIFEST_TOO_LARGE', `${desc.digest} declares ${desc.size} bytes, more than the ${max}-byte limit`)
  return readAll(await target.fetch(desc), max, desc.digest)
}

export function toReadable(body: Readable | Uint8Array): Readable {
  return body instanceof Uint8Array ? Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]) : body
}

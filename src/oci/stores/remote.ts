/**
 * A repository in an OCI registry as a `GraphTarget` (OCI distribution-spec v1.1; behaviour of
 * distribution 2.8 in registry-notes.md).
 *
 * - Manifests: `Accept` with every manifest type on every GET/HEAD (§8.1), 4 MiB cap both ways
 *   (§8.15), `Content-Type` = mediaType on PUT, `Docker-Content-Digest` verified when present.
 * - Blobs: HEAD first (skip what exists). Small blobs (≤ `monolithicMax`) in one buffered PUT,
 *   retried by restarting the upload. Larger ones streamed from the Readable in one PATCH (like
 *   skopeo: constant memory, and distribution re-hashes the whole blob on commit after several
 *   PATCHes), or, with `chunkSize`, in PATCH chunks of that size (for proxies that cap request
 *   bodies; two buffers, so reading the next chunk overlaps sending this one; a failed chunk is
 *   resent from the offset the registry reports). Offsets come from the returned `Range`, the
 *   newest `Location` is always used (§8.2, §8.4), and `PUT …&digest=` commits. Digest and size
 *   are checked client-side and the last bytes are held back until they match, so the registry
 *   never receives a complete wrong blob. A streamed body is never re-sent; with `reopen` the
 *   whole upload restarts from a fresh stream. Downloads are verified while streaming, capped at
 *   the descriptor size (never `Content-Length`), and resumed with `Range` after a dropped connection.
 * - Referrers: the OCI 1.1 API when it answers 200 with an image index, else the `sha256-<hex>`
 *   tag index (read-modify-write, entries keep `artifactType` and `annotations`, sorted by digest,
 *   dangling entries dropped on read); the choice is cached per repository (oras-go).
 */
import {type Hash, createHash} from 'node:crypto'
import {Readable, Transform, type TransformCallback} from 'node:stream'

import {AiboxError, EXIT, errorMessage} from '../../errors.js'
import {type RegistryClientOptions, RegistryClient, responseError} from '../client.js'
import {repositoryScope} from '../auth/challenge.js'
import {MAX_MANIFEST_BYTES, assertDigest, isDigest, isVerifying, sha256Digest, verifyBytes, verifying} from '../content.js'
import {OciError, isOciError} from '../errors.js'
import {abortError, throwIfAborted} from '../abort.js'
import {type HttpResponse, backoffDelay, classifyNetworkError, discard, header, readLimited, sleep} from '../http.js'
import {MANIFEST_MEDIA_TYPES, MT, isManifestMediaType} from '../media.js'
import {type RegistryReference, assertRepository, assertTag, parseRegistryReference} from '../reference.js'
import type {
  Deleter,
  Descriptor,
  GraphTarget,
  Mounter,
  MountOptions,
  OpOptions,
  ReferencePusher,
  TagLister,
} from '../target.js'

export type ReferrersMode = 'auto' | 'api' | 'tag'

export interface RemoteRepositoryOptions extends RegistryClientOptions {
  /** Share a client (connections, token cache) between repositories of one registry. */
  client?: RegistryClient
  /** Blobs up to this size are buffered and sent in one PUT (default 4 MiB). */
  monolithicMax?: number
  /** Send larger blobs in PATCH chunks of this many bytes instead of one streamed PATCH (memory: 2 chunks). */
  chunkSize?: number
  /** Referrers: `auto` (API when the registry has it, else the tag fallback), or force one. */
  referrers?: ReferrersMode
}

export const DEFAULT_MONOLITHIC_MAX = 4 * 1024 * 1024

/** Options of `push`: a way to start a streamed upload over after a transient failure. */
export interface PushOptions extends OpOptions {
  /** Opens the content again from its start (the copy engine passes `() => source.fetch(desc)`). */
  reopen?: () => Promise<Readable>
}
/** Upper bound on a registry-demanded minimum chunk (`OCI-Chunk-Min-Length`): memory stays bounded. */
const MAX_CHUNK_SIZE = 64 * 1024 * 1024
const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ')
const MAX_TAG_PAGES = 10_000
/** The referrers tag fallback (addToFallbackIndex): merges tried, and the settle checks after each. */
const FALLBACK_WRITE_ATTEMPTS = 8
const FALLBACK_SETTLE_CHECKS = 2
const FALLBACK_SETTLE_MIN_MS = 200
const FALLBACK_SETTLE_MAX_MS = 5_000
/** Recently pushed or read manifests kept for `tag()` (saves a GET): count and total bytes. */
const MANIFEST_CACHE_ENTRIES = 16
const MANIFEST_CACHE_BYTES = 8 * 1024 * 1024

function mediaTypeOf(contentType: string | undefined): string | undefined {
  return contentType?.split(';')[0]?.trim().toLowerCase() || undefined
}

/**
 * `Range: 0-<last>` → bytes stored. Distribution answers `0-0` both for an empty upload and for
 * one byte, so `0-0` reads as 0 (callers that just sent a 1-byte chunk accept it as 1).
 */
function rangeEnd(range: string | undefined): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(range?.trim() ?? '')
  if (!m) return undefined
  const last = Number(m[1])
  return last === 0 ? 0 : last + 1
}

/**
 * Bytes the registry reports holding after an upload request, when that is not `end` (the
 * bytes sent so far); undefined when it agrees or does not say. `0-0` after a 1-byte upload is agreement.
 */
function storedMismatch(res: HttpResponse, end: number): number | undefined {
  const stored = rangeEnd(header(res, 'range'))
  return stored !== undefined && stored !== end && !(stored === 0 && end === 1) ? stored : undefined
}

/** The upload session's next URL: the response's `Location` (relative to the request), else `current`. */
function nextLocation(res: HttpResponse, current: URL): URL {
  const next = header(res, 'location')
  return next ? new URL(next, res.url) : current
}

/** Parses `Link: <url>; rel="next"` (RFC 8288), returning the next URL relative to `base`. */
export function nextLink(link: string | string[] | undefined, base: URL): URL | undefined {
  for (const value of Array.isArray(link) ? link : link ? [link] : []) {
    for (const part of value.split(/,(?=\s*<)/)) {
      const m = /^\s*<([^>]*)>\s*(.*)$/.exec(part)
      if (!m) continue
      if (/(?:^|;)\s*rel\s*=\s*"?(?:[^";]*\s)?next(?:\s[^";]*)?"?\s*(?:;|$)/i.test(m[2]!)) return new URL(m[1]!, base)
    }
  }
  return undefined
}

/**
 * Counts and hashes what flows to the registry, refuses more than the descriptor size, and holds
 * the last chunk back until the end: it is released only when size and digest match, so a wrong
 * blob never reaches the registry complete (and so is never committed).
 */
class HoldbackVerifier extends Transform {
  failure?: OciError
  /** Not needed when the source verifies the same digest itself (a Target's fetch stream): hash once. */
  private readonly hash?: Hash
  private seen = 0
  private held?: Buffer
  constructor(
    private readonly desc: Descriptor,
    sourceVerifies: boolean,
  ) {
    super()
    if (!sourceVerifies) this.hash = createHash('sha256')
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length
    if (this.seen > this.desc.size) {
      this.failure = new OciError('SIZE_MISMATCH', `blob ${this.desc.digest} is larger than its descriptor size ${this.desc.size}`)
      cb(this.failure)
      return
    }
    this.hash?.update(chunk)
    const release = this.held
    this.held = chunk
    cb(null, release)
  }

  override _flush(cb: TransformCallback): void {
    if (this.seen !== this.desc.size) {
      this.failure = new OciError('SIZE_MISMATCH', `blob ${this.desc.digest} ended after ${this.seen} bytes, descriptor says ${this.desc.size}`)
      cb(this.failure)
      return
    }
    const got = this.hash ? `sha256:${this.hash.digest('hex')}` : this.desc.digest
    if (got !== this.desc.digest) {
      this.failure = new OciError('DIGEST_MISMATCH', `the content to push does not match its digest: expected ${this.desc.digest}, got ${got}`)
      cb(this.failure)
      return
    }
    cb(null, this.held)
  }
}

/** Fills `buf` from a stream (returns fewer bytes only at its end); keeps what did not fit for the next call. */
class ChunkReader {
  private readonly it: AsyncIterator<unknown>
  private leftover?: Buffer
  private done = false
  constructor(stream: Readable) {
    this.it = stream[Symbol.asyncIterator]()
  }

  async fill(buf: Buffer): Promise<number> {
    let n = 0
    while (n < buf.length) {
      let chunk = this.leftover
      this.leftover = undefined
      if (!chunk) {
        if (this.done) break
        const r = await this.it.next()
        if (r.done) {
          this.done = true
          break
        }
        chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array)
      }
      const take = Math.min(chunk.length, buf.length - n)
      chunk.copy(buf, n, 0, take)
      n += take
      if (take < chunk.length) this.leftover = chunk.subarray(take)
    }
    return n
  }

  async close(): Promise<void> {
    try {
      await this.it.return?.()
    } catch {
      // the source already failed; its error was reported by fill()
    }
  }
}

interface IndexJson {
  schemaVersion?: number
  mediaType?: string
  manifests?: Descriptor[]
  annotations?: Record<string, string>
  [k: string]: unknown
}

interface ManifestJson {
  mediaType?: string
  artifactType?: string
  config?: {mediaType?: string}
  subject?: Descriptor
  annotations?: Record<string, string>
}

/**
 * The error for content that could not be read while pushing it: ours when it is ours (a
 * verification failure of the source stream), else a transient failure naming the blob.
 */
function sourceFailure(err: unknown, desc: Descriptor): AiboxError {
  if (err instanceof AiboxError) return err
  return new OciError('NETWORK', `reading the content of ${desc.digest} to push failed: ${errorMessage(err)}`, {
    cause: err,
    suggestions: ['run the command again; if the source is a file, check that it is readable'],
  })
}

/** `artifactType` of a manifest or index (the field itself; no guessing from the config). */
function artifactTypeOf(data: Buffer): string | undefined {
  try {
    const at = (JSON.parse(data.toString('utf8')) as ManifestJson).artifactType
    return typeof at === 'string' && at !== '' ? at : undefined
  } catch {
    return undefined
  }
}

/** Tags that are referrers machinery, not versions: the `sha256-<hex>` index and cosign's `.sig`/`.att`/`.sbom`. */
const MACHINERY_TAG_RE = /^sha256-[a-f0-9]{64}(?:\.[a-z]+)?$/

/** Worth another attempt: transient, and not the caller's own abort. */
function isTransientOci(err: unknown): boolean {
  return err instanceof OciError && err.exit === EXIT.TRANSIENT && err.code !== 'ABORTED'
}

export class RemoteRepository implements GraphTarget, TagLister, Mounter, ReferencePusher, Deleter {
  readonly client: RegistryClient
  readonly registry: string
  readonly repository: string
  readonly location: string
  readonly chunkSize?: number
  readonly monolithicMax: number
  private readonly referrersOption: ReferrersMode
  /** What `auto` found out (cached per repository, like oras-go). */
  private referrersFound?: 'api' | 'tag'
  private readonly manifestCache = new Map<string, Buffer>()
  private readonly ownsClient: boolean

  /** `ref` is `host[:port]/repository` (a tag or digest in it is ignored) or a parsed reference. */
  constructor(ref: string | RegistryReference, opts: RemoteRepositoryOptions = {}) {
    const r = typeof ref === 'string' ? parseRegistryReference(ref) : ref
    assertRepository(r.repository)
    this.registry = r.registry
    this.repository = r.repository
    this.location = `${r.registry}/${r.repository}`
    this.ownsClient = opts.client === undefined
    if (opts.client && opts.client.registry !== r.registry) {
      throw new OciError('INVALID_REFERENCE', `client for ${opts.client.registry} cannot serve ${this.location}`)
    }
    this.client = opts.client ?? new RegistryClient(r.registry, opts)
    this.chunkSize = opts.chunkSize
    if (this.chunkSize !== undefined && !(Number.isSafeInteger(this.chunkSize) && this.chunkSize >= 1)) {
      throw new OciError('UNSUPPORTED', `chunk size must be a whole number of bytes ≥ 1, got ${opts.chunkSize}`)
    }
    this.monolithicMax = opts.monolithicMax ?? DEFAULT_MONOLITHIC_MAX
    this.referrersOption = opts.referrers ?? 'auto'
    if (this.referrersOption !== 'auto') this.referrersFound = this.referrersOption
  }

  /** Which referrers mechanism this repository uses: `auto` until the first referrers call found out. */
  get referrersCapability(): ReferrersMode {
    return this.referrersFound ?? 'auto'
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close()
  }

  private get pullScope(): string {
    return repositoryScope(this.repository, 'pull')
  }

  private get pushScope(): string {
    return repositoryScope(this.repository, 'pull', 'push')
  }

  private path(kind: 'manifests' | 'blobs' | 'tags' | 'referrers', ref = ''): string {
    return `/v2/${this.repository}/${kind}/${ref}`
  }

  /** Tag, digest, or a full reference to this repository → the tag or digest to ask for. */
  private selector(reference: string): string {
    if (reference.includes('/')) {
      const r = parseRegistryReference(reference)
      if (r.registry !== this.registry || r.repository !== this.repository) {
        throw new OciError('INVALID_REFERENCE', `reference ${reference} is not in repository ${this.location}`)
      }
      const sel = r.digest ?? r.tag
      if (sel === undefined) throw new OciError('INVALID_REFERENCE', `reference ${reference} names no tag or digest`)
      return sel
    }
    if (reference.includes(':')) {
      assertDigest(reference)
      return reference
    }
    assertTag(reference)
    return reference
  }

  // ---- read ------------------------------------------------------------------------------

  async resolve(reference: string, opts: OpOptions = {}): Promise<Descriptor> {
    const sel = this.selector(reference)
    const what = `resolve ${isDigest(sel) ? sel : `tag "${sel}"`} in ${this.location}`
    const notFound = isDigest(sel) ? `manifest ${sel} not found in ${this.location}` : `tag "${sel}" not found in ${this.location}`
    const head = await this.client.request({
      method: 'HEAD',
      url: this.path('manifests', sel),
      headers: {accept: MANIFEST_ACCEPT},
      scopes: [this.pullScope],
      what,
      signal: opts.signal,
    })
    if (head.status === 404) throw await responseError(head, {what, notFound})
    if (head.status === 200) {
      await discard(head)
      const mediaType = mediaTypeOf(header(head, 'content-type'))
      const digest = header(head, 'docker-content-digest') ?? (isDigest(sel) ? sel : undefined)
      const size = Number(header(head, 'content-length'))
      if (digest !== undefined && isDigest(sel) && digest !== sel) {
        throw new OciError('DIGEST_MISMATCH', `${this.location} answered ${digest} for manifest ${sel}`)
      }
      if (mediaType && isManifestMediaType(mediaType) && digest && isDigest(digest) && Number.isSafeInteger(size) && size > 0) {
        if (size > MAX_MANIFEST_BYTES) {
          throw new OciError('MANIFEST_TOO_LARGE', `manifest ${digest} in ${this.location} is ${size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`)
        }
        // HEAD cannot say the artifactType; the bytes of a manifest this repository handled already can.
        const known = this.manifestCache.get(digest)
        const artifactType = known && known.length === size ? artifactTypeOf(known) : undefined
        return artifactType ? {mediaType, digest, size, artifactType} : {mediaType, digest, size}
      }
    } else if (head.status === 400 || head.status === 405 || head.status === 501) {
      await discard(head)
    } else {
      throw await responseError(head, {what, notFound})
    }
    // HEAD without usable headers (or not supported): GET the manifest and compute what HEAD should have said.
    const get = await this.getManifest(sel, what, notFound, opts)
    return get.desc
  }

  private async getManifest(sel: string, what: string, notFound: string, opts: OpOptions): Promise<{desc: Descriptor; data: Buffer}> {
    const res = await this.client.request({
      method: 'GET',
      url: this.path('manifests', sel),
      headers: {accept: MANIFEST_ACCEPT},
      scopes: [this.pullScope],
      what,
      signal: opts.signal,
    })
    if (res.status !== 200) throw await responseError(res, {what, notFound})
    const declared = Number(header(res, 'content-length'))
    if (Number.isSafeInteger(declared) && declared > MAX_MANIFEST_BYTES) {
      await discard(res)
      throw new OciError('MANIFEST_TOO_LARGE', `manifest ${sel} in ${this.location} is ${declared} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`)
    }
    const {data, truncated} = await readLimited(res.body, MAX_MANIFEST_BYTES + 1).catch((err) => {
      // A connection dropped mid-body: a network failure (transient), never a raw socket error.
      throw classifyNetworkError(err, res.url).error
    })
    if (truncated || data.length > MAX_MANIFEST_BYTES) {
      throw new OciError('MANIFEST_TOO_LARGE', `manifest ${sel} in ${this.location} is over the ${MAX_MANIFEST_BYTES}-byte limit`)
    }
    const digest = sha256Digest(data)
    if (isDigest(sel) && digest !== sel) {
      throw new OciError('DIGEST_MISMATCH', `manifest from ${this.location} does not match its digest: expected ${sel}, got ${digest}`)
    }
    const claimed = header(res, 'docker-content-digest')
    if (claimed !== undefined && claimed !== digest) {
      throw new OciError('DIGEST_MISMATCH', `${this.location} says manifest ${sel} is ${claimed}, but its bytes hash to ${digest}`)
    }
    let mediaType = mediaTypeOf(header(res, 'content-type'))
    if (!mediaType || !isManifestMediaType(mediaType)) {
      try {
        const mt = (JSON.parse(data.toString('utf8')) as ManifestJson).mediaType
        if (typeof mt === 'string') mediaType = mt
      } catch {
        // not JSON: reported below
      }
    }
    if (!mediaType || !isManifestMediaType(mediaType)) {
      throw new OciError('INVALID_MANIFEST', `${sel} in ${this.location} is not a manifest or index (media type ${mediaType ?? 'missing'})`)
    }
    this.remember(digest, data)
    const artifactType = artifactTypeOf(data)
    return {desc: artifactType ? {mediaType, digest, size: data.length, artifactType} : {mediaType, digest, size: data.length}, data}
  }

  async exists(desc: Descriptor, opts: OpOptions = {}): Promise<boolean> {
    return this.head(desc, this.pullScope, opts)
  }

  /** HEAD with the scope of the operation at hand (a push asks for pull,push once, not pull then push). */
  private async head(desc: Descriptor, scope: string, opts: OpOptions): Promise<boolean> {
    assertDigest(desc.digest)
    const manifest = isManifestMediaType(desc.mediaType)
    const what = `check ${manifest ? 'manifest' : 'blob'} ${desc.digest} in ${this.location}`
    const res = await this.client.request({
      method: 'HEAD',
      url: this.path(manifest ? 'manifests' : 'blobs', desc.digest),
      headers: manifest ? {accept: MANIFEST_ACCEPT} : {},
      scopes: [scope],
      what,
      signal: opts.signal,
    })
    if (res.status === 200) {
      await discard(res)
      return true
    }
    if (res.status === 404) {
      await discard(res)
      return false
    }
    throw await responseError(res, {what})
  }

  async fetch(desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    assertDigest(desc.digest)
    if (desc.data !== undefined) {
      const data = Buffer.from(desc.data, 'base64')
      verifyBytes(desc, data, `${this.location} (embedded data)`)
      return Readable.from([data])
    }
    const manifest = isManifestMediaType(desc.mediaType)
    if (manifest) {
      if (desc.size > MAX_MANIFEST_BYTES) {
        throw new OciError('MANIFEST_TOO_LARGE', `manifest ${desc.digest} declares ${desc.size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`)
      }
      const cached = this.manifestCache.get(desc.digest)
      if (cached && cached.length === desc.size) return Readable.from([cached])
    }
    const what = `fetch ${manifest ? 'manifest' : 'blob'} ${desc.digest} from ${this.location}`
    const notFound = `${manifest ? 'manifest' : 'blob'} ${desc.digest} not found in ${this.location}`
    const request = (range?: number) =>
      this.client.request({
        method: 'GET',
        url: this.path(manifest ? 'manifests' : 'blobs', desc.digest),
        headers: {...(manifest ? {accept: MANIFEST_ACCEPT} : {}), ...(range ? {range: `bytes=${range}-`} : {})},
        scopes: [this.pullScope],
        what,
        followRedirects: !manifest,
        signal: opts.signal,
      })
    const res = await request()
    if (res.status !== 200) throw await responseError(res, {what, notFound})
    // Asked for one digest, the registry names another: it is lying (or broken), so nothing it
    // serves is taken, even bytes that would hash right (as fetchManifest does for a resolve).
    const claimed = header(res, 'docker-content-digest')
    if (claimed !== undefined && claimed !== desc.digest) {
      await discard(res)
      throw new OciError('DIGEST_MISMATCH', `${this.location} says ${manifest ? 'manifest' : 'blob'} ${desc.digest} is ${claimed}: the Docker-Content-Digest of the answer is not the digest asked for`, {
        suggestions: ['the registry (or a proxy in front of it) serves other content than it was asked for: check it before trusting anything it serves'],
      })
    }
    const declared = Number(header(res, 'content-length'))
    if (Number.isSafeInteger(declared) && declared > desc.size) {
      await discard(res)
      throw new OciError('SIZE_MISMATCH', `${this.location} serves ${declared} bytes for ${desc.digest}, the descriptor says ${desc.size}`)
    }
    const body = manifest ? Readable.from([await this.manifestBody(res, desc, request, what, opts)]) : Readable.from(this.resumingBody(res, desc, request, what, opts))
    return verifying(body, desc, this.location)
  }

  /**
   * A manifest's bytes (small: read whole), asked again when the connection drops mid-body
   * (transient errors only, bounded attempts), and a drop that outlasts them a classified,
   * transient error: the raw socket error ("other side closed") must never reach the user.
   */
  private async manifestBody(first: HttpResponse, desc: Descriptor, request: () => Promise<HttpResponse>, what: string, opts: OpOptions): Promise<Buffer> {
    let res = first
    const policy = this.client.transport.retry
    for (let failures = 0; ; ) {
      try {
        // One byte over the descriptor's size is enough for verifying() to say SIZE_MISMATCH.
        return (await readLimited(res.body, desc.size + 1)).data
      } catch (err) {
        if (opts.signal?.aborted) throw abortError(opts.signal, what)
        const c = classifyNetworkError(err, res.url, failures + 1)
        failures++
        if (!c.retryable || failures >= policy.attempts) throw c.error
        await sleep(backoffDelay(failures, policy), opts.signal)
        res = await request()
        if (res.status !== 200) throw await responseError(res, {what})
      }
    }
  }

  /**
   * The bytes of a blob download, resuming with `Range: bytes=N-` when the connection drops
   * (transient errors only, bounded attempts). A server that ignores Range (200) is skipped ahead.
   */
  private async *resumingBody(
    first: HttpResponse,
    desc: Descriptor,
    request: (range?: number) => Promise<HttpResponse>,
    what: string,
    opts: OpOptions,
  ): AsyncGenerator<Buffer> {
    let res = first
    let received = 0
    let skip = 0
    let failures = 0
    const policy = this.client.transport.retry
    for (;;) {
      try {
        for await (const chunk of res.body) {
          let b = chunk as Buffer
          if (skip > 0) {
            const n = Math.min(skip, b.length)
            skip -= n
            b = b.subarray(n)
            if (b.length === 0) continue
          }
          received += b.length
          yield b
        }
        return
      } catch (err) {
        if (opts.signal?.aborted) throw abortError(opts.signal, what)
        const c = classifyNetworkError(err, res.url)
        failures++
        if (!c.retryable || failures >= policy.attempts || received >= desc.size) throw c.error
        await sleep(backoffDelay(failures, policy), opts.signal)
        res = await request(received)
        if (res.status === 206) {
          const m = /^bytes (\d+)-/.exec(header(res, 'content-range') ?? '')
          if (!m || Number(m[1]) !== received) {
            await discard(res)
            throw new OciError('REGISTRY_ERROR', `${what}: resuming at byte ${received} got an unexpected Content-Range`, {exit: EXIT.TRANSIENT})
          }
        } else if (res.status === 200) {
          skip = received
        } else {
          throw await responseError(res, {what})
        }
      }
    }
  }

  // ---- write -----------------------------------------------------------------------------

  async push(expected: Descriptor, body: Readable | Uint8Array, opts: PushOptions = {}): Promise<void> {
    assertDigest(expected.digest)
    throwIfAborted(opts.signal, `push ${expected.digest} to ${this.location}`)
    if (isManifestMediaType(expected.mediaType)) return this.pushManifest(expected, body, expected.digest, opts)
    return this.pushBlob(expected, body, opts)
  }

  async pushReference(expected: Descriptor, body: Readable | Uint8Array, reference: string, opts: OpOptions = {}): Promise<void> {
    assertDigest(expected.digest)
    const sel = this.selector(reference)
    if (isDigest(sel) && sel !== expected.digest) {
      throw new OciError('DIGEST_MISMATCH', `cannot push ${expected.digest} under digest ${sel}`)
    }
    if (!isManifestMediaType(expected.mediaType)) {
      throw new OciError('UNSUPPORTED', `only manifests can be pushed by reference, not ${expected.mediaType}`)
    }
    return this.pushManifest(expected, body, sel, opts)
  }

  async tag(desc: Descriptor, tag: string, opts: OpOptions = {}): Promise<void> {
    assertDigest(desc.digest)
    assertTag(tag)
    if (!isManifestMediaType(desc.mediaType)) throw new OciError('UNSUPPORTED', `only manifests can be tagged, not ${desc.mediaType}`)
    let data = this.manifestCache.get(desc.digest)
    if (!data) {
      const what = `read manifest ${desc.digest} of ${this.location} to tag it "${tag}"`
      data = (await this.getManifest(desc.digest, what, `manifest ${desc.digest} not found in ${this.location}`, opts)).data
    }
    verifyBytes(desc, data, this.location)
    await this.putManifest(desc, data, tag, opts)
  }

  private remember(digest: string, data: Buffer): void {
    if (data.length > MANIFEST_CACHE_BYTES / MANIFEST_CACHE_ENTRIES) return
    this.manifestCache.delete(digest)
    this.manifestCache.set(digest, data)
    while (this.manifestCache.size > MANIFEST_CACHE_ENTRIES) this.manifestCache.delete(this.manifestCache.keys().next().value!)
  }

  private async readManifestBody(expected: Descriptor, body: Readable | Uint8Array): Promise<Buffer> {
    if (expected.size > MAX_MANIFEST_BYTES) {
      if (!(body instanceof Uint8Array)) body.destroy()
      throw new OciError('MANIFEST_TOO_LARGE', `manifest ${expected.digest} is ${expected.size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit registries accept`)
    }
    let data: Buffer
    if (body instanceof Uint8Array) data = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
    else {
      const {data: d, truncated} = await readLimited(body, expected.size + 1).catch((err) => {
        throw sourceFailure(err, expected)
      })
      if (truncated || d.length > expected.size) throw new OciError('SIZE_MISMATCH', `manifest ${expected.digest} is larger than its descriptor size ${expected.size}`)
      data = d
    }
    verifyBytes(expected, data)
    return data
  }

  private async pushManifest(expected: Descriptor, body: Readable | Uint8Array, reference: string, opts: OpOptions): Promise<void> {
    const data = await this.readManifestBody(expected, body)
    let manifest: ManifestJson
    try {
      manifest = JSON.parse(data.toString('utf8')) as ManifestJson
    } catch {
      throw new OciError('INVALID_MANIFEST', `manifest ${expected.digest} is not JSON`)
    }
    await this.putManifest(expected, data, reference, opts)
    this.remember(expected.digest, data)
    const subject = manifest.subject
    if (subject && typeof subject === 'object' && typeof subject.digest === 'string') {
      assertDigest(subject.digest, 'subject digest')
      await this.indexReferrer(subject, expected, manifest, opts)
    }
  }

  private async putManifest(expected: Descriptor, data: Buffer, reference: string, opts: OpOptions): Promise<void> {
    const what = `push manifest ${expected.digest}${reference === expected.digest ? '' : ` as "${reference}"`} to ${this.location}`
    const res = await this.client.request({
      method: 'PUT',
      url: this.path('manifests', reference),
      headers: {'content-type': expected.mediaType},
      body: data,
      scopes: [this.pushScope],
      what,
      signal: opts.signal,
    })
    if (res.status !== 201 && res.status !== 200 && res.status !== 202 && res.status !== 204) throw await responseError(res, {what})
    await discard(res)
    const got = header(res, 'docker-content-digest')
    if (got !== undefined && got !== expected.digest) {
      throw new OciError('DIGEST_MISMATCH', `${this.location} stored manifest ${expected.digest} as ${got}: the registry changed its bytes`, {
        suggestions: ['the registry re-serialised the manifest; signatures over the original digest will not verify there'],
      })
    }
  }

  private async pushBlob(expected: Descriptor, body: Readable | Uint8Array, opts: PushOptions, session?: URL): Promise<void> {
    if (!session && (await this.head(expected, this.pushScope, opts))) {
      if (!(body instanceof Uint8Array)) body.destroy()
      return
    }
    if (body instanceof Uint8Array || expected.size <= this.monolithicMax) {
      let data: Buffer
      if (body instanceof Uint8Array) data = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
      else {
        const reader = new ChunkReader(body)
        try {
          data = Buffer.allocUnsafe(expected.size)
          const n = await reader.fill(data)
          if (n < expected.size) throw new OciError('SIZE_MISMATCH', `blob ${expected.digest} ended after ${n} bytes, descriptor says ${expected.size}`)
          if ((await reader.fill(Buffer.allocUnsafe(1))) > 0) {
            throw new OciError('SIZE_MISMATCH', `blob ${expected.digest} is larger than its descriptor size ${expected.size}`)
          }
        } catch (err) {
          throw sourceFailure(err, expected)
        } finally {
          await reader.close()
        }
      }
      verifyBytes(expected, data, 'the content to push')
      return this.uploadMonolithic(expected, data, opts, session)
    }
    if (this.chunkSize !== undefined) return this.uploadChunked(expected, body, this.chunkSize, opts, session)
    return this.uploadStreamed(expected, body, opts, session)
  }

  /**
   * POST, one PATCH streaming the whole blob, PUT `&digest=`. Not re-sendable: after a transient
   * failure the upload restarts from `opts.reopen()` when given, else fails as transient.
   */
  private async uploadStreamed(expected: Descriptor, body: Readable, opts: PushOptions, session?: URL): Promise<void> {
    const what = `push blob ${expected.digest} (${expected.size} bytes) to ${this.location}`
    const policy = this.client.transport.retry
    let source = body
    for (let attempt = 1; ; attempt++) {
      let location = attempt === 1 ? session : undefined
      let committed = false
      try {
        location ??= (await this.startUpload(what, opts)).location!
        const guard = new HoldbackVerifier(expected, isVerifying(source, expected))
        let sourceError: unknown
        source.on('error', (err) => {
          sourceError = err
          guard.destroy(err)
        })
        source.pipe(guard)
        let res: HttpResponse
        try {
          res = await this.client.request({
            method: 'PATCH',
            url: location,
            headers: {
              'content-type': 'application/octet-stream',
              'content-length': String(expected.size),
              'content-range': `0-${expected.size - 1}`,
            },
            body: guard,
            retry: false,
            scopes: [this.pushScope],
            what,
            signal: opts.signal,
          })
        } catch (err) {
          // The content's own failure (source error, wrong size or digest) wins over what the socket saw.
          if (sourceError !== undefined) throw sourceFailure(sourceError, expected)
          throw guard.failure ?? err
        }
        if (guard.failure) {
          await discard(res)
          throw guard.failure
        }
        if (res.status !== 202 && res.status !== 204) throw await responseError(res, {what})
        await discard(res)
        const stored = storedMismatch(res, expected.size)
        if (stored !== undefined) {
          throw new OciError('NETWORK', `${what}: the registry holds ${stored} of ${expected.size} bytes after the upload`, {exit: EXIT.TRANSIENT})
        }
        await this.commitChunked(expected, nextLocation(res, location), what, opts)
        committed = true
        return
      } catch (err) {
        if (location && !committed) await this.cancelUpload(location, opts)
        if (!isTransientOci(err) || opts.signal?.aborted) throw err
        if (!opts.reopen || attempt >= policy.attempts) {
          throw new OciError('NETWORK', `${(err as Error).message} (the streamed upload cannot be re-sent; run the command again: blobs already uploaded are skipped)`, {
            exit: EXIT.TRANSIENT,
            cause: err,
            suggestions: (err as OciError).suggestions,
          })
        }
        if (!source.destroyed) source.destroy()
        await sleep(backoffDelay(attempt, policy), opts.signal)
        source = await opts.reopen()
      }
    }
  }

  /** POST an upload session; returns its Location (resolved) and the registry's minimum chunk size, if any. */
  private async startUpload(what: string, opts: OpOptions, query = '', extraScopes: string[] = []): Promise<{status: number; location?: URL; minChunk?: number; res: HttpResponse}> {
    const res = await this.client.request({
      method: 'POST',
      url: `${this.path('blobs', 'uploads/')}${query}`,
      scopes: [this.pushScope, ...extraScopes],
      what,
      signal: opts.signal,
    })
    if (res.status !== 202 && res.status !== 201) throw await responseError(res, {what})
    const loc = header(res, 'location')
    const location = loc ? new URL(loc, res.url) : undefined
    const min = Number(header(res, 'oci-chunk-min-length'))
    await discard(res)
    if (res.status === 202 && !location) throw new OciError('REGISTRY_ERROR', `${what}: ${this.registry} opened an upload without a Location header`)
    return {status: res.status, location, minChunk: Number.isSafeInteger(min) && min > 0 ? min : undefined, res}
  }

  private async cancelUpload(location: URL, opts: OpOptions): Promise<void> {
    try {
      const res = await this.client.request({
        method: 'DELETE',
        url: location,
        scopes: [this.pushScope],
        what: `cancel an upload to ${this.location}`,
        signal: opts.signal,
      })
      await discard(res)
    } catch {
      // Best effort: an abandoned session is purged by the registry.
    }
  }

  private withDigest(location: URL, digest: string): URL {
    const u = new URL(location)
    u.searchParams.set('digest', digest)
    return u
  }

  private checkCommitted(res: HttpResponse, expected: Descriptor, what: string): void {
    const got = header(res, 'docker-content-digest')
    if (got !== undefined && got !== expected.digest) {
      throw new OciError('DIGEST_MISMATCH', `${what}: ${this.registry} stored ${got} instead of ${expected.digest}`)
    }
  }

  /** POST + one PUT with the whole blob. Restarts the whole upload (new session) on a transient failure. */
  private async uploadMonolithic(expected: Descriptor, data: Buffer, opts: OpOptions, session?: URL): Promise<void> {
    const what = `push blob ${expected.digest} (${expected.size} bytes) to ${this.location}`
    const policy = this.client.transport.retry
    for (let attempt = 1; ; attempt++) {
      let location = attempt === 1 ? session : undefined
      try {
        location ??= (await this.startUpload(what, opts)).location!
        await this.putDigest(location, expected, data, what, opts)
        return
      } catch (err) {
        if (!isTransientOci(err) || attempt >= policy.attempts || opts.signal?.aborted) throw err
        if (location) await this.cancelUpload(location, opts)
        await sleep(backoffDelay(attempt, policy), opts.signal)
      }
    }
  }

  private transitError(what: string, cause: OciError): OciError {
    return new OciError('NETWORK', `${what}: the registry received different bytes than were sent (damaged in transit)`, {
      exit: EXIT.TRANSIENT,
      cause,
      suggestions: ['run the command again; if it persists, check proxies between here and the registry'],
    })
  }

  /**
   * POST, PATCH chunks, PUT `&digest=`. Memory: two chunk buffers. A chunk whose PATCH fails
   * transiently is resent from the offset the registry reports (upload status GET); when the
   * registry cannot say (distribution invalidates the session state once bytes landed), the
   * upload fails as transient and a rerun starts over (blobs already pushed are skipped).
   */
  private async uploadChunked(expected: Descriptor, body: Readable, chunkSize0: number, opts: OpOptions, session?: URL): Promise<void> {
    const what = `push blob ${expected.digest} (${expected.size} bytes) to ${this.location}`
    const reader = new ChunkReader(body)
    let location: URL | undefined = session
    let committed = false
    try {
      let chunkSize = chunkSize0
      if (!location) {
        const s = await this.startUpload(what, opts)
        location = s.location!
        if (s.minChunk && s.minChunk > chunkSize) chunkSize = Math.min(s.minChunk, MAX_CHUNK_SIZE)
      }
      let loc: URL = location
      chunkSize = Math.min(chunkSize, expected.size)
      // A source that verifies itself (a Target's fetch stream) errors before its end on bad bytes: hash once.
      const hash = isVerifying(body, expected) ? undefined : createHash('sha256')
      let current = Buffer.allocUnsafe(chunkSize)
      let spare = Buffer.allocUnsafe(chunkSize)
      let offset = 0
      let n = await reader.fill(current).catch((err) => {
        throw sourceFailure(err, expected)
      })
      while (n > 0) {
        if (offset + n > expected.size) {
          throw new OciError('SIZE_MISMATCH', `blob ${expected.digest} is larger than its descriptor size ${expected.size}`)
        }
        const chunk = current.subarray(0, n)
        hash?.update(chunk)
        // Overlap: read the next chunk from the source while this one is on the wire.
        const [sent, next] = await Promise.allSettled([this.sendChunk(loc, chunk, offset, what, opts), reader.fill(spare)])
        if (next.status === 'rejected') throw sourceFailure(next.reason, expected)
        if (sent.status === 'rejected') throw sent.reason
        loc = location = sent.value
        offset += n
        ;[current, spare] = [spare, current]
        n = next.value
      }
      if (offset !== expected.size) {
        throw new OciError('SIZE_MISMATCH', `blob ${expected.digest} ended after ${offset} bytes, descriptor says ${expected.size}`)
      }
      const got = hash ? `sha256:${hash.digest('hex')}` : expected.digest
      if (got !== expected.digest) {
        throw new OciError('DIGEST_MISMATCH', `the content to push does not match its digest: expected ${expected.digest}, got ${got}`)
      }
      await this.commitChunked(expected, loc, what, opts)
      committed = true
    } finally {
      await reader.close()
      if (!committed && location) await this.cancelUpload(location, opts)
    }
  }

  /**
   * The PUT `?digest=` that completes an upload: with the whole blob (monolithic) or empty after
   * PATCHes. We hashed the bytes ourselves, so a registry digest complaint means damage in transit.
   */
  private async putDigest(location: URL, expected: Descriptor, data: Buffer | undefined, what: string, opts: OpOptions): Promise<void> {
    const res = await this.client.request({
      method: 'PUT',
      url: this.withDigest(location, expected.digest),
      headers: data ? {'content-type': 'application/octet-stream'} : {'content-type': 'application/octet-stream', 'content-length': '0'},
      ...(data ? {body: data} : {}),
      retry: false,
      scopes: [this.pushScope],
      what,
      signal: opts.signal,
    })
    if (res.status === 201 || res.status === 204 || res.status === 200) {
      await discard(res)
      this.checkCommitted(res, expected, what)
      return
    }
    const err = await responseError(res, {what})
    throw err.code === 'DIGEST_MISMATCH' ? this.transitError(what, err) : err
  }

  private async commitChunked(expected: Descriptor, location: URL, what: string, opts: OpOptions): Promise<void> {
    try {
      await this.putDigest(location, expected, undefined, what, opts)
    } catch (err) {
      // The commit may have landed although its answer was lost: the blob's presence decides.
      if (isTransientOci(err) && !opts.signal?.aborted && (await this.head(expected, this.pushScope, opts).catch(() => false))) return
      throw err
    }
  }

  /** PATCHes one chunk at `start`; returns the newest Location. */
  private async sendChunk(location: URL, chunk: Buffer, start: number, what: string, opts: OpOptions): Promise<URL> {
    const policy = this.client.transport.retry
    let loc = location
    let from = start
    let data = chunk
    const end = start + chunk.length
    for (let attempt = 1; ; attempt++) {
      let failure: OciError
      try {
        const res = await this.client.request({
          method: 'PATCH',
          url: loc,
          headers: {'content-type': 'application/octet-stream', 'content-range': `${from}-${from + data.length - 1}`},
          body: data,
          retry: false,
          scopes: [this.pushScope],
          what,
          signal: opts.signal,
        })
        if (res.status === 202 || res.status === 204) {
          await discard(res)
          const stored = storedMismatch(res, end)
          if (stored !== undefined) {
            throw new OciError('REGISTRY_ERROR', `${what}: the registry holds ${stored} bytes after a chunk ending at ${end}`, {exit: EXIT.TRANSIENT})
          }
          return nextLocation(res, loc)
        }
        failure = await responseError(res, {what})
      } catch (err) {
        if (!isOciError(err)) throw err
        failure = err
      }
      if (!isTransientOci(failure) || attempt >= policy.attempts || opts.signal?.aborted) throw failure
      await sleep(backoffDelay(attempt, policy), opts.signal)
      // Where is the upload now? (GET <Location>: 204 + Range, distribution-spec "get upload status")
      const status = await this.uploadStatus(loc, what, opts)
      if (!status) {
        throw new OciError('NETWORK', `${what}: the connection failed after byte ${from} and the registry cannot resume this upload`, {
          exit: EXIT.TRANSIENT,
          cause: failure,
          suggestions: ['run the command again: blobs already uploaded are skipped'],
        })
      }
      loc = status.location
      if (status.offset === end) return loc
      if (status.offset < start || status.offset > end) {
        throw new OciError('NETWORK', `${what}: after a failed chunk the registry holds ${status.offset} bytes, outside the chunk ${start}-${end}`, {
          exit: EXIT.TRANSIENT,
          cause: failure,
          suggestions: ['run the command again'],
        })
      }
      from = status.offset
      data = chunk.subarray(from - start)
    }
  }

  private async uploadStatus(location: URL, what: string, opts: OpOptions): Promise<{offset: number; location: URL} | undefined> {
    try {
      const res = await this.client.request({method: 'GET', url: location, scopes: [this.pushScope], what, signal: opts.signal})
      await discard(res)
      if (res.status !== 204 && res.status !== 200) return undefined
      const offset = rangeEnd(header(res, 'range'))
      if (offset === undefined) return undefined
      return {offset, location: nextLocation(res, location)}
    } catch {
      return undefined
    }
  }

  async mount(desc: Descriptor, fromRepo: string, opts: MountOptions = {}): Promise<boolean> {
    assertDigest(desc.digest)
    assertRepository(fromRepo)
    const what = `mount blob ${desc.digest} from ${this.registry}/${fromRepo} into ${this.location}`
    const q = `?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(fromRepo)}`
    const s = await this.startUpload(what, opts, q, [repositoryScope(fromRepo, 'pull')])
    if (s.status === 201) {
      this.checkCommitted(s.res, desc, what)
      return true
    }
    // 202: the registry could not mount and opened an ordinary upload session instead.
    if (opts.getContent) {
      await this.pushBlob(desc, await opts.getContent(), opts, s.location)
      return false
    }
    await this.cancelUpload(s.location!, opts)
    return false
  }

  async delete(desc: Descriptor, opts: OpOptions = {}): Promise<void> {
    assertDigest(desc.digest)
    const manifest = isManifestMediaType(desc.mediaType)
    const what = `delete ${manifest ? 'manifest' : 'blob'} ${desc.digest} from ${this.location}`
    const res = await this.client.request({
      method: 'DELETE',
      url: this.path(manifest ? 'manifests' : 'blobs', desc.digest),
      scopes: [repositoryScope(this.repository, 'delete'), this.pushScope],
      what,
      signal: opts.signal,
    })
    if (res.status !== 202 && res.status !== 200 && res.status !== 204) {
      throw await responseError(res, {what, notFound: `${manifest ? 'manifest' : 'blob'} ${desc.digest} not found in ${this.location}`})
    }
    await discard(res)
    this.manifestCache.delete(desc.digest)
  }

  // ---- tags ------------------------------------------------------------------------------

  /**
   * Tags, following `Link` pagination when the registry offers it, sorted (registries do not
   * sort). Referrers machinery tags (`sha256-<hex>`, cosign's `sha256-<hex>.sig`) are left out
   * unless `all` is set: they are not versions.
   */
  async tags(opts: OpOptions & {all?: boolean} = {}): Promise<string[]> {
    const what = `list tags of ${this.location}`
    const all = new Set<string>()
    const seen = new Set<string>()
    let url: URL | undefined = this.client.url(this.path('tags', 'list'))
    for (let page = 0; url && page < MAX_TAG_PAGES; page++) {
      if (seen.has(url.href)) break
      seen.add(url.href)
      const res = await this.client.request({method: 'GET', url, scopes: [this.pullScope], what, signal: opts.signal})
      if (res.status !== 200) throw await responseError(res, {what, notFound: `repository ${this.location} not found`})
      const link = res.headers.link
      const {data, truncated} = await readLimited(res.body, 64 * 1024 * 1024)
      if (truncated) throw new OciError('REGISTRY_ERROR', `${what}: the tag list is larger than 64 MiB`)
      let parsed: {tags?: unknown}
      try {
        parsed = JSON.parse(data.toString('utf8'))
      } catch {
        throw new OciError('REGISTRY_ERROR', `${what}: the registry answered with something that is not JSON`, {exit: EXIT.USAGE})
      }
      if (Array.isArray(parsed.tags)) for (const t of parsed.tags) if (typeof t === 'string') all.add(t)
      url = nextLink(link, res.url)
    }
    return [...all].filter((t) => opts.all || !MACHINERY_TAG_RE.test(t)).sort()
  }

  // ---- referrers -------------------------------------------------------------------------

  async predecessors(desc: Descriptor, opts: OpOptions & {artifactType?: string} = {}): Promise<Descriptor[]> {
    assertDigest(desc.digest)
    let list: Descriptor[] | undefined
    if (this.referrersFound !== 'tag') {
      list = await this.referrersApi(desc.digest, opts)
      if (list === undefined && this.referrersOption === 'api') {
        throw new OciError('UNSUPPORTED', `${this.registry} does not offer the referrers API for ${this.location}`, {
          suggestions: ['use the referrers tag fallback (referrers: "auto" or "tag")'],
        })
      }
    }
    if (list === undefined) {
      this.referrersFound = 'tag'
      list = await this.referrersFromTag(desc.digest, opts)
    } else this.referrersFound = 'api'
    const at = opts.artifactType
    return at === undefined ? list : list.filter((d) => d.artifactType === at)
  }

  /**
   * `GET /v2/<name>/referrers/<digest>`: the list, or undefined when the registry lacks the API.
   * Only a 200 with an image index counts (ggcr's rule, cosign-formats.md §b): 2.8 answers a
   * plain-text 404, others 400/405.
   */
  private async referrersApi(digest: string, opts: OpOptions & {artifactType?: string}): Promise<Descriptor[] | undefined> {
    const what = `list referrers of ${digest} in ${this.location}`
    const out: Descriptor[] = []
    let url: URL | undefined = this.client.url(this.path('referrers', digest))
    if (opts.artifactType) url.searchParams.set('artifactType', opts.artifactType)
    const seen = new Set<string>()
    for (let page = 0; url && page < MAX_TAG_PAGES; page++) {
      if (seen.has(url.href)) break
      seen.add(url.href)
      const res = await this.client.request({method: 'GET', url, headers: {accept: MT.ociIndex}, scopes: [this.pullScope], what, signal: opts.signal})
      if (res.status >= 500 || res.status === 429) throw await responseError(res, {what})
      if (res.status !== 200 || mediaTypeOf(header(res, 'content-type')) !== MT.ociIndex) {
        await discard(res)
        if (page === 0) return undefined
        throw new OciError('REGISTRY_ERROR', `${what}: page ${page + 1} answered ${res.status}`, {exit: EXIT.TRANSIENT})
      }
      const {data, truncated} = await readLimited(res.body, MAX_MANIFEST_BYTES + 1)
      if (truncated) throw new OciError('MANIFEST_TOO_LARGE', `${what}: the referrers index is over ${MAX_MANIFEST_BYTES} bytes`)
      out.push(...this.parseIndex(data, what).manifests)
      url = nextLink(res.headers.link, res.url)
    }
    return out
  }

  private fallbackTag(digest: string): string {
    return `sha256-${digest.slice('sha256:'.length)}`
  }

  private parseIndex(data: Buffer, what: string): {index: IndexJson; manifests: Descriptor[]} {
    let index: IndexJson
    try {
      index = JSON.parse(data.toString('utf8')) as IndexJson
    } catch {
      throw new OciError('INVALID_MANIFEST', `${what}: the referrers index is not JSON`)
    }
    if (index === null || typeof index !== 'object' || (index.mediaType !== undefined && index.mediaType !== MT.ociIndex)) {
      throw new OciError('INVALID_MANIFEST', `${what}: expected an OCI image index, got ${index?.mediaType ?? typeof index}`)
    }
    const manifests = (Array.isArray(index.manifests) ? index.manifests : []).filter(
      (d): d is Descriptor => d !== null && typeof d === 'object' && typeof d.digest === 'string' && isDigest(d.digest) && typeof d.mediaType === 'string',
    )
    return {index, manifests}
  }

  /** Reads the `sha256-<hex>` tag index: undefined when the tag does not exist. */
  private async readFallbackIndex(subject: string, opts: OpOptions): Promise<{index: IndexJson; manifests: Descriptor[]} | undefined> {
    const tag = this.fallbackTag(subject)
    const what = `read referrers tag "${tag}" in ${this.location}`
    const res = await this.client.request({
      method: 'GET',
      url: this.path('manifests', tag),
      headers: {accept: MANIFEST_ACCEPT},
      scopes: [this.pullScope],
      what,
      signal: opts.signal,
    })
    if (res.status === 404) {
      await discard(res)
      return undefined
    }
    if (res.status !== 200) throw await responseError(res, {what})
    const mt = mediaTypeOf(header(res, 'content-type'))
    const {data, truncated} = await readLimited(res.body, MAX_MANIFEST_BYTES + 1)
    if (truncated) throw new OciError('MANIFEST_TOO_LARGE', `${what}: over ${MAX_MANIFEST_BYTES} bytes`)
    if (mt !== undefined && mt !== MT.ociIndex && isManifestMediaType(mt)) {
      throw new OciError('INVALID_MANIFEST', `${what}: the tag holds a ${mt}, not an OCI image index of referrers`, {
        suggestions: [`the tag "${tag}" is reserved for the referrers index (OCI distribution-spec v1.1); move what is there`],
      })
    }
    return this.parseIndex(data, what)
  }

  private async referrersFromTag(subject: string, opts: OpOptions): Promise<Descriptor[]> {
    const found = await this.readFallbackIndex(subject, opts)
    if (!found) return []
    // The tag index is not maintained by the registry: deleted (or garbage-collected) referrers stay
    // listed (registry-notes.md §8.11). Check each entry; fill in artifactType when an old writer left it out.
    const checked = await mapLimit(found.manifests, 8, async (d) => {
      if (d.artifactType !== undefined) return (await this.exists(d, opts)) ? d : undefined
      try {
        const {data} = await this.getManifest(d.digest, `read referrer ${d.digest} of ${this.location}`, '', opts)
        const m = JSON.parse(data.toString('utf8')) as ManifestJson
        const artifactType = m.artifactType ?? m.config?.mediaType
        return artifactType ? {...d, artifactType} : d
      } catch (err) {
        if (isOciError(err, 'NOT_FOUND')) return undefined
        throw err
      }
    })
    return checked.filter((d): d is Descriptor => d !== undefined)
  }

  /** After pushing a manifest with a subject: nothing when the registry keeps the referrers API, else the tag fallback. */
  private async indexReferrer(subject: Descriptor, pushed: Descriptor, manifest: ManifestJson, opts: OpOptions): Promise<void> {
    if (this.referrersFound === 'api') return
    if (this.referrersFound === undefined) {
      // Probe by calling the API (an OCI-Subject header alone has been seen on registries without it).
      const api = await this.referrersApi(subject.digest, opts)
      this.referrersFound = api === undefined ? 'tag' : 'api'
      if (api !== undefined) return
    }
    const entry: Descriptor = {mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size}
    const artifactType = manifest.artifactType ?? manifest.config?.mediaType
    if (typeof artifactType === 'string') entry.artifactType = artifactType
    if (manifest.annotations && typeof manifest.annotations === 'object' && Object.keys(manifest.annotations).length > 0) {
      entry.annotations = manifest.annotations
    }
    await this.addToFallbackIndex(subject.digest, entry, opts)
  }

  /**
   * Read-modify-write of the `sha256-<hex>` index. Registries have no conditional PUT, so two
   * writers can race (registry-notes.md §8.10): a writer that read the index before our PUT and
   * writes after it drops our entry. Reading back once right after the PUT is not enough (that
   * writer may still be between its GET and its PUT: 20 concurrent pushes lost a signature,
   * test/e2e/load.test.ts), so the entry is checked again after settle delays longer than this
   * writer's own read-to-write time, and merged in again whenever it went missing.
   *
   * Limit (README "Referrers on registries without the API"): a writer stalled between its read
   * and its write for longer than the settle time can still drop an entry. Registries with the
   * OCI 1.1 referrers API have no such race.
   */
  private async addToFallbackIndex(subject: string, entry: Descriptor, opts: OpOptions): Promise<void> {
    const tag = this.fallbackTag(subject)
    const present = (found: {manifests: Descriptor[]} | undefined) => found?.manifests.some((d) => d.digest === entry.digest) === true
    for (let attempt = 1; attempt <= FALLBACK_WRITE_ATTEMPTS; attempt++) {
      const readAt = Date.now()
      const found = await this.readFallbackIndex(subject, opts)
      const existing = found?.manifests ?? []
      const same = existing.find((d) => d.digest === entry.digest)
      if (same && JSON.stringify(same) === JSON.stringify(entry) && attempt === 1) return
      if (!same || JSON.stringify(same) !== JSON.stringify(entry)) {
        const manifests = [...existing.filter((d) => d.digest !== entry.digest), entry].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
        const index: IndexJson = {schemaVersion: 2, mediaType: MT.ociIndex, manifests}
        if (found?.index.annotations) index.annotations = found.index.annotations
        const data = Buffer.from(JSON.stringify(index))
        if (data.length > MAX_MANIFEST_BYTES) {
          throw new OciError('MANIFEST_TOO_LARGE', `the referrers index "${tag}" in ${this.location} would exceed ${MAX_MANIFEST_BYTES} bytes`)
        }
        await this.putManifest({mediaType: MT.ociIndex, digest: sha256Digest(data), size: data.length}, data, tag, opts)
      }
      // Settle: another writer's read-to-write window is about as long as ours; wait past it (with
      // jitter, so writers that collided do not collide again) and check that the entry stayed.
      const settle = Math.min(FALLBACK_SETTLE_MAX_MS, Math.max(FALLBACK_SETTLE_MIN_MS, 2 * (Date.now() - readAt)))
      let stayed = true
      for (let check = 0; check < FALLBACK_SETTLE_CHECKS && stayed; check++) {
        await sleep(settle / 2 + Math.floor(Math.random() * settle), opts.signal)
        stayed = present(await this.readFallbackIndex(subject, opts))
      }
      if (stayed) return
    }
    throw new OciError('REGISTRY_ERROR', `could not add referrer ${entry.digest} to "${tag}" in ${this.location}: other writers kept replacing the index`, {
      exit: EXIT.TRANSIENT,
      suggestions: ['run the command again'],
    })
  }
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker))
  return out
}

/** Opens a repository from a reference string (`host[:port]/repo[:tag]`); the tag/digest is left to the caller. */
export function openRemote(ref: string, opts: RemoteRepositoryOptions = {}): {repo: RemoteRepository; reference: RegistryReference} {
  const reference = parseRegistryReference(ref)
  return {repo: new RemoteRepository(reference, opts), reference}
}

/**
 * OCI image layout inside a tar (`oci-archive:FILE`): a read-only Target for import, and a
 * deterministic writer for export (formats.md "Sealed export", issue 6).
 *
 * Reading treats the archive as hostile. It is scanned once, in constant memory: a plain tar is
 * indexed (each blob's byte range) and blobs are later served straight from the file; a
 * gzip-wrapped tar is stream-extracted into a private temporary directory, with absolute and
 * ratio caps against gzip bombs. Path traversal, absolute paths, symlinks, hard links, devices,
 * FIFOs, duplicate entries, forged sizes, truncation, junk entries and an index.json naming
 * missing blobs are each refused with UNSAFE_ARCHIVE or INVALID_LAYOUT and a message naming the
 * entry; nothing is ever written outside the temporary directory, which is removed on failure
 * and on close(). Every blob is verified while scanning (by default) and again on every fetch.
 */
import {createHash} from 'node:crypto'
import {close as closeFd, constants as FS, fstat, open as openFd, read as readFd, rmSync} from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable, Transform, type TransformCallback, Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {promisify} from 'node:util'
import zlib from 'node:zlib'

import tar from 'tar-stream'

import {AiboxError} from '../../errors.js'
import {fileSink, writeFileAtomic} from '../../util/atomic.js'
import {abortError, throwIfAborted} from '../abort.js'
import {assertDigest, fetchAll, verifying} from '../content.js'
import {OciError} from '../errors.js'
import {fsError, syncDir} from '../fsutil.js'
import {isGraphNodeType, parseManifest, referrerDescriptor, sniffManifestMediaType, subjectOf, successorsOf} from '../manifest.js'
import type {Descriptor, OpOptions, ReadOnlyGraphTarget, TagLister} from '../target.js'
import {isDigestRef, predecessorList} from './common.js'
import {
  checkLayoutFile,
  indexBytes,
  indexTags,
  LayoutDirStore,
  type LayoutIndex,
  lookupTag,
  OCI_LAYOUT_BYTES,
  parseIndexJson,
  stripRefName,
} from './layout-dir.js'

const GiB = 1024 * 1024 * 1024
const MiB = 1024 * 1024
const READ_CHUNK = MiB
const BLOB_NAME_RE = /^blobs\/sha256\/([a-f0-9]{64})$/
const MAX_SMALL_FILE = 4 * MiB

/** Limits applied while scanning an archive; every one is a refusal, never a truncation. */
export interface TarLimits {
  /** Most entries (files and directories) an archive may hold. Default 100,000. */
  maxEntries?: number
  /** Most bytes the (decompressed) tar stream may have. Default 64 GiB. */
  maxTotalBytes?: number
  /** Largest single blob. Default: maxTotalBytes. */
  maxBlobBytes?: number
  /** gzip: most decompressed bytes per compressed byte, once past `ratioSlackBytes`. Default 200. */
  maxRatio?: number
  /** gzip: decompressed bytes allowed before the ratio is enforced. Default 32 MiB. */
  ratioSlackBytes?: number
}

const DEFAULT_LIMITS: Required<TarLimits> = {
  maxEntries: 100_000,
  maxTotalBytes: 64 * GiB,
  maxBlobBytes: 64 * GiB,
  maxRatio: 200,
  ratioSlackBytes: 32 * MiB,
}

export interface LayoutTarOptions {
  /** Hash every blob while scanning and refuse the archive on any mismatch (default true). Fetches verify regardless. */
  verifyOnOpen?: boolean
  /** Parent of the temporary directory a gzip-wrapped archive is extracted into (default os.tmpdir()). */
  tmpDir?: string
  limits?: TarLimits
  signal?: AbortSignal
}

/** What the scan found, for callers that check completeness (import: "nothing unlisted"). */
export interface LayoutTarReport {
  compressed: 'none' | 'gzip'
  /** Blob entries in the archive. */
  blobs: number
  /** Sum of blob sizes. */
  blobBytes: number
  /** Blobs present in the archive but reachable from no index.json entry, sorted. */
  unreferenced: string[]
}

interface BlobEntry {
  size: number
  /** Plain tar: byte offset of the data in the archive. */
  offset?: number
  /** gzip: extracted file. */
  file?: string
}

const openP = promisify(openFd)
const fstatP = promisify(fstat)
const readP = promisify(readFd)
const closeP = promisify(closeFd)

/**
 * Reads bytes [start, end) of an fd with positional reads. Unlike fs.createReadStream({fd}),
 * destroying it never closes the shared fd. A file that shrinks under us is an error, not an EOF.
 */
function rangeStream(fd: number, start: number, end: number): Readable {
  let pos = start
  return new Readable({
    highWaterMark: READ_CHUNK,
    read() {
      const n = Math.min(READ_CHUNK, end - pos)
      if (n <= 0) {
        this.push(null)
        return
      }
      const buf = Buffer.allocUnsafe(n)
      readFd(fd, buf, 0, n, pos, (err, bytesRead) => {
        if (err) {
          this.destroy(err)
          return
        }
        if (bytesRead === 0) {
          this.destroy(new OciError('INVALID_LAYOUT', `archive ended at byte ${pos}, before byte ${end}: was it truncated while in use?`))
          return
        }
        pos += bytesRead
        this.push(bytesRead < n ? buf.subarray(0, bytesRead) : buf)
      })
    },
  })
}

const liveTempDirs = new Set<string>()
let exitHookInstalled = false
function trackTempDir(dir: string): void {
  liveTempDirs.add(dir)
  if (!exitHookInstalled) {
    exitHookInstalled = true
    // Last resort: a process that exits without close() still leaves nothing behind.
    process.once('exit', () => {
      for (const d of liveTempDirs) rmSync(d, {recursive: true, force: true})
    })
  }
}

function unsafe(location: string, msg: string): OciError {
  return new OciError('UNSAFE_ARCHIVE', `${location}: ${msg}: refused`, {
    suggestions: ['do not import this archive; ask its producer for a new export (aibox export, skopeo copy … oci-archive:)'],
  })
}

function invalid(location: string, msg: string): OciError {
  return new OciError('INVALID_LAYOUT', `${location}: ${msg}`, {
    suggestions: ['an OCI layout archive holds only oci-layout, index.json and blobs/sha256/<hex>; re-create it with aibox export or skopeo copy'],
  })
}

type EntryKind = {kind: 'root'} | {kind: 'dir'; name: string} | {kind: 'oci-layout'} | {kind: 'index'} | {kind: 'blob'; hex: string}

/**
 * Classifies a tar entry name, refusing anything that could escape a directory or that an OCI
 * layout does not contain. Accepts `./` prefixes and directory entries (registry-notes.md §8.18).
 */
function classify(rawName: string, type: string | null, location: string): EntryKind {
  const shown = JSON.stringify(rawName.length > 200 ? `${rawName.slice(0, 200)}…` : rawName)
  if (rawName.includes('\0')) throw unsafe(location, `entry name ${shown} contains a NUL byte`)
  if (rawName.includes('\\')) throw unsafe(location, `entry ${shown} contains a backslash`)
  if (rawName.startsWith('/')) throw unsafe(location, `entry ${shown} has an absolute path`)
  let name = rawName
  while (name.startsWith('./')) name = name.slice(2)
  if (name.endsWith('/')) name = name.replace(/\/+$/, '')
  const segments = name === '' || name === '.' ? [] : name.split('/')
  if (segments.includes('..')) throw unsafe(location, `entry ${shown} escapes the archive root (path traversal)`)
  if (segments.some((s) => s === '' || s === '.')) throw invalid(location, `entry ${shown} has a non-canonical path`)
  switch (type) {
    case 'file':
      break
    case 'directory':
      if (segments.length === 0) return {kind: 'root'}
      if (['blobs', 'blobs/sha256', 'ingest'].includes(name)) return {kind: 'dir', name}
      throw invalid(location, `unexpected directory ${shown}`)
    case 'symlink':
      throw unsafe(location, `entry ${shown} is a symbolic link`)
    case 'link':
      throw unsafe(location, `entry ${shown} is a hard link`)
    case 'character-device':
    case 'block-device':
      throw unsafe(location, `entry ${shown} is a device file`)
    case 'fifo':
      throw unsafe(location, `entry ${shown} is a FIFO`)
    default:
      throw unsafe(location, `entry ${shown} has an unsupported type (${type ?? 'unknown'})`)
  }
  if (name === 'oci-layout') return {kind: 'oci-layout'}
  if (name === 'index.json') return {kind: 'index'}
  const m = BLOB_NAME_RE.exec(name)
  if (m) return {kind: 'blob', hex: m[1]}
  if (/^blobs\/[^/]+\/[^/]+$/.test(name) && !name.startsWith('blobs/sha256/')) {
    throw invalid(location, `entry ${shown} uses an unsupported digest algorithm (only sha256 is accepted)`)
  }
  throw invalid(location, `unexpected entry ${shown}`)
}

/** Counts bytes on the compressed side (for the ratio check). */
class Counter extends Transform {
  bytes = 0
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length
    cb(null, chunk)
  }
}

/** Enforces the absolute and ratio caps on the decompressed stream (gzip bomb defence). */
class BombGuard extends Transform {
  bytes = 0
  constructor(
    private readonly compressed: Counter | undefined,
    private readonly limits: Required<TarLimits>,
    private readonly location: string,
  ) {
    super()
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length
    if (this.bytes > this.limits.maxTotalBytes) {
      cb(unsafe(this.location, `archive expands beyond the ${this.limits.maxTotalBytes}-byte limit`))
      return
    }
    if (this.compressed && this.bytes > this.limits.ratioSlackBytes && this.bytes > this.limits.maxRatio * Math.max(1, this.compressed.bytes)) {
      cb(
        unsafe(
          this.location,
          `gzip bomb: ${this.compressed.bytes} compressed bytes expand to more than ${this.bytes} (ratio above ${this.limits.maxRatio}:1)`,
        ),
      )
      return
    }
    cb(null, chunk)
  }
}

function sniffCompression(head: Buffer): 'none' | 'gzip' | string {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip'
  if (head.length >= 4 && head.readUInt32BE(0) === 0x28b52ffd) return 'zstd'
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2'
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz'
  return 'none'
}

/** Converts stream-level failures (tar-stream, zlib) into precise layout errors. */
function scanError(err: unknown, location: string, signal?: AbortSignal, gz = false): AiboxError {
  if (err instanceof AiboxError) return err
  if (signal?.aborted) return abortError(signal, `reading ${location}`)
  const msg = (err as Error)?.message ?? String(err)
  const code = (err as NodeJS.ErrnoException)?.code
  // A plain tar that ends inside a header or an entry's padding is a truncated file, refused like
  // one that ends inside an entry's data (the size check above): the same cut must give the same
  // error wherever it falls. Inside a gzip stream the cut is a corrupt stream instead.
  if (msg === 'Unexpected end of data') {
    return gz ? invalid(location, 'archive is truncated: it ends in the middle of an entry') : unsafe(location, 'archive is truncated: it ends in the middle of an entry (truncated file)')
  }
  if (/Invalid tar header|Header exceeds max size|Invalid header/.test(msg)) return invalid(location, `not a valid tar archive (${msg})`)
  if (code === 'Z_BUF_ERROR' || code === 'Z_DATA_ERROR' || /unexpected end of file|incorrect header check|invalid/i.test(msg)) {
    return invalid(location, `gzip stream is corrupt or truncated (${msg})`)
  }
  return fsError(err, 'read', location)
}

export class LayoutTarStore implements ReadOnlyGraphTarget, TagLister {
  readonly location: string
  private readonly blobs = new Map<string, BlobEntry>()
  private index: LayoutIndex = {manifests: []}
  private readonly referrers = new Map<string, Map<string, Descriptor>>()
  private readonly manifestTypes = new Map<string, Descriptor>()
  /** A numeric fd: shared by every range read (FileHandle streams would pin the handle open). */
  private fd: number | undefined
  private tempDir: string | undefined
  private closed = false
  report: LayoutTarReport = {compressed: 'none', blobs: 0, blobBytes: 0, unreferenced: []}

  private constructor(readonly file: string) {
    this.location = `oci-archive:${file}`
  }

  /** Opens and fully validates the archive; throws (having removed every temporary file) when it is refused. */
  static async open(file: string, opts: LayoutTarOptions = {}): Promise<LayoutTarStore> {
    const store = new LayoutTarStore(path.resolve(file))
    try {
      await store.scan(opts)
      await store.checkGraph(opts.signal)
      return store
    } catch (err) {
      await store.close()
      throw err
    }
  }

  private async scan(opts: LayoutTarOptions): Promise<void> {
    const limits = {...DEFAULT_LIMITS, ...opts.limits}
    if (opts.limits?.maxBlobBytes === undefined) limits.maxBlobBytes = limits.maxTotalBytes
    const verify = opts.verifyOnOpen ?? true
    const loc = this.location
    try {
      this.fd = await openP(this.file, FS.O_RDONLY | FS.O_NONBLOCK)
    } catch (err) {
      throw fsError(err, 'open archive', this.file)
    }
    const st = await fstatP(this.fd)
    if (!st.isFile()) throw invalid(loc, 'not a regular file')
    const head = Buffer.alloc(8)
    const {bytesRead} = await readP(this.fd, head, 0, 8, 0)
    const compression = sniffCompression(head.subarray(0, bytesRead))
    if (compression !== 'none' && compression !== 'gzip') {
      throw new OciError('UNSUPPORTED', `${loc}: ${compression}-compressed archives are not supported (use a plain or gzip-compressed tar)`)
    }
    this.report.compressed = compression as 'none' | 'gzip'
    const gz = compression === 'gzip'
    if (gz) {
      const parent = opts.tmpDir ?? os.tmpdir()
      this.tempDir = await fs.mkdtemp(path.join(parent, 'aibox-oci-tar-')).catch((err) => {
        throw fsError(err, 'create temporary directory in', parent)
      })
      trackTempDir(this.tempDir)
      await fs.mkdir(path.join(this.tempDir, 'blobs', 'sha256'), {recursive: true})
    }

    const source = rangeStream(this.fd, 0, st.size)
    const stages: Array<NodeJS.ReadableStream | NodeJS.WritableStream | Transform> = []
    let compressedCounter: Counter | undefined
    if (gz) {
      compressedCounter = new Counter()
      stages.push(compressedCounter, zlib.createGunzip({chunkSize: 256 * 1024}))
    }
    stages.push(new BombGuard(compressedCounter, limits, loc))
    const extract = tar.extract()
    const feeding = pipeline([source, ...stages, extract as unknown as Writable] as unknown as Parameters<typeof pipeline>[0], {signal: opts.signal} as never)
    let feedError: unknown
    const fed = (feeding as Promise<void>).catch((err) => {
      feedError = err
    })

    const files = new Set<string>()
    let entries = 0
    let layoutBytes: Buffer | undefined
    let indexBuf: Buffer | undefined
    try {
      for await (const entry of extract) {
        throwIfAborted(opts.signal, `reading ${loc}`)
        const header = entry.header
        entries++
        if (entries > limits.maxEntries) throw unsafe(loc, `more than ${limits.maxEntries} entries`)
        const kind = classify(header.name, header.type, loc)
        if (kind.kind === 'root' || kind.kind === 'dir') {
          // tar-stream reads the declared data of a directory as the next header (and its entry
          // stream never ends): a parser differential other tars resolve differently. Refused.
          if (header.size !== undefined && header.size !== 0) {
            throw unsafe(loc, `directory entry ${JSON.stringify(header.name)} declares ${header.size} bytes of data (a directory has none; the bytes could hide an entry from other readers)`)
          }
          await drain(entry)
          continue
        }
        const normal = kind.kind === 'blob' ? `blobs/sha256/${kind.hex}` : kind.kind === 'index' ? 'index.json' : 'oci-layout'
        if (files.has(normal)) throw unsafe(loc, `duplicate entry ${JSON.stringify(header.name)} (a second copy could silently replace the first)`)
        files.add(normal)
        const size = header.size
        const dataOffset = (header as unknown as {byteOffset?: number}).byteOffset
        if (!gz && typeof dataOffset === 'number' && dataOffset + size > st.size) {
          throw unsafe(loc, `entry ${JSON.stringify(header.name)} declares ${size} bytes but only ${Math.max(0, st.size - dataOffset)} remain in the archive (forged size or truncated file)`)
        }
        if (kind.kind !== 'blob') {
          if (size > MAX_SMALL_FILE) throw unsafe(loc, `${normal} declares ${size} bytes, more than the ${MAX_SMALL_FILE}-byte limit`)
          const buf = await collect(entry, size, MAX_SMALL_FILE, loc, normal)
          if (kind.kind === 'index') indexBuf = buf
          else layoutBytes = buf
          continue
        }
        if (size > limits.maxBlobBytes) throw unsafe(loc, `entry ${normal} declares ${size} bytes, more than the ${limits.maxBlobBytes}-byte blob limit`)
        const digest = `sha256:${kind.hex}`
        if (gz) {
          const file = path.join(this.tempDir!, 'blobs', 'sha256', kind.hex)
          await extractTo(entry, file, size, verify ? digest : undefined, loc, normal)
          this.blobs.set(digest, {size, file})
        } else {
          if (typeof dataOffset !== 'number') throw new OciError('UNSUPPORTED', `${loc}: this tar-stream version does not report entry offsets`)
          await hashEntry(entry, size, verify ? digest : undefined, loc, normal)
          this.blobs.set(digest, {size, offset: dataOffset})
        }
      }
    } catch (err) {
      extract.destroy()
      source.destroy()
      await fed
      throw scanError(err, loc, opts.signal, gz)
    }
    await fed
    if (feedError !== undefined) throw scanError(feedError, loc, opts.signal, gz)

    if (layoutBytes === undefined) {
      throw invalid(loc, files.size === 0 && entries === 0 ? 'archive is empty' : 'no oci-layout file: this is not an OCI image layout archive (a docker save archive has manifest.json instead)')
    }
    checkLayoutFile(layoutBytes, `${loc} oci-layout`)
    if (indexBuf === undefined) throw invalid(loc, 'no index.json: the archive is not a complete OCI image layout')
    this.index = parseIndexJson(indexBuf, `${loc} index.json`)
    this.report.blobs = this.blobs.size
    this.report.blobBytes = [...this.blobs.values()].reduce((a, b) => a + b.size, 0)
    if (this.tempDir) await syncDir(path.join(this.tempDir, 'blobs', 'sha256'))
  }

  /**
   * Walks the graph from index.json: every named blob must be present with its declared size,
   * every manifest must verify and parse. Records referrers; reports unreachable blobs.
   */
  private async checkGraph(signal?: AbortSignal): Promise<void> {
    const loc = this.location
    const reachable = new Set<string>()
    const queue: Array<{d: Descriptor; from: string}> = this.index.manifests.map((d) => ({d, from: 'index.json'}))
    while (queue.length > 0) {
      throwIfAborted(signal, `reading ${loc}`)
      const {d, from} = queue.shift()!
      const entry = this.blobs.get(d.digest)
      if (!entry) {
        // Foreign layers may legitimately live elsewhere (descriptor `urls`).
        if (d.urls && d.urls.length > 0) continue
        throw invalid(loc, `${from} names ${d.digest} (${d.mediaType}), which is not in the archive`)
      }
      if (entry.size !== d.size) {
        throw new OciError('SIZE_MISMATCH', `${loc}: ${from} says ${d.digest} has ${d.size} bytes, the archive entry has ${entry.size}`)
      }
      if (reachable.has(d.digest)) continue
      reachable.add(d.digest)
      if (!isGraphNodeType(d.mediaType)) continue
      const bytes = await fetchAll(this, d)
      const parsed = parseManifest(bytes, d, `${loc} ${d.digest}`)
      const ref = referrerDescriptor(d, parsed)
      this.manifestTypes.set(d.digest, ref)
      const subject = subjectOf(parsed)
      if (subject) {
        let m = this.referrers.get(subject.digest)
        if (!m) this.referrers.set(subject.digest, (m = new Map()))
        m.set(d.digest, ref)
      }
      for (const c of successorsOf(parsed)) queue.push({d: c, from: `manifest ${d.digest}`})
    }
    this.report.unreferenced = [...this.blobs.keys()].filter((k) => !reachable.has(k)).sort()
  }

  /** index.json as read from the archive. */
  async readIndex(): Promise<LayoutIndex> {
    return structuredClone(this.index)
  }

  private assertOpen(): void {
    if (this.closed) throw new OciError('UNSUPPORTED', `${this.location} is closed`)
  }

  async resolve(ref: string, opts: OpOptions = {}): Promise<Descriptor> {
    throwIfAborted(opts.signal, `resolve ${ref}`)
    this.assertOpen()
    if (isDigestRef(ref)) {
      assertDigest(ref, 'digest reference')
      const listed = this.index.manifests.find((d) => d.digest === ref)
      const known = this.manifestTypes.get(ref)
      if (listed) return this.complete(stripRefName(listed))
      if (known) return this.complete({mediaType: known.mediaType, digest: ref, size: known.size})
      const entry = this.blobs.get(ref)
      if (entry && entry.size <= MAX_SMALL_FILE) {
        const bytes = await fetchAll(this, {mediaType: 'application/octet-stream', digest: ref, size: entry.size}, MAX_SMALL_FILE)
        const mediaType = sniffManifestMediaType(bytes)
        if (mediaType) return {mediaType, digest: ref, size: entry.size}
      }
      throw new OciError('NOT_FOUND', `${this.location}@${ref}: manifest not found`)
    }
    return this.complete(stripRefName(lookupTag(this.index, ref, this.location)))
  }

  private complete(d: Descriptor): Descriptor {
    const known = this.manifestTypes.get(d.digest)
    if (d.artifactType === undefined && known?.artifactType !== undefined) d.artifactType = known.artifactType
    return d
  }

  async exists(desc: Descriptor, opts: OpOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal, `exists ${desc.digest}`)
    this.assertOpen()
    assertDigest(desc.digest)
    return this.blobs.get(desc.digest)?.size === desc.size
  }

  async fetch(desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    throwIfAborted(opts.signal, `fetch ${desc.digest}`)
    this.assertOpen()
    assertDigest(desc.digest)
    const entry = this.blobs.get(desc.digest)
    if (!entry) throw new OciError('NOT_FOUND', `${this.location}: ${desc.digest} not found`)
    let raw: Readable
    if (entry.file !== undefined) {
      let fh: fs.FileHandle
      try {
        fh = await fs.open(entry.file, FS.O_RDONLY | FS.O_NOFOLLOW)
      } catch (err) {
        throw fsError(err, 'read extracted blob', entry.file)
      }
      raw = fh.createReadStream({highWaterMark: READ_CHUNK})
    } else if (entry.size === 0) {
      raw = Readable.from([])
    } else {
      raw = rangeStream(this.fd!, entry.offset!, entry.offset! + entry.size)
    }
    return verifying(raw, desc, this.location)
  }

  async predecessors(desc: Descriptor, opts: OpOptions & {artifactType?: string} = {}): Promise<Descriptor[]> {
    throwIfAborted(opts.signal, `predecessors of ${desc.digest}`)
    this.assertOpen()
    assertDigest(desc.digest)
    return predecessorList(this.referrers.get(desc.digest)?.values() ?? [], opts.artifactType)
  }

  async tags(opts: OpOptions = {}): Promise<string[]> {
    throwIfAborted(opts.signal, 'list tags')
    this.assertOpen()
    return indexTags(this.index)
  }

  /** Releases the archive and removes the temporary directory (idempotent). */
  async close(): Promise<void> {
    this.closed = true
    const fd = this.fd
    this.fd = undefined
    if (fd !== undefined) await closeP(fd).catch(() => {})
    const dir = this.tempDir
    this.tempDir = undefined
    if (dir) {
      await fs.rm(dir, {recursive: true, force: true})
      liveTempDirs.delete(dir)
    }
  }
}

// ------------------------------------------------------------------ entry readers

type Entry = AsyncIterable<unknown>
type TarHeader = Parameters<tar.Pack['entry']>[0]

async function drain(entry: Entry): Promise<void> {
  for await (const _ of entry) {
    // directories carry no data; anything here is discarded
  }
}

async function collect(entry: Entry, size: number, max: number, loc: string, name: string): Promise<Buffer> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of entry) {
    const chunk = c as Buffer
    n += chunk.length
    if (n > max) throw unsafe(loc, `${name} exceeds ${max} bytes`)
    chunks.push(chunk)
  }
  if (n !== size) throw invalid(loc, `archive is truncated: ${name} has ${n} of ${size} bytes`)
  return Buffer.concat(chunks)
}

function checkHash(hash: ReturnType<typeof createHash>, digest: string | undefined, loc: string, name: string): void {
  if (digest === undefined) return
  const got = `sha256:${hash.digest('hex')}`
  if (got !== digest) throw new OciError('DIGEST_MISMATCH', `${loc}: entry ${name} does not match its name: content hashes to ${got}`)
}

async function hashEntry(entry: Entry, size: number, digest: string | undefined, loc: string, name: string): Promise<void> {
  const hash = createHash('sha256')
  let n = 0
  for await (const c of entry) {
    const chunk = c as Buffer
    n += chunk.length
    if (digest !== undefined) hash.update(chunk)
  }
  if (n !== size) throw invalid(loc, `archive is truncated: ${name} has ${n} of ${size} bytes`)
  checkHash(hash, digest, loc, name)
}

/** Extracts one blob into the temporary directory ('wx': never over an existing file). */
async function extractTo(entry: Entry, file: string, size: number, digest: string | undefined, loc: string, name: string): Promise<void> {
  const hash = createHash('sha256')
  let n = 0
  let fh: fs.FileHandle | undefined
  // Only our own file-system calls become IO_ERRORs; a failing entry stream is the archive's fault (scanError).
  const local = <T>(p: Promise<T>): Promise<T> =>
    p.catch((err: unknown) => {
      throw fsError(err, 'extract', `${name} into ${path.dirname(file)}`)
    })
  try {
    fh = await local(fs.open(file, 'wx', 0o600))
    for await (const c of entry) {
      const chunk = c as Buffer
      n += chunk.length
      if (digest !== undefined) hash.update(chunk)
      await local(fh.write(chunk))
    }
    await local(fh.close())
    fh = undefined
  } finally {
    await fh?.close().catch(() => {})
  }
  if (n !== size) throw invalid(loc, `archive is truncated: ${name} has ${n} of ${size} bytes`)
  checkHash(hash, digest, loc, name)
}

// ------------------------------------------------------------------ writer

export interface WriteLayoutTarOptions {
  signal?: AbortSignal
  /** Also compute the sha256 of the tar written (one more hashing pass over the output). */
  digest?: boolean
  /** Called after each blob with the bytes written so far for it. */
  onProgress?: (desc: Descriptor, bytes: number) => void
  /**
   * Modification time of every entry (default the epoch). Exports pass SOURCE_DATE_EPOCH here
   * (reproducible-builds.org): still the same for every entry, so still byte-identical.
   */
  mtime?: Date
}

export interface WriteLayoutTarResult {
  /** `sha256:` of the tar file written, when asked for with `digest: true`. */
  digest?: string
  /** Size of the tar file. */
  size: number
  /** Blobs written (every blob reachable from index.json, sorted by digest). */
  blobs: string[]
}

/** Fixed header fields: the same layout gives a byte-identical tar (formats.md "Sealed export"). */
const FIXED = {mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: ''}

/**
 * Writes the layout (a LayoutDirStore or its directory) as a deterministic tar: `oci-layout`,
 * `index.json`, the `blobs/` and `blobs/sha256/` directories, then every blob reachable from
 * index.json in digest order; mtime 0, uid/gid 0, empty owner names, modes 0644/0755. Each blob
 * is verified as it is copied; the tar is written under a temporary name, fsync'ed and renamed.
 */
export async function writeLayoutTar(source: LayoutDirStore | string, outFile: string, opts: WriteLayoutTarOptions = {}): Promise<WriteLayoutTarResult> {
  const store = typeof source === 'string' ? await LayoutDirStore.open(source, {readOnly: true}) : source
  const index = await store.readIndex()
  const blobs = await reachableBlobs(store, index, opts.signal)
  const digests = [...blobs.keys()].sort()
  const out = path.resolve(outFile)
  const fixed = {...FIXED, ...(opts.mtime ? {mtime: new Date(Math.floor(opts.mtime.getTime() / 1000) * 1000)} : {})}
  const pack = tar.pack()
  const hash = createHash('sha256')
  let size = 0
  const wantDigest = opts.digest === true
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      if (wantDigest) hash.update(chunk)
      size += chunk.length
      cb(null, chunk)
    },
  })
  const writeEntries = async (fh: fs.FileHandle): Promise<void> => {
    const writing = pipeline(pack as unknown as Readable, tap, fileSink(fh), {signal: opts.signal})
    const written = writing.then(
      () => undefined,
      (err: unknown) => err,
    )
    try {
      await addEntry(pack, {name: 'oci-layout', size: OCI_LAYOUT_BYTES.length, mode: 0o644, type: 'file', ...fixed}, OCI_LAYOUT_BYTES)
      const idx = indexBytes(index)
      await addEntry(pack, {name: 'index.json', size: idx.length, mode: 0o644, type: 'file', ...fixed}, idx)
      await addEntry(pack, {name: 'blobs/', size: 0, mode: 0o755, type: 'directory', ...fixed})
      await addEntry(pack, {name: 'blobs/sha256/', size: 0, mode: 0o755, type: 'directory', ...fixed})
      for (const digest of digests) {
        throwIfAborted(opts.signal, `writing ${out}`)
        const desc = blobs.get(digest)!
        const stream = await store.fetch(desc, {signal: opts.signal})
        await addStreamEntry(pack, {name: `blobs/sha256/${digest.slice(7)}`, size: desc.size, mode: 0o644, type: 'file', ...fixed}, stream, (n) => opts.onProgress?.(desc, n))
      }
      pack.finalize()
    } catch (err) {
      pack.destroy(err as Error)
      await written
      throw err
    }
    const failure = await written
    if (failure !== undefined) throw failure
  }
  try {
    // Under a temporary name, fsync'ed, renamed over `out`: an interrupted export leaves no partial tar.
    await writeFileAtomic(out, writeEntries)
  } catch (err) {
    if (opts.signal?.aborted) throw abortError(opts.signal, `writing ${out}`)
    throw fsError(err, 'write archive', out)
  }
  const result: WriteLayoutTarResult = {size, blobs: digests}
  if (wantDigest) result.digest = `sha256:${hash.digest('hex')}`
  return result
}

/** Every blob reachable from index.json (manifests verified and parsed on the way). */
async function reachableBlobs(store: LayoutDirStore, index: LayoutIndex, signal?: AbortSignal): Promise<Map<string, Descriptor>> {
  const out = new Map<string, Descriptor>()
  const queue: Array<{d: Descriptor; from: string}> = index.manifests.map((d) => ({d, from: 'index.json'}))
  while (queue.length > 0) {
    throwIfAborted(signal, `reading ${store.location}`)
    const {d, from} = queue.shift()!
    const seen = out.get(d.digest)
    if (seen) {
      if (seen.size !== d.size) throw new OciError('SIZE_MISMATCH', `${store.location}: ${from} gives ${d.digest} size ${d.size}, elsewhere ${seen.size}`)
      continue
    }
    if (!(await store.exists(d, {signal}))) {
      if (d.urls && d.urls.length > 0) continue
      throw new OciError('INVALID_LAYOUT', `${store.location}: ${from} names ${d.digest} (${d.size} bytes), which is missing from blobs/sha256 or has another size`)
    }
    out.set(d.digest, {mediaType: d.mediaType, digest: d.digest, size: d.size})
    if (!isGraphNodeType(d.mediaType)) continue
    const parsed = parseManifest(await fetchAll(store, d), d, `${store.location} ${d.digest}`)
    for (const c of successorsOf(parsed)) queue.push({d: c, from: `manifest ${d.digest}`})
  }
  return out
}

function addEntry(pack: tar.Pack, header: TarHeader, data?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, data ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()))
  })
}

/** Streams `source` into one tar entry, honouring back-pressure on both sides. */
async function addStreamEntry(pack: tar.Pack, header: TarHeader, source: Readable, progress: (n: number) => void): Promise<void> {
  let done!: () => void
  let fail!: (e: unknown) => void
  const finished = new Promise<void>((res, rej) => {
    done = res
    fail = rej
  })
  const sink = pack.entry(header, (err) => (err ? fail(err) : done()))
  // Failures reach us through the entry callback; an 'error' event with no listener would crash the process.
  sink.on('error', () => {})
  let n = 0
  try {
    for await (const chunk of source) {
      n += (chunk as Buffer).length
      if (!sink.write(chunk as Buffer)) {
        // Wait for either event and drop both listeners: a listener left behind per wait would pile up on a large blob.
        await new Promise<void>((res) => {
          const done = () => {
            sink.off('drain', done)
            sink.off('close', done)
            res()
          }
          sink.on('drain', done)
          sink.on('close', done)
        })
        if (sink.destroyed) break
      }
      progress(n)
    }
  } catch (err) {
    sink.destroy(err as Error)
    throw err
  }
  ;(sink as unknown as {end(): void}).end()
  await finished
}

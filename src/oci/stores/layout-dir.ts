/**
 * OCI image layout directory (image-spec image-layout.md): `oci-layout`, `index.json`,
 * `blobs/sha256/<hex>`. The embedded default store (`oci:DIR[:tag]`) and the cache's format.
 *
 * Writes follow oras-go `content/oci`: each blob goes to `ingest/<random>`, is verified while
 * written, fsync'ed, made read-only (0444) and renamed into `blobs/sha256/`; index.json is
 * rewritten atomically under a lock file shared by every process writing the layout. Every
 * manifest pushed is listed in index.json (untagged ones without `ref.name`), which is how
 * predecessors (referrers) are found. Layouts written by skopeo and oras are read as they are
 * (registry-notes.md §5, §8.18).
 */
import {constants as FS} from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import type {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {AiboxError} from '../../errors.js'
import {fileSink, isTempName, writeFileAtomic as writeStreamAtomic} from '../../util/atomic.js'
import {abortError, throwIfAborted} from '../abort.js'
import {assertDigest, fetchAll, MAX_MANIFEST_BYTES, readAll, toReadable, verifying, VerifyingStream} from '../content.js'
import {OciError} from '../errors.js'
import {createFileExclusive, fsError, withFileLock, writeFileAtomic} from '../fsutil.js'
import {ANNOTATION, MT} from '../media.js'
import {
  descriptorJson,
  isGraphNodeType,
  parseManifest,
  type ParsedManifest,
  referrerDescriptor,
  sniffManifestMediaType,
  subjectOf,
  successorsOf,
} from '../manifest.js'
import type {Descriptor, GraphTarget, OpOptions, TagLister} from '../target.js'
import {assertDescriptorShape, assertTag, discardBody, isDigestRef, predecessorList, readVerified} from './common.js'

export const OCI_LAYOUT_FILE = 'oci-layout'
export const INDEX_FILE = 'index.json'
export const LAYOUT_VERSION = '1.0.0'
/** The exact bytes we write to `oci-layout`. */
export const OCI_LAYOUT_BYTES = Buffer.from(`{"imageLayoutVersion":"${LAYOUT_VERSION}"}`)
const LOCK_FILE = 'index.json.lock'
const INGEST_DIR = 'ingest'
const MAX_LAYOUT_FILE_BYTES = 4096
/** Node reads files 64 KiB at a time by default; hashing then costs 1.6× (registry-notes.md §8.20). */
const READ_CHUNK = 1024 * 1024
const MAX_CACHED_MANIFESTS = 10_000
const LAYOUT_NAMES = new Set([OCI_LAYOUT_FILE, INDEX_FILE, 'blobs', INGEST_DIR, LOCK_FILE])

export interface LayoutDirOptions {
  /** Create the layout (directory, `oci-layout`, `index.json`, `blobs/sha256/`) when missing. */
  create?: boolean
  /** Refuse push and tag (UNSUPPORTED). */
  readOnly?: boolean
  /** How long to wait for another process's index.json lock (default 30 s). */
  lockTimeoutMs?: number
}

/** index.json as read: the entries plus the index's own annotations. */
export interface LayoutIndex {
  manifests: Descriptor[]
  annotations?: Record<string, string>
}

interface ManifestInfo {
  subject?: Descriptor
  referrer: Descriptor
  children: Descriptor[]
}

export class LayoutDirStore implements GraphTarget, TagLister {
  readonly location: string
  private readonly manifestCache = new Map<string, ManifestInfo>()

  private constructor(
    /** The layout directory as given (absolute), for messages. */
    readonly dir: string,
    /** Its real path: every file we open must resolve inside it. */
    readonly root: string,
    private readonly opts: LayoutDirOptions,
  ) {
    this.location = `oci:${dir}`
  }

  /** Opens (or with `create`, initialises) the layout at `dir`, validating `oci-layout` and `index.json`. */
  static async open(dir: string, opts: LayoutDirOptions = {}): Promise<LayoutDirStore> {
    const abs = path.resolve(dir)
    let st
    try {
      st = await fs.stat(abs)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(err, 'open layout', abs)
    }
    if (!st) {
      if (!opts.create) {
        throw new OciError('NOT_FOUND', `no OCI layout at ${abs}: the directory does not exist`, {suggestions: ['check the path of oci:DIR, or push to it first to create it']})
      }
      await fs.mkdir(abs, {recursive: true}).catch((err) => {
        throw fsError(err, 'create layout directory', abs)
      })
    } else if (!st.isDirectory()) {
      throw new OciError('INVALID_LAYOUT', `${abs} is not a directory, so it cannot be an OCI layout`)
    }
    const root = await fs.realpath(abs).catch((err) => {
      throw fsError(err, 'open layout', abs)
    })
    const store = new LayoutDirStore(abs, root, opts)
    await store.init()
    return store
  }

  private async init(): Promise<void> {
    const layoutPath = path.join(this.root, OCI_LAYOUT_FILE)
    let layoutBytes = await this.readSmallFile(OCI_LAYOUT_FILE, MAX_LAYOUT_FILE_BYTES).catch((err) => {
      if (err instanceof OciError && err.code === 'NOT_FOUND') return undefined
      throw err
    })
    if (layoutBytes === undefined) {
      if (!this.opts.create) {
        throw new OciError('INVALID_LAYOUT', `${this.dir} is not an OCI image layout: ${OCI_LAYOUT_FILE} is missing`, {
          suggestions: ['point oci:DIR at a directory written by aibox, skopeo or oras'],
        })
      }
      // Another process may be initialising the same directory right now: its files are fine.
      const entries = (await fs.readdir(this.root)).filter((e) => !isTempName(e) && !LAYOUT_NAMES.has(e))
      if (entries.length > 0) {
        throw new OciError('INVALID_LAYOUT', `refusing to create an OCI layout in ${this.dir}: the directory is not empty and has no ${OCI_LAYOUT_FILE}`, {
          suggestions: ['choose an empty or new directory'],
        })
      }
      await createFileExclusive(layoutPath, OCI_LAYOUT_BYTES)
      layoutBytes = await this.readSmallFile(OCI_LAYOUT_FILE, MAX_LAYOUT_FILE_BYTES)
    }
    checkLayoutFile(layoutBytes, `${this.dir}/${OCI_LAYOUT_FILE}`)
    if (this.opts.create) {
      await fs.mkdir(path.join(this.root, 'blobs', 'sha256'), {recursive: true}).catch((err) => {
        throw fsError(err, 'create', path.join(this.dir, 'blobs', 'sha256'))
      })
      await createFileExclusive(path.join(this.root, INDEX_FILE), emptyIndexBytes())
    }
    // A blobs directory that is a symlink out of the layout would make every read and write escape it.
    for (const sub of ['blobs', path.join('blobs', 'sha256')]) {
      const real = await fs.realpath(path.join(this.root, sub)).catch(() => undefined)
      if (real !== undefined) this.assertInside(real, sub)
    }
    await this.readIndex()
  }

  private assertInside(real: string, rel: string): void {
    if (real !== this.root && !real.startsWith(this.root + path.sep)) {
      throw new OciError('INVALID_LAYOUT', `${this.dir}/${rel} is a symlink to ${real}, outside the layout: refused`, {
        suggestions: ['replace the symlink with the file itself'],
      })
    }
  }

  /**
   * Opens a file of the layout for reading without following symlinks out of it, and refuses
   * anything but a regular file (a FIFO or device would block or feed endless data).
   */
  private async openInside(rel: string): Promise<fs.FileHandle> {
    const p = path.join(this.root, rel)
    let target = p
    let lst
    try {
      lst = await fs.lstat(p)
    } catch (err) {
      throw fsError(err, 'read', `${this.dir}/${rel}`)
    }
    if (lst.isSymbolicLink()) {
      target = await fs.realpath(p).catch((err) => {
        throw fsError(err, 'read', `${this.dir}/${rel}`)
      })
      this.assertInside(target, rel)
    }
    let fh: fs.FileHandle
    try {
      fh = await fs.open(target, FS.O_RDONLY | FS.O_NOFOLLOW | FS.O_NONBLOCK)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
        throw new OciError('INVALID_LAYOUT', `${this.dir}/${rel} changed into a symlink while being opened: refused`)
      }
      throw fsError(err, 'read', `${this.dir}/${rel}`)
    }
    const st = await fh.stat()
    if (!st.isFile()) {
      await fh.close()
      throw new OciError('INVALID_LAYOUT', `${this.dir}/${rel} is not a regular file: refused`)
    }
    return fh
  }

  private async readSmallFile(rel: string, max: number): Promise<Buffer> {
    const fh = await this.openInside(rel)
    try {
      const st = await fh.stat()
      if (st.size > max) throw new OciError('INVALID_LAYOUT', `${this.dir}/${rel} has ${st.size} bytes, more than the ${max}-byte limit`)
      return await readAll(fh.createReadStream({autoClose: false, end: max}), max, `${this.dir}/${rel}`)
    } finally {
      await fh.close()
    }
  }

  private blobRel(digest: string): string {
    assertDigest(digest)
    return path.join('blobs', 'sha256', digest.slice('sha256:'.length))
  }

  /** Path of the blob file for `digest` (it may not exist). */
  blobPath(digest: string): string {
    return path.join(this.root, this.blobRel(digest))
  }

  /** Reads and validates index.json (fresh on every call: other processes may write it). */
  async readIndex(): Promise<LayoutIndex> {
    const where = `${this.dir}/${INDEX_FILE}`
    let bytes: Buffer
    try {
      bytes = await this.readSmallFile(INDEX_FILE, MAX_MANIFEST_BYTES)
    } catch (err) {
      if (err instanceof OciError && err.code === 'NOT_FOUND') {
        throw new OciError('INVALID_LAYOUT', `${this.dir} is not a valid OCI image layout: ${INDEX_FILE} is missing`)
      }
      throw err
    }
    return parseIndexJson(bytes, where)
  }

  // ---------------------------------------------------------------- ReadOnlyTarget

  async resolve(ref: string, opts: OpOptions = {}): Promise<Descriptor> {
    throwIfAborted(opts.signal, `resolve ${ref}`)
    const index = await this.readIndex()
    if (isDigestRef(ref)) {
      assertDigest(ref, 'digest reference')
      const listed = index.manifests.find((d) => d.digest === ref)
      if (listed) return this.completeDescriptor(listed)
      // Not listed (e.g. a child of an index): resolve it if the blob is a manifest.
      let bytes: Buffer
      try {
        bytes = await this.readSmallFile(this.blobRel(ref), MAX_MANIFEST_BYTES)
      } catch (err) {
        if (err instanceof OciError && (err.code === 'NOT_FOUND' || err.code === 'INVALID_LAYOUT')) {
          throw new OciError('NOT_FOUND', `${this.location}@${ref}: manifest not found`, {cause: err})
        }
        throw err
      }
      const mediaType = sniffManifestMediaType(bytes)
      if (mediaType === undefined) throw new OciError('NOT_FOUND', `${this.location}@${ref}: content exists but is not a manifest or index`)
      return this.completeDescriptor({mediaType, digest: ref, size: bytes.byteLength})
    }
    return this.completeDescriptor(lookupTag(index, ref, this.location))
  }

  /**
   * The descriptor a caller gets: without our `ref.name` bookkeeping, and with `artifactType`
   * read from the manifest when index.json lacks it (skopeo never writes it, §8.18).
   */
  private async completeDescriptor(entry: Descriptor): Promise<Descriptor> {
    const out = stripRefName(entry)
    if (out.artifactType === undefined && isGraphNodeType(out.mediaType)) {
      const info = await this.manifestInfo(out)
      if (info.referrer.artifactType !== undefined) out.artifactType = info.referrer.artifactType
    }
    return out
  }

  async exists(desc: Descriptor, opts: OpOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal, `exists ${desc.digest}`)
    const rel = this.blobRel(desc.digest)
    try {
      const fh = await this.openInside(rel)
      try {
        return (await fh.stat()).size === desc.size
      } finally {
        await fh.close()
      }
    } catch (err) {
      if (err instanceof OciError && err.code === 'NOT_FOUND') return false
      throw err
    }
  }

  async fetch(desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    throwIfAborted(opts.signal, `fetch ${desc.digest}`)
    let fh: fs.FileHandle
    try {
      fh = await this.openInside(this.blobRel(desc.digest))
    } catch (err) {
      if (err instanceof OciError && err.code === 'NOT_FOUND') throw new OciError('NOT_FOUND', `${this.location}: ${desc.digest} not found`, {cause: err})
      throw err
    }
    const stream = fh.createReadStream({highWaterMark: READ_CHUNK})
    return verifying(stream, desc, this.location)
  }

  // ---------------------------------------------------------------- Target

  private assertWritable(op: string): void {
    if (this.opts.readOnly) throw new OciError('UNSUPPORTED', `${this.location} is opened read-only: cannot ${op}`)
  }

  async push(expected: Descriptor, body: Readable | Uint8Array, opts: OpOptions = {}): Promise<void> {
    this.assertWritable(`push ${expected.digest}`)
    assertDescriptorShape(expected)
    const node = isGraphNodeType(expected.mediaType)
    if (await this.exists(expected, opts)) {
      discardBody(body)
      // A manifest stored by an earlier, interrupted push may be missing from index.json.
      if (node) await this.listManifest(expected, opts)
      return
    }
    const ingest = path.join(this.root, INGEST_DIR)
    const blobsDir = path.join(this.root, 'blobs', 'sha256')
    await fs.mkdir(ingest, {recursive: true}).catch((err) => {
      throw fsError(err, 'create', ingest)
    })
    await fs.mkdir(blobsDir, {recursive: true}).catch((err) => {
      throw fsError(err, 'create', blobsDir)
    })
    const final = this.blobPath(expected.digest)
    if (node) {
      const data = await readVerified(expected, body, MAX_MANIFEST_BYTES, this.location, opts.signal)
      const parsed = parseManifest(data, expected, this.location)
      await writeFileAtomic(final, data, {mode: 0o444, tmpDir: ingest})
      this.remember(expected, parsed)
      await this.listManifest(expected, opts)
      return
    }
    try {
      // Verified while written; a mismatch or abort removes the temp file in ingest/ and leaves no blob.
      await writeStreamAtomic(final, (fh) => pipeline(toReadable(body), new VerifyingStream(expected, this.location), fileSink(fh), {signal: opts.signal}), {mode: 0o444, tmpDir: ingest})
    } catch (err) {
      discardBody(body)
      if (opts.signal?.aborted) throw abortError(opts.signal, `push of ${expected.digest} to ${this.location}`)
      throw fsError(err, 'write blob', `${this.dir}/${this.blobRel(expected.digest)}`)
    }
  }

  async tag(desc: Descriptor, tag: string, opts: OpOptions = {}): Promise<void> {
    this.assertWritable(`tag ${tag}`)
    assertTag(tag)
    assertDigest(desc.digest)
    let mediaType = desc.mediaType
    if (!isGraphNodeType(mediaType)) {
      const resolved = await this.resolve(desc.digest, opts).catch(() => undefined)
      if (!resolved) throw new OciError('INVALID_REFERENCE', `${this.location}: cannot tag ${tag}: ${desc.digest} is not a manifest or index`)
      mediaType = resolved.mediaType
    }
    if (!(await this.exists(desc, opts))) {
      throw new OciError('NOT_FOUND', `${this.location}: cannot tag ${tag}: ${desc.digest} not found`, {suggestions: ['push the manifest before tagging it']})
    }
    const info = await this.manifestInfo({...desc, mediaType})
    const entry: Descriptor = {mediaType, digest: desc.digest, size: desc.size}
    const artifactType = desc.artifactType ?? info.referrer.artifactType
    if (artifactType !== undefined) entry.artifactType = artifactType
    if (desc.platform !== undefined) entry.platform = desc.platform
    entry.annotations = {[ANNOTATION.refName]: tag}
    await this.updateIndex((entries) => {
      const moved = entries.filter((e) => e.annotations?.[ANNOTATION.refName] === tag)
      let next = entries.filter((e) => e.annotations?.[ANNOTATION.refName] !== tag && !(isUntagged(e) && e.digest === desc.digest))
      next.push(entry)
      // A manifest the tag moved away from stays listed, untagged: it is still content of the layout.
      for (const old of moved) {
        if (!next.some((e) => e.digest === old.digest)) next.push(untaggedEntry(old))
      }
      next = sortEntries(next)
      return next
    }, opts)
  }

  /** Adds an untagged index.json entry for a stored manifest, unless it is already listed. */
  /**
   * Lists a stored referrer (a manifest with a subject) in index.json if it is not listed yet:
   * predecessors() finds referrers only there, and a writer killed between storing the manifest
   * and listing it leaves it present but invisible (the copy engine skips what is present).
   */
  async relistReferrer(desc: Descriptor, opts: OpOptions = {}): Promise<void> {
    if (this.opts.readOnly) return
    if ((await this.readIndex()).manifests.some((e) => e.digest === desc.digest)) return
    if (!(await this.manifestInfo(desc)).subject) return
    await this.listManifest(desc, opts)
  }

  private async listManifest(desc: Descriptor, opts: OpOptions): Promise<void> {
    const current = await this.readIndex()
    if (current.manifests.some((e) => e.digest === desc.digest)) return
    const info = await this.manifestInfo(desc)
    const entry: Descriptor = {mediaType: desc.mediaType, digest: desc.digest, size: desc.size}
    if (info.referrer.artifactType !== undefined) entry.artifactType = info.referrer.artifactType
    await this.updateIndex((entries) => (entries.some((e) => e.digest === desc.digest) ? undefined : sortEntries([...entries, entry])), opts)
  }

  /**
   * Read-modify-write of index.json under the layout's lock file, so concurrent writers in other
   * processes never lose each other's entries. `mutate` returns undefined for "no change".
   */
  private async updateIndex(mutate: (entries: Descriptor[]) => Descriptor[] | undefined, opts: OpOptions): Promise<void> {
    await withFileLock(
      path.join(this.root, INDEX_FILE),
      async () => {
        const current = await this.readIndex()
        const next = mutate(current.manifests.map((d) => structuredClone(d)))
        if (next === undefined) return
        const ingest = path.join(this.root, INGEST_DIR)
        await fs.mkdir(ingest, {recursive: true}).catch((err) => {
          throw fsError(err, 'create', ingest)
        })
        await writeFileAtomic(path.join(this.root, INDEX_FILE), indexBytes({manifests: next, annotations: current.annotations}), {tmpDir: ingest})
      },
      {timeoutMs: this.opts.lockTimeoutMs, signal: opts.signal},
    )
  }

  // ---------------------------------------------------------------- graph, tags

  private remember(desc: Descriptor, parsed: ParsedManifest): ManifestInfo {
    const info: ManifestInfo = {subject: subjectOf(parsed), referrer: referrerDescriptor(desc, parsed), children: successorsOf(parsed)}
    if (this.manifestCache.size >= MAX_CACHED_MANIFESTS) this.manifestCache.clear()
    this.manifestCache.set(desc.digest, info)
    return info
  }

  /** Parsed summary of a stored manifest, verified against its digest (cached: content is immutable). */
  private async manifestInfo(desc: Descriptor): Promise<ManifestInfo> {
    const cached = this.manifestCache.get(desc.digest)
    if (cached) return cached
    const bytes = await fetchAll(this, desc)
    return this.remember(desc, parseManifest(bytes, desc, this.location))
  }

  /**
   * Manifests whose `subject` is `desc`: found by walking every manifest listed in index.json
   * (and the children of listed indexes). Entries whose content is missing are skipped, like
   * dangling referrers on a registry (registry-notes.md §8.11).
   */
  async predecessors(desc: Descriptor, opts: OpOptions & {artifactType?: string} = {}): Promise<Descriptor[]> {
    throwIfAborted(opts.signal, `predecessors of ${desc.digest}`)
    assertDigest(desc.digest)
    const index = await this.readIndex()
    const seen = new Set<string>()
    const found = new Map<string, Descriptor>()
    const queue = index.manifests.filter((d) => isGraphNodeType(d.mediaType))
    while (queue.length > 0) {
      throwIfAborted(opts.signal, `predecessors of ${desc.digest}`)
      const d = queue.shift()!
      if (seen.has(d.digest)) continue
      seen.add(d.digest)
      let info: ManifestInfo
      try {
        info = await this.manifestInfo(d)
      } catch (err) {
        if (err instanceof OciError && err.code === 'NOT_FOUND') continue
        throw err
      }
      if (info.subject?.digest === desc.digest) found.set(d.digest, info.referrer)
      for (const c of info.children) if (isGraphNodeType(c.mediaType) && !seen.has(c.digest)) queue.push(c)
    }
    return predecessorList(found.values(), opts.artifactType)
  }

  async tags(opts: OpOptions = {}): Promise<string[]> {
    throwIfAborted(opts.signal, 'list tags')
    return indexTags(await this.readIndex())
  }
}

// ------------------------------------------------------------------ index.json and oci-layout

/**
 * The index.json entry a tag names. Several entries may carry the same digest under different
 * names (skopeo), but one name naming two digests is a broken layout.
 */
export function lookupTag(index: LayoutIndex, tag: string, location: string): Descriptor {
  const matches = index.manifests.filter((d) => d.annotations?.[ANNOTATION.refName] === tag)
  if (matches.length === 0) {
    throw new OciError('NOT_FOUND', `${location}:${tag}: tag not found`, {suggestions: [`list the tags with \`aibox tags ${location}\``]})
  }
  if (new Set(matches.map((d) => d.digest)).size > 1) {
    throw new OciError('INVALID_LAYOUT', `${location}: index.json gives tag "${tag}" to ${matches.length} different manifests`)
  }
  return matches[0]
}

/** Sorted, de-duplicated `ref.name`s of an index. */
export function indexTags(index: LayoutIndex): string[] {
  const tags = new Set<string>()
  for (const d of index.manifests) {
    const t = d.annotations?.[ANNOTATION.refName]
    if (t !== undefined) tags.add(t)
  }
  return [...tags].sort()
}

/** A copy of an index.json entry without our `ref.name` bookkeeping. */
export function stripRefName(entry: Descriptor): Descriptor {
  const out = structuredClone(entry)
  if (out.annotations) {
    delete out.annotations[ANNOTATION.refName]
    if (Object.keys(out.annotations).length === 0) delete out.annotations
  }
  return out
}

function isUntagged(d: Descriptor): boolean {
  return d.annotations?.[ANNOTATION.refName] === undefined
}

function untaggedEntry(d: Descriptor): Descriptor {
  return stripRefName(d)
}

/** Deterministic order: tagged entries by tag, then untagged ones by digest (so same content, same bytes). */
function sortEntries(entries: Descriptor[]): Descriptor[] {
  const key = (d: Descriptor): [number, string, string] => {
    const t = d.annotations?.[ANNOTATION.refName]
    return t === undefined ? [1, d.digest, ''] : [0, t, d.digest]
  }
  return [...entries].sort((a, b) => {
    const ka = key(a)
    const kb = key(b)
    for (let i = 0; i < 3; i++) if (ka[i] !== kb[i]) return ka[i] < kb[i] ? -1 : 1
    return 0
  })
}

export function indexBytes(index: LayoutIndex): Buffer {
  const doc: Record<string, unknown> = {schemaVersion: 2, mediaType: MT.ociIndex, manifests: index.manifests.map(descriptorJson)}
  if (index.annotations && Object.keys(index.annotations).length > 0) {
    const a: Record<string, string> = {}
    for (const k of Object.keys(index.annotations).sort()) a[k] = index.annotations[k]
    doc.annotations = a
  }
  return Buffer.from(JSON.stringify(doc))
}

function emptyIndexBytes(): Buffer {
  return indexBytes({manifests: []})
}

/** Validates `oci-layout` (whitespace allowed: skopeo writes `{"imageLayoutVersion": "1.0.0"}`). */
export function checkLayoutFile(bytes: Buffer, where: string): void {
  let json: unknown
  try {
    json = JSON.parse(bytes.toString('utf8'))
  } catch (err) {
    throw new OciError('INVALID_LAYOUT', `${where} is not valid JSON: ${(err as Error).message}`)
  }
  const version = (json as {imageLayoutVersion?: unknown} | null)?.imageLayoutVersion
  if (typeof version !== 'string') throw new OciError('INVALID_LAYOUT', `${where} has no imageLayoutVersion`)
  if (!/^1\.\d+\.\d+$/.test(version)) {
    throw new OciError('INVALID_LAYOUT', `${where}: unsupported imageLayoutVersion "${version.slice(0, 40)}" (expected ${LAYOUT_VERSION})`)
  }
}

/**
 * Parses index.json: an image index whose `mediaType` may be absent (skopeo) and whose entries
 * may lack `artifactType` or `ref.name`, or repeat a digest under several names.
 */
export function parseIndexJson(bytes: Buffer, where: string): LayoutIndex {
  let parsed: ParsedManifest
  try {
    parsed = parseManifest(bytes, {mediaType: MT.ociIndex}, where)
  } catch (err) {
    if (err instanceof AiboxError) throw new OciError('INVALID_LAYOUT', `${where} is not a valid image index: ${err.message}`, {cause: err})
    throw err
  }
  if (parsed.kind !== 'index') throw new OciError('INVALID_LAYOUT', `${where} is not an image index`)
  const out: LayoutIndex = {manifests: parsed.index.manifests}
  if (parsed.index.annotations) out.annotations = parsed.index.annotations
  return out
}

/**
 * Crash-safe file writes (style.md rule 4, "leave no partial state"): a file is either its old
 * content or its new content, never a torn mix, whatever kills the process.
 *
 * The recipe is the classic one: write a temp file in the same directory (so the rename
 * stays on one file system), fsync it, rename it over the target (atomic on POSIX), then
 * fsync the directory so the rename itself survives a power cut. A failed write removes
 * its temp file; a kill -9 may leave one behind, which `sweepTempFiles` removes later.
 */
import {randomBytes} from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'
import {Writable} from 'node:stream'

import {InputError} from '../errors.js'
import {fsError, isErrno} from './fs-errors.js'

/** Suffix of every temp file we create; `sweepTempFiles` only ever removes these. */
export const TEMP_SUFFIX = '.aibox-tmp'

/**
 * What `writeFileAtomic` writes: bytes, a string, an (async) iterable of chunks, or a function
 * that writes the content itself into the open temp file (e.g. a stream pipeline ending in
 * `fileSink(fh)`); the function must not close the handle.
 */
export type AtomicData =
  | string
  | Uint8Array
  | Iterable<string | Uint8Array>
  | AsyncIterable<string | Uint8Array>
  | ((fh: fsp.FileHandle) => Promise<void>)

export interface AtomicWriteOptions {
  /** File mode of the new file (exact, not masked by the umask). Default: the old file's mode, else 0o666 & ~umask. */
  mode?: number
  /** Create missing parent directories (with `dirMode`). Default false. */
  mkdirs?: boolean
  /** Mode of directories created by `mkdirs`. Default 0o755 (masked by the umask). */
  dirMode?: number
  /**
   * Create the file only if it does not exist: the temp file is hard-linked into place, which
   * fails when the target exists, so two writers never clobber each other. An existing target
   * is InputError FILE_EXISTS and is left untouched. Default false (replace).
   */
  exclusive?: boolean
  /** Directory for the temp file (must be on the file system of `file`). Default: the directory of `file`. */
  tmpDir?: string
}

/** A fresh temp path next to `file` (or in `dir`): `.<name>.<random>.aibox-tmp` (hidden). */
export function tempPathFor(file: string, dir = path.dirname(file)): string {
  return path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`)
}

/** Whether `name` is one of our temp files (as named by `tempPathFor`). */
export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith(TEMP_SUFFIX)
}

/** The error for an exclusive write whose target exists. */
export function fileExistsError(file: string): InputError {
  return new InputError('FILE_EXISTS', `${file} already exists`, {suggestions: ['pass --force to replace it, or choose another path']})
}

// link(2) fails with these on file systems without hard links (some FUSE, SMB and FAT mounts).
const NO_HARD_LINKS = ['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EMLINK', 'ENOSYS']

/**
 * Moves a written and fsync'ed temp file to `file`: rename, or for an exclusive write a link
 * that fails if `file` exists. Where hard links are unsupported, an exclusive write falls back
 * to check-then-rename (the content is still atomic; only a racing writer could slip in).
 */
function placeSync(tmp: string, file: string, exclusive: boolean): void {
  if (!exclusive) return fs.renameSync(tmp, file)
  try {
    fs.linkSync(tmp, file)
  } catch (err) {
    if (isErrno(err, 'EEXIST')) throw fileExistsError(file)
    if (!isErrno(err, ...NO_HARD_LINKS)) throw err
    if (fs.existsSync(file)) throw fileExistsError(file)
    return fs.renameSync(tmp, file)
  }
  // The file is in place; a temp name left behind is only litter (sweepTempFiles removes it).
  removeQuietlySync(tmp)
}

async function place(tmp: string, file: string, exclusive: boolean): Promise<void> {
  if (!exclusive) return fsp.rename(tmp, file)
  try {
    await fsp.link(tmp, file)
  } catch (err) {
    if (isErrno(err, 'EEXIST')) throw fileExistsError(file)
    if (!isErrno(err, ...NO_HARD_LINKS)) throw err
    if (fs.existsSync(file)) throw fileExistsError(file)
    return fsp.rename(tmp, file)
  }
  await removeQuietly(tmp)
}

/**
 * fsyncs a directory so that a rename or create inside it is durable. Some file systems
 * refuse to fsync directories (EINVAL/EISDIR/EPERM); durability there is the kernel's business.
 */
export function fsyncDirSync(dir: string): void {
  let fd: number | undefined
  try {
    fd = fs.openSync(dir, 'r')
    fs.fsyncSync(fd)
  } catch (err) {
    if (!isErrno(err, 'EINVAL', 'EISDIR', 'EPERM', 'EACCES', 'ENOTSUP', 'EBADF')) throw fsError(err, 'fsync directory', dir)
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined
  try {
    fh = await fsp.open(dir, 'r')
    await fh.sync()
  } catch (err) {
    if (!isErrno(err, 'EINVAL', 'EISDIR', 'EPERM', 'EACCES', 'ENOTSUP', 'EBADF')) throw fsError(err, 'fsync directory', dir)
  } finally {
    await fh?.close()
  }
}

function existingMode(file: string): number | undefined {
  try {
    return fs.statSync(file).mode & 0o7777
  } catch {
    return undefined
  }
}

function toBytes(chunk: string | Uint8Array): Uint8Array {
  return typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk
}

function writeAllSync(fd: number, data: Uint8Array): void {
  let off = 0
  while (off < data.byteLength) off += fs.writeSync(fd, data, off, data.byteLength - off)
}

async function writeAll(fh: fsp.FileHandle, data: Uint8Array): Promise<void> {
  let off = 0
  while (off < data.byteLength) {
    const {bytesWritten} = await fh.write(data, off, data.byteLength - off)
    off += bytesWritten
  }
}

function mkdirsFor(dir: string, options: AtomicWriteOptions): void {
  if (!options.mkdirs) return
  try {
    fs.mkdirSync(dir, {recursive: true, mode: options.dirMode ?? 0o755})
  } catch (err) {
    throw fsError(err, 'create directory', dir)
  }
}

/**
 * Writes `data` to `file` atomically and durably. `data` may be bytes, a string, an (async)
 * iterable of chunks or a writer function: if it throws, the target is left untouched and the
 * temp file removed. Errors are AiboxErrors naming `file` (an AiboxError thrown by `data` is kept).
 */
export async function writeFileAtomic(file: string, data: AtomicData, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = path.dirname(file)
  if (options.mkdirs) {
    try {
      await fsp.mkdir(dir, {recursive: true, mode: options.dirMode ?? 0o755})
    } catch (err) {
      throw fsError(err, 'create directory', dir)
    }
  }
  // Refuse before writing anything (the link below still decides a race).
  if (options.exclusive && fs.existsSync(file)) throw fileExistsError(file)
  const mode = options.mode ?? existingMode(file)
  const tmp = tempPathFor(file, options.tmpDir)
  let fh: fsp.FileHandle | undefined
  let step = 'write'
  try {
    fh = await fsp.open(tmp, 'wx', mode ?? 0o666)
    if (mode !== undefined) await fh.chmod(mode)
    if (typeof data === 'function') {
      await data(fh)
    } else if (typeof data === 'string' || data instanceof Uint8Array) {
      await writeAll(fh, toBytes(data))
    } else {
      for await (const chunk of data as AsyncIterable<string | Uint8Array>) await writeAll(fh, toBytes(chunk))
    }
    step = 'fsync'
    await fh.sync()
    await fh.close()
    fh = undefined
    step = options.exclusive ? 'link into place' : 'rename into place'
    await place(tmp, file, options.exclusive ?? false)
  } catch (err) {
    await fh?.close().catch(() => {})
    await fsp.rm(tmp, {force: true}).catch(() => {})
    throw fsError(err, step, file)
  }
  await fsyncDir(dir)
}

/** A file written to its temp name and fsync'ed, not yet in place (see `stageFileSync`). */
export interface StagedFile {
  /** The final path. */
  readonly path: string
  /** Moves the file into place (as `writeFileAtomicSync` would) and fsyncs the directory. */
  commit(): void
  /** Removes the temp file unless committed. Idempotent; call it in a `finally`. */
  discard(): void
}

/**
 * The first half of `writeFileAtomicSync`: writes and fsyncs the temp file, and returns a
 * handle to move it into place later. Lets a caller write several files all-or-nothing
 * (stage them all, then commit), e.g. a key pair.
 */
export function stageFileSync(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): StagedFile {
  mkdirsFor(path.dirname(file), options)
  if (options.exclusive && fs.existsSync(file)) throw fileExistsError(file)
  const mode = options.mode ?? existingMode(file)
  const tmp = tempPathFor(file, options.tmpDir)
  let fd: number | undefined
  let step = 'write'
  try {
    fd = fs.openSync(tmp, 'wx', mode ?? 0o666)
    if (mode !== undefined) fs.fchmodSync(fd, mode)
    writeAllSync(fd, toBytes(data))
    step = 'fsync'
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    fd = undefined
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd)
    fs.rmSync(tmp, {force: true})
    throw fsError(err, step, file)
  }
  let state: 'staged' | 'committed' | 'discarded' = 'staged'
  const discard = () => {
    if (state !== 'staged') return
    state = 'discarded'
    fs.rmSync(tmp, {force: true})
  }
  return {
    path: file,
    commit() {
      if (state !== 'staged') throw new Error(`staged file ${file} was already ${state}`)
      try {
        placeSync(tmp, file, options.exclusive ?? false)
      } catch (err) {
        discard()
        throw fsError(err, options.exclusive ? 'link into place' : 'rename into place', file)
      }
      state = 'committed'
      fsyncDirSync(path.dirname(file))
    },
    discard,
  }
}

/** Synchronous `writeFileAtomic` for bytes or a string (the hot paths: audit head, cache state). */
export function writeFileAtomicSync(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const staged = stageFileSync(file, data, options)
  try {
    staged.commit()
  } finally {
    staged.discard()
  }
}

/**
 * A Writable over an open FileHandle that leaves the handle open (for `writeFileAtomic`'s writer
 * functions: the caller fsyncs and closes it). FileHandle.createWriteStream({autoClose: false})
 * keeps a reference that makes a later close() wait forever, so this writes directly; writev
 * batches small chunks (tar headers) into one write.
 */
export function fileSink(fh: fsp.FileHandle, highWaterMark = 1024 * 1024): Writable {
  return new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, cb) {
      writeAll(fh, chunk).then(() => cb(), cb)
    },
    writev(chunks, cb) {
      writeAll(fh, Buffer.concat(chunks.map((c) => c.chunk as Buffer))).then(() => cb(), cb)
    },
  })
}

export interface JsonWriteOptions extends AtomicWriteOptions {
  /** Indentation passed to JSON.stringify; default 2. A trailing newline is always added. */
  space?: number
}

function jsonText(value: unknown, space: number | undefined): string {
  return `${JSON.stringify(value, null, space ?? 2)}\n`
}

export async function writeJsonAtomic(file: string, value: unknown, options: JsonWriteOptions = {}): Promise<void> {
  await writeFileAtomic(file, jsonText(value, options.space), options)
}

export function writeJsonAtomicSync(file: string, value: unknown, options: JsonWriteOptions = {}): void {
  writeFileAtomicSync(file, jsonText(value, options.space), options)
}

/**
 * Appends `data` to `file` and fsyncs it before returning (creating the file with `mode`,
 * and fsyncing its directory when it was created). Appends are not atomic against
 * concurrent writers: serialise them with `withLock` when several processes append.
 */
export function appendDurableSync(file: string, data: string | Uint8Array, options: {mode?: number} = {}): void {
  const created = !fs.existsSync(file)
  let fd: number | undefined
  try {
    fd = fs.openSync(file, 'a', options.mode ?? 0o666)
    writeAllSync(fd, toBytes(data))
    fs.fsyncSync(fd)
  } catch (err) {
    throw fsError(err, 'append to', file)
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
  if (created) fsyncDirSync(path.dirname(file))
}

export async function appendDurable(file: string, data: string | Uint8Array, options: {mode?: number} = {}): Promise<void> {
  const created = !fs.existsSync(file)
  let fh: fsp.FileHandle | undefined
  try {
    fh = await fsp.open(file, 'a', options.mode ?? 0o666)
    await writeAll(fh, toBytes(data))
    await fh.sync()
  } catch (err) {
    throw fsError(err, 'append to', file)
  } finally {
    await fh?.close()
  }
  if (created) await fsyncDir(path.dirname(file))
}

/** Removes a file or directory tree, ignoring every error (cleanup paths must not mask the real failure). */
export async function removeQuietly(target: string): Promise<void> {
  await fsp.rm(target, {recursive: true, force: true}).catch(() => {})
}

export function removeQuietlySync(target: string): void {
  try {
    fs.rmSync(target, {recursive: true, force: true})
  } catch {
    // best effort by design
  }
}

/**
 * Removes temp files left in `dir` by writers that were killed mid-write (only our own
 * `*.aibox-tmp` names, and only those older than `olderThanMs`, so a concurrent writer's
 * live temp file is never pulled from under it). Returns the names removed.
 */
export async function sweepTempFiles(dir: string, options: {olderThanMs?: number; now?: number} = {}): Promise<string[]> {
  const olderThan = options.olderThanMs ?? 10 * 60_000
  const now = options.now ?? Date.now()
  let names: string[]
  try {
    names = await fsp.readdir(dir)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw fsError(err, 'list', dir)
  }
  const removed: string[] = []
  for (const name of names) {
    if (!isTempName(name)) continue
    const p = path.join(dir, name)
    try {
      const st = await fsp.lstat(p)
      if (!st.isFile() || now - st.mtimeMs < olderThan) continue
      await fsp.rm(p, {force: true})
      removed.push(name)
    } catch {
      // raced with another sweeper or the writer itself: nothing to do
    }
  }
  return removed.sort()
}

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

import {fsError, isErrno} from './fs-errors.js'

/** Suffix of every temp file we create; `sweepTempFiles` only ever removes these. */
export const TEMP_SUFFIX = '.aibox-tmp'

export type AtomicData = string | Uint8Array | Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>

export interface AtomicWriteOptions {
  /** File mode of the new file (exact, not masked by the umask). Default: the old file's mode, else 0o666 & ~umask. */
  mode?: number
  /** Create missing parent directories (with `dirMode`). Default false. */
  mkdirs?: boolean
  /** Mode of directories created by `mkdirs`. Default 0o755 (masked by the umask). */
  dirMode?: number
}

/** A fresh temp path next to `file`: `.<name>.<random>.aibox-tmp` (hidden, same directory). */
export function tempPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`)
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

/**
 * Writes `data` to `file` atomically and durably. `data` may be bytes, a string, or an
 * (async) iterable of chunks: if the iterable throws, the target is left untouched and the
 * temp file removed. Errors are AiboxErrors naming `file`.
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
  const mode = options.mode ?? existingMode(file)
  const tmp = tempPathFor(file)
  let fh: fsp.FileHandle | undefined
  let step = 'write'
  try {
    fh = await fsp.open(tmp, 'wx', mode ?? 0o666)
    if (mode !== undefined) await fh.chmod(mode)
    if (typeof data === 'string' || data instanceof Uint8Array) {
      await writeAll(fh, toBytes(data))
    } else {
      for await (const chunk of data as AsyncIterable<string | Uint8Array>) await writeAll(fh, toBytes(chunk))
    }
    step = 'fsync'
    await fh.sync()
    await fh.close()
    fh = undefined
    step = 'rename into place'
    await fsp.rename(tmp, file)
  } catch (err) {
    await fh?.close().catch(() => {})
    await fsp.rm(tmp, {force: true}).catch(() => {})
    throw fsError(err, step, file)
  }
  await fsyncDir(dir)
}

/** Synchronous `writeFileAtomic` for bytes or a string (the hot paths: audit head, cache state). */
export function writeFileAtomicSync(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const dir = path.dirname(file)
  if (options.mkdirs) {
    try {
      fs.mkdirSync(dir, {recursive: true, mode: options.dirMode ?? 0o755})
    } catch (err) {
      throw fsError(err, 'create directory', dir)
    }
  }
  const mode = options.mode ?? existingMode(file)
  const tmp = tempPathFor(file)
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
    step = 'rename into place'
    fs.renameSync(tmp, file)
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd)
    fs.rmSync(tmp, {force: true})
    throw fsError(err, step, file)
  }
  fsyncDirSync(dir)
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
    if (!name.startsWith('.') || !name.endsWith(TEMP_SUFFIX)) continue
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

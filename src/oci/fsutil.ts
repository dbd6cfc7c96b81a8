/**
 * File-system helpers for the local stores: errno → OciError, durable atomic writes
 * (temp + fsync + rename + fsync dir, style.md rule 4) and a cross-process lock file.
 * Internal to src/oci (not exported from the barrel).
 */
import {randomUUID} from 'node:crypto'
import {constants as FS} from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Writable} from 'node:stream'

import {AiboxError} from '../errors.js'
import {OciError} from './errors.js'

/** Turns a Node file-system error into an OciError naming the action and the path. */
export function fsError(err: unknown, action: string, file: string): AiboxError {
  if (err instanceof AiboxError) return err
  const code = (err as NodeJS.ErrnoException)?.code
  const msg = `${action} ${file}: ${(err as Error)?.message ?? String(err)}`
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new OciError('NOT_FOUND', msg, {cause: err})
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new OciError('IO_ERROR', msg, {cause: err, suggestions: [`check that you may read and write ${path.dirname(file)}`]})
    case 'ENOSPC':
    case 'EDQUOT':
      return new OciError('IO_ERROR', msg, {cause: err, suggestions: ['free some disk space and retry']})
    default:
      return new OciError('IO_ERROR', msg, {cause: err})
  }
}

export function abortError(signal: AbortSignal | undefined, what: string): OciError {
  return new OciError('ABORTED', `${what} aborted`, {cause: signal?.reason})
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(signal, what)
}

/** fsync a directory so a rename in it survives a crash (best effort where unsupported). */
export async function syncDir(dir: string): Promise<void> {
  let fh: fs.FileHandle | undefined
  try {
    fh = await fs.open(dir, FS.O_RDONLY | FS.O_DIRECTORY)
    await fh.sync()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR') throw fsError(err, 'sync directory', dir)
  } finally {
    await fh?.close()
  }
}

export interface AtomicWriteOptions {
  mode?: number
  /** Directory for the temporary file; must be on the same file system as `file`. Default: dirname(file). */
  tmpDir?: string
}

/** Writes `data` to `file` atomically and durably: readers see the old or the new content, never a mix. */
export async function writeFileAtomic(file: string, data: Uint8Array | string, opts: AtomicWriteOptions = {}): Promise<void> {
  const dir = path.dirname(file)
  const tmp = path.join(opts.tmpDir ?? dir, `.tmp-${path.basename(file)}-${randomUUID()}`)
  let fh: fs.FileHandle | undefined
  try {
    fh = await fs.open(tmp, 'wx', opts.mode ?? 0o644)
    await fh.writeFile(data)
    await fh.sync()
    await fh.close()
    fh = undefined
    await fs.rename(tmp, file)
  } catch (err) {
    await fh?.close().catch(() => {})
    await fs.rm(tmp, {force: true}).catch(() => {})
    throw fsError(err, 'write', file)
  }
  await syncDir(dir)
}

/**
 * Creates `file` with `data` only if it does not exist (link() is atomic and fails with EEXIST),
 * so two processes initialising the same layout cannot overwrite each other. Returns false when
 * the file already existed.
 */
export async function createFileExclusive(file: string, data: Uint8Array | string, mode = 0o644): Promise<boolean> {
  const tmp = path.join(path.dirname(file), `.tmp-${path.basename(file)}-${randomUUID()}`)
  try {
    await fs.writeFile(tmp, data, {mode, flag: 'wx'})
    const fh = await fs.open(tmp, 'r')
    await fh.sync()
    await fh.close()
    try {
      await fs.link(tmp, file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
      throw err
    }
    await syncDir(path.dirname(file))
    return true
  } catch (err) {
    throw fsError(err, 'create', file)
  } finally {
    await fs.rm(tmp, {force: true}).catch(() => {})
  }
}

export interface LockOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number
  /** A lock file older than this is considered abandoned even when its owner cannot be checked (default 120 s). */
  staleMs?: number
  signal?: AbortSignal
}

const HOST = os.hostname()

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** True when the lock's owner is provably gone (same host, dead pid) or the lock is too old. */
async function isStale(lockPath: string, content: string, staleMs: number): Promise<boolean> {
  const m = /^(\d+)@(\S+) /.exec(content)
  if (m && m[2] === HOST) return !pidAlive(Number(m[1]))
  try {
    const st = await fs.stat(lockPath)
    // An empty lock file is one whose creator died between open() and write(): give it a moment.
    const age = Date.now() - st.mtimeMs
    return content === '' ? age > 5000 : age > staleMs
  } catch {
    return false
  }
}

/** Removes an abandoned lock without ever removing a live one someone else just took. */
async function breakLock(lockPath: string, observed: string): Promise<void> {
  const aside = `${lockPath}.stale-${randomUUID()}`
  try {
    await fs.rename(lockPath, aside)
  } catch {
    return
  }
  const moved = await fs.readFile(aside, 'utf8').catch(() => '')
  if (moved !== observed) {
    // We moved a fresh lock taken after our read: put it back unless yet another one exists.
    await fs.link(aside, lockPath).catch(() => {})
  }
  await fs.rm(aside, {force: true}).catch(() => {})
}

/**
 * Runs `fn` while holding an exclusive lock file (O_CREAT|O_EXCL), shared by every process that
 * writes the same layout's index.json. The file records `pid@host` so a crashed owner's lock is
 * broken instead of blocking forever.
 */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000
  const staleMs = opts.staleMs ?? 120_000
  const token = `${process.pid}@${HOST} ${randomUUID()}\n`
  const started = Date.now()
  let delay = 2
  for (;;) {
    throwIfAborted(opts.signal, `waiting for lock ${lockPath}`)
    try {
      const fh = await fs.open(lockPath, 'wx', 0o644)
      try {
        await fh.writeFile(token)
      } finally {
        await fh.close()
      }
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(err, 'create lock', lockPath)
    }
    const content = await fs.readFile(lockPath, 'utf8').catch(() => undefined)
    if (content === undefined) continue
    if (await isStale(lockPath, content, staleMs)) {
      await breakLock(lockPath, content)
      continue
    }
    if (Date.now() - started > timeoutMs) {
      throw new OciError('IO_ERROR', `timed out after ${timeoutMs} ms waiting for lock ${lockPath} (held by ${content.trim().split(' ')[0] || 'unknown'})`, {
        suggestions: [`if no other aibox process is using this layout, remove ${lockPath}`],
      })
    }
    await new Promise((r) => setTimeout(r, delay + Math.random() * delay))
    delay = Math.min(delay * 2, 50)
  }
  try {
    return await fn()
  } finally {
    const now = await fs.readFile(lockPath, 'utf8').catch(() => undefined)
    if (now === token) await fs.rm(lockPath, {force: true}).catch(() => {})
  }
}

/**
 * A Writable over an open FileHandle that leaves the handle open (the caller fsyncs, chmods and
 * closes it). FileHandle.createWriteStream({autoClose: false}) keeps a reference that makes a
 * later close() wait forever, so we write directly.
 */
export function fileSink(fh: fs.FileHandle, highWaterMark = 1024 * 1024): Writable {
  const writeAll = async (buf: Buffer): Promise<void> => {
    let off = 0
    while (off < buf.length) {
      const {bytesWritten} = await fh.write(buf, off, buf.length - off)
      off += bytesWritten
    }
  }
  return new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, cb) {
      writeAll(chunk).then(() => cb(), cb)
    },
    writev(chunks, cb) {
      writeAll(Buffer.concat(chunks.map((c) => c.chunk as Buffer))).then(() => cb(), cb)
    },
  })
}

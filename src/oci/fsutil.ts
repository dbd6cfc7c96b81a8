/**
 * The local stores' file-system layer: src/util's atomic writer and lock, with every failure
 * reported as an OciError (IO_ERROR, NOT_FOUND, ABORTED) naming the action and the path, as
 * the stores' callers expect. Internal to src/oci (not exported from the barrel).
 */
import path from 'node:path'

import {AiboxError} from '../errors.js'
import {type AtomicData, type AtomicWriteOptions, fsyncDir, writeFileAtomic as utilWriteFileAtomic} from '../util/atomic.js'
import {errnoCode} from '../util/fs-errors.js'
import {withLock} from '../util/lock.js'
import {abortError} from './abort.js'
import {OciError} from './errors.js'

// copy.ts takes its abort helper from here.
export {abortError, throwIfAborted} from './abort.js'

/**
 * Turns a Node file-system error into an OciError naming the action and the path. An error
 * src/util already wrapped (PERMISSION_DENIED, NO_SPACE, …) is re-expressed from its cause.
 */
export function fsError(err: unknown, action: string, file: string): AiboxError {
  if (err instanceof AiboxError) {
    if (err instanceof OciError || errnoCode(err.cause) === undefined) return err
    err = err.cause
  }
  const code = errnoCode(err)
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

/** util's `writeFileAtomic` (temp + fsync + rename + fsync dir), failures as OciErrors. */
export async function writeFileAtomic(file: string, data: AtomicData, options: AtomicWriteOptions = {}): Promise<void> {
  try {
    await utilWriteFileAtomic(file, data, options)
  } catch (err) {
    throw fsError(err, 'write', file)
  }
}

/**
 * Creates `file` with `data` only if it does not exist, so two processes initialising the same
 * layout cannot overwrite each other. Returns false when the file already existed.
 */
export async function createFileExclusive(file: string, data: Uint8Array | string): Promise<boolean> {
  try {
    await utilWriteFileAtomic(file, data, {exclusive: true})
    return true
  } catch (err) {
    if (err instanceof AiboxError && err.code === 'FILE_EXISTS') return false
    throw fsError(err, 'create', file)
  }
}

/** fsyncs a directory so a rename in it survives a crash (best effort where unsupported). */
export async function syncDir(dir: string): Promise<void> {
  try {
    await fsyncDir(dir)
  } catch (err) {
    throw fsError(err, 'sync directory', dir)
  }
}

export interface FileLockOptions {
  /** Give up after this long (default 30 s) with IO_ERROR. */
  timeoutMs?: number
  signal?: AbortSignal
}

/**
 * Runs `fn` holding util's cross-process lock on `target` (`<target>.lock`), shared by every
 * process that writes the same file. Failing to get the lock is an OciError (IO_ERROR, or
 * ABORTED); errors of `fn` pass through unchanged.
 */
export async function withFileLock<T>(target: string, fn: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  let entered = false
  try {
    return await withLock(
      target,
      () => {
        entered = true
        return fn()
      },
      {timeoutMs: options.timeoutMs ?? 30_000, signal: options.signal, purpose: `update ${path.basename(target)}`},
    )
  } catch (err) {
    if (entered || !(err instanceof AiboxError)) throw err
    const lockfile = `${target}.lock`
    if (err.code === 'ABORTED') throw abortError(options.signal, `waiting for lock ${lockfile}`)
    if (err.code === 'LOCK_TIMEOUT') {
      throw new OciError('IO_ERROR', err.message, {cause: err, details: err.details, suggestions: [`if no other aibox process is using this layout, remove ${lockfile}`]})
    }
    throw fsError(err, 'lock', lockfile)
  }
}

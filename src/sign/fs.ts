/**
 * File helpers for key and signature files: bounded reads with precise errors, and writes
 * through util's atomic writer (temp file + fsync + rename, or link without --force) so a
 * failure never leaves a half-written key behind and an existing key is never replaced by accident.
 */
import fs from 'node:fs'
import path from 'node:path'

import {AiboxError, InputError, NotFoundError, errorMessage} from '../errors.js'
import {type StagedFile, stageFileSync} from '../util/atomic.js'
import {readFdBounded} from '../util/read.js'

/** Reads a file of at most `maxBytes`, mapping ENOENT/EISDIR/EACCES to AiboxErrors that name the file and its role. */
export function readFileBounded(file: string, what: string, maxBytes: number): Buffer {
  let fd: number
  try {
    fd = fs.openSync(file, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      throw new NotFoundError('FILE_NOT_FOUND', `${what} '${file}' does not exist`, {
        suggestions: ['check the path (relative paths are resolved from the current directory)'],
      })
    }
    throw new InputError('FILE_UNREADABLE', `cannot read ${what} '${file}': ${errorMessage(err)}`, {cause: err})
  }
  try {
    const st = fs.fstatSync(fd)
    if (st.isDirectory()) throw new InputError('FILE_UNREADABLE', `${what} '${file}' is a directory, not a file`)
    if (st.size > maxBytes) {
      throw new InputError('FILE_TOO_LARGE', `${what} '${file}' is ${st.size} bytes, more than the ${maxBytes} allowed`)
    }
    // stat's size is only a hint: /dev/zero says 0, a file may grow while read.
    const buf = readFdBounded(fd, maxBytes, st.size)
    if (!buf) throw new InputError('FILE_TOO_LARGE', `${what} '${file}' has more than the ${maxBytes} bytes allowed`)
    return buf
  } catch (err) {
    if (err instanceof InputError) throw err
    throw new InputError('FILE_UNREADABLE', `cannot read ${what} '${file}': ${errorMessage(err)}`, {cause: err})
  } finally {
    fs.closeSync(fd)
  }
}

/** A missing directory keeps sign's DIR_NOT_FOUND code (util says FILE_NOT_FOUND for any missing path component). */
function dirNotFound(err: unknown, file: string): unknown {
  if (err instanceof AiboxError && err.code === 'FILE_NOT_FOUND') {
    return new NotFoundError('DIR_NOT_FOUND', `directory '${path.dirname(file)}' does not exist (writing '${file}')`, {cause: err.cause})
  }
  return err
}

/**
 * Writes `data` to a temp file next to `file` with exactly `mode` (0600 keys, 0644 public keys),
 * fsyncs it, and returns a handle to commit (without `force`: FILE_EXISTS if `file` exists) or discard it.
 */
export function stageFile(file: string, data: string | Uint8Array, mode: number, force: boolean): StagedFile {
  try {
    return stageFileSync(file, data, {mode, exclusive: !force})
  } catch (err) {
    throw dirNotFound(err, file)
  }
}

/** Writes one key or signature file atomically; never replaces an existing one unless `force`. */
export function writeFileAtomic(file: string, data: string | Uint8Array, options: {mode: number; force: boolean}): void {
  const staged = stageFile(file, data, options.mode, options.force)
  try {
    staged.commit()
  } finally {
    staged.discard()
  }
}

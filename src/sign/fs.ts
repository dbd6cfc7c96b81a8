/**
 * File helpers for key and signature files: bounded reads with precise errors, and atomic
 * writes (temp file + fsync + rename) so a failure never leaves a half-written key behind.
 * Kept inside src/sign so the module has no dependency on code being written in parallel;
 * it can move to src/util later without changing callers.
 */
import {randomBytes} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {InputError, NotFoundError, errorMessage} from '../errors.js'

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
    const buf = Buffer.alloc(st.size)
    let off = 0
    while (off < buf.length) {
      const n = fs.readSync(fd, buf, off, buf.length - off, off)
      if (n === 0) break
      off += n
    }
    return buf.subarray(0, off)
  } catch (err) {
    if (err instanceof InputError) throw err
    throw new InputError('FILE_UNREADABLE', `cannot read ${what} '${file}': ${errorMessage(err)}`, {cause: err})
  } finally {
    fs.closeSync(fd)
  }
}

export interface StagedFile {
  /** The final path. */
  path: string
  /** Moves the staged file into place; without `overwrite` it fails if the path exists (link(2) is atomic no-clobber). */
  commit(overwrite: boolean): void
  /** Removes the staged temp file (idempotent). */
  discard(): void
}

/** Writes `data` to a temp file next to `file` with `mode`, fsyncs it, and returns a handle to commit or discard it. */
export function stageFile(file: string, data: string | Uint8Array, mode: number): StagedFile {
  const dir = path.dirname(path.resolve(file))
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  let fd: number
  try {
    fd = fs.openSync(tmp, 'wx', mode)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new NotFoundError('DIR_NOT_FOUND', `directory '${path.dirname(file)}' does not exist (writing '${file}')`)
    throw new InputError('FILE_UNWRITABLE', `cannot write '${file}': ${errorMessage(err)}`, {cause: err})
  }
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data)
    // umask may have narrowed the mode at open; set it exactly (0600 keys, 0644 public keys).
    fs.fchmodSync(fd, mode)
    fs.fsyncSync(fd)
  } catch (err) {
    fs.closeSync(fd)
    fs.rmSync(tmp, {force: true})
    throw new InputError('FILE_UNWRITABLE', `cannot write '${file}': ${errorMessage(err)}`, {cause: err})
  }
  fs.closeSync(fd)
  let done = false
  return {
    path: file,
    commit(overwrite: boolean) {
      try {
        if (overwrite) fs.renameSync(tmp, file)
        else {
          fs.linkSync(tmp, file)
          fs.rmSync(tmp, {force: true})
        }
        done = true
      } catch (err) {
        fs.rmSync(tmp, {force: true})
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new InputError('FILE_EXISTS', `'${file}' already exists`, {suggestions: ['pass --force to overwrite it, or choose another name']})
        }
        throw new InputError('FILE_UNWRITABLE', `cannot write '${file}': ${errorMessage(err)}`, {cause: err})
      }
      syncDir(dir)
    },
    discard() {
      if (!done) fs.rmSync(tmp, {force: true})
    },
  }
}

/** Writes one file atomically (temp + fsync + rename). */
export function writeFileAtomic(file: string, data: string | Uint8Array, options: {mode?: number; overwrite?: boolean} = {}): void {
  const staged = stageFile(file, data, options.mode ?? 0o644)
  try {
    staged.commit(options.overwrite ?? true)
  } finally {
    staged.discard()
  }
}

function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r')
    try {
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    // Directory fsync is best effort (not supported on every filesystem); the rename itself is atomic.
  }
}

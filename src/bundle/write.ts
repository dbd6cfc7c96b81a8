/**
 * Writing outputs with no partial state: a temp file in the same directory, fsync, then an
 * atomic rename (or, without --force, a hard link that fails if the target exists, so two
 * writers never clobber each other). A failure leaves the target as it was.
 */
import {randomBytes} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {InputError, NotFoundError} from '../errors.js'

export interface WriteOptions {
  /** Replace an existing file (default: refuse). */
  overwrite?: boolean
  mode?: number
}

export function writeOutputFile(file: string, data: string | Uint8Array, options: WriteOptions = {}): void {
  const dir = path.dirname(path.resolve(file))
  if (!fs.existsSync(dir)) throw new NotFoundError('DIRECTORY_NOT_FOUND', `cannot write ${file}: directory ${dir} does not exist`, {suggestions: ['create the directory first']})
  if (!options.overwrite && fs.existsSync(file)) {
    throw new InputError('FILE_EXISTS', `${file} already exists`, {suggestions: ['pass --force to replace it, or choose another path']})
  }
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    const fd = fs.openSync(tmp, 'wx', options.mode ?? 0o644)
    try {
      fs.writeFileSync(fd, data)
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    if (options.overwrite) {
      fs.renameSync(tmp, file)
    } else {
      try {
        fs.linkSync(tmp, file)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new InputError('FILE_EXISTS', `${file} already exists`, {suggestions: ['pass --force to replace it, or choose another path']})
        throw err
      }
      fs.unlinkSync(tmp)
    }
    try {
      const dfd = fs.openSync(dir, 'r')
      fs.fsyncSync(dfd)
      fs.closeSync(dfd)
    } catch {
      // Some filesystems cannot fsync a directory; the rename is still atomic.
    }
  } catch (err) {
    fs.rmSync(tmp, {force: true})
    if (err instanceof InputError || err instanceof NotFoundError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw new InputError('WRITE_FAILED', `cannot write ${file}: ${code === 'EACCES' ? 'permission denied' : (err as Error).message}`, {cause: err})
  }
}

/**
 * Writing outputs with no partial state, through util's atomic writer: without `overwrite` the
 * file is created exclusively (a hard link that fails if the target exists, so two writers
 * never clobber each other: FILE_EXISTS). A failure leaves the target as it was.
 */
import fs from 'node:fs'
import path from 'node:path'

import {NotFoundError} from '../errors.js'
import {writeFileAtomicSync} from '../util/atomic.js'

export interface WriteOptions {
  /** Replace an existing file (default: refuse with FILE_EXISTS). */
  overwrite?: boolean
  /** Exact mode of the new file (default: the replaced file's, else 0666 less the umask). */
  mode?: number
}

export function writeOutputFile(file: string, data: string | Uint8Array, options: WriteOptions = {}): void {
  const dir = path.dirname(path.resolve(file))
  if (!fs.existsSync(dir)) throw new NotFoundError('DIRECTORY_NOT_FOUND', `cannot write ${file}: directory ${dir} does not exist`, {suggestions: ['create the directory first']})
  writeFileAtomicSync(file, data, {mode: options.mode, exclusive: !options.overwrite})
}

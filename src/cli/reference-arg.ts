/**
 * Commands that take "a file or a reference" (`aibox sign`, `verify`, `bundle inspect`) decide
 * the same way: an argument starting with `oci:` or `oci-archive:` is a reference; a path that
 * exists is a file; anything else that parses as a registry reference (`host/repo[:tag|@digest]`)
 * is a reference; otherwise it is a file (and its absence is reported as such).
 */
import fs from 'node:fs'

import {parseReference} from '../oci/reference.js'

export function isReferenceArgument(arg: string): boolean {
  if (arg.startsWith('oci:') || arg.startsWith('oci-archive:')) return true
  if (arg === '-' || fs.existsSync(arg)) return false
  try {
    parseReference(arg)
    return true
  } catch {
    return false
  }
}

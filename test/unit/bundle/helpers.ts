/** Shared helpers for the bundle unit tests: fixture paths and the working directory (error assertions: test/helpers/expect-error.ts). */
import path from 'node:path'

import {TESTDATA} from '../../helpers/cli.js'

export const BUNDLES = path.join(TESTDATA, 'bundles')

export function fixture(...parts: string[]): string {
  return path.join(BUNDLES, ...parts)
}

/** Runs `fn` with the working directory set to `dir` (fixture paths then print as in the docs). */
export function inDir<T>(dir: string, fn: () => T): T {
  const prev = process.cwd()
  process.chdir(dir)
  try {
    return fn()
  } finally {
    process.chdir(prev)
  }
}

/** Shared helpers for the bundle unit tests: fixture paths and error assertions. */
import path from 'node:path'

import {expect} from 'chai'

import {AiboxError} from '../../../src/errors.js'
import {TESTDATA} from '../../helpers/cli.js'

export const BUNDLES = path.join(TESTDATA, 'bundles')

export function fixture(...parts: string[]): string {
  return path.join(BUNDLES, ...parts)
}

/** Runs `fn`, expects it to throw an AiboxError of `cls` with `code`, and returns the error. */
export function expectError<T extends AiboxError>(fn: () => unknown, cls: abstract new (...args: never[]) => T, code: string): T {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  expect(caught, 'expected an error').to.be.instanceOf(cls)
  expect((caught as AiboxError).code).to.equal(code)
  return caught as T
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

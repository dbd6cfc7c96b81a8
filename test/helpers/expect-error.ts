/**
 * Error assertions for the unit tests. Each expects an AiboxError (never a raw Node error, the
 * briefing's rule) of a class when one is given, checks its code and message when given, and
 * returns it for more checks.
 */
import {expect} from 'chai'

import {AiboxError} from '../../src/errors.js'

type ErrorClass<E> = abstract new (...args: never[]) => E

function check<E extends AiboxError>(caught: unknown, cls: ErrorClass<E> | undefined, code: string | undefined, message: RegExp | undefined, what: string): E {
  expect(caught, `expected ${what}${code ? ` with code ${code}` : ''}`).to.be.instanceOf(cls ?? AiboxError)
  const e = caught as E
  if (code !== undefined) expect(e.code, `code of: ${e.message}`).to.equal(code)
  if (message) expect(e.message).to.match(message)
  return e
}

async function settle(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    return err
  }
  return undefined
}

function attempt(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

/** Awaits `p` (or runs `p()`) and returns the AiboxError (of `cls`, when given) it fails with. */
export async function rejection<E extends AiboxError = AiboxError>(p: Promise<unknown> | (() => unknown), cls?: ErrorClass<E>): Promise<E> {
  return check<E>(await settle(p), cls, undefined, undefined, 'a rejection')
}

/** Expects `p` to reject with an AiboxError of `code` (and of class `cls`, and a message matching `message`). */
export async function expectCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<AiboxError>
export async function expectCode<E extends AiboxError>(p: Promise<unknown>, cls: ErrorClass<E>, code: string, message?: RegExp): Promise<E>
export async function expectCode<E extends AiboxError>(p: Promise<unknown>, a: string | ErrorClass<E>, b?: string | RegExp, c?: RegExp): Promise<E> {
  const caught = await settle(p)
  return typeof a === 'string' ? check<E>(caught, undefined, a, b as RegExp | undefined, 'a rejection') : check(caught, a, b as string, c, 'a rejection')
}

/** `expectCode` for a synchronous call. */
export function expectCodeSync(fn: () => unknown, code: string, message?: RegExp): AiboxError
export function expectCodeSync<E extends AiboxError>(fn: () => unknown, cls: ErrorClass<E>, code: string, message?: RegExp): E
export function expectCodeSync<E extends AiboxError>(fn: () => unknown, a: string | ErrorClass<E>, b?: string | RegExp, c?: RegExp): E {
  const caught = attempt(fn)
  return typeof a === 'string' ? check<E>(caught, undefined, a, b as RegExp | undefined, 'a throw') : check(caught, a, b as string, c, 'a throw')
}

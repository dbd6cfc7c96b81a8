/** Asserts a promise rejects with an error of a class and code (and returns it for more checks). */
import {expect} from 'chai'

export async function expectCode<E extends Error & {code?: string}>(
  p: Promise<unknown>,
  cls: abstract new (...args: never[]) => E,
  code: string,
): Promise<E> {
  let caught: unknown
  try {
    await p
  } catch (err) {
    caught = err
  }
  expect(caught, `expected a rejection with ${cls.name} ${code}`).to.be.instanceOf(cls)
  const e = caught as E
  expect(e.code, e.message).to.equal(code)
  return e
}

/**
 * RFC 8785 (JCS) canonical JSON and the content digest (formats.md "Content digest").
 *
 * `canonicalJson(value)` is the reference path: it checks that the value is JSON data
 * (rejecting what `canonicalize` would silently mangle: functions, undefined array slots,
 * BigInt, Dates, Maps, class instances, cycles) and then calls `canonicalize` 4, which also
 * refuses lone surrogates and non-finite numbers (toolchain.md §B). `canonicalDocument`
 * takes bytes and uses the JSON scanner's canonical output when it has one (same bytes,
 * several times faster; the equivalence is tested).
 */
import {createHash} from 'node:crypto'

import canonicalize from 'canonicalize'

import {InputError} from '../errors.js'
import {isWellFormed, pointer} from './json.js'
import {detectFormat, type DocFormat, parseStrict} from './parse.js'
import {JsonSyntaxError, scanJson} from './strict-json.js'

/** RFC 8785 canonical JSON text of a JSON value. Throws InputError (NOT_JSON) for anything that is not JSON data. */
export function canonicalJson(value: unknown): string {
  assertJsonData(value)
  const out = canonicalize(value)
  if (typeof out !== 'string') throw new InputError('NOT_JSON', 'value has no JSON representation')
  return out
}

/** Canonical JSON as UTF-8 bytes. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8')
}

/** `sha256:<hex>` of some bytes. */
export function sha256Digest(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** The content digest of a JSON value: `sha256:<hex>` of its RFC 8785 bytes. */
export function contentDigest(value: unknown): string {
  return sha256Digest(canonicalJson(value))
}

export interface CanonicalDocument {
  format: DocFormat
  canonical: Buffer
  digest: string
}

/**
 * Canonical bytes and digest of any JSON or YAML document (no schema): what `aibox bundle
 * hash --raw` prints. YAML and JSON renderings of the same data give the same digest.
 */
export function canonicalDocument(input: Uint8Array | string, file: string, options: {format?: DocFormat} = {}): CanonicalDocument {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input
  const format = options.format ?? detectFormat(file, typeof input === 'string' ? input : Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 64)).toString('utf8'))
  if (format === 'json') {
    // Fast path: the scanner alone yields the canonical bytes; the tree is not needed. Any
    // problem is re-read by the full parser, which locates it (line, column, pointer).
    try {
      const scan = scanJson(bytes)
      if (scan.problems.length === 0) return {format, canonical: scan.canonical, digest: sha256Digest(scan.canonical)}
    } catch (err) {
      if (!(err instanceof JsonSyntaxError)) throw err
    }
  }
  const doc = parseStrict(bytes, file, {format})
  const canonical = doc.canonical ?? canonicalBytes(doc.value)
  return {format: doc.format, canonical, digest: sha256Digest(canonical)}
}

function assertJsonData(root: unknown): void {
  const stack = new Set<object>()
  const fail = (path: Array<string | number>, what: string): never => {
    throw new InputError('NOT_JSON', `value at ${pointer(path) || '/'} is ${what}, which is not JSON data`)
  }
  const visit = (v: unknown, path: Array<string | number>): void => {
    switch (typeof v) {
      case 'string':
        if (!isWellFormed(v)) fail(path, 'a string with a lone UTF-16 surrogate')
        return
      case 'number':
        if (!Number.isFinite(v)) fail(path, String(v))
        return
      case 'boolean':
        return
      case 'object':
        break
      default:
        fail(path, typeof v === 'undefined' ? 'undefined' : `a ${typeof v}`)
    }
    if (v === null) return
    const o = v as object
    if (stack.has(o)) fail(path, 'a circular reference')
    stack.add(o)
    if (Array.isArray(o)) {
      for (let i = 0; i < o.length; i++) {
        if (!(i in o)) fail([...path, i], 'an empty array slot')
        visit(o[i], [...path, i])
      }
    } else {
      const proto = Object.getPrototypeOf(o)
      if (proto !== null && proto !== Object.prototype) fail(path, `an instance of ${(o.constructor as {name?: string})?.name ?? 'a class'}`)
      for (const k of Object.keys(o)) {
        if (!isWellFormed(k)) fail([...path, k], 'a key with a lone UTF-16 surrogate')
        const x = (o as Record<string, unknown>)[k]
        // Like JSON.stringify, an undefined member is absent (handy for optional fields).
        if (x === undefined) continue
        visit(x, [...path, k])
      }
    }
    stack.delete(o)
  }
  visit(root, [])
}

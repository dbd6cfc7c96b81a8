/**
 * JSON value types and small helpers shared by the bundle modules.
 *
 * Parsed documents are trees of null-prototype objects (see parse.ts), so a key such as
 * `__proto__` or `constructor` is plain data and can never reach Object.prototype.
 */

export type JsonPrimitive = string | number | boolean | null
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject
export interface JsonObject {
  [key: string]: JsonValue
}

/** A fresh null-prototype object: the only kind of object a parsed document contains. */
export function dict<T = JsonValue>(): Record<string, T> {
  return Object.create(null) as Record<string, T>
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Own-property lookup that never consults a prototype (safe for user-chosen keys). */
export function own<T = JsonValue>(obj: object, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(obj, key) ? ((obj as Record<string, unknown>)[key] as T) : undefined
}

/** RFC 6901 JSON pointer from path segments. */
export function pointer(segments: ReadonlyArray<string | number>): string {
  let out = ''
  for (const s of segments) out += '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')
  return out
}

/** Splits an RFC 6901 pointer into unescaped segments ('' → []). */
export function parsePointer(ptr: string): string[] {
  if (ptr === '' || ptr === '/') return ptr === '/' ? [''] : []
  if (!ptr.startsWith('/')) throw new Error(`not a JSON pointer: ${ptr}`)
  return ptr
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

/**
 * Compares two strings by Unicode code point (not UTF-16 code unit), the order seed 001
 * asks for when composed rules are sorted by id. The two orders differ only when a
 * character above U+FFFF meets one in U+E000..U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    const xs = x >= 0xd800 && x <= 0xdfff
    const ys = y >= 0xd800 && y <= 0xdfff
    if (xs === ys) return x - y
    // A surrogate (astral code point) sorts after every BMP code unit.
    return xs ? 1 : -1
  }
  return a.length - b.length
}

/** Deep equality of two JSON values (key order ignored). */
export function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true
  if (a === null || b === null || a === undefined || b === undefined) return false
  if (typeof a !== 'object' || typeof b !== 'object') return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as JsonValue[]
    return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]))
  }
  const ao = a as JsonObject
  const bo = b as JsonObject
  const ka = Object.keys(ao)
  const kb = Object.keys(bo)
  if (ka.length !== kb.length) return false
  return ka.every((k) => Object.prototype.hasOwnProperty.call(bo, k) && jsonEqual(ao[k], bo[k]))
}

/** Deep copy of a JSON value into null-prototype objects. */
export function toNullProto(v: unknown): JsonValue {
  if (v === null || typeof v !== 'object') return v as JsonValue
  if (Array.isArray(v)) {
    const out = new Array<JsonValue>(v.length)
    for (let i = 0; i < v.length; i++) out[i] = toNullProto(v[i])
    return out
  }
  const out = dict()
  const src = v as Record<string, unknown>
  for (const k of Object.keys(src)) out[k] = toNullProto(src[k])
  return out
}

/** Levenshtein distance, for "did you mean" hints on unknown keys. */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0
  const prev = Array.from({length: b.length + 1}, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]
    prev[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1))
      diag = tmp
    }
  }
  return prev[b.length]
}

/** The closest candidate within a small edit distance, or undefined. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  // Edit distance is O(|word|·|candidate|): an 8 MiB unknown key took 8 s. Nobody mistypes 200 characters.
  if (word.length > 200) return undefined
  let best: string | undefined
  let bestD = Infinity
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase())
    if (d < bestD) {
      bestD = d
      best = c
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** True when the string has no lone UTF-16 surrogate (String#isWellFormed, ES2024). */
export function isWellFormed(s: string): boolean {
  const native = (s as unknown as {isWellFormed?: () => boolean}).isWellFormed
  return native ? native.call(s) : !LONE_SURROGATE.test(s)
}

/**
 * Strict JSON: one pass over the UTF-8 bytes that validates the grammar (RFC 8259), detects
 * what JSON.parse silently accepts (duplicate keys, integers that lose precision above 2^53,
 * numbers that overflow to Infinity, escaped lone surrogates) and writes the RFC 8785
 * canonical form of the document as it goes.
 *
 * Why a scanner instead of JSON.parse + canonicalize: JSON.parse keeps the last of two
 * duplicate keys without a word and rounds 2^53+1, and the tree round-trip through
 * `canonicalize` runs at ~25-50 MB/s; architecture.md asks ≥ 40 MB/s for the canonical digest
 * of a JSON bundle. Working on bytes, canonical output is mostly a copy of input spans: a
 * string without escapes is already canonical, and so is an integer literal of ≤ 15 digits.
 * Objects are written in document order and their member spans reordered in place when the
 * keys are not sorted (RFC 8785 §3.2.3: by UTF-16 code units). Positions (line, column, JSON
 * pointer) are computed only when there is something to report.
 *
 * The output is checked against `canonicalize` (the reference implementation) by the RFC 8785
 * vectors and a randomized equivalence test (test/unit/bundle/strict-json.test.ts).
 */
import {isUtf8} from 'node:buffer'

import {isWellFormed} from './json.js'

/** Maximum nesting depth; deeper documents are refused instead of exhausting the stack. */
export const MAX_JSON_DEPTH = 512

export interface JsonScanProblem {
  /** Byte offset into the scanned buffer. */
  offset: number
  /** RFC 6901 pointer of the offending value or member. */
  pointer: string
  message: string
  /** For duplicate keys: byte offset of the first occurrence. */
  firstOffset?: number
  code: 'DUPLICATE_KEY' | 'UNSAFE_INTEGER' | 'NUMBER_RANGE' | 'LONE_SURROGATE'
}

/** A grammar error: the scan cannot continue past it. */
export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message)
    this.name = 'JsonSyntaxError'
  }
}

export interface JsonScanResult {
  /** RFC 8785 canonical JSON (UTF-8). Valid only when `problems` is empty. */
  canonical: Buffer
  problems: JsonScanProblem[]
  /** Byte offset where the JSON text starts (3 when a UTF-8 BOM was skipped). */
  start: number
}

/**
 * Scans `buf` strictly. Throws JsonSyntaxError (with a byte offset) on invalid UTF-8 or a
 * grammar error; returns the canonical bytes and every non-grammar problem otherwise.
 */
export function scanJson(buf: Uint8Array): JsonScanResult {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  if (!isUtf8(b)) {
    throw new JsonSyntaxError('invalid UTF-8 byte sequence', firstInvalidUtf8(b))
  }
  const s = new Scanner(b)
  // A UTF-8 byte-order mark is not content (RFC 8259 §8.1 lets parsers ignore it).
  if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) s.pos = 3
  const start = s.pos
  s.ws()
  if (s.pos >= b.length) throw new JsonSyntaxError('empty document: expected a JSON value', s.pos)
  s.value(0)
  s.ws()
  if (s.pos !== b.length) throw new JsonSyntaxError('unexpected content after the JSON value', s.pos)
  return {canonical: s.out.subarray(0, s.o), problems: s.problems, start}
}

class Scanner {
  readonly buf: Buffer
  readonly n: number
  pos = 0
  out: Buffer
  o = 0
  problems: JsonScanProblem[] = []
  // Members of the objects being scanned: key span (input), member start (output), decoded key index.
  mk0 = new Int32Array(256)
  mk1 = new Int32Array(256)
  mo = new Int32Array(256)
  mesc = new Int32Array(256)
  m = 0
  keyStr: string[] = []
  tmp: Buffer = Buffer.allocUnsafe(4096)
  // The current path, for pointers in problems: kind 0 = array index, 1 = object key span.
  pathKind = new Uint8Array(MAX_JSON_DEPTH + 2)
  pathA = new Int32Array(MAX_JSON_DEPTH + 2)
  pathB = new Int32Array(MAX_JSON_DEPTH + 2)

  constructor(buf: Buffer) {
    this.buf = buf
    this.n = buf.length
    this.out = Buffer.allocUnsafe(buf.length + 64)
  }

  fail(message: string, at = this.pos): never {
    throw new JsonSyntaxError(message, at)
  }

  ensure(k: number): void {
    if (this.o + k > this.out.length) {
      const nb = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.o + k + 64))
      this.out.copy(nb, 0, 0, this.o)
      this.out = nb
    }
  }

  ws(): void {
    const b = this.buf
    const n = this.n
    let p = this.pos
    let c
    while (p < n && ((c = b[p]) === 32 || c === 10 || c === 13 || c === 9)) p++
    this.pos = p
  }

  pointerAt(depth: number, extraKey?: [number, number]): string {
    let out = ''
    for (let d = 1; d <= depth; d++) out += '/' + this.segment(this.pathKind[d], this.pathA[d], this.pathB[d])
    if (extraKey) out += '/' + this.segment(1, extraKey[0], extraKey[1])
    return out
  }

  segment(kind: number, a: number, bEnd: number): string {
    if (kind === 0) return String(a)
    let key: string
    try {
      key = JSON.parse(this.buf.toString('utf8', a, bEnd)) as string
    } catch {
      key = this.buf.toString('utf8', a + 1, bEnd - 1)
    }
    return key.replace(/~/g, '~0').replace(/\//g, '~1')
  }

  problem(code: JsonScanProblem['code'], offset: number, pointer: string, message: string, firstOffset?: number): void {
    if (this.problems.length >= 1000) return
    this.problems.push(firstOffset === undefined ? {code, offset, pointer, message} : {code, offset, pointer, message, firstOffset})
  }

  pushMember(k0: number, k1: number, mo: number, esc: number): void {
    if (this.m === this.mk0.length) {
      const grow = (a: Int32Array) => {
        const g = new Int32Array(a.length * 2)
        g.set(a)
        return g
      }
      this.mk0 = grow(this.mk0)
      this.mk1 = grow(this.mk1)
      this.mo = grow(this.mo)
      this.mesc = grow(this.mesc)
    }
    this.mk0[this.m] = k0
    this.mk1[this.m] = k1
    this.mo[this.m] = mo
    this.mesc[this.m] = esc
    this.m++
  }

  /**
   * Scans the string at `pos` (on its opening quote) and writes its canonical form. Returns
   * -1 when the raw bytes were copied, else (for keys) the index of the decoded key in keyStr.
   */
  string(depth: number, asKey: boolean): number {
    const b = this.buf
    const n = this.n
    const start = this.pos
    // Copy while scanning: a string without escapes is already canonical. The output never
    // outruns the input here (whitespace is dropped), so one capacity check suffices.
    if (this.o + (n - start) > this.out.length) this.ensure(n - start)
    const out = this.out
    const o0 = this.o
    let o = o0
    out[o++] = 34
    let p = start + 1
    let esc = false
    for (;;) {
      if (p >= n) this.fail('unterminated string', start)
      const c = b[p]
      if (c === 34) break
      if (c === 92) {
        esc = true
        p += 2
        continue
      }
      if (c < 32) this.fail(`control character U+${c.toString(16).padStart(4, '0').toUpperCase()} in a string (escape it)`, p)
      out[o++] = c
      p++
    }
    p++
    this.pos = p
    if (!esc) {
      out[o++] = 34
      this.o = o
      return -1
    }
    this.o = o0
    let decoded: string
    try {
      decoded = JSON.parse(b.toString('utf8', start, p)) as string
    } catch {
      this.fail('invalid escape sequence in string', start)
    }
    if (!isWellFormed(decoded)) {
      const ptr = asKey ? this.pointerAt(depth, [start, p]) : this.pointerAt(depth)
      this.problem('LONE_SURROGATE', start, ptr, 'string contains a lone UTF-16 surrogate escape, which RFC 8785 cannot encode')
    }
    const enc = JSON.stringify(decoded)
    this.ensure(enc.length * 3)
    this.o += this.out.write(enc, this.o, 'utf8')
    if (!asKey) return -1
    this.keyStr.push(decoded)
    return this.keyStr.length - 1
  }

  number(depth: number): void {
    const b = this.buf
    const n = this.n
    const start = this.pos
    let p = start
    if (b[p] === 45) p++
    let c = b[p]
    if (c === 48) {
      p++
      c = b[p]
      if (c >= 48 && c <= 57) this.fail('numbers must not have leading zeros', start)
    } else if (c >= 49 && c <= 57) {
      p++
      while (p < n && (c = b[p]) >= 48 && c <= 57) p++
    } else {
      this.fail(p >= n ? 'unexpected end of input' : `unexpected character ${describeByte(b, p)}`, p)
    }
    let intLit = true
    c = b[p]
    if (c === 46) {
      intLit = false
      p++
      const s = p
      while (p < n && (c = b[p]) >= 48 && c <= 57) p++
      if (s === p) this.fail('invalid number: expected digits after the decimal point', p)
      c = b[p]
    }
    if (c === 101 || c === 69) {
      intLit = false
      p++
      c = b[p]
      if (c === 43 || c === 45) p++
      const s = p
      while (p < n && (c = b[p]) >= 48 && c <= 57) p++
      if (s === p) this.fail('invalid number: expected digits in the exponent', p)
    }
    this.pos = p
    const len = p - start
    if (intLit && len <= 15) {
      this.ensure(len)
      if (len === 2 && b[start] === 45 && b[start + 1] === 48) {
        this.out[this.o++] = 48 // -0 is 0 (RFC 8785 §3.2.2.3)
        return
      }
      for (let i = start; i < p; i++) this.out[this.o++] = b[i]
      return
    }
    const raw = b.toString('latin1', start, p)
    const v = Number(raw)
    if (!Number.isFinite(v)) {
      this.problem('NUMBER_RANGE', start, this.pointerAt(depth), `number ${abbreviate(raw)} is outside the IEEE 754 double range`)
    } else if (intLit && !Number.isSafeInteger(v)) {
      this.problem('UNSAFE_INTEGER', start, this.pointerAt(depth), `integer ${abbreviate(raw)} is outside ±(2^53-1) and would lose precision; quote it as a string`)
    }
    const s = String(v)
    this.ensure(s.length)
    this.o += this.out.write(s, this.o, 'latin1')
  }

  keyString(i: number): string {
    const e = this.mesc[i]
    return e >= 0 ? this.keyStr[e] : this.buf.toString('utf8', this.mk0[i] + 1, this.mk1[i] - 1)
  }

  /** Compares member keys i and j by UTF-16 code units (RFC 8785 §3.2.3). */
  cmpKeys(i: number, j: number): number {
    if (this.mesc[i] >= 0 || this.mesc[j] >= 0) return cmpStrings(this.keyString(i), this.keyString(j))
    const b = this.buf
    let p = this.mk0[i] + 1
    let q = this.mk0[j] + 1
    const pe = this.mk1[i] - 1
    const qe = this.mk1[j] - 1
    for (;;) {
      if (p === pe) return q === qe ? 0 : -1
      if (q === qe) return 1
      const x = b[p]
      const y = b[q]
      if (x !== y) {
        // UTF-8 byte order equals code point order, which differs from UTF-16 order for
        // astral characters; fall back to strings for anything non-ASCII.
        if (x < 128 && y < 128) return x - y
        return cmpStrings(this.keyString(i), this.keyString(j))
      }
      p++
      q++
    }
  }

  value(depth: number): void {
    if (depth >= MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH} levels`)
    const b = this.buf
    const c = b[this.pos]
    if (c === 123) {
      this.object(depth)
      return
    }
    if (c === 91) {
      this.array(depth)
      return
    }
    if (c === 34) {
      this.string(depth, false)
      return
    }
    if (c === 116) return this.literal('true')
    if (c === 102) return this.literal('false')
    if (c === 110) return this.literal('null')
    this.number(depth)
  }

  literal(word: string): void {
    const b = this.buf
    for (let i = 0; i < word.length; i++) {
      if (b[this.pos + i] !== word.charCodeAt(i)) this.fail(`unexpected character ${describeByte(b, this.pos)}`, this.pos)
    }
    this.pos += word.length
    this.ensure(word.length)
    this.o += this.out.write(word, this.o, 'latin1')
  }

  array(depth: number): void {
    const b = this.buf
    this.pos++
    this.ws()
    this.ensure(1)
    this.out[this.o++] = 91
    if (b[this.pos] === 93) {
      this.pos++
      this.ensure(1)
      this.out[this.o++] = 93
      return
    }
    const d = depth + 1
    this.pathKind[d] = 0
    for (let index = 0; ; index++) {
      this.pathA[d] = index
      this.ws()
      if (this.pos >= this.n) this.fail('unexpected end of input: unterminated array')
      this.value(d)
      this.ws()
      const c = b[this.pos]
      this.ensure(1)
      if (c === 44) {
        this.pos++
        this.out[this.o++] = 44
        continue
      }
      if (c === 93) {
        this.pos++
        this.out[this.o++] = 93
        return
      }
      this.fail(this.pos >= this.n ? "unexpected end of input: expected ',' or ']'" : `expected ',' or ']' after an array element, found ${describeByte(b, this.pos)}`)
    }
  }

  object(depth: number): void {
    const b = this.buf
    this.pos++
    this.ws()
    this.ensure(1)
    const objStart = this.o
    this.out[this.o++] = 123
    if (b[this.pos] === 125) {
      this.pos++
      this.ensure(1)
      this.out[this.o++] = 125
      return
    }
    const base = this.m
    const d = depth + 1
    this.pathKind[d] = 1
    for (;;) {
      this.ws()
      if (b[this.pos] !== 34) {
        this.fail(this.pos >= this.n ? 'unexpected end of input: unterminated object' : `expected a string key, found ${describeByte(b, this.pos)}`)
      }
      const k0 = this.pos
      const mo = this.o
      const esc = this.string(depth, true)
      const k1 = this.pos
      this.pushMember(k0, k1, mo, esc)
      this.pathA[d] = k0
      this.pathB[d] = k1
      this.ws()
      if (b[this.pos] !== 58) this.fail(`expected ':' after the key, found ${describeByte(b, this.pos)}`)
      this.pos++
      this.ensure(1)
      this.out[this.o++] = 58
      this.ws()
      if (this.pos >= this.n) this.fail('unexpected end of input: expected a value')
      this.value(d)
      this.ws()
      const c = b[this.pos]
      if (c === 44) {
        this.pos++
        this.ensure(1)
        this.out[this.o++] = 44
        continue
      }
      if (c === 125) {
        this.pos++
        break
      }
      this.fail(this.pos >= this.n ? "unexpected end of input: expected ',' or '}'" : `expected ',' or '}' after an object member, found ${describeByte(b, this.pos)}`)
    }
    const end = this.m
    let sorted = true
    for (let i = base + 1; i < end; i++) {
      if (this.cmpKeys(i - 1, i) >= 0) {
        sorted = false
        break
      }
    }
    if (!sorted) this.reorder(depth, base, end, objStart)
    this.m = base
    if (this.keyStr.length > 0 && base === 0) this.keyStr.length = 0
    this.ensure(1)
    this.out[this.o++] = 125
  }

  /** Sorts the members base..end of the object whose output starts at objStart; reports duplicate keys. */
  reorder(depth: number, base: number, end: number, objStart: number): void {
    const cnt = end - base
    const idx: number[] = new Array(cnt)
    for (let i = 0; i < cnt; i++) idx[i] = base + i
    idx.sort((x, y) => this.cmpKeys(x, y) || x - y)
    for (let r = 1; r < cnt; r++) {
      if (this.cmpKeys(idx[r - 1], idx[r]) === 0) {
        const dup = idx[r]
        const first = idx[r - 1]
        this.problem(
          'DUPLICATE_KEY',
          this.mk0[dup],
          this.pointerAt(depth, [this.mk0[dup], this.mk1[dup]]),
          `duplicate key ${JSON.stringify(this.keyString(dup))}`,
          this.mk0[first],
        )
      }
    }
    const bodyStart = objStart + 1
    const total = this.o - bodyStart
    if (this.tmp.length < total) this.tmp = Buffer.allocUnsafe(Math.max(total, this.tmp.length * 2))
    const tmp = this.tmp
    const out = this.out
    out.copy(tmp, 0, bodyStart, this.o)
    let o = bodyStart
    for (let r = 0; r < cnt; r++) {
      const i = idx[r]
      const s = this.mo[i] - bodyStart
      // A member ends where the next one starts, minus the comma; the last one at the end.
      const e = (i + 1 < end ? this.mo[i + 1] - 1 : this.o) - bodyStart
      if (r > 0) out[o++] = 44
      if (e - s > 512) {
        tmp.copy(out, o, s, e)
        o += e - s
      } else {
        for (let k = s; k < e; k++) out[o++] = tmp[k]
      }
    }
  }
}

/** A number literal for a message: a hostile one may have a million digits. */
function abbreviate(literal: string): string {
  return literal.length <= 40 ? literal : `${literal.slice(0, 24)}… (${literal.length} characters)`
}

function cmpStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function describeByte(b: Buffer, p: number): string {
  if (p >= b.length) return 'end of input'
  const c = b[p]
  if (c >= 0x20 && c < 0x7f) return `'${String.fromCharCode(c)}'`
  if (c < 0x80) return `U+${c.toString(16).padStart(4, '0').toUpperCase()}`
  const ch = b.toString('utf8', p, Math.min(b.length, p + 4)).codePointAt(0) ?? 0xfffd
  return `'${String.fromCodePoint(ch)}'`
}

/** Offset of the first byte that is not part of a well-formed UTF-8 sequence (slow path, errors only). */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0
  const n = b.length
  while (i < n) {
    const c = b[i]
    if (c < 0x80) {
      i++
      continue
    }
    let need: number
    let min: number
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1
      min = 0x80
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2
      min = 0x800
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3
      min = 0x10000
    } else return i
    if (i + need >= n) return i
    let cp = c & (0x3f >> need)
    for (let k = 1; k <= need; k++) {
      const x = b[i + k]
      if (x === undefined || (x & 0xc0) !== 0x80) return i
      cp = (cp << 6) | (x & 0x3f)
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i
    i += need + 1
  }
  return n
}

/**
 * Finds the UTF-16 offsets of the key and the value that `segments` designate in a JSON text
 * (already known to be valid). Used only to put a line and column on a schema problem.
 */
export function locateJson(text: string, segments: string[]): {key?: number; value: number} | undefined {
  let pos = skipWs(text, text.charCodeAt(0) === 0xfeff ? 1 : 0)
  let key: number | undefined
  for (const seg of segments) {
    const c = text[pos]
    if (c === '{') {
      pos = skipWs(text, pos + 1)
      let found = -1
      while (text[pos] === '"') {
        const k0 = pos
        const k1 = skipString(text, pos)
        const name = JSON.parse(text.slice(k0, k1)) as string
        pos = skipWs(text, k1)
        pos = skipWs(text, pos + 1) // ':'
        if (name === seg) {
          found = pos
          key = k0
          break
        }
        pos = skipWs(text, skipValue(text, pos))
        if (text[pos] === ',') pos = skipWs(text, pos + 1)
      }
      if (found < 0) return undefined
      pos = found
    } else if (c === '[') {
      const want = Number(seg)
      if (!/^(0|[1-9]\d*)$/.test(seg)) return undefined
      pos = skipWs(text, pos + 1)
      for (let i = 0; i < want; i++) {
        if (text[pos] === ']') return undefined
        pos = skipWs(text, skipValue(text, pos))
        if (text[pos] !== ',') return undefined
        pos = skipWs(text, pos + 1)
      }
      if (text[pos] === ']') return undefined
      key = undefined
    } else {
      return undefined
    }
  }
  return {key, value: pos}
}

function skipWs(t: string, p: number): number {
  while (p < t.length && (t[p] === ' ' || t[p] === '\n' || t[p] === '\r' || t[p] === '\t')) p++
  return p
}

function skipString(t: string, p: number): number {
  p++
  while (p < t.length) {
    const c = t[p]
    if (c === '\\') p += 2
    else if (c === '"') return p + 1
    else p++
  }
  return p
}

function skipValue(t: string, p: number): number {
  const c = t[p]
  if (c === '"') return skipString(t, p)
  if (c === '{' || c === '[') {
    let depth = 0
    while (p < t.length) {
      const d = t[p]
      if (d === '"') {
        p = skipString(t, p)
        continue
      }
      if (d === '{' || d === '[') depth++
      else if (d === '}' || d === ']') {
        depth--
        if (depth === 0) return p + 1
      }
      p++
    }
    return p
  }
  while (p < t.length && !/[,}\]\s]/.test(t[p])) p++
  return p
}

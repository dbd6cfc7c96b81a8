import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import canonicalize from 'canonicalize'
import {expect} from 'chai'

import {canonicalJson} from '../../../src/bundle/canonical.js'
import {JsonSyntaxError, locateJson, MAX_JSON_DEPTH, scanJson} from '../../../src/bundle/strict-json.js'
import {VECTORS} from '../../helpers/cli.js'

const JCS = path.join(VECTORS, 'jcs')

function scan(text: string) {
  return scanJson(Buffer.from(text, 'utf8'))
}

function syntaxError(text: string | Buffer): JsonSyntaxError {
  try {
    scanJson(typeof text === 'string' ? Buffer.from(text) : text)
  } catch (err) {
    expect(err).to.be.instanceOf(JsonSyntaxError)
    return err as JsonSyntaxError
  }
  throw new Error(`expected a syntax error for ${String(text)}`)
}

/** A deterministic pseudo-random generator (xorshift), so failures reproduce. */
function rng(seed: number) {
  let x = seed
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 0x100000000
  }
}

const ALPHABET = ['a', 'b', 'z', 'A', '0', '_', '-', ' ', 'é', 'ß', '€', '\u2028', '😀', '𝄞', '\uFB01', '"', '\\', '\n', '\t', '\u0001', '\u007f', '\uE000', '\uFFFF']

function randomString(r: () => number): string {
  let s = ''
  const n = Math.floor(r() * 6)
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)]
  return s
}

function randomValue(r: () => number, depth: number): unknown {
  const k = r()
  if (depth > 3 || k < 0.35) {
    const p = r()
    if (p < 0.25) return randomString(r)
    if (p < 0.4) return Math.floor(r() * 2 ** 53) * (r() < 0.5 ? -1 : 1)
    if (p < 0.55) return (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20)
    if (p < 0.65) return [0, -0, 1e21, 1e-7, 5e-324, 1.7976931348623157e308, 0.1, 100, 1e20][Math.floor(r() * 9)]
    if (p < 0.8) return r() < 0.5
    return null
  }
  if (k < 0.65) return Array.from({length: Math.floor(r() * 4)}, () => randomValue(r, depth + 1))
  const o: Record<string, unknown> = {}
  const n = Math.floor(r() * 5)
  for (let i = 0; i < n; i++) o[r() < 0.2 ? String(Math.floor(r() * 20)) : randomString(r)] = randomValue(r, depth + 1)
  return o
}

/** Renders JSON with random whitespace, random key order and random escapes (still the same data). */
function render(v: unknown, r: () => number): string {
  const ws = () => [' ', '', '\n  ', '\t', '\r\n'][Math.floor(r() * 5)]
  const str = (s: string) => {
    let out = '"'
    for (const ch of s) {
      const c = ch.codePointAt(0)!
      if (ch === '"' || ch === '\\' || c < 0x20 || r() < 0.2) {
        out += ch.length === 2 ? `\\u${ch.charCodeAt(0).toString(16)}\\u${ch.charCodeAt(1).toString(16).toUpperCase()}` : r() < 0.5 && ch === '/' ? '\\/' : `\\u${c.toString(16).padStart(4, '0')}`
      } else out += ch
    }
    return `${out}"`
  }
  if (v === null || typeof v === 'boolean') return String(v)
  if (typeof v === 'number') {
    if (Object.is(v, -0)) return '-0'
    // An integral value beyond 2^53 written as an integer literal is refused by design; write it as a float.
    if (Number.isInteger(v) && !Number.isSafeInteger(v) && !/e/.test(JSON.stringify(v))) return `${JSON.stringify(v)}.0`
    return r() < 0.3 && Number.isInteger(v) && Math.abs(v) < 1e15 && v !== 0 ? `${v}.0e0` : JSON.stringify(v)
  }
  if (typeof v === 'string') return str(v)
  if (Array.isArray(v)) return `[${ws()}${v.map((x) => render(x, r)).join(`,${ws()}`)}${ws()}]`
  const entries = Object.entries(v as Record<string, unknown>).sort(() => r() - 0.5)
  return `{${ws()}${entries.map(([k, x]) => `${str(k)}${ws()}:${ws()}${render(x, r)}`).join(`,${ws()}`)}${ws()}}`
}

describe('strict-json', () => {
  describe('#scanJson', () => {
    describe('when given the RFC 8785 vectors (../shared/vectors/jcs)', () => {
      const inputs = fs.readdirSync(path.join(JCS, 'input')).filter((f) => f.endsWith('.json'))
      it('finds the vector files', () => {
        expect(inputs.length).to.be.greaterThanOrEqual(6)
      })
      for (const f of inputs) {
        it(`canonicalizes ${f} to exactly output/${f}`, () => {
          const input = fs.readFileSync(path.join(JCS, 'input', f))
          const expected = fs.readFileSync(path.join(JCS, 'output', f))
          const r = scanJson(input)
          expect(r.problems).to.deep.equal([])
          expect(Buffer.compare(r.canonical, expected)).to.equal(0, `${f}: got ${r.canonical.toString()}`)
        })
      }
    })

    describe('when compared with canonicalize on random documents', () => {
      it('gives byte-identical output for 2,000 documents with random key order, whitespace and escapes', () => {
        const r = rng(0x5eed)
        for (let i = 0; i < 2000; i++) {
          const v = randomValue(r, 0)
          const text = render(v, r)
          const expected = canonicalize(JSON.parse(text))!
          const got = scan(text)
          expect(got.problems, text).to.deep.equal([])
          expect(got.canonical.toString('utf8'), text).to.equal(expected)
        }
      })
    })

    describe('when keys repeat', () => {
      it('reports every duplicate with its pointer and the first occurrence', () => {
        const r = scan('{"a": 1, "b": {"x": 1, "x": 2}, "a": 3}')
        expect(r.problems.map((p) => [p.code, p.pointer])).to.deep.equal([
          ['DUPLICATE_KEY', '/b/x'],
          ['DUPLICATE_KEY', '/a'],
        ])
        expect(r.problems[1].firstOffset).to.equal(1)
      })
      it('sees through escapes ("a" and "\\u0061" are the same key)', () => {
        expect(scan('{"\\u0061": 1, "a": 2}').problems.map((p) => p.code)).to.deep.equal(['DUPLICATE_KEY'])
      })
      it('escapes pointer segments per RFC 6901', () => {
        expect(scan('{"a/b": {"~": 1, "~": 2}}').problems[0].pointer).to.equal('/a~1b/~0')
      })
    })

    describe('when numbers lose precision or overflow', () => {
      it('refuses integers outside ±(2^53-1) and accepts the boundary', () => {
        expect(scan('[9007199254740991, -9007199254740991]').problems).to.deep.equal([])
        const r = scan('{"n": [9007199254740992, 9007199254740993, -12345678901234567890]}')
        expect(r.problems.map((p) => [p.code, p.pointer])).to.deep.equal([
          ['UNSAFE_INTEGER', '/n/0'],
          ['UNSAFE_INTEGER', '/n/1'],
          ['UNSAFE_INTEGER', '/n/2'],
        ])
      })
      it('accepts large floats written as floats, refuses overflow to Infinity', () => {
        expect(scan('[1e300, 1.5e20, 12345678901234567890.5]').problems).to.deep.equal([])
        expect(scan('[1e400]').problems.map((p) => p.code)).to.deep.equal(['NUMBER_RANGE'])
        expect(scan('[-1e999]').problems.map((p) => p.code)).to.deep.equal(['NUMBER_RANGE'])
      })
      it('writes -0 as 0 and normalises number spellings', () => {
        expect(scan('[-0, 1.0, 1E2, 0.10, 1e21, 1e-7]').canonical.toString()).to.equal('[0,1,100,0.1,1e+21,1e-7]')
      })
    })

    describe('when a string holds a lone surrogate escape', () => {
      it('reports it (RFC 8785 cannot encode it) for values and keys', () => {
        expect(scan('{"k": "\\ud800"}').problems.map((p) => [p.code, p.pointer])).to.deep.equal([['LONE_SURROGATE', '/k']])
        expect(scan('{"\\udc00": 1}').problems.map((p) => p.code)).to.deep.equal(['LONE_SURROGATE'])
        expect(scan('["\\ud83d\\ude00"]').canonical.toString()).to.equal('["😀"]')
      })
    })

    describe('when the grammar is broken', () => {
      const cases: Array<[string, string, number]> = [
        ['{"a": 1', "unexpected end of input: expected ',' or '}'", 7],
        ['[1, 2,]', "unexpected character ']'", 6],
        ['{"a" 1}', "expected ':' after the key, found '1'", 5],
        ['{a: 1}', "expected a string key, found 'a'", 1],
        ['01', 'numbers must not have leading zeros', 0],
        ['[1.]', 'invalid number: expected digits after the decimal point', 3],
        ['[1e]', 'invalid number: expected digits in the exponent', 3],
        ['"abc', 'unterminated string', 0],
        ['"a\u0001b"', 'control character U+0001 in a string (escape it)', 2],
        ['"a\nb"', 'control character U+000A in a string (escape it)', 2],
        ['"\\x41"', 'invalid escape sequence in string', 0],
        ['[tru]', "unexpected character 't'", 1],
        ['{} {}', 'unexpected content after the JSON value', 3],
        ['  ', 'empty document: expected a JSON value', 2],
        ['[NaN]', "unexpected character 'N'", 1],
        ['[Infinity]', "unexpected character 'I'", 1],
        ["{'a': 1}", "expected a string key, found '''", 1],
      ]
      for (const [text, message, offset] of cases) {
        it(`reports ${JSON.stringify(text)} at byte ${offset}: ${message}`, () => {
          const e = syntaxError(text)
          expect(e.message).to.equal(message)
          expect(e.offset).to.equal(offset)
        })
      }
      it('refuses invalid UTF-8 at the first bad byte', () => {
        const e = syntaxError(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]))
        expect(e.message).to.equal('invalid UTF-8 byte sequence')
        expect(e.offset).to.equal(6)
      })
      it(`refuses nesting deeper than ${MAX_JSON_DEPTH} levels instead of overflowing the stack`, () => {
        const deep = '['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1)
        expect(syntaxError(deep).message).to.equal(`nesting deeper than ${MAX_JSON_DEPTH} levels`)
        expect(scan('['.repeat(MAX_JSON_DEPTH - 1) + ']'.repeat(MAX_JSON_DEPTH - 1)).problems).to.deep.equal([])
      })
    })

    describe('when the text starts with a byte-order mark', () => {
      it('ignores it', () => {
        const r = scanJson(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"b":1,"a":2}')]))
        expect(r.start).to.equal(3)
        expect(r.canonical.toString()).to.equal('{"a":2,"b":1}')
      })
    })

    describe('when the document is large', () => {
      it('matches canonicalize and the reference digest on a 5,000-rule bundle', () => {
        const rules = Array.from({length: 5000}, (_, i) => ({id: `rule-${i}`, verdict: i % 2 ? 'allow' : 'deny', match: {toolName: `t_${i}_*`}, reason: 'x'}))
        const text = JSON.stringify({kind: 'PolicyBundle', apiVersion: 'aibox.dev/v1', rules}, null, 2)
        const r = scan(text)
        const ref = canonicalJson(JSON.parse(text))
        expect(createHash('sha256').update(r.canonical).digest('hex')).to.equal(createHash('sha256').update(ref).digest('hex'))
      })
    })
  })

  describe('#locateJson', () => {
    const text = '{\n  "a": [1, {"b": "x"}],\n  "c\\/d": true\n}'
    it('finds the key and the value of a member', () => {
      const at = locateJson(text, ['a', '1', 'b'])!
      expect(text.slice(at.key!, at.key! + 3)).to.equal('"b"')
      expect(text.slice(at.value, at.value + 3)).to.equal('"x"')
    })
    it('decodes escaped keys', () => {
      const at = locateJson(text, ['c/d'])!
      expect(text.slice(at.value, at.value + 4)).to.equal('true')
    })
    it('returns undefined for a path that does not exist', () => {
      expect(locateJson(text, ['a', '5'])).to.equal(undefined)
      expect(locateJson(text, ['nope'])).to.equal(undefined)
    })
  })
})

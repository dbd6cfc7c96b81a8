import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {canonicalDocument, canonicalJson, contentDigest} from '../../../src/bundle/canonical.js'
import {InputError, ValidationError} from '../../../src/errors.js'
import {VECTORS} from '../../helpers/cli.js'
import {fixture} from './helpers.js'
import {expectCodeSync} from '../../helpers/expect-error.js'

const JCS = path.join(VECTORS, 'jcs')

describe('canonical', () => {
  describe('#canonicalJson', () => {
    describe('when given the RFC 8785 vectors as parsed values', () => {
      for (const f of fs.readdirSync(path.join(JCS, 'input')).filter((x) => x.endsWith('.json'))) {
        it(`reproduces output/${f}`, () => {
          const value = JSON.parse(fs.readFileSync(path.join(JCS, 'input', f), 'utf8'))
          expect(canonicalJson(value)).to.equal(fs.readFileSync(path.join(JCS, 'output', f), 'utf8'))
        })
      }
    })

    it('sorts keys by UTF-16 code units and formats numbers like ECMAScript', () => {
      expect(canonicalJson({b: 1, a: [1e21, 0.000001, -0], '\uFB01': 1, '😀': 2})).to.equal('{"a":[1e+21,0.000001,0],"b":1,"😀":2,"ﬁ":1}')
    })
    it('skips undefined members like JSON.stringify', () => {
      expect(canonicalJson({a: undefined, b: 1})).to.equal('{"b":1}')
    })
    it('accepts null-prototype objects', () => {
      const o = Object.create(null) as Record<string, unknown>
      o.__proto__ = 1
      expect(canonicalJson(o)).to.equal('{"__proto__":1}')
    })

    describe('when the value is not JSON data', () => {
      const cases: Array<[string, unknown, RegExp]> = [
        ['NaN', {a: Number.NaN}, /\/a is NaN/],
        ['Infinity', [Infinity], /\/0 is Infinity/],
        ['a lone surrogate', {s: 'x\ud800'}, /\/s is a string with a lone UTF-16 surrogate/],
        ['a lone surrogate key', {'\udc00': 1}, /a key with a lone UTF-16 surrogate/],
        ['a BigInt', {n: 1n}, /\/n is a bigint/],
        ['a function', {f: () => 1}, /\/f is a function/],
        ['a Date', {d: new Date(0)}, /\/d is an instance of Date/],
        ['a Map', new Map(), /\/ is an instance of Map/],
        ['binary data', {b: new Uint8Array(2)}, /\/b is an instance of Uint8Array/],
        ['an array hole', [1, , 3], /\/1 is an empty array slot/], // eslint-disable-line no-sparse-arrays
        ['undefined in an array', [undefined], /\/0 is undefined/],
        ['a symbol', {s: Symbol('x')}, /\/s is a symbol/],
      ]
      for (const [what, value, message] of cases) {
        it(`refuses ${what}`, () => {
          const e = expectCodeSync(() => canonicalJson(value), InputError, 'NOT_JSON')
          expect(e.message).to.match(message)
        })
      }
      it('refuses a cycle', () => {
        const a: Record<string, unknown> = {}
        a.self = a
        expect(expectCodeSync(() => canonicalJson(a), InputError, 'NOT_JSON').message).to.match(/circular reference/)
      })
      it('accepts a shared (acyclic) sub-object', () => {
        const shared = {x: 1}
        expect(canonicalJson({a: shared, b: shared})).to.equal('{"a":{"x":1},"b":{"x":1}}')
      })
    })
  })

  describe('#contentDigest', () => {
    it('is sha256 over the canonical bytes', () => {
      // sha256('{"a":1}')
      expect(contentDigest({a: 1})).to.equal('sha256:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862')
    })
  })

  describe('#canonicalDocument', () => {
    it('gives the same digest for the YAML and JSON renderings of the org baseline', () => {
      const y = canonicalDocument(fs.readFileSync(fixture('org', 'baseline.yaml')), 'baseline.yaml')
      const j = canonicalDocument(fs.readFileSync(fixture('org', 'baseline.json')), 'baseline.json')
      expect(y.format).to.equal('yaml')
      expect(j.format).to.equal('json')
      expect(y.digest).to.equal(j.digest)
      expect(Buffer.compare(y.canonical, j.canonical)).to.equal(0)
    })
    it('ignores comments, quoting, flow vs block style and key order', () => {
      const a = canonicalDocument('# c\nb: "x"\na: [1, 2]\n', 'a.yaml')
      const b = canonicalDocument('a:\n  - 1\n  - 2\nb: x # trailing\n', 'b.yaml')
      const c = canonicalDocument('{"a":[1,2],"b":"x"}', 'c.json')
      expect(a.digest).to.equal(b.digest)
      expect(a.digest).to.equal(c.digest)
    })
    it('refuses documents with problems instead of hashing a guess', () => {
      expectCodeSync(() => canonicalDocument('{"a":1,"a":2}', 'd.json'), ValidationError, 'INVALID_DOCUMENT')
    })
  })
})

import fs from 'node:fs'

import {expect} from 'chai'

import {detectFormat, LineIndex, parseDocument, parseStrict} from '../../../src/bundle/parse.js'
import {MAX_ALIAS_NODES} from '../../../src/bundle/strict-yaml.js'
import {InputError, NotFoundError, ValidationError} from '../../../src/errors.js'
import {readSource} from '../../../src/bundle/parse.js'
import {fixture} from './helpers.js'
import {expectCodeSync} from '../../helpers/expect-error.js'

function problems(text: string, file = 'x.yaml'): string[] {
  return parseDocument(text, file).problems.map((p) => `${p.line}:${p.col} ${p.pointer} ${p.message}`)
}

function fatal(text: string | Buffer, file = 'x.yaml'): ValidationError {
  return expectCodeSync(() => parseDocument(text, file), ValidationError, file.endsWith('.json') ? 'JSON_SYNTAX' : 'YAML_SYNTAX')
}

describe('parse', () => {
  describe('#detectFormat', () => {
    it('uses the extension, then the first character', () => {
      expect(detectFormat('a.json', 'x: 1')).to.equal('json')
      expect(detectFormat('a.yml', '{}')).to.equal('yaml')
      expect(detectFormat('-', '  {"a": 1}')).to.equal('json')
      expect(detectFormat('-', '\uFEFF[1]')).to.equal('json')
      expect(detectFormat('policy', 'a: 1')).to.equal('yaml')
    })
  })

  describe('#parseDocument (YAML)', () => {
    describe('when keys repeat', () => {
      it('reports each duplicate with its position and the first line', () => {
        expect(problems('a: 1\nb:\n  c: 1\n  c: 2\na: 3\n')).to.deep.equal([
          '4:3 /b/c duplicate key "c" (first defined at line 3)',
          '5:1 /a duplicate key "a" (first defined at line 1)',
        ])
      })
      it('treats quoted and plain spellings as the same key', () => {
        expect(problems('a: 1\n"a": 2\n')).to.have.length(1)
      })
    })

    describe('when values are not JSON data', () => {
      it('refuses explicit non-JSON tags, NaN and Infinity, and big integers', () => {
        const p = problems('a: !!binary aGVsbG8=\nb: !!timestamp 2001-12-14\nc: !!set {x, y}\nd: .nan\ne: -.inf\nf: 9007199254740993\ng: !local x\nh: !!omap [{a: 1}]\n')
        expect(p).to.have.length(8)
        expect(p[0]).to.match(/^1:\d+ \/a YAML tag !!binary is not allowed/)
        expect(p[1]).to.match(/\/b YAML tag !!timestamp is not allowed/)
        expect(p[2]).to.match(/\/c YAML tag !!set is not allowed on a mapping/)
        expect(p[3]).to.equal('4:4 /d .nan (NaN) is not a JSON number')
        expect(p[4]).to.equal('5:4 /e -.inf (-Infinity) is not a JSON number')
        expect(p[5]).to.match(/\/f integer 9007199254740993 is outside ±\(2\^53-1\)/)
        expect(p[6]).to.match(/\/g YAML tag !local is not allowed/)
        expect(p[7]).to.match(/\/h YAML tag !!omap is not allowed on a sequence/)
      })
      it('reads YAML 1.2 core scalars: yes/no/on/off and dates stay strings', () => {
        const d = parseDocument('a: yes\nb: off\nc: 2001-12-14\nd: 0x1F\ne: 1e3\nf: ~\ng: "1"\n', 'x.yaml')
        expect(d.problems).to.deep.equal([])
        expect({...(d.value as object)}).to.deep.equal({a: 'yes', b: 'off', c: '2001-12-14', d: 31, e: 1000, f: null, g: '1'})
      })
      it('ignores a %YAML 1.1 directive: no timestamps, no yes-booleans', () => {
        const d = parseDocument('%YAML 1.1\n---\na: 2001-12-14\nb: yes\n', 'x.yaml')
        expect({...(d.value as object)}).to.deep.equal({a: '2001-12-14', b: 'yes'})
      })
      it('refuses non-string keys and complex keys', () => {
        expect(problems('1: a\ntrue: b\nnull: c\n? [x]\n: d\n')).to.deep.equal([
          '1:1  key 1 is a number, not a string; quote it ("1")',
          '2:1  key true is a boolean, not a string; quote it ("true")',
          '3:1  key null is a null, not a string; quote it ("null")',
          '4:3  keys must be strings, not mappings or sequences',
        ])
      })
      it('refuses merge keys but accepts a quoted "<<" as data', () => {
        expect(problems('base: &b {x: 1}\nc:\n  <<: *b\n')[0]).to.match(/merge keys \(<<\) are not supported/)
        expect(problems('"<<": 1\n')).to.deep.equal([])
      })
      it('refuses a lone surrogate from a double-quoted escape', () => {
        expect(problems('a: "\\ud800"\n')[0]).to.match(/\/a string contains a lone UTF-16 surrogate/)
      })
    })

    describe('when anchors and aliases are used', () => {
      it('expands ordinary aliases', () => {
        const d = parseDocument('x: &m {startsWith: /home/}\ny: *m\n', 'x.yaml')
        expect(JSON.stringify(d.value)).to.equal('{"x":{"startsWith":"/home/"},"y":{"startsWith":"/home/"}}')
      })
      it(`refuses an alias bomb past ${MAX_ALIAS_NODES} nodes, quickly and at the alias`, () => {
        const t = Date.now()
        const e = fatal(fs.readFileSync(fixture('bad', 'alias-bomb.yaml')), 'bomb.yaml')
        expect(Date.now() - t).to.be.lessThan(5000)
        expect(e.problems).to.have.length(1)
        expect(e.problems[0].message).to.match(/alias expansion exceeds 100000 nodes/)
        expect(e.problems[0].line).to.equal(7)
      })
      it('refuses unknown and recursive aliases', () => {
        expect(problems('a: *nope\n')).to.deep.equal(['1:4 /a alias *nope refers to no anchor defined before it'])
        expect(problems('a: &r [1, *r]\n')[0]).to.match(/\/a\/1 alias \*r refers to a node that contains it/)
      })
      it('refuses every anchor and alias, without expanding, with aliases: false', () => {
        const d = parseDocument('x: &m {a: 1}\ny: *m\nz: &s v\n', 'x.yaml', {aliases: false})
        expect(d.problems.map((p) => `${p.line}:${p.col} ${p.pointer} ${p.message}`)).to.deep.equal([
          '1:7 /x anchors (&name) are not allowed',
          '2:4 /y aliases (*name) are not allowed',
          '3:7 /z anchors (&name) are not allowed',
        ])
        expect(JSON.stringify(d.value)).to.equal('{"x":{"a":1},"y":null,"z":"v"}')
      })
    })

    describe('when the YAML is malformed', () => {
      it('throws every syntax problem with its position, before any other check', () => {
        const e = fatal('a: [1, 2\nb: : c\n')
        expect(e.problems.length).to.be.greaterThan(0)
        expect(e.message).to.match(/^x\.yaml is not valid YAML\n {2}x\.yaml:\d+:\d+: /)
      })
      it('refuses several documents in one file', () => {
        expect(fatal('a: 1\n---\nb: 2\n').problems[0]).to.include({line: 3, message: "expected a single YAML document, found 2 (remove the extra '---' sections)"})
      })
      it('refuses nesting deeper than 512 levels', () => {
        const e = fatal(`a: ${'['.repeat(600)}${']'.repeat(600)}\n`)
        expect(e.problems.map((p) => p.message)).to.include('nesting deeper than 512 levels')
      })
      it('refuses an empty document', () => {
        expect(fatal('# only a comment\n').problems[0].message).to.equal('empty document: expected a YAML mapping')
      })
    })

    describe('when keys look like Object.prototype members', () => {
      it('keeps them as plain data in null-prototype objects', () => {
        const v = parseDocument('__proto__: {polluted: true}\nconstructor: x\ntoString: y\n', 'x.yaml').value as Record<string, unknown>
        expect(Object.getPrototypeOf(v)).to.equal(null)
        expect(Object.keys(v)).to.deep.equal(['__proto__', 'constructor', 'toString'])
        expect(({} as Record<string, unknown>).polluted).to.equal(undefined)
        expect(Object.getPrototypeOf(v.__proto__)).to.equal(null)
      })
    })

    describe('#locate', () => {
      it('gives the key or the value position of a pointer, through aliases', () => {
        const d = parseDocument('a:\n  - x: 1\n    y: &v {z: 2}\nb: *v\n', 'x.yaml')
        expect(d.locate('/a/0/y', true)).to.deep.equal({line: 3, col: 5})
        // the value starts at the mapping itself, after the anchor
        expect(d.locate('/a/0/y')).to.deep.equal({line: 3, col: 11})
        expect(d.locate('/b/z')).to.deep.equal({line: 3, col: 15})
        expect(d.locate('/nope')).to.equal(undefined)
      })
    })
  })

  describe('#parseDocument (JSON)', () => {
    it('puts line and column on syntax errors', () => {
      const e = fatal('{\n  "a": 1,\n  "b": [1, 2,]\n}', 'x.json')
      expect(e.problems[0]).to.deep.include({file: 'x.json', line: 3, col: 14, message: "unexpected character ']'"})
    })
    it('counts columns in characters, not bytes', () => {
      const e = fatal('{"é😀": 1 2}', 'x.json')
      expect(e.problems[0]).to.deep.include({line: 1, col: 10})
    })
    it('returns duplicate keys, big integers and lone surrogates as located problems', () => {
      const d = parseDocument('{\n"a": 1,\n"a": 9007199254740993,\n"s": "\\udfff"\n}', 'x.json')
      expect(d.problems.map((p) => `${p.line}:${p.col} ${p.pointer}`)).to.deep.equal(['3:1 /a', '3:6 /a', '4:6 /s'])
      expect(d.canonical).to.equal(undefined)
    })
    it('builds null-prototype objects and keeps __proto__ as data', () => {
      const d = parseDocument('{"__proto__": {"x": 1}, "b": [{"constructor": 2}]}', 'x.json')
      const v = d.value as Record<string, unknown>
      expect(Object.getPrototypeOf(v)).to.equal(null)
      expect(Object.keys(v)).to.deep.equal(['__proto__', 'b'])
      expect(d.canonical!.toString()).to.equal('{"__proto__":{"x":1},"b":[{"constructor":2}]}')
    })
    it('reports invalid UTF-8 with its position', () => {
      const e = expectCodeSync(() => parseDocument(fs.readFileSync(fixture('bad', 'invalid-utf8.yaml')), 'bad.yaml'), ValidationError, 'INVALID_UTF8')
      expect(e.problems[0]).to.include({line: 3, col: 70, message: 'invalid UTF-8 byte 0xe9'})
    })
  })

  describe('#parseStrict', () => {
    it('throws all problems at once', () => {
      const e = expectCodeSync(() => parseStrict('a: 1\na: 2\nb: .nan\n', 'x.yaml'), ValidationError, 'INVALID_DOCUMENT')
      expect(e.problems).to.have.length(2)
    })
  })

  describe('#readSource', () => {
    it('maps a missing file to NotFoundError (exit 3)', () => {
      const e = expectCodeSync(() => readSource(fixture('nope.yaml')), NotFoundError, 'FILE_NOT_FOUND')
      expect(e.exit).to.equal(3)
    })
    it('refuses a directory', () => {
      expectCodeSync(() => readSource(fixture('org')), InputError, 'IS_A_DIRECTORY')
    })
  })

  describe('LineIndex', () => {
    it('maps offsets to 1-based lines and code-point columns', () => {
      const idx = new LineIndex('ab\n😀x\n')
      expect(idx.position(0)).to.deep.equal({line: 1, col: 1})
      expect(idx.position(3)).to.deep.equal({line: 2, col: 1})
      expect(idx.position(5)).to.deep.equal({line: 2, col: 2})
    })
  })
})

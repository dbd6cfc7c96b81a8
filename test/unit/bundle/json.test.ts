import {expect} from 'chai'

import {compareCodePoints, dict, didYouMean, editDistance, isWellFormed, jsonEqual, own, parsePointer, pointer, toNullProto} from '../../../src/bundle/json.js'

describe('json', () => {
  describe('#compareCodePoints', () => {
    it('orders by code point, unlike the default UTF-16 sort', () => {
      const ids = ['😀', '\uFB01', 'b', 'a', '\uE000']
      expect([...ids].sort(compareCodePoints)).to.deep.equal(['a', 'b', '\uE000', '\uFB01', '😀'])
      expect([...ids].sort()).to.deep.equal(['a', 'b', '😀', '\uE000', '\uFB01'])
      expect(compareCodePoints('ab', 'a')).to.be.greaterThan(0)
      expect(compareCodePoints('a', 'a')).to.equal(0)
    })
  })
  describe('#pointer / #parsePointer', () => {
    it('escapes and unescapes RFC 6901 segments', () => {
      expect(pointer(['a/b', '~c', 0])).to.equal('/a~1b/~0c/0')
      expect(parsePointer('/a~1b/~0c/0')).to.deep.equal(['a/b', '~c', '0'])
      expect(parsePointer('')).to.deep.equal([])
    })
  })
  describe('#jsonEqual', () => {
    it('ignores key order and compares deeply', () => {
      expect(jsonEqual({a: [1, {b: 2}], c: null}, {c: null, a: [1, {b: 2}]})).to.equal(true)
      expect(jsonEqual({a: 1}, {a: 1, b: 2})).to.equal(false)
      expect(jsonEqual([1, 2], [2, 1])).to.equal(false)
    })
  })
  describe('#toNullProto / #dict / #own', () => {
    it('copies into null-prototype objects and reads own keys only', () => {
      const v = toNullProto(JSON.parse('{"__proto__": {"x": 1}}')) as Record<string, unknown>
      expect(Object.getPrototypeOf(v)).to.equal(null)
      expect(own(v, '__proto__')).to.deep.equal(toNullProto({x: 1}))
      expect(own({}, 'toString')).to.equal(undefined)
      expect(Object.getPrototypeOf(dict())).to.equal(null)
    })
  })
  describe('#didYouMean', () => {
    it('suggests close keys only', () => {
      expect(editDistance('kitten', 'sitting')).to.equal(3)
      expect(didYouMean('wokspace_root', ['workspace_root', 'deny'])).to.equal('workspace_root')
      expect(didYouMean('owner', ['name', 'version', 'tier'])).to.equal(undefined)
    })
  })
  describe('#isWellFormed', () => {
    it('finds lone surrogates', () => {
      expect(isWellFormed('a😀')).to.equal(true)
      expect(isWellFormed('a\ud800')).to.equal(false)
      expect(isWellFormed('\udc00a')).to.equal(false)
    })
  })
})

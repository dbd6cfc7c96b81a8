import {expect} from 'chai'

import {compareRational, parseDuration, parseQuantity, type Rational} from '../../../src/bundle/units.js'

function q(s: string | number): Rational {
  const r = parseQuantity(s)
  expect(r, String(s)).to.not.equal(undefined)
  return r!
}

function d(s: string): Rational {
  const r = parseDuration(s)
  expect(r, s).to.not.equal(undefined)
  return r!
}

describe('units', () => {
  describe('#parseQuantity', () => {
    it('compares Kubernetes quantities by value', () => {
      expect(compareRational(q('8Gi'), q('8192Mi'))).to.equal(0)
      expect(compareRational(q('500m'), q('0.5'))).to.equal(0)
      expect(compareRational(q('0.1'), q('100m'))).to.equal(0)
      expect(compareRational(q('1k'), q('1000'))).to.equal(0)
      expect(compareRational(q('1Ki'), q('1024'))).to.equal(0)
      expect(compareRational(q('1e3'), q('1k'))).to.equal(0)
      expect(compareRational(q('1.5Gi'), q('1536Mi'))).to.equal(0)
      expect(compareRational(q(4), q('4000m'))).to.equal(0)
      expect(compareRational(q(0.5), q('500m'))).to.equal(0)
    })
    it('orders them by value', () => {
      expect(compareRational(q('8G'), q('8Gi'))).to.equal(-1) // 8e9 < 8*2^30
      expect(compareRational(q('4001m'), q('4'))).to.equal(1)
      expect(compareRational(q('1Ei'), q('1E'))).to.equal(1)
      expect(compareRational(q('1n'), q('1u'))).to.equal(-1)
    })
    it('refuses what Kubernetes refuses', () => {
      for (const bad of ['8GB', '8 Gi', '-1', 'Gi', '', '1.2.3', '1iK', -1, Number.NaN]) expect(parseQuantity(bad), String(bad)).to.equal(undefined)
    })
  })

  describe('#parseDuration', () => {
    it('compares Go durations by value', () => {
      expect(compareRational(d('1h30m'), d('90m'))).to.equal(0)
      expect(compareRational(d('1.5h'), d('90m'))).to.equal(0)
      expect(compareRational(d('4h'), d('240m'))).to.equal(0)
      expect(compareRational(d('1s'), d('1000ms'))).to.equal(0)
      expect(compareRational(d('1ms'), d('1000us'))).to.equal(0)
      expect(compareRational(d('1µs'), d('1000ns'))).to.equal(0)
      expect(compareRational(d('0'), d('0s'))).to.equal(0)
    })
    it('orders them by value', () => {
      expect(compareRational(d('4h1s'), d('4h'))).to.equal(1)
      expect(compareRational(d('59m59s'), d('1h'))).to.equal(-1)
    })
    it('refuses what Go refuses (and negative durations)', () => {
      for (const bad of ['4', '4 h', '4hours', 'h', '', '-1h', '1d', '1h 30m']) expect(parseDuration(bad), bad).to.equal(undefined)
    })
  })
})

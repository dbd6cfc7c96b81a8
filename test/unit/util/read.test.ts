import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {readFdBounded} from '../../../src/util/read.js'
import {tmpdir} from '../../helpers/tmp.js'

describe('util/read', () => {
  describe('#readFdBounded', () => {
    const dir = tmpdir('aibox-read-')
    const data = Buffer.alloc(3_000_000, 7)
    const file = path.join(dir, 'three-mb')
    fs.writeFileSync(file, data)
    const read = (f: string, max: number, hint?: number) => {
      const fd = fs.openSync(f, 'r')
      try {
        return readFdBounded(fd, max, hint)
      } finally {
        fs.closeSync(fd)
      }
    }
    describe('when the file fits', () => {
      it('returns its bytes, with the stat size as a hint, without it, or with a wrong one', () => {
        expect(read(file, 5_000_000, data.length)?.equals(data)).to.equal(true)
        expect(read(file, 5_000_000)?.equals(data)).to.equal(true)
        expect(read(file, 5_000_000, 10)?.equals(data)).to.equal(true)
        expect(read(file, data.length)?.equals(data)).to.equal(true)
      })
      it('returns an empty buffer for an empty file', () => {
        fs.writeFileSync(path.join(dir, 'empty'), '')
        expect(read(path.join(dir, 'empty'), 10)?.length).to.equal(0)
      })
    })
    describe('when there is more than the limit', () => {
      it('returns undefined, also when stat said the file was small', () => {
        expect(read(file, data.length - 1)).to.equal(undefined)
        expect(read(file, data.length - 1, 5)).to.equal(undefined)
      })
      it('stops after the limit on an endless device (/dev/zero says 0 bytes)', () => {
        expect(read('/dev/zero', 10_000_000, 0)).to.equal(undefined)
      })
    })
  })
})

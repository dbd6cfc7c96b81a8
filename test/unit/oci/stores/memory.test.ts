import {expect} from 'chai'

import {MemoryStore, MT} from '../../../../src/oci/index.js'
import {blob, buildGraph, pushAll, readStream} from '../../../helpers/oci-fixtures.js'
import {corrupted, describeTarget} from '../../../helpers/target-conformance.js'
import {expectCode} from '../../../helpers/expect-error.js'

describeTarget('MemoryStore', {
  writable: true,
  async make(seed) {
    const blobs = new Map<string, Buffer>()
    const store = new MemoryStore({blobs})
    await pushAll(store, seed.blobs, seed.tags)
    // Corrupt through the backing map the store was given: fetch must still refuse the bytes.
    for (const d of seed.corrupt ?? []) blobs.set(d, corrupted(blobs.get(d)!))
    return {target: store}
  },
})

describe('MemoryStore', () => {
  describe('#resolve', () => {
    describe('when the digest names a blob that is not a manifest', () => {
      it('rejects with NOT_FOUND saying so', async () => {
        const g = buildGraph()
        const s = new MemoryStore()
        await pushAll(s, g.all)
        await expectCode(s.resolve(g.layerA.desc.digest), 'NOT_FOUND', /not a manifest/)
      })
    })
    describe('when content was put into a shared backing map by another store', () => {
      it('recognises a manifest by its content', async () => {
        const g = buildGraph()
        const blobs = new Map<string, Buffer>()
        await pushAll(new MemoryStore({blobs}), g.all)
        const other = new MemoryStore({blobs, location: 'memory:other'})
        expect((await other.resolve(g.index.desc.digest)).mediaType).to.equal(MT.ociIndex)
        expect(other.location).to.equal('memory:other')
      })
    })
  })
  describe('#tag', () => {
    describe('when the digest is a plain blob', () => {
      it('refuses to tag it', async () => {
        const s = new MemoryStore()
        const b = blob('application/octet-stream', Buffer.from('x'))
        await s.push(b.desc, b.bytes)
        await expectCode(s.tag(b.desc, 'v1'), 'INVALID_REFERENCE', /not a manifest/)
      })
    })
  })
  describe('#push', () => {
    it('keeps its own copy of the bytes (a caller mutating its buffer changes nothing)', async () => {
      const s = new MemoryStore()
      const b = blob('application/octet-stream', Buffer.from('immutable content'))
      const mine = Buffer.from(b.bytes)
      await s.push(b.desc, mine)
      mine.fill(0)
      expect((await readStream(await s.fetch(b.desc))).equals(b.bytes)).to.equal(true)
    })
  })
})

import fs from 'node:fs'
import path from 'node:path'
import type {Readable} from 'node:stream'

import {expect} from 'chai'

import {
  copy,
  copyGraph,
  CopyError,
  type Descriptor,
  LayoutDirStore,
  MemoryStore,
  type Mounter,
  MT,
  type OpOptions,
  packIndex,
  packManifest,
} from '../../../src/oci/index.js'
import {blob, buildGraph, pushAll, readStream, type SeedBlob} from '../../helpers/oci-fixtures.js'
import {corrupted} from '../../helpers/target-conformance.js'
import {tmpdir} from '../../helpers/tmp.js'
import {TrackingTarget} from '../../helpers/tracking-target.js'
import {expectCode} from '../../helpers/expect-error.js'

async function sourceWithGraph(seed = 'copy') {
  const g = buildGraph(seed)
  const blobs = new Map<string, Buffer>()
  const mem = new MemoryStore({blobs, location: 'memory:src'})
  await pushAll(mem, g.all, g.tags)
  return {g, mem, blobs, src: new TrackingTarget(mem)}
}

async function layoutDst(): Promise<{store: LayoutDirStore; dst: TrackingTarget}> {
  const store = await LayoutDirStore.open(path.join(tmpdir('aibox-copy-'), 'dst'), {create: true})
  return {store, dst: new TrackingTarget(store)}
}

async function expectSameContent(dst: {fetch(d: Descriptor): Promise<Readable>}, blobs: SeedBlob[]): Promise<void> {
  for (const b of blobs) expect((await readStream(await dst.fetch(b.desc))).equals(b.bytes), b.desc.digest).to.equal(true)
}

/** A memory store that can also mount blobs "from another repository" (another memory store), like a registry. */
class MountingStore extends MemoryStore implements Mounter {
  mounts: string[] = []
  constructor(private readonly repos: Record<string, MemoryStore>) {
    super({location: 'memory:mounting'})
  }
  async mount(desc: Descriptor, fromRepo: string, opts?: OpOptions): Promise<boolean> {
    const from = this.repos[fromRepo]
    if (!from || !(await from.exists(desc))) return false
    await this.push(desc, await from.fetch(desc), opts)
    this.mounts.push(`${fromRepo}:${desc.digest}`)
    return true
  }
}

describe('copy', () => {
  describe('#copy', () => {
    it('copies the graph a tag names and tags it at the destination', async () => {
      const {g, src} = await sourceWithGraph()
      const {store, dst} = await layoutDst()
      const root = await copy(src, 'v1', dst, 'release', {})
      expect(root.digest).to.equal(g.manifest.desc.digest)
      expect((await store.resolve('release')).digest).to.equal(g.manifest.desc.digest)
      await expectSameContent(store, [g.config, g.layerA, g.layerB, g.manifest])
      // referrers were not asked for
      expect(await store.exists(g.sig.desc)).to.equal(false)
    })

    it('pushes every blob before the manifest and tags last', async () => {
      const {g, src} = await sourceWithGraph()
      const {dst} = await layoutDst()
      await copy(src, 'v1', dst, 'v1')
      const pushed = dst.pushed()
      expect(pushed.at(-1)).to.equal(g.manifest.desc.digest)
      expect([...pushed].sort()).to.deep.equal([g.config, g.layerA, g.layerB, g.manifest].map((b) => b.desc.digest).sort())
      expect(dst.calls.at(-1)).to.deep.equal({op: 'tag', what: 'v1'})
    })

    it('copies an index after all of its manifests and their blobs', async () => {
      const {g, src} = await sourceWithGraph()
      const {dst} = await layoutDst()
      await copy(src, 'idx', dst, 'idx')
      const pushed = dst.pushed()
      expect(pushed.indexOf(g.index.desc.digest)).to.equal(pushed.length - 1)
      expect(pushed.indexOf(g.manifest.desc.digest)).to.equal(pushed.length - 2)
    })

    describe('when the destination already has everything', () => {
      it('checks only the root and transfers nothing', async () => {
        const {g, src} = await sourceWithGraph()
        const {dst} = await layoutDst()
        await copy(src, 'v1', dst, 'v1')
        src.reset()
        dst.reset()
        const skipped: string[] = []
        await copy(src, 'v1', dst, 'v1', {onSkipped: (d) => skipped.push(d.digest)})
        expect(src.count('fetch')).to.equal(0)
        expect(dst.count('push')).to.equal(0)
        expect(dst.count('exists')).to.equal(1)
        expect(skipped).to.deep.equal([g.manifest.desc.digest])
        expect(dst.count('tag')).to.equal(1)
      })
    })

    describe('when the destination has some of the blobs', () => {
      it('fetches only the missing ones', async () => {
        const {g, src} = await sourceWithGraph()
        const {store, dst} = await layoutDst()
        await store.push(g.layerB.desc, g.layerB.bytes)
        await store.push(g.config.desc, g.config.bytes)
        await copy(src, 'v1', dst, 'v1')
        expect(src.count('fetch', g.layerB.desc.digest)).to.equal(0)
        expect(src.count('fetch', g.config.desc.digest)).to.equal(0)
        expect(src.count('fetch', g.layerA.desc.digest)).to.equal(1)
        expect(dst.pushed().sort()).to.deep.equal([g.layerA.desc.digest, g.manifest.desc.digest].sort())
      })
    })

    describe('when a blob is shared by several manifests', () => {
      it('transfers it once', async () => {
        const {g, src} = await sourceWithGraph()
        const {dst} = await layoutDst()
        await copy(src, 'v1', dst, 'v1', {referrers: true})
        // the empty config is used by the manifest and by every referrer
        expect(src.count('fetch', g.config.desc.digest)).to.equal(1)
        expect(dst.count('push', g.config.desc.digest)).to.equal(1)
      })
    })

    describe('with referrers', () => {
      it('also copies signatures, approvals and signatures of signatures, each after its subject', async () => {
        const {g, src} = await sourceWithGraph()
        const {store, dst} = await layoutDst()
        await copy(src, 'v1', dst, 'v1', {referrers: true})
        await expectSameContent(store, g.all.filter((b) => b !== g.index))
        const pushed = dst.pushed()
        expect(pushed.indexOf(g.manifest.desc.digest)).to.be.lessThan(pushed.indexOf(g.sig.desc.digest))
        expect(pushed.indexOf(g.manifest.desc.digest)).to.be.lessThan(pushed.indexOf(g.approval.desc.digest))
        expect(pushed.indexOf(g.sig.desc.digest)).to.be.lessThan(pushed.indexOf(g.countersig.desc.digest))
        expect((await store.predecessors(g.manifest.desc)).map((d) => d.digest).sort()).to.deep.equal([g.sig.desc.digest, g.approval.desc.digest].sort())
        expect((await store.predecessors(g.sig.desc)).map((d) => d.digest)).to.deep.equal([g.countersig.desc.digest])
      })

      it('copies new referrers of a root the destination already has', async () => {
        const {g, src} = await sourceWithGraph()
        const {store, dst} = await layoutDst()
        await copy(src, 'v1', dst, 'v1')
        dst.reset()
        await copy(src, 'v1', dst, 'v1', {referrers: true})
        expect(dst.count('push', g.manifest.desc.digest)).to.equal(0)
        expect(await store.exists(g.countersig.desc)).to.equal(true)
      })

      it('lists a referrer the destination layout holds but does not list (a writer killed between storing and listing it)', async () => {
        const {g, src} = await sourceWithGraph()
        const dir = path.join(tmpdir('aibox-copy-'), 'dst')
        const store = await LayoutDirStore.open(dir, {create: true})
        await copy(src, 'v1', store, 'v1')
        // What a push killed after writing the signature's manifest blob leaves: the blob, no index.json entry.
        fs.writeFileSync(path.join(dir, 'blobs', 'sha256', g.sig.desc.digest.slice('sha256:'.length)), g.sig.bytes)
        expect(await store.predecessors(g.manifest.desc)).to.deep.equal([])
        await copy(src, 'v1', store, 'v1', {referrers: true})
        const again = await LayoutDirStore.open(dir)
        expect((await again.predecessors(g.manifest.desc)).map((d) => d.digest).sort()).to.deep.equal([g.sig.desc.digest, g.approval.desc.digest].sort())
        expect((await again.predecessors(g.sig.desc)).map((d) => d.digest)).to.deep.equal([g.countersig.desc.digest])
      })

      describe('when the source cannot list referrers', () => {
        it('refuses with UNSUPPORTED', async () => {
          const {mem} = await sourceWithGraph()
          const noGraph = {location: 'plain', resolve: mem.resolve.bind(mem), exists: mem.exists.bind(mem), fetch: mem.fetch.bind(mem)}
          await expectCode(copy(noGraph, 'v1', new MemoryStore(), 'v1', {referrers: true}), 'UNSUPPORTED', /cannot list referrers/)
        })
      })
    })

    describe('when a source blob is corrupted', () => {
      it('fails as a source DIGEST_MISMATCH and pushes no manifest', async () => {
        const {g, src, blobs} = await sourceWithGraph()
        blobs.set(g.layerB.desc.digest, corrupted(g.layerB.bytes))
        const {store, dst} = await layoutDst()
        const err = await expectCode(copy(src, 'v1', dst, 'v1'), 'DIGEST_MISMATCH')
        expect(err).to.be.instanceOf(CopyError)
        expect((err as CopyError).origin).to.equal('source')
        expect(err.message).to.contain(`source memory:src@${g.layerB.desc.digest}`)
        expect(err.suggestions?.join(' ')).to.match(/corrupt or was tampered with/)
        expect(await store.exists(g.layerB.desc)).to.equal(false)
        expect(await store.exists(g.manifest.desc)).to.equal(false)
        expect(await store.tags()).to.deep.equal([])
      })
    })

    describe('when the source manifest is corrupted', () => {
      it('refuses to parse it and pushes nothing', async () => {
        const {g, src, blobs} = await sourceWithGraph()
        blobs.set(g.manifest.desc.digest, corrupted(g.manifest.bytes))
        const {dst} = await layoutDst()
        const err = await expectCode(copy(src, 'v1', dst, 'v1'), 'DIGEST_MISMATCH')
        expect((err as CopyError).origin).to.equal('source')
        expect(dst.count('push')).to.equal(0)
      })
    })

    describe('when the source lacks a blob its manifest names', () => {
      it('fails as a source NOT_FOUND and pushes no manifest', async () => {
        const g = buildGraph('missing')
        const mem = new MemoryStore({location: 'memory:partial'})
        await pushAll(mem, g.all.filter((b) => b !== g.layerA), [{tag: 'v1', desc: g.manifest.desc}])
        const {store} = await layoutDst()
        const err = await expectCode(copy(mem, 'v1', store, 'v1'), 'NOT_FOUND', new RegExp(g.layerA.desc.digest))
        expect((err as CopyError).origin).to.equal('source')
        expect(await store.exists(g.manifest.desc)).to.equal(false)
      })
    })

    describe('when the source reference does not exist', () => {
      it('fails as a source NOT_FOUND naming the reference', async () => {
        const {src} = await sourceWithGraph()
        const err = await expectCode(copy(src, 'nope', new MemoryStore(), 'nope'), 'NOT_FOUND', /source memory:src:nope: resolve/)
        expect((err as CopyError).origin).to.equal('source')
        expect(err.exit).to.equal(3)
      })
    })

    describe('when the destination refuses writes', () => {
      it('fails as a destination error', async () => {
        const {src} = await sourceWithGraph()
        const dir = path.join(tmpdir(), 'ro')
        await LayoutDirStore.open(dir, {create: true})
        const ro = await LayoutDirStore.open(dir, {readOnly: true})
        const err = await expectCode(copy(src, 'v1', ro, 'v1'), 'UNSUPPORTED', /destination oci:.*ro@sha256:[a-f0-9]{64}: push/)
        expect((err as CopyError).origin).to.equal('destination')
      })
    })

    describe('when the destination reference is a different digest', () => {
      it('refuses with INVALID_REFERENCE', async () => {
        const {g, src} = await sourceWithGraph()
        await expectCode(copy(src, 'v1', new MemoryStore(), g.index.desc.digest), 'INVALID_REFERENCE', /differs from the source/)
      })
    })

    describe('when the destination reference is empty or the same digest', () => {
      it('copies without tagging', async () => {
        const {g, src} = await sourceWithGraph()
        const dst = new TrackingTarget(new MemoryStore())
        await copy(src, 'v1', dst, '')
        await copy(src, 'v1', dst, g.manifest.desc.digest)
        expect(dst.count('tag')).to.equal(0)
        expect(await dst.exists(g.manifest.desc)).to.equal(true)
      })
    })
  })

  describe('hooks', () => {
    it('reports progress up to each size, and every node copied exactly once', async () => {
      const {g, src} = await sourceWithGraph()
      const {dst} = await layoutDst()
      const progress = new Map<string, number[]>()
      const copied: string[] = []
      await copy(src, 'v1', dst, 'v1', {
        referrers: true,
        onProgress: (d, n) => progress.set(d.digest, [...(progress.get(d.digest) ?? []), n]),
        onCopied: (d) => copied.push(d.digest),
      })
      const nodes = g.all.filter((b) => b !== g.index)
      expect([...copied].sort()).to.deep.equal(nodes.map((b) => b.desc.digest).sort())
      for (const b of nodes) {
        const seen = progress.get(b.desc.digest)!
        expect(seen.at(-1), b.desc.digest).to.equal(b.desc.size)
        expect([...seen].sort((x, y) => x - y)).to.deep.equal(seen)
      }
    })

    it('reports progress as a large blob streams, not only at its end', async () => {
      const {store: srcStore} = await layoutDst()
      const big = blob('application/octet-stream', Buffer.alloc(5 * 1024 * 1024 + 3, 7))
      const m = packManifest({artifactType: 'application/vnd.example+json', layers: [big.desc]})
      await pushAll(srcStore, [{desc: EMPTY(), bytes: Buffer.from('{}')}, big, {desc: m.descriptor, bytes: m.bytes}], [{tag: 'big', desc: m.descriptor}])
      const seen: number[] = []
      await copy(srcStore, 'big', new MemoryStore(), 'big', {onProgress: (d, n) => d.digest === big.desc.digest && seen.push(n)})
      expect(seen.length).to.be.greaterThan(2)
      expect(seen.at(-1)).to.equal(big.desc.size)
    })
  })

  describe('concurrency', () => {
    it('never has more transfers in flight than asked', async () => {
      const mem = new MemoryStore()
      const layers = Array.from({length: 12}, (_, i) => blob('application/octet-stream', Buffer.alloc(200_000, i)))
      for (const l of layers) await mem.push(l.desc, l.bytes)
      const m = packManifest({artifactType: 'application/vnd.example+json', layers: layers.map((l) => l.desc)})
      await mem.push({...EMPTY()}, Buffer.from('{}'))
      await mem.push(m.descriptor, m.bytes)
      for (const concurrency of [1, 2, 4]) {
        const dst = new TrackingTarget(new MemoryStore())
        await copyGraph(mem, dst, m.descriptor, {concurrency})
        expect(dst.maxConcurrentPushes, `concurrency ${concurrency}`).to.be.at.most(concurrency)
        if (concurrency > 1) expect(dst.maxConcurrentPushes).to.be.greaterThan(1)
      }
      await expectCode(copyGraph(mem, new MemoryStore(), m.descriptor, {concurrency: 0}), 'UNSUPPORTED', /positive integer/)
    })
  })

  describe('abort', () => {
    it('stops with ABORTED and leaves no manifest at the destination', async () => {
      const {g, src} = await sourceWithGraph()
      const {store, dst} = await layoutDst()
      const ac = new AbortController()
      await expectCode(
        copy(src, 'v1', dst, 'v1', {signal: ac.signal, concurrency: 1, onProgress: (d) => d.digest === g.layerA.desc.digest && ac.abort()}),
        'ABORTED',
      )
      expect(await store.exists(g.manifest.desc)).to.equal(false)
      expect(await store.tags()).to.deep.equal([])
    })
    it('does nothing when the signal is already aborted', async () => {
      const {src} = await sourceWithGraph()
      const ac = new AbortController()
      ac.abort()
      await expectCode(copy(src, 'v1', new MemoryStore(), 'v1', {signal: ac.signal}), 'ABORTED')
      expect(src.calls).to.deep.equal([])
    })
  })

  describe('mount', () => {
    it('mounts blobs the destination registry already has elsewhere instead of transferring them', async () => {
      const {g, src, mem} = await sourceWithGraph()
      const dst = new MountingStore({'team/other': mem})
      const mounted: string[] = []
      await copy(src, 'v1', dst, 'v1', {mountFrom: ['team/missing', 'team/other'], onMounted: (d, from) => mounted.push(`${from}:${d.digest}`)})
      expect(mounted.sort()).to.deep.equal([g.config, g.layerA, g.layerB].map((b) => `team/other:${b.desc.digest}`).sort())
      // blobs came by mount (the source was not read for them); the manifest was pushed
      for (const b of [g.config, g.layerA, g.layerB]) expect(src.count('fetch', b.desc.digest)).to.equal(0)
      expect((await dst.resolve('v1')).digest).to.equal(g.manifest.desc.digest)
    })
    it('falls back to a transfer when no candidate has the blob', async () => {
      const {g, src} = await sourceWithGraph()
      const dst = new MountingStore({})
      await copy(src, 'v1', dst, 'v1', {mountFrom: () => ['nowhere']})
      expect(dst.mounts).to.deep.equal([])
      expect(src.count('fetch', g.layerB.desc.digest)).to.equal(1)
    })
  })

  describe('limits', () => {
    it('refuses a graph with more nodes than maxNodes', async () => {
      const {g, mem} = await sourceWithGraph()
      await expectCode(copy(mem, 'v1', new MemoryStore(), 'v1', {maxNodes: 3}), 'INVALID_MANIFEST', /more than 3 nodes/)
      // and an index of manifests counts them all
      const idx = packIndex({manifests: [g.manifest.desc]})
      await mem.push(idx.descriptor, idx.bytes)
      await copyGraph(mem, new MemoryStore(), idx.descriptor, {maxNodes: 5})
    })
  })

  describe('media types', () => {
    it('copies Docker schema 2 manifests like OCI ones', async () => {
      const mem = new MemoryStore()
      const cfg = blob('application/vnd.docker.container.image.v1+json', Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'))
      const layer = blob('application/vnd.docker.image.rootfs.diff.tar.gzip', Buffer.from('not really a tarball'))
      const doc = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MT.dockerManifest, config: cfg.desc, layers: [layer.desc]}))
      const m = blob(MT.dockerManifest, doc)
      await pushAll(mem, [cfg, layer, m], [{tag: 'docker', desc: m.desc}])
      const dst = new MemoryStore()
      await copy(mem, 'docker', dst, 'docker')
      expect(await dst.exists(layer.desc)).to.equal(true)
      expect((await dst.resolve('docker')).mediaType).to.equal(MT.dockerManifest)
    })
  })
})

function EMPTY(): Descriptor {
  return {mediaType: MT.ociEmpty, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2}
}

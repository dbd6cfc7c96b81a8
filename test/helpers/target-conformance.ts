/**
 * The shared Target conformance suite (style.md rule 11, after oras-go's same-named store tests
 * and go-containerregistry's `validate`): every store runs the same test names, so a behaviour
 * difference between memory, layout directory, layout tar and a remote registry is a failing
 * test, not a surprise in production.
 *
 * A store plugs in with a factory that builds a fresh target holding given content (`make`),
 * optionally with some blobs corrupted in place, plus optional async suite setup/teardown (e.g.
 * starting a registry). Read-only stores (layout tar) run the read tests; writable ones also run
 * the push/tag tests.
 */
import {expect} from 'chai'

import {AiboxError} from '../../src/errors.js'
import {
  isGraphTarget,
  isTagLister,
  MT,
  packManifest,
  type Descriptor,
  type ReadOnlyTarget,
  type Target,
} from '../../src/oci/index.js'
import {APPROVAL_TYPE, blob, buildGraph, failingBody, type Graph, pseudoRandom, readStream, type SeedBlob, SIG_TYPE} from './oci-fixtures.js'
import {expectCode} from './expect-error.js'

export interface Seed {
  /** Content to store, children before parents. */
  blobs: SeedBlob[]
  tags: Array<{tag: string; desc: Descriptor}>
  /** Digests whose stored bytes must be altered in place (same size) after storing them. */
  corrupt?: string[]
}

export interface TargetUnderTest {
  target: ReadOnlyTarget
  /** Releases the target (close files, remove temporary directories, delete the repository). */
  cleanup?: () => Promise<void>
}

export interface TargetFactory {
  /** True when the target implements push and tag: the write tests run only then. */
  writable: boolean
  /** Suite-level setup and teardown (e.g. start and stop a registry). */
  before?: () => Promise<void>
  after?: () => Promise<void>
  /** A fresh, isolated target holding `seed`. */
  make: (seed: Seed) => Promise<TargetUnderTest>
}

/** Flips one byte in the middle of `bytes` (same size, different digest). */
export function corrupted(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes)
  out[Math.floor(out.length / 2)] ^= 0xff
  return out
}

const byDigest = (a: Descriptor, b: Descriptor) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0)

export function describeTarget(name: string, factory: TargetFactory): void {
  describe(`${name} (Target conformance)`, function () {
    const g: Graph = buildGraph('conformance')
    const seed: Seed = {blobs: g.all, tags: g.tags}
    const made: TargetUnderTest[] = []
    async function make(s: Seed = seed): Promise<ReadOnlyTarget> {
      const t = await factory.make(s)
      made.push(t)
      return t.target
    }
    async function makeWritable(s: Seed = {blobs: [], tags: []}): Promise<Target> {
      return (await make(s)) as Target
    }

    before(async function () {
      this.timeout(120_000)
      await factory.before?.()
    })
    afterEach(async () => {
      while (made.length > 0) await made.pop()!.cleanup?.()
    })
    after(async function () {
      this.timeout(120_000)
      await factory.after?.()
    })

    describe('#fetch', () => {
      it('round-trips every stored blob and manifest byte for byte', async () => {
        const t = await make()
        for (const b of g.all) expect((await readStream(await t.fetch(b.desc))).equals(b.bytes), b.desc.digest).to.equal(true)
      })
      describe('when the content is not found', () => {
        it('rejects with NOT_FOUND', async () => {
          const t = await make()
          await expectCode(t.fetch(blob('application/octet-stream', Buffer.from('absent')).desc), 'NOT_FOUND')
        })
      })
      describe('when the stored content is corrupted', () => {
        it('errors with DIGEST_MISMATCH instead of serving it', async () => {
          const t = await make({...seed, corrupt: [g.layerB.desc.digest]})
          await expectCode(
            (async () => readStream(await t.fetch(g.layerB.desc)))(),
            'DIGEST_MISMATCH',
            new RegExp(`expected ${g.layerB.desc.digest}`),
          )
        })
      })
      describe('when the descriptor size is wrong', () => {
        it('errors with SIZE_MISMATCH for a smaller and a larger size', async () => {
          const t = await make()
          for (const size of [g.layerA.desc.size - 1, g.layerA.desc.size + 1]) {
            await expectCode((async () => readStream(await t.fetch({...g.layerA.desc, size})))(), 'SIZE_MISMATCH')
          }
        })
      })
    })

    describe('#exists', () => {
      it('is true for stored content and false for absent content', async () => {
        const t = await make()
        expect(await t.exists(g.layerA.desc)).to.equal(true)
        expect(await t.exists(g.manifest.desc)).to.equal(true)
        expect(await t.exists(blob('application/octet-stream', Buffer.from('absent')).desc)).to.equal(false)
      })
    })

    describe('#resolve', () => {
      it('resolves a tag to the manifest descriptor', async () => {
        const t = await make()
        const d = await t.resolve('v1')
        expect({mediaType: d.mediaType, digest: d.digest, size: d.size}).to.deep.equal({
          mediaType: MT.ociManifest,
          digest: g.manifest.desc.digest,
          size: g.manifest.desc.size,
        })
        expect(d.artifactType).to.equal(MT.policyBundle)
        expect((await t.resolve('idx')).digest).to.equal(g.index.desc.digest)
      })
      it('resolves a digest to the manifest descriptor', async () => {
        const t = await make()
        const d = await t.resolve(g.manifest.desc.digest)
        expect([d.mediaType, d.digest, d.size]).to.deep.equal([MT.ociManifest, g.manifest.desc.digest, g.manifest.desc.size])
      })
      describe('when the tag does not exist', () => {
        it('rejects with NOT_FOUND', async () => {
          const t = await make()
          await expectCode(t.resolve('no-such-tag'), 'NOT_FOUND', /no-such-tag/)
        })
      })
      describe('when the digest is malformed or not sha256', () => {
        it('rejects with INVALID_REFERENCE', async () => {
          const t = await make()
          await expectCode(t.resolve('sha256:abc'), 'INVALID_REFERENCE')
          await expectCode(t.resolve(`sha512:${'a'.repeat(128)}`), 'INVALID_REFERENCE')
        })
      })
    })

    describe('#predecessors', () => {
      it('lists the referrers of a manifest with their artifactType and annotations', async function () {
        const t = await make()
        if (!isGraphTarget(t)) throw new Error(`${name} must implement predecessors`)
        const found = (await t.predecessors(g.manifest.desc)).sort(byDigest)
        const expected = [g.sig, g.approval].map((b) => b.desc).sort(byDigest)
        expect(found.map((d) => d.digest)).to.deep.equal(expected.map((d) => d.digest))
        const sig = found.find((d) => d.digest === g.sig.desc.digest)!
        expect(sig.artifactType).to.equal(SIG_TYPE)
        expect(sig.annotations?.kind).to.equal('signature')
        expect(sig.mediaType).to.equal(MT.ociManifest)
        expect(sig.size).to.equal(g.sig.desc.size)
      })
      it('filters by artifactType', async () => {
        const t = await make()
        if (!isGraphTarget(t)) throw new Error(`${name} must implement predecessors`)
        const found = await t.predecessors(g.manifest.desc, {artifactType: APPROVAL_TYPE})
        expect(found.map((d) => d.digest)).to.deep.equal([g.approval.desc.digest])
      })
      it('finds referrers of referrers, and none for a blob', async () => {
        const t = await make()
        if (!isGraphTarget(t)) throw new Error(`${name} must implement predecessors`)
        expect((await t.predecessors(g.sig.desc)).map((d) => d.digest)).to.deep.equal([g.countersig.desc.digest])
        expect(await t.predecessors(g.layerA.desc)).to.deep.equal([])
      })
    })

    describe('#tags', () => {
      it('lists every tag, sorted', async () => {
        const t = await make()
        if (!isTagLister(t)) throw new Error(`${name} must list tags`)
        expect(await t.tags()).to.deep.equal(['idx', 'stable', 'v1'])
      })
    })

    if (!factory.writable) {
      describe('when read-only', () => {
        it('offers no push and no tag', async () => {
          const t = (await make()) as Partial<Target>
          expect(t.push).to.equal(undefined)
          expect(t.tag).to.equal(undefined)
        })
      })
      return
    }

    describe('#push', () => {
      it('stores content that fetch and resolve then return', async () => {
        const t = await makeWritable()
        for (const b of [g.config, g.layerA, g.layerB, g.manifest]) await t.push(b.desc, b.bytes)
        expect((await readStream(await t.fetch(g.layerB.desc))).equals(g.layerB.bytes)).to.equal(true)
        expect((await t.resolve(g.manifest.desc.digest)).digest).to.equal(g.manifest.desc.digest)
      })
      it('accepts a streamed body', async () => {
        const t = await makeWritable()
        const b = blob('application/octet-stream', pseudoRandom(3 * 1024 * 1024 + 7, 'streamed'))
        const chunks = [b.bytes.subarray(0, 1000), b.bytes.subarray(1000, 2_000_000), b.bytes.subarray(2_000_000)]
        const {Readable} = await import('node:stream')
        await t.push(b.desc, Readable.from(chunks))
        expect((await readStream(await t.fetch(b.desc))).equals(b.bytes)).to.equal(true)
      })
      describe('when the content already exists', () => {
        it('is a no-op that keeps the stored content', async () => {
          const t = await makeWritable()
          await t.push(g.layerA.desc, g.layerA.bytes)
          await t.push(g.layerA.desc, g.layerA.bytes)
          expect(await t.exists(g.layerA.desc)).to.equal(true)
          expect((await readStream(await t.fetch(g.layerA.desc))).equals(g.layerA.bytes)).to.equal(true)
        })
      })
      describe('when the bytes do not match the digest', () => {
        it('refuses them with DIGEST_MISMATCH and stores nothing', async () => {
          const t = await makeWritable()
          await expectCode(t.push(g.layerA.desc, corrupted(g.layerA.bytes)), 'DIGEST_MISMATCH')
          expect(await t.exists(g.layerA.desc)).to.equal(false)
          await expectCode(t.fetch(g.layerA.desc), 'NOT_FOUND')
        })
      })
      describe('when the body size differs from the descriptor', () => {
        it('refuses a short and a long body with SIZE_MISMATCH and stores nothing', async () => {
          const t = await makeWritable()
          await expectCode(t.push(g.layerA.desc, g.layerA.bytes.subarray(1)), 'SIZE_MISMATCH')
          await expectCode(t.push(g.layerA.desc, Buffer.concat([g.layerA.bytes, Buffer.from('x')])), 'SIZE_MISMATCH')
          expect(await t.exists(g.layerA.desc)).to.equal(false)
        })
      })
      describe('when the body fails midway', () => {
        it('rejects and leaves no partial state', async () => {
          const t = await makeWritable()
          let err: unknown
          await t.push(g.layerB.desc, failingBody(g.layerB.bytes.subarray(0, 300_000))).catch((e) => (err = e))
          // The store names the failure (its own code: IO_ERROR locally, NETWORK remotely), never a raw Node error.
          expect(err).to.be.instanceOf(AiboxError)
          expect((err as Error).message).to.match(/connection reset/)
          expect(await t.exists(g.layerB.desc)).to.equal(false)
          await expectCode(t.fetch(g.layerB.desc), 'NOT_FOUND')
          // and the same push then succeeds
          await t.push(g.layerB.desc, g.layerB.bytes)
          expect(await t.exists(g.layerB.desc)).to.equal(true)
        })
      })
      describe('when the signal is aborted', () => {
        it('rejects with ABORTED and stores nothing', async () => {
          const t = await makeWritable()
          const ac = new AbortController()
          ac.abort()
          await expectCode(t.push(g.layerA.desc, g.layerA.bytes, {signal: ac.signal}), 'ABORTED')
          expect(await t.exists(g.layerA.desc)).to.equal(false)
        })
      })
      describe('when the same blob is pushed concurrently', () => {
        it('stores it once, intact, and every push succeeds', async () => {
          const t = await makeWritable()
          await Promise.all(Array.from({length: 6}, () => t.push(g.layerB.desc, g.layerB.bytes)))
          expect((await readStream(await t.fetch(g.layerB.desc))).equals(g.layerB.bytes)).to.equal(true)
        })
      })
      describe('when a manifest is not valid', () => {
        it('refuses it with INVALID_MANIFEST', async () => {
          const t = await makeWritable()
          const bad = blob(MT.ociManifest, Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":"nope"}'))
          await expectCode(t.push(bad.desc, bad.bytes), 'INVALID_MANIFEST')
          expect(await t.exists(bad.desc)).to.equal(false)
        })
      })
      describe('when a referrer is pushed', () => {
        it('is listed by predecessors of its subject', async () => {
          const t = await makeWritable()
          for (const b of [g.config, g.layerA, g.layerB, g.manifest]) await t.push(b.desc, b.bytes)
          const payload = blob(SIG_TYPE, Buffer.from('{"late":"signature"}'))
          const late = packManifest({artifactType: SIG_TYPE, layers: [payload.desc], subject: g.manifest.desc})
          await t.push(payload.desc, payload.bytes)
          await t.push(late.descriptor, late.bytes)
          if (!isGraphTarget(t)) throw new Error(`${name} must implement predecessors`)
          expect((await t.predecessors(g.manifest.desc)).map((d) => d.digest)).to.deep.equal([late.descriptor.digest])
        })
      })
    })

    describe('#tag', () => {
      it('points a tag at a manifest, and moves it', async () => {
        const t = await makeWritable({blobs: g.all, tags: []})
        await t.tag(g.manifest.desc, 'release')
        expect((await t.resolve('release')).digest).to.equal(g.manifest.desc.digest)
        await t.tag(g.index.desc, 'release')
        expect((await t.resolve('release')).digest).to.equal(g.index.desc.digest)
        // the manifest the tag left is still content of the store
        expect((await t.resolve(g.manifest.desc.digest)).digest).to.equal(g.manifest.desc.digest)
      })
      describe('when the manifest is not stored', () => {
        it('rejects with NOT_FOUND', async () => {
          const t = await makeWritable()
          await expectCode(t.tag(g.manifest.desc, 'v1'), 'NOT_FOUND')
        })
      })
      describe('when the tag is invalid', () => {
        it('rejects with INVALID_REFERENCE', async () => {
          const t = await makeWritable({blobs: g.all, tags: []})
          for (const bad of ['.bad', 'a'.repeat(129), 'has space', 'a/b', '']) await expectCode(t.tag(g.manifest.desc, bad), 'INVALID_REFERENCE')
        })
      })
    })
  })
}

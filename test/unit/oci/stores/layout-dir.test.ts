import {spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {ANNOTATION, LayoutDirStore, MT, OCI_LAYOUT_BYTES, packManifest} from '../../../../src/oci/index.js'
import {acquireLock} from '../../../../src/util/lock.js'
import {finished, runTs, spawnTs, waitForOutput} from '../../../helpers/children.js'
import {ROOT} from '../../../helpers/cli.js'
import {blob, buildGraph, pushAll, readStream, type Graph} from '../../../helpers/oci-fixtures.js'
import {corrupted, describeTarget} from '../../../helpers/target-conformance.js'
import {listFiles, tmpdir} from '../../../helpers/tmp.js'
import {expectCode} from '../../../helpers/expect-error.js'

function hexOf(digest: string): string {
  return digest.slice('sha256:'.length)
}

describeTarget('LayoutDirStore', {
  writable: true,
  async make(seed) {
    const dir = path.join(tmpdir('aibox-layout-'), 'layout')
    const store = await LayoutDirStore.open(dir, {create: true})
    await pushAll(store, seed.blobs, seed.tags)
    for (const d of seed.corrupt ?? []) {
      const file = store.blobPath(d)
      fs.chmodSync(file, 0o644)
      fs.writeFileSync(file, corrupted(fs.readFileSync(file)))
    }
    return {target: store}
  },
})

/** Writes a layout the way skopeo does (registry-notes.md §5): no mediaType, no artifactType, duplicate digests, an untagged entry, whitespace. */
function writeSkopeoStyleLayout(dir: string, g: Graph): void {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), {recursive: true})
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion": "1.0.0"}')
  for (const b of g.all) fs.writeFileSync(path.join(dir, 'blobs', 'sha256', hexOf(b.desc.digest)), b.bytes)
  const entry = (d: {digest: string; size: number}, mediaType: string, ref?: string) => ({
    mediaType,
    digest: d.digest,
    size: d.size,
    ...(ref ? {annotations: {[ANNOTATION.refName]: ref}} : {}),
  })
  const index = {
    schemaVersion: 2,
    manifests: [
      entry(g.manifest.desc, MT.ociManifest, 'first'),
      entry(g.manifest.desc, MT.ociManifest, 'second'),
      entry(g.index.desc, MT.ociIndex),
      entry(g.sig.desc, MT.ociManifest),
    ],
  }
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index, null, 2))
}

describe('LayoutDirStore', () => {
  describe('.open', () => {
    describe('when creating a new layout', () => {
      it('writes oci-layout, an empty index.json and blobs/sha256', async () => {
        const dir = path.join(tmpdir(), 'new')
        await LayoutDirStore.open(dir, {create: true})
        expect(fs.readFileSync(path.join(dir, 'oci-layout')).equals(OCI_LAYOUT_BYTES)).to.equal(true)
        expect(JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'))).to.deep.equal({schemaVersion: 2, mediaType: MT.ociIndex, manifests: []})
        expect(fs.statSync(path.join(dir, 'blobs', 'sha256')).isDirectory()).to.equal(true)
      })
    })
    describe('when the directory does not exist and create is not set', () => {
      it('rejects with NOT_FOUND', async () => {
        await expectCode(LayoutDirStore.open(path.join(tmpdir(), 'missing')), 'NOT_FOUND', /does not exist/)
      })
    })
    describe('when asked to create a layout in a non-empty directory', () => {
      it('refuses, leaving the directory untouched', async () => {
        const dir = tmpdir()
        fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine')
        await expectCode(LayoutDirStore.open(dir, {create: true}), 'INVALID_LAYOUT', /not empty/)
        expect(listFiles(dir)).to.deep.equal(['notes.txt'])
      })
    })
    describe('when oci-layout is missing or wrong', () => {
      it('rejects with INVALID_LAYOUT naming the problem', async () => {
        const dir = tmpdir()
        await expectCode(LayoutDirStore.open(dir), 'INVALID_LAYOUT', /oci-layout is missing/)
        fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}')
        fs.writeFileSync(path.join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[]}')
        await expectCode(LayoutDirStore.open(dir), 'INVALID_LAYOUT', /unsupported imageLayoutVersion "2.0.0"/)
        fs.writeFileSync(path.join(dir, 'oci-layout'), 'not json')
        await expectCode(LayoutDirStore.open(dir), 'INVALID_LAYOUT', /oci-layout is not valid JSON/)
      })
    })
    describe('when index.json is invalid', () => {
      it('rejects with INVALID_LAYOUT and the JSON pointer of the problem', async () => {
        const dir = tmpdir()
        fs.writeFileSync(path.join(dir, 'oci-layout'), OCI_LAYOUT_BYTES)
        fs.writeFileSync(path.join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha512:abcd","size":1}]}')
        await expectCode(LayoutDirStore.open(dir), 'INVALID_LAYOUT', /\/manifests\/0\/digest: unsupported digest algorithm/)
        fs.rmSync(path.join(dir, 'index.json'))
        await expectCode(LayoutDirStore.open(dir), 'INVALID_LAYOUT', /index.json is missing/)
      })
    })
  })

  describe('#push', () => {
    it('stores blobs read-only (0444) and leaves nothing in ingest/', async () => {
      const g = buildGraph()
      const dir = path.join(tmpdir(), 'l')
      const store = await LayoutDirStore.open(dir, {create: true})
      await pushAll(store, g.all)
      for (const b of g.all) expect(fs.statSync(store.blobPath(b.desc.digest)).mode & 0o777).to.equal(0o444)
      expect(fs.readdirSync(path.join(dir, 'ingest'))).to.deep.equal([])
    })
    it('lists every pushed manifest in index.json, untagged', async () => {
      const g = buildGraph()
      const dir = path.join(tmpdir(), 'l')
      const store = await LayoutDirStore.open(dir, {create: true})
      await pushAll(store, g.all)
      const index = await store.readIndex()
      const manifests = [g.manifest, g.index, g.sig, g.approval, g.countersig].map((b) => b.desc.digest).sort()
      expect(index.manifests.map((d) => d.digest).sort()).to.deep.equal(manifests)
      expect(index.manifests.every((d) => d.annotations === undefined)).to.equal(true)
    })
    describe('when the layout is opened read-only', () => {
      it('refuses with UNSUPPORTED', async () => {
        const dir = path.join(tmpdir(), 'l')
        await LayoutDirStore.open(dir, {create: true})
        const ro = await LayoutDirStore.open(dir, {readOnly: true})
        const b = blob('application/octet-stream', Buffer.from('x'))
        await expectCode(ro.push(b.desc, b.bytes), 'UNSUPPORTED', /read-only/)
        expect(listFiles(path.join(dir, 'blobs'))).to.deep.equal([])
      })
    })
  })

  describe('#tag', () => {
    it('writes the same index.json bytes whatever order the content was pushed and tagged in', async () => {
      const g = buildGraph()
      const a = await LayoutDirStore.open(path.join(tmpdir(), 'a'), {create: true})
      const b = await LayoutDirStore.open(path.join(tmpdir(), 'b'), {create: true})
      await pushAll(a, g.all, g.tags)
      await pushAll(b, [...g.all].reverse().sort((x, y) => Number(x.desc.mediaType.includes('manifest')) - Number(y.desc.mediaType.includes('manifest'))), [...g.tags].reverse())
      expect(fs.readFileSync(path.join(a.dir, 'index.json')).equals(fs.readFileSync(path.join(b.dir, 'index.json')))).to.equal(true)
    })
    it('records the tag as org.opencontainers.image.ref.name with the artifactType', async () => {
      const g = buildGraph()
      const store = await LayoutDirStore.open(path.join(tmpdir(), 'l'), {create: true})
      await pushAll(store, g.all, [{tag: 'v1', desc: g.manifest.desc}])
      const entry = (await store.readIndex()).manifests.find((d) => d.annotations?.[ANNOTATION.refName] === 'v1')
      expect(entry).to.deep.equal({
        mediaType: MT.ociManifest,
        digest: g.manifest.desc.digest,
        size: g.manifest.desc.size,
        artifactType: MT.policyBundle,
        annotations: {[ANNOTATION.refName]: 'v1'},
      })
    })
  })

  describe('when reading a layout written by skopeo', () => {
    it('accepts index.json without mediaType, duplicate digests, untagged entries and whitespace', async () => {
      const g = buildGraph()
      const dir = tmpdir()
      writeSkopeoStyleLayout(dir, g)
      const store = await LayoutDirStore.open(dir)
      expect(await store.tags()).to.deep.equal(['first', 'second'])
      const d = await store.resolve('second')
      // artifactType is read from the manifest when index.json lacks it
      expect(d).to.deep.equal({mediaType: MT.ociManifest, digest: g.manifest.desc.digest, size: g.manifest.desc.size, artifactType: MT.policyBundle})
      expect((await store.predecessors(g.manifest.desc)).map((x) => x.digest)).to.deep.equal([g.sig.desc.digest])
      expect((await readStream(await store.fetch(g.layerB.desc))).equals(g.layerB.bytes)).to.equal(true)
    })
    it('keeps the foreign entries when it adds a tag', async () => {
      const g = buildGraph()
      const dir = tmpdir()
      writeSkopeoStyleLayout(dir, g)
      const store = await LayoutDirStore.open(dir)
      await store.tag(g.index.desc, 'third')
      expect(await store.tags()).to.deep.equal(['first', 'second', 'third'])
      expect((await store.resolve('first')).digest).to.equal(g.manifest.desc.digest)
      expect((await store.readIndex()).manifests.some((d) => d.digest === g.sig.desc.digest)).to.equal(true)
    })
    describe('when one tag names two different manifests', () => {
      it('refuses to guess', async () => {
        const g = buildGraph()
        const dir = tmpdir()
        writeSkopeoStyleLayout(dir, g)
        const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'))
        index.manifests[2].annotations = {[ANNOTATION.refName]: 'first'}
        fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index))
        const store = await LayoutDirStore.open(dir)
        await expectCode(store.resolve('first'), 'INVALID_LAYOUT', /tag "first" to 2 different manifests/)
      })
    })
  })

  describe('when the layout contains symlinks', () => {
    it('refuses a blob symlink that escapes the layout', async () => {
      const g = buildGraph()
      const root = tmpdir()
      const dir = path.join(root, 'layout')
      const store = await LayoutDirStore.open(dir, {create: true})
      await pushAll(store, g.all, g.tags)
      const secret = path.join(root, 'secret.bin')
      fs.writeFileSync(secret, g.layerA.bytes)
      fs.chmodSync(store.blobPath(g.layerA.desc.digest), 0o644)
      fs.rmSync(store.blobPath(g.layerA.desc.digest))
      fs.symlinkSync(secret, store.blobPath(g.layerA.desc.digest))
      await expectCode(store.fetch(g.layerA.desc), 'INVALID_LAYOUT', /outside the layout: refused/)
      await expectCode(store.exists(g.layerA.desc), 'INVALID_LAYOUT', /outside the layout/)
    })
    it('follows a blob symlink that stays inside the layout', async () => {
      const g = buildGraph()
      const dir = path.join(tmpdir(), 'layout')
      const store = await LayoutDirStore.open(dir, {create: true})
      await pushAll(store, g.all, g.tags)
      const inside = path.join(dir, 'kept.bin')
      fs.copyFileSync(store.blobPath(g.layerA.desc.digest), inside)
      fs.chmodSync(store.blobPath(g.layerA.desc.digest), 0o644)
      fs.rmSync(store.blobPath(g.layerA.desc.digest))
      fs.symlinkSync('../../kept.bin', store.blobPath(g.layerA.desc.digest))
      expect((await readStream(await store.fetch(g.layerA.desc))).equals(g.layerA.bytes)).to.equal(true)
    })
    it('refuses a blobs directory that is a symlink out of the layout', async () => {
      const root = tmpdir()
      const outside = path.join(root, 'elsewhere')
      fs.mkdirSync(path.join(outside, 'sha256'), {recursive: true})
      const dir = path.join(root, 'layout')
      fs.mkdirSync(dir)
      fs.writeFileSync(path.join(dir, 'oci-layout'), OCI_LAYOUT_BYTES)
      fs.writeFileSync(path.join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[]}')
      fs.symlinkSync(outside, path.join(dir, 'blobs'))
      await expectCode(LayoutDirStore.open(dir), 'INVALID_LAYOUT', /blobs is a symlink to .*outside the layout/)
    })
    it('refuses a blob that is a FIFO instead of blocking on it', async () => {
      const g = buildGraph()
      const dir = path.join(tmpdir(), 'layout')
      const store = await LayoutDirStore.open(dir, {create: true})
      await pushAll(store, g.all)
      fs.chmodSync(store.blobPath(g.layerA.desc.digest), 0o644)
      fs.rmSync(store.blobPath(g.layerA.desc.digest))
      const mk = spawn('mkfifo', [store.blobPath(g.layerA.desc.digest)])
      await new Promise((r) => mk.on('close', r))
      await expectCode(store.fetch(g.layerA.desc), 'INVALID_LAYOUT', /not a regular file/)
    })
  })

  describe('when several processes write the same layout at once', () => {
    it('keeps every tag of every writer in a valid index.json', async function () {
      this.timeout(120_000)
      const dir = path.join(tmpdir(), 'shared')
      const workers = 4
      const perWorker = 8
      const runs = await Promise.all(
        Array.from({length: workers}, (_, id) => runTs(path.join(ROOT, 'test', 'helpers', 'layout-writer-child.ts'), [dir, String(id), String(perWorker)])),
      )
      for (const [id, r] of runs.entries()) expect(r.code, `worker ${id}: ${r.stderr}`).to.equal(0)
      const store = await LayoutDirStore.open(dir)
      const expected = Array.from({length: workers}, (_, id) => Array.from({length: perWorker}, (_, i) => `w${id}-${i}`)).flat().sort()
      expect(await store.tags()).to.deep.equal(expected)
      expect((await store.readIndex()).manifests).to.have.length(workers * perWorker)
      expect(fs.existsSync(path.join(dir, 'index.json.lock'))).to.equal(false)
    })
  })

  describe('when index.json is locked', () => {
    it('takes over the lock of a writer that was killed with SIGKILL', async function () {
      this.timeout(60_000)
      const g = buildGraph()
      const dir = path.join(tmpdir(), 'l')
      const store = await LayoutDirStore.open(dir, {create: true})
      await pushAll(store, g.all)
      const holder = spawnTs(path.join(ROOT, 'test', 'unit', 'util', 'children', 'lock-holder.ts'), [path.join(fs.realpathSync(dir), 'index.json')])
      const done = finished(holder)
      await waitForOutput(holder, 'locked')
      holder.kill('SIGKILL')
      await done
      expect(fs.existsSync(path.join(dir, 'index.json.lock'))).to.equal(true)
      await store.tag(g.manifest.desc, 'v1')
      expect((await store.resolve('v1')).digest).to.equal(g.manifest.desc.digest)
      expect(fs.existsSync(path.join(dir, 'index.json.lock'))).to.equal(false)
    })
    it('times out with IO_ERROR while a live process holds it', async () => {
      const g = buildGraph()
      const dir = path.join(tmpdir(), 'l')
      await pushAll(await LayoutDirStore.open(dir, {create: true}), g.all)
      const store = await LayoutDirStore.open(dir, {lockTimeoutMs: 200})
      const lock = await acquireLock(path.join(fs.realpathSync(dir), 'index.json'), {purpose: 'other writer'})
      try {
        await expectCode(store.tag(g.manifest.desc, 'v1'), 'IO_ERROR', /timed out after 200 ms waiting for lock .*index\.json\.lock \(held by pid \d+/)
      } finally {
        lock.release()
      }
      await store.tag(g.manifest.desc, 'v1')
    })
    it('stops waiting with ABORTED when the signal fires', async () => {
      const g = buildGraph()
      const dir = path.join(tmpdir(), 'l')
      const store = await LayoutDirStore.open(dir, {create: true})
      await pushAll(store, g.all)
      const lock = await acquireLock(path.join(fs.realpathSync(dir), 'index.json'))
      try {
        const ac = new AbortController()
        setTimeout(() => ac.abort(), 50)
        await expectCode(store.tag(g.manifest.desc, 'v1', {signal: ac.signal}), 'ABORTED', /waiting for lock .*index\.json\.lock: aborted/)
      } finally {
        lock.release()
      }
    })
  })

  describe('#resolve', () => {
    it('resolves the digest of an unlisted manifest blob (a child of an index)', async () => {
      const g = buildGraph()
      const dir = tmpdir()
      writeSkopeoStyleLayout(dir, g)
      const store = await LayoutDirStore.open(dir)
      const unlisted = packManifest({artifactType: 'application/vnd.example+json', layers: [g.layerA.desc]})
      fs.writeFileSync(path.join(dir, 'blobs', 'sha256', hexOf(unlisted.descriptor.digest)), unlisted.bytes)
      expect((await store.resolve(unlisted.descriptor.digest)).mediaType).to.equal(MT.ociManifest)
      await expectCode(store.resolve(g.layerA.desc.digest), 'NOT_FOUND', /not a manifest/)
    })
  })
})

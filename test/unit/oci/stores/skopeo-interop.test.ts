/**
 * Interop with the real skopeo (Debian's 1.9, installed by `make sysdeps`): what we write, skopeo
 * reads; what skopeo writes (registry-notes.md §5: no mediaType in index.json, no artifactType,
 * one entry per tag, whitespace in oci-layout, blobs before index.json in its tars), we read.
 */
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'

import {expect} from 'chai'

import {ANNOTATION, copy, LayoutDirStore, LayoutTarStore, MemoryStore, MT, writeLayoutTar} from '../../../../src/oci/index.js'
import {buildGraph, pushAll, readStream, type Graph} from '../../../helpers/oci-fixtures.js'
import {tmpdir} from '../../../helpers/tmp.js'

function skopeo(...args: string[]): string {
  const r = spawnSync('skopeo', args, {encoding: 'utf8'})
  if (r.error) throw new Error(`skopeo is not installed (run make sysdeps): ${r.error.message}`)
  if (r.status !== 0) throw new Error(`skopeo ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return r.stdout
}

function skopeoCopy(src: string, dst: string): void {
  skopeo('copy', '--insecure-policy', '--quiet', src, dst)
}

const hex = (d: string) => d.slice(7)

async function ourLayout(g: Graph): Promise<LayoutDirStore> {
  const store = await LayoutDirStore.open(path.join(tmpdir('aibox-interop-'), 'ours'), {create: true})
  await pushAll(store, g.all, [...g.tags, {tag: 'sig', desc: g.sig.desc}])
  return store
}

function blobOf(dir: string, digest: string): Buffer {
  return fs.readFileSync(path.join(dir, 'blobs', 'sha256', hex(digest)))
}

describe('skopeo interop', function () {
  this.timeout(60_000)

  describe('when skopeo reads what we write', () => {
    it('copies our layout (oci:DIR:tag → oci:OTHER:tag) with every blob identical', async () => {
      const g = buildGraph('interop')
      const ours = await ourLayout(g)
      const other = path.join(tmpdir(), 'other')
      skopeoCopy(`oci:${ours.dir}:v1`, `oci:${other}:v1`)
      for (const b of [g.config, g.layerA, g.layerB, g.manifest]) expect(blobOf(other, b.desc.digest).equals(b.bytes), b.desc.digest).to.equal(true)
    })
    it('returns our manifest, index and referrer byte for byte with inspect --raw', async () => {
      const g = buildGraph('interop')
      const ours = await ourLayout(g)
      expect(skopeo('inspect', '--raw', `oci:${ours.dir}:v1`)).to.equal(g.manifest.bytes.toString())
      expect(skopeo('inspect', '--raw', `oci:${ours.dir}:idx`)).to.equal(g.index.bytes.toString())
      // a tagged referrer is reachable, its subject preserved
      const sig = JSON.parse(skopeo('inspect', '--raw', `oci:${ours.dir}:sig`))
      expect(sig.subject.digest).to.equal(g.manifest.desc.digest)
    })
    it('accepts our tar as an oci-archive', async () => {
      const g = buildGraph('interop')
      const ours = await ourLayout(g)
      const file = path.join(tmpdir(), 'export.tar')
      await writeLayoutTar(ours, file)
      const out = path.join(tmpdir(), 'from-archive')
      skopeoCopy(`oci-archive:${file}:v1`, `oci:${out}:v1`)
      expect(blobOf(out, g.layerB.desc.digest).equals(g.layerB.bytes)).to.equal(true)
      expect(skopeo('inspect', '--raw', `oci-archive:${file}:idx`)).to.equal(g.index.bytes.toString())
    })
  })

  describe('when we read what skopeo writes', () => {
    it('reads a skopeo layout: no mediaType, no artifactType, one entry per tag', async () => {
      const g = buildGraph('interop')
      const ours = await ourLayout(g)
      const theirs = path.join(tmpdir(), 'theirs')
      skopeoCopy(`oci:${ours.dir}:v1`, `oci:${theirs}:v1`)
      skopeoCopy(`oci:${ours.dir}:stable`, `oci:${theirs}:stable`)
      // what skopeo 1.9 writes, as registry-notes.md §5 describes it
      const index = JSON.parse(fs.readFileSync(path.join(theirs, 'index.json'), 'utf8'))
      expect(index.mediaType).to.equal(undefined)
      expect(index.manifests).to.have.length(2)
      expect(index.manifests.every((d: {artifactType?: string}) => d.artifactType === undefined)).to.equal(true)
      expect(fs.readFileSync(path.join(theirs, 'oci-layout'), 'utf8')).to.contain(': ')

      const store = await LayoutDirStore.open(theirs)
      expect(await store.tags()).to.deep.equal(['stable', 'v1'])
      expect(await store.resolve('v1')).to.deep.equal({mediaType: MT.ociManifest, digest: g.manifest.desc.digest, size: g.manifest.desc.size, artifactType: MT.policyBundle})
      const mem = new MemoryStore()
      await copy(store, 'stable', mem, 'stable')
      expect((await readStream(await mem.fetch(g.layerB.desc))).equals(g.layerB.bytes)).to.equal(true)
    })
    it('reads a skopeo oci-archive, plain and gzip-compressed', async () => {
      const g = buildGraph('interop')
      const ours = await ourLayout(g)
      const file = path.join(tmpdir(), 'skopeo.tar')
      skopeoCopy(`oci:${ours.dir}:v1`, `oci-archive:${file}:v1`)
      fs.writeFileSync(`${file}.gz`, zlib.gzipSync(fs.readFileSync(file)))
      for (const f of [file, `${file}.gz`]) {
        const t = await LayoutTarStore.open(f)
        try {
          expect(await t.tags()).to.deep.equal(['v1'])
          expect(t.report.unreferenced).to.deep.equal([])
          const d = await t.resolve('v1')
          expect([d.digest, d.artifactType]).to.deep.equal([g.manifest.desc.digest, MT.policyBundle])
          const mem = new MemoryStore()
          await copy(t, 'v1', mem, 'v1')
          expect(await mem.exists(g.layerA.desc)).to.equal(true)
        } finally {
          await t.close()
        }
      }
    })
    it('round-trips: skopeo layout → our layout (via copy) → skopeo reads it back', async () => {
      const g = buildGraph('interop')
      const ours = await ourLayout(g)
      const theirs = path.join(tmpdir(), 'theirs')
      skopeoCopy(`oci:${ours.dir}:v1`, `oci:${theirs}:v1`)
      const back = await LayoutDirStore.open(path.join(tmpdir(), 'back'), {create: true})
      await copy(await LayoutDirStore.open(theirs), 'v1', back, 'again')
      expect((await back.readIndex()).manifests.find((d) => d.annotations?.[ANNOTATION.refName] === 'again')?.digest).to.equal(g.manifest.desc.digest)
      expect(skopeo('inspect', '--raw', `oci:${back.dir}:again`)).to.equal(g.manifest.bytes.toString())
    })
  })
})

import {spawnSync} from 'node:child_process'
import {createHash, randomUUID} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {Readable} from 'node:stream'
import zlib from 'node:zlib'

import {expect} from 'chai'
import tar from 'tar-stream'

import {LayoutDirStore, LayoutTarStore, MT, OCI_LAYOUT_BYTES, writeLayoutTar, type LayoutTarOptions} from '../../../../src/oci/index.js'
import {blob, buildGraph, pseudoRandom, pushAll, readStream, type Graph} from '../../../helpers/oci-fixtures.js'
import {describeTarget, type Seed} from '../../../helpers/target-conformance.js'
import {listFiles, tmpdir} from '../../../helpers/tmp.js'
import {expectCode} from '../../../helpers/expect-error.js'

/** Builds a layout directory holding `seed` and writes it as a tar with our writer; returns the tar path. */
async function layoutTar(seed: Seed, dir = tmpdir('aibox-tar-')): Promise<string> {
  const store = await LayoutDirStore.open(path.join(dir, 'layout'), {create: true})
  await pushAll(store, seed.blobs, seed.tags)
  const file = path.join(dir, 'layout.tar')
  await writeLayoutTar(store, file)
  if (seed.corrupt?.length) {
    const bytes = fs.readFileSync(file)
    for (const d of seed.corrupt) {
      const b = seed.blobs.find((x) => x.desc.digest === d)!
      const at = bytes.indexOf(b.bytes)
      expect(at, `blob ${d} found in the tar`).to.be.greaterThan(0)
      bytes[at + Math.floor(b.bytes.length / 2)] ^= 0xff
    }
    fs.writeFileSync(file, bytes)
  }
  return file
}

for (const gzip of [false, true]) {
  describeTarget(`LayoutTarStore (${gzip ? 'gzip-compressed' : 'plain'} tar)`, {
    writable: false,
    async make(seed) {
      const dir = tmpdir('aibox-tar-')
      let file = await layoutTar(seed, dir)
      if (gzip) {
        fs.writeFileSync(`${file}.gz`, zlib.gzipSync(fs.readFileSync(file)))
        file = `${file}.gz`
      }
      // A corrupted archive would be refused at open; defer verification to fetch to test that path too.
      const store = await LayoutTarStore.open(file, {verifyOnOpen: !seed.corrupt?.length, tmpDir: dir})
      return {target: store, cleanup: () => store.close()}
    },
  })
}

// ------------------------------------------------------------------ hostile archive builders

interface RawEntry {
  header: Parameters<tar.Pack['entry']>[0]
  data?: Buffer
}

async function tarOf(entries: RawEntry[]): Promise<Buffer> {
  const pack = tar.pack()
  const out = readStream(pack as unknown as Readable)
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => pack.entry({mode: 0o644, mtime: new Date(0), ...e.header}, e.data ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())))
  }
  pack.finalize()
  return out
}

const hex = (d: string) => d.slice(7)
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** The entries of a complete, valid layout for `g` (so each test breaks exactly one thing). */
function validEntries(g: Graph): RawEntry[] {
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{mediaType: MT.ociManifest, digest: g.manifest.desc.digest, size: g.manifest.desc.size, annotations: {'org.opencontainers.image.ref.name': 'v1'}}],
    }),
  )
  return [
    {header: {name: 'oci-layout', size: OCI_LAYOUT_BYTES.length}, data: OCI_LAYOUT_BYTES},
    {header: {name: 'index.json', size: index.length}, data: index},
    ...[g.config, g.layerA, g.layerB, g.manifest].map((b) => ({header: {name: `blobs/sha256/${hex(b.desc.digest)}`, size: b.bytes.length}, data: b.bytes})),
  ]
}

/** Rewrites the size field of the tar header at `offset` (and its checksum): a forged size. */
function forgeSize(tarBytes: Buffer, offset: number, size: number): void {
  const h = tarBytes.subarray(offset, offset + 512)
  if (size < 8 ** 11) h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 12, 'latin1')
  else {
    // GNU base-256: 0x80 then the size big-endian in the remaining 11 bytes
    h.fill(0, 124, 136)
    h[124] = 0x80
    let v = size
    for (let i = 135; i > 124; i--, v = Math.floor(v / 256)) h[i] = v % 256
  }
  h.fill(0x20, 148, 156)
  let sum = 0
  for (const byte of h) sum += byte
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1')
}

interface Sandbox {
  root: string
  tmp: string
  file: string
}

function sandbox(bytes: Buffer, name = 'hostile.tar'): Sandbox {
  const root = tmpdir('aibox-hostile-')
  const tmp = path.join(root, 'tmp')
  fs.mkdirSync(tmp)
  const file = path.join(root, name)
  fs.writeFileSync(file, bytes)
  return {root, tmp, file}
}

/** Opens the archive expecting a refusal; then checks nothing was written anywhere and the temp dir is gone. */
async function expectRefused(sb: Sandbox, code: string, message: RegExp, opts: LayoutTarOptions = {}): Promise<void> {
  await expectCode(LayoutTarStore.open(sb.file, {tmpDir: sb.tmp, ...opts}), code, message)
  expect(listFiles(sb.root)).to.deep.equal([path.basename(sb.file)])
  expect(fs.readdirSync(sb.tmp)).to.deep.equal([])
}

describe('LayoutTarStore', () => {
  describe('.open', () => {
    it('reads a tar made by GNU tar with ./ prefixes and directory entries', async () => {
      const g = buildGraph()
      const dir = tmpdir()
      const store = await LayoutDirStore.open(path.join(dir, 'layout'), {create: true})
      await pushAll(store, g.all, g.tags)
      const file = path.join(dir, 'gnu.tar')
      const r = spawnSync('tar', ['-cf', file, '-C', store.dir, '.'])
      expect(r.status, String(r.stderr)).to.equal(0)
      expect(String(spawnSync('tar', ['-tf', file]).stdout)).to.match(/^\.\/$/m)
      const t = await LayoutTarStore.open(file)
      try {
        expect((await t.resolve('v1')).digest).to.equal(g.manifest.desc.digest)
        expect(t.report).to.deep.equal({compressed: 'none', blobs: g.all.length, blobBytes: g.all.reduce((a, b) => a + b.bytes.length, 0), unreferenced: []})
      } finally {
        await t.close()
      }
    })
    it('extracts a gzip-compressed tar into a private temporary directory that close() removes', async () => {
      const g = buildGraph()
      const dir = tmpdir()
      const store = await LayoutDirStore.open(path.join(dir, 'layout'), {create: true})
      await pushAll(store, g.all, g.tags)
      const file = path.join(dir, 'x.tar.gz')
      expect(spawnSync('tar', ['-czf', file, '-C', store.dir, 'oci-layout', 'index.json', 'blobs']).status).to.equal(0)
      const tmp = path.join(dir, 'tmp')
      fs.mkdirSync(tmp)
      const t = await LayoutTarStore.open(file, {tmpDir: tmp})
      expect(t.report.compressed).to.equal('gzip')
      expect(fs.readdirSync(tmp)).to.have.length(1)
      expect((await readStream(await t.fetch(g.layerB.desc))).equals(g.layerB.bytes)).to.equal(true)
      await t.close()
      expect(fs.readdirSync(tmp)).to.deep.equal([])
      await expectCode(t.resolve('v1'), 'UNSUPPORTED', /closed/)
    })
    it('reports blobs that nothing in index.json reaches', async () => {
      const g = buildGraph()
      const extra = blob('application/octet-stream', Buffer.from('stray'))
      const bytes = await tarOf([...validEntries(g), {header: {name: `blobs/sha256/${hex(extra.desc.digest)}`, size: extra.bytes.length}, data: extra.bytes}])
      const sb = sandbox(bytes)
      const t = await LayoutTarStore.open(sb.file)
      expect(t.report.unreferenced).to.deep.equal([extra.desc.digest])
      await t.close()
    })
    it('refuses a blob whose content does not match its name, unless verification is deferred to fetch', async () => {
      const g = buildGraph()
      const entries = validEntries(g)
      const bad = Buffer.from(g.layerA.bytes)
      bad[10] ^= 1
      entries[3] = {header: entries[3].header, data: bad}
      const sb = sandbox(await tarOf(entries))
      await expectRefused(sb, 'DIGEST_MISMATCH', new RegExp(`entry blobs/sha256/${hex(g.layerA.desc.digest)} does not match its name`))
      const t = await LayoutTarStore.open(sb.file, {verifyOnOpen: false})
      await expectCode((async () => readStream(await t.fetch(g.layerA.desc)))(), 'DIGEST_MISMATCH')
      await t.close()
    })
  })

  describe('when the signal is aborted', () => {
    it('stops with ABORTED and removes its temporary directory', async () => {
      const g = buildGraph()
      const sb = sandbox(zlib.gzipSync(await tarOf(validEntries(g))), 'x.tar.gz')
      const ac = new AbortController()
      ac.abort()
      await expectRefused(sb, 'ABORTED', /aborted/, {signal: ac.signal})
    })
  })

  describe('when the archive is hostile', () => {
    it('refuses path traversal (../)', async () => {
      const g = buildGraph()
      const sb = sandbox(await tarOf([...validEntries(g), {header: {name: '../evil', size: 4}, data: Buffer.from('evil')}]))
      await expectRefused(sb, 'UNSAFE_ARCHIVE', /entry "\.\.\/evil" escapes the archive root \(path traversal\): refused/)
      expect(fs.existsSync(path.join(sb.root, '..', 'evil'))).to.equal(false)
    })
    it('refuses path traversal hidden in a pax header, in a gzip archive too', async () => {
      const g = buildGraph()
      const entries = validEntries(g)
      entries.push({header: {name: `blobs/sha256/${'0'.repeat(64)}`, size: 4, pax: {path: 'blobs/../../evil'}}, data: Buffer.from('evil')})
      const sb = sandbox(zlib.gzipSync(await tarOf(entries)), 'hostile.tar.gz')
      await expectRefused(sb, 'UNSAFE_ARCHIVE', /entry "blobs\/\.\.\/\.\.\/evil" escapes the archive root/)
    })
    it('refuses absolute paths', async () => {
      const g = buildGraph()
      const target = `/tmp/aibox-evil-${randomUUID()}`
      const sb = sandbox(await tarOf([{header: {name: target, size: 4}, data: Buffer.from('evil')}, ...validEntries(g)]))
      await expectRefused(sb, 'UNSAFE_ARCHIVE', /has an absolute path: refused/)
      expect(fs.existsSync(target)).to.equal(false)
    })
    it('refuses symbolic links', async () => {
      const g = buildGraph()
      const entries = validEntries(g)
      entries[3] = {header: {name: entries[3].header.name, type: 'symlink', linkname: '/etc/passwd', size: 0}}
      await expectRefused(sandbox(await tarOf(entries)), 'UNSAFE_ARCHIVE', /is a symbolic link: refused/)
    })
    it('refuses hard links', async () => {
      const g = buildGraph()
      const entries = validEntries(g)
      entries.push({header: {name: `blobs/sha256/${'1'.repeat(64)}`, type: 'link', linkname: 'index.json', size: 0}})
      await expectRefused(sandbox(await tarOf(entries)), 'UNSAFE_ARCHIVE', /is a hard link: refused/)
    })
    it('refuses device files and FIFOs', async () => {
      const g = buildGraph()
      for (const [type, what] of [
        ['character-device', 'device file'],
        ['block-device', 'device file'],
        ['fifo', 'FIFO'],
      ] as const) {
        const entries = validEntries(g)
        entries.splice(2, 0, {header: {name: 'blobs/sha256/' + '2'.repeat(64), type, size: 0, devmajor: 1, devminor: 3}})
        await expectRefused(sandbox(await tarOf(entries)), 'UNSAFE_ARCHIVE', new RegExp(`is a ${what}: refused`))
      }
    })
    it('refuses duplicate entries, ./-prefixed or not', async () => {
      const g = buildGraph()
      const entries = validEntries(g)
      const second = Buffer.from('{"schemaVersion":2,"manifests":[]}')
      entries.push({header: {name: './index.json', size: second.length}, data: second})
      await expectRefused(sandbox(await tarOf(entries)), 'UNSAFE_ARCHIVE', /duplicate entry "\.\/index\.json" \(a second copy could silently replace the first\): refused/)
    })
    it('refuses an entry whose declared size is larger than the archive (plain tar)', async () => {
      const g = buildGraph()
      const bytes = await tarOf(validEntries(g))
      // third header: blobs/sha256/<config>, after oci-layout and index.json (each header + one data block)
      const offset = bytes.indexOf(Buffer.from(`blobs/sha256/${hex(g.config.desc.digest)}`))
      forgeSize(bytes, offset, 2 ** 40)
      await expectRefused(sandbox(bytes), 'UNSAFE_ARCHIVE', /declares 1099511627776 bytes but only \d+ remain in the archive \(forged size or truncated file\)/)
    })
    it('refuses an entry whose declared size exceeds the blob limit (gzip)', async () => {
      const g = buildGraph()
      const bytes = await tarOf(validEntries(g))
      forgeSize(bytes, bytes.indexOf(Buffer.from(`blobs/sha256/${hex(g.config.desc.digest)}`)), 2 ** 40)
      await expectRefused(sandbox(zlib.gzipSync(bytes), 'x.tar.gz'), 'UNSAFE_ARCHIVE', /declares 1099511627776 bytes, more than the \d+-byte blob limit/)
    })
    it('refuses a truncated archive', async () => {
      const g = buildGraph()
      const bytes = await tarOf(validEntries(g))
      const cut = bytes.indexOf(g.layerB.bytes) + 1000
      await expectRefused(sandbox(bytes.subarray(0, cut)), 'UNSAFE_ARCHIVE', /forged size or truncated file/)
      // Cut inside a header, and inside the zero padding after an entry's data (its data complete):
      // the same refusal wherever the cut falls (a CI run once got INVALID_LAYOUT for the latter).
      const header = bytes.indexOf(Buffer.from(`blobs/sha256/${hex(g.layerB.desc.digest)}`))
      await expectRefused(sandbox(bytes.subarray(0, header + 100)), 'UNSAFE_ARCHIVE', /truncated/)
      const dataEnd = bytes.indexOf(OCI_LAYOUT_BYTES) + OCI_LAYOUT_BYTES.length
      expect(dataEnd % 512, 'the fixture leaves padding after oci-layout').to.not.equal(0)
      await expectRefused(sandbox(bytes.subarray(0, dataEnd + 1)), 'UNSAFE_ARCHIVE', /archive is truncated: it ends in the middle of an entry \(truncated file\): refused/)
      await expectRefused(sandbox(zlib.gzipSync(bytes).subarray(0, 2000), 'cut.tar.gz'), 'INVALID_LAYOUT', /gzip stream is corrupt or truncated|archive is truncated/)
    })
    it('refuses entries that are not part of an OCI layout', async () => {
      const g = buildGraph()
      for (const [name, message] of [
        ['README.md', /unexpected entry "README.md"/],
        ['blobs/sha256/not-a-digest', /unexpected entry "blobs\/sha256\/not-a-digest"/],
        [`blobs/sha512/${'a'.repeat(128)}`, /uses an unsupported digest algorithm/],
        ['blobs/sha256/../../x', /path traversal/],
        ['blobs//sha256/x', /non-canonical path/],
      ] as const) {
        const sb = sandbox(await tarOf([...validEntries(g), {header: {name, size: 1}, data: Buffer.from('x')}]))
        await expectRefused(sb, /traversal/.test(String(message)) ? 'UNSAFE_ARCHIVE' : 'INVALID_LAYOUT', message)
      }
      const dirEntry = sandbox(await tarOf([...validEntries(g), {header: {name: 'etc/', type: 'directory', size: 0}}]))
      await expectRefused(dirEntry, 'INVALID_LAYOUT', /unexpected directory "etc\/"/)
    })
    it('refuses an index.json that names a blob the archive does not have', async () => {
      const g = buildGraph()
      const entries = validEntries(g).filter((e) => e.header.name !== `blobs/sha256/${hex(g.manifest.desc.digest)}`)
      await expectRefused(sandbox(await tarOf(entries)), 'INVALID_LAYOUT', new RegExp(`index.json names ${g.manifest.desc.digest} \\(${escapeRe(MT.ociManifest)}\\), which is not in the archive`))
      const noLayer = validEntries(g).filter((e) => e.header.name !== `blobs/sha256/${hex(g.layerA.desc.digest)}`)
      await expectRefused(sandbox(await tarOf(noLayer)), 'INVALID_LAYOUT', new RegExp(`manifest ${g.manifest.desc.digest} names ${g.layerA.desc.digest}`))
    })
    it('refuses an index.json whose size for a blob differs from the entry', async () => {
      const g = buildGraph()
      const entries = validEntries(g)
      const index = Buffer.from(JSON.stringify({schemaVersion: 2, manifests: [{...g.manifest.desc, size: g.manifest.desc.size + 1}]}))
      entries[1] = {header: {name: 'index.json', size: index.length}, data: index}
      await expectRefused(sandbox(await tarOf(entries)), 'SIZE_MISMATCH', /index.json says .* has \d+ bytes, the archive entry has \d+/)
    })
    it('refuses archives without oci-layout or index.json, empty files and non-tar data', async () => {
      const g = buildGraph()
      await expectRefused(sandbox(await tarOf(validEntries(g).slice(1))), 'INVALID_LAYOUT', /no oci-layout file/)
      await expectRefused(sandbox(await tarOf(validEntries(g).filter((e) => e.header.name !== 'index.json'))), 'INVALID_LAYOUT', /no index.json/)
      await expectRefused(sandbox(Buffer.alloc(0)), 'INVALID_LAYOUT', /archive is empty/)
      await expectRefused(sandbox(pseudoRandom(4096, 'junk')), 'INVALID_LAYOUT', /not a valid tar archive/)
      await expectRefused(sandbox(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0])), 'UNSUPPORTED', /zstd-compressed archives are not supported/)
    })
    it('refuses a gzip bomb by its expansion ratio', async function () {
      this.timeout(60_000)
      const g = buildGraph()
      const size = 96 * 1024 * 1024
      const zeros = Buffer.alloc(1024 * 1024)
      const digest = (() => {
        const h = createHash('sha256')
        for (let i = 0; i < size / zeros.length; i++) h.update(zeros)
        return h.digest('hex')
      })()
      const pack = tar.pack()
      const gz = zlib.createGzip({level: 9})
      const out = readStream((pack as unknown as Readable).pipe(gz))
      for (const e of validEntries(g).slice(0, 2)) await new Promise<void>((r, j) => pack.entry(e.header, e.data!, (err) => (err ? j(err) : r())))
      const sink = pack.entry({name: `blobs/sha256/${digest}`, size})
      for (let i = 0; i < size / zeros.length; i++) if (!sink.write(zeros)) await new Promise<void>((r) => sink.once('drain', () => r()))
      ;(sink as unknown as {end(): void}).end()
      pack.finalize()
      const bomb = await out
      expect(bomb.length).to.be.lessThan(size / 500)
      await expectRefused(sandbox(bomb, 'bomb.tar.gz'), 'UNSAFE_ARCHIVE', /gzip bomb: \d+ compressed bytes expand to more than \d+ \(ratio above 200:1\)/)
    })
    it('refuses an archive that expands beyond the absolute limit', async () => {
      const g = buildGraph()
      const sb = sandbox(zlib.gzipSync(await tarOf(validEntries(g))), 'big.tar.gz')
      // every blob is under the limit (layer B is 1 MiB), their sum is not
      await expectRefused(sb, 'UNSAFE_ARCHIVE', /expands beyond the 1064960-byte limit/, {limits: {maxTotalBytes: 1024 * 1024 + 16 * 1024}})
      await expectRefused(sb, 'UNSAFE_ARCHIVE', /declares 1048576 bytes, more than the 524288-byte blob limit/, {limits: {maxBlobBytes: 512 * 1024}})
    })
    it('refuses more entries than allowed', async () => {
      const g = buildGraph()
      await expectRefused(sandbox(await tarOf(validEntries(g))), 'UNSAFE_ARCHIVE', /more than 3 entries/, {limits: {maxEntries: 3}})
    })
  })

  describe('writeLayoutTar', () => {
    it('writes byte-identical tars for the same content, whatever order it was stored in', async () => {
      const g = buildGraph()
      const dir = tmpdir()
      const a = await LayoutDirStore.open(path.join(dir, 'a'), {create: true})
      await pushAll(a, g.all, g.tags)
      const b = await LayoutDirStore.open(path.join(dir, 'b'), {create: true})
      const blobsFirst = [...g.all].sort((x, y) => Number(x.desc.mediaType === MT.ociManifest || x.desc.mediaType === MT.ociIndex) - Number(y.desc.mediaType === MT.ociManifest || y.desc.mediaType === MT.ociIndex))
      await pushAll(b, blobsFirst.reverse().sort((x, y) => Number(x === g.index) - Number(y === g.index)), [...g.tags].reverse())
      const ra = await writeLayoutTar(a, path.join(dir, 'a.tar'), {digest: true})
      const rb = await writeLayoutTar(path.join(dir, 'b'), path.join(dir, 'b.tar'), {digest: true})
      const again = await writeLayoutTar(a, path.join(dir, 'a2.tar'), {digest: true})
      const bytes = fs.readFileSync(path.join(dir, 'a.tar'))
      expect(bytes.equals(fs.readFileSync(path.join(dir, 'b.tar')))).to.equal(true)
      expect(bytes.equals(fs.readFileSync(path.join(dir, 'a2.tar')))).to.equal(true)
      expect(ra).to.deep.equal(rb)
      expect(again.digest).to.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`)
      expect(ra.size).to.equal(bytes.length)
    })
    it('writes oci-layout, index.json, the blob directories, then the blobs in digest order, with fixed owners, modes and times', async () => {
      const g = buildGraph()
      const dir = tmpdir()
      const s = await LayoutDirStore.open(path.join(dir, 'l'), {create: true})
      await pushAll(s, g.all, g.tags)
      await writeLayoutTar(s, path.join(dir, 'l.tar'))
      const headers: tar.Header[] = []
      const extract = tar.extract()
      const done = (async () => {
        for await (const e of extract) {
          headers.push(e.header)
          for await (const _ of e) {
            // consume
          }
        }
      })()
      Readable.from([fs.readFileSync(path.join(dir, 'l.tar'))]).pipe(extract as unknown as NodeJS.WritableStream)
      await done
      const blobNames = g.all.map((b) => `blobs/sha256/${hex(b.desc.digest)}`).sort()
      expect(headers.map((h) => h.name)).to.deep.equal(['oci-layout', 'index.json', 'blobs/', 'blobs/sha256/', ...blobNames])
      for (const h of headers) {
        expect([h.mtime.getTime(), h.uid, h.gid, h.uname, h.gname]).to.deep.equal([0, 0, 0, '', ''])
        expect(h.mode).to.equal(h.type === 'directory' ? 0o755 : 0o644)
      }
    })
    it('leaves out blobs that index.json does not reach, and the ingest directory', async () => {
      const g = buildGraph()
      const dir = tmpdir()
      const s = await LayoutDirStore.open(path.join(dir, 'l'), {create: true})
      await pushAll(s, g.all, g.tags)
      const stray = blob('application/octet-stream', Buffer.from('stray'))
      await s.push(stray.desc, stray.bytes)
      const r = await writeLayoutTar(s, path.join(dir, 'l.tar'))
      expect(r.blobs).to.not.include(stray.desc.digest)
      expect(r.blobs).to.have.length(g.all.length)
      expect(String(spawnSync('tar', ['-tf', path.join(dir, 'l.tar')]).stdout)).to.not.match(/ingest|stray/)
    })
    it('is readable by GNU tar as a valid layout', async () => {
      const g = buildGraph()
      const dir = tmpdir()
      const s = await LayoutDirStore.open(path.join(dir, 'l'), {create: true})
      await pushAll(s, g.all, g.tags)
      await writeLayoutTar(s, path.join(dir, 'l.tar'))
      fs.mkdirSync(path.join(dir, 'x'))
      expect(spawnSync('tar', ['-xf', path.join(dir, 'l.tar'), '-C', path.join(dir, 'x')]).status).to.equal(0)
      const extracted = await LayoutDirStore.open(path.join(dir, 'x'))
      expect(await extracted.tags()).to.deep.equal(['idx', 'stable', 'v1'])
      expect((await readStream(await extracted.fetch(g.layerB.desc))).equals(g.layerB.bytes)).to.equal(true)
    })
    describe('when a blob of the layout is corrupted', () => {
      it('fails with DIGEST_MISMATCH and leaves no file behind', async () => {
        const g = buildGraph()
        const dir = tmpdir()
        const s = await LayoutDirStore.open(path.join(dir, 'l'), {create: true})
        await pushAll(s, g.all, g.tags)
        const f = s.blobPath(g.layerB.desc.digest)
        fs.chmodSync(f, 0o644)
        const bad = fs.readFileSync(f)
        bad[5] ^= 1
        fs.writeFileSync(f, bad)
        const out = path.join(dir, 'out')
        fs.mkdirSync(out)
        await expectCode(writeLayoutTar(s, path.join(out, 'l.tar')), 'DIGEST_MISMATCH')
        expect(fs.readdirSync(out)).to.deep.equal([])
      })
    })
    describe('when index.json names a missing blob', () => {
      it('fails with INVALID_LAYOUT before writing anything', async () => {
        const g = buildGraph()
        const dir = tmpdir()
        const s = await LayoutDirStore.open(path.join(dir, 'l'), {create: true})
        await pushAll(s, g.all, g.tags)
        fs.rmSync(s.blobPath(g.layerA.desc.digest))
        const out = path.join(dir, 'out')
        fs.mkdirSync(out)
        await expectCode(writeLayoutTar(s, path.join(out, 'l.tar')), 'INVALID_LAYOUT', new RegExp(`names ${g.layerA.desc.digest}`))
        expect(fs.readdirSync(out)).to.deep.equal([])
      })
    })
  })
})

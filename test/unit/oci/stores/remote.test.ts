import {expect} from 'chai'
import {Readable} from 'node:stream'

import {MAX_MANIFEST_BYTES, descriptorFor, readAll, sha256Digest, verifying} from '../../../../src/oci/content.js'
import {OciError} from '../../../../src/oci/errors.js'
import {EMPTY_DESCRIPTOR, EMPTY_JSON, MT} from '../../../../src/oci/media.js'
import {RemoteRepository, type RemoteRepositoryOptions, nextLink} from '../../../../src/oci/stores/remote.js'
import type {Descriptor} from '../../../../src/oci/target.js'
import {ARTIFACT_TYPE, artifact, blob, manifestOf, pushArtifact, randomBlob, streamOf} from '../../../helpers/artifacts.js'
import {expectCode} from '../../../helpers/expect-error.js'
import {type FaultProxy, startFaultProxy} from '../../../helpers/fault-proxy.js'
import {type RegistryHandle, repositoryFactory, startRegistry} from '../../../helpers/registry.js'

const MiB = 1024 * 1024

describe('RemoteRepository', function () {
  this.timeout(120_000)
  let reg: RegistryHandle
  let proxy: FaultProxy
  const make = repositoryFactory({retry: {baseDelayMs: 5, maxDelayMs: 20}, onWarning: () => {}})
  let n = 0

  /** A repository reached through the recording proxy (fresh name per call). */
  function repo(name = `t/repo${++n}`, opts: RemoteRepositoryOptions = {}): RemoteRepository {
    return make(`${proxy.host}/${name}`, opts)
  }

  function seen(method: string, path: RegExp): Array<{url: string; headers: Record<string, unknown>}> {
    return proxy.requests.filter((r) => r.method === method && path.test(r.url)) as never
  }

  before(async () => {
    reg = await startRegistry()
    proxy = await startFaultProxy(reg.url)
  })

  beforeEach(() => {
    proxy.requests.length = 0
    proxy.clearRules()
  })

  after(async () => {
    await proxy?.close()
    await reg?.stop()
  })

  describe('#push and #fetch (blobs)', () => {
    describe('when the blob is small', () => {
      it('uploads it with one POST and one PUT &digest=, and reads it back verified', async () => {
        const r = repo()
        const b = blob('small policy bytes')
        await r.push(b.desc, b.data)
        expect(seen('POST', /\/blobs\/uploads\/$/)).to.have.length(1)
        const puts = seen('PUT', /\/blobs\/uploads\//)
        expect(puts).to.have.length(1)
        expect(puts[0]!.url).to.match(/\?_state=[^&]+&digest=sha256%3A[a-f0-9]{64}$/)
        expect(seen('PATCH', /./)).to.have.length(0)
        expect((await readAll(await r.fetch(b.desc), 1024)).equals(b.data)).to.equal(true)
      })

      it('skips a blob the repository already has (HEAD only)', async () => {
        const r = repo()
        const b = blob('already there')
        await r.push(b.desc, b.data)
        proxy.requests.length = 0
        await r.push(b.desc, Readable.from([b.data]))
        expect(proxy.requests.map((q) => q.method)).to.deep.equal(['HEAD'])
      })
    })

    describe('when the blob is large (20 MiB)', () => {
      it('streams it in one PATCH with Content-Type octet-stream, then commits', async () => {
        const r = repo()
        const b = randomBlob(20 * MiB)
        await r.push(b.desc, streamOf(b.data))
        const patches = seen('PATCH', /\/blobs\/uploads\//)
        expect(patches).to.have.length(1)
        expect(patches[0]!.headers['content-type']).to.equal('application/octet-stream')
        expect(patches[0]!.headers['content-range']).to.equal(`0-${20 * MiB - 1}`)
        const commit = seen('PUT', /\/blobs\/uploads\//)
        expect(commit).to.have.length(1)
        expect(commit[0]!.headers['content-length']).to.equal('0')
        const back = await readAll(await r.fetch(b.desc), 21 * MiB)
        expect(sha256Digest(back)).to.equal(b.desc.digest)
      })

      it('sends PATCH chunks of chunkSize, each at the offset the registry returned, on the newest Location', async () => {
        const r = repo(undefined, {chunkSize: 4 * MiB})
        const b = randomBlob(20 * MiB + 123)
        await r.push(b.desc, streamOf(b.data, 1 * MiB + 7))
        const patches = seen('PATCH', /\/blobs\/uploads\//)
        expect(patches).to.have.length(6)
        expect(patches.map((p) => p.headers['content-range'])).to.deep.equal([
          `0-${4 * MiB - 1}`,
          `${4 * MiB}-${8 * MiB - 1}`,
          `${8 * MiB}-${12 * MiB - 1}`,
          `${12 * MiB}-${16 * MiB - 1}`,
          `${16 * MiB}-${20 * MiB - 1}`,
          `${20 * MiB}-${20 * MiB + 122}`,
        ])
        // distribution signs the offset into `_state`: every PATCH must use the Location of the previous answer.
        expect(new Set(patches.map((p) => p.url)).size).to.equal(6)
        expect(await r.exists(b.desc)).to.equal(true)
        expect(sha256Digest(await readAll(await r.fetch(b.desc), 21 * MiB))).to.equal(b.desc.digest)
      })

      it('hashes once when the source already verifies itself, and still refuses a corrupt source', async () => {
        const r = repo()
        const good = randomBlob(6 * MiB)
        await r.push(good.desc, verifying(streamOf(good.data), good.desc))
        expect(await r.exists(good.desc)).to.equal(true)
        const bad = randomBlob(6 * MiB)
        const corrupt = Buffer.from(bad.data)
        corrupt[100] ^= 0xff
        await expectCode(r.push(bad.desc, verifying(streamOf(corrupt), bad.desc)), OciError, 'DIGEST_MISMATCH')
        expect(await r.exists(bad.desc)).to.equal(false)
      })
    })

    describe('when the content does not match the descriptor', () => {
      for (const [label, opts, size] of [
        ['monolithic', {}, 1000],
        ['streamed', {}, 5 * MiB],
        ['chunked', {chunkSize: 1 * MiB}, 3 * MiB + 5],
      ] as const) {
        it(`refuses wrong bytes (${label}) with DIGEST_MISMATCH and commits nothing`, async () => {
          const r = repo(undefined, opts)
          const b = randomBlob(size)
          const wrong = Buffer.from(b.data)
          wrong[wrong.length - 1] ^= 1
          const e = await expectCode(r.push(b.desc, streamOf(wrong)), OciError, 'DIGEST_MISMATCH')
          expect(e.exit).to.equal(2)
          expect(await r.exists(b.desc)).to.equal(false)
          expect(seen('PUT', /digest=/)).to.have.length(0)
        })

        it(`refuses too few and too many bytes (${label}) with SIZE_MISMATCH`, async () => {
          const r = repo(undefined, opts)
          const b = randomBlob(size)
          await expectCode(r.push(b.desc, streamOf(b.data.subarray(0, size - 1))), OciError, 'SIZE_MISMATCH')
          await expectCode(r.push(b.desc, streamOf(Buffer.concat([b.data, Buffer.from('x')]))), OciError, 'SIZE_MISMATCH')
          expect(await r.exists(b.desc)).to.equal(false)
        })
      }

      it('cancels the upload session it opened (DELETE), leaving nothing behind', async () => {
        const r = repo()
        const b = randomBlob(5 * MiB)
        await expectCode(r.push(b.desc, streamOf(b.data.subarray(1))), OciError, 'SIZE_MISMATCH')
        expect(seen('DELETE', /\/blobs\/uploads\//)).to.have.length(1)
      })
    })

    describe('when the content cannot be read', () => {
      function failing(first: Buffer): Readable {
        let sent = false
        return new Readable({
          read() {
            if (sent) this.destroy(new Error('connection reset by peer'))
            else {
              sent = true
              this.push(first)
            }
          },
        })
      }

      for (const [label, size] of [
        ['monolithic', 300_000],
        ['streamed', 5 * MiB],
      ] as const) {
        it(`names the failure (${label}), stores nothing, and a second push succeeds`, async () => {
          const r = repo()
          const b = randomBlob(size)
          const e = await expectCode(r.push(b.desc, failing(b.data.subarray(0, 100_000))), OciError, 'NETWORK')
          expect(e.message).to.contain(`reading the content of ${b.desc.digest} to push failed: connection reset by peer`)
          expect(await r.exists(b.desc)).to.equal(false)
          await r.push(b.desc, streamOf(b.data))
          expect(await r.exists(b.desc)).to.equal(true)
        })
      }
    })

    describe('when the signal is already aborted', () => {
      it('rejects with ABORTED without a request', async () => {
        const r = repo()
        const b = blob('never sent')
        const ac = new AbortController()
        ac.abort()
        await expectCode(r.push(b.desc, b.data, {signal: ac.signal}), OciError, 'ABORTED')
        await expectCode(r.resolve('v1', {signal: ac.signal}), OciError, 'ABORTED')
        expect(proxy.requests).to.have.length(0)
      })
    })

    describe('when fetching', () => {
      it('refuses before reading when the registry announces more bytes than the descriptor says', async () => {
        const r = repo()
        const b = blob('0123456789')
        await r.push(b.desc, b.data)
        const e = await expectCode(r.fetch({...b.desc, size: 5}), OciError, 'SIZE_MISMATCH')
        expect(e.message).to.contain('serves 10 bytes')
      })

      it('errors at the end when the descriptor claims more bytes than arrive', async () => {
        const r = repo()
        const b = blob('0123456789')
        await r.push(b.desc, b.data)
        await expectCode(readAll(await r.fetch({...b.desc, size: 11}), 100), OciError, 'SIZE_MISMATCH')
      })

      it('says NOT_FOUND (exit 3) with the digest and repository for a missing blob', async () => {
        const r = repo('t/missing-blob')
        const b = blob('never pushed')
        const e = await expectCode(r.fetch(b.desc), OciError, 'NOT_FOUND')
        expect(e.exit).to.equal(3)
        expect(e.message).to.contain(b.desc.digest).and.contain(`${proxy.host}/t/missing-blob`)
      })

      it('resumes a download cut mid-body with a Range request and still verifies', async () => {
        const r = repo()
        const b = randomBlob(3 * MiB)
        await r.push(b.desc, b.data)
        proxy.addRule({method: 'GET', path: /\/blobs\/sha256:/, action: {cutResponseAfter: 1 * MiB}})
        const back = await readAll(await r.fetch(b.desc), 4 * MiB)
        expect(back.equals(b.data)).to.equal(true)
        const gets = seen('GET', /\/blobs\/sha256:/)
        expect(gets).to.have.length(2)
        expect(gets[1]!.headers.range).to.match(/^bytes=\d+-$/)
      })

      it('serves embedded data without a request, after checking it', async () => {
        const r = repo()
        const data = Buffer.from('{}')
        expect((await readAll(await r.fetch({...EMPTY_DESCRIPTOR, data: data.toString('base64')}), 10)).toString()).to.equal('{}')
        expect(proxy.requests).to.have.length(0)
        await expectCode(r.fetch({...EMPTY_DESCRIPTOR, data: Buffer.from('[]').toString('base64')}), OciError, 'DIGEST_MISMATCH')
      })
    })
  })

  describe('manifests', () => {
    describe('#push, #tag and #resolve', () => {
      it('pushes with Content-Type = mediaType and resolves by tag and digest with Accept on every request', async () => {
        const r = repo()
        const a = artifact(['layer one'])
        await pushArtifact(r, a, 'v1')
        const put = seen('PUT', /\/manifests\/sha256:/)
        expect(put[0]!.headers['content-type']).to.equal(MT.ociManifest)
        const typed = {...a.manifest.desc, artifactType: ARTIFACT_TYPE}
        expect(await r.resolve('v1')).to.deep.equal(typed)
        expect(await r.resolve(a.manifest.desc.digest)).to.deep.equal(typed)
        expect(await r.resolve(`${proxy.host}/${r.repository}:v1`)).to.deep.equal(typed)
        const manifestRequests = proxy.requests.filter((q) => /\/manifests\//.test(q.url) && (q.method === 'GET' || q.method === 'HEAD'))
        expect(manifestRequests.length).to.be.greaterThan(0)
        for (const q of manifestRequests) {
          for (const mt of [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerManifestList]) expect(String(q.headers.accept)).to.contain(mt)
        }
        const fetched = await readAll(await r.fetch(a.manifest.desc), MAX_MANIFEST_BYTES)
        expect(fetched.equals(a.manifest.data)).to.equal(true)
      })

      it('includes the artifactType when it knows the manifest bytes (HEAD cannot say it)', async () => {
        const r = repo()
        const a = artifact(['typed'])
        await pushArtifact(r, a, 'v1')
        expect((await r.resolve('v1')).artifactType).to.equal(ARTIFACT_TYPE)
        const fresh = repo(r.repository)
        expect((await fresh.resolve('v1')).artifactType).to.equal(undefined)
        await fresh.fetch(a.manifest.desc).then((s) => readAll(s, MAX_MANIFEST_BYTES))
        proxy.addRule({method: 'HEAD', path: /\/manifests\/v1$/, action: {status: 200, headers: {'content-type': MT.ociManifest}, body: ''}})
        expect((await repo(r.repository).resolve('v1')).artifactType).to.equal(ARTIFACT_TYPE)
      })

      it('tags without re-reading a manifest it just pushed, and reads it (verified) when it did not', async () => {
        const r = repo()
        const a = artifact(['x'])
        await pushArtifact(r, a)
        proxy.requests.length = 0
        await r.tag(a.manifest.desc, 'fast')
        expect(proxy.requests.map((q) => q.method)).to.deep.equal(['PUT'])
        const fresh = repo(r.repository)
        proxy.requests.length = 0
        await fresh.tag(a.manifest.desc, 'slow')
        expect(proxy.requests.map((q) => q.method)).to.deep.equal(['GET', 'PUT'])
        expect((await fresh.resolve('slow')).digest).to.equal(a.manifest.desc.digest)
      })

      it('pushes by tag in one request with #pushReference', async () => {
        const r = repo()
        const a = artifact(['y'])
        await r.push(a.config.desc, a.config.data)
        await r.push(a.layers[0]!.desc, a.layers[0]!.data)
        proxy.requests.length = 0
        await r.pushReference(a.manifest.desc, a.manifest.data, 'direct')
        expect(proxy.requests.map((q) => `${q.method} ${q.url}`)).to.deep.equal([`PUT /v2/${r.repository}/manifests/direct`])
        expect((await r.resolve('direct')).digest).to.equal(a.manifest.desc.digest)
      })

      it('says NOT_FOUND (exit 3) for an unknown tag, naming tag and repository', async () => {
        const r = repo('t/no-tags-here')
        const e = await expectCode(r.resolve('nope'), OciError, 'NOT_FOUND')
        expect(e.exit).to.equal(3)
        expect(e.message).to.contain('tag "nope" not found in').and.contain('t/no-tags-here')
      })

      it('refuses invalid tags locally (distribution answers them with a plain-text 404)', async () => {
        const r = repo()
        await expectCode(r.resolve('.bad'), OciError, 'INVALID_REFERENCE')
        await expectCode(r.tag(EMPTY_DESCRIPTOR, 'x'), OciError, 'UNSUPPORTED')
        expect(proxy.requests).to.have.length(0)
      })

      it('falls back to GET when HEAD does not carry the digest', async () => {
        const r = repo()
        const a = artifact(['z'])
        await pushArtifact(r, a, 'v1')
        proxy.addRule({method: 'HEAD', path: /\/manifests\/v1$/, action: {status: 200, headers: {'content-type': MT.ociManifest}, body: ''}})
        expect(await repo(r.repository).resolve('v1')).to.deep.equal({...a.manifest.desc, artifactType: ARTIFACT_TYPE})
        expect(seen('GET', /\/manifests\/v1$/)).to.have.length(1)
      })

      it('refuses a manifest over 4 MiB before sending it', async () => {
        const r = repo()
        const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20)
        const desc = descriptorFor(MT.ociManifest, big)
        const e = await expectCode(r.push(desc, big), OciError, 'MANIFEST_TOO_LARGE')
        expect(e.message).to.contain('4194304')
        expect(proxy.requests).to.have.length(0)
      })

      it('refuses a manifest whose bytes do not match its descriptor before sending it', async () => {
        const r = repo()
        const a = artifact(['w'])
        await expectCode(r.push({...a.manifest.desc, digest: sha256Digest('other')}, a.manifest.data), OciError, 'DIGEST_MISMATCH')
        expect(seen('PUT', /./)).to.have.length(0)
      })

      it('reports the registry’s refusal of a manifest whose blobs are missing (push blobs first)', async () => {
        const r = repo()
        const a = artifact(['never uploaded'])
        await r.push(a.config.desc, a.config.data)
        const e = await expectCode(r.push(a.manifest.desc, a.manifest.data), OciError, 'INVALID_MANIFEST')
        expect(e.message).to.contain('MANIFEST_BLOB_UNKNOWN')
        expect(e.suggestions!.join(' ')).to.contain('pushed to the same repository first')
        expect(e.exit).to.equal(1)
      })

      it('refuses a registry that stores different bytes than were sent (Docker-Content-Digest)', async () => {
        const r = repo()
        const a = artifact(['v'])
        await r.push(a.config.desc, a.config.data)
        await r.push(a.layers[0]!.desc, a.layers[0]!.data)
        proxy.addRule({method: 'PUT', path: /\/manifests\//, action: {status: 201, headers: {'docker-content-digest': sha256Digest('re-serialised')}, body: ''}})
        const e = await expectCode(r.push(a.manifest.desc, a.manifest.data), OciError, 'DIGEST_MISMATCH')
        expect(e.message).to.contain('changed its bytes')
      })

      it('refuses a manifest or blob fetched by digest whose Docker-Content-Digest names other content, although its bytes are right', async () => {
        const r = repo()
        const a = artifact(['lied about'])
        await pushArtifact(r, a, 'v1')
        const lie = `sha256:${'0'.repeat(64)}`
        proxy.addRule({method: 'GET', path: /\/manifests\/sha256:/, action: {setHeaders: {'docker-content-digest': lie}}})
        const e = await expectCode(repo(r.repository).fetch(a.manifest.desc), OciError, 'DIGEST_MISMATCH')
        expect(e.exit).to.equal(2)
        expect(e.message).to.contain(`says manifest ${a.manifest.desc.digest} is ${lie}`)
        proxy.addRule({method: 'GET', path: /\/blobs\/sha256:/, action: {setHeaders: {'docker-content-digest': lie}}})
        const b = await expectCode(repo(r.repository).fetch(a.layers[0]!.desc), OciError, 'DIGEST_MISMATCH')
        expect(b.message).to.contain(`says blob ${a.layers[0]!.desc.digest} is ${lie}`)
        // Without the lie the same fetches succeed.
        proxy.clearRules()
        expect((await readAll(await repo(r.repository).fetch(a.manifest.desc), MAX_MANIFEST_BYTES)).equals(a.manifest.data)).to.equal(true)
      })
    })

    describe('#delete', () => {
      it('deletes a manifest (and its tags) by digest', async () => {
        const r = repo()
        const a = artifact(['gone soon'])
        await pushArtifact(r, a, 'v1')
        await r.delete(a.manifest.desc)
        await expectCode(r.resolve('v1'), OciError, 'NOT_FOUND')
        await expectCode(r.delete(a.manifest.desc), OciError, 'NOT_FOUND')
      })
    })
  })

  describe('#tags', () => {
    it('lists every tag sorted client-side (the registry returns directory order)', async () => {
      const r = repo()
      const a = artifact(['tags'])
      await pushArtifact(r, a)
      for (const t of ['v10', 'b', 'A', 'v2', '_x', 'a.1']) await r.tag(a.manifest.desc, t)
      expect(await r.tags()).to.deep.equal(['A', '_x', 'a.1', 'b', 'v10', 'v2'])
    })

    it('leaves out referrers machinery tags (sha256-<hex>, .sig) unless asked for all', async () => {
      const r = repo()
      const a = artifact(['machinery'])
      await pushArtifact(r, a, 'v1')
      const hex = a.manifest.desc.digest.slice(7)
      for (const t of [`sha256-${hex}`, `sha256-${hex}.sig`, 'sha256-short']) await r.tag(a.manifest.desc, t)
      expect(await r.tags()).to.deep.equal(['sha256-short', 'v1'])
      expect(await r.tags({all: true})).to.deep.equal([`sha256-${hex}`, `sha256-${hex}.sig`, 'sha256-short', 'v1'])
    })

    it('follows a relative Link to the next page and merges pages without duplicates', async () => {
      const r = repo()
      const a = artifact(['paged'])
      await pushArtifact(r, a)
      for (const t of ['c', 'a', 'b']) await r.tag(a.manifest.desc, t)
      proxy.addRule({
        method: 'GET',
        path: /\/tags\/list$/,
        action: {
          status: 200,
          headers: {link: `</v2/${r.repository}/tags/list?last=b&n=2>; rel="next"`},
          body: JSON.stringify({name: r.repository, tags: ['b', 'a']}),
        },
      })
      expect(await r.tags()).to.deep.equal(['a', 'b', 'c'])
      expect(seen('GET', /\/tags\/list\?last=b&n=2$/)).to.have.length(1)
    })

    it('says NOT_FOUND for an unknown repository', async () => {
      const e = await expectCode(repo('t/never-created').tags(), OciError, 'NOT_FOUND')
      expect(e.message).to.contain('t/never-created')
    })
  })

  describe('#predecessors (referrers)', () => {
    async function withReferrers(r: RemoteRepository) {
      const subject = artifact(['the policy'])
      await pushArtifact(r, subject, 'v1')
      const sigLayer = blob('{"sig":1}', MT.sigstoreBundleV03)
      const apprLayer = blob('{"approval":1}', MT.sigstoreBundleV03)
      await r.push(sigLayer.desc, sigLayer.data)
      await r.push(apprLayer.desc, apprLayer.data)
      const sig = manifestOf([sigLayer], {artifactType: MT.sigstoreBundleV03, subject: subject.manifest.desc, annotations: {'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1'}})
      const appr = manifestOf([apprLayer], {artifactType: 'application/vnd.aibox.approval.v1', subject: subject.manifest.desc, annotations: {role: 'security'}})
      await r.push(sig.desc, sig.data)
      await r.push(appr.desc, appr.data)
      return {subject, sig, appr}
    }

    it('keeps both referrers in the sha256-<hex> tag index with artifactType and annotations, sorted by digest', async () => {
      const r = repo()
      const {subject, sig, appr} = await withReferrers(r)
      expect(r.referrersCapability).to.equal('tag')
      const list = await r.predecessors(subject.manifest.desc)
      const expected = [
        {...sig.desc, artifactType: MT.sigstoreBundleV03, annotations: {'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1'}},
        {...appr.desc, artifactType: 'application/vnd.aibox.approval.v1', annotations: {role: 'security'}},
      ].sort((x, y) => (x.digest < y.digest ? -1 : 1))
      expect(list).to.deep.equal(expected)
      // The index itself, as other tools (cosign, oras) read it.
      const tag = `sha256-${subject.manifest.desc.digest.slice(7)}`
      const indexDesc = await r.resolve(tag)
      expect(indexDesc.mediaType).to.equal(MT.ociIndex)
      const index = JSON.parse((await readAll(await r.fetch(indexDesc), MAX_MANIFEST_BYTES)).toString())
      expect(index).to.deep.equal({schemaVersion: 2, mediaType: MT.ociIndex, manifests: expected})
    })

    it('adds a referrer once however often it is pushed, and filters by artifactType', async () => {
      const r = repo()
      const {subject, sig} = await withReferrers(r)
      await r.push(sig.desc, sig.data)
      await repo(r.repository).push(sig.desc, sig.data)
      expect(await r.predecessors(subject.manifest.desc)).to.have.length(2)
      const only = await r.predecessors(subject.manifest.desc, {artifactType: MT.sigstoreBundleV03})
      expect(only.map((d) => d.digest)).to.deep.equal([sig.desc.digest])
      expect(await r.predecessors(subject.manifest.desc, {artifactType: 'application/none'})).to.deep.equal([])
    })

    it('asks the referrers API once per repository, then uses the cached choice', async () => {
      const r = repo()
      const {subject} = await withReferrers(r)
      proxy.requests.length = 0
      await r.predecessors(subject.manifest.desc)
      await r.predecessors(subject.manifest.desc)
      expect(seen('GET', /\/referrers\//)).to.have.length(0)
      const fresh = repo(r.repository)
      await fresh.predecessors(subject.manifest.desc)
      await fresh.predecessors(subject.manifest.desc)
      expect(seen('GET', /\/referrers\//)).to.have.length(1)
    })

    it('drops dangling entries (deleted referrers stay listed in the tag index)', async () => {
      const r = repo()
      const {subject, sig, appr} = await withReferrers(r)
      await r.delete(appr.desc)
      const list = await r.predecessors(subject.manifest.desc)
      expect(list.map((d) => d.digest)).to.deep.equal([sig.desc.digest])
      const index = JSON.parse((await readAll(await r.fetch(await r.resolve(`sha256-${subject.manifest.desc.digest.slice(7)}`)), MAX_MANIFEST_BYTES)).toString())
      expect(index.manifests).to.have.length(2)
    })

    it('fills in artifactType for entries an older writer left without it', async () => {
      const r = repo()
      const subject = artifact(['old writer'])
      await pushArtifact(r, subject)
      const layer = blob('legacy', MT.sigstoreBundleV03)
      await r.push(layer.desc, layer.data)
      const ref = manifestOf([layer], {artifactType: MT.sigstoreBundleV03})
      await r.push(ref.desc, ref.data)
      const index = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MT.ociIndex, manifests: [ref.desc]}))
      await r.pushReference(descriptorFor(MT.ociIndex, index), index, `sha256-${subject.manifest.desc.digest.slice(7)}`)
      expect(await r.predecessors(subject.manifest.desc, {artifactType: MT.sigstoreBundleV03})).to.deep.equal([{...ref.desc, artifactType: MT.sigstoreBundleV03}])
    })

    it('returns nothing when nothing refers to the subject', async () => {
      const r = repo()
      const a = artifact(['lonely'])
      await pushArtifact(r, a)
      expect(await r.predecessors(a.manifest.desc)).to.deep.equal([])
    })

    describe('when the registry offers the OCI 1.1 referrers API', () => {
      it('uses the API answer (200 + image index) and does not write the tag fallback', async () => {
        const r = repo()
        const subject = artifact(['api'])
        await pushArtifact(r, subject)
        const listed: Descriptor = {mediaType: MT.ociManifest, digest: sha256Digest('x'), size: 1, artifactType: 'application/a', annotations: {k: 'v'}}
        const body = JSON.stringify({schemaVersion: 2, mediaType: MT.ociIndex, manifests: [listed, {...listed, digest: sha256Digest('y'), artifactType: 'application/b'}]})
        proxy.addRule({method: 'GET', path: /\/referrers\//, times: 10, action: {status: 200, headers: {'content-type': MT.ociIndex}, body}})
        expect(await r.predecessors(subject.manifest.desc, {artifactType: 'application/a'})).to.deep.equal([listed])
        expect(r.referrersCapability).to.equal('api')
        const layer = blob('sig', MT.sigstoreBundleV03)
        await r.push(layer.desc, layer.data)
        const sig = manifestOf([layer], {subject: subject.manifest.desc})
        proxy.requests.length = 0
        await r.push(sig.desc, sig.data)
        expect(proxy.requests.filter((q) => /sha256-/.test(q.url))).to.have.length(0)
      })

      it('does not take a 200 with another Content-Type for the API (ggcr’s rule)', async () => {
        const r = repo()
        const subject = artifact(['not api'])
        await pushArtifact(r, subject)
        proxy.addRule({method: 'GET', path: /\/referrers\//, action: {status: 200, headers: {'content-type': 'application/json'}, body: '{"manifests":[]}'}})
        expect(await r.predecessors(subject.manifest.desc)).to.deep.equal([])
        expect(r.referrersCapability).to.equal('tag')
      })
    })
  })

  describe('#mount', () => {
    it('mounts a blob from another repository (201) without uploading it', async () => {
      const src = repo()
      const b = randomBlob(2 * MiB)
      await src.push(b.desc, b.data)
      const dst = repo()
      proxy.requests.length = 0
      expect(await dst.mount(b.desc, src.repository)).to.equal(true)
      expect(proxy.requests.map((q) => q.method)).to.deep.equal(['POST'])
      expect(proxy.requests[0]!.url).to.contain(`mount=${encodeURIComponent(b.desc.digest)}`).and.contain(`from=${encodeURIComponent(src.repository)}`)
      expect(await dst.exists(b.desc)).to.equal(true)
    })

    it('cancels the session the registry opens when it cannot mount (202)', async () => {
      const dst = repo()
      const b = blob('not in the source')
      expect(await dst.mount(b.desc, 't/empty-source')).to.equal(false)
      expect(seen('DELETE', /\/blobs\/uploads\//)).to.have.length(1)
      expect(await dst.exists(b.desc)).to.equal(false)
    })

    it('uploads into that session when given the content', async () => {
      const dst = repo()
      const b = randomBlob(5 * MiB)
      expect(await dst.mount(b.desc, 't/empty-source', {getContent: async () => streamOf(b.data)})).to.equal(false)
      expect(seen('POST', /\/blobs\/uploads\//)).to.have.length(1)
      expect(await dst.exists(b.desc)).to.equal(true)
    })
  })

  describe('when the registry is unreachable', () => {
    it('fails with NETWORK (exit 4) and says what to check', async () => {
      const r = make('127.0.0.1:1/t/x', {retry: {attempts: 1}})
      const e = await expectCode(r.resolve('v1'), OciError, 'NETWORK')
      expect(e.exit).to.equal(4)
      expect(e.message).to.contain('connection refused by 127.0.0.1:1')
      expect(e.suggestions!.join(' ')).to.contain('is the registry running')
    })
  })

  describe('#nextLink', () => {
    it('reads rel="next" among several links and resolves it against the request URL', () => {
      const base = new URL('https://r.example/v2/x/tags/list?n=2')
      expect(nextLink('<https://o.example/a>; rel="prev", </v2/x/tags/list?last=b&n=2>; rel="next"', base)?.href).to.equal(
        'https://r.example/v2/x/tags/list?last=b&n=2',
      )
      expect(nextLink('</p2>; rel=next', base)?.href).to.equal('https://r.example/p2')
      expect(nextLink('</p2>; rel="prev"', base)).to.equal(undefined)
      expect(nextLink(undefined, base)).to.equal(undefined)
    })
  })

  describe('empty config', () => {
    it('uploads the 2-byte {} config as a real blob (registries require it in the repository)', async () => {
      const r = repo()
      await r.push(EMPTY_DESCRIPTOR, EMPTY_JSON)
      expect(await r.exists(EMPTY_DESCRIPTOR)).to.equal(true)
    })
  })
})

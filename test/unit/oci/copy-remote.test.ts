/**
 * The copy engine against a real registry behind the fault proxy: what it asks RemoteRepository
 * to do beyond the Target interface (push a root manifest under its tag in one request; restart a
 * streamed upload that failed half-way from a fresh read of the source).
 */
import {expect} from 'chai'

import {copy, descriptorFor, MemoryStore, packManifest, RemoteRepository} from '../../../src/oci/index.js'
import {type FaultProxy, startFaultProxy} from '../../helpers/fault-proxy.js'
import {buildGraph, pseudoRandom, pushAll, readStream} from '../../helpers/oci-fixtures.js'
import {type RegistryHandle, startRegistry} from '../../helpers/registry.js'
import {TrackingTarget} from '../../helpers/tracking-target.js'

describe('copy (to a RemoteRepository)', function () {
  this.timeout(120_000)
  let reg: RegistryHandle
  let proxy: FaultProxy
  let n = 0
  const open: RemoteRepository[] = []
  const repo = () => {
    const r = new RemoteRepository(`${proxy.host}/copy/repo${++n}`, {retry: {baseDelayMs: 5, maxDelayMs: 20}, onWarning: () => {}})
    open.push(r)
    return r
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
    for (const r of open) await r.close()
    await proxy?.close()
    await reg?.stop()
  })

  describe('when copying a tagged root without referrers', () => {
    it('pushes the root manifest under its tag in one request (no PUT by digest, no separate tag)', async () => {
      const g = buildGraph('copy-remote')
      const src = new MemoryStore()
      await src.push(g.config.desc, g.config.bytes)
      await src.push(g.layerA.desc, g.layerA.bytes)
      await src.push(g.layerB.desc, g.layerB.bytes)
      await src.push(g.manifest.desc, g.manifest.bytes)
      await src.tag(g.manifest.desc, 'v1')
      const dst = repo()
      await copy(src, 'v1', dst, 'stable')
      const puts = proxy.requests.filter((r) => r.method === 'PUT' && /\/manifests\//.test(r.url)).map((r) => r.url.replace(/^.*\/manifests\//, ''))
      expect(puts).to.deep.equal(['stable'])
      expect((await dst.resolve('stable')).digest).to.equal(g.manifest.desc.digest)
    })
  })

  describe('when copying with referrers', () => {
    it('tags the root only after its referrers are there', async () => {
      const g = buildGraph('copy-remote-refs')
      const src = new MemoryStore()
      await pushAll(src, g.all, g.tags)
      const dst = repo()
      await copy(src, 'v1', dst, 'v1', {referrers: true})
      const puts = proxy.requests.filter((r) => r.method === 'PUT' && /\/manifests\//.test(r.url)).map((r) => r.url.replace(/^.*\/manifests\//, ''))
      expect(puts.at(-1)).to.equal('v1')
      expect(puts).to.include(g.sig.desc.digest)
      expect((await dst.predecessors(g.manifest.desc)).map((d) => d.digest).sort()).to.deep.equal([g.sig.desc.digest, g.approval.desc.digest].sort())
    })
  })

  describe('when a streamed upload is cut half-way', () => {
    it('restarts it from a fresh read of the source (reopen) and the copy succeeds', async () => {
      const data = pseudoRandom(6 * 1024 * 1024, 'reopen')
      const layer = descriptorFor('application/octet-stream', data)
      const mem = new MemoryStore()
      const m = packManifest({artifactType: 'application/vnd.example+json', layers: [layer]})
      await mem.push({mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2}, Buffer.from('{}'))
      await mem.push(layer, data)
      await mem.push(m.descriptor, m.bytes)
      await mem.tag(m.descriptor, 'big')
      const src = new TrackingTarget(mem)
      proxy.addRule({method: 'PATCH', path: /\/blobs\/uploads\//, times: 1, action: {reset: true}})
      const dst = repo()
      await copy(src, 'big', dst, 'big')
      expect(proxy.requests.filter((r) => r.method === 'PATCH' && r.outcome === 'reset')).to.have.length(1)
      expect(src.count('fetch', layer.digest)).to.equal(2)
      expect((await readStream(await dst.fetch(layer))).equals(data)).to.equal(true)
    })
  })
})

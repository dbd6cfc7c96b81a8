/**
 * The referrers tag fallback under a racing writer (RemoteRepository.addToFallbackIndex). On a
 * registry without the referrers API every referrer is added by rewriting one `sha256-<hex>`
 * index, and registries have no conditional write. Here a concurrent writer that read the index
 * before our write puts its stale copy back just after our write was read back, exactly the
 * interleaving that lost a signature in the 20-push load test.
 */
import {expect} from 'chai'

import {RemoteRepository} from '../../../../src/oci/index.js'
import {artifact, pushArtifact} from '../../../helpers/artifacts.js'
import {type FaultProxy, startFaultProxy} from '../../../helpers/fault-proxy.js'
import {type RegistryHandle, startRegistry} from '../../../helpers/registry.js'

describe('RemoteRepository referrers tag fallback', function () {
  this.timeout(120_000)
  let reg: RegistryHandle
  let proxy: FaultProxy
  const open: RemoteRepository[] = []
  const repo = (host: string) => {
    const r = new RemoteRepository(`${host}/race/repo`, {onWarning: () => {}})
    open.push(r)
    return r
  }

  before(async () => {
    reg = await startRegistry()
    proxy = await startFaultProxy(reg.url)
  })
  after(async () => {
    for (const r of open) await r.close()
    await proxy?.close()
    await reg?.stop()
  })

  describe('when another writer puts back a stale index right after ours was read back', () => {
    it('notices during the settle checks and merges its entry in again: no referrer is lost', async () => {
      const direct = repo(reg.host)
      const subject = await pushArtifact(direct, artifact(['the subject']), 'v1')
      // Referrer B is already listed; remember the index as a writer that read it now would hold it.
      const b = artifact(['referrer B'], {subject})
      await pushArtifact(direct, b)
      const tag = `sha256-${subject.digest.slice(7)}`
      const staleIndex = await direct.resolve(tag)
      const staleBytes = Buffer.concat(await (await direct.fetch(staleIndex)).toArray())
      expect((await direct.predecessors(subject)).map((d) => d.digest)).to.deep.equal([b.manifest.desc.digest])
      // A is added through the proxy; 50 ms after its index PUT, the stale writer puts {B} back.
      let restored = false
      proxy.addRule({
        method: 'PUT',
        path: new RegExp(`/manifests/${tag}$`),
        action: {
          then: () =>
            setTimeout(() => {
              void direct.pushReference(staleIndex, staleBytes, tag).then(() => (restored = true))
            }, 50),
        },
      })
      const a = artifact(['referrer A'], {subject})
      await pushArtifact(repo(proxy.host), a)
      expect(restored, 'the stale writer ran').to.equal(true)
      const listed = (await direct.predecessors(subject)).map((d) => d.digest).sort()
      expect(listed).to.deep.equal([a.manifest.desc.digest, b.manifest.desc.digest].sort())
      // The index was read again after the stale write (the settle checks), and written again.
      expect(proxy.requests.filter((r) => r.method === 'PUT' && r.url.endsWith(tag))).to.have.length(2)
    })
  })
})

import {expect} from 'chai'

import {SEAL_PREDICATE_TYPE, type SealPredicate, packSeal, parseSealPredicate, verifySeal} from '../../../src/distribute/index.js'
import {VerificationError} from '../../../src/errors.js'
import {MT, MemoryStore, descriptorFor, packManifest} from '../../../src/oci/index.js'
import {DeterministicKeySigner, signStatement} from '../../../src/sign/index.js'
import {loadTrustPolicy} from '../../../src/trust/index.js'
import {expectCode, expectCodeSync} from '../../helpers/expect-error.js'
import {privateKey, publicKey} from '../../helpers/policy-fixtures.js'
import {TESTDATA} from '../../helpers/cli.js'
import path from 'node:path'

const D = (c: string) => `sha256:${c.repeat(64)}`
const predicate = (): SealPredicate => ({
  exportedAt: '2024-01-01T00:00:00Z',
  exporter: 'me@host',
  tool: 'aibox-policy 0.1.0',
  artifacts: [
    {digest: D('a'), mediaType: MT.ociManifest, size: 10, kind: 'policy', tags: ['1.0.0'], source: 'r.example/p/org:1.0.0', name: 'org', version: '1.0.0', tier: 'org'},
    {digest: D('b'), mediaType: MT.ociManifest, size: 11, kind: 'referrer', tags: [`sha256-${'b'.repeat(64)}.ref`], subject: D('a')},
  ],
})

async function sealIn(store: MemoryStore, p: SealPredicate, key = 'carol') {
  const seal = await packSeal(p, new DeterministicKeySigner(await privateKey(key)))
  for (const b of seal.blobs) await store.push(b.desc, b.bytes)
  await store.push(seal.manifest.desc, seal.manifest.bytes)
  return seal.manifest.desc
}

describe('seal', () => {
  describe('parseSealPredicate', () => {
    it('accepts a well-formed predicate', () => {
      expect(parseSealPredicate(predicate(), 'x').artifacts).to.have.length(2)
    })
    it('accepts the tenant of a policy and refuses one that is not a non-empty string (README "Tenants")', () => {
      const p = predicate()
      p.artifacts[0]!.tenant = 'acme'
      expect(parseSealPredicate(p, 'x').artifacts[0]!.tenant).to.equal('acme')
      const bad = predicate() as unknown as {artifacts: Array<Record<string, unknown>>}
      bad.artifacts[0]!.tenant = 42
      expectCodeSync(() => parseSealPredicate(bad, 'seal X'), VerificationError, 'SEAL_INVALID', /artifacts\[0\]\.tenant is not a non-empty string/)
    })
    it('lists every problem of a malformed one at once', () => {
      const bad = predicate() as unknown as {exportedAt: string; artifacts: Array<Record<string, unknown>>}
      bad.exportedAt = 'yesterday'
      bad.artifacts[0]!.kind = 'other'
      bad.artifacts[1]!.tags = ['1.0.0']
      bad.artifacts.push({...bad.artifacts[0]!, kind: 'policy', tags: ['2.0.0']})
      delete bad.artifacts[1]!.subject
      const err = expectCodeSync(() => parseSealPredicate(bad, 'seal X'), VerificationError, 'SEAL_INVALID')
      expect(err.message).to.contain('exportedAt is not an RFC 3339 date-time')
      expect(err.message).to.contain('artifacts[0].kind is not one of policy, referrer, legacy-signature')
      expect(err.message).to.contain(`artifacts[2].digest ${D('a')} is listed twice`)
      expect(err.message).to.contain('artifacts[1].tags: tag "1.0.0" is also given to')
      expect(err.message).to.contain('artifacts[1].subject is missing')
    })
  })

  describe('verifySeal', () => {
    it('verifies the signature and returns subjects and predicate', async () => {
      const store = new MemoryStore()
      const desc = await sealIn(store, predicate())
      const v = await verifySeal(store, desc, {keys: [publicKey('carol')]})
      expect(v.subjects).to.deep.equal([D('a'), D('b')])
      expect(v.signer.keyId).to.equal(publicKey('carol').keyId)
    })
    describe('when the seal is not what it claims', () => {
      it('refuses another predicate type, a manifest of another artifactType, and subjects that differ from the artifacts', async () => {
        const store = new MemoryStore()
        const signer = new DeterministicKeySigner(await privateKey('carol'))
        const pack = async (bundle: unknown, artifactType: string = MT.seal) => {
          const bytes = Buffer.from(JSON.stringify(bundle))
          const layer = descriptorFor(MT.sigstoreBundleV03, bytes)
          const m = packManifest({artifactType, layers: [layer]})
          await store.push({mediaType: MT.ociEmpty, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2}, Buffer.from('{}'))
          await store.push(layer, bytes)
          await store.push(m.descriptor, m.bytes)
          return m.descriptor
        }
        const p = predicate()
        const other = await signStatement({subjects: [{digest: D('a')}, {digest: D('b')}], predicateType: 'https://example.com/other', predicate: p as never}, signer)
        await expectCode(verifySeal(store, await pack(other), {keys: [publicKey('carol')]}), VerificationError, 'SEAL_INVALID', /not https:\/\/aibox.dev\/attestations\/seal\/v1/)
        const right = await signStatement({subjects: [{digest: D('a')}, {digest: D('b')}], predicateType: SEAL_PREDICATE_TYPE, predicate: p as never}, signer)
        await expectCode(verifySeal(store, await pack(right, 'application/vnd.example.other'), {keys: [publicKey('carol')]}), VerificationError, 'SEAL_INVALID', /has artifactType application\/vnd.example.other/)
        const fewer = await signStatement({subjects: [{digest: D('a')}], predicateType: SEAL_PREDICATE_TYPE, predicate: p as never}, signer)
        await expectCode(verifySeal(store, await pack(fewer), {keys: [publicKey('carol')]}), VerificationError, 'SEAL_INVALID', /subjects and the predicate's artifacts differ/)
      })
      it('refuses a key the trust policy revoked, even with a valid signature', async () => {
        const store = new MemoryStore()
        const desc = await sealIn(store, predicate(), 'mallory')
        const trust = loadTrustPolicy(path.join(TESTDATA, 'trust', 'example.yaml'))
        await expectCode(verifySeal(store, desc, {trust}), VerificationError, 'SEAL_KEY_REFUSED', /key 'mallory' .* was revoked .*: laptop stolen/)
      })
    })
  })
})

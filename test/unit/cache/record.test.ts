import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {attachApproval, verifyPolicyArtifact} from '../../../src/distribute/index.js'
import {VerificationError} from '../../../src/errors.js'
import {LayoutDirStore, MemoryStore} from '../../../src/oci/index.js'
import {checkVersionChange, makeTrustStamp, openCache, recordVerified, trustStampHolds} from '../../../src/cache/index.js'
import {expectCode} from '../../helpers/expect-error.js'
import {KEYS_DIR, privateKey, publicKey, publish} from '../../helpers/policy-fixtures.js'
import {bundleOf, orgYaml} from '../../helpers/start-fixtures.js'
import {listFiles, tmpdir} from '../../helpers/tmp.js'

const REF = 'registry.example.com/policies/org:stable'

async function published(version: string, opts: {signers?: string[]; incident?: string; tag?: string; replace?: Array<[string, string]>} = {}) {
  const store = new MemoryStore()
  const signers = await Promise.all((opts.signers ?? ['alice']).map((n) => privateKey(n)))
  const packed = await publish(store, bundleOf(orgYaml(version, opts.replace ?? [])), signers, [opts.tag ?? 'stable'])
  if (opts.incident) {
    await attachApproval(store, packed.manifest, await privateKey('bob'), {role: 'security', note: 'roll back the broken egress list', incident: opts.incident})
  }
  const verified = await verifyPolicyArtifact(store, opts.tag ?? 'stable', {keys: [publicKey('alice'), publicKey('bob')]})
  return {store, packed, verified}
}

describe('cache: recordVerified', function () {
  this.timeout(60_000)

  describe('when the cache is empty', () => {
    it('copies the verified graph and its verified signature into the layout and records the entry', async () => {
      const cache = await openCache(path.join(tmpdir(), 'cache'))
      const {store, verified} = await published('1.4.0')
      const r = await recordVerified(cache, {reference: REF, source: store, verified, origin: 'registry'})
      expect(r.change).to.equal('new')
      expect(r.entry).to.include({reference: REF, tier: 'org', digest: verified.manifest.digest, version: '1.4.0', name: 'org-baseline', origin: 'registry'})
      expect(r.entry.signers).to.deep.equal([publicKey('alice').keyId])
      const state = cache.readState()
      expect(state.entries[REF]?.digest).to.equal(verified.manifest.digest)
      expect(cache.entryProblem(r.entry)).to.equal(undefined)
      // The cached copy verifies on its own, offline: the signature referrer came along.
      const layout = await LayoutDirStore.open(cache.layoutDir, {readOnly: true})
      const again = await verifyPolicyArtifact(layout, verified.manifest, {keys: [publicKey('alice')]})
      expect(again.contentDigest).to.equal(verified.contentDigest)
    })

    it('leaves referrers that did not verify behind (nothing unverified is stored)', async () => {
      const cache = await openCache(path.join(tmpdir(), 'cache'))
      const {store, packed} = await published('1.4.0')
      // mallory signs too, but only alice is trusted: mallory's signature must not reach the cache.
      const {attachSignature} = await import('../../../src/distribute/index.js')
      const extra = await attachSignature(store, packed.manifest, await privateKey('mallory'))
      const verified = await verifyPolicyArtifact(store, 'stable', {keys: [publicKey('alice')]})
      expect(verified.rejected.map((r) => r.referrer)).to.include(extra.descriptor.digest)
      await recordVerified(cache, {reference: REF, source: store, verified, origin: 'registry'})
      expect(fs.existsSync(cache.blobPath(extra.descriptor.digest))).to.equal(false)
      expect(fs.existsSync(cache.blobPath(verified.signatures[0]!.referrer))).to.equal(true)
    })

    it('records an import with its seal digest and observation time', async () => {
      const cache = await openCache(path.join(tmpdir(), 'cache'))
      const {store, verified} = await published('1.4.0')
      const sealed = new Date('2026-01-02T03:04:05Z')
      const seal = `sha256:${'ab'.repeat(32)}`
      const r = await recordVerified(cache, {reference: REF, source: store, verified, origin: 'import', sealDigest: seal, observedAt: sealed})
      expect(r.entry).to.include({origin: 'import', sealDigest: seal, checkedAt: sealed.toISOString()})
      expect(r.entry.trust).to.equal(undefined)
    })
  })

  describe('when a version is already cached', () => {
    it('accepts a higher version as an upgrade', async () => {
      const cache = await openCache(path.join(tmpdir(), 'cache'))
      const a = await published('1.4.0')
      await recordVerified(cache, {reference: REF, source: a.store, verified: a.verified, origin: 'registry'})
      const b = await published('1.10.0', {replace: [['requests_per_min: 60', 'requests_per_min: 50']]})
      const r = await recordVerified(cache, {reference: REF, source: b.store, verified: b.verified, origin: 'registry'})
      expect(r.change).to.equal('upgrade')
      expect(r.previous?.version).to.equal('1.4.0')
      expect(cache.readState().entries[REF]?.version).to.equal('1.10.0')
    })

    it('refuses a lower version without an incident approval (exit 2) and keeps the cached entry', async () => {
      const cache = await openCache(path.join(tmpdir(), 'cache'))
      const b = await published('1.5.0', {replace: [['requests_per_min: 60', 'requests_per_min: 50']]})
      await recordVerified(cache, {reference: REF, source: b.store, verified: b.verified, origin: 'registry'})
      const a = await published('1.4.0')
      const err = await expectCode(recordVerified(cache, {reference: REF, source: a.store, verified: a.verified, origin: 'registry'}), VerificationError, 'POLICY_ROLLBACK')
      expect(err.message).to.contain('org-baseline 1.4.0').and.contain('older than the cached 1.5.0')
      expect(err.exit).to.equal(2)
      expect(cache.readState().entries[REF]?.version).to.equal('1.5.0')
    })

    it('refuses the same version with other content', async () => {
      const cache = await openCache(path.join(tmpdir(), 'cache'))
      const a = await published('1.4.0')
      await recordVerified(cache, {reference: REF, source: a.store, verified: a.verified, origin: 'registry'})
      const b = await published('1.4.0', {replace: [['requests_per_min: 60', 'requests_per_min: 50']]})
      const err = await expectCode(recordVerified(cache, {reference: REF, source: b.store, verified: b.verified, origin: 'registry'}), 'POLICY_ROLLBACK')
      expect(err.message).to.contain('a published version never changes')
    })

    it('accepts a lower version with a signed approval carrying an incident, and says so', async () => {
      const cache = await openCache(path.join(tmpdir(), 'cache'))
      const b = await published('1.5.0', {replace: [['requests_per_min: 60', 'requests_per_min: 50']]})
      await recordVerified(cache, {reference: REF, source: b.store, verified: b.verified, origin: 'registry'})
      const a = await published('1.4.0', {incident: 'INC-42'})
      const r = await recordVerified(cache, {reference: REF, source: a.store, verified: a.verified, origin: 'registry'})
      expect(r.change).to.equal('rollback')
      expect(r.rollback).to.include({from: '1.5.0', incident: 'INC-42'})
      expect(r.rollback?.signers).to.deep.equal([publicKey('bob').keyId])
      expect(cache.readState().entries[REF]?.rollback?.incident).to.equal('INC-42')
    })
  })

  describe('checkVersionChange', () => {
    it('does not count an approval without an incident', async () => {
      const b = await published('1.5.0', {replace: [['requests_per_min: 60', 'requests_per_min: 50']]})
      const store = new MemoryStore()
      const packed = await publish(store, bundleOf(orgYaml('1.4.0')), [await privateKey('alice')], ['stable'])
      await attachApproval(store, packed.manifest, await privateKey('bob'), {role: 'security', note: 'looks fine'})
      const older = await verifyPolicyArtifact(store, 'stable', {keys: [publicKey('alice'), publicKey('bob')]})
      const previous = {...(await import('../../../src/cache/record.js')).entryFor({reference: REF, verified: b.verified, origin: 'registry'})}
      expect(() => checkVersionChange(previous, older)).to.throw(VerificationError, /rollback refused/)
    })
  })
})

describe('cache: trust stamps', () => {
  it('holds while the files are unchanged, and not after an edit, another file, or a key expiry', () => {
    const dir = tmpdir()
    const trust = path.join(dir, 'trust.yaml')
    fs.writeFileSync(trust, 'a')
    const key = path.join(KEYS_DIR, 'alice.pub')
    const now = new Date('2026-01-01T00:00:00Z')
    const stamp = makeTrustStamp('trust', [trust, key], new Date('2026-06-01T00:00:00Z'))
    expect(trustStampHolds(stamp, {kind: 'trust', files: [trust]}, now)).to.equal(true)
    expect(trustStampHolds(stamp, {kind: 'keys', files: [trust]}, now)).to.equal(false)
    expect(trustStampHolds(stamp, {kind: 'trust', files: [path.join(dir, 'other.yaml')]}, now)).to.equal(false)
    expect(trustStampHolds(stamp, {kind: 'trust', files: [trust]}, new Date('2026-06-01T00:00:00Z'))).to.equal(false)
    fs.writeFileSync(trust, 'b')
    expect(trustStampHolds(stamp, {kind: 'trust', files: [trust]}, now)).to.equal(false)
    expect(listFiles(dir)).to.deep.equal(['trust.yaml'])
  })
})

import {expect} from 'chai'

import {
  APPROVAL_PREDICATE_TYPE,
  attachApproval,
  attachLegacySignature,
  attachSignature,
  legacySignatureTag,
  listPolicyReferrers,
  packSigstoreReferrer,
  verifyAttachments,
  verifyReferrers,
} from '../../../src/distribute/index.js'
import {ANNOTATION, LayoutDirStore, MemoryStore, MT, packManifest, parseManifest, readAll, type Descriptor, type ReadOnlyGraphTarget} from '../../../src/oci/index.js'
import {COSIGN_SIGN_PREDICATE_TYPE, cosignCompatibilityProblems, signSubjects} from '../../../src/sign/index.js'
import {expectCode} from '../../helpers/expect-error.js'
import {blob} from '../../helpers/oci-fixtures.js'
import {ORG_BASELINE, privateKey, publicKey, publish} from '../../helpers/policy-fixtures.js'

async function manifestJson(store: MemoryStore, d: Descriptor): Promise<Record<string, any>> {
  return JSON.parse((await readAll(await store.fetch(d), 1 << 20)).toString())
}

describe('policy referrers', function () {
  this.timeout(30_000)

  describe('#packSigstoreReferrer', () => {
    it('writes the referrer manifest in cosign v3’s exact shape and field order (cosign-formats.md §b)', async () => {
      const subject: Descriptor = {mediaType: MT.ociManifest, digest: `sha256:${'a'.repeat(64)}`, size: 123}
      const bundle = await signSubjects([{digest: subject.digest, annotations: {}}], await privateKey('alice'))
      const r = packSigstoreReferrer(bundle, subject, {predicateType: COSIGN_SIGN_PREDICATE_TYPE, created: new Date('2025-02-03T04:05:06.789Z')})
      const layer = r.blobs[1]!.desc
      expect(r.manifest.bytes.toString()).to.equal(
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",' +
          '"config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"},' +
          `"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","size":${layer.size},"digest":"${layer.digest}"}],` +
          '"annotations":{"dev.sigstore.bundle.content":"dsse-envelope","dev.sigstore.bundle.predicateType":"https://sigstore.dev/cosign/sign/v1","org.opencontainers.image.created":"2025-02-03T04:05:06Z"},' +
          `"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":123,"digest":"${subject.digest}"},` +
          '"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}',
      )
      expect(cosignCompatibilityProblems(bundle)).to.deep.equal([])
      const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope!.payload, 'base64').toString())
      expect(statement).to.deep.equal({_type: 'https://in-toto.io/Statement/v1', subject: [{digest: {sha256: 'a'.repeat(64)}, annotations: {}}], predicateType: COSIGN_SIGN_PREDICATE_TYPE, predicate: {}})
    })
  })

  describe('#attachSignature / #attachApproval / #listPolicyReferrers / #verifyReferrers', () => {
    it('attaches a signature and an approval that list and verify over the manifest digest', async () => {
      const store = new MemoryStore()
      const p = await publish(store, ORG_BASELINE, [await privateKey('alice')])
      const a = await attachApproval(store, p.manifest, await privateKey('bob'), {role: 'security', note: 'reviewed egress', ticket: 'SEC-1', incident: 'INC-7'}, {now: new Date('2025-01-01T00:00:00Z')})
      expect(cosignCompatibilityProblems(a.bundle)).to.deep.equal([])
      expect((await manifestJson(store, a.descriptor)).annotations[ANNOTATION.bundlePredicateType]).to.equal(APPROVAL_PREDICATE_TYPE)
      const records = await listPolicyReferrers(store, p.manifest)
      expect(records.map((r) => r.kind)).to.deep.equal(['sigstore-bundle', 'sigstore-bundle'])
      const v = verifyReferrers(records, p.manifest, [publicKey('alice'), publicKey('bob')])
      expect(v.signatures.map((s) => s.signer.name)).to.deep.equal(['alice'])
      expect(v.approvals).to.have.length(1)
      expect(v.approvals[0]).to.include({role: 'security', note: 'reviewed egress', ticket: 'SEC-1', incident: 'INC-7', approvedAt: '2025-01-01T00:00:00Z'})
      expect(v.approvals[0]!.signer.name).to.equal('bob')
      expect(v.rejected).to.deep.equal([])
    })
    describe('when the key is not the signer’s', () => {
      it('rejects the signature with SIGNATURE_INVALID', async () => {
        const store = new MemoryStore()
        const p = await publish(store, ORG_BASELINE, [await privateKey('alice')])
        const v = verifyReferrers(await listPolicyReferrers(store, p.manifest), p.manifest, [publicKey('bob')])
        expect(v.signatures).to.deep.equal([])
        expect(v.rejected.map((r) => r.code)).to.deep.equal(['SIGNATURE_INVALID'])
      })
    })
    describe('when a referrer signs another digest', () => {
      it('rejects it with SUBJECT_MISMATCH although the signature itself is valid', async () => {
        const store = new MemoryStore()
        const p = await publish(store, ORG_BASELINE, [])
        const other = `sha256:${'b'.repeat(64)}`
        const bundle = await signSubjects([{digest: other, annotations: {}}], await privateKey('alice'))
        const r = packSigstoreReferrer(bundle, p.manifest, {predicateType: COSIGN_SIGN_PREDICATE_TYPE, created: new Date()})
        for (const b of r.blobs) await store.push(b.desc, b.bytes)
        await store.push(r.manifest.desc, r.manifest.bytes)
        const v = verifyReferrers(await listPolicyReferrers(store, p.manifest), p.manifest, [publicKey('alice')])
        expect(v.signatures).to.deep.equal([])
        expect(v.rejected[0]!.code).to.equal('SUBJECT_MISMATCH')
      })
    })
    describe('when other referrers and dangling entries are there', () => {
      it('skips what is not a Sigstore bundle and tolerates a referrer whose manifest is gone', async () => {
        const store = new MemoryStore()
        const p = await publish(store, ORG_BASELINE, [await privateKey('alice')])
        const sbom = blob('application/spdx+json', Buffer.from('{"spdxVersion":"SPDX-2.3"}'))
        const other = packManifest({artifactType: 'application/spdx+json', layers: [sbom.desc], subject: p.manifest})
        await store.push(sbom.desc, sbom.bytes)
        await store.push(other.descriptor, other.bytes)
        const gone: Descriptor = {mediaType: MT.ociManifest, digest: `sha256:${'c'.repeat(64)}`, size: 10, artifactType: MT.sigstoreBundleV03}
        // A referrers tag index keeps entries of deleted manifests (registry-notes.md §8.11).
        const view: ReadOnlyGraphTarget = {
          location: store.location,
          resolve: (r, o) => store.resolve(r, o),
          exists: (d, o) => store.exists(d, o),
          fetch: (d, o) => store.fetch(d, o),
          predecessors: async (d, o) => [...(await store.predecessors(d, o)), gone],
        }
        const records = await listPolicyReferrers(view, p.manifest)
        expect(records.map((r) => r.kind).sort()).to.deep.equal(['dangling', 'other', 'sigstore-bundle'])
        const v = verifyReferrers(records, p.manifest, [publicKey('alice')])
        expect(v.signatures).to.have.length(1)
        expect(v.skipped.map((s) => s.code).sort()).to.deep.equal(['DANGLING_REFERRER', 'NOT_A_SIGNATURE'])
        expect(v.rejected).to.deep.equal([])
      })
    })
    describe('when an approval is signed but malformed', () => {
      it('rejects it with APPROVAL_INVALID', async () => {
        const store = new MemoryStore()
        const p = await publish(store, ORG_BASELINE, [])
        const {signStatement} = await import('../../../src/sign/index.js')
        const bundle = await signStatement({subjects: [{digest: p.manifest.digest}], predicateType: APPROVAL_PREDICATE_TYPE, predicate: {role: 7, note: ''}}, await privateKey('bob'))
        const r = packSigstoreReferrer(bundle, p.manifest, {predicateType: APPROVAL_PREDICATE_TYPE, created: new Date()})
        for (const b of r.blobs) await store.push(b.desc, b.bytes)
        await store.push(r.manifest.desc, r.manifest.bytes)
        const v = verifyReferrers(await listPolicyReferrers(store, p.manifest), p.manifest, [publicKey('bob')])
        expect(v.approvals).to.deep.equal([])
        expect(v.rejected[0]!.code).to.equal('APPROVAL_INVALID')
        expect(v.rejected[0]!.reason).to.match(/"role" is not a string.*"note" is empty.*"approvedAt" is missing/)
      })
    })
    describe('when an approval is created with bad fields', () => {
      it('refuses with INVALID_APPROVAL before signing anything', async () => {
        const store = new MemoryStore()
        const p = await publish(store, ORG_BASELINE, [])
        await expectCode(attachApproval(store, p.manifest, await privateKey('bob'), {role: '', note: 'x'}), 'INVALID_APPROVAL', /"role" is empty/)
        expect(await store.predecessors(p.manifest)).to.deep.equal([])
      })
    })
  })

  describe('#verifyAttachments', () => {
    it('lists and verifies signatures and approvals on an OCI layout directory in one call', async () => {
      const {tmpdir} = await import('../../helpers/tmp.js')
      const path = await import('node:path')
      const store = await LayoutDirStore.open(path.join(tmpdir(), 'layout'), {create: true})
      const p = await publish(store, ORG_BASELINE, [await privateKey('alice')])
      await attachApproval(store, p.manifest, await privateKey('bob'), {role: 'approver', note: 'ok'})
      const v = await verifyAttachments(store, p.manifest, [publicKey('alice'), publicKey('bob')])
      expect(v.signatures.map((s) => s.signer.name)).to.deep.equal(['alice'])
      expect(v.approvals.map((a) => [a.signer.name, a.role])).to.deep.equal([['bob', 'approver']])
    })
  })

  describe('#attachLegacySignature', () => {
    it('appends simple-signing layers to sha256-<hex>.sig without dropping earlier signatures, and they verify', async () => {
      const store = new MemoryStore()
      const p = await publish(store, ORG_BASELINE, [])
      await attachLegacySignature(store, p.manifest, await privateKey('alice'), {dockerReference: '127.0.0.1:5000/policies/org'})
      const second = await attachLegacySignature(store, p.manifest, await privateKey('bob'), {dockerReference: '127.0.0.1:5000/policies/org'})
      expect(second.tag).to.equal(legacySignatureTag(p.manifest.digest))
      expect(second.layers).to.equal(2)
      const sig = await store.resolve(second.tag)
      const m = parseManifest(await readAll(await store.fetch(sig), 1 << 20), sig)
      if (m.kind !== 'manifest') throw new Error('not a manifest')
      expect(m.manifest.config.mediaType).to.equal(MT.ociConfig)
      expect(m.manifest.layers.map((l) => l.mediaType)).to.deep.equal([MT.cosignSimpleSigning, MT.cosignSimpleSigning])
      const config = JSON.parse((await readAll(await store.fetch(m.manifest.config), 1 << 20)).toString())
      expect(config.rootfs).to.deep.equal({type: 'layers', diff_ids: m.manifest.layers.map((l) => l.digest)})
      const payload = JSON.parse((await readAll(await store.fetch(m.manifest.layers[0]!), 1 << 20)).toString())
      expect(payload).to.deep.equal({critical: {identity: {'docker-reference': '127.0.0.1:5000/policies/org'}, image: {'docker-manifest-digest': p.manifest.digest}, type: 'cosign container image signature'}, optional: null})
      const v = verifyReferrers(await listPolicyReferrers(store, p.manifest), p.manifest, [publicKey('alice'), publicKey('bob')])
      expect(v.signatures.map((s) => [s.format, s.signer.name])).to.deep.equal([
        ['cosign-legacy', 'alice'],
        ['cosign-legacy', 'bob'],
      ])
    })
  })

  describe('when a signature and an approval are attached', () => {
    it('keeps the signature a signature for trust purposes (predicate from the signed statement, not the annotation)', async () => {
      const store = new MemoryStore()
      const p = await publish(store, ORG_BASELINE, [])
      const sig = await attachSignature(store, p.manifest, await privateKey('alice'))
      expect((await manifestJson(store, sig.descriptor)).annotations[ANNOTATION.bundlePredicateType]).to.equal(COSIGN_SIGN_PREDICATE_TYPE)
    })
  })
})

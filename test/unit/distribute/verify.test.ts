import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {canonicalBytes, loadBundle, loadBundleText} from '../../../src/bundle/index.js'
import {attachSignature, packSigstoreReferrer, verifyPolicyArtifact} from '../../../src/distribute/index.js'
import {VerificationError} from '../../../src/errors.js'
import {ANNOTATION, LayoutDirStore, MemoryStore, MT} from '../../../src/oci/index.js'
import {COSIGN_SIGN_PREDICATE_TYPE, signSubjects} from '../../../src/sign/index.js'
import {loadTrustPolicy} from '../../../src/trust/index.js'
import {expectCode} from '../../helpers/expect-error.js'
import {ORG_BASELINE, KEYS_DIR, TEAM_ALPHA, forge, privateKey, publicKey, publish} from '../../helpers/policy-fixtures.js'
import {tmpdir} from '../../helpers/tmp.js'

const ORG_REF = '127.0.0.1:5000/policies/org'
const TEAM_REF = '127.0.0.1:5000/policies/teams/alpha'

function trustFile(): string {
  const file = path.join(tmpdir(), 'trust.yaml')
  fs.writeFileSync(
    file,
    `apiVersion: aibox.dev/v1
kind: TrustPolicy
metadata: {name: unit}
keys:
  alice: {path: ${path.join(KEYS_DIR, 'alice.pub')}, roles: [security]}
  bob: {path: ${path.join(KEYS_DIR, 'bob.pub')}, roles: [team-lead, approver]}
scopes:
  - name: org
    match: {registry: "127.0.0.1:*", repository: policies/org, tiers: [org]}
    require: {signatures: {security: 1}}
  - name: teams
    match: {repository: "policies/teams/*", tiers: [team]}
    require: {signatures: {team-lead: 1}}
`,
  )
  return file
}

describe('verifyPolicyArtifact', function () {
  this.timeout(30_000)

  describe('when the policy is signed by a trusted key', () => {
    it('returns the verified bundle, its canonical bytes, digests, signers and approvals', async () => {
      const store = new MemoryStore()
      const p = await publish(store, ORG_BASELINE, [await privateKey('alice')], ['stable'])
      const v = await verifyPolicyArtifact(store, 'stable', {keys: [publicKey('alice')]})
      expect(v.manifest.digest).to.equal(p.manifest.digest)
      expect(v.canonical.equals(p.canonical)).to.equal(true)
      expect(v.contentDigest).to.equal(loadBundle(ORG_BASELINE).digest)
      expect(v.bundle.digest).to.equal(v.contentDigest)
      expect([v.name, v.version, v.tier]).to.deep.equal(['org-baseline', '1.4.0', 'org'])
      expect(v.source?.toString()).to.equal(fs.readFileSync(ORG_BASELINE, 'utf8'))
      expect(v.signatures.map((s) => s.signer.name)).to.deep.equal(['alice'])
    })
    it('works on an OCI layout directory as well (any target)', async () => {
      const store = await LayoutDirStore.open(path.join(tmpdir(), 'layout'), {create: true})
      await publish(store, ORG_BASELINE, [await privateKey('alice')], ['1.4.0'])
      const v = await verifyPolicyArtifact(store, '1.4.0', {keys: [publicKey('alice')]})
      expect(v.version).to.equal('1.4.0')
    })
  })

  describe('when nothing signs the manifest', () => {
    it('refuses with NO_SIGNATURES (exit 2)', async () => {
      const store = new MemoryStore()
      await publish(store, ORG_BASELINE, [], ['stable'])
      const e = await expectCode(verifyPolicyArtifact(store, 'stable', {keys: [publicKey('alice')]}), VerificationError, 'NO_SIGNATURES')
      expect(e.exit).to.equal(2)
      expect(e.message).to.match(/has no signature/)
    })
  })

  describe('when the signer is not trusted', () => {
    it('refuses with SIGNATURE_INVALID naming why each signature failed', async () => {
      const store = new MemoryStore()
      await publish(store, ORG_BASELINE, [await privateKey('bob')], ['stable'])
      const e = await expectCode(verifyPolicyArtifact(store, 'stable', {keys: [publicKey('alice')]}), VerificationError, 'SIGNATURE_INVALID')
      expect(e.message).to.match(/does not verify with key 'alice'/)
    })
  })

  describe('when the only signature is over another digest', () => {
    it('refuses: the signature is valid but binds to something else', async () => {
      const store = new MemoryStore()
      const p = await publish(store, ORG_BASELINE, [], ['stable'])
      const bundle = await signSubjects([{digest: `sha256:${'d'.repeat(64)}`, annotations: {}}], await privateKey('alice'))
      const r = packSigstoreReferrer(bundle, p.manifest, {predicateType: COSIGN_SIGN_PREDICATE_TYPE, created: new Date()})
      for (const b of r.blobs) await store.push(b.desc, b.bytes)
      await store.push(r.manifest.desc, r.manifest.bytes)
      const e = await expectCode(verifyPolicyArtifact(store, 'stable', {keys: [publicKey('alice')]}), VerificationError, 'SIGNATURE_INVALID')
      expect(e.message).to.match(/do not include .*sha256:/)
    })
  })

  describe('when the layer was tampered with in the store', () => {
    it('refuses with DIGEST_MISMATCH as a VerificationError', async () => {
      const blobs = new Map<string, Buffer>()
      const store = new MemoryStore({blobs})
      const p = await publish(store, ORG_BASELINE, [await privateKey('alice')], ['stable'])
      const bytes = Buffer.from(blobs.get(p.layers[0]!.digest)!)
      bytes[10] ^= 0x01
      blobs.set(p.layers[0]!.digest, bytes)
      const e = await expectCode(verifyPolicyArtifact(store, 'stable', {keys: [publicKey('alice')]}), VerificationError, 'DIGEST_MISMATCH')
      expect(e.exit).to.equal(2)
    })
  })

  describe('when the artifact was packed inconsistently and signed anyway', () => {
    async function signedForgery(options: Parameters<typeof forge>[1]) {
      const store = new MemoryStore()
      const desc = await forge(store, options)
      await attachSignature(store, desc, await privateKey('alice'))
      await store.tag(desc, 'stable')
      return store
    }
    it('refuses a tier annotation that lies (ANNOTATION_MISMATCH)', async () => {
      const store = await signedForgery({override: {[ANNOTATION.tier]: 'project'}})
      await expectCode(verifyPolicyArtifact(store, 'stable', {keys: [publicKey('alice')]}), VerificationError, 'ANNOTATION_MISMATCH', /dev\.aibox\.policy\.tier is "project" but the signed content says "org"/)
    })
    it('refuses a tenant annotation that disagrees with the signed metadata.tenant, or names a tenant the content lacks', async () => {
      const text = fs.readFileSync(ORG_BASELINE, 'utf8').replace(/^ {2}tier: org$/m, '  tier: org\n  tenant: acme')
      const content = canonicalBytes(loadBundleText(text, 'acme.yaml').document)
      const lying = await signedForgery({content, override: {[ANNOTATION.tenant]: 'beta'}})
      await expectCode(verifyPolicyArtifact(lying, 'stable', {keys: [publicKey('alice')]}), VerificationError, 'ANNOTATION_MISMATCH', /dev\.aibox\.policy\.tenant is "beta" but the signed content says "acme"/)
      const added = await signedForgery({override: {[ANNOTATION.tenant]: 'acme'}})
      await expectCode(verifyPolicyArtifact(added, 'stable', {keys: [publicKey('alice')]}), VerificationError, 'ANNOTATION_MISMATCH', /says no tenant/)
      const honest = await signedForgery({content, override: {[ANNOTATION.tenant]: 'acme'}})
      expect((await verifyPolicyArtifact(honest, 'stable', {keys: [publicKey('alice')]})).tenant).to.equal('acme')
    })
    it('refuses a version annotation that lies', async () => {
      const store = await signedForgery({override: {[ANNOTATION.version]: '9.9.9'}})
      await expectCode(verifyPolicyArtifact(store, 'stable', {keys: [publicKey('alice')]}), VerificationError, 'ANNOTATION_MISMATCH')
    })
    it('refuses a content digest annotation that differs (CONTENT_DIGEST_MISMATCH) or is missing', async () => {
      await expectCode(verifyPolicyArtifact(await signedForgery({override: {[ANNOTATION.policyDigest]: `sha256:${'e'.repeat(64)}`}}), 'stable', {keys: [publicKey('alice')]}), VerificationError, 'CONTENT_DIGEST_MISMATCH')
      await expectCode(verifyPolicyArtifact(await signedForgery({override: {[ANNOTATION.policyDigest]: null}}), 'stable', {keys: [publicKey('alice')]}), VerificationError, 'ANNOTATION_MISSING')
    })
    it('refuses a layer that is not RFC 8785 canonical JSON (NOT_CANONICAL)', async () => {
      const pretty = Buffer.from(JSON.stringify(JSON.parse(canonicalBytes(loadBundle(ORG_BASELINE).document).toString()), null, 2))
      const store = await signedForgery({content: pretty, override: {}})
      await expectCode(verifyPolicyArtifact(store, 'stable', {keys: [publicKey('alice')]}), VerificationError, 'NOT_CANONICAL')
    })
    it('refuses a layer that is not a valid bundle (POLICY_CONTENT_INVALID)', async () => {
      const store = await signedForgery({content: Buffer.from('{"apiVersion":"aibox.dev/v1","kind":"PolicyBundle"}')})
      await expectCode(verifyPolicyArtifact(store, 'stable', {keys: [publicKey('alice')]}), VerificationError, 'POLICY_CONTENT_INVALID')
    })
    it('refuses a source layer with other content (SOURCE_MISMATCH)', async () => {
      const store = await signedForgery({source: fs.readFileSync(TEAM_ALPHA)})
      await expectCode(verifyPolicyArtifact(store, 'stable', {keys: [publicKey('alice')]}), VerificationError, 'SOURCE_MISMATCH')
    })
    it('refuses an artifact that is not a policy (NOT_A_POLICY)', async () => {
      const store = await signedForgery({artifactType: 'application/vnd.example.other+json'})
      await expectCode(verifyPolicyArtifact(store, 'stable', {keys: [publicKey('alice')]}), VerificationError, 'NOT_A_POLICY')
    })
  })

  describe('with a trust policy', () => {
    it('accepts the org policy signed by security for the org repository, reporting the decision', async () => {
      const store = new MemoryStore()
      await publish(store, ORG_BASELINE, [await privateKey('alice')], ['stable'])
      const v = await verifyPolicyArtifact(store, 'stable', {trust: loadTrustPolicy(trustFile()), reference: `${ORG_REF}:stable`})
      expect(v.trust?.satisfied).to.equal(true)
      expect(v.trust?.scopes.map((s) => s.scope)).to.deep.equal(['org'])
    })
    it('refuses a reference no scope covers (TRUST_NO_SCOPE)', async () => {
      const store = new MemoryStore()
      await publish(store, ORG_BASELINE, [await privateKey('alice')], ['stable'])
      await expectCode(verifyPolicyArtifact(store, 'stable', {trust: loadTrustPolicy(trustFile()), reference: 'registry.other.com/policies/org:stable'}), VerificationError, 'TRUST_NO_SCOPE')
    })
    it('refuses when the signer lacks the role the scope needs (TRUST_NOT_SATISFIED)', async () => {
      const store = new MemoryStore()
      await publish(store, ORG_BASELINE, [await privateKey('bob')], ['stable'])
      await expectCode(verifyPolicyArtifact(store, 'stable', {trust: loadTrustPolicy(trustFile()), reference: ORG_REF}), VerificationError, 'TRUST_NOT_SATISFIED', /needs 1 distinct 'security' signature/)
    })
    it('takes the tier from the signed content: an org policy under the teams repository matches no scope', async () => {
      const store = new MemoryStore()
      // The team lead signs an org-tier bundle and publishes it where team policies live.
      await publish(store, ORG_BASELINE, [await privateKey('bob')], ['stable'])
      await expectCode(verifyPolicyArtifact(store, 'stable', {trust: loadTrustPolicy(trustFile()), reference: TEAM_REF}), VerificationError, 'TRUST_NO_SCOPE', /tier org/)
      const team = new MemoryStore()
      await publish(team, TEAM_ALPHA, [await privateKey('bob')], ['stable'])
      const v = await verifyPolicyArtifact(team, 'stable', {trust: loadTrustPolicy(trustFile()), reference: TEAM_REF})
      expect(v.tier).to.equal('team')
    })
    it('ignores a tier annotation claiming another tier: it is refused as inconsistent, never trusted', async () => {
      const store = new MemoryStore()
      const desc = await forge(store, {override: {[ANNOTATION.tier]: 'team'}})
      await attachSignature(store, desc, await privateKey('bob'))
      await expectCode(verifyPolicyArtifact(store, desc, {trust: loadTrustPolicy(trustFile()), reference: TEAM_REF}), VerificationError, 'ANNOTATION_MISMATCH')
    })
  })

  describe('when called without keys or trust', () => {
    it('refuses with KEYS_OR_TRUST (exit 1)', async () => {
      const store = new MemoryStore()
      const e = await expectCode(verifyPolicyArtifact(store, 'x', {}), Error as never, 'KEYS_OR_TRUST')
      expect((e as unknown as {exit: number}).exit).to.equal(1)
    })
  })

  describe('when the reference is a digest of something else', () => {
    it('refuses an image index as NOT_A_POLICY', async () => {
      const store = new MemoryStore()
      const p = await publish(store, ORG_BASELINE, [await privateKey('alice')])
      const {packIndex} = await import('../../../src/oci/index.js')
      const idx = packIndex({manifests: [p.manifest]})
      await store.push(idx.descriptor, idx.bytes)
      await expectCode(verifyPolicyArtifact(store, idx.descriptor.digest, {keys: [publicKey('alice')]}), VerificationError, 'NOT_A_POLICY')
      expect(MT.ociIndex).to.equal(idx.descriptor.mediaType)
    })
  })
})

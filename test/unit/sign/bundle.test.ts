import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {X509Certificate, createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {bundleFromJSON} from '@sigstore/bundle'

import {
  BUNDLE_V03_MEDIA_TYPE,
  COSIGN_SIGN_PREDICATE_TYPE,
  IN_TOTO_PAYLOAD_TYPE,
  type PrivateKeyInfo,
  type SerializedBundle,
  cosignCompatibilityProblems,
  generateKeyPair,
  parsePrivateKey,
  signDsseBundle,
  signMessageBundle,
  signStatement,
  signSubjects,
  verifyBundle,
} from '../../../src/sign/index.js'
import {tmpdir} from '../../helpers/tmp.js'
import {expectCodeSync} from '../../helpers/expect-error.js'

const data = Buffer.from('apiVersion: aibox.dev/v1\nkind: PolicyBundle\n')
const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v))
const payloadOf = (b: SerializedBundle) => JSON.parse(Buffer.from(b.dsseEnvelope!.payload, 'base64').toString())

describe('sign/bundle', () => {
  for (const alg of ['ecdsa-p256', 'ed25519'] as const) {
    describe(`with an ${alg} key`, () => {
      const key: PrivateKeyInfo = generateKeyPair(alg)
      const other = generateKeyPair(alg)

      describe('#signSubjects', () => {
        it('writes the bundle cosign v3 writes for --key (checklist of cosign-formats.md)', async () => {
          const b = await signSubjects([{digest}], key)
          expect(Object.keys(b)).to.deep.equal(['mediaType', 'verificationMaterial', 'dsseEnvelope'])
          expect(b.mediaType).to.equal(BUNDLE_V03_MEDIA_TYPE)
          expect(b.verificationMaterial).to.deep.equal({publicKey: {hint: key.public.hint}})
          expect(key.public.hint).to.equal(createHash('sha256').update(key.public.spki).digest('base64'))
          const env = b.dsseEnvelope!
          expect(Object.keys(env).sort()).to.deep.equal(['payload', 'payloadType', 'signatures'])
          expect(env.payloadType).to.equal(IN_TOTO_PAYLOAD_TYPE)
          expect(env.signatures).to.have.length(1)
          expect(Object.keys(env.signatures[0])).to.deep.equal(['sig']) // no keyid, as cosign writes
          const st = payloadOf(b)
          expect(Object.keys(st)).to.deep.equal(['_type', 'subject', 'predicateType', 'predicate'])
          expect(st).to.deep.equal({
            _type: 'https://in-toto.io/Statement/v1',
            subject: [{digest: {sha256: digest.slice(7)}}],
            predicateType: COSIGN_SIGN_PREDICATE_TYPE,
            predicate: {},
          })
          expect(cosignCompatibilityProblems(b, {fingerprint: key.public.fingerprint})).to.deep.equal([])
          expect(() => bundleFromJSON(b)).to.not.throw()
        })
        it('puts the SSH fingerprint in the keyid on request, never the hint', async () => {
          const b = await signSubjects([{digest}], key, {keyid: 'fingerprint'})
          expect(b.dsseEnvelope!.signatures[0].keyid).to.equal(key.public.fingerprint)
          expect(cosignCompatibilityProblems(b, {fingerprint: key.public.fingerprint})).to.deep.equal([])
          expect(verifyBundle(b, {keys: [key.public], artifact: data}).warnings).to.deep.equal([])
        })
      })

      describe('#verifyBundle', () => {
        describe('when nothing was changed', () => {
          it('returns the statement and the signer, bound to the subject', async () => {
            const b = await signSubjects([{digest, name: 'policy.yaml'}], key)
            const r = verifyBundle(JSON.stringify(b), {keys: [other.public, {...key.public, name: 'alice'}], artifact: data})
            expect(r.signers).to.deep.equal([{keyId: key.public.keyId, name: 'alice', algorithm: alg, hint: key.public.hint, fingerprint: key.public.fingerprint}])
            expect(r.binding).to.deep.equal({kind: 'subject', digest})
            expect(r.predicateType).to.equal(COSIGN_SIGN_PREDICATE_TYPE)
            expect(r.bundle).to.deep.include({version: '0.3', content: 'dsse', keyMaterial: 'publicKey'})
          })
          it('checks a given subject digest without the artifact', async () => {
            const b = await signSubjects([{digest}], key)
            expect(verifyBundle(b, {keys: [key.public], subjectDigests: [digest]}).binding.kind).to.equal('subject')
            expectCodeSync(() => verifyBundle(b, {keys: [key.public], subjectDigests: [`sha256:${'0'.repeat(64)}`]}), 'SUBJECT_MISMATCH')
          })
        })
        describe('when the payload is tampered with', () => {
          it('refuses it (SIGNATURE_INVALID)', async () => {
            const b = clone(await signSubjects([{digest}], key))
            const st = payloadOf(b)
            st.predicate = {approved: true}
            b.dsseEnvelope!.payload = Buffer.from(JSON.stringify(st)).toString('base64')
            expectCodeSync(() => verifyBundle(b, {keys: [key.public], artifact: data}), 'SIGNATURE_INVALID', /does not verify/)
          })
        })
        describe('when the subject is swapped for another file', () => {
          it('refuses it (SIGNATURE_INVALID), and another file under a valid signature is SUBJECT_MISMATCH', async () => {
            const b = clone(await signSubjects([{digest}], key))
            const st = payloadOf(b)
            st.subject[0].digest.sha256 = createHash('sha256').update('evil').digest('hex')
            b.dsseEnvelope!.payload = Buffer.from(JSON.stringify(st)).toString('base64')
            expectCodeSync(() => verifyBundle(b, {keys: [key.public], artifact: Buffer.from('evil')}), 'SIGNATURE_INVALID')
            const good = await signSubjects([{digest}], key)
            expectCodeSync(() => verifyBundle(good, {keys: [key.public], artifact: Buffer.from('evil'), artifactName: 'evil.yaml'}), 'SUBJECT_MISMATCH', /do not include evil\.yaml's digest/)
          })
        })
        describe('when the signature is tampered with', () => {
          it('refuses it', async () => {
            const b = clone(await signSubjects([{digest}], key))
            const sig = Buffer.from(b.dsseEnvelope!.signatures[0].sig, 'base64')
            sig[sig.length - 5] ^= 1
            b.dsseEnvelope!.signatures[0].sig = sig.toString('base64')
            expectCodeSync(() => verifyBundle(b, {keys: [key.public], artifact: data}), 'SIGNATURE_INVALID')
          })
        })
        describe('when the key is not the signer’s', () => {
          it('refuses it, naming every key tried, even if the hint is forged', async () => {
            const b = clone(await signSubjects([{digest}], key))
            b.verificationMaterial.publicKey!.hint = other.public.hint
            expectCodeSync(() => verifyBundle(b, {keys: [{...other.public, name: 'bob'}]}), 'SIGNATURE_INVALID', new RegExp(`key 'bob' \\(${other.public.keyId}\\)`))
          })
        })
        describe('when the bundle is malformed', () => {
          it('refuses corrupt base64, two signatures, unknown media types and non-JSON', async () => {
            const b = await signSubjects([{digest}], key)
            const bad64 = clone(b)
            bad64.dsseEnvelope!.payload = `${bad64.dsseEnvelope!.payload.slice(0, 10)}!!${bad64.dsseEnvelope!.payload.slice(12)}`
            expectCodeSync(() => verifyBundle(bad64, {keys: [key.public]}), 'BUNDLE_INVALID', /dsseEnvelope\.payload is not base64/)
            const two = clone(b)
            two.dsseEnvelope!.signatures.push(clone(two.dsseEnvelope!.signatures[0]))
            expectCodeSync(() => verifyBundle(two, {keys: [key.public]}), 'BUNDLE_INVALID', /exactly one signature, found 2/)
            const mt = clone(b)
            mt.mediaType = 'application/vnd.dev.sigstore.bundle.v0.9+json'
            expectCodeSync(() => verifyBundle(mt, {keys: [key.public]}), 'BUNDLE_INVALID', /unsupported mediaType/)
            expectCodeSync(() => verifyBundle('{"mediaType":', {keys: [key.public]}), 'BUNDLE_INVALID', /not JSON/)
            const noSig = clone(b) as Record<string, any>
            delete noSig.dsseEnvelope.signatures
            expectCodeSync(() => verifyBundle(noSig, {keys: [key.public]}), 'BUNDLE_INVALID')
          })
        })
        describe('when the keyid is neither empty nor the fingerprint', () => {
          it('still verifies (the keyid is a hint) but warns that cosign would refuse it', async () => {
            const b = clone(await signSubjects([{digest}], key))
            ;(b.dsseEnvelope!.signatures[0] as {keyid?: string}).keyid = key.public.hint
            const r = verifyBundle(b, {keys: [key.public], artifact: data})
            expect(r.warnings.join()).to.match(/cosign and sigstore-go refuse/)
            expect(cosignCompatibilityProblems(b)).to.have.length(1)
          })
        })
      })

      describe('#signStatement', () => {
        it('signs any predicate (approvals, seals) with several subjects', async () => {
          const b = await signStatement(
            {subjects: [{digest}, {digest: `sha256:${'a'.repeat(64)}`, name: 'seal'}], predicateType: 'https://aibox.dev/attestations/policy-approval/v1', predicate: {role: 'approver', note: 'ok'}},
            key,
          )
          const r = verifyBundle(b, {keys: [key.public], subjectDigests: [`sha256:${'a'.repeat(64)}`]})
          expect(r.predicateType).to.equal('https://aibox.dev/attestations/policy-approval/v1')
          expect(r.statement!.predicate).to.deep.equal({role: 'approver', note: 'ok'})
        })
        it('refuses bad input early', async () => {
          for (const bad of [
            {subjects: [], predicateType: 'https://x/y'},
            {subjects: [{digest: 'sha256:xyz'}], predicateType: 'https://x/y'},
            {subjects: [{digest}], predicateType: 'not a uri'},
            {subjects: [{digest}], predicateType: 'https://x/y', predicate: [] as unknown as Record<string, unknown>},
          ]) {
            let threw = false
            try {
              await signStatement(bad, key)
            } catch {
              threw = true
            }
            expect(threw, JSON.stringify(bad)).to.equal(true)
          }
        })
      })

      describe('#signMessageBundle', () => {
        it('writes a v0.3 message-signature bundle that verifies only with the artifact', async () => {
          const b = await signMessageBundle(data, key)
          expect(b.mediaType).to.equal(BUNDLE_V03_MEDIA_TYPE)
          expect(b.messageSignature!.messageDigest).to.deep.equal({algorithm: 'SHA2_256', digest: createHash('sha256').update(data).digest('base64')})
          expect(verifyBundle(b, {keys: [key.public], artifact: data}).binding).to.deep.equal({kind: 'message-digest', digest})
          expectCodeSync(() => verifyBundle(b, {keys: [key.public]}), 'ARTIFACT_REQUIRED')
          expectCodeSync(() => verifyBundle(b, {keys: [key.public], artifact: Buffer.from('other')}), 'DIGEST_MISMATCH')
          expectCodeSync(() => verifyBundle(b, {keys: [other.public], artifact: data}), 'SIGNATURE_INVALID')
          // A forged digest that matches the other file still fails the signature.
          const forged = clone(b)
          forged.messageSignature!.messageDigest!.digest = createHash('sha256').update('other').digest('base64')
          expectCodeSync(() => verifyBundle(forged, {keys: [key.public], artifact: Buffer.from('other')}), 'SIGNATURE_INVALID')
        })
      })
    })
  }

  describe('older bundle versions and certificate key material', () => {
    it('verifies v0.1 / v0.2 media types and x509CertificateChain (≤ v0.2), pinning the certificate’s key', async () => {
      const dir = tmpdir()
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem'), '-subj', '/CN=signer', '-days', '1'], {stdio: 'ignore'})
      const key = await parsePrivateKey(fs.readFileSync(path.join(dir, 'k.pem'), 'utf8'), 'k.pem', {password: '', allowPlaintext: true})
      const certDer = new X509Certificate(fs.readFileSync(path.join(dir, 'c.pem'))).raw.toString('base64')
      const b = await signSubjects([{digest}], key)
      const v01 = {...clone(b), mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1'}
      const v02chain = {...clone(b), mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.2', verificationMaterial: {x509CertificateChain: {certificates: [{rawBytes: certDer}]}}}
      const v03cert = {...clone(b), verificationMaterial: {certificate: {rawBytes: certDer}}}
      expect(verifyBundle(v01, {keys: [key.public], artifact: data}).bundle!.version).to.equal('0.1')
      const r = verifyBundle(v02chain, {keys: [key.public], artifact: data})
      expect([r.bundle!.version, r.bundle!.keyMaterial]).to.deep.equal(['0.2', 'x509CertificateChain'])
      expect(r.warnings.join()).to.match(/certificate chain and validity were not checked/)
      expect(verifyBundle(v03cert, {keys: [key.public], artifact: data}).bundle!.keyMaterial).to.equal('certificate')
      // v0.3 forbids the chain form; a certificate whose key is not trusted is refused before any signature check.
      expectCodeSync(() => verifyBundle({...v02chain, mediaType: BUNDLE_V03_MEDIA_TYPE}, {keys: [key.public]}), 'BUNDLE_INVALID', /verificationMaterial/)
      expectCodeSync(() => verifyBundle(v03cert, {keys: [generateKeyPair().public]}), 'KEY_MISMATCH', /certificate "CN=signer"/)
    })
  })

  describe('#signDsseBundle', () => {
    it('signs a non-statement payload that binds by payload equality', async () => {
      const key = generateKeyPair()
      const b = await signDsseBundle(Buffer.from('hello'), 'text/plain', key)
      expect(verifyBundle(b, {keys: [key.public], artifact: Buffer.from('hello')}).binding.kind).to.equal('payload')
      expectCodeSync(() => verifyBundle(b, {keys: [key.public], artifact: Buffer.from('bye')}), 'PAYLOAD_MISMATCH')
      expect(cosignCompatibilityProblems(b).join()).to.match(/payloadType is "text\/plain"/)
    })
  })

  describe('#cosignCompatibilityProblems', () => {
    it('names unknown fields, extra statement fields and message-signature bundles', async () => {
      const key = generateKeyPair()
      const b = clone(await signSubjects([{digest}], key)) as Record<string, any>
      b.extra = 1
      const st = payloadOf(b as SerializedBundle)
      st.comment = 'x'
      b.dsseEnvelope.payload = Buffer.from(JSON.stringify(st)).toString('base64')
      const problems = cosignCompatibilityProblems(b)
      expect(problems).to.include('bundle has a field unknown to protojson: extra')
      expect(problems).to.include('statement has a field unknown to protojson: comment')
      expect(cosignCompatibilityProblems(await signMessageBundle(data, key)).join()).to.match(/no dsseEnvelope/)
    })
  })
})

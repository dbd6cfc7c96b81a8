import {expect} from 'chai'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {bundleFromJSON} from '@sigstore/bundle'

import {VerificationError} from '../../../src/errors.js'
import {
  type KeylessSignature,
  KeylessSigner,
  type KeylessThresholds,
  type KeylessTrust,
  type KeylessTrustSources,
  type SerializedBundle,
  generateKeyPair,
  loadKeylessTrust,
  signSubjects,
  verifyBundle,
  verifyKeylessBundle,
} from '../../../src/sign/index.js'
import {expectCodeSync} from '../../helpers/expect-error.js'
import {MOCK_ISSUER, type MockSigstore, type TrustFiles, startMockSigstore} from '../../helpers/sigstore-mock.js'
import {tmpdir} from '../../helpers/tmp.js'

const SUBJECT = 'https://ci.example.test/workflows/release'
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v))
const digest = `sha256:${createHash('sha256').update('policy').digest('hex')}`

function trust(sources: KeylessTrustSources, thresholds: Partial<KeylessThresholds> = {}): KeylessTrust {
  const r = loadKeylessTrust(sources, {tlog: 1, timestamps: 0, sct: 0, ...thresholds})
  expect(r.problems).to.deep.equal([])
  return r.trust!
}

describe('sign/keyless-trust', () => {
  let a: MockSigstore
  let b: MockSigstore
  let filesA: TrustFiles
  let filesB: TrustFiles
  let full: KeylessSignature
  let tsaOnly: KeylessSignature
  let rekorOnly: KeylessSignature
  let message: KeylessSignature

  const signer = (m: MockSigstore, witnesses: {rekor?: boolean; tsa?: boolean} = {}) =>
    KeylessSigner.fromEnvironment(
      {fulcioUrl: m.url, ...(witnesses.rekor === false ? {} : {rekorUrl: m.url}), ...(witnesses.tsa === false ? {} : {tsaUrl: m.url})},
      {SIGSTORE_ID_TOKEN: m.token({sub: SUBJECT})},
    )

  before(async () => {
    a = await startMockSigstore()
    b = await startMockSigstore({ctlog: false})
    const dir = tmpdir('aibox-keyless-')
    filesA = a.writeTrustFiles(path.join(dir, 'a'))
    filesB = b.writeTrustFiles(path.join(dir, 'b'))
    full = await signer(a).signSubjects([{digest}])
    tsaOnly = await signer(a, {rekor: false}).signSubjects([{digest}])
    rekorOnly = await signer(a, {tsa: false}).signSubjects([{digest}])
    message = await signer(a).signMessage(Buffer.from('hello'))
  })
  after(async () => {
    await a.close()
    await b.close()
  })

  const verify = (bundle: SerializedBundle, t: KeylessTrust, artifact?: Buffer) => verifyKeylessBundle(bundleFromJSON(bundle), t, {source: 'sig.json', ...(artifact ? {artifact} : {})})

  describe('#loadKeylessTrust', () => {
    describe('when given a trusted_root.json', () => {
      it('holds its CA, Rekor, TSA and CT log', () => {
        expect(trust({trustedRoot: filesA.trustedRoot}).counts).to.deep.equal({certificateAuthorities: 1, tlogs: 1, timestampAuthorities: 1, ctlogs: 1})
      })
    })
    describe('when given PEM files', () => {
      it('holds the same material, and finds the TSA signing certificate whatever the order', () => {
        const reversed = path.join(path.dirname(filesA.tsa), 'tsa-reversed.pem')
        const certs = fs.readFileSync(filesA.tsa, 'utf8').split(/(?<=-----END CERTIFICATE-----\n)/)
        fs.writeFileSync(reversed, certs.reverse().join(''))
        const t = trust({fulcio: [filesA.fulcio], rekor: [filesA.rekor], tsa: [reversed], ctlog: [filesA.ctlog!]})
        expect(t.counts).to.deep.equal({certificateAuthorities: 1, tlogs: 1, timestampAuthorities: 1, ctlogs: 1})
        expect(verify(full.bundle, t).verified).to.deep.equal({tlogEntries: 1, timestamps: 1, scts: 1})
      })
    })
    describe('when a source is bad', () => {
      it('reports one problem per file, naming it', () => {
        const dir = tmpdir()
        const notJson = path.join(dir, 'root.json')
        fs.writeFileSync(notJson, '{')
        const wrongType = path.join(dir, 'other.json')
        fs.writeFileSync(wrongType, JSON.stringify({mediaType: 'application/json'}))
        const noCert = path.join(dir, 'empty.pem')
        fs.writeFileSync(noCert, 'nothing here\n')
        const r = loadKeylessTrust({trustedRoot: notJson, fulcio: [noCert, path.join(dir, 'missing.pem')], rekor: [noCert]})
        expect(r.trust).to.equal(undefined)
        expect(r.problems.map((p) => [p.field, p.index])).to.deep.equal([
          ['trustedRoot', undefined],
          ['fulcio', 0],
          ['fulcio', 1],
          ['rekor', 0],
        ])
        expect(r.problems[0]!.message).to.match(/root\.json is not JSON/)
        expect(r.problems[1]!.message).to.match(/empty\.pem holds no PEM CERTIFICATE/)
        expect(r.problems[2]!.message).to.match(/missing\.pem/)
        expect(r.problems[3]!.message).to.match(/is not a PEM public key/)
        expect(loadKeylessTrust({trustedRoot: wrongType}).problems[0]!.message).to.match(/mediaType "application\/json" is not a Sigstore trusted root/)
      })
    })
  })

  describe('#verifyKeylessBundle', () => {
    describe('when the bundle is from the trusted Sigstore', () => {
      it('returns the certified identity, the ephemeral key and the verified evidence', () => {
        const v = verify(full.bundle, trust({trustedRoot: filesA.trustedRoot}, {tlog: 1, timestamps: 1, sct: 1}))
        expect(v.identity).to.deep.equal({issuer: MOCK_ISSUER, subject: SUBJECT})
        expect(v.key.keyId).to.equal(full.signer.keyId)
        expect(v.verified).to.deep.equal({tlogEntries: 1, timestamps: 1, scts: 1})
        expect(v.certificate.notBefore).to.equal(full.certificate.notBefore)
      })
      it('accepts a TSA-only bundle when no tlog entry is required, and a Rekor-only one', () => {
        expect(verify(tsaOnly.bundle, trust({trustedRoot: filesA.trustedRoot}, {tlog: 0})).verified).to.deep.equal({tlogEntries: 0, timestamps: 1, scts: 1})
        expect(verify(rekorOnly.bundle, trust({trustedRoot: filesA.trustedRoot})).verified).to.deep.equal({tlogEntries: 1, timestamps: 0, scts: 1})
      })
      it('verifies a message signature over the artifact', () => {
        expect(verify(message.bundle, trust({trustedRoot: filesA.trustedRoot}), Buffer.from('hello')).identity.subject).to.equal(SUBJECT)
      })
    })
    describe('when a tlog entry is required and missing', () => {
      it('throws KEYLESS_TLOG_MISSING', () => {
        const e = expectCodeSync(() => verify(tsaOnly.bundle, trust({trustedRoot: filesA.trustedRoot})), VerificationError, 'KEYLESS_TLOG_MISSING', /sig\.json: the trust policy requires 1 transparency-log entry \(keyless\.tlog\), the bundle has 0/)
        expect(e.exit).to.equal(2)
      })
    })
    describe('when a timestamp is required and missing', () => {
      it('throws KEYLESS_TIMESTAMP_MISSING', () => {
        expectCodeSync(() => verify(rekorOnly.bundle, trust({trustedRoot: filesA.trustedRoot}, {timestamps: 1})), 'KEYLESS_TIMESTAMP_MISSING', /requires 1 RFC 3161 timestamp \(keyless\.timestamps\), the bundle has 0/)
      })
    })
    describe('when the bundle carries no verifiable time at all', () => {
      it('throws KEYLESS_NO_TRUSTED_TIME', () => {
        const bare = clone(full.bundle)
        const vm = bare.verificationMaterial as Record<string, unknown>
        delete vm.tlogEntries
        delete vm.timestampVerificationData
        expectCodeSync(() => verify(bare, trust({trustedRoot: filesA.trustedRoot}, {tlog: 0})), 'KEYLESS_NO_TRUSTED_TIME', /no verifiable signing time/)
      })
    })
    describe('when the certificate comes from another Sigstore', () => {
      it('throws KEYLESS_CERTIFICATE_UNTRUSTED', () => {
        expectCodeSync(() => verify(full.bundle, trust({fulcio: [filesB.fulcio], rekor: [filesA.rekor], tsa: [filesA.tsa], ctlog: [filesA.ctlog!]})), 'KEYLESS_CERTIFICATE_UNTRUSTED', /the certificate of https:\/\/ci\.example\.test\/workflows\/release .* does not chain to a certificate authority of the trust policy/)
      })
    })
    describe('when the tlog entry is from an untrusted Rekor', () => {
      it('throws KEYLESS_TLOG_INVALID', () => {
        expectCodeSync(() => verify(full.bundle, trust({fulcio: [filesA.fulcio], rekor: [filesB.rekor], tsa: [filesA.tsa], ctlog: [filesA.ctlog!]})), 'KEYLESS_TLOG_INVALID', /does not verify with the Rekor keys of the trust policy/)
      })
    })
    describe('when the timestamp is from an untrusted TSA', () => {
      it('throws KEYLESS_TIMESTAMP_INVALID', () => {
        expectCodeSync(() => verify(full.bundle, trust({fulcio: [filesA.fulcio], rekor: [filesA.rekor], tsa: [filesB.tsa], ctlog: [filesA.ctlog!]})), 'KEYLESS_TIMESTAMP_INVALID', /RFC 3161 timestamp does not verify/)
      })
    })
    describe('when the certificate carries SCTs', () => {
      it('needs the CT log key, and counts SCTs against keyless.sct', () => {
        expectCodeSync(() => verify(full.bundle, trust({fulcio: [filesA.fulcio], rekor: [filesA.rekor]})), 'KEYLESS_SCT_UNVERIFIABLE', /from a CT log the trust policy does not list/)
        expectCodeSync(() => verify(full.bundle, trust({trustedRoot: filesA.trustedRoot}, {sct: 2})), 'KEYLESS_SCT_MISSING', /requires 2 signed certificate timestamps/)
      })
    })
    describe('when the payload was altered', () => {
      it('throws SIGNATURE_INVALID before any tlog check', () => {
        const tampered = clone(full.bundle)
        const st = JSON.parse(Buffer.from(tampered.dsseEnvelope!.payload, 'base64').toString())
        st.subject[0].digest.sha256 = 'f'.repeat(64)
        tampered.dsseEnvelope!.payload = Buffer.from(JSON.stringify(st)).toString('base64')
        expectCodeSync(() => verify(tampered, trust({trustedRoot: filesA.trustedRoot})), 'SIGNATURE_INVALID', /does not verify with the key of its certificate \(https:\/\/ci\.example\.test\/workflows\/release\): the signed content or the signature was altered/)
      })
    })
  })

  describe('#verifyBundle with keyless trust', () => {
    const keylessTrust = () => trust({trustedRoot: filesA.trustedRoot})
    describe('when the certificate key is not pinned', () => {
      it('verifies it as a keyless signature, reporting the identity and the verified evidence', () => {
        const v = verifyBundle(full.bundle, {keys: [], keyless: keylessTrust(), subjectDigests: [digest], source: 'sig.json'})
        expect(v.signers[0]).to.deep.include({keyId: full.signer.keyId, identity: {issuer: MOCK_ISSUER, subject: SUBJECT}})
        expect(v.bundle).to.deep.include({keyMaterial: 'certificate', ignored: {tlogEntries: 0, timestamps: 0}, keyless: {tlogEntries: 1, timestamps: 1, scts: 1}})
        expect(v.binding).to.deep.equal({kind: 'subject', digest})
        expect(v.warnings).to.deep.equal([])
      })
      it('checks a message signature’s digest before anything else', () => {
        expectCodeSync(() => verifyBundle(message.bundle, {keys: [], keyless: keylessTrust(), artifact: Buffer.from('other'), source: 'm.json'}), 'DIGEST_MISMATCH', /is not the digest of the file/)
        const ok = verifyBundle(message.bundle, {keys: [], keyless: keylessTrust(), artifact: Buffer.from('hello'), source: 'm.json'})
        expect(ok.signers[0]!.identity!.subject).to.equal(SUBJECT)
      })
    })
    describe('when the keyless signature names another subject', () => {
      it('throws SUBJECT_MISMATCH after verifying it', () => {
        expectCodeSync(() => verifyBundle(full.bundle, {keys: [], keyless: keylessTrust(), subjectDigests: [`sha256:${'0'.repeat(64)}`], source: 'sig.json'}), 'SUBJECT_MISMATCH')
      })
    })
    describe('when there is no keyless trust', () => {
      it('keeps refusing a certificate whose key is not trusted (KEY_MISMATCH)', () => {
        expectCodeSync(() => verifyBundle(full.bundle, {keys: [generateKeyPair().public], subjectDigests: [digest], source: 'sig.json'}), 'KEY_MISMATCH', /not one of the trusted keys/)
      })
    })
    describe('when a key-signed bundle meets a policy without keys', () => {
      it('throws KEY_MISMATCH saying the policy has only identities', async () => {
        const signed = await signSubjects([{digest}], generateKeyPair())
        expectCodeSync(() => verifyBundle(signed, {keys: [], keyless: keylessTrust(), subjectDigests: [digest], source: 'k.json'}), 'KEY_MISMATCH', /the trust policy has no keys \(only keyless identities\)/)
      })
    })
  })
})

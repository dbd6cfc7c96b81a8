import {expect} from 'chai'
import {createHash, generateKeyPairSync, sign as cryptoSign} from 'node:crypto'

import {AiboxError} from '../../../src/errors.js'
import {
  COSIGN_SIGN_PREDICATE_TYPE,
  IN_TOTO_PAYLOAD_TYPE,
  buildStatement,
  detectSignatureFormat,
  envelopeToJSON,
  generateKeyPair,
  preAuthEncoding,
  privateKeyInfo,
  signEnvelope,
  signRaw,
  simpleSigningPayload,
  statementBytes,
  verifyEnvelope,
  verifySignature,
} from '../../../src/sign/index.js'

const file = Buffer.from('version: 1\nnetwork:\n  mode: deny-by-default\n')
const digest = `sha256:${createHash('sha256').update(file).digest('hex')}`
const statement = statementBytes(buildStatement({subjects: [{digest}], predicateType: COSIGN_SIGN_PREDICATE_TYPE}))

function code(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    expect(err).to.be.instanceOf(AiboxError)
    return (err as AiboxError).code
  }
  return undefined
}

describe('sign/verify', () => {
  describe('#verifySignature', () => {
    for (const alg of ['ecdsa-p256', 'ed25519', 'rsa'] as const) {
      describe(`when a raw ${alg} signature is given (cosign sign-blob)`, () => {
        const key = alg === 'rsa' ? privateKeyInfo(generateKeyPairSync('rsa', {modulusLength: 2048}).privateKey) : generateKeyPair(alg)
        const sig = signRaw(file, key)
        it('accepts base64 with and without a trailing newline, and raw bytes', () => {
          for (const form of [Buffer.from(sig.toString('base64')), Buffer.from(`${sig.toString('base64')}\n`), Buffer.from(`${sig.toString('base64')}\r\n`), sig]) {
            const r = verifySignature(form, {keys: [key.public], artifact: file})
            expect([r.format, r.binding.kind, r.signers[0].keyId]).to.deep.equal(['raw', 'signature', key.public.keyId])
          }
        })
        it('refuses another file, another key and a flipped bit', () => {
          expect(code(() => verifySignature(sig, {keys: [key.public], artifact: Buffer.from('x')}))).to.equal('SIGNATURE_INVALID')
          expect(code(() => verifySignature(sig, {keys: [generateKeyPair().public], artifact: file}))).to.equal('SIGNATURE_INVALID')
          const bad = Buffer.from(sig)
          bad[10] ^= 0x40
          expect(code(() => verifySignature(bad, {keys: [key.public], artifact: file}))).to.equal('SIGNATURE_INVALID')
        })
        it('needs the file', () => {
          expect(code(() => verifySignature(sig, {keys: [key.public]}))).to.equal('ARTIFACT_REQUIRED')
        })
      })
    }

    describe('when a DSSE envelope is given', () => {
      const key = generateKeyPair()
      const env = envelopeToJSON(signEnvelope(statement, IN_TOTO_PAYLOAD_TYPE, key))
      it('writes the SSH fingerprint as keyid by default', () => {
        expect(env.signatures[0].keyid).to.equal(key.public.fingerprint)
        expect(Object.keys(env)).to.deep.equal(['payloadType', 'payload', 'signatures'])
      })
      it('accepts both field orders, every keyid form, and URL-safe base64', () => {
        const variants = [
          env,
          {payload: env.payload, payloadType: env.payloadType, signatures: [{sig: env.signatures[0].sig}]},
          {...env, signatures: [{keyid: '', sig: env.signatures[0].sig}]},
          {...env, signatures: [{keyid: 'some-other-hint', sig: env.signatures[0].sig}]},
          {...env, payload: Buffer.from(env.payload, 'base64').toString('base64url'), signatures: [{sig: Buffer.from(env.signatures[0].sig, 'base64').toString('base64url')}]},
          {...env, unknownField: true},
        ]
        for (const v of variants) {
          const r = verifySignature(Buffer.from(JSON.stringify(v)), {keys: [key.public], artifact: file})
          expect([r.format, r.binding.kind, r.predicateType]).to.deep.equal(['dsse', 'subject', COSIGN_SIGN_PREDICATE_TYPE])
        }
      })
      it('counts each distinct trusted signer of a multi-signature envelope', () => {
        const k2 = generateKeyPair('ed25519')
        const second = envelopeToJSON(signEnvelope(statement, IN_TOTO_PAYLOAD_TYPE, k2))
        const outsider = envelopeToJSON(signEnvelope(statement, IN_TOTO_PAYLOAD_TYPE, generateKeyPair()))
        const multi = {...env, signatures: [...env.signatures, ...second.signatures, ...outsider.signatures, ...env.signatures]}
        const r = verifyEnvelope(multi, {keys: [key.public, k2.public], artifact: file})
        expect(r.signers.map((s) => s.keyId)).to.deep.equal([key.public.keyId, k2.public.keyId])
      })
      it('refuses a tampered payload, a wrong subject and garbage base64', () => {
        const tampered = {...env, payload: Buffer.from(statementBytes(buildStatement({subjects: [{digest: `sha256:${'1'.repeat(64)}`}], predicateType: COSIGN_SIGN_PREDICATE_TYPE}))).toString('base64')}
        expect(code(() => verifySignature(Buffer.from(JSON.stringify(tampered)), {keys: [key.public], artifact: file}))).to.equal('SIGNATURE_INVALID')
        expect(code(() => verifySignature(Buffer.from(JSON.stringify(env)), {keys: [key.public], artifact: Buffer.from('other')}))).to.equal('SUBJECT_MISMATCH')
        expect(code(() => verifySignature(Buffer.from(JSON.stringify({...env, payload: '%%%'})), {keys: [key.public], artifact: file}))).to.equal('ENVELOPE_INVALID')
        expect(code(() => verifySignature(Buffer.from(JSON.stringify({...env, signatures: []})), {keys: [key.public], artifact: file}))).to.equal('ENVELOPE_INVALID')
      })
      it('accepts an IEEE P1363 ECDSA signature (the DSSE spec’s own vector form)', () => {
        const pae = preAuthEncoding('text/plain', file)
        const sig = cryptoSign('sha256', pae, {key: key.keyObject, dsaEncoding: 'ieee-p1363'})
        expect(sig).to.have.length(64)
        const e = {payloadType: 'text/plain', payload: file.toString('base64'), signatures: [{sig: sig.toString('base64')}]}
        expect(verifySignature(Buffer.from(JSON.stringify(e)), {keys: [key.public], artifact: file}).binding.kind).to.equal('payload')
      })
    })

    describe('when a cosign LocalSignedPayload bundle is given', () => {
      it('verifies base64Signature over the file and ignores the unauthenticated cert', () => {
        const key = generateKeyPair()
        const doc = {base64Signature: signRaw(file, key).toString('base64'), cert: Buffer.from(key.public.pem).toString('base64')}
        const r = verifySignature(Buffer.from(JSON.stringify(doc)), {keys: [key.public], artifact: file})
        expect([r.format, r.warnings]).to.deep.equal(['cosign-local-bundle', []])
        const withRekor = verifySignature(Buffer.from(JSON.stringify({...doc, rekorBundle: {}})), {keys: [key.public], artifact: file})
        expect(withRekor.warnings.join()).to.match(/rekorBundle was not verified/)
        expect(code(() => verifySignature(Buffer.from(JSON.stringify(doc)), {keys: [key.public], artifact: Buffer.from('x')}))).to.equal('SIGNATURE_INVALID')
      })
    })

    describe('when a containers/image sigstore-json signature is given', () => {
      it('verifies the payload and the manifest-digest claim', () => {
        const key = generateKeyPair()
        const manifest = Buffer.from('{"schemaVersion":2}')
        const md = `sha256:${createHash('sha256').update(manifest).digest('hex')}`
        const payload = simpleSigningPayload('registry.example.com/policies/org', md)
        expect(payload.toString()).to.equal(`{"critical":{"identity":{"docker-reference":"registry.example.com/policies/org"},"image":{"docker-manifest-digest":"${md}"},"type":"cosign container image signature"},"optional":null}`)
        const body = {mimeType: 'application/vnd.dev.cosign.simplesigning.v1+json', payload: payload.toString('base64'), annotations: {'dev.cosignproject.cosign/signature': signRaw(payload, key).toString('base64')}}
        const sigFile = Buffer.concat([Buffer.from([0]), Buffer.from('sigstore-json\n'), Buffer.from(JSON.stringify(body))])
        expect(detectSignatureFormat(sigFile).format).to.equal('simple-signing')
        expect(verifySignature(sigFile, {keys: [key.public], artifact: manifest}).binding).to.deep.equal({kind: 'claim', digest: md})
        expect(code(() => verifySignature(sigFile, {keys: [key.public], artifact: Buffer.from('{}')}))).to.equal('CLAIM_MISMATCH')
      })
    })

    describe('when the signature file is not a signature', () => {
      it('says so with a precise code', () => {
        const key = generateKeyPair()
        expect(code(() => verifySignature(Buffer.alloc(0), {keys: [key.public], artifact: file}))).to.equal('SIGNATURE_MALFORMED')
        expect(code(() => verifySignature(Buffer.from('{"hello":1}'), {keys: [key.public], artifact: file}))).to.equal('SIGNATURE_MALFORMED')
        expect(code(() => verifySignature(Buffer.from('{"truncated'), {keys: [key.public], artifact: file}))).to.equal('SIGNATURE_MALFORMED')
        expect(code(() => verifySignature(Buffer.from('not base64 at all!'), {keys: [key.public], artifact: file}))).to.equal('SIGNATURE_INVALID')
        expect(code(() => verifySignature(Buffer.from('abc'), {keys: [], artifact: file}))).to.equal('NO_KEYS')
      })
    })
  })
})

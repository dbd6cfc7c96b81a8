import {verify as cryptoVerify} from 'node:crypto'

import {expect} from 'chai'

import {DeterministicKeySigner, LocalKeySigner, generateKeyPair, signStatement, verifyBundle} from '../../../src/sign/index.js'
import {privateKey, publicKey} from '../../helpers/policy-fixtures.js'

describe('DeterministicKeySigner', () => {
  describe('#signSync', () => {
    describe('when the key is ECDSA P-256', () => {
      it('gives the same DER signature for the same data (RFC 6979), which node:crypto verifies; Node alone does not', async () => {
        const key = await privateKey('carol')
        const signer = new DeterministicKeySigner(key)
        const data = Buffer.from('the same bytes')
        const a = signer.signSync(data)
        expect(signer.signSync(data).equals(a)).to.equal(true)
        expect(new DeterministicKeySigner(key).signSync(data).equals(a)).to.equal(true)
        expect(a[0]).to.equal(0x30)
        expect(cryptoVerify('sha256', data, publicKey('carol').keyObject, a)).to.equal(true)
        expect(signer.signSync(Buffer.from('other bytes')).equals(a)).to.equal(false)
        const plain = new LocalKeySigner(key)
        expect(plain.signSync(data).equals(plain.signSync(data))).to.equal(false)
      })
    })
    describe('when the key is Ed25519', () => {
      it('signs as Ed25519 does (deterministic by definition)', () => {
        const key = generateKeyPair('ed25519')
        const data = Buffer.from('x')
        const sig = new DeterministicKeySigner(key).signSync(data)
        expect(sig.equals(new LocalKeySigner(key).signSync(data))).to.equal(true)
        expect(cryptoVerify(null, data, key.public.keyObject, sig)).to.equal(true)
      })
    })
  })
  describe('when used for a Sigstore bundle', () => {
    it('makes byte-identical bundles that verify like any other', async () => {
      const signer = new DeterministicKeySigner(await privateKey('carol'))
      const input = {subjects: [{digest: `sha256:${'a'.repeat(64)}`}], predicateType: 'https://aibox.dev/attestations/seal/v1', predicate: {n: 1}}
      const a = await signStatement(input, signer)
      const b = await signStatement(input, signer)
      expect(JSON.stringify(a)).to.equal(JSON.stringify(b))
      const v = verifyBundle(a, {keys: [publicKey('carol')], subjectDigests: [`sha256:${'a'.repeat(64)}`]})
      expect(v.signers[0]!.keyId).to.equal(publicKey('carol').keyId)
    })
  })
})

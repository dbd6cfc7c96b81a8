import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scryptSync} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import nacl from 'tweetnacl'

import {AiboxError} from '../../../src/errors.js'
import {
  COSIGN_PRIVATE_KEY_LABEL,
  SIGSTORE_PRIVATE_KEY_LABEL,
  encryptPrivateKey,
  generateKeyPair,
  loadAnyPublicKey,
  loadPrivateKey,
  parsePrivateKey,
  parsePublicKey,
  privateKeyInfo,
  publicKeyInfo,
  sshFingerprint,
  writeKeyPair,
} from '../../../src/sign/index.js'
import {tmpdir} from '../../helpers/tmp.js'
import {expectCode} from '../../helpers/expect-error.js'

/** An independent encoder of cosign's key-file format (go-securesystemslib encrypted.Encrypt), to craft edge cases. */
function cosignKeyFile(plaintext: Buffer, password: string, over: {N?: number; r?: number; p?: number; kdf?: string; cipher?: string; nonce?: Buffer; label?: string; salt?: Buffer} = {}): string {
  const salt = over.salt ?? randomBytes(32)
  const nonce = over.nonce ?? randomBytes(24)
  const N = over.N ?? 32768
  const r = over.r ?? 8
  const p = over.p ?? 1
  // Only derive with sane parameters; crafted "absurd" ones are never meant to be decrypted.
  const secret = N <= 131072 && r === 8 && p === 1 ? scryptSync(password, salt, 32, {N, r, p, maxmem: 512 * 1024 * 1024}) : randomBytes(32)
  const ciphertext = nacl.secretbox(plaintext, nonce.length === 24 ? nonce : randomBytes(24), secret)
  const json = JSON.stringify({
    kdf: {name: over.kdf ?? 'scrypt', params: {N, r, p}, salt: salt.toString('base64')},
    cipher: {name: over.cipher ?? 'nacl/secretbox', nonce: nonce.toString('base64')},
    ciphertext: Buffer.from(ciphertext).toString('base64'),
  })
  const b64 = Buffer.from(json).toString('base64').match(/.{1,64}/g)!.join('\n')
  const label = over.label ?? SIGSTORE_PRIVATE_KEY_LABEL
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`
}

/** PKCS#8 v2 (RFC 5958) Ed25519 with the [1] publicKey, as sigstore-rs writes it. */
function pkcs8v2Ed25519(seed: Buffer, pub: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from('020101300506032b657004220420', 'hex'), seed, Buffer.from([0x81, 33, 0]), pub])
  return Buffer.concat([Buffer.from([0x30, body.length]), body])
}

describe('sign/keys', () => {
  describe('#encryptPrivateKey', () => {
    for (const alg of ['ecdsa-p256', 'ed25519'] as const) {
      describe(`when the key is ${alg}`, () => {
        it('writes exactly cosign’s format and decrypts back to the same key', async function () {
          this.timeout(10_000)
          const key = generateKeyPair(alg)
          const pem = await encryptPrivateKey(key, 'correct horse')
          const lines = pem.split('\n')
          expect(lines[0]).to.equal('-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----')
          expect(pem.endsWith('-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n')).to.equal(true)
          const body = lines.slice(1, -2)
          for (const l of body.slice(0, -1)) expect(l.length).to.equal(64)
          const json = Buffer.from(body.join(''), 'base64').toString()
          // Key order and parameters of go-securesystemslib encrypted.Encrypt.
          expect(json).to.match(/^\{"kdf":\{"name":"scrypt","params":\{"N":65536,"r":8,"p":1\},"salt":"[^"]+"\},"cipher":\{"name":"nacl\/secretbox","nonce":"[^"]+"\},"ciphertext":"[^"]+"\}$/)
          const doc = JSON.parse(json)
          expect(Buffer.from(doc.kdf.salt, 'base64')).to.have.length(32)
          expect(Buffer.from(doc.cipher.nonce, 'base64')).to.have.length(24)
          const pkcs8 = key.keyObject.export({format: 'der', type: 'pkcs8'})
          expect(Buffer.from(doc.ciphertext, 'base64')).to.have.length(pkcs8.length + 16)
          // Independent decryption: scrypt + secretbox.open gives the PKCS#8 DER.
          const secret = scryptSync('correct horse', Buffer.from(doc.kdf.salt, 'base64'), 32, {N: 65536, r: 8, p: 1, maxmem: 256 * 1024 * 1024})
          const plain = nacl.secretbox.open(Buffer.from(doc.ciphertext, 'base64'), Buffer.from(doc.cipher.nonce, 'base64'), secret)
          expect(Buffer.from(plain!).equals(pkcs8)).to.equal(true)
          const back = await parsePrivateKey(pem, 'k', {password: 'correct horse'})
          expect(back.public.spki.equals(key.public.spki)).to.equal(true)
        })
      })
    }
    it('accepts the empty password', async function () {
      this.timeout(10_000)
      const key = generateKeyPair()
      const back = await parsePrivateKey(await encryptPrivateKey(key, ''), 'k', {password: ''})
      expect(back.public.keyId).to.equal(key.public.keyId)
    })
  })

  describe('#parsePrivateKey', () => {
    const ec = generateKeyPairSync('ec', {namedCurve: 'P-256'}).privateKey
    const pkcs8 = ec.export({format: 'der', type: 'pkcs8'})

    describe('when the scrypt parameters are among cosign’s', () => {
      for (const N of [32768, 65536, 131072]) {
        it(`decrypts N=${N}`, async function () {
          this.timeout(20_000)
          const k = await parsePrivateKey(cosignKeyFile(pkcs8, 'pw', {N}), 'k', {password: 'pw'})
          expect(k.public.algorithm).to.equal('ecdsa-p256')
        })
      }
      it('reads the older ENCRYPTED COSIGN PRIVATE KEY label', async () => {
        await parsePrivateKey(cosignKeyFile(pkcs8, 'pw', {label: COSIGN_PRIVATE_KEY_LABEL}), 'k', {password: 'pw'})
      })
    })

    describe('when the file is crafted or corrupt', () => {
      const cases: Array<[string, Parameters<typeof cosignKeyFile>[2], string, RegExp]> = [
        ['absurd N (never allocated)', {N: 2 ** 30}, 'KEY_UNSUPPORTED', /unsupported scrypt parameters N=1073741824/],
        ['N=16384', {N: 16384}, 'KEY_UNSUPPORTED', /unsupported scrypt parameters/],
        ['r=16', {r: 16}, 'KEY_UNSUPPORTED', /r=16/],
        ['p=2', {p: 2}, 'KEY_UNSUPPORTED', /p=2/],
        ['kdf pbkdf2', {kdf: 'pbkdf2'}, 'KEY_UNSUPPORTED', /unsupported kdf "pbkdf2"/],
        ['cipher aes-gcm', {cipher: 'aes-gcm'}, 'KEY_UNSUPPORTED', /unsupported cipher "aes-gcm"/],
        ['12-byte nonce', {nonce: randomBytes(12)}, 'KEY_INVALID', /nonce" is 12 bytes; nacl\/secretbox needs 24/],
      ]
      for (const [what, over, code, message] of cases) {
        it(`refuses ${what} before deriving any key`, async () => {
          const t = Date.now()
          await expectCode(parsePrivateKey(cosignKeyFile(pkcs8, 'pw', over), 'k.key', {password: 'pw'}), code, message)
          expect(Date.now() - t).to.be.lessThan(1000)
        })
      }
      it('refuses a body that is not JSON', async () => {
        await expectCode(parsePrivateKey(`-----BEGIN ${SIGSTORE_PRIVATE_KEY_LABEL}-----\naGVsbG8=\n-----END ${SIGSTORE_PRIVATE_KEY_LABEL}-----\n`, 'k', {password: ''}), 'KEY_INVALID', /not the JSON/)
      })
      it('refuses a PEM body that is not base64', async () => {
        await expectCode(parsePrivateKey(`-----BEGIN ${SIGSTORE_PRIVATE_KEY_LABEL}-----\n!!!!\n-----END ${SIGSTORE_PRIVATE_KEY_LABEL}-----\n`, 'k', {password: ''}), 'KEY_INVALID', /not base64/)
      })
      it('refuses the wrong password with a message naming both causes', async () => {
        await expectCode(parsePrivateKey(cosignKeyFile(pkcs8, 'right'), 'k.key', {password: 'wrong'}), 'KEY_DECRYPT_FAILED', /k\.key: cannot decrypt the private key: wrong password, or the key file is corrupted/)
      })
      it('refuses SEC1 plaintext inside an encrypted key (cosign does too)', async () => {
        const sec1 = ec.export({format: 'der', type: 'sec1'})
        await expectCode(parsePrivateKey(cosignKeyFile(sec1, 'pw'), 'k', {password: 'pw'}), 'KEY_INVALID', /SEC1 EC private key/)
      })
      it('refuses plaintext that is not DER', async () => {
        await expectCode(parsePrivateKey(cosignKeyFile(Buffer.from('not a key'), 'pw'), 'k', {password: 'pw'}), 'KEY_INVALID', /not DER-encoded PKCS#8/)
      })
    })

    describe('when the plaintext is PKCS#8 v2 Ed25519 (sigstore-rs)', () => {
      const {privateKey, publicKey} = generateKeyPairSync('ed25519')
      const seed = privateKey.export({format: 'der', type: 'pkcs8'}).subarray(16)
      const pub = Buffer.from(publicKey.export({format: 'jwk'}).x!, 'base64url')
      it('rebuilds v1 from the seed and loads it', async () => {
        const k = await parsePrivateKey(cosignKeyFile(pkcs8v2Ed25519(seed, pub), 'pw'), 'k', {password: 'pw'})
        expect(k.public.algorithm).to.equal('ed25519')
        expect(k.public.spki.equals(publicKey.export({format: 'der', type: 'spki'}))).to.equal(true)
      })
      it('refuses it when the embedded public key does not match', async () => {
        const other = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({format: 'jwk'}).x!, 'base64url')
        await expectCode(parsePrivateKey(cosignKeyFile(pkcs8v2Ed25519(seed, other), 'pw'), 'k', {password: 'pw'}), 'KEY_INVALID', /does not match its private key/)
      })
      it('also loads it from a plain PEM with allowPlaintext', async () => {
        const pem = `-----BEGIN PRIVATE KEY-----\n${pkcs8v2Ed25519(seed, pub).toString('base64')}\n-----END PRIVATE KEY-----\n`
        const k = await parsePrivateKey(pem, 'k', {password: '', allowPlaintext: true})
        expect(k.public.algorithm).to.equal('ed25519')
      })
    })

    describe('when the key is an unencrypted PEM', () => {
      const pem = (k: ReturnType<typeof createPrivateKey>, type: 'pkcs8' | 'sec1' | 'pkcs1') => k.export({format: 'pem', type} as never) as unknown as string
      it('is refused for signing, pointing at key import', async () => {
        await expectCode(parsePrivateKey(pem(ec, 'pkcs8'), 'plain.pem', {password: ''}), 'KEY_UNENCRYPTED', /plain\.pem is an unencrypted private key/)
      })
      it('reads PKCS#8, SEC1 and PKCS#1 for import', async () => {
        const rsa = generateKeyPairSync('rsa', {modulusLength: 2048}).privateKey
        expect((await parsePrivateKey(pem(ec, 'pkcs8'), 'a', {password: '', allowPlaintext: true})).public.algorithm).to.equal('ecdsa-p256')
        expect((await parsePrivateKey(pem(ec, 'sec1'), 'b', {password: '', allowPlaintext: true})).public.algorithm).to.equal('ecdsa-p256')
        const r = await parsePrivateKey(pem(rsa, 'pkcs1'), 'c', {password: '', allowPlaintext: true})
        expect([r.public.algorithm, r.public.bits]).to.deep.equal(['rsa', 2048])
      })
      it('refuses RSA below 2048 bits, P-384 and secp256k1, naming them', async () => {
        const rsa1024 = generateKeyPairSync('rsa', {modulusLength: 1024}).privateKey
        await expectCode(parsePrivateKey(pem(rsa1024, 'pkcs8'), 'small.pem', {password: '', allowPlaintext: true}), 'KEY_UNSUPPORTED', /RSA key of 1024 bits; cosign and aibox accept 2048 to 4096 bits/)
        const p384 = generateKeyPairSync('ec', {namedCurve: 'P-384'}).privateKey
        await expectCode(parsePrivateKey(pem(p384, 'pkcs8'), 'p384.pem', {password: '', allowPlaintext: true}), 'KEY_UNSUPPORTED', /unsupported elliptic curve P-384/)
        const k1 = generateKeyPairSync('ec', {namedCurve: 'secp256k1'}).privateKey
        await expectCode(parsePrivateKey(pem(k1, 'pkcs8'), 'k1.pem', {password: '', allowPlaintext: true}), 'KEY_UNSUPPORTED', /secp256k1/)
      })
      it('refuses encrypted PKCS#8, OpenSSH keys and public keys with what to do', async () => {
        const enc = ec.export({format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'x'}) as string
        await expectCode(parsePrivateKey(enc, 'e.pem', {password: '', allowPlaintext: true}), 'KEY_UNSUPPORTED', /ENCRYPTED PRIVATE KEY/)
        await expectCode(parsePrivateKey('-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n', 'id', {password: '', allowPlaintext: true}), 'KEY_UNSUPPORTED', /OpenSSH/)
        await expectCode(parsePrivateKey(generateKeyPair().public.pem, 'c.pub', {password: ''}), 'KEY_NOT_PRIVATE', /public key or certificate, not a private key/)
      })
    })
  })

  describe('#parsePublicKey', () => {
    it('reads SPKI, PKCS#1 RSA and certificates, and refuses private keys', () => {
      const rsa = generateKeyPairSync('rsa', {modulusLength: 2048})
      const spki = parsePublicKey(rsa.publicKey.export({format: 'pem', type: 'spki'}) as string, 'a')
      const pkcs1 = parsePublicKey(rsa.publicKey.export({format: 'pem', type: 'pkcs1'}) as string, 'b')
      expect(pkcs1.spki.equals(spki.spki)).to.equal(true)
      expect(() => parsePublicKey(rsa.privateKey.export({format: 'pem', type: 'pkcs8'}) as string, 'priv.pem'))
        .to.throw(AiboxError, /priv\.pem is a private key/)
        .with.property('code', 'KEY_NOT_PUBLIC')
      expect(() => parsePublicKey('hello', 'x')).to.throw(AiboxError).with.property('code', 'KEY_INVALID')
      const dir = tmpdir()
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem'), '-subj', '/CN=test', '-days', '1'], {stdio: 'ignore'})
      const fromCert = parsePublicKey(fs.readFileSync(path.join(dir, 'c.pem'), 'utf8'), 'c.pem')
      const fromKey = publicKeyInfo(createPrivateKey(fs.readFileSync(path.join(dir, 'k.pem'))))
      expect(fromCert.spki.equals(fromKey.spki)).to.equal(true)
    })
  })

  describe('#sshFingerprint', () => {
    const dir = tmpdir()
    it('equals ssh-keygen’s for ECDSA P-256 and RSA', () => {
      for (const [name, k] of [
        ['ec', generateKeyPair().public],
        ['rsa', publicKeyInfo(generateKeyPairSync('rsa', {modulusLength: 2048}).publicKey)],
      ] as const) {
        const pemFile = path.join(dir, `${name}.pem`)
        fs.writeFileSync(pemFile, k.pem)
        const openssh = execFileSync('ssh-keygen', ['-i', '-m', 'PKCS8', '-f', pemFile]).toString()
        fs.writeFileSync(`${pemFile}.ssh`, openssh)
        const line = execFileSync('ssh-keygen', ['-l', '-f', `${pemFile}.ssh`]).toString()
        expect(line.split(' ')[1]).to.equal(k.fingerprint)
      }
    })
    it('equals ssh-keygen’s for Ed25519', () => {
      const file = path.join(dir, 'ed')
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file])
      const blob = Buffer.from(fs.readFileSync(`${file}.pub`, 'utf8').split(' ')[1], 'base64')
      const jwk = {kty: 'OKP', crv: 'Ed25519', x: blob.subarray(blob.length - 32).toString('base64url')}
      const line = execFileSync('ssh-keygen', ['-l', '-f', `${file}.pub`]).toString()
      expect(sshFingerprint(createPublicKey({key: jwk, format: 'jwk'}))).to.equal(line.split(' ')[1])
    })
  })

  describe('#publicKeyInfo', () => {
    it('derives the cosign hint and a 16-hex key id from the SPKI DER', () => {
      const k = generateKeyPair().public
      const digest = execFileSync('openssl', ['dgst', '-sha256', '-binary'], {input: k.spki})
      expect(k.hint).to.equal(digest.toString('base64'))
      expect(k.keyId).to.equal(digest.toString('hex').slice(0, 16))
    })
  })

  describe('#writeKeyPair', () => {
    it('writes 0600 / 0644 files and never overwrites without force', async function () {
      this.timeout(20_000)
      const dir = tmpdir()
      const prefix = path.join(dir, 'k')
      const key = generateKeyPair('ed25519')
      await writeKeyPair(prefix, key, 'pw')
      expect(fs.statSync(`${prefix}.key`).mode & 0o777).to.equal(0o600)
      expect(fs.statSync(`${prefix}.pub`).mode & 0o777).to.equal(0o644)
      expect(fs.readFileSync(`${prefix}.pub`, 'utf8')).to.equal(key.public.pem)
      const before = fs.readFileSync(`${prefix}.key`, 'utf8')
      await expectCode(writeKeyPair(prefix, generateKeyPair(), 'pw'), 'FILE_EXISTS', /already exists/)
      expect(fs.readFileSync(`${prefix}.key`, 'utf8')).to.equal(before)
      await writeKeyPair(prefix, generateKeyPair(), 'pw', {force: true})
      expect(fs.readFileSync(`${prefix}.key`, 'utf8')).to.not.equal(before)
      expect(fs.readdirSync(dir).sort()).to.deep.equal(['k.key', 'k.pub'])
      expect((await loadAnyPublicKey(`${prefix}.key`, 'pw')).pem).to.equal(fs.readFileSync(`${prefix}.pub`, 'utf8'))
    })
    it('leaves nothing behind when the directory does not exist', async () => {
      await expectCode(writeKeyPair(path.join(tmpdir(), 'missing', 'k'), generateKeyPair(), 'pw'), 'DIR_NOT_FOUND')
    })
  })

  describe('#loadPrivateKey', () => {
    it('names the missing file', async () => {
      await expectCode(loadPrivateKey('/nonexistent/cosign.key', {password: ''}), 'KEY_NOT_FOUND', /\/nonexistent\/cosign\.key' does not exist/)
    })
    it('tries each password candidate in order', async function () {
      this.timeout(10_000)
      const key = generateKeyPair()
      const pem = await encryptPrivateKey(key, 'pw\n')
      const k = await parsePrivateKey(pem, 'k', {password: async () => ['pw', 'pw\n']})
      expect(k.public.keyId).to.equal(key.public.keyId)
      expect(privateKeyInfo(k.keyObject).public.keyId).to.equal(key.public.keyId)
    })
  })
})

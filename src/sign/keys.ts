/**
 * Cosign-compatible key files (cosign-formats.md §d): generate, encrypt, decrypt, load, import.
 *
 * A private key file is PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (or the older `ENCRYPTED COSIGN
 * PRIVATE KEY`) around the JSON `{"kdf":{"name":"scrypt","params":{N,r,p},"salt"},"cipher":
 * {"name":"nacl/secretbox","nonce"},"ciphertext"}`; the plaintext is PKCS#8 DER. We write
 * exactly what cosign's `generate-key-pair` writes (N=65536, 32-byte salt, 24-byte nonce) and
 * read what cosign reads (N ∈ {32768, 65536, 131072}, r=8, p=1), refusing every other
 * parameter before any memory is allocated, since the parameters come from an untrusted file.
 */
import {KeyObject, X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scrypt} from 'node:crypto'
import fs from 'node:fs'

import {ASN1Obj} from '@sigstore/core'
import nacl from 'tweetnacl'

import {InputError, NotFoundError, errorMessage} from '../errors.js'
import {decodeBase64, encodeBase64, parsePem, sha256, toPem, type PemBlock} from './encoding.js'
import {readFileBounded, stageFile} from './fs.js'
import {shownValue} from '../util/text.js'

/** The PEM label cosign ≥ 2 writes. */
export const SIGSTORE_PRIVATE_KEY_LABEL = 'ENCRYPTED SIGSTORE PRIVATE KEY'
/** The label older cosign wrote; still read, and kept when re-marshalling (keys.go:43). */
export const COSIGN_PRIVATE_KEY_LABEL = 'ENCRYPTED COSIGN PRIVATE KEY'
const ENCRYPTED_LABELS = new Set([SIGSTORE_PRIVATE_KEY_LABEL, COSIGN_PRIVATE_KEY_LABEL])

/** scrypt parameters go-securesystemslib `encrypted.Decrypt` accepts (encrypted.go:128-140); anything else is refused. */
export const SCRYPT_ACCEPTED: ReadonlyArray<{N: number; r: number; p: number}> = [
  {N: 32768, r: 8, p: 1},
  {N: 65536, r: 8, p: 1},
  {N: 131072, r: 8, p: 1},
]
/** What new key files use (cosign `standardParams`). */
export const SCRYPT_DEFAULT = {N: 65536, r: 8, p: 1} as const
const SALT_BYTES = 32
const NONCE_BYTES = 24
/** Key files are small (an RSA-4096 key is ~3.3 KB); a larger file is not a key. */
const MAX_KEY_FILE_BYTES = 64 * 1024

export type KeyAlgorithm = 'ecdsa-p256' | 'ed25519' | 'rsa'

/** A public key plus every identifier the formats use for it. */
export interface PublicKeyInfo {
  keyObject: KeyObject
  algorithm: KeyAlgorithm
  /** RSA modulus size in bits. */
  bits?: number
  /** SubjectPublicKeyInfo DER. */
  spki: Buffer
  /** `PUBLIC KEY` PEM (64 columns, trailing newline), as cosign writes `cosign.pub`. */
  pem: string
  /** Short stable id for humans and trust policies: first 16 hex digits of sha256(SPKI DER). */
  keyId: string
  /** cosign's `publicKey.hint`: base64(sha256(SPKI DER)) (cosign internal/key/svkeypair.go:52-57). */
  hint: string
  /** `SHA256:` + unpadded base64 of sha256(SSH wire public key): the only non-empty DSSE keyid sigstore-go accepts. */
  fingerprint: string
}

export interface PrivateKeyInfo {
  keyObject: KeyObject
  public: PublicKeyInfo
}

/**
 * Where a password comes from: a value, or a callback that is only called when a key is
 * actually encrypted. A callback may return several candidates (tried in order, e.g. a
 * password read from stdin with and without its trailing newline).
 */
export type PasswordSource = string | ((context: {source: string; purpose: 'decrypt' | 'encrypt'}) => Promise<string | string[]>)

// ---------------------------------------------------------------------------------------------
// Identity

/** The identifiers of a public key (see `PublicKeyInfo`). Throws KEY_UNSUPPORTED for key kinds we do not sign with. */
export function publicKeyInfo(keyObject: KeyObject, source = 'key'): PublicKeyInfo {
  const pub = keyObject.type === 'private' ? createPublicKey(keyObject) : keyObject
  const {algorithm, bits} = checkSupported(pub, source)
  const spki = pub.export({format: 'der', type: 'spki'})
  const digest = sha256(spki)
  return {
    keyObject: pub,
    algorithm,
    ...(bits === undefined ? {} : {bits}),
    spki,
    pem: toPem('PUBLIC KEY', spki),
    keyId: digest.toString('hex').slice(0, 16),
    hint: digest.toString('base64'),
    fingerprint: sshFingerprint(pub),
  }
}

/** `SHA256:<unpadded base64>` of the SSH wire encoding (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4), as `ssh-keygen -lf` prints. */
export function sshFingerprint(pub: KeyObject): string {
  const jwk = pub.export({format: 'jwk'})
  let wire: Buffer
  if (pub.asymmetricKeyType === 'ed25519') {
    wire = Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.from(jwk.x!, 'base64url'))])
  } else if (pub.asymmetricKeyType === 'ec') {
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')])
    wire = Buffer.concat([sshString('ecdsa-sha2-nistp256'), sshString('nistp256'), sshString(point)])
  } else if (pub.asymmetricKeyType === 'rsa') {
    wire = Buffer.concat([sshString('ssh-rsa'), sshString(mpint(Buffer.from(jwk.e!, 'base64url'))), sshString(mpint(Buffer.from(jwk.n!, 'base64url')))])
  } else {
    throw new InputError('KEY_UNSUPPORTED', `no SSH fingerprint for a ${pub.asymmetricKeyType} key`)
  }
  return `SHA256:${sha256(wire).toString('base64').replace(/=+$/, '')}`
}

function sshString(v: string | Buffer): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v
  const len = Buffer.alloc(4)
  len.writeUInt32BE(b.length)
  return Buffer.concat([len, b])
}

function mpint(b: Buffer): Buffer {
  let i = 0
  while (i < b.length - 1 && b[i] === 0) i++
  const v = b.subarray(i)
  return v[0] & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v
}

/**
 * Which keys we sign and verify with: ECDSA P-256 (cosign's default), Ed25519, RSA 2048-4096
 * (cosign's `goodkey` bounds). P-384/P-521 are refused: sigstore verifiers disagree on their
 * hash, and cosign only generates P-256.
 */
function checkSupported(pub: KeyObject, source: string): {algorithm: KeyAlgorithm; bits?: number} {
  const type = pub.asymmetricKeyType
  const details = pub.asymmetricKeyDetails ?? {}
  if (type === 'ed25519') return {algorithm: 'ed25519'}
  if (type === 'ec') {
    if (details.namedCurve === 'prime256v1') return {algorithm: 'ecdsa-p256'}
    throw new InputError('KEY_UNSUPPORTED', `${source}: unsupported elliptic curve ${curveName(details.namedCurve)}`, {
      suggestions: ['use an ECDSA P-256 key (aibox key generate), Ed25519, or RSA 2048-4096'],
    })
  }
  if (type === 'rsa') {
    const bits = details.modulusLength ?? 0
    if (bits < 2048 || bits > 4096) {
      throw new InputError('KEY_UNSUPPORTED', `${source}: RSA key of ${bits} bits; cosign and aibox accept 2048 to 4096 bits`, {
        suggestions: ['generate a new key: aibox key generate'],
      })
    }
    return {algorithm: 'rsa', bits}
  }
  throw new InputError('KEY_UNSUPPORTED', `${source}: unsupported key type ${type ?? 'unknown'}`, {
    suggestions: ['use an ECDSA P-256 key (aibox key generate), Ed25519, or RSA 2048-4096'],
  })
}

function curveName(c: string | undefined): string {
  const names: Record<string, string> = {secp384r1: 'P-384', secp521r1: 'P-521', secp224r1: 'P-224', secp256k1: 'secp256k1'}
  return c ? (names[c] ? `${names[c]} (${c})` : c) : 'unknown'
}

/** The node:crypto digest argument for signing with this key: SHA-256 for ECDSA and RSA (PKCS#1 v1.5), none for pure Ed25519. */
export function signatureDigest(key: PublicKeyInfo): 'sha256' | null {
  return key.algorithm === 'ed25519' ? null : 'sha256'
}

// ---------------------------------------------------------------------------------------------
// Generate, encrypt, decrypt

/** Generates a new key pair: ECDSA P-256 (cosign's default and the interoperable choice) or Ed25519. */
export function generateKeyPair(algorithm: 'ecdsa-p256' | 'ed25519' = 'ecdsa-p256'): PrivateKeyInfo {
  const {privateKey} =
    algorithm === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', {namedCurve: 'P-256'})
  return privateKeyInfo(privateKey, 'generated key')
}

export function privateKeyInfo(keyObject: KeyObject, source = 'key'): PrivateKeyInfo {
  return {keyObject, public: publicKeyInfo(keyObject, source)}
}

function scryptAsync(password: Buffer, salt: Buffer, params: {N: number; r: number; p: number}): Promise<Buffer> {
  // Node's default maxmem (32 MiB) is below what N=65536 needs (128·N·r bytes); allow exactly that much, twice over.
  const maxmem = 2 * 128 * params.N * params.r * params.p + 1024 * 1024
  return new Promise((resolve, reject) => {
    scrypt(password, salt, 32, {N: params.N, r: params.r, p: params.p, maxmem}, (err, key) => (err ? reject(err) : resolve(key)))
  })
}

/** Encrypts a private key into an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM byte-compatible with cosign `generate-key-pair`. */
export async function encryptPrivateKey(key: PrivateKeyInfo, password: string, options: {label?: string} = {}): Promise<string> {
  const plaintext = key.keyObject.export({format: 'der', type: 'pkcs8'})
  const salt = randomBytes(SALT_BYTES)
  const nonce = randomBytes(NONCE_BYTES)
  const secret = await scryptAsync(Buffer.from(password, 'utf8'), salt, SCRYPT_DEFAULT)
  const ciphertext = nacl.secretbox(plaintext, nonce, secret)
  plaintext.fill(0)
  secret.fill(0)
  // Key order is go-securesystemslib's struct order (encrypted.go:73-86); JSON.stringify keeps insertion order.
  const json = JSON.stringify({
    kdf: {name: 'scrypt', params: {N: SCRYPT_DEFAULT.N, r: SCRYPT_DEFAULT.r, p: SCRYPT_DEFAULT.p}, salt: encodeBase64(salt)},
    cipher: {name: 'nacl/secretbox', nonce: encodeBase64(nonce)},
    ciphertext: encodeBase64(ciphertext),
  })
  return toPem(options.label ?? SIGSTORE_PRIVATE_KEY_LABEL, Buffer.from(json, 'utf8'))
}

/** The parsed, validated envelope of an encrypted cosign key (no secret material yet). */
export interface EncryptedKeyEnvelope {
  label: string
  params: {N: number; r: number; p: number}
  salt: Buffer
  nonce: Buffer
  ciphertext: Buffer
}

/** Parses and validates the JSON inside an encrypted cosign key PEM block, refusing every parameter cosign refuses. */
export function parseEncryptedKey(block: PemBlock, source: string): EncryptedKeyEnvelope {
  const bad = (msg: string, code = 'KEY_INVALID') =>
    new InputError(code, `${source}: ${msg}`, {suggestions: ['check that this is a key file written by cosign or aibox key generate']})
  let doc: unknown
  try {
    doc = JSON.parse(block.der.toString('utf8'))
  } catch {
    throw bad('the PEM body is not the JSON of a cosign encrypted key')
  }
  if (!isObject(doc)) throw bad('the PEM body is not a JSON object')
  const {kdf, cipher, ciphertext} = doc
  if (!isObject(kdf)) throw bad('missing "kdf" object')
  if (kdf.name !== 'scrypt') throw bad(`unsupported kdf ${shownValue(kdf.name)}; cosign keys use "scrypt"`, 'KEY_UNSUPPORTED')
  if (!isObject(kdf.params)) throw bad('missing "kdf.params"')
  const {N, r, p} = kdf.params
  if (!SCRYPT_ACCEPTED.some((a) => a.N === N && a.r === r && a.p === p)) {
    throw bad(
      `unsupported scrypt parameters N=${shownValue(N)} r=${shownValue(r)} p=${shownValue(p)}; accepted: ${SCRYPT_ACCEPTED.map((a) => `N=${a.N} r=${a.r} p=${a.p}`).join(', ')}`,
      'KEY_UNSUPPORTED',
    )
  }
  const salt = typeof kdf.salt === 'string' ? decodeBase64(kdf.salt) : undefined
  if (!salt || salt.length === 0) throw bad('"kdf.salt" is missing or not base64')
  if (!isObject(cipher)) throw bad('missing "cipher" object')
  if (cipher.name !== 'nacl/secretbox') {
    throw bad(`unsupported cipher ${shownValue(cipher.name)}; cosign keys use "nacl/secretbox"`, 'KEY_UNSUPPORTED')
  }
  const nonce = typeof cipher.nonce === 'string' ? decodeBase64(cipher.nonce) : undefined
  if (!nonce) throw bad('"cipher.nonce" is missing or not base64')
  if (nonce.length !== NONCE_BYTES) throw bad(`"cipher.nonce" is ${nonce.length} bytes; nacl/secretbox needs ${NONCE_BYTES}`)
  const ct = typeof ciphertext === 'string' ? decodeBase64(ciphertext) : undefined
  if (!ct) throw bad('"ciphertext" is missing or not base64')
  if (ct.length <= nacl.secretbox.overheadLength) throw bad(`"ciphertext" is too short (${ct.length} bytes)`)
  return {label: block.label, params: {N: N as number, r: r as number, p: p as number}, salt, nonce, ciphertext: ct}
}

/** Decrypts an encrypted cosign key: scrypt → nacl/secretbox open → PKCS#8. */
export async function decryptPrivateKey(block: PemBlock, password: PasswordSource, source: string): Promise<PrivateKeyInfo> {
  const env = parseEncryptedKey(block, source)
  const candidates = await resolvePasswords(password, source, 'decrypt')
  let plaintext: Uint8Array | null = null
  for (const pw of candidates) {
    const secret = await scryptAsync(Buffer.from(pw, 'utf8'), env.salt, env.params)
    plaintext = nacl.secretbox.open(env.ciphertext, env.nonce, secret)
    secret.fill(0)
    if (plaintext) break
  }
  if (!plaintext) {
    throw new InputError(
      'KEY_DECRYPT_FAILED',
      `${source}: cannot decrypt the private key: wrong password, or the key file is corrupted (nacl/secretbox authentication failed)`,
      {
        suggestions: [
          'check COSIGN_PASSWORD / AIBOX_PASSWORD (an empty value is a valid password, and a trailing newline counts)',
          'if the file was edited or truncated, restore it from a backup',
        ],
      },
    )
  }
  const der = Buffer.from(plaintext)
  try {
    const keyObject = parsePkcs8(der, source, true)
    return privateKeyInfo(keyObject, source)
  } finally {
    der.fill(0)
  }
}

async function resolvePasswords(password: PasswordSource, source: string, purpose: 'decrypt' | 'encrypt'): Promise<string[]> {
  if (typeof password === 'string') return [password]
  const got = await password({source, purpose})
  return typeof got === 'string' ? [got] : got
}

const ED25519_OID = '1.3.101.112'
const PKCS8_V1_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/**
 * PKCS#8 DER → KeyObject. Two cases need care:
 * - PKCS#8 v2 (RFC 5958, with `[1] publicKey`) Ed25519, as sigstore-rs writes: OpenSSL 3.0 in
 *   Node 20 refuses it, so we rebuild the v1 encoding from the 32-byte seed and check that the
 *   embedded public key matches (cosign-formats.md §d "PKCS#8 v2 pitfall").
 * - SEC1 `ECPrivateKey` where PKCS#8 is required: cosign refuses it (keys.go:280-299), so do we,
 *   with a message that says what it is.
 */
function parsePkcs8(der: Buffer, source: string, insideEncrypted: boolean): KeyObject {
  try {
    return createPrivateKey({key: der, format: 'der', type: 'pkcs8'})
  } catch (err) {
    let asn: ASN1Obj
    try {
      asn = ASN1Obj.parseBuffer(der as Buffer<ArrayBuffer>)
    } catch {
      throw new InputError('KEY_INVALID', `${source}: the ${insideEncrypted ? 'decrypted ' : ''}key is not DER-encoded PKCS#8`, {cause: err})
    }
    const [version, second, third] = asn.subs
    const versionNumber = version && version.tag.number === 2 ? safeInteger(version) : undefined
    if (versionNumber === 1n && second?.tag.number === 4 && !second.tag.constructed) {
      throw new InputError(
        'KEY_INVALID',
        `${source}: the ${insideEncrypted ? 'decrypted ' : ''}key is a SEC1 EC private key ("EC PRIVATE KEY"), not PKCS#8; cosign refuses it too ("use ParseECPrivateKey instead for this key format")`,
        {suggestions: ['re-wrap it: decrypt to PEM, then aibox key import --key that.pem']},
      )
    }
    if (versionNumber === 1n && second?.tag.number === 16 && second.subs[0]?.tag.number === 6 && third?.tag.number === 4) {
      if (second.subs[0].toOID() === ED25519_OID) return ed25519FromV2(asn, third, source, err)
    }
    throw new InputError('KEY_INVALID', `${source}: cannot parse the private key: ${errorMessage(err)}`, {cause: err})
  }
}

function safeInteger(o: ASN1Obj): bigint | undefined {
  try {
    return o.toInteger()
  } catch {
    return undefined
  }
}

function ed25519FromV2(asn: ASN1Obj, privateKeyField: ASN1Obj, source: string, cause: unknown): KeyObject {
  const inner = privateKeyField.value
  // CurvePrivateKey ::= OCTET STRING (32 bytes), itself inside the privateKey OCTET STRING (RFC 8410 §7).
  if (inner.length !== 34 || inner[0] !== 0x04 || inner[1] !== 0x20) {
    throw new InputError('KEY_INVALID', `${source}: malformed Ed25519 private key (expected a 32-byte seed)`, {cause})
  }
  const v1 = Buffer.concat([PKCS8_V1_ED25519_PREFIX, inner.subarray(2)])
  let key: KeyObject
  try {
    key = createPrivateKey({key: v1, format: 'der', type: 'pkcs8'})
  } finally {
    v1.fill(0)
  }
  const embedded = asn.subs.find((s) => s.tag.class === 2 && s.tag.number === 1)
  if (embedded) {
    const pub = Buffer.from(createPublicKey(key).export({format: 'jwk'}).x!, 'base64url')
    // [1] IMPLICIT BIT STRING: first byte is the unused-bits count (0).
    if (!embedded.value.subarray(1).equals(pub)) {
      throw new InputError('KEY_INVALID', `${source}: the public key embedded in the PKCS#8 v2 Ed25519 key does not match its private key`)
    }
  }
  return key
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

// ---------------------------------------------------------------------------------------------
// Loading

export interface LoadPrivateKeyOptions {
  password: PasswordSource
  /** Accept unencrypted PEM (PKCS#8, SEC1, PKCS#1): only `aibox key import` does; signing requires an encrypted key file. */
  allowPlaintext?: boolean
}

/** Parses a private key file's text: an encrypted cosign key, or (with `allowPlaintext`) an unencrypted PEM key. */
export async function parsePrivateKey(text: string, source: string, options: LoadPrivateKeyOptions): Promise<PrivateKeyInfo> {
  let blocks: PemBlock[]
  try {
    blocks = parsePem(text)
  } catch (err) {
    throw new InputError('KEY_INVALID', `${source}: ${errorMessage(err)}`)
  }
  const encrypted = blocks.find((b) => ENCRYPTED_LABELS.has(b.label))
  if (encrypted) return decryptPrivateKey(encrypted, options.password, source)
  const plain = blocks.find((b) => ['PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY'].includes(b.label))
  if (plain) {
    if (plain.headers['Proc-Type']?.includes('ENCRYPTED')) {
      throw new InputError('KEY_UNSUPPORTED', `${source}: legacy encrypted PEM (Proc-Type: 4,ENCRYPTED) is not supported`, {
        suggestions: [`decrypt it first: openssl pkey -in ${source} -out plain.pem`],
      })
    }
    if (!options.allowPlaintext) {
      throw new InputError('KEY_UNENCRYPTED', `${source} is an unencrypted private key; aibox signs only with password-protected cosign key files`, {
        suggestions: [`wrap it first: aibox key import --key ${source} --output-key-prefix NAME`],
      })
    }
    const keyObject =
      plain.label === 'PRIVATE KEY'
        ? parsePkcs8(plain.der, source, false)
        : parseLegacyPrivate(plain.der, plain.label === 'EC PRIVATE KEY' ? 'sec1' : 'pkcs1', source)
    return privateKeyInfo(keyObject, source)
  }
  const labels = blocks.map((b) => b.label)
  if (labels.includes('ENCRYPTED PRIVATE KEY')) {
    throw new InputError('KEY_UNSUPPORTED', `${source}: password-encrypted PKCS#8 ("ENCRYPTED PRIVATE KEY") is not supported`, {
      suggestions: [`decrypt it first: openssl pkcs8 -in ${source} -out plain.pem, then aibox key import --key plain.pem`],
    })
  }
  if (labels.includes('OPENSSH PRIVATE KEY')) {
    throw new InputError('KEY_UNSUPPORTED', `${source}: OpenSSH private keys are not supported`, {
      suggestions: [`convert it: ssh-keygen -p -m PKCS8 -f ${source}, then aibox key import --key ${source}`],
    })
  }
  if (labels.some((l) => ['PUBLIC KEY', 'RSA PUBLIC KEY', 'CERTIFICATE'].includes(l))) {
    throw new InputError('KEY_NOT_PRIVATE', `${source} holds a public key or certificate, not a private key`, {
      suggestions: ['pass the private key file (e.g. cosign.key) to --key'],
    })
  }
  throw new InputError(
    'KEY_INVALID',
    labels.length ? `${source}: unsupported PEM block(s) ${labels.map((l) => `"${l}"`).join(', ')}` : `${source} contains no PEM private key`,
    {suggestions: ['pass a key written by aibox key generate or cosign generate-key-pair']},
  )
}

function parseLegacyPrivate(der: Buffer, type: 'sec1' | 'pkcs1', source: string): KeyObject {
  try {
    return createPrivateKey({key: der, format: 'der', type})
  } catch (err) {
    throw new InputError('KEY_INVALID', `${source}: cannot parse the ${type === 'sec1' ? 'SEC1 EC' : 'PKCS#1 RSA'} private key: ${errorMessage(err)}`, {cause: err})
  }
}

/** Loads a private key file (see `parsePrivateKey`). */
export async function loadPrivateKey(file: string, options: LoadPrivateKeyOptions): Promise<PrivateKeyInfo> {
  const text = readKeyFile(file, 'private key')
  return parsePrivateKey(text, file, options)
}

function readKeyFile(file: string, what: string): string {
  try {
    return readFileBounded(file, what, MAX_KEY_FILE_BYTES).toString('utf8')
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new NotFoundError('KEY_NOT_FOUND', `${what} '${file}' does not exist`, {
        suggestions: ['create a key pair with: aibox key generate --output-key-prefix NAME'],
      })
    }
    throw err
  }
}

/**
 * Parses a public key: PEM `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS#1), or `CERTIFICATE`
 * (its subject key; no chain is checked: the key is trusted because the user named it), or
 * SPKI DER bytes.
 */
export function parsePublicKey(data: string | Uint8Array, source: string): PublicKeyInfo {
  const text = typeof data === 'string' ? data : Buffer.from(data).toString('latin1')
  if (!text.includes('-----BEGIN')) {
    try {
      return publicKeyInfo(createPublicKey({key: Buffer.from(data), format: 'der', type: 'spki'}), source)
    } catch (err) {
      if (err instanceof InputError) throw err
      throw new InputError('KEY_INVALID', `${source} is not a PEM public key or SPKI DER`, {cause: err})
    }
  }
  let blocks: PemBlock[]
  try {
    blocks = parsePem(text)
  } catch (err) {
    throw new InputError('KEY_INVALID', `${source}: ${errorMessage(err)}`)
  }
  const block = blocks.find((b) => ['PUBLIC KEY', 'RSA PUBLIC KEY', 'CERTIFICATE'].includes(b.label))
  if (!block) {
    const priv = blocks.some((b) => b.label.includes('PRIVATE KEY'))
    throw new InputError(
      priv ? 'KEY_NOT_PUBLIC' : 'KEY_INVALID',
      priv ? `${source} is a private key; pass the public key (e.g. cosign.pub)` : `${source} contains no PEM public key or certificate`,
      priv ? {suggestions: [`print the public key with: aibox key public --key ${source}`]} : {},
    )
  }
  let keyObject: KeyObject
  try {
    keyObject =
      block.label === 'CERTIFICATE'
        ? new X509Certificate(block.der).publicKey
        : createPublicKey({key: block.der, format: 'der', type: block.label === 'PUBLIC KEY' ? 'spki' : 'pkcs1'})
  } catch (err) {
    throw new InputError('KEY_INVALID', `${source}: cannot parse the ${block.label === 'CERTIFICATE' ? 'certificate' : 'public key'}: ${errorMessage(err)}`, {
      cause: err,
      suggestions: ['the file may be truncated or corrupted; get a fresh copy of the public key'],
    })
  }
  return publicKeyInfo(keyObject, source)
}

/** Loads a public key file (see `parsePublicKey`). */
export function loadPublicKey(file: string): PublicKeyInfo {
  return parsePublicKey(readKeyFile(file, 'public key'), file)
}

/**
 * The public key of a key file of any kind: public key, certificate, encrypted cosign key
 * (needs the password), or unencrypted private key. What `aibox key public` prints.
 */
export async function loadAnyPublicKey(file: string, password: PasswordSource): Promise<PublicKeyInfo> {
  const text = readKeyFile(file, 'key')
  if (/-----BEGIN (PUBLIC KEY|RSA PUBLIC KEY|CERTIFICATE)-----/.test(text) && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    return parsePublicKey(text, file)
  }
  return (await parsePrivateKey(text, file, {password, allowPlaintext: true})).public
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface KeyPairPaths {
  privateKey: string
  publicKey: string
}

export function keyPairPaths(prefix: string): KeyPairPaths {
  return {privateKey: `${prefix}.key`, publicKey: `${prefix}.pub`}
}

/** Fails early (before any password prompt or scrypt) when a key file would be overwritten without `force`. */
export function assertKeyPairWritable(prefix: string, force: boolean): KeyPairPaths {
  const paths = keyPairPaths(prefix)
  if (!force) {
    for (const p of [paths.privateKey, paths.publicKey]) {
      if (fs.existsSync(p)) {
        throw new InputError('FILE_EXISTS', `'${p}' already exists; refusing to overwrite a key file`, {
          suggestions: ['pass --force to overwrite it, or choose another --output-key-prefix'],
        })
      }
    }
  }
  return paths
}

/**
 * Encrypts and writes `PREFIX.key` (0600) and `PREFIX.pub` (0644) like cosign
 * (generate_key_pair.go:112,117). Both files are staged first; if either cannot be moved into
 * place the other is removed again, so there is never half a key pair.
 */
export async function writeKeyPair(
  prefix: string,
  key: PrivateKeyInfo,
  password: string,
  options: {force?: boolean; label?: string} = {},
): Promise<KeyPairPaths> {
  const force = options.force ?? false
  const paths = assertKeyPairWritable(prefix, force)
  const pem = await encryptPrivateKey(key, password, {label: options.label})
  const priv = stageFile(paths.privateKey, pem, 0o600, force)
  let pub
  try {
    pub = stageFile(paths.publicKey, key.public.pem, 0o644, force)
  } catch (err) {
    priv.discard()
    throw err
  }
  try {
    priv.commit()
    try {
      pub.commit()
    } catch (err) {
      if (!force) fs.rmSync(paths.privateKey, {force: true})
      throw err
    }
  } finally {
    priv.discard()
    pub.discard()
  }
  return paths
}

/**
 * The file-level operations behind `aibox key …`, `aibox sign` and `aibox verify --key`:
 * read inputs (bounded, with precise not-found errors), call the primitives, write outputs
 * atomically. Commands only parse flags and print what these return.
 */
import path from 'node:path'

import {InputError} from '../errors.js'
import {type SerializedBundle, signMessageBundle, signSubjects} from './bundle.js'
import {envelopeToJSON, signEnvelope, type SerializedEnvelope} from './dsse.js'
import {encodeBase64} from './encoding.js'
import {readFileBounded, writeFileAtomic} from './fs.js'
import {
  type KeyAlgorithm,
  type PublicKeyInfo,
  assertKeyPairWritable,
  generateKeyPair,
  loadAnyPublicKey,
  loadPrivateKey,
  loadPublicKey,
  writeKeyPair,
} from './keys.js'
import type {PasswordSession} from './password.js'
import {signRaw} from './raw.js'
import {LocalKeySigner} from './signer.js'
import {COSIGN_SIGN_PREDICATE_TYPE, IN_TOTO_PAYLOAD_TYPE, buildStatement, statementBytes} from './statement.js'
import {artifactDigests, subjectDigestFor} from './subject.js'
import type {VerificationKey, VerifiedSignature} from './types.js'
import {MAX_SIGNATURE_BYTES, verifySignature} from './verify.js'

/** Files we sign or verify are read into memory; policy bundles are far smaller than this. */
export const MAX_ARTIFACT_BYTES = 512 * 1024 * 1024

export interface KeyDescription {
  algorithm: KeyAlgorithm
  bits?: number
  keyId: string
  hint: string
  fingerprint: string
}

export function describePublicKey(key: PublicKeyInfo): KeyDescription {
  return {algorithm: key.algorithm, ...(key.bits === undefined ? {} : {bits: key.bits}), keyId: key.keyId, hint: key.hint, fingerprint: key.fingerprint}
}

export interface KeyFilesResult extends KeyDescription {
  privateKey: string
  publicKey: string
}

/** `aibox key generate`: a new ECDSA P-256 (default) or Ed25519 key pair in cosign's file format. */
export async function generateKeyFiles(options: {algorithm?: 'ecdsa-p256' | 'ed25519'; prefix: string; force?: boolean; passwords: PasswordSession}): Promise<KeyFilesResult> {
  assertKeyPairWritable(options.prefix, options.force ?? false)
  const password = await options.passwords.forNewKey(`${options.prefix}.key`)
  const key = generateKeyPair(options.algorithm ?? 'ecdsa-p256')
  const paths = await writeKeyPair(options.prefix, key, password, {force: options.force})
  return {privateKey: paths.privateKey, publicKey: paths.publicKey, ...describePublicKey(key.public)}
}

/**
 * `aibox key import`: wraps an existing key (PEM PKCS#8, SEC1 `EC PRIVATE KEY`, PKCS#1 `RSA
 * PRIVATE KEY`, or a cosign key file in an older format) into a cosign key file with the
 * current parameters (N=65536, `ENCRYPTED SIGSTORE PRIVATE KEY`), like `cosign import-key-pair`.
 */
export async function importKeyFiles(options: {keyFile: string; prefix: string; force?: boolean; passwords: PasswordSession}): Promise<KeyFilesResult & {source: string}> {
  assertKeyPairWritable(options.prefix, options.force ?? false)
  const key = await loadPrivateKey(options.keyFile, {password: options.passwords.decrypt, allowPlaintext: true})
  const password = await options.passwords.forNewKey(`${options.prefix}.key`)
  const paths = await writeKeyPair(options.prefix, key, password, {force: options.force})
  return {source: options.keyFile, privateKey: paths.privateKey, publicKey: paths.publicKey, ...describePublicKey(key.public)}
}

export interface PublicKeyResult extends KeyDescription {
  /** SPKI `PUBLIC KEY` PEM. */
  publicKey: string
  output?: string
}

/** `aibox key public`: the public key of any key file (encrypted cosign key, plain private key, public key, certificate). */
export async function publicKeyOfFile(options: {keyFile: string; passwords: PasswordSession; output?: string; force?: boolean}): Promise<PublicKeyResult> {
  const key = await loadAnyPublicKey(options.keyFile, options.passwords.decrypt)
  if (options.output) writeFileAtomic(options.output, key.pem, {mode: 0o644, force: options.force ?? false})
  return {publicKey: key.pem, ...describePublicKey(key), ...(options.output ? {output: options.output} : {})}
}

/** `bundle`: Sigstore bundle v0.3 with a DSSE in-toto statement (default); `dsse`: a bare envelope; `raw`: base64 signature over the bytes; `message`: a message-signature bundle v0.3. */
export type SignFormat = 'bundle' | 'dsse' | 'raw' | 'message'
export const SIGN_FORMATS: readonly SignFormat[] = ['bundle', 'dsse', 'raw', 'message']

export interface SignFileResult {
  file: string
  /** The subject digest of the statement (bundle, dsse) or the file's sha256 (raw, message). */
  digest: string
  format: SignFormat
  key: KeyDescription
  output?: string
  /** The signature itself when not written to a file: bundle/envelope JSON, or base64 for raw. */
  signature?: SerializedBundle | SerializedEnvelope | string
  /** What `--output`'s file (or stdout) holds, exactly. */
  text: string
}

/** `aibox sign FILE`: signs a file with a cosign key file in one of the SignFormats. */
export async function signFile(options: {file: string; keyFile: string; format?: SignFormat; output?: string; passwords: PasswordSession}): Promise<SignFileResult> {
  const format = options.format ?? 'bundle'
  if (!SIGN_FORMATS.includes(format)) throw new InputError('INVALID_FORMAT', `unknown signature format '${format}' (${SIGN_FORMATS.join(', ')})`)
  const bytes = readFileBounded(options.file, 'file to sign', MAX_ARTIFACT_BYTES)
  const key = await loadPrivateKey(options.keyFile, {password: options.passwords.decrypt})
  const signer = new LocalKeySigner(key)
  const digest = await subjectDigestFor(options.file, bytes)
  let signature: SerializedBundle | SerializedEnvelope | string
  let text: string
  switch (format) {
    case 'bundle':
      signature = await signSubjects([{digest}], signer)
      text = `${JSON.stringify(signature)}\n`
      break
    case 'dsse': {
      const statement = buildStatement({subjects: [{digest}], predicateType: COSIGN_SIGN_PREDICATE_TYPE, predicate: {}})
      signature = envelopeToJSON(signEnvelope(statementBytes(statement), IN_TOTO_PAYLOAD_TYPE, signer))
      text = `${JSON.stringify(signature)}\n`
      break
    }
    case 'message':
      signature = await signMessageBundle(bytes, signer)
      text = `${JSON.stringify(signature)}\n`
      break
    default:
      signature = encodeBase64(signRaw(bytes, signer))
      // cosign sign-blob --output-signature writes no newline; on stdout it prints one (sign_blob.go:170,178).
      text = options.output ? signature : `${signature}\n`
  }
  if (options.output) writeFileAtomic(options.output, text, {mode: 0o644, force: true})
  return {
    file: options.file,
    digest: format === 'raw' || format === 'message' ? (await artifactDigests(options.file, bytes))[0] : digest,
    format,
    key: describePublicKey(key.public),
    ...(options.output ? {output: options.output} : {signature}),
    text,
  }
}

export interface VerifyFileResult {
  verified: true
  file: string
  digest: string
  signatures: VerifiedSignature[]
}

/** Reads the file and signature files for `aibox verify`. */
export async function readVerifyInputs(file: string, signatureFiles: string[]): Promise<{bytes: Buffer; digests: string[]; signatures: Array<{bytes: Buffer; source: string}>}> {
  if (signatureFiles.length === 0) throw new InputError('MISSING_SIGNATURE', 'no --signature given')
  const bytes = readFileBounded(file, 'file to verify', MAX_ARTIFACT_BYTES)
  const signatures = signatureFiles.map((s) => ({bytes: readFileBounded(s, 'signature', MAX_SIGNATURE_BYTES), source: s}))
  return {bytes, digests: await artifactDigests(file, bytes), signatures}
}

/** `aibox verify FILE --signature S… --key K…`: every signature must verify with one of the keys and bind to the file. */
export async function verifyFileWithKeys(options: {file: string; signatures: string[]; keyFiles: string[]}): Promise<VerifyFileResult> {
  const keys: VerificationKey[] = options.keyFiles.map((k) => ({...loadPublicKey(k), name: path.basename(k)}))
  const inputs = await readVerifyInputs(options.file, options.signatures)
  const verified = inputs.signatures.map((s) =>
    verifySignature(s.bytes, {keys, artifact: inputs.bytes, artifactName: options.file, subjectDigests: inputs.digests, source: s.source}),
  )
  return {verified: true, file: options.file, digest: inputs.digests[0], signatures: verified}
}

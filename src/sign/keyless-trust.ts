/**
 * Keyless verification against an organisation's own Sigstore, fully offline: the trust material
 * (Fulcio CA certificates, Rekor keys, TSA certificate chains, CT log keys) comes from files the
 * trust policy names — a Sigstore `trusted_root.json` (protobuf-specs `TrustedRoot`) and/or PEM
 * files — never from TUF or the network.
 *
 * A keyless bundle is verified with `@sigstore/verify`'s `Verifier` (certificate chain to a trusted
 * CA at the signing time, SCTs, transparency-log inclusion, RFC 3161 timestamps, signature), after
 * our own checks that give precise reasons for the common refusals (no tlog entry when one is
 * required, altered content). The signer's identity (OIDC issuer + certificate SAN) is returned
 * for the trust policy to match; this module does not decide who is trusted.
 */
import {X509Certificate as NodeX509, createHash, createPublicKey} from 'node:crypto'
import path from 'node:path'

import type {Bundle} from '@sigstore/bundle'
import {X509Certificate} from '@sigstore/core'
import {TrustedRoot} from '@sigstore/protobuf-specs'
import {type TrustMaterial, Verifier, VerificationError as SigstoreVerificationError, toSignedEntity, toTrustMaterial} from '@sigstore/verify'

import {InputError, NotFoundError, VerificationError, errorMessage} from '../errors.js'
import {parsePem} from './encoding.js'
import {readFileBounded} from './fs.js'
import {type PublicKeyInfo, publicKeyInfo} from './keys.js'

/** The media types of a Sigstore trusted root (protobuf-specs sigstore_trustroot.proto). */
export const TRUSTED_ROOT_MEDIA_TYPES = [
  'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  'application/vnd.dev.sigstore.trustedroot.v0.1+json',
  'application/vnd.dev.sigstore.trustedroot.v0.2+json',
]

/** Fulcio's OIDC issuer extensions: v2 (DER UTF8String) first, then the legacy v1 (raw string). */
const OID_ISSUER_V2 = '1.3.6.1.4.1.57264.1.8'
const OID_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1'

const MAX_TRUST_FILE_BYTES = 4 * 1024 * 1024
const BEGINNING = new Date(0)
const END = new Date(8640000000000000)

/** Where keyless trust material comes from; file paths are used as given (the caller resolves them). */
export interface KeylessTrustSources {
  /** A Sigstore trusted_root.json. */
  trustedRoot?: string
  /** PEM files of Fulcio CA certificates (roots and intermediates; any order). */
  fulcio?: string[]
  /** PEM public keys of Rekor transparency logs (log id = sha256 of the SPKI DER). */
  rekor?: string[]
  /** One PEM file per timestamp authority: its certificate chain (any order; the signing certificate is found). */
  tsa?: string[]
  /** PEM public keys of certificate-transparency logs (log id = sha256 of the SPKI DER). */
  ctlog?: string[]
}

/** How many verified pieces of evidence a keyless signature needs. */
export interface KeylessThresholds {
  /** Transparency-log entries (inclusion proof or promise verified with a trusted Rekor key). */
  tlog: number
  /** RFC 3161 timestamps verified with a trusted TSA. */
  timestamps: number
  /** Signed certificate timestamps (SCTs) embedded in the certificate, verified with a trusted CT log. */
  sct: number
}

export const DEFAULT_KEYLESS_THRESHOLDS: KeylessThresholds = {tlog: 1, timestamps: 0, sct: 0}

export interface KeylessTrust {
  material: TrustMaterial
  thresholds: KeylessThresholds
  /** How many of each the material holds (for messages and the "can never be satisfied" check). */
  counts: {certificateAuthorities: number; tlogs: number; timestampAuthorities: number; ctlogs: number}
}

/** One problem with one source, for the trust policy loader to locate. */
export interface TrustSourceProblem {
  field: keyof KeylessTrustSources
  index?: number
  message: string
}

function read(file: string, what: string): Buffer {
  return readFileBounded(file, what, MAX_TRUST_FILE_BYTES)
}

function certificates(file: string, what: string): X509Certificate[] {
  const text = read(file, what).toString('latin1')
  let blocks
  try {
    blocks = parsePem(text).filter((b) => b.label === 'CERTIFICATE')
  } catch (err) {
    throw new InputError('TRUST_MATERIAL_INVALID', `${file}: ${errorMessage(err)}`)
  }
  if (blocks.length === 0) throw new InputError('TRUST_MATERIAL_INVALID', `${file} holds no PEM CERTIFICATE`)
  return blocks.map((b, i) => {
    try {
      return X509Certificate.parse(Buffer.from(b.der))
    } catch (err) {
      throw new InputError('TRUST_MATERIAL_INVALID', `${file}: certificate ${i + 1} does not parse: ${errorMessage(err)}`)
    }
  })
}

function logAuthority(file: string, what: string): TrustMaterial['tlogs'][number] {
  let key
  try {
    key = createPublicKey(read(file, what).toString('latin1'))
  } catch (err) {
    if (err instanceof NotFoundError || err instanceof InputError) throw err
    throw new InputError('TRUST_MATERIAL_INVALID', `${file} is not a PEM public key: ${errorMessage(err)}`)
  }
  const spki = key.export({format: 'der', type: 'spki'})
  // Rekor v1 and RFC 6962 CT logs identify themselves by sha256 of their SPKI DER.
  return {logID: createHash('sha256').update(spki).digest(), baseURL: '', publicKey: key, validFor: {start: BEGINNING, end: END}}
}

/** Orders a TSA chain signing certificate first (the one that issued none of the others), then up to the root. */
function orderChain(certs: X509Certificate[], file: string): X509Certificate[] {
  if (certs.length === 1) return certs
  const issuedSomething = (c: X509Certificate) => certs.some((o) => o !== c && o.issuer.equals(c.subject) && !o.subject.equals(o.issuer))
  const leaves = certs.filter((c) => !issuedSomething(c))
  if (leaves.length !== 1) throw new InputError('TRUST_MATERIAL_INVALID', `${file}: not one certificate chain (${leaves.length} certificates issue none of the others)`)
  const chain = [leaves[0]!]
  while (chain.length < certs.length) {
    const last = chain[chain.length - 1]!
    const next = certs.find((c) => !chain.includes(c) && c.subject.equals(last.issuer))
    if (!next) throw new InputError('TRUST_MATERIAL_INVALID', `${file}: the certificates are not one chain (nothing in the file issued certificate ${certs.indexOf(last) + 1})`)
    chain.push(next)
  }
  return chain
}

function loadTrustedRoot(file: string): TrustMaterial {
  let doc: unknown
  try {
    doc = JSON.parse(read(file, 'Sigstore trusted root').toString('utf8'))
  } catch (err) {
    if (err instanceof NotFoundError || err instanceof InputError) throw err
    throw new InputError('TRUST_MATERIAL_INVALID', `${file} is not JSON: ${errorMessage(err)}`)
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new InputError('TRUST_MATERIAL_INVALID', `${file} is not a JSON object`)
  const mediaType = (doc as {mediaType?: unknown}).mediaType
  if (typeof mediaType !== 'string' || !TRUSTED_ROOT_MEDIA_TYPES.includes(mediaType)) {
    throw new InputError('TRUST_MATERIAL_INVALID', `${file}: mediaType ${JSON.stringify(mediaType)} is not a Sigstore trusted root (${TRUSTED_ROOT_MEDIA_TYPES.join(', ')})`)
  }
  try {
    return toTrustMaterial(TrustedRoot.fromJSON(doc))
  } catch (err) {
    throw new InputError('TRUST_MATERIAL_INVALID', `${file}: a certificate or key of the trusted root does not parse: ${errorMessage(err)}`)
  }
}

/**
 * Loads keyless trust material from a trusted_root.json and/or PEM files, merged. Collects every
 * problem (one per file) instead of stopping at the first; the caller decides how to report them.
 */
export function loadKeylessTrust(sources: KeylessTrustSources, thresholds: KeylessThresholds = DEFAULT_KEYLESS_THRESHOLDS): {trust?: KeylessTrust; problems: TrustSourceProblem[]} {
  const problems: TrustSourceProblem[] = []
  const material: TrustMaterial = {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    publicKey: (hint: string) => {
      // Keyless trust has no public keys: a key-signed bundle is verified by the trust policy's keys.
      throw new SigstoreVerificationError({code: 'PUBLIC_KEY_ERROR', message: `no public key for hint ${hint} in keyless trust material`})
    },
  }
  const attempt = (field: keyof KeylessTrustSources, index: number | undefined, fn: () => void) => {
    try {
      fn()
    } catch (err) {
      if (!(err instanceof InputError || err instanceof NotFoundError)) throw err
      problems.push({field, ...(index === undefined ? {} : {index}), message: err.message})
    }
  }
  if (sources.trustedRoot !== undefined) {
    attempt('trustedRoot', undefined, () => {
      const root = loadTrustedRoot(sources.trustedRoot!)
      material.certificateAuthorities.push(...root.certificateAuthorities)
      material.timestampAuthorities.push(...root.timestampAuthorities)
      material.tlogs.push(...root.tlogs)
      material.ctlogs.push(...root.ctlogs)
    })
  }
  for (const [i, f] of (sources.fulcio ?? []).entries()) {
    attempt('fulcio', i, () => material.certificateAuthorities.push({certChain: certificates(f, 'Fulcio CA certificates'), validFor: {start: BEGINNING, end: END}}))
  }
  for (const [i, f] of (sources.tsa ?? []).entries()) {
    attempt('tsa', i, () => material.timestampAuthorities.push({certChain: orderChain(certificates(f, 'TSA certificate chain'), f), validFor: {start: BEGINNING, end: END}}))
  }
  for (const [i, f] of (sources.rekor ?? []).entries()) attempt('rekor', i, () => material.tlogs.push(logAuthority(f, 'Rekor public key')))
  for (const [i, f] of (sources.ctlog ?? []).entries()) attempt('ctlog', i, () => material.ctlogs.push(logAuthority(f, 'CT log public key')))
  if (problems.length > 0) return {problems}
  const counts = {
    certificateAuthorities: material.certificateAuthorities.length,
    tlogs: material.tlogs.length,
    timestampAuthorities: material.timestampAuthorities.length,
    ctlogs: material.ctlogs.length,
  }
  return {trust: {material, thresholds, counts}, problems}
}

/** Resolves source paths relative to a directory (the trust policy's). */
export function resolveTrustSources(sources: KeylessTrustSources, dir: string): KeylessTrustSources {
  const r = (p: string) => path.resolve(dir, p)
  return {
    ...(sources.trustedRoot === undefined ? {} : {trustedRoot: r(sources.trustedRoot)}),
    ...(sources.fulcio ? {fulcio: sources.fulcio.map(r)} : {}),
    ...(sources.rekor ? {rekor: sources.rekor.map(r)} : {}),
    ...(sources.tsa ? {tsa: sources.tsa.map(r)} : {}),
    ...(sources.ctlog ? {ctlog: sources.ctlog.map(r)} : {}),
  }
}

/** The identity Fulcio bound into a certificate: the OIDC issuer extension and the SAN (email or URI). */
export interface CertificateIdentity {
  issuer: string
  subject: string
}

/** Reads issuer and SAN from a certificate (DER); either may be missing in a non-Fulcio certificate. */
export function certificateIdentity(der: Uint8Array): Partial<CertificateIdentity> {
  const cert = X509Certificate.parse(Buffer.from(der))
  let issuer: string | undefined
  const v2 = cert.extension(OID_ISSUER_V2)
  if (v2) issuer = v2.valueObj.subs?.[0]?.value.toString('utf8')
  else issuer = cert.extension(OID_ISSUER_V1)?.value.toString('utf8')
  const subject = cert.subjectAltName
  return {...(issuer ? {issuer} : {}), ...(subject ? {subject} : {})}
}

export interface KeylessVerified {
  /** The certificate's (ephemeral) public key. */
  key: PublicKeyInfo
  identity: CertificateIdentity
  certificate: {serialNumber: string; notBefore: string; notAfter: string}
  /** Evidence verified with the trust material. */
  verified: {tlogEntries: number; timestamps: number; scts: number}
}

function refuse(code: string, message: string, suggestions: string[]): VerificationError {
  return new VerificationError(code, message, {suggestions})
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`
}

/**
 * Verifies a certificate-bearing bundle with keyless trust material (see the module comment).
 * For a message signature `artifact` is the signed file (its digest was checked by the caller).
 * Throws VerificationError (exit 2) with one of: KEYLESS_TLOG_MISSING, KEYLESS_TIMESTAMP_MISSING,
 * KEYLESS_NO_TRUSTED_TIME, KEYLESS_CERTIFICATE_UNTRUSTED, KEYLESS_SCT_MISSING, KEYLESS_SCT_INVALID,
 * KEYLESS_TLOG_INVALID, KEYLESS_TIMESTAMP_INVALID, KEYLESS_IDENTITY_MISSING, SIGNATURE_INVALID.
 */
export function verifyKeylessBundle(bundle: Bundle, trust: KeylessTrust, options: {artifact?: Uint8Array; source: string}): KeylessVerified {
  const {source} = options
  const content = bundle.verificationMaterial.content
  const raw = content.$case === 'certificate' ? content.certificate.rawBytes : content.$case === 'x509CertificateChain' ? content.x509CertificateChain.certificates[0]?.rawBytes : undefined
  if (!raw) throw refuse('KEYLESS_CERTIFICATE_MISSING', `${source}: the bundle carries no certificate, so it is not a keyless signature`, ['verify key-signed bundles with the trust policy keys'])
  let leaf: NodeX509
  try {
    leaf = new NodeX509(Buffer.from(raw))
  } catch (err) {
    throw refuse('BUNDLE_INVALID', `${source}: the bundle's certificate cannot be parsed: ${errorMessage(err)}`, ['the signature file may be truncated or edited; fetch or re-create it'])
  }
  const key = publicKeyInfo(leaf.publicKey, `${source} (certificate)`)
  const sigstoreCert = X509Certificate.parse(Buffer.from(raw))
  const san = sigstoreCert.subjectAltName ?? `serial ${leaf.serialNumber}`
  const t = trust.thresholds
  const tlogEntries = bundle.verificationMaterial.tlogEntries.length
  const timestamps = bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps.length ?? 0

  if (tlogEntries < t.tlog) {
    throw refuse(
      'KEYLESS_TLOG_MISSING',
      `${source}: the trust policy requires ${plural(t.tlog, 'transparency-log entry', 'transparency-log entries')} (keyless.tlog), the bundle has ${tlogEntries}`,
      ['sign with your Rekor (aibox sign --keyless --rekor-url URL, or AIBOX_REKOR_URL)', 'or lower keyless.tlog in the trust policy if your Sigstore has no transparency log'],
    )
  }
  if (timestamps < t.timestamps) {
    throw refuse(
      'KEYLESS_TIMESTAMP_MISSING',
      `${source}: the trust policy requires ${plural(t.timestamps, 'RFC 3161 timestamp', 'RFC 3161 timestamps')} (keyless.timestamps), the bundle has ${timestamps}`,
      ['sign with your timestamp authority (aibox sign --keyless --tsa-url URL, or AIBOX_TSA_URL)'],
    )
  }

  let entity
  try {
    entity = toSignedEntity(bundle, options.artifact ? Buffer.from(options.artifact) : undefined)
  } catch (err) {
    throw refuse('BUNDLE_INVALID', `${source}: ${errorMessage(err)}`, ['the signature file may be truncated or edited; fetch or re-create it'])
  }
  // The signature first: an altered payload then fails as what it is, not as a tlog-body mismatch.
  if (!entity.signature.verifySignature(leaf.publicKey)) {
    throw refuse('SIGNATURE_INVALID', `${source}: the signature does not verify with the key of its certificate (${san}): the signed content or the signature was altered`, [
      'fetch the signature and the file again from the publisher; any byte change breaks the signature',
    ])
  }
  // The issuer first: a certificate from another Sigstore would otherwise fail on whatever Verifier checks first (its timestamps).
  const issuers = trust.material.certificateAuthorities.flatMap((ca) => ca.certChain)
  if (!issuers.some((ca) => safeVerify(sigstoreCert, ca))) throw untrustedCertificate(source, san, leaf)
  const scts = sigstoreCert.extSCT?.signedCertificateTimestamps.length ?? 0
  if (scts > 0 && trust.counts.ctlogs === 0) {
    throw refuse('KEYLESS_SCT_UNVERIFIABLE', `${source}: the certificate carries ${plural(scts, 'signed certificate timestamp', 'signed certificate timestamps')} from a CT log the trust policy does not list`, [
      "add your CT log's public key (keyless.ctlog) or a trusted_root.json with its ctlogs",
    ])
  }

  let signer
  try {
    // Any one verified time (a tlog integrated time or an RFC 3161 timestamp) anchors the short-lived certificate.
    signer = new Verifier(withCheckpointOrigins(trust.material, bundle), {tlogThreshold: t.tlog, ctlogThreshold: t.sct, timestampThreshold: 1}).verify(entity)
  } catch (err) {
    throw mapSigstoreError(err, source, san, leaf, t)
  }
  const issuer = signer.identity?.extensions?.issuer
  const subject = signer.identity?.subjectAlternativeName
  if (!issuer || !subject) {
    throw refuse('KEYLESS_IDENTITY_MISSING', `${source}: the certificate (${san}) has no ${issuer ? 'subject alternative name' : 'Fulcio OIDC issuer extension'}, so no identity can be matched`, [
      'keyless signatures must come from a Fulcio CA',
    ])
  }
  return {
    key,
    identity: {issuer, subject},
    certificate: {serialNumber: leaf.serialNumber, notBefore: new Date(leaf.validFrom).toISOString(), notAfter: new Date(leaf.validTo).toISOString()},
    verified: {tlogEntries, timestamps, scts},
  }
}

/**
 * @sigstore/verify accepts a checkpoint signature only from a log whose base URL matches the
 * checkpoint's origin name. A Rekor key given as a PEM file has no URL: it is trusted for the
 * origins its checkpoints name (the key still has to verify them); a trusted_root.json pins the URL.
 */
function withCheckpointOrigins(material: TrustMaterial, bundle: Bundle): TrustMaterial {
  if (!material.tlogs.some((l) => l.baseURL === '')) return material
  const names = new Set<string>()
  for (const e of bundle.verificationMaterial.tlogEntries) {
    const note = e.inclusionProof?.checkpoint?.envelope ?? ''
    for (const m of note.matchAll(/\u2014 (\S+) \S+\n/g)) names.add(m[1]!)
  }
  if (names.size === 0) return material
  const origins = [...names].join(' ')
  return {...material, tlogs: material.tlogs.map((l) => (l.baseURL === '' ? {...l, baseURL: origins} : l))}
}

function safeVerify(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.verify(issuer)
  } catch {
    return false
  }
}

function untrustedCertificate(source: string, san: string, leaf: NodeX509, cause?: unknown): VerificationError {
  return new VerificationError(
    'KEYLESS_CERTIFICATE_UNTRUSTED',
    `${source}: the certificate of ${san} (issued by "${(leaf.issuer ?? '').replace(/\n/g, ', ')}") does not chain to a certificate authority of the trust policy, or was not valid when it signed`,
    {
      suggestions: ['add your Fulcio CA certificates to the trust policy (keyless.fulcio or keyless.trustedRoot)', 'a certificate from another Sigstore (e.g. the public one) is not trusted by a private trust root'],
      ...(cause === undefined ? {} : {cause}),
    },
  )
}

function mapSigstoreError(err: unknown, source: string, san: string, leaf: NodeX509, t: KeylessThresholds): VerificationError {
  if (!(err instanceof Error)) return refuse('KEYLESS_VERIFICATION_FAILED', `${source}: ${String(err)}`, [])
  const code = (err as {code?: string}).code ?? ''
  const msg = err.message
  const cause = {cause: err}
  const make = (c: string, m: string, suggestions: string[]) => new VerificationError(c, m, {suggestions, ...cause})
  if (code === 'CERTIFICATE_ERROR' && /expected \d+ SCTs/.test(msg)) {
    return make('KEYLESS_SCT_MISSING', `${source}: the trust policy requires ${plural(t.sct, 'signed certificate timestamp', 'signed certificate timestamps')} (keyless.sct), the certificate has fewer`, [
      'use a Fulcio that logs its certificates to your CT log, or lower keyless.sct',
    ])
  }
  if (code === 'CERTIFICATE_ERROR' && /SCT/.test(msg)) {
    return make('KEYLESS_SCT_INVALID', `${source}: a signed certificate timestamp of the certificate does not verify with the CT log keys of the trust policy`, [
      "check keyless.ctlog / the trusted root's ctlogs",
    ])
  }
  if (code === 'CERTIFICATE_ERROR') return untrustedCertificate(source, san, leaf, err)
  if (code === 'TIMESTAMP_ERROR' && /expected \d+ timestamps/.test(msg)) {
    return make('KEYLESS_NO_TRUSTED_TIME', `${source}: the bundle has no verifiable signing time (no RFC 3161 timestamp and no transparency-log entry with an inclusion promise), so its short-lived certificate cannot be checked`, [
      'sign with a Rekor (--rekor-url) or a timestamp authority (--tsa-url)',
    ])
  }
  if (code === 'TIMESTAMP_ERROR') {
    return make('KEYLESS_TIMESTAMP_INVALID', `${source}: an RFC 3161 timestamp does not verify with the timestamp authorities of the trust policy (${msg})`, [
      "add your TSA's certificate chain (keyless.tsa or the trusted root's timestampAuthorities)",
    ])
  }
  if (code.startsWith('TLOG')) {
    return make('KEYLESS_TLOG_INVALID', `${source}: a transparency-log entry does not verify with the Rekor keys of the trust policy, or does not match the signature (${msg})`, [
      "add your Rekor's public key (keyless.rekor or the trusted root's tlogs)",
    ])
  }
  if (code === 'SIGNATURE_ERROR') {
    return make('SIGNATURE_INVALID', `${source}: the signature does not verify with the key of its certificate (${san})`, ['the signed content or the signature was altered'])
  }
  return make('KEYLESS_VERIFICATION_FAILED', `${source}: keyless verification failed: ${code ? `${code}: ` : ''}${msg}`, [])
}

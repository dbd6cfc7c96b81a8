/**
 * Keyless signing against an organisation's own Sigstore: an ephemeral P-256 key, a short-lived
 * certificate from Fulcio for the OIDC identity in the environment, then a Rekor v1 entry and/or an
 * RFC 3161 timestamp as witnesses (`@sigstore/sign` FulcioSigner + RekorWitness + TSAWitness,
 * toolchain.md §F). Key-based signing (signer.ts) stays the default and never touches the network.
 *
 * Nothing here defaults to the public Sigstore: the Fulcio URL must be given, and at least one
 * witness (Rekor or TSA), because a Fulcio certificate is valid for minutes and only a witness
 * proves it signed while valid. Plain HTTP is accepted for loopback hosts only, unless allowed
 * explicitly. The identity token is checked (a JWT, not expired, with issuer and subject) before
 * anything is sent, and it never appears in a message.
 */
import {X509Certificate} from 'node:crypto'

import {BUNDLE_V03_MEDIA_TYPE, type SerializedBundle, bundleFromJSON, bundleToJSON} from '@sigstore/bundle'
import {DSSEBundleBuilder, FulcioSigner, MessageSignatureBundleBuilder, RekorWitness, TSAWitness, type Witness} from '@sigstore/sign'

import {AiboxError, InputError, TransientError, errorMessage} from '../errors.js'
import {assertCosignCompatible} from './bundle.js'
import {certificateIdentity} from './keyless-trust.js'
import {publicKeyInfo} from './keys.js'
import {COSIGN_SIGN_PREDICATE_TYPE, IN_TOTO_PAYLOAD_TYPE, type StatementInput, buildStatement, statementBytes} from './statement.js'
import {type SignerInfo, signerInfo} from './types.js'

/** Environment variables read for keyless signing (flags take precedence). */
export const KEYLESS_ENV = {
  fulcioUrl: 'AIBOX_FULCIO_URL',
  rekorUrl: 'AIBOX_REKOR_URL',
  tsaUrl: 'AIBOX_TSA_URL',
  allowInsecureHttp: 'AIBOX_SIGSTORE_ALLOW_HTTP',
} as const

/** Where the OIDC identity token is read from, in order. */
export const IDENTITY_TOKEN_ENV = ['SIGSTORE_ID_TOKEN', 'AIBOX_OIDC_TOKEN'] as const

/**
 * Keyless settings as a plain object (what a configuration file or an embedding program holds).
 * Absent fields fall back to the environment (`AIBOX_FULCIO_URL`, …).
 */
export interface KeylessSettings {
  /** Base URL of your Fulcio (required). */
  fulcioUrl?: string
  /** Base URL of your Rekor (v1 API): each signature gets a transparency-log entry. */
  rekorUrl?: string
  /** Base URL of your RFC 3161 timestamp authority (Sigstore TSA API): each signature gets a timestamp. */
  tsaUrl?: string
  /** Accept plain http:// for non-loopback hosts (never do this outside a lab). */
  allowInsecureHttp?: boolean
  /** Per-request timeout in milliseconds (default 30 s). */
  timeoutMs?: number
  /** Retries on 5xx, 408, 429 and network errors (default 2). */
  retries?: number
  /**
   * Rekor v1 entry kind for DSSE bundles (default `intoto`). `dsse` is what the public Rekor prefers
   * but its canonicalised body is not reproduced by every Rekor-compatible server (toolchain.md §F).
   */
  rekorEntryType?: 'intoto' | 'dsse'
}

/** Resolved settings: validated URLs without trailing slashes. */
export interface KeylessConfig {
  fulcioUrl: string
  rekorUrl?: string
  tsaUrl?: string
  timeoutMs: number
  retries: number
  rekorEntryType: 'intoto' | 'dsse'
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h)
}

function checkUrl(value: string, what: string, origin: string, allowHttp: boolean): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new InputError('SIGSTORE_URL_INVALID', `${what} ${JSON.stringify(value)} (from ${origin}) is not a URL`, {suggestions: ['give a base URL such as https://fulcio.example.com']})
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InputError('SIGSTORE_URL_INVALID', `${what} ${value} (from ${origin}) must be http(s), not ${url.protocol}`)
  }
  if (url.username || url.password) {
    throw new InputError('SIGSTORE_URL_INVALID', `${what} (from ${origin}) must not carry credentials in the URL`)
  }
  if (url.search || url.hash) throw new InputError('SIGSTORE_URL_INVALID', `${what} ${value} (from ${origin}) must be a base URL, without ?query or #fragment`)
  if (url.protocol === 'http:' && !isLoopback(url.hostname) && !allowHttp) {
    throw new InputError('SIGSTORE_URL_INSECURE', `${what} ${value} (from ${origin}) uses plain HTTP to a non-loopback host: the identity token would travel in clear`, {
      suggestions: ['use https://', `only in a lab: --sigstore-allow-http (or ${KEYLESS_ENV.allowInsecureHttp}=1)`],
    })
  }
  return url.toString().replace(/\/+$/, '')
}

function envFlag(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes)$/i.test(v.trim())
}

/** Validates keyless settings, falling back to the environment for absent fields. */
export function resolveKeylessConfig(settings: KeylessSettings = {}, env: Record<string, string | undefined> = process.env): KeylessConfig {
  const allowHttp = settings.allowInsecureHttp ?? envFlag(env[KEYLESS_ENV.allowInsecureHttp])
  const pick = (field: 'fulcioUrl' | 'rekorUrl' | 'tsaUrl', flag: string): {value: string; origin: string} | undefined => {
    const given = settings[field]
    if (given !== undefined && given !== '') return {value: given, origin: flag}
    const fromEnv = env[KEYLESS_ENV[field]]
    return fromEnv ? {value: fromEnv, origin: KEYLESS_ENV[field]} : undefined
  }
  const fulcio = pick('fulcioUrl', '--fulcio-url')
  if (!fulcio) {
    throw new InputError('FULCIO_URL_MISSING', `keyless signing needs the URL of your Fulcio: --fulcio-url URL or ${KEYLESS_ENV.fulcioUrl}`, {
      suggestions: ['aibox has no default Sigstore: name your own services', 'or sign with a key (--key), which needs no network'],
    })
  }
  const rekor = pick('rekorUrl', '--rekor-url')
  const tsa = pick('tsaUrl', '--tsa-url')
  if (!rekor && !tsa) {
    throw new InputError('KEYLESS_WITNESS_MISSING', `keyless signing needs a transparency log (--rekor-url / ${KEYLESS_ENV.rekorUrl}) or a timestamp authority (--tsa-url / ${KEYLESS_ENV.tsaUrl}), or both`, {
      suggestions: ['a Fulcio certificate is valid for minutes: only a tlog entry or a timestamp proves the signature was made while it was valid'],
    })
  }
  const timeoutMs = settings.timeoutMs ?? 30_000
  const retries = settings.retries ?? 2
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new InputError('INVALID_TIMEOUT', `keyless timeout must be a positive number of milliseconds, got ${timeoutMs}`)
  if (!Number.isInteger(retries) || retries < 0 || retries > 10) throw new InputError('INVALID_RETRIES', `keyless retries must be 0..10, got ${retries}`)
  const entryType = settings.rekorEntryType ?? 'intoto'
  if (entryType !== 'intoto' && entryType !== 'dsse') throw new InputError('INVALID_REKOR_ENTRY_TYPE', `rekorEntryType must be intoto or dsse, got ${JSON.stringify(entryType)}`)
  return {
    fulcioUrl: checkUrl(fulcio.value, 'the Fulcio URL', fulcio.origin, allowHttp),
    ...(rekor ? {rekorUrl: checkUrl(rekor.value, 'the Rekor URL', rekor.origin, allowHttp)} : {}),
    ...(tsa ? {tsaUrl: checkUrl(tsa.value, 'the TSA URL', tsa.origin, allowHttp)} : {}),
    timeoutMs,
    retries,
    rekorEntryType: entryType,
  }
}

/** What we know of the OIDC token before Fulcio sees it (the token itself is never printed). */
export interface IdentityToken {
  token: string
  /** The environment variable it came from. */
  source: string
  issuer: string
  /** The identity Fulcio will be asked to certify: `email` (when verified) or `sub`. */
  subject: string
  expiresAt?: Date
}

const CLOCK_SKEW_MS = 60_000

function decodePart(part: string): unknown {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(part)) return undefined
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
}

/** Checks that `token` is a usable OIDC ID token: a JWT with issuer, subject and a future expiry. */
export function parseIdentityToken(token: string, source: string, now: Date = new Date()): IdentityToken {
  const bad = (what: string) =>
    new InputError('OIDC_TOKEN_INVALID', `the OIDC token in ${source} ${what}`, {
      suggestions: ['set it to the raw ID token your identity provider issued for the audience your Fulcio expects (often "sigstore")'],
    })
  const parts = token.split('.')
  if (parts.length !== 3) throw bad(`is not a JWT (expected header.payload.signature, found ${parts.length} part${parts.length === 1 ? '' : 's'})`)
  const header = decodePart(parts[0]!)
  const payload = decodePart(parts[1]!)
  if (typeof header !== 'object' || header === null || Array.isArray(header) || typeof (header as {alg?: unknown}).alg !== 'string') {
    throw bad('is not a JWT: its header is not base64url JSON with an "alg"')
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw bad('is not a JWT: its payload is not base64url JSON')
  const claims = payload as Record<string, unknown>
  if (typeof claims.iss !== 'string' || claims.iss === '') throw bad('has no "iss" (issuer) claim')
  let subject: string
  if (claims.email !== undefined) {
    if (typeof claims.email !== 'string' || claims.email === '') throw bad('has an "email" claim that is not a string')
    // Fulcio (and @sigstore/sign) refuse an email the issuer has not verified.
    if (claims.email_verified !== true) throw bad(`has email "${claims.email}" but not "email_verified": true, which Fulcio requires`)
    subject = claims.email
  } else if (typeof claims.sub === 'string' && claims.sub !== '') {
    subject = claims.sub
  } else {
    throw bad('has neither an "email" nor a "sub" claim')
  }
  let expiresAt: Date | undefined
  if (claims.exp !== undefined) {
    if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) throw bad('has an "exp" claim that is not a number')
    expiresAt = new Date(claims.exp * 1000)
    if (expiresAt.getTime() <= now.getTime()) {
      throw new InputError('OIDC_TOKEN_EXPIRED', `the OIDC token in ${source} (${subject} from ${claims.iss}) expired at ${expiresAt.toISOString()}`, {
        suggestions: ['fetch a fresh ID token right before signing: they are valid for minutes'],
      })
    }
  }
  if (typeof claims.nbf === 'number' && claims.nbf * 1000 > now.getTime() + CLOCK_SKEW_MS) {
    throw new InputError('OIDC_TOKEN_NOT_YET_VALID', `the OIDC token in ${source} is not valid before ${new Date(claims.nbf * 1000).toISOString()}`, {
      suggestions: ["check this machine's clock"],
    })
  }
  return {token, source, issuer: claims.iss, subject, ...(expiresAt ? {expiresAt} : {})}
}

/** Reads the OIDC token from SIGSTORE_ID_TOKEN, else AIBOX_OIDC_TOKEN, and checks it. */
export function readIdentityToken(env: Record<string, string | undefined> = process.env, now: Date = new Date()): IdentityToken {
  for (const name of IDENTITY_TOKEN_ENV) {
    const value = env[name]?.trim()
    if (value) return parseIdentityToken(value, name, now)
  }
  throw new InputError('OIDC_TOKEN_MISSING', `keyless signing needs an OIDC identity token: set ${IDENTITY_TOKEN_ENV.join(' or ')}`, {
    suggestions: ['in CI, request an ID token for your Fulcio audience and export it as SIGSTORE_ID_TOKEN', 'or sign with a key (--key), which needs no identity provider'],
  })
}

/** The result of one keyless signature. */
export interface KeylessSignature {
  bundle: SerializedBundle
  /** The ephemeral key (for key ids) and the certified identity. */
  signer: SignerInfo & {identity: {issuer: string; subject: string}}
  certificate: {serialNumber: string; notBefore: string; notAfter: string}
  tlogEntries: number
  timestamps: number
}

const SERVICE_ERRORS: Record<string, {service: string; flag: string}> = {
  CA_CREATE_SIGNING_CERTIFICATE_ERROR: {service: 'Fulcio', flag: '--fulcio-url'},
  TLOG_CREATE_ENTRY_ERROR: {service: 'Rekor', flag: '--rekor-url'},
  TLOG_FETCH_ENTRY_ERROR: {service: 'Rekor', flag: '--rekor-url'},
  TSA_CREATE_TIMESTAMP_ERROR: {service: 'the timestamp authority', flag: '--tsa-url'},
}

/** Maps @sigstore/sign failures: 4xx are refusals (exit 1), 5xx/network/timeouts are transient (exit 4). */
function mapSignError(err: unknown, config: KeylessConfig, token: IdentityToken): AiboxError {
  if (err instanceof AiboxError) return err
  const code = (err as {code?: string}).code ?? ''
  const svc = SERVICE_ERRORS[code]
  if (!svc) {
    // IDENTITY_TOKEN_* messages embed the token: never repeat them.
    if (code.startsWith('IDENTITY_TOKEN')) return new InputError('OIDC_TOKEN_INVALID', `the OIDC token in ${token.source} was refused by the signer`)
    return new AiboxError('KEYLESS_SIGN_FAILED', `keyless signing failed: ${errorMessage(err)}`, {cause: err})
  }
  const url = svc.service === 'Fulcio' ? config.fulcioUrl : svc.service === 'Rekor' ? config.rekorUrl : config.tsaUrl
  const cause = (err as {cause?: {statusCode?: number; message?: string; code?: string}}).cause
  const status = cause?.statusCode
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
    const hints =
      svc.service === 'Fulcio'
        ? [
            `check that your Fulcio trusts the issuer ${token.issuer} and accepts the token's audience`,
            'a token is valid for minutes: fetch a fresh one right before signing',
          ]
        : [`check ${svc.flag}: it must be the base URL of the service`]
    return new InputError(`${svc.service === 'Fulcio' ? 'FULCIO' : svc.service === 'Rekor' ? 'REKOR' : 'TSA'}_REFUSED`, `${svc.service} at ${url} refused the request: ${cause?.message ?? `HTTP ${status}`}`, {
      cause: err,
      suggestions: hints,
    })
  }
  const why = status !== undefined ? cause?.message ?? `HTTP ${status}` : cause?.code ?? cause?.message ?? errorMessage(err)
  return new TransientError(`${svc.service === 'Fulcio' ? 'FULCIO' : svc.service === 'Rekor' ? 'REKOR' : 'TSA'}_UNAVAILABLE`, `${svc.service} at ${url} could not be reached or failed: ${why}`, {
    cause: err,
    suggestions: ['retry later', `check ${svc.flag} and the network path to it`],
  })
}

/**
 * Signs with a fresh Fulcio certificate per signature. `sign*` methods return v0.3 bundles in the
 * shape cosign v3 writes for keyless (`verificationMaterial.certificate`, DSSE without keyid).
 */
export class KeylessSigner {
  readonly config: KeylessConfig
  readonly token: IdentityToken

  constructor(config: KeylessConfig, token: IdentityToken) {
    this.config = config
    this.token = token
  }

  /** Settings + environment → a signer, with every input checked before any network call. */
  static fromEnvironment(settings: KeylessSettings = {}, env: Record<string, string | undefined> = process.env, now: Date = new Date()): KeylessSigner {
    const config = resolveKeylessConfig(settings, env)
    return new KeylessSigner(config, readIdentityToken(env, now))
  }

  private parts(): {signer: FulcioSigner; witnesses: Witness[]} {
    const fetch = {timeout: this.config.timeoutMs, retry: {retries: this.config.retries, minTimeout: 250, factor: 2}}
    const token = this.token.token
    const signer = new FulcioSigner({fulcioBaseURL: this.config.fulcioUrl, identityProvider: {getToken: async () => token}, ...fetch})
    const witnesses: Witness[] = []
    if (this.config.rekorUrl) witnesses.push(new RekorWitness({rekorBaseURL: this.config.rekorUrl, entryType: this.config.rekorEntryType, fetchOnConflict: true, ...fetch}))
    if (this.config.tsaUrl) witnesses.push(new TSAWitness({tsaBaseURL: this.config.tsaUrl, ...fetch}))
    return {signer, witnesses}
  }

  /** Any payload as a DSSE bundle v0.3. */
  async signDsse(payload: Uint8Array, payloadType: string): Promise<KeylessSignature> {
    const {signer, witnesses} = this.parts()
    let json: SerializedBundle
    try {
      json = bundleToJSON(await new DSSEBundleBuilder({signer, witnesses}).create({data: Buffer.from(payload), type: payloadType}))
    } catch (err) {
      throw mapSignError(err, this.config, this.token)
    }
    delete (json.dsseEnvelope!.signatures[0] as {keyid?: string}).keyid
    return this.finish(json)
  }

  /** An in-toto statement (the container of every aibox signature and approval), cosign-compatible. */
  async signStatement(input: StatementInput): Promise<KeylessSignature> {
    const r = await this.signDsse(statementBytes(buildStatement(input)), IN_TOTO_PAYLOAD_TYPE)
    assertCosignCompatible(r.bundle)
    return r
  }

  /** A plain signature over subjects: cosign's sign predicate with an empty predicate. */
  async signSubjects(subjects: StatementInput['subjects']): Promise<KeylessSignature> {
    return this.signStatement({subjects, predicateType: COSIGN_SIGN_PREDICATE_TYPE, predicate: {}})
  }

  /**
   * A message-signature bundle over `data` (cosign sign-blob --bundle). The builder writes v0.2
   * with an `x509CertificateChain` holding only the leaf; v0.3 carries that leaf as `certificate`.
   */
  async signMessage(data: Uint8Array): Promise<KeylessSignature> {
    const {signer, witnesses} = this.parts()
    let json: SerializedBundle
    try {
      json = bundleToJSON(await new MessageSignatureBundleBuilder({signer, witnesses}).create({data: Buffer.from(data)}))
    } catch (err) {
      throw mapSignError(err, this.config, this.token)
    }
    const vm = json.verificationMaterial as Record<string, unknown>
    const chain = vm.x509CertificateChain as {certificates: Array<{rawBytes: string}>} | undefined
    if (chain) {
      delete vm.x509CertificateChain
      vm.certificate = {rawBytes: chain.certificates[0]!.rawBytes}
      json.mediaType = BUNDLE_V03_MEDIA_TYPE
    }
    return this.finish(json)
  }

  private finish(json: SerializedBundle): KeylessSignature {
    const vm = json.verificationMaterial as Record<string, unknown>
    if (Array.isArray(vm.tlogEntries) && vm.tlogEntries.length === 0) delete vm.tlogEntries
    const tvd = vm.timestampVerificationData as {rfc3161Timestamps?: unknown[]} | undefined
    if (tvd && (tvd.rfc3161Timestamps ?? []).length === 0) delete vm.timestampVerificationData
    const bundle = bundleFromJSON(json)
    const content = bundle.verificationMaterial.content
    if (content.$case !== 'certificate') throw new AiboxError('INTERNAL', `the keyless bundle carries ${content.$case}, not a certificate`)
    const der = content.certificate.rawBytes
    const cert = new X509Certificate(der)
    const id = certificateIdentity(der)
    if (!id.issuer || !id.subject) {
      throw new AiboxError('FULCIO_CERTIFICATE_INVALID', `Fulcio at ${this.config.fulcioUrl} issued a certificate without ${id.issuer ? 'a subject alternative name' : 'the OIDC issuer extension'}`, {
        suggestions: ['check that the URL is a Fulcio'],
      })
    }
    return {
      bundle: json,
      signer: {...signerInfo(publicKeyInfo(cert.publicKey, 'the Fulcio certificate')), identity: {issuer: id.issuer, subject: id.subject}},
      certificate: {serialNumber: cert.serialNumber, notBefore: new Date(cert.validFrom).toISOString(), notAfter: new Date(cert.validTo).toISOString()},
      tlogEntries: bundle.verificationMaterial.tlogEntries.length,
      timestamps: bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps.length ?? 0,
    }
  }
}

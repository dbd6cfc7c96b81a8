/**
 * The registry checks of `aibox doctor` (user-demand.md "A registry doctor"): every probe is a real
 * request through src/oci (client, authorizer, transport, error mapping), so what doctor says is
 * what push, pull and start will meet.
 *
 * - reachable: an anonymous `GET /v2/` (no credentials are sent; over HTTPS without certificate
 *   verification, so that a TLS problem is reported as such by `registry.tls`, not as "down").
 * - tls: one TLS handshake with the transport's CA set (tls.ts): issuer, dates, host name.
 * - clock: the registry's `Date` header against the local clock at the request's midpoint.
 * - auth: where credentials come from, and an authenticated `GET /v2/` (a bearer token is obtained).
 * - pull: the tag list with pull scope, and REF's tag or digest resolved.
 * - push: an upload session opened with push scope and cancelled at once (`DELETE` on its
 *   Location): nothing is written to the repository.
 * - referrers: `GET /v2/<repo>/referrers/<digest>` (called, not inferred from `OCI-Subject`:
 *   sigstore-js#1183), else the `sha256-<hex>` tag fallback the stores use.
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'

import {EXIT} from '../errors.js'
import {parseWwwAuthenticate, repositoryScope} from '../oci/auth/challenge.js'
import {dockerConfigPath} from '../oci/auth/credentials.js'
import {RegistryClient, responseError} from '../oci/client.js'
import {OciError, isOciError} from '../oci/errors.js'
import {type HttpResponse, HttpTransport, discard, header, headerValues} from '../oci/http.js'
import {MT} from '../oci/media.js'
import {fetchAll} from '../oci/content.js'
import {parseManifest} from '../oci/manifest.js'
import {type RegistryReference, isLoopbackHost} from '../oci/reference.js'
import {RemoteRepository, type RemoteRepositoryOptions} from '../oci/stores/remote.js'
import type {Descriptor} from '../oci/target.js'
import {inspectTls, type TlsInspection} from './tls.js'
import {type CheckOutcome, DEFAULT_CLOCK_FAIL_MS, DEFAULT_CLOCK_WARN_MS, DEFAULT_EXPIRY_WARN_MS, fail, failFrom, formatDuration, pass, skip, warn} from './types.js'

interface Probe {
  url: URL
  /** Local clock before and after the request (ms). */
  sent: number
  received: number
  res?: {status: number; date?: string; apiVersion?: string; challenges: ReturnType<typeof parseWwwAuthenticate>}
  error?: OciError
}

/** Chain verification codes that mean "issued by a CA we do not trust". */
const UNTRUSTED_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
])

export interface RegistryCheckOptions {
  env: NodeJS.ProcessEnv
  now: () => Date
  clockWarnMs?: number
  clockFailMs?: number
  expiryWarnMs?: number
}

export class RegistryChecks {
  readonly client: RegistryClient
  readonly repo: RemoteRepository
  readonly location: string
  private readonly probeTransport: HttpTransport
  private probed?: Promise<Probe>
  private tlsInspected?: Promise<TlsInspection | undefined>
  private authResult?: Promise<CheckOutcome>
  private resolved?: Descriptor
  private readonly caFiles: string[]

  constructor(
    readonly ref: RegistryReference,
    private readonly options: RemoteRepositoryOptions,
    private readonly opts: RegistryCheckOptions,
  ) {
    // Diagnose, do not persist: one attempt per request, and a short connect timeout.
    const retry = {attempts: 1, ...options.retry}
    const timeouts = {connectMs: 5_000, headersMs: 15_000, ...options.timeouts}
    this.client = new RegistryClient(ref.registry, {...options, retry, timeouts, env: options.env ?? opts.env})
    this.repo = new RemoteRepository(ref, {client: this.client})
    this.location = `${ref.registry}/${ref.repository}`
    this.caFiles = options.caFile === undefined ? [] : Array.isArray(options.caFile) ? options.caFile : [options.caFile]
    // Never carries credentials; HTTPS without verification so that a TLS problem does not read as "unreachable".
    this.probeTransport = new HttpTransport({insecure: true, retry, timeouts, onWarning: () => {}})
  }

  get baseUrl(): URL {
    return new URL(this.client.baseUrl)
  }

  get https(): boolean {
    return this.baseUrl.protocol === 'https:'
  }

  async close(): Promise<void> {
    await this.repo.close()
    await this.probeTransport.close()
  }

  private probe(): Promise<Probe> {
    this.probed ??= (async () => {
      const url = new URL('/v2/', this.baseUrl)
      const sent = Date.now()
      try {
        const res = await this.probeTransport.send({method: 'GET', url})
        const received = Date.now()
        await discard(res)
        return {
          url,
          sent,
          received,
          res: {
            status: res.status,
            date: header(res, 'date'),
            apiVersion: header(res, 'docker-distribution-api-version'),
            challenges: parseWwwAuthenticate(headerValues(res, 'www-authenticate')),
          },
        }
      } catch (err) {
        return {url, sent, received: Date.now(), error: isOciError(err) ? err : new OciError('NETWORK', String(err), {cause: err})}
      }
    })()
    return this.probed
  }

  private inspect(): Promise<TlsInspection | undefined> {
    this.tlsInspected ??= (async () => {
      if (!this.https) return undefined
      const u = this.baseUrl
      return inspectTls(u.hostname, Number(u.port || 443), {ca: this.client.transport.ca, timeoutMs: this.client.transport.timeouts.connectMs})
    })()
    return this.tlsInspected
  }

  /** Why the requests that need the registry cannot be made, or undefined when they can. */
  private async blocked(): Promise<string | undefined> {
    const p = await this.probe()
    if (p.error || !p.res || (p.res.status !== 200 && p.res.status !== 401)) return 'the registry is not reachable (see registry.reachable)'
    const t = await this.inspect()
    if (t && !t.authorized && !this.client.transport.insecure) return 'the registry certificate is not trusted (see registry.tls)'
    return undefined
  }

  private async authBlocked(): Promise<string | undefined> {
    const b = await this.blocked()
    if (b) return b
    const a = await this.auth()
    return a.status === 'fail' ? 'authentication failed (see registry.auth)' : undefined
  }

  // ---- checks ------------------------------------------------------------------------------

  async reachable(): Promise<CheckOutcome> {
    const p = await this.probe()
    const where = p.url.href
    const ms = p.received - p.sent
    const details = {url: where, scheme: p.url.protocol.slice(0, -1), elapsedMs: ms}
    if (p.error) {
      const suggestions = p.error.suggestions ?? []
      if (p.error.code === 'TLS' && !this.https) return fail('TLS', p.error.message, suggestions, EXIT.TRANSIENT, details)
      return fail(p.error.code, p.error.message, suggestions, p.error.exit, {...details, ...(p.error.details?.errno ? {errno: p.error.details.errno} : {})})
    }
    const {status, apiVersion} = p.res!
    if (status === 200 || status === 401) {
      const api = apiVersion ? ` (${apiVersion})` : ''
      const auth = status === 401 ? ', asks for authentication' : ''
      return pass(`${where} answers the OCI distribution API${api} in ${ms} ms${auth}`, {...details, status, ...(apiVersion ? {apiVersion} : {})})
    }
    if (status === 404) {
      return fail('NOT_A_REGISTRY', `${where} answered 404: no OCI distribution API at this address`, ['check the registry host and port in the reference', 'a registry behind a path prefix is not supported: use its own host name'], EXIT.NOT_FOUND, {...details, status})
    }
    if (status >= 500 || status === 429) {
      return fail('REGISTRY_ERROR', `${where} answered ${status}: the registry is up but failing`, ['retry later; if it persists, check the registry logs'], EXIT.TRANSIENT, {...details, status})
    }
    return fail('REGISTRY_ERROR', `${where} answered ${status} where a registry answers 200 or 401`, ['check that the reference names an OCI registry'], EXIT.USAGE, {...details, status})
  }

  async tls(): Promise<CheckOutcome> {
    const host = this.ref.host
    if (!this.https) {
      if (isLoopbackHost(host)) return skip(`plain HTTP to ${host} (the default for a loopback registry; --no-plain-http or --ca-file switch to HTTPS)`, {scheme: 'http'})
      return warn('PLAIN_HTTP', `plain HTTP to ${host}: requests, credentials and policies cross the network unprotected`, ['serve the registry over HTTPS and drop --plain-http'], {scheme: 'http'})
    }
    const t = (await this.inspect())!
    const caSource = this.caFiles.length > 0 ? `--ca-file ${this.caFiles.join(', ')}` : this.opts.env.NODE_EXTRA_CA_CERTS ? `the system store and NODE_EXTRA_CA_CERTS=${this.opts.env.NODE_EXTRA_CA_CERTS}` : 'the system store'
    const details: Record<string, unknown> = {scheme: 'https', trustedCas: caSource, ...(t.protocol ? {protocol: t.protocol} : {}), ...(t.certificate ? {certificate: t.certificate} : {}), chain: t.chain}
    if (!t.handshake) {
      if (!t.connected) return skip(`no TLS connection to ${host}: ${t.error?.message ?? 'not reachable'} (see registry.reachable)`, details)
      const plain = /wrong version number|packet length too long|http request/i.test(t.error?.message ?? '')
      return fail(
        'TLS',
        plain ? `${host} does not speak TLS on this port (it probably serves plain HTTP): ${t.error?.message}` : `TLS handshake with ${host} failed: ${t.error?.message}`,
        plain ? ['if the registry serves plain HTTP, pass --plain-http', 'check the port'] : ['check the registry TLS setup (protocol versions, certificate and key)'],
        EXIT.TRANSIENT,
        {...details, ...(t.error?.code ? {errno: t.error.code} : {})},
      )
    }
    const c = t.certificate
    const name = c ? `certificate "${c.subject}" issued by "${c.issuer}"` : 'certificate'
    if (!t.authorized) {
      const code = t.authorizationError ?? 'UNKNOWN'
      details.error = code
      let reason: string
      let suggestions: string[]
      if (code === 'CERT_HAS_EXPIRED') {
        reason = `the ${name} of ${host} expired on ${c?.validTo ?? '?'}`
        suggestions = ['renew the registry certificate', 'check the local clock (see clock.skew)']
      } else if (code === 'CERT_NOT_YET_VALID') {
        reason = `the ${name} of ${host} is not valid before ${c?.validFrom ?? '?'}`
        suggestions = ['check the local clock (see clock.skew)', 'or the certificate dates']
      } else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') {
        reason = `the ${name} does not name ${this.baseUrl.hostname} (it names ${c?.subjectAltName ?? c?.subject ?? 'something else'})`
        suggestions = ['use the host name the certificate was issued for in the reference', 'or reissue the certificate with this name in its subjectAltName']
      } else if (UNTRUSTED_CODES.has(code)) {
        reason = `the ${name} of ${host} is not trusted (${code}): its issuer is not among the trusted CAs (${caSource})`
        suggestions = [
          'pass the CA certificate that signed it with --ca-file FILE (or set NODE_EXTRA_CA_CERTS=FILE)',
          'only for a test registry: --insecure skips verification',
        ]
      } else {
        reason = `the ${name} of ${host} is not trusted (${code})`
        suggestions = ['pass the issuing CA with --ca-file FILE, or fix the certificate']
      }
      if (this.client.transport.insecure) {
        return warn('TLS_INSECURE', `certificate verification is disabled (--insecure); without it: ${reason}`, ['drop --insecure once the certificate is trusted', ...suggestions], details)
      }
      return fail(code === 'CERT_HAS_EXPIRED' ? 'TLS_CERT_EXPIRED' : code.includes('ALTNAME') || code === 'HOSTNAME_MISMATCH' ? 'TLS_HOSTNAME_MISMATCH' : 'TLS_UNTRUSTED', reason, suggestions, EXIT.TRANSIENT, details)
    }
    if (this.client.transport.insecure) {
      return warn('TLS_INSECURE', `the ${name} of ${host} would verify, but --insecure disables verification`, ['drop --insecure'], details)
    }
    const left = c ? Date.parse(c.validTo) - this.opts.now().getTime() : Number.POSITIVE_INFINITY
    const soon = this.opts.expiryWarnMs ?? DEFAULT_EXPIRY_WARN_MS
    if (left < soon) {
      return warn('TLS_CERT_EXPIRES_SOON', `the ${name} of ${host} is trusted but expires in ${formatDuration(left)} (${c!.validTo})`, ['renew the registry certificate before it expires'], details)
    }
    return pass(`${t.protocol ?? 'TLS'} with a trusted ${name}, valid until ${c?.validTo ?? '?'} (trusted via ${caSource})`, details)
  }

  async clock(): Promise<CheckOutcome> {
    const p = await this.probe()
    if (p.error || !p.res) return skip('no answer from the registry to compare clocks with (see registry.reachable)')
    const date = p.res.date
    const server = date ? Date.parse(date) : Number.NaN
    if (Number.isNaN(server)) return skip(`${this.ref.host} sent no usable Date header`)
    // Date has one-second resolution and the request took a while: compare with the midpoint.
    const local = (p.sent + p.received) / 2
    const skew = Math.round(local - server)
    const slack = 1000 + (p.received - p.sent) / 2
    const off = Math.max(0, Math.abs(skew) - slack)
    const side = skew > 0 ? 'ahead of' : 'behind'
    const details = {registryDate: new Date(server).toISOString(), localDate: new Date(local).toISOString(), skewMs: skew}
    const failAt = this.opts.clockFailMs ?? DEFAULT_CLOCK_FAIL_MS
    const warnAt = this.opts.clockWarnMs ?? DEFAULT_CLOCK_WARN_MS
    const why = 'registry tokens, certificates and key validity windows are checked against it'
    if (off > failAt) {
      return fail('CLOCK_SKEW', `the local clock is ${formatDuration(skew)} ${side} ${this.ref.host}'s (over ${formatDuration(failAt)}): ${why}`, ['synchronise the clock (NTP: timedatectl set-ntp true)'], EXIT.USAGE, details)
    }
    if (off > warnAt) {
      return warn('CLOCK_SKEW', `the local clock is ${formatDuration(skew)} ${side} ${this.ref.host}'s: ${why}`, ['synchronise the clock (NTP)'], details)
    }
    return pass(`the local clock agrees with ${this.ref.host}'s within ${formatDuration(Math.max(Math.abs(skew), 1000))}`, details)
  }

  auth(): Promise<CheckOutcome> {
    this.authResult ??= this.checkAuth()
    return this.authResult
  }

  private async checkAuth(): Promise<CheckOutcome> {
    const b = await this.blocked()
    if (b) return skip(`not checked: ${b}`)
    const p = await this.probe()
    const configFile = dockerConfigPath(this.options.env ?? this.opts.env)
    const details: Record<string, unknown> = {dockerConfig: configFile, dockerConfigExists: fs.existsSync(configFile)}
    let source: string | undefined
    let username: string | undefined
    let lookupError: unknown
    try {
      const rc = await this.client.auth.credential()
      source = rc?.source
      username = rc?.credential.username && rc.credential.username !== '<token>' ? rc.credential.username : undefined
    } catch (err) {
      lookupError = err
    }
    if (source) details.credentials = source
    if (username) details.username = username
    const challenges = p.res!.challenges
    const bearer = challenges.find((c) => c.scheme === 'bearer')
    const basic = challenges.find((c) => c.scheme === 'basic')
    if (p.res!.status === 200) {
      details.method = 'none'
      if (lookupError) {
        const f = failFrom(lookupError)
        return warn(f.code!, `${this.ref.host} needs no authentication, but the credential lookup for it fails: ${f.reason}`, f.suggestions, details)
      }
      // Some registries answer /v2/ anonymously and ask for credentials per repository (pull and push show it).
      return pass(`${this.ref.host} needs no authentication for GET /v2/${source ? `; credentials from ${source} are sent where a repository asks for them` : ''}`, details)
    }
    details.method = bearer ? 'bearer' : basic ? 'basic' : (challenges[0]?.scheme ?? 'unknown')
    if (bearer) {
      details.realm = bearer.params.realm
      if (bearer.params.service) details.service = bearer.params.service
    }
    if (lookupError) return failFrom(lookupError, details)
    try {
      await this.client.ping()
    } catch (err) {
      return failFrom(err, details)
    }
    const who = username ? `user "${username}"` : source ? 'a token' : 'anonymous access'
    const from = source ? ` from ${source}` : ' (no credentials found: anonymous)'
    if (bearer) return pass(`bearer token obtained from ${bearer.params.realm ?? 'the token server'} for ${who}${from}`, details)
    return pass(`${details.method === 'basic' ? 'Basic' : String(details.method)} authentication accepted for ${who}${from}`, details)
  }

  async pull(): Promise<CheckOutcome> {
    const b = await this.authBlocked()
    if (b) return skip(`not checked: ${b}`)
    let tags: string[] | undefined
    try {
      tags = await this.repo.tags()
    } catch (err) {
      if (!isOciError(err, 'NOT_FOUND')) return failFrom(err, {repository: this.location})
    }
    const details: Record<string, unknown> = {repository: this.location, exists: tags !== undefined, ...(tags ? {tags: tags.length} : {})}
    const selector = this.ref.digest ?? this.ref.tag
    if (selector === undefined) {
      if (tags === undefined) return pass(`pull allowed on ${this.location}; the repository holds nothing yet`, details)
      return pass(`pull allowed on ${this.location} (${tags.length} tag${tags.length === 1 ? '' : 's'})`, details)
    }
    try {
      this.resolved = await this.repo.resolve(selector)
    } catch (err) {
      if (isOciError(err, 'NOT_FOUND')) {
        return warn('REFERENCE_NOT_FOUND', `pull allowed on ${this.location}, but ${this.ref.digest ? `manifest ${selector}` : `tag "${selector}"`} does not exist (yet)`, [
          `aibox tags ${this.location} lists what is there`,
          'push the policy first if this is a new reference',
        ], details)
      }
      return failFrom(err, details)
    }
    details.digest = this.resolved.digest
    details.mediaType = this.resolved.mediaType
    // HEAD cannot tell the artifact type: read the manifest itself (which is also what a pull does first).
    let artifactType = this.resolved.artifactType
    try {
      const manifest = parseManifest(await fetchAll(this.repo, this.resolved), this.resolved, this.location)
      artifactType ??= manifest.kind === 'index' ? manifest.index.artifactType : manifest.manifest.artifactType
    } catch (err) {
      return failFrom(err, details)
    }
    if (artifactType) details.artifactType = artifactType
    const kind = artifactType === MT.policyBundle ? 'a policy artifact' : artifactType ? `an artifact of type ${artifactType}` : 'a manifest'
    return pass(`pull allowed: ${this.ref.digest ? selector : `tag "${selector}"`} resolves to ${kind} ${this.resolved.digest}`, details)
  }

  async push(): Promise<CheckOutcome> {
    const b = await this.authBlocked()
    if (b) return skip(`not checked: ${b}`)
    const what = `open an upload session in ${this.location} (push check)`
    const scopes = [repositoryScope(this.ref.repository, 'pull', 'push')]
    let res: HttpResponse
    try {
      res = await this.client.request({method: 'POST', url: `/v2/${this.ref.repository}/blobs/uploads/`, scopes, what})
    } catch (err) {
      return this.pushDenied(err)
    }
    if (res.status !== 202) {
      const err = await responseError(res, {what})
      return this.pushDenied(err)
    }
    const location = header(res, 'location')
    await discard(res)
    if (!location) return fail('REGISTRY_ERROR', `${what}: ${this.ref.host} opened an upload without a Location header: pushes will fail`, ['check the registry or the proxy in front of it'], EXIT.USAGE)
    // Cancel at once: nothing reaches the repository (OCI distribution-spec "Canceling an upload").
    let cancelled: number | string
    try {
      const del = await this.client.request({method: 'DELETE', url: new URL(location, res.url), scopes, what: `cancel the push check's upload session in ${this.location}`})
      cancelled = del.status
      await discard(del)
    } catch (err) {
      cancelled = isOciError(err) ? err.code : 'error'
    }
    const tidy = cancelled === 204 || cancelled === 202 || cancelled === 200
    return pass(
      `push allowed on ${this.location}: an upload session was opened and ${tidy ? 'cancelled' : `could not be cancelled (${cancelled}; the registry purges abandoned uploads)`}; nothing was written`,
      {repository: this.location, cancelStatus: cancelled},
    )
  }

  private pushDenied(err: unknown): CheckOutcome {
    const f = failFrom(err, {repository: this.location})
    if (f.code === 'DENIED' || f.code === 'UNAUTHORIZED') {
      return {
        ...f,
        reason: `push will fail: ${f.reason}`,
        suggestions: [...f.suggestions, 'on a host that only pulls (sandboxes), skip this check: --skip repository.push'],
      }
    }
    return f
  }

  async referrers(): Promise<CheckOutcome> {
    const b = await this.authBlocked()
    if (b) return skip(`not checked: ${b}`)
    // REF's own manifest when it resolved; otherwise any digest: the API answers an empty index for it.
    const desc: Descriptor = this.resolved ?? {
      mediaType: MT.ociManifest,
      digest: `sha256:${createHash('sha256').update('aibox doctor referrers probe').digest('hex')}`,
      size: 0,
    }
    let found: Descriptor[]
    try {
      found = await this.repo.predecessors(desc)
    } catch (err) {
      return failFrom(err, {repository: this.location, digest: desc.digest})
    }
    const mode = this.repo.referrersCapability
    const of = this.resolved ? `${desc.digest} has ${found.length} referrer${found.length === 1 ? '' : 's'}` : 'probed with a digest that has none'
    const details = {mode: mode === 'api' ? 'api' : 'tag-fallback', digest: desc.digest, referrers: found.length}
    if (mode === 'api') return pass(`${this.ref.host} offers the OCI referrers API (${of})`, details)
    return pass(
      `${this.ref.host} has no referrers API: signatures and approvals are found through the sha256-<hex> tag fallback, which works but shows up in tag lists (${of})`,
      details,
    )
  }
}

/**
 * A client for one registry: base URL (scheme chosen by the transport's plain-HTTP rule),
 * authentication (proactive once the scheme is known, one re-authentication after a 401, never
 * a loop) and the mapping of registry error responses (distribution-spec "error codes") to
 * `OciError`s that say what failed, where, and what to try.
 */
import type {Readable} from 'node:stream'

import {Authorizer} from './auth/authorizer.js'
import {parseWwwAuthenticate} from './auth/challenge.js'
import {type CredentialProvider, chainCredentials, dockerCredentials} from './auth/credentials.js'
import {EXIT} from '../errors.js'
import {OciError, type OciErrorCode} from './errors.js'
import {type HttpRequest, type HttpResponse, HttpTransport, type TransportOptions, discard, header, headerValues, readLimited} from './http.js'
import {redact, redactUrl} from './redact.js'
import {DOCKER_HUB, DOCKER_HUB_HOST, isLoopbackHost} from './reference.js'

export interface RegistryClientOptions extends TransportOptions {
  /**
   * Where credentials come from. Default: docker's config.json and credential helpers. Pass
   * `chainCredentials(staticCredentials(...), dockerCredentials())` to put explicit ones first,
   * or `null` for anonymous access only.
   */
  credentials?: CredentialProvider | null
  /** Share one connection pool (and its TLS settings) between clients. */
  transport?: HttpTransport
}

export interface RegistryRequest extends Omit<HttpRequest, 'url'> {
  /** Absolute URL (e.g. an upload `Location`) or a path from the registry root (`/v2/…`). */
  url: string | URL
  /** Token scopes the request needs, e.g. `repository:policies/org:pull`. */
  scopes: string[]
  /** What the request is for, in messages: e.g. `manifest "v1" of 127.0.0.1:5000/policies/org`. */
  what: string
}

export class RegistryClient {
  /** Canonical registry name, e.g. `127.0.0.1:5000`, `docker.io`. */
  readonly registry: string
  /** `http(s)://host[:port]` the requests go to. */
  readonly baseUrl: string
  readonly transport: HttpTransport
  readonly auth: Authorizer
  private readonly ownsTransport: boolean
  private warnedPlain = false

  constructor(registry: string, opts: RegistryClientOptions = {}) {
    this.registry = registry
    this.ownsTransport = opts.transport === undefined
    this.transport = opts.transport ?? new HttpTransport(opts)
    const host = registry === DOCKER_HUB ? DOCKER_HUB_HOST : registry
    this.baseUrl = `${this.transport.scheme(host)}://${host}`
    if (this.baseUrl.startsWith('https:')) this.transport.noteInsecure(host)
    const credentials = opts.credentials === null ? undefined : (opts.credentials ?? chainCredentials(dockerCredentials({env: opts.env})))
    this.auth = new Authorizer({registry, transport: this.transport, credentials})
  }

  url(pathOrUrl: string | URL): URL {
    return new URL(String(pathOrUrl), this.baseUrl)
  }

  /**
   * Sends an authenticated request. A 401 is answered once with fresh credentials (the body is
   * re-sent only when it is replayable); a second 401 throws UNAUTHORIZED or DENIED.
   */
  async request(req: RegistryRequest): Promise<HttpResponse> {
    const url = this.url(req.url)
    const send = async (authorization: string | undefined) => {
      const headers = {...req.headers}
      if (authorization) {
        headers.authorization = authorization
        if (authorization.startsWith('Basic ') && url.protocol === 'http:' && !isLoopbackHost(url.host) && !this.warnedPlain) {
          this.warnedPlain = true
          this.transport.warn(`sending the password for ${this.registry} over plain HTTP: anyone on the network path can read it`)
        }
      }
      return this.transport.send({...req, url, headers})
    }
    const first = await this.auth.authorize(req.scopes, req.signal)
    let res = await send(first)
    if (res.status !== 401) return res
    const challenges = parseWwwAuthenticate(headerValues(res, 'www-authenticate'))
    await discard(res)
    const next = await this.auth.challenge(challenges, req.scopes, first, req.what, req.signal)
    if (req.body !== undefined && typeof req.body === 'object' && !(req.body instanceof Uint8Array)) {
      // A stream already (partly) consumed cannot be re-sent; uploads authenticate before streaming.
      throw new OciError('UNAUTHORIZED', `${this.registry} asked for authentication in the middle of ${req.what}; run the command again`, {
        exit: EXIT.TRANSIENT,
      })
    }
    res = await send(next)
    if (res.status !== 401) return res
    const again = parseWwwAuthenticate(headerValues(res, 'www-authenticate'))
    await discard(res)
    throw await this.auth.failure(again.length > 0 ? again : challenges, req.scopes, req.what)
  }

  /** `GET /v2/`: checks that the registry answers the distribution API with these credentials. */
  async ping(opts: {signal?: AbortSignal} = {}): Promise<{status: number; apiVersion?: string}> {
    const res = await this.request({method: 'GET', url: '/v2/', scopes: [], what: `the API check of ${this.registry}`, signal: opts.signal})
    if (res.status !== 200) throw await responseError(res, {what: `the API check of ${this.registry}`})
    await discard(res)
    return {status: res.status, apiVersion: header(res, 'docker-distribution-api-version')}
  }

  async close(): Promise<void> {
    if (this.ownsTransport) await this.transport.close()
  }
}

/** One entry of a distribution error body: `{"errors":[{"code","message","detail"}]}`. */
export interface RegistryErrorEntry {
  code: string
  message?: string
  detail?: unknown
}

export interface ErrorContext {
  /** What was attempted, e.g. `pull manifest "v1" of 127.0.0.1:5000/policies/org`. */
  what: string
  /** Message for a 404 (default: `<what>: not found`). */
  notFound?: string
  notFoundSuggestions?: string[]
}

const MAX_ERROR_BODY = 64 * 1024

/** Parses a distribution error body; `undefined` when it is not one. */
export function parseErrorBody(text: string): RegistryErrorEntry[] | undefined {
  try {
    const j = JSON.parse(text) as {errors?: unknown}
    if (!Array.isArray(j.errors)) return undefined
    return j.errors
      .filter((e): e is Record<string, unknown> => e !== null && typeof e === 'object')
      .map((e) => ({code: String(e.code ?? 'UNKNOWN'), message: typeof e.message === 'string' ? e.message : undefined, detail: e.detail}))
  } catch {
    return undefined
  }
}

const CODE_MAP: Record<string, OciErrorCode> = {
  BLOB_UNKNOWN: 'NOT_FOUND',
  MANIFEST_UNKNOWN: 'NOT_FOUND',
  NAME_UNKNOWN: 'NOT_FOUND',
  DIGEST_INVALID: 'DIGEST_MISMATCH',
  SIZE_INVALID: 'SIZE_MISMATCH',
  MANIFEST_INVALID: 'INVALID_MANIFEST',
  MANIFEST_BLOB_UNKNOWN: 'INVALID_MANIFEST',
  MANIFEST_UNVERIFIED: 'INVALID_MANIFEST',
  NAME_INVALID: 'INVALID_REFERENCE',
  TAG_INVALID: 'INVALID_REFERENCE',
  UNAUTHORIZED: 'UNAUTHORIZED',
  DENIED: 'DENIED',
  UNSUPPORTED: 'UNSUPPORTED',
}

/**
 * Turns a failed registry response into an OciError (consuming its body). 5xx and 429 are
 * transient (exit 4); other 4xx are not (the request itself is wrong or forbidden).
 */
export async function responseError(res: HttpResponse, ctx: ErrorContext): Promise<OciError> {
  const {data, truncated} = await readLimited(res.body as Readable, MAX_ERROR_BODY)
  const text = data.toString('utf8')
  const entries = parseErrorBody(text)
  const status = res.status
  const host = res.url.host
  const where = redactUrl(res.url)
  const attempts = res.attempts > 1 ? ` after ${res.attempts} attempts` : ''
  const summary = entries
    ? entries
        .map((e) => {
          const detail = e.detail === undefined || e.detail === null ? '' : ` (${typeof e.detail === 'string' ? e.detail : JSON.stringify(e.detail)})`
          return `${e.code}${e.message ? `: ${e.message}` : ''}${detail}`
        })
        .join('; ')
    : text.trim().slice(0, 300) + (truncated || text.length > 300 ? '…' : '')
  const said = summary ? `: ${summary}` : ''
  const details: Record<string, unknown> = {status, url: where}
  if (entries) details.registryErrors = entries.map((e) => e.code)
  const make = (code: OciErrorCode, message: string, suggestions: string[], exit?: 0 | 1 | 2 | 3 | 4 | 5) =>
    new OciError(code, redact(message), {suggestions, details, exit})

  if (status === 400 && /HTTP request to an HTTPS server/i.test(text)) {
    return make('TLS', `${ctx.what}: ${host} serves HTTPS, but the request was sent over plain HTTP`, [
      'drop --plain-http (plain HTTP is the default only for loopback hosts: pass --no-plain-http or --ca-file there)',
    ])
  }
  if (status === 404) {
    const plain = !entries && /404 page not found/i.test(text)
    return make(
      'NOT_FOUND',
      `${ctx.notFound ?? `${ctx.what}: not found`} (${host} answered 404${said})`,
      ctx.notFoundSuggestions ??
        (plain
          ? ['the registry did not recognise the request path: check the repository name, or the registry may not support this API']
          : ['check the repository name and the tag or digest']),
    )
  }
  if (status === 401) {
    return make('UNAUTHORIZED', `${ctx.what}: ${host} requires authentication${said}`, [`log in with "docker login ${host}" or pass --username and --password-stdin`])
  }
  if (status === 403) {
    return make('DENIED', `${ctx.what}: ${host} denied access${said}`, ['check that the account has access to this repository'])
  }
  if (status === 405) {
    return make('UNSUPPORTED', `${ctx.what}: ${host} does not allow this operation (405${said})`, [
      'the registry may have this operation disabled (e.g. deletes), or not implement it',
    ])
  }
  if (status === 429) {
    const after = header(res, 'retry-after')
    return make(
      'REGISTRY_ERROR',
      `${ctx.what}: ${host} is rate limiting requests (429${attempts}${after ? `, Retry-After ${after}` : ''})${said}`,
      ['retry later', 'authenticate: registries often allow more requests to logged-in users'],
      EXIT.TRANSIENT,
    )
  }
  if (status >= 500) {
    return make('REGISTRY_ERROR', `${ctx.what}: ${host} failed with ${status}${attempts}${said} (${where})`, ['retry later; if it persists, check the registry logs'], EXIT.TRANSIENT)
  }
  const code = entries?.map((e) => CODE_MAP[e.code]).find((c) => c !== undefined)
  if (code === 'DIGEST_MISMATCH' || code === 'SIZE_MISMATCH') {
    return make(code, `${ctx.what}: ${host} says the content does not match its digest or size (${status}${said})`, [
      'the content changed while it was being sent, or the descriptor is wrong',
    ])
  }
  if (code === 'INVALID_MANIFEST') {
    return make(code, `${ctx.what}: ${host} refused the manifest (${status}${said})`, [
      'every blob a manifest references must be pushed to the same repository first',
      'the Content-Type must equal the manifest mediaType',
    ], EXIT.USAGE)
  }
  if (code === 'INVALID_REFERENCE') return make(code, `${ctx.what}: ${host} refused the name or tag (${status}${said})`, [])
  if (code === 'UNAUTHORIZED' || code === 'DENIED' || code === 'UNSUPPORTED' || code === 'NOT_FOUND') {
    return make(code, `${ctx.what}: ${host} answered ${status}${said}`, [])
  }
  if (status === 413) {
    return make('REGISTRY_ERROR', `${ctx.what}: ${host} refused the request body as too large (413${said})`, [
      'a proxy in front of the registry limits request sizes: raise its limit, or lower the upload chunk size',
    ], EXIT.USAGE)
  }
  const upload = entries?.some((e) => e.code === 'BLOB_UPLOAD_INVALID' || e.code === 'BLOB_UPLOAD_UNKNOWN')
  return make(
    'REGISTRY_ERROR',
    `${ctx.what}: ${host} answered ${status}${said}`,
    upload ? ['the upload session expired or was cancelled: run the command again'] : ['check the request; this is not a transient failure'],
    upload ? EXIT.TRANSIENT : EXIT.USAGE,
  )
}

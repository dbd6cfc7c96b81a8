/**
 * HTTP transport for registries, on `undici.request` (never global `fetch`: it buffers streamed
 * upload bodies, toolchain.md §G).
 *
 * - Timeouts: connect, response headers, and body idle (time between two body chunks).
 * - Retries with exponential backoff and full jitter for transient failures: 408/429/500/502/503/504
 *   (429 and 503 honour `Retry-After`), connection resets, broken pipes and timeouts. Never for other
 *   4xx, never when the request body cannot be sent again (a stream), bounded attempts.
 * - TLS: `--ca-file` adds CAs to the system store (and keeps `NODE_EXTRA_CA_CERTS`), `--insecure`
 *   skips verification (and says so on stderr); plain HTTP only when asked, by default for
 *   loopback hosts (like oras).
 * - Redirects are followed for the requests that ask for it (blob GETs), without forwarding
 *   `Authorization` to another origin.
 * - Errors become `OciError`s that name the URL (credentials masked) and what to try.
 */
import fs from 'node:fs'
import type {IncomingHttpHeaders} from 'node:http'
import {createRequire} from 'node:module'
import {Readable} from 'node:stream'
import tls from 'node:tls'

import type {Agent as UndiciAgent, Dispatcher} from 'undici'

import {errorMessage} from '../errors.js'
import {OciError, type OciErrorCode} from './errors.js'
import {abortError, throwIfAborted} from './abort.js'
import {redact, redactUrl} from './redact.js'
import {isLoopbackHost} from './reference.js'

export interface Timeouts {
  /** TCP + TLS connection establishment. */
  connectMs: number
  /** From the end of the request to the response headers (a registry finalising a big upload needs a while). */
  headersMs: number
  /** Longest pause between two chunks of a response body. */
  bodyIdleMs: number
}

export interface RetryPolicy {
  /** Total attempts per request, the first included (1 = no retries). */
  attempts: number
  /** First backoff step; each retry doubles it, with full jitter. */
  baseDelayMs: number
  maxDelayMs: number
  /** A `Retry-After` longer than this is not waited for: the request fails with the advice to retry later. */
  maxRetryAfterMs: number
}

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = {connectMs: 10_000, headersMs: 60_000, bodyIdleMs: 60_000}
export const DEFAULT_RETRY: Readonly<RetryPolicy> = {attempts: 4, baseDelayMs: 250, maxDelayMs: 8_000, maxRetryAfterMs: 60_000}

export interface TransportOptions {
  /**
   * `true`: plain HTTP; `false`: HTTPS; unset: plain HTTP for loopback hosts (127.0.0.0/8, ::1,
   * localhost) unless `insecure` or `caFile` is given, HTTPS for everything else.
   */
  plainHttp?: boolean
  /** Skip TLS certificate verification (warned about on every client creation). */
  insecure?: boolean
  /** PEM file(s) of extra CAs trusted in addition to the system store and `NODE_EXTRA_CA_CERTS`. */
  caFile?: string | string[]
  timeouts?: Partial<Timeouts>
  retry?: Partial<RetryPolicy>
  userAgent?: string
  /** Environment for `NODE_EXTRA_CA_CERTS` (default `process.env`). */
  env?: NodeJS.ProcessEnv
  /** Where warnings go (insecure TLS, credentials over plain HTTP); default: stderr. */
  onWarning?: (message: string) => void
  /** Debug log of every request (already redacted). */
  logger?: (line: string) => void
}

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'
export type HttpBody = Buffer | Uint8Array | string | Readable

export interface HttpRequest {
  method: HttpMethod
  url: string | URL
  headers?: Record<string, string>
  body?: HttpBody
  /**
   * Whether a transient failure may re-send this request. Default: yes unless the body is a
   * stream or the method is PATCH (distribution appends PATCH bodies at the current offset
   * whatever Content-Range says, so a blind re-send could duplicate bytes; the uploader resyncs).
   */
  retry?: boolean
  /** Follow 3xx redirects (blob GETs: registries may redirect to object storage). */
  followRedirects?: boolean
  signal?: AbortSignal
}

export interface HttpResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Readable
  /** URL that answered (after redirects). */
  url: URL
  /** Attempts it took (retries + 1). */
  attempts: number
}

/** First value of a response header (names are case-insensitive; HTTP/2 peers send lower case). */
export function header(res: {headers: IncomingHttpHeaders}, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()]
  return Array.isArray(v) ? v[0] : v
}

/** All values of a header, also splitting none (each WWW-Authenticate value is kept whole). */
export function headerValues(res: {headers: IncomingHttpHeaders}, name: string): string[] {
  const v = res.headers[name.toLowerCase()]
  if (v === undefined) return []
  return Array.isArray(v) ? v : [v]
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504])
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308])
const MAX_REDIRECTS = 5

const TLS_VERIFY_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
])
const RETRYABLE_NET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  // A response body cut short (the connection closed mid-body): a download can resume.
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
])
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

function codeChain(err: unknown): string[] {
  const codes: string[] = []
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as {cause?: unknown}).cause, i++) {
    const c = (e as {code?: unknown}).code
    if (typeof c === 'string') codes.push(c)
  }
  return codes
}

function messageChain(err: unknown): string {
  const parts: string[] = []
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as {cause?: unknown}).cause, i++) {
    const m = errorMessage(e)
    if (m && !parts.includes(m)) parts.push(m)
  }
  return parts.join(': ')
}

export interface ClassifiedError {
  error: OciError
  retryable: boolean
}

/** Maps a Node/undici network error to an OciError with advice; `retryable` for transient ones. */
export function classifyNetworkError(err: unknown, url: URL, attempts = 1): ClassifiedError {
  if (err instanceof OciError) return {error: err, retryable: false}
  const codes = codeChain(err)
  const msg = messageChain(err)
  const where = redactUrl(url)
  const after = attempts > 1 ? ` (after ${attempts} attempts)` : ''
  const make = (code: OciErrorCode, text: string, suggestions: string[], retryable: boolean): ClassifiedError => ({
    error: new OciError(code, redact(`${text}${after}`), {cause: err, suggestions, details: {url: where, errno: codes[0]}}),
    retryable,
  })
  const tlsCode = codes.find((c) => TLS_VERIFY_CODES.has(c))
  if (tlsCode) {
    return make(
      'TLS',
      `TLS certificate of ${url.host} is not trusted (${tlsCode}: ${msg}) for ${where}`,
      [
        'pass the CA certificate that signed the registry certificate with --ca-file FILE (or set NODE_EXTRA_CA_CERTS=FILE)',
        'check that the certificate names this host and has not expired',
        'only for a test registry: --insecure skips verification',
      ],
      false,
    )
  }
  if (codes.includes('ERR_SSL_WRONG_VERSION_NUMBER') || /wrong version number|packet length too long/i.test(msg)) {
    return make(
      'TLS',
      `${url.host} did not answer the TLS handshake for ${where}: it probably serves plain HTTP (${msg})`,
      ['if the registry serves plain HTTP, pass --plain-http', 'check the port'],
      false,
    )
  }
  if (codes.some((c) => c.startsWith('ERR_SSL') || c === 'EPROTO' || c.startsWith('ERR_TLS'))) {
    return make('TLS', `TLS error talking to ${url.host} for ${where}: ${msg}`, ['check the registry TLS setup, --ca-file and --plain-http'], false)
  }
  if (codes.includes('UND_ERR_ABORTED') || codes.includes('ABORT_ERR')) {
    return make('ABORTED', `request to ${where} was aborted`, [], false)
  }
  if (codes.some((c) => TIMEOUT_CODES.has(c))) {
    const phase = codes.includes('UND_ERR_CONNECT_TIMEOUT')
      ? 'connecting'
      : codes.includes('UND_ERR_HEADERS_TIMEOUT')
        ? 'waiting for the response'
        : codes.includes('UND_ERR_BODY_TIMEOUT')
          ? 'reading the response body'
          : 'on the connection'
      return make('TIMEOUT', `timed out ${phase} for ${where}`, ['check the network path to the registry, then retry', 'raise the timeouts if the registry is slow'], true)
  }
  if (codes.includes('ECONNREFUSED')) {
    return make(
      'NETWORK',
      `connection refused by ${url.host} for ${where}`,
      ['is the registry running and listening on this host and port?', 'check for a typo in the reference'],
      false,
    )
  }
  if (codes.includes('ENOTFOUND')) {
    return make('NETWORK', `cannot resolve host ${url.hostname} for ${where}`, ['check the registry host name and DNS'], false)
  }
  if (codes.some((c) => c === 'EHOSTUNREACH' || c === 'ENETUNREACH' || c === 'EADDRNOTAVAIL')) {
    return make('NETWORK', `${url.host} is unreachable for ${where} (${msg})`, ['check the network path to the registry'], false)
  }
  const retryable = codes.some((c) => RETRYABLE_NET_CODES.has(c)) || /socket hang up|other side closed|ECONNRESET|EPIPE/i.test(msg)
  return make('NETWORK', `network error for ${where}: ${msg}`, ['check the network path to the registry, then retry'], retryable)
}

/** Parses `Retry-After` (seconds or HTTP date) into milliseconds, if present and sane. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined
  const v = value.trim()
  if (/^\d+$/.test(v)) return Number(v) * 1000
  const t = Date.parse(v)
  if (Number.isNaN(t)) return undefined
  return Math.max(0, t - now)
}

/** Full-jitter exponential backoff: uniform in [0, min(max, base·2^(retry-1))], at least 1 ms. */
export function backoffDelay(retry: number, policy: RetryPolicy, random = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1))
  return Math.max(1, Math.floor(random() * cap))
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal, 'waiting to retry'))
      return
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(t)
      reject(abortError(signal, 'waiting to retry'))
    }
    signal?.addEventListener('abort', onAbort, {once: true})
  })
}

function isReplayable(body: HttpBody | undefined): boolean {
  return body === undefined || typeof body === 'string' || body instanceof Uint8Array
}

/** Reads at most `max` bytes of a body (the rest is discarded): for error bodies and small JSON. */
export async function readLimited(body: Readable, max: number): Promise<{data: Buffer; truncated: boolean}> {
  const chunks: Buffer[] = []
  let total = 0
  let truncated = false
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer
      if (total + b.length > max) {
        chunks.push(b.subarray(0, max - total))
        total = max
        truncated = true
        break
      }
      chunks.push(b)
      total += b.length
    }
  } finally {
    if (!body.destroyed) body.destroy()
  }
  return {data: Buffer.concat(chunks), truncated}
}

/** Releases a response body without reading it (keeps the connection reusable when it is short). */
export async function discard(res: {body: Readable}): Promise<void> {
  const b = res.body as Readable & {dump?: (opts?: {limit: number}) => Promise<void>}
  try {
    if (typeof b.dump === 'function') await b.dump({limit: 256 * 1024})
    else b.destroy()
  } catch {
    // A body that fails while being discarded carries nothing we need.
  }
}

function readPemFiles(files: string[], what: string): string[] {
  return files.map((f) => {
    let text: string
    try {
      text = fs.readFileSync(f, 'utf8')
    } catch (err) {
      throw new OciError('TLS', `cannot read ${what} ${f}: ${errorMessage(err)}`, {
        exit: 1,
        cause: err,
        suggestions: ['pass a readable PEM file holding the CA certificate(s)'],
      })
    }
    if (!text.includes('-----BEGIN CERTIFICATE-----')) {
      throw new OciError('TLS', `${what} ${f} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`, {
        exit: 1,
        suggestions: ['pass the CA certificate in PEM format'],
      })
    }
    return text
  })
}

let warned = new Set<string>()

interface UndiciParts {
  Agent: new (opts: UndiciAgent.Options) => Dispatcher
  request: (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>
}
let undici: UndiciParts | undefined

/**
 * Loads undici on first use, and only its Agent and `request` (about 60 ms): the package entry
 * point also loads fetch, WebSocket, caches and mocks (about 220 ms), which every command that
 * imports this library would pay at start-up.
 */
function loadUndici(): UndiciParts {
  if (undici) return undici
  const require = createRequire(import.meta.url)
  try {
    undici = {Agent: require('undici/lib/dispatcher/agent'), request: require('undici/lib/api/api-request')}
  } catch {
    // A future undici that moved its files: the full entry point has the same two pieces.
    const full = require('undici') as {Agent: UndiciParts['Agent'] & {prototype: Dispatcher}}
    undici = {Agent: full.Agent, request: full.Agent.prototype.request as UndiciParts['request']}
  }
  return undici
}

/**
 * One connection pool per client with its TLS settings, the retry loop and error mapping.
 * Shared by every repository of a registry (and by its token requests).
 */
export class HttpTransport {
  readonly timeouts: Timeouts
  readonly retry: RetryPolicy
  readonly insecure: boolean
  private agentInstance?: Dispatcher
  private readonly agentOptions: UndiciAgent.Options
  private readonly plainHttp?: boolean
  private readonly tlsConfigured: boolean
  private readonly userAgent: string
  private readonly logger?: (line: string) => void
  readonly warn: (message: string) => void

  constructor(opts: TransportOptions = {}) {
    this.timeouts = {...DEFAULT_TIMEOUTS, ...opts.timeouts}
    this.retry = {...DEFAULT_RETRY, ...opts.retry}
    if (!(this.retry.attempts >= 1)) this.retry.attempts = 1
    this.insecure = opts.insecure === true
    this.plainHttp = opts.plainHttp
    this.userAgent = opts.userAgent ?? 'aibox-policy'
    this.logger = opts.logger
    this.warn = opts.onWarning ?? ((m) => process.stderr.write(`warning: ${m}\n`))
    const caFiles = opts.caFile === undefined ? [] : Array.isArray(opts.caFile) ? opts.caFile : [opts.caFile]
    this.tlsConfigured = this.insecure || caFiles.length > 0
    const connect: Record<string, unknown> = {timeout: this.timeouts.connectMs}
    if (caFiles.length > 0) {
      // A `ca` option replaces Node's default store, so rebuild it: bundled roots, NODE_EXTRA_CA_CERTS, then ours.
      const env = opts.env ?? process.env
      const extra = env.NODE_EXTRA_CA_CERTS ? readPemFiles([env.NODE_EXTRA_CA_CERTS], 'NODE_EXTRA_CA_CERTS file') : []
      connect.ca = [...tls.rootCertificates, ...extra, ...readPemFiles(caFiles, 'CA file')]
    }
    if (this.insecure) connect.rejectUnauthorized = false
    this.agentOptions = {
      connect,
      headersTimeout: this.timeouts.headersMs,
      bodyTimeout: this.timeouts.bodyIdleMs,
      keepAliveTimeout: 10_000,
    }
  }

  private get agent(): Dispatcher {
    this.agentInstance ??= new (loadUndici().Agent)(this.agentOptions)
    return this.agentInstance
  }

  /** `http` or `https` for a registry host, per the plain-HTTP rule above. */
  scheme(hostPort: string): 'http' | 'https' {
    if (this.plainHttp !== undefined) return this.plainHttp ? 'http' : 'https'
    if (this.tlsConfigured) return 'https'
    return isLoopbackHost(hostPort) ? 'http' : 'https'
  }

  /** Warns (once per host and process) that TLS verification is off. */
  noteInsecure(host: string): void {
    if (this.insecure && this.plainHttp !== true && !warned.has(host)) {
      warned.add(host)
      this.warn(`TLS certificate verification is DISABLED for ${host} (--insecure): anyone on the network path can impersonate this registry`)
    }
  }

  /**
   * Sends a request, retrying transient failures per the policy. Returns any HTTP response
   * (4xx/5xx included, after retries: the caller turns it into an error); throws an OciError for
   * network failures.
   */
  async send(req: HttpRequest): Promise<HttpResponse> {
    let url = new URL(String(req.url))
    let headers: Record<string, string> = {'user-agent': this.userAgent, ...lowerKeys(req.headers ?? {})}
    const body = typeof req.body === 'string' ? Buffer.from(req.body) : req.body
    const canRetry = (req.retry ?? (req.method !== 'PATCH' && isReplayable(body))) && isReplayable(body)
    let redirects = 0
    let attempt = 0
    throwIfAborted(req.signal, `${req.method} ${redactUrl(url)}`)
    for (;;) {
      attempt++
      const started = Date.now()
      let res: Dispatcher.ResponseData
      try {
        if (body instanceof Readable && attempt > 1) throw new Error('internal: a stream body cannot be sent twice')
        res = await loadUndici().request.call(this.agent, {
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: req.method,
          headers,
          body: body as Buffer | Readable | undefined,
          signal: req.signal,
        })
      } catch (err) {
        if (req.signal?.aborted) throw abortError(req.signal, `${req.method} ${redactUrl(url)}`)
        const c = classifyNetworkError(err, url, attempt)
        this.log(`${req.method} ${redactUrl(url)} failed after ${Date.now() - started} ms: ${c.error.message}`)
        if (c.retryable && canRetry && attempt < this.retry.attempts) {
          await sleep(backoffDelay(attempt, this.retry), req.signal)
          continue
        }
        throw c.error
      }
      const status = res.statusCode
      this.log(`${req.method} ${redactUrl(url)} -> ${status} (${Date.now() - started} ms${attempt > 1 ? `, attempt ${attempt}` : ''})`)
      if (req.followRedirects && REDIRECT_STATUS.has(status)) {
        const location = header(res, 'location')
        await discard(res)
        if (!location) throw new OciError('REGISTRY_ERROR', `${redactUrl(url)} answered ${status} without a Location header`)
        if (++redirects > MAX_REDIRECTS) throw new OciError('REGISTRY_ERROR', `too many redirects (more than ${MAX_REDIRECTS}) from ${redactUrl(req.url)}`)
        const next = new URL(location, url)
        if (next.protocol !== 'https:' && next.protocol !== 'http:') {
          throw new OciError('REGISTRY_ERROR', `${redactUrl(url)} redirected to an unsupported URL scheme ${next.protocol}`)
        }
        if (url.protocol === 'https:' && next.protocol === 'http:' && this.plainHttp !== true) {
          throw new OciError('TLS', `${redactUrl(url)} redirected to plain HTTP (${redactUrl(next)}): refusing to leave HTTPS`, {
            suggestions: ['fix the registry storage redirect to use HTTPS', 'or pass --plain-http if this registry is meant to be used without TLS'],
          })
        }
        // Credentials are for the registry only: never forward them to another origin (object storage, CDN).
        if (next.origin !== url.origin) headers = withoutAuth(headers)
        url = next
        attempt = 0
        continue
      }
      if (RETRY_STATUS.has(status) && canRetry && attempt < this.retry.attempts) {
        const retryAfter = status === 429 || status === 503 ? parseRetryAfter(header(res, 'retry-after')) : undefined
        if (retryAfter === undefined || retryAfter <= this.retry.maxRetryAfterMs) {
          await discard(res)
          await sleep(retryAfter ?? backoffDelay(attempt, this.retry), req.signal)
          continue
        }
      }
      return {status, headers: res.headers, body: res.body, url, attempts: attempt}
    }
  }

  async close(): Promise<void> {
    if (this.agentInstance) await this.agentInstance.close()
    this.agentInstance = undefined
  }

  private log(line: string): void {
    if (this.logger) this.logger(redact(line))
  }
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v
  return out
}

function withoutAuth(h: Record<string, string>): Record<string, string> {
  const out = {...h}
  delete out.authorization
  delete out.cookie
  return out
}

/** For tests: forget which hosts were already warned about. */
export function resetWarnings(): void {
  warned = new Set()
}

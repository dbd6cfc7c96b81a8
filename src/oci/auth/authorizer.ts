/**
 * Registry authentication: Basic, and the Bearer token challenge of the distribution token-auth
 * spec (GET with Basic credentials or anonymous; OAuth2 POST with a refresh token when the
 * credential is an identity token). Tokens are cached per realm, service and scope set until
 * they expire; a request is re-authenticated at most once after a 401 (the caller enforces it),
 * and `error="insufficient_scope"` with a token that already asked for that scope is a denial,
 * never a loop. Distribution answers every auth failure with 401, never 403 (registry-notes.md §8.16).
 */
import {OciError} from '../errors.js'
import {type HttpTransport, readLimited} from '../http.js'
import {redact, redactUrl, registerSecret} from '../redact.js'
import {isLoopbackHost} from '../reference.js'
import {type Challenge, type ScopeSet, coversScopes, formatScopes, mergeScopes, parseScopes} from './challenge.js'
import type {CredentialProvider, ResolvedCredential} from './credentials.js'

export interface AuthorizerOptions {
  /** Canonical registry name (credential lookup, messages). */
  registry: string
  transport: HttpTransport
  credentials?: CredentialProvider
  /** OAuth2 client id sent to token servers. */
  clientId?: string
  /** Clock (ms), for tests. */
  now?: () => number
}

interface CachedToken {
  realm: string
  service: string
  scopes: ScopeSet
  header: string
  expiresAt: number
}

/** Never cache a token closer to its expiry than this (requests take time to arrive). */
const EXPIRY_MARGIN_MS = 5_000
/** distribution token spec: "expires_in … defaults to 60 seconds". */
const DEFAULT_TOKEN_SECONDS = 60
const MAX_TOKEN_RESPONSE = 1024 * 1024

export class Authorizer {
  readonly registry: string
  private readonly transport: HttpTransport
  private readonly credentials?: CredentialProvider
  private readonly clientId: string
  private readonly now: () => number
  private scheme?: 'basic' | 'bearer'
  private realm?: string
  private service?: string
  private cred?: Promise<ResolvedCredential | undefined>
  private tokens: CachedToken[] = []
  private readonly inflight = new Map<string, Promise<CachedToken>>()
  /** What each bearer header we handed out was asked for (to recognise a real denial). */
  private readonly asked = new Map<string, ScopeSet>()

  constructor(opts: AuthorizerOptions) {
    this.registry = opts.registry
    this.transport = opts.transport
    this.credentials = opts.credentials
    this.clientId = opts.clientId ?? 'aibox-policy'
    this.now = opts.now ?? Date.now
  }

  /** The credential for this registry (looked up once, lazily: helpers are processes). */
  credential(): Promise<ResolvedCredential | undefined> {
    this.cred ??= this.credentials ? this.credentials(this.registry) : Promise.resolve(undefined)
    return this.cred
  }

  /**
   * The Authorization header to send for a request needing `scopes`, from what earlier
   * challenges taught us (so only the first request of a client pays the 401 round trip).
   */
  async authorize(scopes: string[], signal?: AbortSignal): Promise<string | undefined> {
    if (this.scheme === 'basic') return this.basicHeader(await this.credential())
    if (this.scheme === 'bearer' && this.realm !== undefined) {
      const want = parseScopes(scopes)
      const cached = this.cachedToken(this.realm, this.service ?? '', want)
      if (cached) return cached.header
      const rc = await this.credential()
      if (rc?.credential.registryToken) return `Bearer ${rc.credential.registryToken}`
      return (await this.token(this.realm, this.service ?? '', want, rc, signal)).header
    }
    return undefined
  }

  /**
   * Handles a 401: returns the Authorization header to retry with, or throws UNAUTHORIZED /
   * DENIED when retrying cannot help. `sent` is the header the failed request carried.
   */
  async challenge(challenges: Challenge[], scopes: string[], sent: string | undefined, what: string, signal?: AbortSignal): Promise<string> {
    const bearer = challenges.find((c) => c.scheme === 'bearer')
    const basic = challenges.find((c) => c.scheme === 'basic')
    const rc = await this.credential()
    if (bearer) {
      const realm = bearer.params.realm
      if (!realm) throw this.error('UNAUTHORIZED', `${this.registry} sent a Bearer challenge without a realm for ${what}`, [])
      const service = bearer.params.service ?? ''
      this.scheme = 'bearer'
      this.realm = realm
      this.service = service
      const want = mergeScopes(parseScopes(scopes), parseScopes(bearer.params.scope))
      if (sent?.startsWith('Bearer ')) {
        const asked = this.asked.get(sent)
        this.forget(sent)
        if (bearer.params.error === 'insufficient_scope' && asked && coversScopes(asked, want)) {
          throw hasSecret(rc) ? this.denied(rc, want, what) : this.noCredentials(rc, what)
        }
      }
      if (rc?.credential.registryToken) {
        const h = `Bearer ${rc.credential.registryToken}`
        if (h === sent) throw this.rejected(rc, what)
        return h
      }
      return (await this.token(realm, service, want, rc, signal)).header
    }
    if (basic) {
      this.scheme = 'basic'
      const h = this.basicHeader(rc)
      if (!h) throw this.noCredentials(rc, what)
      if (h === sent) throw this.rejected(rc, what)
      return h
    }
    const schemes = challenges.map((c) => c.scheme).join(', ') || 'none'
    throw this.error('UNAUTHORIZED', `${this.registry} requires an authentication scheme aibox does not support (${schemes}) for ${what}`, [
      'aibox supports Basic and Bearer token authentication',
    ])
  }

  /** The error for a 401 that persisted after re-authenticating once. */
  async failure(challenges: Challenge[], scopes: string[], what: string): Promise<OciError> {
    const rc = await this.credential()
    const bearer = challenges.find((c) => c.scheme === 'bearer')
    if (!hasSecret(rc)) return this.noCredentials(rc, what)
    if (bearer?.params.error === 'insufficient_scope') {
      return this.denied(rc, mergeScopes(parseScopes(scopes), parseScopes(bearer.params.scope)), what)
    }
    return this.rejected(rc, what)
  }

  private basicHeader(rc: ResolvedCredential | undefined): string | undefined {
    const c = rc?.credential
    if (!c || c.username === undefined || c.password === undefined) return undefined
    const value = Buffer.from(`${c.username}:${c.password}`).toString('base64')
    registerSecret(value)
    return `Basic ${value}`
  }

  private cachedToken(realm: string, service: string, want: ScopeSet): CachedToken | undefined {
    const now = this.now()
    this.tokens = this.tokens.filter((t) => t.expiresAt > now)
    return this.tokens.find((t) => t.realm === realm && t.service === service && coversScopes(t.scopes, want))
  }

  private forget(headerValue: string): void {
    this.tokens = this.tokens.filter((t) => t.header !== headerValue)
  }

  private token(realm: string, service: string, want: ScopeSet, rc: ResolvedCredential | undefined, signal?: AbortSignal): Promise<CachedToken> {
    const key = `${realm}\n${service}\n${formatScopes(want).join(' ')}`
    let p = this.inflight.get(key)
    if (!p) {
      p = this.fetchToken(realm, service, want, rc, signal).finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    return p
  }

  private async fetchToken(realm: string, service: string, want: ScopeSet, rc: ResolvedCredential | undefined, signal?: AbortSignal): Promise<CachedToken> {
    let url: URL
    try {
      url = new URL(realm)
    } catch {
      throw this.error('UNAUTHORIZED', `${this.registry} named an invalid token realm "${redact(realm)}"`, [])
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw this.error('UNAUTHORIZED', `${this.registry} named a token realm with unsupported scheme ${url.protocol}`, [])
    }
    const c = rc?.credential
    const scopes = formatScopes(want)
    const sendsSecret = Boolean(c && (c.password || c.identityToken))
    if (sendsSecret && url.protocol === 'http:' && !isLoopbackHost(url.host)) {
      this.transport.warn(`sending credentials for ${this.registry} to token server ${url.host} over plain HTTP`)
    }
    let res
    if (c?.identityToken) {
      // OAuth2 refresh-token grant (docker's identity tokens): distribution token-auth "oauth" spec.
      const form = new URLSearchParams({grant_type: 'refresh_token', service, client_id: this.clientId, refresh_token: c.identityToken})
      if (scopes.length > 0) form.set('scope', scopes.join(' '))
      res = await this.transport.send({
        method: 'POST',
        url,
        headers: {'content-type': 'application/x-www-form-urlencoded', accept: 'application/json'},
        body: form.toString(),
        retry: true,
        signal,
      })
    } else {
      if (service) url.searchParams.set('service', service)
      for (const s of scopes) url.searchParams.append('scope', s)
      const headers: Record<string, string> = {accept: 'application/json'}
      if (c?.username !== undefined && c.password !== undefined) {
        url.searchParams.set('account', c.username)
        headers.authorization = this.basicHeader(rc)!
      }
      res = await this.transport.send({method: 'GET', url, headers, signal})
    }
    const {data} = await readLimited(res.body, MAX_TOKEN_RESPONSE)
    if (res.status === 401 || res.status === 403) {
      if (!sendsSecret) throw this.noCredentials(rc, `a token for ${scopes.join(' ') || 'access'}`)
      throw this.rejected(rc, `a token from ${url.host}`)
    }
    if (res.status !== 200) {
      const transient = res.status >= 500 || res.status === 429
      throw new OciError(
        transient ? 'REGISTRY_ERROR' : 'UNAUTHORIZED',
        redact(`token server ${redactUrl(url.origin + url.pathname)} for ${this.registry} answered ${res.status}${res.attempts > 1 ? ` after ${res.attempts} attempts` : ''}: ${data.toString('utf8').slice(0, 200)}`),
        {exit: transient ? 4 : 1, suggestions: transient ? ['retry later'] : ['check the credentials and the token server']},
      )
    }
    let body: {token?: unknown; access_token?: unknown; expires_in?: unknown}
    try {
      body = JSON.parse(data.toString('utf8'))
    } catch {
      throw new OciError('REGISTRY_ERROR', `token server ${url.host} for ${this.registry} answered with something that is not JSON`, {exit: 1})
    }
    const token = typeof body.access_token === 'string' && body.access_token ? body.access_token : body.token
    if (typeof token !== 'string' || token === '') {
      throw new OciError('REGISTRY_ERROR', `token server ${url.host} for ${this.registry} answered without a token`, {exit: 1})
    }
    registerSecret(token)
    const seconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS
    const lifetime = seconds * 1000
    const cached: CachedToken = {
      realm,
      service,
      scopes: want,
      header: `Bearer ${token}`,
      expiresAt: this.now() + lifetime - Math.min(EXPIRY_MARGIN_MS, lifetime / 10),
    }
    this.tokens.push(cached)
    this.asked.set(cached.header, want)
    return cached
  }

  private error(code: 'UNAUTHORIZED' | 'DENIED', message: string, suggestions: string[]): OciError {
    return new OciError(code, redact(message), {suggestions, details: {registry: this.registry}})
  }

  private noCredentials(rc: ResolvedCredential | undefined, what: string): OciError {
    return this.error('UNAUTHORIZED', `${this.registry} requires authentication for ${what}, and ${rc ? `${rc.source} holds no usable secret` : 'no credentials were found for it'}`, [
      `log in with "docker login ${this.registry}" (aibox reads docker's config.json and credential helpers)`,
      'or pass --username USER --password-stdin',
    ])
  }

  private rejected(rc: ResolvedCredential | undefined, what: string): OciError {
    const who = rc?.credential.username && rc.credential.username !== '<token>' ? `user "${rc.credential.username}"` : 'the token'
    return this.error('UNAUTHORIZED', `${this.registry} rejected the credentials (${who} from ${rc?.source ?? 'nowhere'}) for ${what}`, [
      'check the user name and password or token',
      `log in again with "docker login ${this.registry}" if the token has expired`,
    ])
  }

  private denied(rc: ResolvedCredential | undefined, want: ScopeSet, what: string): OciError {
    const who = rc?.credential.username ? `user "${rc.credential.username}"` : rc ? 'these credentials' : 'anonymous access'
    return this.error('DENIED', `${this.registry} denied ${what}: ${who} is not granted ${formatScopes(want).join(' ')}`, [
      'ask the registry administrator for the missing access (e.g. push on this repository)',
      'check the repository name',
    ])
  }
}


function hasSecret(rc: ResolvedCredential | undefined): boolean {
  const c = rc?.credential
  return Boolean(c && (c.password || c.identityToken || c.registryToken))
}

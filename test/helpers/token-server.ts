/**
 * A small bearer-token server for distribution 2.8 on loopback (registry-notes.md §3): ES256 JWTs
 * with the signing certificate in `x5c` (the registry's `rootcertbundle`), claims iss/sub/aud/exp/
 * nbf/iat/jti/access. GET with Basic credentials or anonymous; POST with an OAuth2 refresh token
 * or password grant. Grants the intersection of what is asked and what the ACL allows, and logs
 * every request for assertions.
 */
import {execFileSync} from 'node:child_process'
import {createPrivateKey, randomUUID, sign} from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import path from 'node:path'

import {tmpdir} from './tmp.js'

export interface TokenServerOptions {
  /** Accounts: user → password (default testuser → testpass). */
  users?: Record<string, string>
  /** OAuth2 refresh tokens (docker identity tokens): token → user. */
  refreshTokens?: Record<string, string>
  /** Actions `account` (undefined = anonymous) may have on a resource; default: users all, anonymous none. */
  acl?: (account: string | undefined, type: string, name: string) => string[]
  /** Token lifetime in seconds (default 300). */
  expiresIn?: number
  service?: string
  issuer?: string
}

export interface TokenRequest {
  method: string
  account?: string
  /** Scopes asked for, as sent. */
  scopes: string[]
  /** What was granted: `type:name:actions`. */
  granted: string[]
  status: number
}

export interface TokenServer {
  realm: string
  certFile: string
  service: string
  issuer: string
  requests: TokenRequest[]
  /** Every token issued (for tests that check no token leaks into output or files). */
  issued: string[]
  close(): Promise<void>
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url')
}

export async function startTokenServer(opts: TokenServerOptions = {}): Promise<TokenServer> {
  const dir = tmpdir('aibox-token-')
  const keyFile = path.join(dir, 'token-key.pem')
  const certFile = path.join(dir, 'token-cert.pem')
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-sha256', '-days', '7', '-keyout', keyFile, '-out', certFile, '-subj', '/CN=aibox test token signer'],
    {stdio: 'ignore'},
  )
  const key = createPrivateKey(fs.readFileSync(keyFile))
  const certDer = fs
    .readFileSync(certFile, 'utf8')
    .replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
    .replace(/\s+/g, '')
  const users = opts.users ?? {testuser: 'testpass'}
  const refreshTokens = opts.refreshTokens ?? {}
  const acl = opts.acl ?? ((account) => (account ? ['pull', 'push', 'delete', '*'] : []))
  const service = opts.service ?? 'aibox-test-registry'
  const issuer = opts.issuer ?? 'aibox-test-token-issuer'
  const expiresIn = opts.expiresIn ?? 300
  const requests: TokenRequest[] = []
  const issued: string[] = []

  const issue = (account: string | undefined, scopes: string[]) => {
    const access: Array<{type: string; name: string; actions: string[]}> = []
    for (const s of scopes.flatMap((x) => x.split(' ')).filter(Boolean)) {
      const first = s.indexOf(':')
      const last = s.lastIndexOf(':')
      if (first < 0 || last <= first) continue
      const type = s.slice(0, first)
      const name = s.slice(first + 1, last)
      const allowed = acl(account, type, name)
      const actions = s
        .slice(last + 1)
        .split(',')
        .filter((a) => allowed.includes(a) || allowed.includes('*'))
      if (actions.length > 0) access.push({type, name, actions})
    }
    const now = Math.floor(Date.now() / 1000)
    const header = {typ: 'JWT', alg: 'ES256', x5c: [certDer]}
    const claims = {iss: issuer, sub: account ?? '', aud: service, exp: now + expiresIn, nbf: now - 10, iat: now, jti: randomUUID(), access}
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
    const sig = sign('sha256', Buffer.from(input), {key, dsaEncoding: 'ieee-p1363'})
    issued.push(`${input}.${b64url(sig)}`)
    return {token: `${input}.${b64url(sig)}`, granted: access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`)}
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (b: Buffer) => chunks.push(b))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x')
      const reply = (status: number, body: unknown, log: Omit<TokenRequest, 'status'>) => {
        requests.push({...log, status})
        res.writeHead(status, {'content-type': 'application/json'})
        res.end(JSON.stringify(body))
      }
      if (url.pathname !== '/token') return reply(404, {error: 'not found'}, {method: req.method ?? '', scopes: [], granted: []})
      let account: string | undefined
      let scopes: string[]
      if (req.method === 'POST') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
        scopes = form.getAll('scope')
        const grant = form.get('grant_type')
        if (grant === 'refresh_token') account = refreshTokens[form.get('refresh_token') ?? '']
        else if (grant === 'password') {
          const u = form.get('username') ?? ''
          account = users[u] !== undefined && users[u] === form.get('password') ? u : undefined
        }
        if (!account) return reply(401, {error: 'invalid_grant'}, {method: 'POST', scopes, granted: []})
      } else {
        scopes = url.searchParams.getAll('scope')
        const auth = req.headers.authorization
        if (auth) {
          const m = /^Basic\s+(.+)$/i.exec(auth)
          const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : ''
          const colon = decoded.indexOf(':')
          const u = decoded.slice(0, colon)
          if (colon < 0 || users[u] === undefined || users[u] !== decoded.slice(colon + 1)) {
            return reply(401, {errors: [{code: 'UNAUTHORIZED', message: 'bad credentials'}]}, {method: 'GET', scopes, granted: []})
          }
          account = u
        }
      }
      const {token, granted} = issue(account, scopes)
      const body: Record<string, unknown> = {token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString()}
      reply(200, body, {method: req.method ?? '', account, scopes, granted})
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as AddressInfo
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certFile,
    service,
    issuer,
    requests,
    issued,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

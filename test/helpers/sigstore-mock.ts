/**
 * A private Sigstore on loopback for the keyless tests: `@sigstore/mock`'s Fulcio, Rekor v1 and
 * TSA handlers served by a `node:http` server on 127.0.0.1 (toolchain.md §F "Loopback server"),
 * with our own P-256 keys so the trust material (a Sigstore trusted_root.json, or PEM files) can
 * be written for the verifier.
 *
 * Every service runs on ONE fixed clock whose milliseconds have three significant digits
 * (toolchain.md §F "Flake": the mock TSA drops trailing zeros of the GeneralizedTime fraction,
 * which @sigstore/core refuses). The clock is a few seconds after the roots are made, so the
 * root/intermediate certificates (valid from their creation) cover it; the Fulcio leaf starts a
 * second before it (certificate times are whole seconds).
 */
import {createHash, createHmac, generateKeyPairSync, type KeyObject, X509Certificate} from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import path from 'node:path'

import {fulcioHandler, initializeCA, initializeCTLog, initializeTLog, initializeTSA, rekorHandler, tsaHandler} from '@sigstore/mock'
import {TrustedRoot} from '@sigstore/protobuf-specs'

export interface MockSigstoreOptions {
  /** Issue certificates with an embedded SCT from a mock CT log (default true). */
  ctlog?: boolean
  /** Which JWT claim becomes the certificate's SAN (default `sub`, like Fulcio for most issuers). */
  subjectClaim?: string
}

export interface MockRequest {
  method: string
  path: string
  status: number
}

/** Files of the trust material, as a trust policy names them. */
export interface TrustFiles {
  trustedRoot: string
  fulcio: string
  rekor: string
  tsa: string
  ctlog?: string
}

export interface MockSigstore {
  /** `http://127.0.0.1:PORT`: Fulcio, Rekor and the TSA share it (their routes differ). */
  url: string
  clock: Date
  /** Every request served, in order. */
  requests: MockRequest[]
  /** The Sigstore trusted root (protobuf-specs JSON) for this instance. */
  trustedRoot: Record<string, unknown>
  pem: {fulcio: string; rekor: string; tsa: string; ctlog?: string}
  /** Answers the next `times` requests to `route` (e.g. `/api/v2/signingCert`) with this status and JSON message. */
  failNext(route: string, status: number, message: string, times?: number): void
  /** Forgets failures not yet served. */
  clearFailures(): void
  /** An HS256-signed OIDC token with these claims (defaults: iss, aud sigstore, iat, exp in 10 minutes). */
  token(claims: Record<string, unknown>): string
  /** Writes trusted_root.json and the PEM files into `dir`. */
  writeTrustFiles(dir: string): TrustFiles
  close(): Promise<void>
}

export const MOCK_ISSUER = 'https://oidc.example.test'

const ROUTES = {fulcio: '/api/v2/signingCert', rekor: '/api/v1/log/entries', tsa: '/api/v1/timestamp'}

function pemOf(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`
}

function keyPair(): {publicKey: KeyObject; privateKey: KeyObject} {
  return generateKeyPairSync('ec', {namedCurve: 'P-256'})
}

function b64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
}

export async function startMockSigstore(options: MockSigstoreOptions = {}): Promise<MockSigstore> {
  const requests: MockRequest[] = []
  const failures = new Map<string, {status: number; message: string; times: number}>()
  let handlers: Record<string, (body: string) => Promise<{statusCode: number; response: string | ArrayBufferView; contentType?: string}>> = {}

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const route = (req.url ?? '').split('?')[0]!
      const done = (status: number, body: string | ArrayBufferView, type: string) => {
        requests.push({method: req.method ?? '', path: route, status})
        res.writeHead(status, {'Content-Type': type})
        res.end(typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength))
      }
      const failure = failures.get(route)
      if (failure) {
        if (--failure.times <= 0) failures.delete(route)
        return done(failure.status, JSON.stringify({code: failure.status, message: failure.message}), 'application/json')
      }
      const handler = handlers[route]
      if (req.method !== 'POST' || !handler) return done(404, JSON.stringify({message: 'not found'}), 'application/json')
      handler(Buffer.concat(chunks).toString('utf8')).then(
        (r) => done(r.statusCode, r.response, r.contentType ?? 'text/plain'),
        (err: unknown) => done(500, String(err), 'text/plain'),
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  // The fixed clock: whole seconds + 123 ms, a few seconds ahead of the roots made below.
  const clock = new Date(Math.floor(Date.now() / 1000) * 1000 + 5000 + 123)
  const leafClock = new Date(clock.getTime() - 1000)
  const ctlog = options.ctlog === false ? undefined : await initializeCTLog(keyPair(), clock)
  const ca = await initializeCA(keyPair(), ctlog, leafClock)
  const tlog = await initializeTLog(url, keyPair(), clock)
  const tsa = await initializeTSA(keyPair(), clock)
  const fulcio = fulcioHandler(ca, {strict: true, ...(options.subjectClaim ? {subjectClaim: options.subjectClaim} : {})})
  const rekor = rekorHandler(tlog, {strict: true})
  const timestamp = tsaHandler(tsa, {strict: true})
  handlers = {[fulcio.path]: fulcio.fn, [rekor.path]: rekor.fn, [timestamp.path]: timestamp.fn}

  const rootDer = Buffer.from(ca.rootCertificate.buffer, ca.rootCertificate.byteOffset, ca.rootCertificate.byteLength)
  const tsaInt = Buffer.from(tsa.intCertificate.buffer, tsa.intCertificate.byteOffset, tsa.intCertificate.byteLength)
  const tsaRoot = Buffer.from(tsa.rootCertificate.buffer, tsa.rootCertificate.byteOffset, tsa.rootCertificate.byteLength)
  const since = new X509Certificate(rootDer).validFrom
  const validFor = {start: new Date(since).toISOString()}
  const tlogKey = Buffer.from(tlog.publicKey)
  const log = (key: Buffer, logId: Buffer, baseUrl: string) => ({
    baseUrl,
    hashAlgorithm: 'SHA2_256',
    publicKey: {rawBytes: key.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor},
    logId: {keyId: logId.toString('base64')},
  })
  const rootJson = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [log(tlogKey, createHash('sha256').update(tlogKey).digest(), url)],
    certificateAuthorities: [
      {subject: {organization: 'sigstore.mock', commonName: 'sigstore'}, uri: url, certChain: {certificates: [{rawBytes: rootDer.toString('base64')}]}, validFor},
    ],
    ctlogs: ctlog ? [log(Buffer.from(ctlog.publicKey), Buffer.from(ctlog.logID.buffer, ctlog.logID.byteOffset, ctlog.logID.byteLength), url)] : [],
    timestampAuthorities: [
      {subject: {organization: 'sigstore.mock', commonName: 'tsa'}, uri: url, certChain: {certificates: [{rawBytes: tsaInt.toString('base64')}, {rawBytes: tsaRoot.toString('base64')}]}, validFor},
    ],
  }
  // Round-trip through the protobuf-specs codec: what we write is exactly what a Sigstore client reads.
  const trustedRoot = TrustedRoot.toJSON(TrustedRoot.fromJSON(rootJson)) as Record<string, unknown>
  const pem = {
    fulcio: pemOf('CERTIFICATE', rootDer),
    rekor: pemOf('PUBLIC KEY', tlogKey),
    tsa: pemOf('CERTIFICATE', tsaInt) + pemOf('CERTIFICATE', tsaRoot),
    ...(ctlog ? {ctlog: pemOf('PUBLIC KEY', Buffer.from(ctlog.publicKey))} : {}),
  }
  const secret = Buffer.from('aibox-mock-oidc')

  return {
    url,
    clock,
    requests,
    trustedRoot,
    pem,
    failNext(route, status, message, times = 1) {
      failures.set(route, {status, message, times})
    },
    clearFailures() {
      failures.clear()
    },
    token(claims) {
      const now = Math.floor(Date.now() / 1000)
      const payload = {iss: MOCK_ISSUER, aud: 'sigstore', iat: now, exp: now + 600, ...claims}
      const head = `${b64url({alg: 'HS256', typ: 'JWT'})}.${b64url(payload)}`
      return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`
    },
    writeTrustFiles(dir) {
      fs.mkdirSync(dir, {recursive: true})
      const files: TrustFiles = {
        trustedRoot: path.join(dir, 'trusted_root.json'),
        fulcio: path.join(dir, 'fulcio-root.pem'),
        rekor: path.join(dir, 'rekor.pub'),
        tsa: path.join(dir, 'tsa-chain.pem'),
        ...(pem.ctlog ? {ctlog: path.join(dir, 'ctfe.pub')} : {}),
      }
      fs.writeFileSync(files.trustedRoot, `${JSON.stringify(trustedRoot, null, 2)}\n`)
      fs.writeFileSync(files.fulcio, pem.fulcio)
      fs.writeFileSync(files.rekor, pem.rekor)
      fs.writeFileSync(files.tsa, pem.tsa)
      if (files.ctlog) fs.writeFileSync(files.ctlog, pem.ctlog!)
      return files
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

export {ROUTES as MOCK_ROUTES}

/**
 * What a registry's TLS certificate looks like and why it is (not) trusted, for `aibox doctor`.
 *
 * Requests go through the HTTP transport (src/oci/http.ts), which only says "not trusted". This
 * opens one TLS connection with the transport's own CA set, without rejecting the peer, so the
 * report can name the certificate, its issuer, its validity dates and the exact reason Node's
 * verification gives (untrusted issuer, expired, wrong host name). Nothing is sent over it.
 */
import net from 'node:net'
import tls, {type DetailedPeerCertificate} from 'node:tls'

import {errorMessage} from '../errors.js'

export interface CertificateInfo {
  subject: string
  issuer: string
  /** `DNS:…, IP Address:…` as the certificate lists them. */
  subjectAltName?: string
  /** RFC 3339. */
  validFrom: string
  validTo: string
  /** SHA-256 fingerprint, colon-separated hex. */
  fingerprint256: string
  selfSigned: boolean
}

export interface TlsInspection {
  /** The TCP connection was established. */
  connected: boolean
  /** The TLS handshake completed (whatever the verdict on the certificate). */
  handshake: boolean
  /** Chain and host name verified against the CA set. */
  authorized: boolean
  /** Node's verification error code (e.g. `CERT_HAS_EXPIRED`, `ERR_TLS_CERT_ALTNAME_INVALID`, `DEPTH_ZERO_SELF_SIGNED_CERT`). */
  authorizationError?: string
  protocol?: string
  certificate?: CertificateInfo
  /** Issuers above the leaf, as the server sent them (subject names). */
  chain: string[]
  /** The connection or handshake error, when there was one (its code and message). */
  error?: {code?: string; message: string}
}

export interface InspectOptions {
  /** CA certificates to trust; undefined for Node's default store (which includes NODE_EXTRA_CA_CERTS). */
  ca?: string[]
  timeoutMs?: number
}

function dn(name: Record<string, string | string[]> | undefined): string {
  if (!name) return ''
  return Object.entries(name)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
    .join(', ')
}

function isoDate(s: string | undefined): string {
  const t = s ? Date.parse(s) : Number.NaN
  return Number.isNaN(t) ? (s ?? '') : new Date(t).toISOString()
}

function describe(cert: DetailedPeerCertificate): CertificateInfo {
  const subject = dn(cert.subject as unknown as Record<string, string>)
  const issuer = dn(cert.issuer as unknown as Record<string, string>)
  return {
    subject,
    issuer,
    ...(cert.subjectaltname ? {subjectAltName: cert.subjectaltname} : {}),
    validFrom: isoDate(cert.valid_from),
    validTo: isoDate(cert.valid_to),
    fingerprint256: cert.fingerprint256,
    selfSigned: subject === issuer,
  }
}

function chainOf(cert: DetailedPeerCertificate): string[] {
  const out: string[] = []
  const seen = new Set<string>([cert.fingerprint256])
  for (let c = cert.issuerCertificate; c && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256)
    out.push(dn(c.subject as unknown as Record<string, string>))
  }
  return out
}

/** Connects to `host:port`, completes a TLS handshake with SNI (for names, not IPs), and reports. Never throws. */
export function inspectTls(host: string, port: number, opts: InspectOptions = {}): Promise<TlsInspection> {
  return new Promise((resolve) => {
    let connected = false
    let done = false
    const hostname = host.replace(/^\[(.*)\]$/, '$1')
    const socket = tls.connect({
      host: hostname,
      port,
      ...(net.isIP(hostname) ? {} : {servername: hostname}),
      ...(opts.ca ? {ca: opts.ca} : {}),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    })
    const finish = (r: TlsInspection) => {
      if (done) return
      done = true
      socket.destroy()
      resolve(r)
    }
    socket.setTimeout(opts.timeoutMs ?? 10_000, () => {
      finish({connected, handshake: false, authorized: false, chain: [], error: {code: 'ETIMEDOUT', message: `no TLS handshake within ${(opts.timeoutMs ?? 10_000) / 1000} s`}})
    })
    socket.once('connect', () => {
      connected = true
    })
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate(true)
      const hasCert = cert && Object.keys(cert).length > 0
      finish({
        connected: true,
        handshake: true,
        authorized: socket.authorized,
        ...(socket.authorized ? {} : {authorizationError: String(socket.authorizationError ?? 'UNKNOWN')}),
        protocol: socket.getProtocol() ?? undefined,
        ...(hasCert ? {certificate: describe(cert)} : {}),
        chain: hasCert ? chainOf(cert) : [],
      })
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      finish({connected, handshake: false, authorized: false, chain: [], error: {...(err.code ? {code: err.code} : {}), message: errorMessage(err)}})
    })
  })
}

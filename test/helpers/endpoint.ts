/**
 * A stand-in HTTP(S) endpoint on 127.0.0.1 for the failure modes a real registry cannot be made to
 * show on demand: a certificate that is expired, names another host or is self-signed, and a
 * `Date` header off by minutes. It answers every request like distribution's `GET /v2/` does for
 * an anonymous client (401, `WWW-Authenticate: Basic`, `Docker-Distribution-API-Version`).
 * Certificates are made with the openssl CLI (Debian package, scripts/install-sysdeps.sh).
 */
import {execFileSync} from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type {AddressInfo} from 'node:net'
import path from 'node:path'

import {tmpdir} from './tmp.js'

export type CertKind = 'valid' | 'expired' | 'wrong-host' | 'self-signed'

export interface EndpointOptions {
  /** Serve HTTPS with this kind of certificate (default: plain HTTP). */
  tls?: CertKind
  /** Added to the real time in the `Date` header. */
  dateOffsetMs?: number
  /** Status of every answer (default 401). */
  status?: number
}

export interface Endpoint {
  /** `127.0.0.1:PORT` */
  host: string
  port: number
  /** The CA that issued the certificate (for `valid`, `expired`, `wrong-host`). */
  caFile?: string
  close(): Promise<void>
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, {cwd, stdio: ['ignore', 'ignore', 'pipe']})
}

/** A CA and a leaf certificate for 127.0.0.1 of the given kind; returns the file names in `dir`. */
export function makeCertificates(dir: string, kind: CertKind): {ca?: string; cert: string; key: string} {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-sha256']
  if (kind === 'self-signed') {
    openssl(['req', '-x509', ...ec, '-days', '7', '-keyout', 'key.pem', '-out', 'cert.pem', '-subj', '/CN=self-signed registry', '-addext', 'subjectAltName=IP:127.0.0.1'], dir)
    return {cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem')}
  }
  openssl(['req', '-x509', ...ec, '-days', '7', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-subj', '/CN=doctor test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir)
  openssl(['req', ...ec, '-keyout', 'key.pem', '-out', 'cert.csr', '-subj', '/CN=doctor test registry'], dir)
  const san = kind === 'wrong-host' ? 'DNS:registry.other.example' : 'IP:127.0.0.1'
  fs.writeFileSync(path.join(dir, 'cert.ext'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`)
  if (kind === 'expired') {
    // `openssl x509 -days` cannot date a certificate in the past; `openssl ca` takes explicit dates.
    fs.writeFileSync(path.join(dir, 'index.txt'), '')
    fs.writeFileSync(path.join(dir, 'serial'), '01\n')
    fs.mkdirSync(path.join(dir, 'issued'))
    fs.writeFileSync(
      path.join(dir, 'ca.cnf'),
      ['[ca]', 'default_ca = ca_default', '[ca_default]', 'dir = .', 'database = index.txt', 'new_certs_dir = issued', 'serial = serial', 'default_md = sha256', 'policy = any', 'unique_subject = no', '[any]', 'commonName = supplied', ''].join('\n'),
    )
    openssl(['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca-key.pem', '-in', 'cert.csr', '-out', 'cert.pem', '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-extfile', 'cert.ext', '-notext'], dir)
  } else {
    openssl(['x509', '-req', '-in', 'cert.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '7', '-sha256', '-extfile', 'cert.ext', '-out', 'cert.pem'], dir)
  }
  return {ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem')}
}

export async function startEndpoint(opts: EndpointOptions = {}): Promise<Endpoint> {
  const handler: http.RequestListener = (req, res) => {
    req.resume()
    res.setHeader('Date', new Date(Date.now() + (opts.dateOffsetMs ?? 0)).toUTCString())
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0')
    const status = opts.status ?? 401
    if (status === 401) res.setHeader('WWW-Authenticate', 'Basic realm="endpoint"')
    res.writeHead(status, {'content-type': 'application/json'})
    res.end(status === 200 ? '{}' : JSON.stringify({errors: [{code: 'UNAUTHORIZED', message: 'authentication required'}]}))
  }
  let caFile: string | undefined
  let server: http.Server
  if (opts.tls) {
    const files = makeCertificates(tmpdir('aibox-endpoint-'), opts.tls)
    caFile = files.ca
    server = https.createServer({cert: fs.readFileSync(files.cert), key: fs.readFileSync(files.key)}, handler)
  } else {
    server = http.createServer(handler)
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as AddressInfo
  return {
    host: `127.0.0.1:${port}`,
    port,
    caFile,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/**
 * The freshness check of `aibox start`: what digest does each tier's tag point at now, in ONE
 * request (issue 5: "Resolve each tier's tag with one request"; architecture.md: warm start ≤ 1.6 ×
 * `node -e 0`). On a registry it is one `HEAD /v2/<repo>/manifests/<tag>` over node's own http(s)
 * module: loading undici and the registry client would alone cost more than node's start-up, and
 * this request needs none of their machinery (uploads, retries, redirects). On an `oci:` layout it
 * is one read of `index.json`.
 *
 * What it does not handle itself it hands back (`{kind: 'delegate'}`) to the full registry client:
 * a registry that wants credentials (401/403: the client does Basic, Bearer tokens, credential
 * helpers), or a HEAD answer without a usable digest. A network failure, a timeout, a 5xx or 429,
 * or a missing layout directory is `unreachable` (a transient failure: the only case where the
 * cache may be used), never retried: the offline fallback must cost no more requests.
 */
import fs from 'node:fs'
import net, {type Socket} from 'node:net'
import path from 'node:path'

import {AiboxError, EXIT} from '../errors.js'
import {OciError} from '../oci/errors.js'
import {MANIFEST_MEDIA_TYPES} from '../oci/media.js'
import {isLoopbackHost, type LayoutReference, type RegistryReference} from '../oci/reference.js'

export interface ObservedDescriptor {
  mediaType: string
  digest: string
  size: number
}

export type ProbeResult =
  | {kind: 'found'; desc: ObservedDescriptor; requests: number}
  /** The source cannot be reached now (transient): the cache may be used. */
  | {kind: 'unreachable'; error: AiboxError; requests: number}
  /** The source says the tag (or digest) does not exist: authoritative, exit 3, never a reason to use the cache. */
  | {kind: 'not-found'; error: AiboxError; requests: number}
  /** Ask the full registry client (credentials needed, or an answer this probe does not use). */
  | {kind: 'delegate'; reason: string; requests: number}

export interface RegistryProbeOptions {
  plainHttp?: boolean
  insecure?: boolean
  caFile?: string[]
  timeoutMs: number
  env?: NodeJS.ProcessEnv
  userAgent?: string
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504])

function scheme(ref: RegistryReference, o: RegistryProbeOptions): 'http' | 'https' {
  if (o.plainHttp !== undefined) return o.plainHttp ? 'http' : 'https'
  return isLoopbackHost(ref.host) && !o.insecure && !o.caFile?.length ? 'http' : 'https'
}

async function caBundle(o: RegistryProbeOptions): Promise<string[] | undefined> {
  if (!o.caFile?.length) return undefined
  const tls = await import('node:tls')
  const extra = (o.env ?? process.env).NODE_EXTRA_CA_CERTS
  const files = [...o.caFile, ...(extra ? [extra] : [])]
  return [...tls.rootCertificates, ...files.map((f) => fs.readFileSync(f, 'utf8'))]
}

/** The everyday network failures of a freshness check (all transient: the cache may serve). */
function commonNetworkError(err: NodeJS.ErrnoException, url: URL): OciError | undefined {
  const where = `${url.host} (freshness check ${url.pathname})`
  const make = (code: 'NETWORK' | 'TIMEOUT', message: string, suggestion: string) => new OciError(code, message, {exit: EXIT.TRANSIENT, cause: err, suggestions: [suggestion]})
  switch (err.code) {
    case 'ECONNREFUSED':
      return make('NETWORK', `connection refused by ${where}`, 'is the registry running and listening on this host and port?')
    case 'ECONNRESET':
    case 'EPIPE':
      return make('NETWORK', `the connection to ${where} was reset`, 'check the network path to the registry')
    case 'ETIMEDOUT':
      return make('TIMEOUT', `timed out connecting to ${where}`, 'check the network path to the registry')
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return make('NETWORK', `cannot resolve host ${url.hostname}`, 'check the registry host name and DNS')
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return make('NETWORK', `${where} is unreachable (${err.code})`, 'check the network path to the registry')
    default:
      return undefined
  }
}

/** Longest response head we read before giving the question to the full client. */
const MAX_HEAD_BYTES = 64 * 1024

/** Status and lower-cased headers of an HTTP/1.x response head (without the blank line); undefined when malformed. */
export function parseResponseHead(head: string): {status: number; headers: Map<string, string>} | undefined {
  const lines = head.split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '')
  if (!m) return undefined
  const headers = new Map<string, string>()
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':')
    if (i <= 0) return undefined
    const name = line.slice(0, i).trim().toLowerCase()
    if (!headers.has(name)) headers.set(name, line.slice(i + 1).trim())
  }
  return {status: Number(m[1]), headers}
}

/**
 * One HEAD for the manifest `ref` names (its tag, or its digest), written on a plain socket (or
 * TLS socket): a HEAD answer has no body, and node's http client costs more on its first request
 * than the request itself. Anything unusual in the answer is handed to the full client.
 */
export async function probeRegistry(ref: RegistryReference, o: RegistryProbeOptions): Promise<ProbeResult> {
  const selector = ref.digest ?? ref.tag
  const s = scheme(ref, o)
  const url = new URL(`${s}://${ref.host}/v2/${ref.repository}/manifests/${selector}`)
  const location = `${ref.registry}/${ref.repository}`
  let ca: string[] | undefined
  try {
    ca = await caBundle(o)
  } catch (err) {
    return {kind: 'delegate', reason: `cannot read a CA file (${(err as Error).message})`, requests: 0}
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  const port = Number(url.port || (s === 'https' ? 443 : 80))
  let socket: Socket
  if (s === 'https') {
    const tls = await import('node:tls')
    socket = tls.connect({host, port, ...(net.isIP(host) ? {} : {servername: host}), rejectUnauthorized: !o.insecure, ALPNProtocols: ['http/1.1'], ...(ca ? {ca} : {})})
  } else {
    socket = net.connect({host, port})
  }
  const request =
    `HEAD ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: ${MANIFEST_MEDIA_TYPES.join(', ')}\r\n` +
    `User-Agent: ${o.userAgent ?? 'aibox-start'}\r\nConnection: close\r\n\r\n`
  return new Promise((resolve) => {
    let settled = false
    let buf = ''
    const done = (r: ProbeResult) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(r)
    }
    const timer = setTimeout(() => {
      done({
        kind: 'unreachable',
        error: new OciError('TIMEOUT', `${location} did not answer the freshness check of ${selector} within ${o.timeoutMs} ms`, {
          exit: EXIT.TRANSIENT,
          suggestions: ['check the network path to the registry; raise registry.timeout in aibox.yaml if it is slow'],
        }),
        requests: 1,
      })
    }, o.timeoutMs)
    socket.setEncoding('latin1')
    socket.on(s === 'https' ? 'secureConnect' : 'connect', () => socket.write(request))
    socket.on('data', (chunk: string) => {
      buf += chunk
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) {
        if (buf.length > MAX_HEAD_BYTES) done({kind: 'delegate', reason: 'the response head is too large', requests: 1})
        return
      }
      done(answer(parseResponseHead(buf.slice(0, end))))
    })
    // Closed before a complete answer: like a reset, a network failure (transient).
    const cut = () =>
      done({
        kind: 'unreachable',
        error: new OciError('NETWORK', `${location} closed the connection without answering the freshness check of ${selector}`, {
          exit: EXIT.TRANSIENT,
          suggestions: ['check the network path to the registry (a proxy or load balancer in between?)'],
        }),
        requests: 1,
      })
    socket.on('end', cut)
    socket.on('close', (hadError: boolean) => {
      if (!hadError) cut()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const common = commonNetworkError(err, url)
      if (common) {
        done({kind: 'unreachable', error: common, requests: 1})
        return
      }
      // TLS and the rarer failures: the registry client's classification (it loads node:tls, which
      // the offline fallback of a plain-HTTP registry should not pay for).
      void import('../oci/http.js').then(({classifyNetworkError}) => {
        const c = classifyNetworkError(err, url)
        done({kind: 'unreachable', error: new OciError(c.error.code, c.error.message, {exit: EXIT.TRANSIENT, cause: err, suggestions: c.error.suggestions}), requests: 1})
      })
    })
  })

  function answer(res: ReturnType<typeof parseResponseHead>): ProbeResult {
    if (!res) return {kind: 'delegate', reason: 'the answer is not HTTP/1.x', requests: 1}
    const {status, headers} = res
    if (status === 200) {
      const digest = headers.get('docker-content-digest')
      const mediaType = headers.get('content-type')?.split(';')[0]?.trim().toLowerCase()
      const size = Number(headers.get('content-length'))
      if (digest && DIGEST_RE.test(digest) && mediaType && MANIFEST_MEDIA_TYPES.includes(mediaType) && Number.isSafeInteger(size) && size > 0) {
        if (ref.digest !== undefined && digest !== ref.digest) return {kind: 'delegate', reason: `the registry answered ${digest} for ${ref.digest}`, requests: 1}
        return {kind: 'found', desc: {mediaType, digest, size}, requests: 1}
      }
      return {kind: 'delegate', reason: 'the HEAD answer has no usable digest, media type or size', requests: 1}
    }
    if (TRANSIENT_STATUS.has(status)) {
      return {kind: 'unreachable', error: new OciError('REGISTRY_ERROR', `${location} answered ${status} to the freshness check of ${selector}`, {exit: EXIT.TRANSIENT}), requests: 1}
    }
    if (status === 404) {
      return {kind: 'not-found', error: new OciError('NOT_FOUND', `${selector} not found in ${location}`, {suggestions: [`check the reference; aibox tags ${location} lists the tags`]}), requests: 1}
    }
    return {kind: 'delegate', reason: `the registry answered ${status}`, requests: 1}
  }
}

/**
 * Resolves a tag (or digest) in an `oci:` layout directory by reading its `index.json` once. A
 * directory that is not there (an unmounted medium, a removed mirror) is unreachable; a tag that
 * is not listed is handed to the full layout store, which knows the other spellings and says
 * NOT_FOUND properly.
 */
export function probeLayout(ref: LayoutReference): ProbeResult {
  const dir = path.resolve(ref.path)
  let text: string
  try {
    text = fs.readFileSync(path.join(dir, 'index.json'), 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      return {
        kind: 'unreachable',
        error: new OciError('NETWORK', `the policy layout oci:${dir} is not there (${code})`, {exit: EXIT.TRANSIENT, suggestions: ['mount or restore the layout directory, or fix the oci: path in aibox.yaml']}),
        requests: 1,
      }
    }
    return {kind: 'delegate', reason: `cannot read oci:${dir}/index.json (${code ?? (err as Error).message})`, requests: 1}
  }
  let index: {manifests?: Array<{mediaType?: string; digest?: string; size?: number; annotations?: Record<string, string>}>}
  try {
    index = JSON.parse(text)
  } catch {
    return {kind: 'delegate', reason: 'index.json is not JSON', requests: 1}
  }
  const found = (index.manifests ?? []).find((m) => (ref.digest !== undefined ? m.digest === ref.digest : m.annotations?.['org.opencontainers.image.ref.name'] === ref.tag))
  if (found && typeof found.digest === 'string' && DIGEST_RE.test(found.digest) && typeof found.mediaType === 'string' && Number.isSafeInteger(found.size)) {
    return {kind: 'found', desc: {mediaType: found.mediaType, digest: found.digest, size: found.size!}, requests: 1}
  }
  return {kind: 'delegate', reason: `${ref.digest ?? ref.tag} is not listed by name in index.json`, requests: 1}
}

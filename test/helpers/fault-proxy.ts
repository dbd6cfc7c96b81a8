/**
 * A loopback reverse proxy in front of a real registry that injects faults on demand (`tc netem`
 * is unavailable here, registry-notes.md §7): error statuses (with `Retry-After`), connection
 * resets before forwarding, responses cut after N bytes or stalled, bodies and headers rewritten
 * (wrong bytes for a digest, a lying Docker-Content-Digest), redirects, delays. Every request is recorded, so
 * tests can assert retries happened (or not), which upload path was used and which headers were sent.
 * The Host header is forwarded unchanged, so the registry's absolute Location URLs point back here.
 */
import http from 'node:http'
import type {AddressInfo, Socket} from 'node:net'

export interface SeenRequest {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  /** Status sent back, or what the fault did. */
  outcome: number | 'reset' | 'cut' | 'stalled'
}

export type FaultAction =
  | {status: number; retryAfter?: string; body?: string | Buffer; headers?: Record<string, string>}
  | {reset: true}
  | {cutResponseAfter: number}
  | {delayMs: number}
  | {redirectTo: string}
  /** Forward, send the upstream headers and the first `bytes` of the body, then send nothing more (the connection stays open). */
  | {stallAfterBytes: number}
  /** Forward, then answer with the upstream status and headers but this body (Content-Length fixed up): wrong bytes for a digest. */
  | {rewriteBody: (body: Buffer) => Buffer}
  /** Forward, then override these response headers (e.g. a lying Docker-Content-Digest). */
  | {setHeaders: Record<string, string>}
  /** Forward unchanged, then call `then` once the response is sent (to act as a concurrent client at a precise moment). */
  | {then: () => void}

export interface FaultRule {
  method?: string
  /** Matches the request path (and query). */
  path: RegExp
  /** How many matching requests get the fault (default 1). */
  times?: number
  action: FaultAction
}

export interface FaultProxy {
  url: string
  host: string
  requests: SeenRequest[]
  addRule(rule: FaultRule): void
  clearRules(): void
  close(): Promise<void>
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target)
  const rules: Array<FaultRule & {left: number}> = []
  const requests: SeenRequest[] = []
  const sockets = new Set<Socket>()

  const server = http.createServer((req, res) => {
    const seen: SeenRequest = {method: req.method ?? '', url: req.url ?? '', headers: req.headers, outcome: 0}
    requests.push(seen)
    const rule = rules.find((r) => r.left > 0 && (!r.method || r.method === req.method) && r.path.test(req.url ?? ''))
    if (rule) rule.left--
    const action = rule?.action
    if (action && 'reset' in action) {
      seen.outcome = 'reset'
      req.socket.destroy()
      return
    }
    if (action && 'status' in action) {
      req.resume()
      req.on('end', () => {
        seen.outcome = action.status
        const headers: Record<string, string> = {'content-type': 'application/json', ...action.headers}
        if (action.retryAfter !== undefined) headers['retry-after'] = action.retryAfter
        res.writeHead(action.status, headers)
        res.end(action.body ?? JSON.stringify({errors: [{code: 'UNKNOWN', message: `injected ${action.status}`}]}))
      })
      return
    }
    if (action && 'redirectTo' in action) {
      req.resume()
      req.on('end', () => {
        seen.outcome = 307
        res.writeHead(307, {location: action.redirectTo})
        res.end()
      })
      return
    }
    const forward = () => {
      const up = http.request(
        {host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers},
        (upRes) => {
          seen.outcome = upRes.statusCode ?? 0
          if (action && 'rewriteBody' in action) {
            const chunks: Buffer[] = []
            upRes.on('data', (b: Buffer) => chunks.push(b))
            upRes.on('end', () => {
              const body = action.rewriteBody(Buffer.concat(chunks))
              res.writeHead(upRes.statusCode ?? 502, {...upRes.headers, 'content-length': String(body.length)})
              res.end(req.method === 'HEAD' ? undefined : body)
            })
            return
          }
          const headers = action && 'setHeaders' in action ? {...upRes.headers, ...action.setHeaders} : upRes.headers
          res.writeHead(upRes.statusCode ?? 502, headers)
          if (action && 'stallAfterBytes' in action) {
            let sent = 0
            upRes.on('data', (b: Buffer) => {
              const room = action.stallAfterBytes - sent
              if (room > 0) res.write(b.subarray(0, room))
              sent += b.length
              if (sent >= action.stallAfterBytes) seen.outcome = 'stalled'
            })
            // Never end: the client's body timeout has to notice.
            return
          }
          if (action && 'cutResponseAfter' in action) {
            let sent = 0
            upRes.on('data', (b: Buffer) => {
              const room = action.cutResponseAfter - sent
              if (room <= 0) return
              res.write(b.subarray(0, room))
              sent += Math.min(room, b.length)
              if (sent >= action.cutResponseAfter) {
                seen.outcome = 'cut'
                upRes.destroy()
                // Let the bytes leave, then drop the connection mid-body.
                setTimeout(() => res.socket?.destroy(), 20)
              }
            })
            upRes.on('end', () => res.end())
          } else {
            if (action && 'then' in action) res.on('finish', () => action.then())
            upRes.pipe(res)
          }
        },
      )
      up.on('error', () => res.socket?.destroy())
      req.pipe(up)
    }
    if (action && 'delayMs' in action) setTimeout(forward, action.delayMs)
    else forward()
  })
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    addRule(rule) {
      rules.push({...rule, left: rule.times ?? 1})
    },
    clearRules() {
      rules.length = 0
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

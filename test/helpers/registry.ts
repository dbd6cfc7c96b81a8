/**
 * Real registries for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 and a free
 * port, started by scripts/registry.sh and always stopped by PID — by `stop()` in the test's
 * `after`, and as a safety net by the root hook and at process exit.
 */
import {execFile, execFileSync} from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import {promisify} from 'node:util'

import {RemoteRepository, type RemoteRepositoryOptions} from '../../src/oci/index.js'
import {ROOT} from './cli.js'
import {tmpdir} from './tmp.js'
import {type TokenServer, type TokenServerOptions, startTokenServer} from './token-server.js'

const run = promisify(execFile)
const SCRIPT = path.join(ROOT, 'scripts', 'registry.sh')

export interface RegistryOptions {
  auth?: 'basic' | 'token'
  tls?: boolean
  /** Basic auth account (default testuser / testpass-<random>). */
  username?: string
  password?: string
  /** For `auth: 'token'`: a token server to use (else one is started with `tokenServerOptions`). */
  tokenServer?: TokenServer
  tokenServerOptions?: TokenServerOptions
}

export interface RegistryHandle {
  /** `http(s)://127.0.0.1:PORT` */
  url: string
  /** `127.0.0.1:PORT`, the registry part of references. */
  host: string
  port: number
  pid: number
  /** State directory (config.yml, registry.log, data/). */
  dir: string
  /** TLS: the CA to trust, and a skopeo cert dir holding it as ca.crt. */
  caFile?: string
  certDir?: string
  username?: string
  password?: string
  tokenServer?: TokenServer
  stop(): Promise<void>
}

const running = new Set<number>()

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<RegistryHandle> {
  const dir = tmpdir('aibox-registry-')
  let tokenServer = opts.tokenServer
  const ownsTokenServer = opts.auth === 'token' && !tokenServer
  if (ownsTokenServer) tokenServer = await startTokenServer(opts.tokenServerOptions)
  const username = opts.auth === 'basic' ? (opts.username ?? 'testuser') : undefined
  const password = opts.auth === 'basic' ? (opts.password ?? `testpass-${Math.random().toString(36).slice(2)}`) : undefined
  let lastError: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const args = ['start', '--dir', dir, '--port', String(port)]
    if (opts.auth === 'basic') args.push('--htpasswd', `${username}:${password}`)
    if (opts.auth === 'token') {
      args.push('--token-realm', tokenServer!.realm, '--token-cert', tokenServer!.certFile, '--token-service', tokenServer!.service, '--token-issuer', tokenServer!.issuer)
    }
    if (opts.tls) args.push('--tls')
    try {
      const {stdout} = await run(SCRIPT, args, {timeout: 30_000})
      const pid = Number(stdout.trim().split('\n').pop())
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`registry.sh printed no PID: ${stdout}`)
      running.add(pid)
      const host = `127.0.0.1:${port}`
      return {
        url: `${opts.tls ? 'https' : 'http'}://${host}`,
        host,
        port,
        pid,
        dir,
        caFile: opts.tls ? path.join(dir, 'ca.pem') : undefined,
        certDir: opts.tls ? path.join(dir, 'certs.d') : undefined,
        username,
        password,
        tokenServer,
        async stop() {
          await stopRegistry(pid)
          if (ownsTokenServer) await tokenServer!.close()
        },
      }
    } catch (err) {
      // Most likely the port was taken between freePort() and the bind: try another one.
      lastError = err
    }
  }
  if (ownsTokenServer) await tokenServer!.close()
  throw lastError
}

export async function stopRegistry(pid: number): Promise<void> {
  if (!running.has(pid)) return
  await run(SCRIPT, ['stop', String(pid)], {timeout: 30_000})
  running.delete(pid)
}

/** Kills every registry this process started and did not stop yet (root hook / exit safety net). */
export function stopAllRegistries(): void {
  for (const pid of running) {
    try {
      execFileSync(SCRIPT, ['stop', String(pid)], {timeout: 30_000, stdio: 'ignore'})
    } catch {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    running.delete(pid)
  }
}

process.on('exit', () => {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
})

/**
 * A RemoteRepository factory for one describe block (call it in the block's body): `opts` go over
 * `defaults` (retry merged field by field), and every repository made is closed in an `after` hook.
 */
export function repositoryFactory(defaults: RemoteRepositoryOptions = {}): (ref: string, opts?: RemoteRepositoryOptions) => RemoteRepository {
  const open: RemoteRepository[] = []
  after(async () => {
    for (const r of open.splice(0)) await r.close()
  })
  return (ref, opts = {}) => {
    const retry = defaults.retry || opts.retry ? {retry: {...defaults.retry, ...opts.retry}} : {}
    const r = new RemoteRepository(ref, {...defaults, ...opts, ...retry})
    open.push(r)
    return r
  }
}

/**
 * Where registry credentials come from: explicit `--username`/`--password-stdin`, or docker's
 * `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) with its
 * `credHelpers` (per registry), `credsStore` (default helper) and `auths` entries — the same order
 * docker and oras use. Helpers are the `docker-credential-<name>` programs on PATH, run with
 * `get` and the server URL on stdin.
 *
 * Every secret loaded is registered for redaction (../redact.ts) before anything else sees it.
 */
import {spawn} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {InputError, errorMessage} from '../../errors.js'
import {OciError} from '../errors.js'
import {redact, registerSecret} from '../redact.js'
import {DOCKER_HUB, credentialKey} from '../reference.js'
import {readFdBounded} from '../../util/read.js'

export interface Credential {
  username?: string
  password?: string
  /** An OAuth2 refresh token (docker config `identitytoken`, or a helper answering user `<token>`). */
  identityToken?: string
  /** A bearer token used as is (docker config `registrytoken`). */
  registryToken?: string
}

export interface ResolvedCredential {
  credential: Credential
  /** Where it came from, for messages (never the secret): e.g. `auths in /home/u/.docker/config.json`. */
  source: string
}

/** Looks up the credential for a registry (canonical name, e.g. `docker.io`, `127.0.0.1:5000`). */
export type CredentialProvider = (registry: string) => Promise<ResolvedCredential | undefined>

/** Registers a credential's secrets for redaction and returns it. */
export function protectCredential(c: Credential): Credential {
  registerSecret(c.password, c.username)
  registerSecret(c.identityToken)
  registerSecret(c.registryToken)
  return c
}

/** Fixed credentials (e.g. `--username` + `--password-stdin`), optionally only for one registry. */
export function staticCredentials(credential: Credential, opts: {registry?: string; source?: string} = {}): CredentialProvider {
  protectCredential(credential)
  const source = opts.source ?? (credential.username ? `--username ${credential.username}` : 'explicit credentials')
  return async (registry) => (opts.registry === undefined || opts.registry === registry ? {credential, source} : undefined)
}

/** The first provider that knows the registry wins. */
export function chainCredentials(...providers: Array<CredentialProvider | undefined>): CredentialProvider {
  const list = providers.filter((p): p is CredentialProvider => p !== undefined)
  return async (registry) => {
    for (const p of list) {
      const r = await p(registry)
      if (r) return r
    }
    return undefined
  }
}

export interface DockerAuthEntry {
  auth?: string
  username?: string
  password?: string
  identitytoken?: string
  registrytoken?: string
}

export interface DockerConfig {
  auths?: Record<string, DockerAuthEntry>
  credHelpers?: Record<string, string>
  credsStore?: string
}

export interface DockerCredentialOptions {
  /** config.json path; default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
  configPath?: string
  /** Environment for DOCKER_CONFIG, HOME and the helpers' PATH (default `process.env`). */
  env?: NodeJS.ProcessEnv
  /** Longest a credential helper may take (some unlock a keychain); default 60 s. */
  helperTimeoutMs?: number
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKER_CONFIG) return path.join(env.DOCKER_CONFIG, 'config.json')
  return path.join(env.HOME || os.homedir(), '.docker', 'config.json')
}

const DOCKER_HUB_KEYS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'])

/** docker's key normalisation: `https://host:port/v1/` → `host:port`; Docker Hub aliases → `docker.io`. */
export function normaliseRegistryKey(key: string): string {
  let k = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
  const slash = k.indexOf('/')
  if (slash >= 0) k = k.slice(0, slash)
  k = k.toLowerCase()
  return DOCKER_HUB_KEYS.has(k) ? DOCKER_HUB : k
}

/** Largest docker config.json read (it holds a few credentials; a hostile one could be /dev/zero). */
const MAX_DOCKER_CONFIG_BYTES = 4 * 1024 * 1024

function configError(file: string, problem: string): InputError {
  return new InputError('DOCKER_CONFIG_INVALID', `${file}: ${problem}`, {
    suggestions: ['fix the file (docker login rewrites it), or point DOCKER_CONFIG at another directory'],
  })
}

/** Reads docker's config.json; undefined when it does not exist. Secrets in it are registered for redaction. */
export function loadDockerConfig(file: string): DockerConfig | undefined {
  let text: string
  try {
    const fd = fs.openSync(file, 'r')
    try {
      const data = readFdBounded(fd, MAX_DOCKER_CONFIG_BYTES, fs.fstatSync(fd).size)
      if (!data) throw configError(file, `is larger than ${MAX_DOCKER_CONFIG_BYTES} bytes (docker writes a few kilobytes)`)
      text = data.toString('utf8')
    } finally {
      fs.closeSync(fd)
    }
  } catch (err) {
    if (err instanceof InputError) throw err
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
    throw configError(file, `cannot be read: ${errorMessage(err)}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    // JSON.parse messages quote the text around the error, which may be a secret: say only where.
    const m = /position (\d+)/.exec(errorMessage(err))
    throw configError(file, `is not valid JSON${m ? ` (at character ${m[1]})` : ''}`)
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw configError(file, 'must hold a JSON object')
  const cfg = raw as Record<string, unknown>
  const out: DockerConfig = {}
  if (cfg.auths !== undefined) {
    if (cfg.auths === null || typeof cfg.auths !== 'object' || Array.isArray(cfg.auths)) throw configError(file, '"auths" must be an object')
    out.auths = {}
    for (const [key, entry] of Object.entries(cfg.auths as Record<string, unknown>)) {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw configError(file, `auths["${key}"] must be an object`)
      const e: DockerAuthEntry = {}
      for (const field of ['auth', 'username', 'password', 'identitytoken', 'registrytoken'] as const) {
        const v = (entry as Record<string, unknown>)[field]
        if (v === undefined || v === '') continue
        if (typeof v !== 'string') throw configError(file, `auths["${key}"].${field} must be a string`)
        e[field] = v
        if (field !== 'username') registerSecret(v)
      }
      out.auths[key] = e
    }
  }
  if (cfg.credHelpers !== undefined) {
    if (cfg.credHelpers === null || typeof cfg.credHelpers !== 'object' || Array.isArray(cfg.credHelpers)) {
      throw configError(file, '"credHelpers" must be an object')
    }
    out.credHelpers = {}
    for (const [key, name] of Object.entries(cfg.credHelpers as Record<string, unknown>)) {
      if (typeof name !== 'string') throw configError(file, `credHelpers["${key}"] must be a string`)
      out.credHelpers[key] = name
    }
  }
  if (cfg.credsStore !== undefined && cfg.credsStore !== '') {
    if (typeof cfg.credsStore !== 'string') throw configError(file, '"credsStore" must be a string')
    out.credsStore = cfg.credsStore
  }
  return out
}

function decodeAuthEntry(file: string, key: string, e: DockerAuthEntry): Credential | undefined {
  const c: Credential = {}
  if (e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon <= 0 || !/^[A-Za-z0-9+/=\s]+$/.test(e.auth)) {
      throw configError(file, `auths["${key}"].auth must be base64 of "username:password"`)
    }
    c.username = decoded.slice(0, colon)
    c.password = decoded.slice(colon + 1)
  } else if (e.username !== undefined || e.password !== undefined) {
    c.username = e.username
    c.password = e.password
  }
  if (e.identitytoken) c.identityToken = e.identitytoken
  if (e.registrytoken) c.registryToken = e.registrytoken
  if (!c.password && !c.identityToken && !c.registryToken) return undefined
  return protectCredential(c)
}

const HELPER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

/**
 * Runs `docker-credential-<name> get` with `serverUrl` on stdin. Undefined when the helper says
 * it has no credentials for it; throws UNAUTHORIZED (exit 1) when it cannot run or fails otherwise.
 */
export async function runCredentialHelper(
  name: string,
  serverUrl: string,
  opts: {env?: NodeJS.ProcessEnv; timeoutMs?: number; configFile?: string} = {},
): Promise<Credential | undefined> {
  const program = `docker-credential-${name}`
  const origin = opts.configFile ? ` (configured in ${opts.configFile})` : ''
  if (!HELPER_NAME_RE.test(name)) {
    throw new OciError('UNAUTHORIZED', `invalid credential helper name "${name}"${origin}`, {
      exit: 1,
      suggestions: ['a helper name is the suffix of a docker-credential-<name> program on PATH, e.g. "pass" or "ecr-login"'],
    })
  }
  const env = opts.env ?? process.env
  const timeoutMs = opts.timeoutMs ?? 60_000
  const {code, stdout, stderr, spawnError, timedOut} = await new Promise<{
    code: number | null
    stdout: string
    stderr: string
    spawnError?: NodeJS.ErrnoException
    timedOut: boolean
  }>((resolve) => {
    // Own process group, so a timeout kills whatever the helper started too (pipes close, no hang).
    const child = spawn(program, ['get'], {env, stdio: ['pipe', 'pipe', 'pipe'], detached: true})
    const out: Buffer[] = []
    const err: Buffer[] = []
    let size = 0
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL')
      } catch {
        child.kill('SIGKILL')
      }
    }, timeoutMs)
    child.stdout.on('data', (b: Buffer) => {
      size += b.length
      if (size <= 1024 * 1024) out.push(b)
    })
    child.stderr.on('data', (b: Buffer) => {
      if (err.length < 64) err.push(b)
    })
    child.stdin.on('error', () => {})
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve({code: null, stdout: '', stderr: '', spawnError: e, timedOut: false})
    })
    child.on('close', (c) => {
      clearTimeout(timer)
      resolve({code: c, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut})
    })
    child.stdin.end(serverUrl)
  })
  if (spawnError) {
    const missing = spawnError.code === 'ENOENT'
    throw new OciError(
      'UNAUTHORIZED',
      missing ? `credential helper ${program} is not on PATH${origin}` : `cannot run credential helper ${program}${origin}: ${spawnError.message}`,
      {
        exit: 1,
        cause: spawnError,
        suggestions: missing
          ? [`install ${program}, or remove it from the docker config`, 'or pass --username and --password-stdin']
          : ['check that the helper is executable'],
      },
    )
  }
  if (timedOut) {
    throw new OciError('UNAUTHORIZED', `credential helper ${program} did not answer within ${timeoutMs / 1000} s${origin}`, {
      exit: 1,
      suggestions: ['unlock the keychain the helper uses, or pass --username and --password-stdin'],
    })
  }
  if (code !== 0) {
    const said = `${stdout}\n${stderr}`.trim()
    if (/credentials not found|not found in native keychain|no credentials/i.test(said)) return undefined
    throw new OciError('UNAUTHORIZED', redact(`credential helper ${program} failed (exit ${code})${origin}: ${said.slice(0, 500)}`), {
      exit: 1,
      suggestions: [`run "echo ${serverUrl} | ${program} get" to see the helper's own error`],
    })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(stdout)
  } catch {
    throw new OciError('UNAUTHORIZED', `credential helper ${program} printed something that is not JSON${origin}`, {
      exit: 1,
      suggestions: [`run "echo ${serverUrl} | ${program} get" and check its output`],
    })
  }
  const p = parsed as {Username?: unknown; Secret?: unknown}
  if (typeof p.Secret !== 'string' || p.Secret === '') return undefined
  const username = typeof p.Username === 'string' ? p.Username : undefined
  // docker-credential-helpers convention: user "<token>" means Secret is an identity (refresh) token.
  if (username === '<token>') return protectCredential({identityToken: p.Secret})
  return protectCredential({username, password: p.Secret})
}

/**
 * Credentials from docker's config.json: `credHelpers[registry]`, else `credsStore`, else
 * `auths[registry]` (a `credsStore` that does not know the registry falls back to `auths`).
 */
export function dockerCredentials(opts: DockerCredentialOptions = {}): CredentialProvider {
  return async (registry) => {
    const env = opts.env ?? process.env
    const file = opts.configPath ?? dockerConfigPath(env)
    const cfg = loadDockerConfig(file)
    if (!cfg) return undefined
    const want = normaliseRegistryKey(registry)
    const serverUrl = credentialKey(want)
    const helperOpts = {env, timeoutMs: opts.helperTimeoutMs, configFile: file}
    for (const [key, name] of Object.entries(cfg.credHelpers ?? {})) {
      if (normaliseRegistryKey(key) !== want) continue
      const c = await runCredentialHelper(name, serverUrl, helperOpts)
      return c ? {credential: c, source: `credential helper docker-credential-${name} (credHelpers in ${file})`} : undefined
    }
    if (cfg.credsStore) {
      const c = await runCredentialHelper(cfg.credsStore, serverUrl, helperOpts)
      if (c) return {credential: c, source: `credential helper docker-credential-${cfg.credsStore} (credsStore in ${file})`}
    }
    // An exact key first, then any key that normalises to the registry (e.g. "https://host/v1/").
    const auths = cfg.auths ?? {}
    const keys = Object.keys(auths).sort((a, b) => Number(b === registry) - Number(a === registry))
    for (const key of keys) {
      if (normaliseRegistryKey(key) !== want) continue
      const c = decodeAuthEntry(file, key, auths[key]!)
      if (c) return {credential: c, source: `auths["${key}"] in ${file}`}
    }
    return undefined
  }
}

/**
 * aibox.yaml: where it is found, and what it resolves to (issue 5, README "Starting a sandbox").
 *
 * Discovery, first match wins: `--config FILE`, `AIBOX_CONFIG`, `./aibox.yaml`, then the user
 * default `$XDG_CONFIG_HOME/aibox/aibox.yaml` (`~/.config/aibox/aibox.yaml`). Relative paths in
 * the file (a project policy file, `oci:` layouts, trust, keys, cache, audit) are resolved against
 * the file's directory, `~/` against the home directory. `AIBOX_CACHE` and `AIBOX_AUDIT_LOG`
 * override the file.
 *
 * This module is on the hot path of `aibox start`: parsing YAML and compiling the schema cost
 * more than node's own start-up (toolchain.md §A), so a validated configuration is memoised in the
 * default cache directory by the sha256 of the file's bytes (`config-memo.json`); an edited file
 * has another digest and is parsed and validated again (load.ts). The memo holds only documents
 * that validated; resolving paths and environment overrides is redone on every run.
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {InputError, NotFoundError} from '../errors.js'
import {formatReference, parseReference} from '../oci/reference.js'
import {writeFileAtomicSync} from '../util/atomic.js'
import {type PathEnv, defaultAuditLogPath, defaultCacheDir, defaultUserConfigDir, expandHome} from './paths.js'

export const CONFIG_FILE_NAME = 'aibox.yaml'
export const DEFAULT_MAX_STALENESS = '7d'
export const DEFAULT_REGISTRY_TIMEOUT = '10s'
const MAX_CONFIG_BYTES = 1024 * 1024
const MEMO_FILE = 'config-memo.json'
const MEMO_VERSION = 1
const MAX_MEMO_ENTRIES = 32

export type ConfigTier = 'org' | 'team' | 'project'
export type RawTierSource = string | {ref: string; trustRef?: string}

/** aibox.yaml as validated (schemas/aibox-config.schema.json). */
export interface RawStartConfig {
  apiVersion?: string
  kind?: string
  policy: {org: RawTierSource; team?: RawTierSource; project?: RawTierSource}
  trust?: string
  keys?: string[]
  cache?: string
  maxStaleness?: string
  /** README "Tenants". */
  tenant?: string
  airgap?: boolean
  audit?: string
  registry?: {plainHttp?: boolean; insecure?: boolean; caFile?: string | string[]; timeout?: string}
  /** The org profile to load (README "Profiles"); AIBOX_PROFILE overrides it for one run. */
  profile?: string
  /** The change ticket of the last `aibox profile set`. */
  profileTicket?: string
}

export type TierSource =
  | {
      kind: 'reference'
      tier: ConfigTier
      /** Canonical reference (an `oci:` layout with an absolute path): the cache key. */
      ref: string
      /** As written in the file. */
      written: string
      /** The registry reference it is published under, for trust scopes (`trustRef`). */
      trustRef?: string
    }
  | {kind: 'file'; tier: 'project'; path: string; written: string}

export interface StartConfig {
  /** The configuration file (absolute), and how it was found. */
  file: string
  foundBy: 'flag' | 'env' | 'cwd' | 'user'
  dir: string
  tiers: TierSource[]
  trust?: string
  keys?: string[]
  /** The file's `tenant:` (AIBOX_TENANT and `--tenant` override it: src/tenant resolveTenant); README "Tenants". */
  tenant?: string
  /** The cache root; with a tenant, `aibox start` uses `<cache>/tenants/<tenant>/` (src/tenant). */
  cache: string
  maxStaleness: string
  maxStalenessMs: number
  airgap: boolean
  audit: string
  registry: {plainHttp?: boolean; insecure?: boolean; caFile?: string[]; timeout: string; timeoutMs: number}
  /** aibox.yaml `profile:` (AIBOX_PROFILE is applied by aibox start, not here). */
  profile?: string
  profileTicket?: string
}

const UNIT_MS: Record<string, number> = {ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000}

/** Parses `7d`, `36h`, `1h30m`, `90s`, `250ms` (Go durations plus d and w) to milliseconds; undefined when invalid. */
export function parseDurationMs(s: string): number | undefined {
  const re = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h|d|w)/y
  let total = 0
  let pos = 0
  while (pos < s.length) {
    re.lastIndex = pos
    const m = re.exec(s)
    if (!m) return undefined
    total += Number(m[1]) * UNIT_MS[m[2]!]!
    pos = re.lastIndex
  }
  return pos === 0 ? undefined : total
}

/** `3d 4h`, `5m`, `12s`: an age for humans. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m`
  const h = Math.floor(m / 60)
  if (h < 48) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`
  const d = Math.floor(h / 24)
  return h % 24 ? `${d}d ${h % 24}h` : `${d}d`
}

/** Whether a tier value names a file (by extension or path prefix) rather than a reference. */
export function classifyTierSource(v: string): 'file' | 'reference' {
  if (v.startsWith('oci:') || v.startsWith('oci-archive:')) return 'reference'
  if (/\.(ya?ml|json)$/i.test(v) || v.startsWith('./') || v.startsWith('../') || v.startsWith('/') || v === '~' || v.startsWith('~/')) return 'file'
  return 'reference'
}

export interface FindConfigOptions {
  /** `--config FILE`. */
  file?: string
  env?: PathEnv
  cwd?: string
}

/** The configuration file to use and how it was found; NotFoundError CONFIG_NOT_FOUND naming every place looked at. */
export function findConfig(options: FindConfigOptions = {}): {file: string; foundBy: StartConfig['foundBy']} {
  const env = options.env ?? process.env
  const cwd = options.cwd ?? process.cwd()
  if (options.file !== undefined) {
    const file = expandHome(options.file, env, cwd)
    if (!fs.existsSync(file)) throw new NotFoundError('CONFIG_NOT_FOUND', `--config ${options.file}: no such file (${file})`, {suggestions: ['check the path, or drop --config to use ./aibox.yaml']})
    return {file, foundBy: 'flag'}
  }
  if (env.AIBOX_CONFIG) {
    const file = expandHome(env.AIBOX_CONFIG, env, cwd)
    if (!fs.existsSync(file)) throw new NotFoundError('CONFIG_NOT_FOUND', `AIBOX_CONFIG=${env.AIBOX_CONFIG}: no such file (${file})`, {suggestions: ['fix or unset AIBOX_CONFIG']})
    return {file, foundBy: 'env'}
  }
  const local = path.join(cwd, CONFIG_FILE_NAME)
  if (fs.existsSync(local)) return {file: local, foundBy: 'cwd'}
  let user: string | undefined
  try {
    user = path.join(defaultUserConfigDir(env), CONFIG_FILE_NAME)
  } catch {
    user = undefined
  }
  if (user && fs.existsSync(user)) return {file: user, foundBy: 'user'}
  throw new NotFoundError('CONFIG_NOT_FOUND', `no aibox configuration: looked for --config, AIBOX_CONFIG, ${local}${user ? ` and ${user}` : ''}`, {
    suggestions: [
      'create aibox.yaml in the project (README "Starting a sandbox: aibox start" has an example):\n  policy:\n    org: registry.example.com/policies/org:stable\n  trust: trust.yaml',
      'or pass --config FILE',
    ],
  })
}

/** Resolves a validated configuration: paths against the file's directory, `~`, and the environment overrides. */
export function resolveConfig(raw: RawStartConfig, file: string, foundBy: StartConfig['foundBy'], env: PathEnv = process.env): StartConfig {
  const dir = path.dirname(file)
  const abs = (p: string) => expandHome(p, env, dir)
  const tiers: TierSource[] = []
  for (const tier of ['org', 'team', 'project'] as const) {
    const v = raw.policy[tier]
    if (v === undefined) continue
    const written = typeof v === 'string' ? v : v.ref
    if (classifyTierSource(written) === 'file') {
      tiers.push({kind: 'file', tier: 'project', path: abs(written), written})
      continue
    }
    const parsed = parseReference(written)
    // The cache key (cache/cache.ts cacheKey): layouts absolute, `~` expanded, against this file's directory.
    const ref = parsed.kind === 'layout' ? formatReference({...parsed, path: abs(parsed.path)}) : formatReference(parsed)
    tiers.push({kind: 'reference', tier, ref, written, ...(typeof v !== 'string' && v.trustRef ? {trustRef: v.trustRef} : {})})
  }
  const maxStaleness = raw.maxStaleness ?? DEFAULT_MAX_STALENESS
  const timeout = raw.registry?.timeout ?? DEFAULT_REGISTRY_TIMEOUT
  const ca = raw.registry?.caFile
  return {
    file,
    foundBy,
    dir,
    tiers,
    ...(raw.trust !== undefined ? {trust: abs(raw.trust)} : {}),
    ...(raw.keys !== undefined ? {keys: raw.keys.map(abs)} : {}),
    ...(raw.tenant !== undefined ? {tenant: raw.tenant} : {}),
    cache: env.AIBOX_CACHE ? defaultCacheDir(env) : raw.cache !== undefined ? abs(raw.cache) : defaultCacheDir(env),
    maxStaleness,
    maxStalenessMs: parseDurationMs(maxStaleness)!,
    airgap: raw.airgap ?? false,
    audit: env.AIBOX_AUDIT_LOG ? defaultAuditLogPath(env) : raw.audit !== undefined ? abs(raw.audit) : defaultAuditLogPath(env),
    registry: {
      ...(raw.registry?.plainHttp !== undefined ? {plainHttp: raw.registry.plainHttp} : {}),
      ...(raw.registry?.insecure ? {insecure: true} : {}),
      ...(ca !== undefined ? {caFile: (Array.isArray(ca) ? ca : [ca]).map(abs)} : {}),
      timeout,
      timeoutMs: parseDurationMs(timeout)!,
    },
    ...(raw.profile !== undefined ? {profile: raw.profile} : {}),
    ...(raw.profileTicket !== undefined ? {profileTicket: raw.profileTicket} : {}),
  }
}

function readConfigBytes(file: string): Buffer {
  try {
    const st = fs.statSync(file)
    if (st.isDirectory()) throw new InputError('CONFIG_IS_DIRECTORY', `${file} is a directory, not an aibox configuration file`)
    if (st.size > MAX_CONFIG_BYTES) throw new InputError('CONFIG_TOO_LARGE', `${file} is ${st.size} bytes, over the ${MAX_CONFIG_BYTES}-byte limit for a configuration`)
    return fs.readFileSync(file)
  } catch (err) {
    if (err instanceof InputError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new NotFoundError('CONFIG_NOT_FOUND', `${file}: no such file`)
    throw new InputError('CONFIG_UNREADABLE', `${file}: cannot read: ${(err as Error).message}`, {cause: err})
  }
}

interface Memo {
  version: number
  entries: Record<string, {sha256: string; raw: RawStartConfig; usedAt: number}>
}

function memoPath(env: PathEnv): string | undefined {
  try {
    return path.join(defaultCacheDir(env), MEMO_FILE)
  } catch {
    return undefined
  }
}

function readMemo(file: string | undefined): Memo {
  if (!file) return {version: MEMO_VERSION, entries: {}}
  try {
    const m = JSON.parse(fs.readFileSync(file, 'utf8')) as Memo
    if (m && m.version === MEMO_VERSION && typeof m.entries === 'object' && m.entries !== null) return m
  } catch {
    // missing or unreadable: parse the configuration instead
  }
  return {version: MEMO_VERSION, entries: {}}
}

/** Best effort: a memo that cannot be written only costs the next run a parse. */
function writeMemo(file: string | undefined, memo: Memo): void {
  if (!file) return
  const keys = Object.keys(memo.entries).sort((a, b) => memo.entries[b]!.usedAt - memo.entries[a]!.usedAt)
  for (const k of keys.slice(MAX_MEMO_ENTRIES)) delete memo.entries[k]
  try {
    writeFileAtomicSync(file, JSON.stringify(memo), {mkdirs: true, mode: 0o644})
  } catch {
    // ignored on purpose (read-only cache directory, disk full): correctness does not depend on it
  }
}

export interface LoadConfigOptions extends FindConfigOptions {
  /** Skip the memo (always parse and validate). */
  noMemo?: boolean
}

/** Finds, reads, validates (memoised by digest) and resolves the configuration. */
export async function loadStartConfig(options: LoadConfigOptions = {}): Promise<StartConfig> {
  const env = options.env ?? process.env
  const {file, foundBy} = findConfig(options)
  const bytes = readConfigBytes(file)
  const digest = createHash('sha256').update(bytes).digest('hex')
  const mfile = options.noMemo ? undefined : memoPath(env)
  const memo = readMemo(mfile)
  const hit = memo.entries[file]
  let raw: RawStartConfig
  if (hit && hit.sha256 === digest) {
    raw = hit.raw
  } else {
    const {parseConfigText} = await import('./load.js')
    raw = parseConfigText(bytes, file)
    memo.entries[file] = {sha256: digest, raw, usedAt: Date.now()}
    writeMemo(mfile, memo)
  }
  return resolveConfig(raw, file, foundBy, env)
}

/**
 * The verified-policy cache directory (architecture.md `cache/`):
 *
 *   <cache>/oci/            OCI image layout: verified policy artifacts and their verified referrers
 *   <cache>/state.json      what is verified, per reference (state.ts)
 *   <cache>/state.json.lock the cache lock (util/lock.ts): every change to state.json is made under it
 *   <cache>/effective/      effective policies handed to sandboxes, `<hex>.json`, read-only
 *   <cache>/config-memo.json parsed configurations by file digest (config/memo.ts)
 *
 * Nothing unverified is ever written here: artifacts are copied in only after they verified at
 * their source, and every blob is content-addressed and re-hashed when used, so a corrupted file is
 * detected (and refetched) instead of loaded. This module stays light (node built-ins): `aibox
 * start`'s warm path uses it without loading the OCI stores.
 */
import fs from 'node:fs'
import path from 'node:path'

import {InputError} from '../errors.js'
import {formatReference, parseReference} from '../oci/reference.js'
import {writeFileAtomicSync} from '../util/atomic.js'
import {fsError, isErrno} from '../util/fs-errors.js'
import {type LockOptions, withLock} from '../util/lock.js'
import {type CacheEntry, type CacheState, EFFECTIVE_DIR, LAYOUT_DIR, STATE_FILE, readStateFile, sha256Hex, writeStateFile} from './state.js'

export interface OpenCacheOptions {
  /** Create the directory when missing (default true). */
  create?: boolean
  /** How long to wait for another process holding the cache lock (default 60 s, then TransientError LOCK_TIMEOUT, exit 4). */
  lockTimeoutMs?: number
}

export class PolicyCache {
  readonly layoutDir: string
  readonly effectiveDir: string
  readonly statePath: string

  constructor(
    /** The cache directory (absolute). */
    readonly dir: string,
    private readonly options: OpenCacheOptions = {},
  ) {
    this.layoutDir = path.join(dir, LAYOUT_DIR)
    this.effectiveDir = path.join(dir, EFFECTIVE_DIR)
    this.statePath = path.join(dir, STATE_FILE)
  }

  /** Reads state.json without the lock (it is only ever replaced by rename). Unusable parts are reported in `problems` and ignored. */
  readState(problems: string[] = []): CacheState {
    return readStateFile(this.dir, problems)
  }

  /**
   * Runs `fn` on the current state under the cache lock and writes the state back when `fn`
   * returns true-ish `changed` (default: always). The lock also serialises cache fills, so that
   * concurrent starts do not fetch the same artifact many times.
   */
  async update<T>(fn: (state: CacheState, problems: string[]) => Promise<{result: T; changed: boolean}> | {result: T; changed: boolean}, lock: LockOptions = {}): Promise<T> {
    this.ensureDir()
    return withLock(
      this.statePath,
      async () => {
        const problems: string[] = []
        const state = this.readState(problems)
        const {result, changed} = await fn(state, problems)
        if (changed || problems.length > 0) writeStateFile(this.dir, state)
        return result
      },
      {purpose: 'policy cache', timeoutMs: this.options.lockTimeoutMs, ...lock},
    )
  }

  /** Path of a blob in the cache layout. */
  blobPath(digest: string): string {
    return path.join(this.layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length))
  }

  /** Reads a blob and checks its digest (and size when given); undefined when missing or corrupt. */
  readBlob(digest: string, size?: number): Buffer | undefined {
    let bytes: Buffer
    try {
      bytes = fs.readFileSync(this.blobPath(digest))
    } catch {
      return undefined
    }
    if (size !== undefined && bytes.length !== size) return undefined
    return `sha256:${sha256Hex(bytes)}` === digest ? bytes : undefined
  }

  /**
   * Re-hashes an entry's manifest and blobs in the layout: undefined when intact, else what is
   * missing or corrupt (the entry must then be refetched, never used).
   */
  entryProblem(entry: CacheEntry): string | undefined {
    for (const b of [{digest: entry.digest, size: entry.size}, ...entry.blobs]) {
      if (!fs.existsSync(this.blobPath(b.digest))) return `blob ${b.digest} is missing from ${this.layoutDir}`
      if (!this.readBlob(b.digest, b.size)) return `blob ${b.digest} in ${this.layoutDir} does not match its digest (corrupted or edited)`
    }
    return undefined
  }

  /** Where the effective policy with this digest is kept. */
  effectivePath(digest: string): string {
    return path.join(this.effectiveDir, `${digest.slice('sha256:'.length)}.json`)
  }

  /** The effective policy's canonical bytes, checked against its digest; undefined when missing or corrupt. */
  readEffective(digest: string): Buffer | undefined {
    let bytes: Buffer
    try {
      bytes = fs.readFileSync(this.effectivePath(digest))
    } catch {
      return undefined
    }
    return `sha256:${sha256Hex(bytes)}` === digest ? bytes : undefined
  }

  /**
   * Stores an effective policy (canonical JSON) under its digest, read-only, atomically. An
   * existing intact file is kept; a corrupt one is replaced. Returns its path.
   */
  putEffective(canonical: string | Uint8Array, digest: string): string {
    const bytes = typeof canonical === 'string' ? Buffer.from(canonical, 'utf8') : Buffer.from(canonical)
    if (`sha256:${sha256Hex(bytes)}` !== digest) throw new InputError('EFFECTIVE_DIGEST_MISMATCH', `effective policy bytes do not match ${digest}`)
    const file = this.effectivePath(digest)
    if (this.readEffective(digest)) return file
    try {
      fs.mkdirSync(this.effectiveDir, {recursive: true})
      // A corrupt file left by someone else is read-only: remove it first (the directory is ours).
      if (fs.existsSync(file)) fs.rmSync(file, {force: true})
      writeFileAtomicSync(file, bytes, {mode: 0o444})
    } catch (err) {
      // Another start wrote the same content-addressed file at the same moment: fine if intact.
      if (this.readEffective(digest)) return file
      throw fsError(err, 'write', file)
    }
    return file
  }

  /** Creates the cache directory when missing (unless `create: false`). */
  ensureDir(): void {
    try {
      fs.mkdirSync(this.dir, {recursive: true})
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw fsError(err, 'create cache directory', this.dir)
    }
  }
}

/**
 * The cache key of a policy reference: its canonical form, an `oci:` layout with an absolute path
 * (relative paths resolved against `baseDir`, default the working directory). `aibox start` looks
 * entries up by the key of the reference its aibox.yaml names (relative layouts against the
 * file's directory), so an import must record under the same key.
 */
export function cacheKey(reference: string, baseDir = process.cwd()): string {
  const r = parseReference(reference)
  return r.kind === 'layout' ? formatReference({...r, path: path.resolve(baseDir, r.path)}) : formatReference(r)
}

/**
 * Opens (creating when missing, unless `create: false`) the verified-policy cache at `dir`.
 * The OCI layout inside is created on the first fill.
 */
export async function openCache(dir: string, options: OpenCacheOptions = {}): Promise<PolicyCache> {
  const abs = path.resolve(dir)
  const st = fs.statSync(abs, {throwIfNoEntry: false})
  if (st && !st.isDirectory()) throw new InputError('CACHE_NOT_A_DIRECTORY', `the policy cache ${abs} exists and is not a directory`, {suggestions: ['point cache: (or AIBOX_CACHE) at a directory']})
  const cache = new PolicyCache(abs, options)
  if (!st) {
    if (options.create === false) throw new InputError('CACHE_MISSING', `there is no policy cache at ${abs}`, {suggestions: ['run aibox start with the registry reachable, or aibox import --cache, to fill it']})
    cache.ensureDir()
  }
  return cache
}

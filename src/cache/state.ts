/**
 * The verified-policy cache's bookkeeping: `state.json` beside the content-addressed OCI layout
 * (architecture.md `cache/`). It says, per policy reference, which manifest digest was last
 * verified, what it contained (name, version, tier, content digest, blobs), who signed it, when it
 * was verified and when its source last vouched for it (staleness), and where it came from
 * (registry or a sealed import). It also memoises effective policies per stack and remembers, per
 * configured stack ("profile"), the last effective policy loaded (policy lock) and an active
 * override taint (seed 000).
 *
 * This module is on the hot path of `aibox start`: node built-ins only, no schema library. The
 * state is read without the lock (it is only ever replaced by rename, so a reader sees the old or
 * the new file) and every change is made under `<cache>/state.json.lock` (read, modify, write to a
 * temp file, fsync, rename, fsync the directory).
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {errorMessage} from '../errors.js'
import {writeFileAtomicSync} from '../util/atomic.js'
import {fsError} from '../util/fs-errors.js'

export const CACHE_STATE_VERSION = 1
export const STATE_FILE = 'state.json'
/** The OCI layout holding every verified artifact and its verified referrers. */
export const LAYOUT_DIR = 'oci'
/** Effective policies handed to sandboxes, by digest (`<hex>.json`, read-only). */
export const EFFECTIVE_DIR = 'effective'
/** At most this many stack memos are kept (least recently used dropped first). */
export const MAX_STACK_MEMOS = 64

export type CacheTier = 'org' | 'team' | 'project'
export type CacheOrigin = 'registry' | 'import'

/** A blob of a cached artifact, re-hashed whenever the cache is used (corruption is refetched). */
export interface CachedBlob {
  digest: string
  size: number
}

/** What a cached entry was verified against (trust policy or keys), so a change re-verifies it. */
export interface TrustStamp {
  /** `trust`: a trust policy file (and the key files it names); `keys`: `--key` files. */
  kind: 'trust' | 'keys'
  /** The files, absolute, with the sha256 of their bytes at verification time. */
  files: Array<{path: string; sha256: string}>
  /** sha256 over `kind` and `files`. */
  fingerprint: string
  /** RFC 3339: a key of the set expires or is revoked at this time: re-verify after it. */
  revalidateAfter?: string
}

/** One verified policy artifact, by the reference it is published under. */
export interface CacheEntry {
  /** The cache key: the reference as configured (canonical form), e.g. `registry.example.com/policies/org:stable`. */
  reference: string
  tier: CacheTier
  /** The policy manifest. */
  digest: string
  mediaType: string
  size: number
  /** The policy's content digest (= its canonical layer's digest). */
  contentDigest: string
  /** Blobs to re-hash when the entry is used: the canonical layer (and source layer). */
  blobs: CachedBlob[]
  name: string
  version: string
  origin: CacheOrigin
  /** RFC 3339: when its signatures were verified. */
  verifiedAt: string
  /** RFC 3339: when its source (the registry, or the sealed export) last said the reference points at `digest`. */
  checkedAt: string
  /** Key ids of the signatures that verified. */
  signers: string[]
  /** The signed metadata.tenant (README "Tenants"): `aibox start` never uses an entry of another tenant. */
  tenant?: string
  /** Absent for an import recorded without one: re-verified against the trust of the first start that uses it. */
  trust?: TrustStamp
  /** The seal of the sealed import it came from. */
  sealDigest?: string
  /** Set when this version replaced a newer one with a signed incident approval. */
  rollback?: {from: string; incident: string; approvals: string[]}
}

/** One tier of a loaded stack, as remembered (for the memo and for an override that falls back to it). */
export interface StackTier {
  tier: CacheTier
  ref: string
  name: string | null
  version: string | null
  /** Manifest digest; for a project file, its content digest. */
  digest: string
  contentDigest: string
  signers: string[]
}

/** A memoised effective policy of one stack of cached tiers. */
export interface StackMemo {
  effective: string
  tiers: StackTier[]
  /** The org profile this effective policy was built with (README "Profiles"), and the org's catalog, weakest first. */
  profile?: string
  profiles?: string[]
  /** RFC 3339, for least-recently-used pruning. */
  usedAt: string
}

/** An operator override in force: runs are tainted (`policy_override`) until it is reverted. */
export interface Taint {
  taint: 'policy_override'
  /** What was overridden: a verification failure (the cache was used), or the policy lock (a weaker policy was loaded). */
  override: 'verification' | 'lock' | 'profile'
  reason: string
  actor: string
  since: string
  /** The effective policy that was loaded under the override. */
  effective: string
  /** For a lock override: the stronger effective policy loaded before it; the taint lifts when a policy at least as strict is loaded. */
  baseline?: string
  /** For a profile override: the profile loaded before the weaker one; the taint lifts when one at least as strict is loaded. */
  baselineProfile?: string
  /** A profile taint in force under this (verification or lock) one: restored when this one lifts. */
  previous?: Taint
}

/** A profile change recorded by `aibox profile set` (README "Profiles"); the next start that loads `to` after `from` consumes it. */
export interface ProfileChange {
  from: string | null
  to: string
  ticket: string
  reason: string
  actor: string
  at: string
  weaker: boolean
  /** Who approved a change to a weaker profile (trust-policy key names) and the approval files' sha256 digests. */
  approvers: string[]
  approvals: string[]
}

/** What one configured stack (its tier references) loaded last. */
export interface ProfileState {
  refs: {org?: string; team?: string; project?: string}
  last?: {effective: string; version: string; loadedAt: string; source: string; tiers: StackTier[]}
  taint?: Taint
  /** The org profile loaded last, and its position in the catalog then (0 = weakest). */
  profile?: {name: string; rank: number; loadedAt: string}
  /** A change recorded by `aibox profile set`, not loaded yet. */
  change?: ProfileChange
}

export interface CacheState {
  version: typeof CACHE_STATE_VERSION
  entries: Record<string, CacheEntry>
  stacks: Record<string, StackMemo>
  profiles: Record<string, ProfileState>
}

export function emptyState(): CacheState {
  return {version: CACHE_STATE_VERSION, entries: {}, stacks: {}, profiles: {}}
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex')
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isStr = (v: unknown): v is string => typeof v === 'string'
const isDigest = (v: unknown): v is string => typeof v === 'string' && DIGEST_RE.test(v)
const isTime = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v))
const TIERS = new Set(['org', 'team', 'project'])

/** Why an entry read from state.json is unusable, or undefined when it is well formed. */
export function entryProblem(e: unknown): string | undefined {
  if (!isObj(e)) return 'not an object'
  if (!isStr(e.reference) || e.reference === '') return 'reference missing'
  if (!TIERS.has(e.tier as string)) return 'tier invalid'
  if (!isDigest(e.digest) || !isDigest(e.contentDigest)) return 'digest invalid'
  if (!isStr(e.mediaType) || !Number.isSafeInteger(e.size)) return 'descriptor invalid'
  if (!Array.isArray(e.blobs) || !e.blobs.every((b) => isObj(b) && isDigest(b.digest) && Number.isSafeInteger(b.size))) return 'blobs invalid'
  if (!isStr(e.name) || !isStr(e.version)) return 'name or version missing'
  if (e.origin !== 'registry' && e.origin !== 'import') return 'origin invalid'
  if (!isTime(e.verifiedAt) || !isTime(e.checkedAt)) return 'times invalid'
  if (!Array.isArray(e.signers) || !e.signers.every(isStr)) return 'signers invalid'
  if (e.trust !== undefined) {
    const t = e.trust
    if (!isObj(t) || (t.kind !== 'trust' && t.kind !== 'keys') || !isStr(t.fingerprint) || !Array.isArray(t.files)) return 'trust stamp invalid'
    if (!t.files.every((f) => isObj(f) && isStr(f.path) && isStr(f.sha256))) return 'trust stamp invalid'
    if (t.revalidateAfter !== undefined && !isTime(t.revalidateAfter)) return 'trust stamp invalid'
  }
  if (e.sealDigest !== undefined && !isDigest(e.sealDigest)) return 'seal digest invalid'
  return undefined
}

/**
 * Parses state.json. A file that is not a state of this version is reported through `problems`
 * and read as empty (the cache is then refilled from the source); malformed entries are dropped
 * one by one, so one bad entry does not cost the others.
 */
export function parseState(text: string, problems: string[] = []): CacheState {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    problems.push(`state.json is not JSON (${errorMessage(err)})`)
    return emptyState()
  }
  if (!isObj(raw) || raw.version !== CACHE_STATE_VERSION) {
    problems.push(`state.json is not a version ${CACHE_STATE_VERSION} cache state`)
    return emptyState()
  }
  const state = emptyState()
  for (const [k, e] of Object.entries(isObj(raw.entries) ? raw.entries : {})) {
    const p = entryProblem(e)
    if (p) problems.push(`entry ${k}: ${p}`)
    else state.entries[k] = e as unknown as CacheEntry
  }
  for (const [k, s] of Object.entries(isObj(raw.stacks) ? raw.stacks : {})) {
    if (isObj(s) && isDigest(s.effective) && Array.isArray(s.tiers) && isTime(s.usedAt)) state.stacks[k] = s as unknown as StackMemo
  }
  for (const [k, p] of Object.entries(isObj(raw.profiles) ? raw.profiles : {})) {
    if (!isObj(p) || !isObj(p.refs)) continue
    const profile: ProfileState = {refs: p.refs as ProfileState['refs']}
    if (isObj(p.last) && isDigest(p.last.effective) && isTime(p.last.loadedAt) && Array.isArray(p.last.tiers)) profile.last = p.last as unknown as ProfileState['last']
    if (isObj(p.taint) && isDigest(p.taint.effective) && isStr(p.taint.reason)) {
      profile.taint = p.taint as unknown as Taint
      const prev = p.taint.previous
      if (prev !== undefined && !(isObj(prev) && prev.override === 'profile' && isDigest(prev.effective) && isStr(prev.reason))) delete profile.taint.previous
    }
    if (isObj(p.profile) && isStr(p.profile.name) && Number.isSafeInteger(p.profile.rank) && isTime(p.profile.loadedAt)) profile.profile = p.profile as unknown as ProfileState['profile']
    const c = p.change
    if (isObj(c) && isStr(c.to) && (c.from === null || isStr(c.from)) && isStr(c.ticket) && isStr(c.reason) && isStr(c.actor) && isTime(c.at) && typeof c.weaker === 'boolean' && Array.isArray(c.approvers) && Array.isArray(c.approvals)) {
      profile.change = c as unknown as ProfileChange
    }
    state.profiles[k] = profile
  }
  return state
}

/** Reads `<dir>/state.json` (missing = empty). I/O errors other than "missing" are thrown. */
export function readStateFile(dir: string, problems: string[] = []): CacheState {
  const file = path.join(dir, STATE_FILE)
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState()
    throw fsError(err, 'read', file)
  }
  return parseState(text, problems)
}

/** Keeps the `MAX_STACK_MEMOS` most recently used stack memos. */
export function pruneStacks(state: CacheState): void {
  const keys = Object.keys(state.stacks)
  if (keys.length <= MAX_STACK_MEMOS) return
  keys.sort((a, b) => Date.parse(state.stacks[b]!.usedAt) - Date.parse(state.stacks[a]!.usedAt))
  for (const k of keys.slice(MAX_STACK_MEMOS)) delete state.stacks[k]
}

/** Writes state.json atomically (temp + fsync + rename + directory fsync). Call it under the cache lock. */
export function writeStateFile(dir: string, state: CacheState): void {
  pruneStacks(state)
  writeFileAtomicSync(path.join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, {mode: 0o644})
}

/** The key of a stack memo: the tier digests (and the project file's bytes digest), in order. */
export function stackKey(parts: Array<{tier: CacheTier; digest: string}>): string {
  return `sha256:${sha256Hex(JSON.stringify(parts.map((p) => [p.tier, p.digest])))}`
}

/** The key of a profile: the configured references of its tiers. */
export function profileKey(refs: ProfileState['refs']): string {
  return `sha256:${sha256Hex(JSON.stringify([refs.org ?? null, refs.team ?? null, refs.project ?? null]))}`
}

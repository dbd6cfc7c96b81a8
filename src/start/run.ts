/**
 * `aibox start`: resolve → fetch if changed → verify → tighten-check the tiers → cache → log
 * (architecture.md `start/`, issue 5), and the rollback, lock and override rules (issue 7, seeds
 * 000, 002, 004).
 *
 * 1. Observe: one freshness request per tier (probe.ts); none for a digest-pinned reference, for
 *    `--offline` or in air-gapped mode; a project file is read.
 * 2. Decide per tier: the cached verified entry when the source points at the digest it holds
 *    (its blobs re-hashed, its trust stamp unchanged), else fetch. When the source is unreachable
 *    (a transient failure, and only then) the cached entry is used with a warning giving its age,
 *    and refused past maxStaleness with the sealed-mode banner (seed 002).
 * 3. Warm path: everything cached, the stack's effective policy memoised: nothing else is loaded.
 * 4. Otherwise, under the cache lock: fetch and verify at the source (signatures, digests, trust,
 *    tier), refuse a rollback without a signed incident approval, copy what verified into the
 *    cache, build the effective policy (refusing a loosening with the runbook's words), apply the
 *    policy lock, and commit the new state in one atomic write; a refusal commits nothing.
 * 5. A verification failure (exit 2) never falls back silently; with `--override-verification
 *    --reason` the last loaded verified policy is used instead, logged as `policy.override`, and
 *    runs are tainted `policy_override` until a load verifies again. `AIBOX_POLICY_LOCK=1` refuses a
 *    weaker effective policy than the last loaded one (exit 5) unless `--override-lock --reason`,
 *    which taints runs until a policy at least as strict as the one before is loaded.
 * 5b. The org profile (README "Profiles"; profile-gate.ts): a profile weaker than the one this
 *    stack loaded last is refused (PROFILE_LOCKED with the lock, else PROFILE_CHANGE_UNAPPROVED)
 *    unless `aibox profile set` recorded an approved change; then runs are tainted until reverted.
 * 6. Every load is one `policy.loaded` audit event (with `policy.rollback`, `policy.override`,
 *    `policy.override.reverted` before it in the same append); refusals are `policy.refused` or
 *    `policy.lock.refused`.
 */
import fs from 'node:fs'

import {type AuditEventInput, appendAuditEvents} from '../audit/append.js'
import {defaultActor} from '../audit/entry.js'
import type {TierLoad} from '../audit/events.js'
import {PolicyCache} from '../cache/cache.js'
import type {RollbackApproval} from '../cache/record.js'
import {type CacheEntry, type CacheState, type ProfileState, type StackMemo, type StackTier, type Taint, profileKey, sha256Hex, stackKey} from '../cache/state.js'
import {trustStampHolds} from '../cache/trust-stamp.js'
import {expandHome} from '../config/paths.js'
import {type StartConfig, type TierSource, formatAge, loadStartConfig, parseDurationMs} from '../config/start-config.js'
import {AiboxError, EXIT, GovernanceError, InputError, NotFoundError, TransientError, errorMessage} from '../errors.js'
import {type Reference, parseReference} from '../oci/reference.js'
import type {RemoteRepositoryOptions} from '../oci/stores/remote.js'
import {assertTenantPolicy, assertTrustTenant, noteActiveTenant, resolveTenant, tenantCacheDir, tenantOwns} from '../tenant/tenant.js'
import {writeFileAtomicSync} from '../util/atomic.js'
import {type ObservedDescriptor, type ProbeResult, probeLayout, probeRegistry} from './probe.js'
import {type ProfileDecision, applyProfile, decideProfile} from './profile-gate.js'
import type {StartOptions, StartResult, StartTaint, StartTierResult, TierLoadSource} from './types.js'

type Heavy = typeof import('./heavy.js')
type LoadedTrust = import('./heavy.js').LoadedTrust
type TrustSelection = import('./heavy.js').TrustSelection

/** A confirmed entry's `checkedAt` is rewritten at most this often (fewer writes on the warm path). */
const TOUCH_AFTER_MS = 60_000
const MEMO_TOUCH_AFTER_MS = 3_600_000
const LOCK_WAIT_MS = 120_000

export interface StartOutcome {
  result: StartResult
  /** Variables for the sandbox command. */
  env: Record<string, string>
  /** One human line per tier: `policy org-baseline 1.4.0 (sha256:…) loaded from registry`. */
  lines: string[]
}

/** What the freshness check found for a tier. */
type Observation =
  | {kind: 'found'; desc: ObservedDescriptor}
  | {kind: 'pinned'; digest: string}
  | {kind: 'unreachable'; error: AiboxError}
  | {kind: 'offline'}
  | {kind: 'file'; bytes: Buffer; digest: string}

interface TierContext {
  source: TierSource
  ref?: Reference
  obs: Observation
}

type Plan =
  | {kind: 'file'; ctx: TierContext; bytes: Buffer; digest: string}
  | {kind: 'cached'; ctx: TierContext; entry: CacheEntry; confirmed: boolean; reverify: boolean}
  | {kind: 'fetch'; ctx: TierContext; desc?: ObservedDescriptor; pinned?: string; previous?: CacheEntry; intact: boolean; lastChance?: AiboxError}

/** The outcome of one tier once decided and (if needed) fetched. */
interface Loaded {
  ctx: TierContext
  kind: 'file' | 'cached' | 'fresh'
  confirmed: boolean
  entry?: CacheEntry
  /** Canonical JSON (artifacts) or the file's bytes (project file). */
  bytes?: Buffer
  stack: StackTier
  /** A project file: sha256 of its bytes (the stack memo's key). */
  rawDigest?: string
  rollback?: RollbackApproval
}

/**
 * The error as an AiboxError, judged by shape (`code`, `exit`) as well as by class: the slow half
 * is loaded with import(), and a test runner that loads this module as CommonJS gets a second
 * copy of the error classes there.
 */
export function aiboxErrorOf(err: unknown): AiboxError | undefined {
  if (err instanceof AiboxError) return err
  const e = err as {code?: unknown; exit?: unknown; message?: unknown} | null
  return e && typeof e === 'object' && typeof e.code === 'string' && typeof e.exit === 'number' && typeof e.message === 'string' ? (err as AiboxError) : undefined
}

function isTransientFailure(err: unknown): boolean {
  const e = aiboxErrorOf(err)
  return e !== undefined && e.exit === EXIT.TRANSIENT && e.code !== 'LOCK_TIMEOUT' && e.code !== 'LOCK_LOST'
}

function isVerificationFailure(err: unknown): err is AiboxError {
  return aiboxErrorOf(err)?.exit === EXIT.VERIFY
}

/** `AIBOX_POLICY_LOCK=1` (also `true`, `yes`). */
export function policyLockEnabled(env: NodeJS.ProcessEnv): boolean {
  return ['1', 'true', 'yes'].includes((env.AIBOX_POLICY_LOCK ?? '').trim().toLowerCase())
}

function selectTrust(opts: StartOptions, config: StartConfig, cwd: string, env: NodeJS.ProcessEnv): TrustSelection {
  if (opts.keys?.length) return {kind: 'keys', files: opts.keys.map((k) => expandHome(k, env, cwd))}
  if (opts.trust) return {kind: 'trust', files: [expandHome(opts.trust, env, cwd)]}
  if (config.keys?.length) return {kind: 'keys', files: config.keys}
  if (config.trust) return {kind: 'trust', files: [config.trust]}
  throw new InputError('NO_TRUST', `${config.file} names no trust policy or keys, and neither --trust nor --key was given: aibox start never loads an unverified policy`, {
    suggestions: ["add 'trust: trust.yaml' (or 'keys: [release.pub]') to aibox.yaml", 'or pass --key PUB (trusted for every tier) or --trust FILE'],
  })
}

function sealedBanner(ages: Array<{ref: string; age: string}>, maxStaleness: string, airgap: boolean, where: string[]): string {
  const width = 78
  const rule = (title: string) => {
    const t = ` ${title} `
    const left = Math.floor((width - t.length) / 2)
    return `${'='.repeat(left)}${t}${'='.repeat(width - left - t.length)}`
  }
  const body = [
    `The verified policy cache is older than maxStaleness (${maxStaleness}):`,
    ...ages.map((a) => `  ${a.ref}: last vouched for ${a.age} ago`),
    airgap ? 'This site is air-gapped: no registry is contacted.' : `The policy source cannot be reached (${where.join(', ')}).`,
    'aibox start refuses to start a sandbox on a policy this old.',
    airgap
      ? 'Refresh it: import a fresh sealed bundle with aibox import --cache FILE.'
      : 'Refresh it: reconnect to the registry and run aibox start again, or import a fresh sealed bundle (aibox import --cache FILE).',
  ]
  return [rule('SEALED MODE'), ...body, '='.repeat(width)].join('\n')
}

function ageOf(now: Date, iso: string): number {
  return Math.max(0, now.getTime() - Date.parse(iso))
}

function stackTierOf(entry: CacheEntry, ctx: TierContext): StackTier {
  return {tier: entry.tier, ref: ctx.source.written, name: entry.name, version: entry.version, digest: entry.digest, contentDigest: entry.contentDigest, signers: entry.signers}
}

/** `org-baseline@1.4.0 team-alpha@2.1.0 webapp@0.3.0`: the stack's versions, org first. */
function stackVersion(tiers: StackTier[]): string {
  return tiers.map((t) => `${t.name ?? t.tier}@${t.version ?? 'unversioned'}`).join(' ')
}

function tierLoad(t: StackTier): TierLoad {
  return {tier: t.tier, ref: t.ref, digest: t.digest, version: t.version, signers: t.signers}
}

function registryOptions(config: StartConfig, warn: (m: string) => void): RemoteRepositoryOptions {
  return {
    ...(config.registry.plainHttp !== undefined ? {plainHttp: config.registry.plainHttp} : {}),
    ...(config.registry.insecure ? {insecure: true} : {}),
    ...(config.registry.caFile ? {caFile: config.registry.caFile} : {}),
    timeouts: {connectMs: config.registry.timeoutMs, headersMs: Math.max(config.registry.timeoutMs, 30_000)},
    onWarning: warn,
  }
}

/** Runs `aibox start` up to (not including) the sandbox command; see the module comment. */
export async function startPolicy(opts: StartOptions = {}): Promise<StartOutcome> {
  const env = opts.env ?? process.env
  const cwd = opts.cwd ?? process.cwd()
  const now = (opts.now ?? (() => new Date()))()
  const warnings: string[] = []
  const warn = (m: string) => {
    if (warnings.includes(m)) return
    warnings.push(m)
    opts.onWarning?.(m)
  }
  const overriding = Boolean(opts.overrideVerification || opts.overrideLock)
  const reason = opts.reason?.trim()
  if (overriding && !reason) {
    throw new InputError('REASON_REQUIRED', `${opts.overrideVerification ? '--override-verification' : '--override-lock'} needs --reason TEXT: an override is logged with who, when and why`, {
      suggestions: ['aibox start --override-verification --reason "INC-123: registry serves a broken signature" -- CMD'],
    })
  }
  if (reason && !overriding) throw new InputError('REASON_WITHOUT_OVERRIDE', '--reason is only taken together with --override-verification or --override-lock')

  const config = await loadStartConfig({file: opts.config, env, cwd})
  // README "Tenants": each tenant has its own cache directory, so tenants never share cache state.
  const tenant = resolveTenant({flag: opts.tenant, env, config: config.tenant})
  const trustSel = selectTrust(opts, config, cwd, env)
  const cacheRoot = opts.cache ? expandHome(opts.cache, env, cwd) : config.cache
  const cacheDir = tenantCacheDir(cacheRoot, tenant)
  let maxStalenessMs = config.maxStalenessMs
  let maxStaleness = config.maxStaleness
  if (opts.maxStaleness !== undefined) {
    const ms = parseDurationMs(opts.maxStaleness)
    if (ms === undefined) throw new InputError('INVALID_DURATION', `--max-staleness ${JSON.stringify(opts.maxStaleness)} is not a duration`, {suggestions: ['use e.g. 7d, 36h, 90m or 1h30m']})
    maxStalenessMs = ms
    maxStaleness = opts.maxStaleness
  }
  const offline = Boolean(opts.offline) || config.airgap
  const registry = registryOptions(config, warn)
  // Waiters for the cache and audit locks get 2 minutes: a burst of starts on a busy machine (200
  // at once on 2 cores in bench/start.bench.ts) queues behind the one that fills the cache.
  const cache = new PolicyCache(cacheDir, {lockTimeoutMs: LOCK_WAIT_MS})
  cache.ensureDir()
  const lockOn = policyLockEnabled(env)
  const refs: ProfileState['refs'] = {}
  for (const t of config.tiers) refs[t.tier] = t.kind === 'file' ? t.path : t.ref
  const pid = profileKey(refs)
  const actor = defaultActor(env)
  // The org profile (README "Profiles"): AIBOX_PROFILE for this run, else aibox.yaml, else the org's default.
  const envProfile = env.AIBOX_PROFILE?.trim()
  const requestedProfile = envProfile || config.profile
  const requestedBy = envProfile ? 'AIBOX_PROFILE' : `${config.file}: profile`
  const events: AuditEventInput[] = []
  /** `policy.rollback` events: logged only when the load they belong to succeeds. */
  const rollbackEvents: AuditEventInput[] = []
  let heavyMod: Heavy | undefined
  const heavy = async () => (heavyMod ??= await import('./heavy.js'))
  let trustLoaded: LoadedTrust | undefined
  const trust = async () => {
    if (!trustLoaded) {
      const loaded = (await heavy()).loadTrust(trustSel, now)
      assertTrustTenant(tenant, loaded.trust)
      trustLoaded = loaded
    }
    return trustLoaded
  }
  const audit = async (list: AuditEventInput[]) => {
    if (tenant !== undefined) list = list.map((e) => ({...e, fields: {...e.fields, tenant}}) as AuditEventInput)
    const r = await appendAuditEvents(list, {log: config.audit, env, now: () => now, lockTimeoutMs: LOCK_WAIT_MS})
    for (const w of r.warnings) warn(`audit log: ${w}`)
  }

  // 1. Observe.
  let requests = 0
  const observe = async (source: TierSource): Promise<TierContext> => {
    if (source.kind === 'file') {
      let bytes: Buffer
      try {
        bytes = fs.readFileSync(source.path)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'ENOENT') {
          throw new NotFoundError('PROJECT_POLICY_NOT_FOUND', `project policy ${source.written} does not exist (${source.path})`, {
            suggestions: [`create it (aibox bundle init --tier project), or remove policy.project from ${config.file}`],
          })
        }
        throw new InputError('PROJECT_POLICY_UNREADABLE', `cannot read the project policy ${source.path}: ${errorMessage(err)}`)
      }
      return {source, obs: {kind: 'file', bytes, digest: `sha256:${sha256Hex(bytes)}`}}
    }
    const ref = parseReference(source.ref)
    if (offline) return {source, ref, obs: {kind: 'offline'}}
    if (ref.digest !== undefined) return {source, ref, obs: {kind: 'pinned', digest: ref.digest}}
    let probe: ProbeResult
    if (ref.kind === 'registry') {
      probe = await probeRegistry(ref, {plainHttp: config.registry.plainHttp, insecure: config.registry.insecure, caFile: config.registry.caFile, timeoutMs: config.registry.timeoutMs, env})
    } else {
      probe = probeLayout(ref)
    }
    requests += probe.requests
    if (probe.kind === 'found') return {source, ref, obs: {kind: 'found', desc: probe.desc}}
    if (probe.kind === 'unreachable') return {source, ref, obs: {kind: 'unreachable', error: probe.error}}
    if (probe.kind === 'not-found') throw probe.error
    // Credentials, or an answer the probe does not use: the full client decides.
    try {
      const h = await heavy()
      requests += 1
      const d = await h.resolveFull(source.ref, ref.tag!, registry)
      return {source, ref, obs: {kind: 'found', desc: {mediaType: d.mediaType, digest: d.digest, size: d.size}}}
    } catch (err) {
      if (isTransientFailure(err)) return {source, ref, obs: {kind: 'unreachable', error: err as AiboxError}}
      throw err
    }
  }
  const contexts = await Promise.all(config.tiers.map(observe))

  // 2. Decide, against a state (read without the lock first, then again under it).
  const problemsSeen = new Map<string, string | undefined>()
  const entryProblem = (e: CacheEntry) => {
    const k = `${e.reference}\u0000${e.digest}`
    if (!problemsSeen.has(k)) problemsSeen.set(k, cache.entryProblem(e))
    return problemsSeen.get(k)
  }
  const hashes = new Map<string, string | undefined>()
  const decide = (state: CacheState): Plan[] => {
    const stale: Array<{ref: string; age: string}> = []
    const where: string[] = []
    const plans = contexts.map((ctx): Plan => {
      const {obs, source} = ctx
      if (obs.kind === 'file') return {kind: 'file', ctx, bytes: obs.bytes, digest: obs.digest}
      const ref = (source as Extract<TierSource, {kind: 'reference'}>).ref
      let entry: CacheEntry | undefined = state.entries[ref]
      // Never another tenant's entry (the per-tenant directory already keeps them apart).
      if (entry && tenant !== undefined && !tenantOwns(tenant, entry.tenant)) {
        warn(`the cached ${ref} belongs to ${entry.tenant === undefined ? 'no tenant' : `tenant ${entry.tenant}`}, not to ${tenant}: it is not used`)
        entry = undefined
      }
      const problem = entry ? entryProblem(entry) : undefined
      if (entry && problem) warn(`the cached ${ref} is damaged (${problem}): it is not used, and is fetched again`)
      const intact = entry !== undefined && problem === undefined
      const holds = () => trustStampHolds(entry!.trust, trustSel, now, hashes)
      if (obs.kind === 'found' || obs.kind === 'pinned') {
        const digest = obs.kind === 'found' ? obs.desc.digest : obs.digest
        if (intact && entry!.digest === digest) return {kind: 'cached', ctx, entry: entry!, confirmed: true, reverify: !holds()}
        return {kind: 'fetch', ctx, ...(obs.kind === 'found' ? {desc: obs.desc} : {pinned: obs.digest}), ...(entry ? {previous: entry} : {}), intact}
      }
      if (!intact && obs.kind === 'unreachable' && ctx.ref?.kind === 'registry') {
        // Nothing cached to fall back to: rather than fail on one unanswered request, try the full
        // client (with its retries) under the lock — or find the cache filled by then.
        return {kind: 'fetch', ctx, ...(entry ? {previous: entry} : {}), intact: false, lastChance: obs.error}
      }
      if (!intact) {
        const why = obs.kind === 'offline' ? (config.airgap ? 'this site is air-gapped (airgap: true)' : '--offline was given') : obs.error.message
        throw new TransientError('NO_VERIFIED_CACHE', `${ref}: ${why}, and the cache ${cache.dir} holds no ${entry ? 'intact ' : ''}verified copy of it`, {
          cause: obs.kind === 'unreachable' ? obs.error : undefined,
          suggestions: config.airgap ? ['import a sealed bundle into the cache: aibox import --cache FILE'] : ['run aibox start once with the registry reachable, or import a sealed bundle (aibox import --cache FILE)', ...(obs.kind === 'unreachable' ? (obs.error.suggestions ?? []) : [])],
        })
      }
      const age = ageOf(now, entry!.checkedAt)
      if (age > maxStalenessMs) {
        stale.push({ref, age: formatAge(age)})
        if (obs.kind === 'unreachable') where.push(obs.error.message)
      }
      return {kind: 'cached', ctx, entry: entry!, confirmed: false, reverify: !holds()}
    })
    if (stale.length > 0) {
      const banner = sealedBanner(stale, maxStaleness, config.airgap, where)
      throw new TransientError('CACHE_TOO_STALE', `the verified policy cache is past maxStaleness (${maxStaleness}) and the policy source cannot be used: refusing to start`, {
        suggestions: ['reconnect to the registry and run aibox start again', 'on an air-gapped site: aibox import --cache FILE with a fresh sealed bundle'],
        details: {banner, stale, maxStaleness},
      })
    }
    return plans
  }

  // Warnings for tiers served from the cache because the source could not be used.
  const staleNotes = (plans: Plan[]) => {
    for (const p of plans) {
      if (p.kind !== 'cached' || p.confirmed) continue
      const age = formatAge(ageOf(now, p.entry.checkedAt))
      if (p.ctx.obs.kind === 'unreachable') {
        warn(`${p.ctx.source.written} cannot be reached (${p.ctx.obs.error.message}): using the verified cache from ${age} ago (${p.entry.version}, ${p.entry.digest}; maxStaleness ${maxStaleness})`)
      } else if (p.ctx.obs.kind === 'offline') {
        warn(`${config.airgap ? 'air-gapped' : 'offline'}: using the verified ${p.entry.origin === 'import' ? 'import' : 'cache'} of ${p.ctx.source.written} from ${age} ago (${p.entry.version}; maxStaleness ${maxStaleness})`)
      }
    }
  }

  const loadedOf = (p: Plan): Loaded => {
    if (p.kind === 'file') {
      // Until the file is parsed (or its memo is found) its content digest is not known: the sha256
      // of its bytes keys the stack memo, so the warm path never parses it.
      return {ctx: p.ctx, kind: 'file', confirmed: true, bytes: p.bytes, rawDigest: p.digest, stack: {tier: 'project', ref: p.ctx.source.written, name: null, version: null, digest: p.digest, contentDigest: p.digest, signers: []}}
    }
    if (p.kind !== 'cached') throw new Error('loadedOf: not decided')
    return {ctx: p.ctx, kind: 'cached', confirmed: p.confirmed, entry: p.entry, stack: stackTierOf(p.entry, p.ctx)}
  }

  const keyOf = (loaded: Loaded[]) => {
    const k = stackKey(loaded.map((l) => ({tier: l.stack.tier, digest: l.kind === 'file' ? l.rawDigest! : l.entry!.digest})))
    // Each requested profile has its own effective policy; the org's default keeps the plain key.
    return requestedProfile === undefined ? k : `sha256:${sha256Hex(`${k}\u0000profile=${requestedProfile}`)}`
  }

  const profileOf = (state: CacheState): ProfileState => (state.profiles[pid] ??= {refs})

  // 3. The warm path: everything from the cache, the stack memoised, no lock comparison needed.
  const lightOutcome = (state: CacheState, plans: Plan[]): Done | undefined => {
    if (!plans.every((p) => p.kind === 'file' || (p.kind === 'cached' && !p.reverify))) return undefined
    const loaded = plans.map(loadedOf)
    const key = keyOf(loaded)
    const memo = state.stacks[key]
    const effBytes = memo ? cache.readEffective(memo.effective) : undefined
    if (!memo || !effBytes) return undefined
    const profile = state.profiles[pid]
    if (lockOn && profile?.last !== undefined && profile.last.effective !== memo.effective) return undefined
    if (profile?.taint?.override === 'lock' && profile.taint.effective !== memo.effective) return undefined
    // Names and versions of a project file come from the memo (the file was parsed when it was made).
    memo.tiers.forEach((t, i) => {
      if (loaded[i]?.kind === 'file') loaded[i]!.stack = {...t, ref: loaded[i]!.stack.ref}
    })
    staleNotes(plans)
    return {loaded, effective: memo.effective, effBytes, key, memoTiers: memo.tiers, ...profileOfMemo(memo)}
  }

  let taintNow: Taint | undefined
  /** Taints lifted by this load (a profile taint and another override's can lift together). */
  let reverted: Taint[] = []
  /** The profile gate's audit events of the committed load (policy.profile.changed, policy.override). */
  let profileEvents: AuditEventInput[] = []
  /** The taint of a weaker profile loaded now (its warning). */
  let profileTaintNew: Taint | undefined
  const gate = (state: CacheState, o: Done): ProfileDecision =>
    decideProfile(state.profiles[pid], {...(o.profile !== undefined ? {profile: o.profile} : {}), profiles: o.profiles ?? []}, {lockOn, effective: o.effective, actor, now})
  const refusalOf = (d: Extract<ProfileDecision, {kind: 'refuse'}>, o: Done): AuditEventInput => ({
    event: 'policy.profile.refused',
    fields: {ref: refs.org ?? null, digest: o.effective, version: stackVersion(o.loaded.map((l) => l.stack)), from: d.from, profile: o.profile!, reason: d.error.message.split('\n')[0]!, code: d.error.code},
  })
  /** Applies a profile change to the state and notes its audit events; true when the state changed. */
  const applyGate = (d: ProfileDecision, o: Done, profile: ProfileState): boolean => {
    profileEvents = []
    profileTaintNew = undefined
    if (d.kind !== 'change') return false
    applyProfile(profile, d, now)
    const version = stackVersion(o.loaded.map((l) => l.stack))
    const subject = {ref: refs.org ?? null, digest: o.effective, version}
    if (d.from !== undefined) {
      const c = d.change
      profileEvents.push({
        event: 'policy.profile.changed',
        fields: {...subject, from: d.from, profile: d.to, ...(d.weaker ? {weaker: true} : {}), ...(c ? {ticket: c.ticket, reason: c.reason, approvers: c.approvers, approvals: c.approvals} : {})},
      })
    }
    if (d.taint) {
      profileTaintNew = d.taint
      profileEvents.push({event: 'policy.override', fields: {...subject, from: d.from!, reason: d.taint.reason, override: 'profile', taint: 'policy_override'}})
    }
    if (d.reverted) reverted.push(d.reverted)
    return true
  }
  let previous: string | undefined
  let overrideUsed = false

  /** The small changes of a warm load (freshness times, last loaded, a lifted taint); true when there are some. */
  const touch = (o: Done, state: CacheState): boolean => {
    let changed = false
    for (const l of o.loaded) {
      if (l.kind !== 'cached' || !l.confirmed) continue
      const e = state.entries[l.entry!.reference]
      if (e && e.digest === l.entry!.digest && ageOf(now, e.checkedAt) > TOUCH_AFTER_MS) {
        e.checkedAt = now.toISOString()
        changed = true
      }
    }
    const m = state.stacks[o.key]
    if (m && ageOf(now, m.usedAt) > MEMO_TOUCH_AFTER_MS) {
      m.usedAt = now.toISOString()
      changed = true
    }
    const profile = profileOf(state)
    previous = undefined
    reverted = []
    const d = gate(state, o)
    if (d.kind === 'refuse') throw d.error
    if (applyGate(d, o, profile)) changed = true
    if (profile.last?.effective !== o.effective) {
      previous = profile.last?.effective
      profile.last = {effective: o.effective, version: stackVersion(o.loaded.map((l) => l.stack)), loadedAt: now.toISOString(), source: sourceOf(o.loaded), tiers: o.loaded.map((l) => l.stack)}
      changed = true
    }
    if (profile.taint?.override === 'verification' && o.loaded.every((l) => l.confirmed)) {
      reverted.push(profile.taint)
      liftTaint(profile)
      changed = true
    }
    taintNow = profile.taint
    return changed
  }

  const state0 = cache.readState()
  let outcome = lightOutcome(state0, decide(state0))
  if (outcome) {
    const o = outcome
    const d = gate(state0, o)
    if (d.kind === 'refuse') {
      await audit([refusalOf(d, o)])
      throw d.error
    }
    if (touch(o, state0)) await cache.update((state) => ({result: undefined, changed: touch(o, state)}))
  } else {
    // 4. Under the cache lock: fetch, verify, check, commit. Another start may have done it
    // while this one waited for the lock: then the warm path applies after all.
    const full = await cache.update<{kind: 'refused'; error: AiboxError} | {kind: 'done'; done: Done}>(async (state) => {
      const plans = decide(state)
      const warm = lightOutcome(state, plans)
      if (warm) return {result: {kind: 'done', done: warm}, changed: touch(warm, state)}
      const h = await heavy()
      let lockRefusal: AiboxError | undefined
      try {
        const loaded: Loaded[] = []
        for (const p of plans) loaded.push(await load(p, state))
        staleNotes(plans)
        const key = keyOf(loaded)
        let memo = state.stacks[key]
        let effBytes = memo ? cache.readEffective(memo.effective) : undefined
        if (!memo || !effBytes) {
          const bundles = loaded.map((l) => {
            const bytes = l.bytes ?? cache.readBlob(l.entry!.blobs[0]!.digest, l.entry!.blobs[0]!.size)
            if (!bytes) throw new TransientError('CACHE_CHANGED', `the cached policy layer of ${l.ctx.source.written} changed while aibox start was reading it; retry`)
            return h.bundleFrom(bytes, l.ctx.source.written, l.stack.tier, l.kind === 'file' ? undefined : 'json')
          })
          loaded.forEach((l, i) => {
            if (l.kind === 'file') l.stack = {...l.stack, name: bundles[i]!.name ?? null, version: bundles[i]!.version ?? null, digest: bundles[i]!.digest, contentDigest: bundles[i]!.digest}
          })
          const sel = h.selectProfile(bundles[0]!, requestedProfile, requestedBy)
          const eff = h.effectiveOf([...sel.stack, ...bundles.slice(1)])
          cache.putEffective(eff.canonical, eff.digest)
          effBytes = Buffer.from(eff.canonical, 'utf8')
          memo = {effective: eff.digest, tiers: loaded.map((l) => l.stack), usedAt: now.toISOString(), ...(sel.profile !== undefined ? {profile: sel.profile, profiles: sel.profiles} : {})}
          state.stacks[key] = memo
        } else {
          loaded.forEach((l, i) => {
            if (l.kind === 'file') l.stack = {...memo!.tiers[i]!, ref: l.stack.ref}
          })
          memo.usedAt = now.toISOString()
        }
        const profile = profileOf(state)
        const last = profile.last
        const doneNow: Done = {loaded, effective: memo.effective, effBytes, key, memoTiers: memo.tiers, ...profileOfMemo(memo)}
        // The profile gate first (README "Profiles"): a weaker profile is refused before the lock compares digests.
        const pd = gate(state, doneNow)
        let profileRefused = false
        if (pd.kind === 'refuse') {
          events.push(refusalOf(pd, doneNow))
          lockRefusal = pd.error
          profileRefused = true
        }
        // The policy lock: never weaker than the last loaded, unless overridden (seed 000).
        let lockOverride = false
        if (!profileRefused && lockOn && last && last.effective !== memo.effective) {
          const prevBytes = cache.readEffective(last.effective)
          let weaker: string[] | undefined
          if (!prevBytes) weaker = [`the last loaded effective policy ${last.effective} is missing from the cache, so the new one cannot be shown to be as strict`]
          else {
            const cmp = h.compareLock(prevBytes, effBytes)
            if (cmp.weaker) weaker = cmp.looser.map((v) => `${v.field}: ${v.detail}`)
          }
          if (weaker) {
            if (!opts.overrideLock) {
              events.push({event: 'policy.lock.refused', fields: {ref: refs.org ?? null, digest: memo.effective, version: stackVersion(loaded.map((l) => l.stack)), from: last.effective, reason: weaker.join('; ')}})
              lockRefusal = new GovernanceError('POLICY_LOCKED', `AIBOX_POLICY_LOCK=1: the new effective policy ${memo.effective} (${stackVersion(loaded.map((l) => l.stack))}) is weaker than the last loaded ${last.effective} (${last.version}):\n${weaker.map((w) => `  ${w}`).join('\n')}`, {
                suggestions: ['ask the policy owners whether the loosening is intended', 'an operator may accept it explicitly: aibox start --override-lock --reason "…" (logged; runs are tainted policy_override until a policy as strict as before is loaded)'],
                details: {from: last.effective, to: memo.effective, looser: weaker},
              })
            } else {
              lockOverride = true
            }
          }
        }
        // Commit the verified tiers (also when the lock refuses: they verified; the profile does not move).
        for (const l of loaded) if (l.entry && state.entries[l.entry.reference] !== l.entry) state.entries[l.entry.reference] = l.entry
        for (const l of loaded) {
          if (l.kind === 'cached' && l.confirmed) {
            const e = state.entries[l.entry!.reference]
            if (e && e.digest === l.entry!.digest) e.checkedAt = now.toISOString()
          }
        }
        if (lockRefusal) {
          // The tiers are committed (they verified), a rollback among them too: log it with the refusal.
          events.unshift(...rollbackEvents.splice(0))
          return {result: {kind: 'refused' as const, error: lockRefusal}, changed: true}
        }
        if (lockOverride) {
          const baseline = profile.taint?.override === 'lock' && profile.taint.baseline ? profile.taint.baseline : last!.effective
          profile.taint = {taint: 'policy_override', override: 'lock', reason: reason!, actor, since: now.toISOString(), effective: memo.effective, baseline, ...keptProfileTaint(profile.taint)}
          overrideUsed = true
          events.push({event: 'policy.override', fields: {ref: refs.org ?? null, digest: memo.effective, version: stackVersion(loaded.map((l) => l.stack)), from: last!.effective, reason: reason!, override: 'lock', taint: 'policy_override'}})
        } else if (profile.taint) {
          // Lift a taint once its cause is gone.
          const t = profile.taint
          let lift = false
          if (t.override === 'verification') lift = loaded.every((l) => l.confirmed)
          else if (t.override === 'lock' && t.baseline) {
            if (t.baseline === memo.effective) lift = true
            else {
              const base = cache.readEffective(t.baseline)
              lift = base !== undefined && !h.compareLock(base, effBytes).weaker
            }
          }
          if (lift) {
            reverted.push(t)
            liftTaint(profile)
          }
        }
        if (last?.effective !== memo.effective) previous = last?.effective
        profile.last = {effective: memo.effective, version: stackVersion(loaded.map((l) => l.stack)), loadedAt: now.toISOString(), source: sourceOf(loaded), tiers: loaded.map((l) => l.stack)}
        applyGate(pd, doneNow, profile)
        taintNow = profile.taint
        return {result: {kind: 'done' as const, done: doneNow}, changed: true}
      } catch (err) {
        if (!isVerificationFailure(err)) throw err
        // Nothing of this load is committed: a rollback accepted for one tier did not happen.
        rollbackEvents.length = 0
        events.push({event: 'policy.refused', fields: {ref: (err.details?.reference as string | undefined) ?? refs.org ?? null, digest: null, version: null, reason: err.message.split('\n')[0]!, code: err.code}})
        if (!opts.overrideVerification) return {result: {kind: 'refused' as const, error: err}, changed: false}
        // The operator's explicit override: the last loaded verified policy, tainted.
        const profile = state.profiles[pid]
        const last = profile?.last
        const bytes = last ? cache.readEffective(last.effective) : undefined
        if (!profile || !last || !bytes) {
          err.suggestions = [...(err.suggestions ?? []), '--override-verification can only fall back to a policy this stack loaded before, and the cache holds none']
          return {result: {kind: 'refused' as const, error: err}, changed: false}
        }
        profile.taint = {taint: 'policy_override', override: 'verification', reason: reason!, actor, since: now.toISOString(), effective: last.effective, ...keptProfileTaint(profile.taint)}
        taintNow = profile.taint
        overrideUsed = true
        warn(`verification failed (${err.code}: ${err.message.split('\n')[0]}); --override-verification: loading the last verified policy ${last.effective} (${last.version}) instead; runs are tainted policy_override`)
        events.push({event: 'policy.override', fields: {ref: refs.org ?? null, digest: last.effective, version: last.version, reason: reason!, override: 'verification', taint: 'policy_override'}})
        const loaded: Loaded[] = last.tiers.map((t) => ({ctx: contexts.find((c) => c.source.tier === t.tier) ?? contexts[0]!, kind: 'cached', confirmed: false, stack: t}))
        return {result: {kind: 'done' as const, done: {loaded, effective: last.effective, effBytes: bytes, key: '', memoTiers: last.tiers, staleFrom: last.loadedAt, ...(profile.profile ? {profile: profile.profile.name} : {})}}, changed: true}
      }
    })
    if (full.kind === 'refused') {
      if (events.length > 0) await audit(events)
      throw full.error
    }
    outcome = full.done
  }

  /** Fetches (or re-verifies) one tier under the lock. */
  async function load(p: Plan, state: CacheState): Promise<Loaded> {
    if (p.kind === 'file') return loadedOf(p)
    const h = await heavy()
    const t = await trust()
    const src = p.ctx.source as Extract<TierSource, {kind: 'reference'}>
    const trustRef = src.trustRef ?? (p.ctx.ref?.kind === 'registry' ? src.ref : undefined)
    if (p.kind === 'cached') {
      if (!p.reverify) return loadedOf(p)
      const v = await h.reverifyCached(cache, p.entry, t, trustRef)
      assertTenantPolicy(tenant, v.tenant, src.ref, 'start')
      const entry: CacheEntry = {...p.entry, ...(v.tenant !== undefined ? {tenant: v.tenant} : {}), trust: t.stamp, signers: [...new Set(v.signatures.map((s) => s.signer.keyId))], verifiedAt: now.toISOString()}
      return {ctx: p.ctx, kind: 'cached', confirmed: p.confirmed, entry, stack: stackTierOf(entry, p.ctx)}
    }
    let opened: Awaited<ReturnType<Heavy['openSource']>> | undefined
    try {
      opened = await h.openSource(src.ref, registry)
      const desc = p.desc ?? (await opened.target.resolve(p.pinned ?? (p.ctx.ref?.tag as string)))
      const verified = await h.verifyAtSource(opened.target, desc, t, trustRef)
      // Before anything is cached: only the tenant's own (or tenant-global) policies (README "Tenants").
      assertTenantPolicy(tenant, verified.tenant, src.ref, 'start')
      const change = h.checkVersionChange(p.previous, verified, {trust: t.trust, now, reference: src.ref})
      const rollback = change.kind === 'rollback' ? change.approval : undefined
      await h.fillCache(cache, opened.target, verified)
      const entry = h.entryFor({reference: src.ref, tier: src.tier, verified, origin: 'registry', trust: t.stamp, now, rollback})
      if (rollback) {
        rollbackEvents.push({event: 'policy.rollback', fields: {ref: src.ref, digest: entry.digest, version: entry.version, from: rollback.from, incident: rollback.incident, approvals: rollback.approvals}})
      }
      return {ctx: p.ctx, kind: 'fresh', confirmed: true, entry, bytes: verified.canonical, stack: stackTierOf(entry, p.ctx), ...(rollback ? {rollback} : {})}
    } catch (err) {
      // A transient failure while fetching is like an unreachable source: the verified cache may serve.
      if (isTransientFailure(err) && p.previous && p.intact) {
        const age = ageOf(now, p.previous.checkedAt)
        if (age > maxStalenessMs) {
          const banner = sealedBanner([{ref: src.ref, age: formatAge(age)}], maxStaleness, false, [errorMessage(err)])
          throw new TransientError('CACHE_TOO_STALE', `the verified policy cache is past maxStaleness (${maxStaleness}) and the policy source failed: refusing to start`, {cause: err, details: {banner, maxStaleness}})
        }
        warn(`${src.written}: fetching ${p.desc?.digest ?? p.pinned} failed (${errorMessage(err)}): using the verified cache from ${formatAge(age)} ago (${p.previous.version}; maxStaleness ${maxStaleness})`)
        const entry = p.previous
        if (!trustStampHolds(entry.trust, trustSel, now, hashes)) return load({kind: 'cached', ctx: p.ctx, entry, confirmed: false, reverify: true}, state)
        return {ctx: p.ctx, kind: 'cached', confirmed: false, entry, stack: stackTierOf(entry, p.ctx)}
      }
      if (isVerificationFailure(err) && err.details?.reference === undefined) err.details = {...err.details, reference: src.ref}
      if (p.lastChance && isTransientFailure(err)) {
        throw new TransientError('NO_VERIFIED_CACHE', `${src.ref}: ${p.lastChance.message} (then: ${errorMessage(err)}), and the cache ${cache.dir} holds no verified copy of it`, {
          cause: err,
          suggestions: ['run aibox start once with the registry reachable, or import a sealed bundle (aibox import --cache FILE)', ...(p.lastChance.suggestions ?? [])],
        })
      }
      throw err
    } finally {
      await opened?.close()
    }
  }

  // 5. Effective file, audit, result.
  const o = outcome!
  const effFile = cache.effectivePath(o.effective)
  if (!cache.readEffective(o.effective)) cache.putEffective(o.effBytes, o.effective)
  let output: string | undefined
  if (opts.output) {
    output = expandHome(opts.output, env, cwd)
    writeFileAtomicSync(output, o.effBytes, {mode: 0o644})
  }
  const tiers: StartTierResult[] = o.loaded.map((l) => tierResult(l, now, o.staleFrom))
  const staleness = Math.max(0, ...tiers.map((t) => t.stalenessSeconds))
  const version = stackVersion(o.loaded.map((l) => l.stack))
  const source = sourceOf(o.loaded)
  events.unshift(...rollbackEvents)
  events.push(...profileEvents)
  for (const r of reverted) {
    const why = r.override === 'verification' ? 'the policy verified again at its source' : r.override === 'profile' ? `profile '${o.profile}' is at least as strict as '${r.baselineProfile}', loaded before the weaker profile` : 'a policy at least as strict as before the lock override was loaded'
    events.push({event: 'policy.override.reverted', fields: {ref: refs.org ?? null, digest: o.effective, version, taint: 'policy_override', reason: why}})
  }
  events.push({
    event: 'policy.loaded',
    fields: {
      ref: refs.org ?? null,
      digest: o.effective,
      version,
      source,
      stalenessSeconds: staleness,
      tiers: o.loaded.map((l) => tierLoad(l.stack)),
      ...(previous ? {from: previous} : {}),
      ...(taintNow ? {tainted: true} : {}),
      ...(o.profile !== undefined ? {profile: o.profile} : {}),
    },
  })
  await audit(events)

  const taint: StartTaint | undefined = taintNow ? {taint: taintNow.taint, override: taintNow.override, reason: taintNow.reason, actor: taintNow.actor, since: taintNow.since} : undefined
  const lifts = taint?.override === 'verification' ? 'the policy verifies again at its source' : taint?.override === 'profile' ? `a profile at least as strict as '${taintNow!.baselineProfile}' is loaded` : 'a policy as strict as before is loaded'
  if (taint && !overrideUsed && !profileTaintNew) warn(`runs are tainted policy_override: ${taint.override} override by ${taint.actor} at ${taint.since} (${taint.reason}); it lifts when ${lifts}`)
  if (profileTaintNew) warn(`profile '${o.profile}' is weaker than '${profileTaintNew.baselineProfile}': loaded with the approved change (${profileTaintNew.reason}); runs are tainted policy_override until a profile at least as strict as '${profileTaintNew.baselineProfile}' is loaded`)
  if (tenant !== undefined) {
    const switched = noteActiveTenant(cacheRoot, tenant, o.effective, now)
    if (switched) warn(`switching tenant: this cache last loaded tenant ${switched.tenant}'s policy (${switched.effective}, at ${switched.loadedAt}); tenant ${tenant}'s active policy differs (${o.effective})`)
  }
  const result: StartResult = {
    ...(tenant !== undefined ? {tenant} : {}),
    config: config.file,
    cache: cache.dir,
    source,
    stalenessSeconds: staleness,
    effective: {digest: o.effective, file: effFile, ...(output ? {output} : {})},
    version,
    ...(o.profile !== undefined ? {profile: o.profile} : {}),
    tiers,
    ...(previous ? {previous} : {}),
    tainted: Boolean(taint),
    ...(taint ? {taint} : {}),
    requests,
    warnings,
  }
  const childEnv: Record<string, string> = {
    AIBOX_POLICY_FILE: output ?? effFile,
    AIBOX_POLICY_DIGEST: o.effective,
    AIBOX_POLICY_VERSION: version,
    AIBOX_POLICY_SOURCE: source,
  }
  if (taint) childEnv.AIBOX_POLICY_TAINT = taint.taint
  if (o.profile !== undefined) childEnv.AIBOX_POLICY_PROFILE = o.profile
  if (tenant !== undefined) childEnv.AIBOX_TENANT = tenant
  const lines = tiers.map(humanLine)
  if (o.profile !== undefined) lines.splice(1, 0, `profile ${o.profile}${o.profiles?.length ? ` (${o.profiles.join(' < ')})` : ''}`)
  return {result, env: childEnv, lines}
}

interface Done {
  loaded: Loaded[]
  effective: string
  effBytes: Buffer
  key: string
  memoTiers: StackTier[]
  /** For an override fallback: when the loaded policy was last loaded (its staleness). */
  staleFrom?: string
  /** The org profile loaded, and the org's catalog (weakest first). */
  profile?: string
  profiles?: string[]
}

/** A profile taint stays under another override's taint (README "Profiles"): restored when that one lifts. */
function keptProfileTaint(t: Taint | undefined): {previous?: Taint} {
  const p = t?.override === 'profile' ? t : t?.previous
  return p ? {previous: p} : {}
}

/** Lifts the taint in force, restoring a profile taint kept under it. */
function liftTaint(profile: ProfileState): void {
  if (profile.taint?.previous) profile.taint = profile.taint.previous
  else delete profile.taint
}

function profileOfMemo(memo: StackMemo): {profile?: string; profiles?: string[]} {
  return memo.profile !== undefined ? {profile: memo.profile, profiles: memo.profiles ?? []} : {}
}

function sourceOf(loaded: Loaded[]): 'registry' | 'cache' | 'import' {
  if (loaded.some((l) => l.kind === 'fresh')) return 'registry'
  if (loaded.some((l) => l.kind === 'cached' && l.entry?.origin === 'import')) return 'import'
  return 'cache'
}

function tierResult(l: Loaded, now: Date, staleFrom: string | undefined): StartTierResult {
  const source: TierLoadSource = l.kind === 'file' ? 'file' : l.kind === 'fresh' ? 'registry' : l.entry?.origin === 'import' ? 'import' : 'cache'
  const checkedAt = l.kind === 'file' ? undefined : l.confirmed ? now.toISOString() : (l.entry?.checkedAt ?? staleFrom)
  const staleness = l.confirmed || !checkedAt ? 0 : Math.floor(ageOf(now, checkedAt) / 1000)
  return {
    ...l.stack,
    source,
    ...(l.entry ? {verifiedAt: l.entry.verifiedAt} : {}),
    ...(l.entry?.tenant !== undefined ? {tenant: l.entry.tenant} : {}),
    ...(checkedAt ? {checkedAt} : {}),
    stalenessSeconds: staleness,
    ...(l.rollback ? {rollback: {from: l.rollback.from, incident: l.rollback.incident, approvals: l.rollback.approvals}} : {}),
  }
}

/** `policy org-baseline 1.4.0 (sha256:…) loaded from registry` (issue 5). */
export function humanLine(t: StartTierResult): string {
  const name = t.name ?? t.ref
  const version = t.version ? ` ${t.version}` : ''
  const from = t.source === 'file' ? `file ${t.ref}` : t.source === 'registry' && t.ref.startsWith('oci:') ? `registry (${t.ref})` : t.source
  const stale = t.stalenessSeconds > 0 ? `, verified ${formatAge(t.stalenessSeconds * 1000)} ago` : ''
  const rollback = t.rollback ? ` (rollback from ${t.rollback.from}, incident ${t.rollback.incident})` : ''
  return `policy ${name}${version} (${t.digest}) loaded from ${from}${stale}${rollback}`
}


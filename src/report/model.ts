/**
 * What an auditor wants from the audit log (issue 9 "audit report"), computed from its entries:
 * the versions of each tier in the order they appeared, who pushed, signed and approved each, how
 * often each was loaded; rollbacks, emergency changes, overrides and refusals; activity per (UTC)
 * day. Event kinds this version does not know are kept: they are counted and listed like any other.
 */
import type {AuditEntry} from '../audit/entry.js'

export interface ReportActor {
  actor: string
  time: string
  seq: number
}

export interface VersionSignature extends ReportActor {
  keyId: string
}

export interface VersionApproval extends VersionSignature {
  role: string
  note?: string
  ticket?: string
  incident?: string
}

/** One published policy version (a manifest digest) and everything the log says about it. */
export interface VersionRow {
  tier: string
  digest: string
  ref: string | null
  version: string | null
  firstSeen: string
  pushed?: ReportActor & {tags: string[]}
  signatures: VersionSignature[]
  approvals: VersionApproval[]
  /** `policy.loaded` entries that loaded this version as one of their tiers. */
  loads: number
  lastLoaded?: string
  /** `rollback` (accepted as an older version), `emergency`, `refused`. */
  flags: string[]
}

export interface DayActivity {
  /** `YYYY-MM-DD` (UTC). */
  day: string
  loads: number
  /** Loads by source (`registry`, `cache`, `import`, …). */
  loadsBySource: Record<string, number>
  taintedLoads: number
  overrides: number
  refusals: number
  emergencies: number
  rollbacks: number
}

export interface ReportChain {
  ok: boolean
  /** One sentence: intact (entries, anchor) or where and why it breaks. */
  message: string
}

export interface AuditReportModel {
  log: string
  generatedAt: string
  /** The `--since` value as given, when the entries were filtered. */
  since?: string
  chain: ReportChain
  /** Entries in the report (after `since`). */
  entries: number
  first?: string
  last?: string
  /** Entries per event name, sorted by name. */
  eventCounts: Array<{event: string; count: number}>
  /** Tiers in the order org, team, project, then others (e.g. `unknown`) by name. */
  tiers: Array<{tier: string; versions: VersionRow[]}>
  rollbacks: AuditEntry[]
  emergencies: AuditEntry[]
  /** `policy.override`, `policy.override.reverted`, `policy.lock.refused`, and any other `*.override*` event. */
  overrides: AuditEntry[]
  refusals: AuditEntry[]
  transfers: AuditEntry[]
  days: DayActivity[]
  /** Every entry, oldest first (capped at `maxEvents`, newest kept). */
  events: AuditEntry[]
  /** Entries left out of `events` by the cap. */
  eventsOmitted: number
  totals: {versions: number; signatures: number; approvals: number; loads: number; rollbacks: number; emergencies: number; overrides: number; refusals: number}
}

export interface BuildReportOptions {
  log: string
  chain: ReportChain
  since?: string
  generatedAt?: Date
  /** Longest list of entries rendered in full (default 20,000). */
  maxEvents?: number
}

const TIER_ORDER = ['org', 'team', 'project']
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)

export function isEmergency(e: AuditEntry): boolean {
  return e.event === 'policy.emergency' || e.emergency === true
}

export function isOverride(e: AuditEntry): boolean {
  return e.event === 'policy.lock.refused' || /(^|\.)override(\.|$)/.test(e.event)
}

/** `host/repo` of `host/repo[:tag][@digest]` (a `:` after the last `/` starts the tag). */
export function repositoryOf(ref: string): string {
  const noDigest = ref.split('@')[0]!
  const slash = noDigest.lastIndexOf('/')
  const colon = noDigest.lastIndexOf(':')
  return colon > slash ? noDigest.slice(0, colon) : noDigest
}

function day(time: string): string {
  const t = Date.parse(time)
  return Number.isNaN(t) ? time.slice(0, 10) : new Date(t).toISOString().slice(0, 10)
}

export function buildAuditReport(entries: AuditEntry[], options: BuildReportOptions): AuditReportModel {
  const versions = new Map<string, VersionRow>()
  const row = (digest: string, e: {ref?: string | null; version?: string | null; time: string}, tier?: string): VersionRow => {
    let r = versions.get(digest)
    if (!r) {
      r = {tier: tier ?? 'unknown', digest, ref: e.ref ?? null, version: e.version ?? null, firstSeen: e.time, signatures: [], approvals: [], loads: 0, flags: []}
      versions.set(digest, r)
    }
    if (tier && r.tier === 'unknown') r.tier = tier
    r.ref ??= e.ref ?? null
    r.version ??= e.version ?? null
    return r
  }
  const flag = (r: VersionRow, f: string) => {
    if (!r.flags.includes(f)) r.flags.push(f)
  }
  const counts = new Map<string, number>()
  const days = new Map<string, DayActivity>()
  const dayOf = (time: string): DayActivity => {
    const d = day(time)
    let a = days.get(d)
    if (!a) {
      a = {day: d, loads: 0, loadsBySource: {}, taintedLoads: 0, overrides: 0, refusals: 0, emergencies: 0, rollbacks: 0}
      days.set(d, a)
    }
    return a
  }
  const rollbacks: AuditEntry[] = []
  const emergencies: AuditEntry[] = []
  const overrides: AuditEntry[] = []
  const refusals: AuditEntry[] = []
  const transfers: AuditEntry[] = []
  let signatures = 0
  let approvals = 0
  let loads = 0

  for (const e of entries) {
    counts.set(e.event, (counts.get(e.event) ?? 0) + 1)
    const who = {actor: e.actor, time: e.time, seq: e.seq}
    const digest = str(e.digest)
    const tier = str(e.tier)
    switch (e.event) {
      case 'policy.pushed': {
        if (!digest) break
        const r = row(digest, e, tier)
        r.pushed ??= {...who, tags: Array.isArray(e.tags) ? e.tags.filter((t): t is string => typeof t === 'string') : []}
        break
      }
      case 'policy.signed': {
        signatures++
        if (digest) row(digest, e, tier).signatures.push({...who, keyId: str(e.keyId) ?? '?'})
        break
      }
      case 'policy.approved': {
        approvals++
        if (!digest) break
        const a: VersionApproval = {...who, keyId: str(e.keyId) ?? '?', role: str(e.role) ?? '?'}
        for (const k of ['note', 'ticket', 'incident'] as const) if (str(e[k])) a[k] = str(e[k])
        row(digest, e, tier).approvals.push(a)
        break
      }
      case 'policy.loaded': {
        loads++
        const a = dayOf(e.time)
        a.loads++
        const source = str(e.source) ?? 'unknown'
        a.loadsBySource[source] = (a.loadsBySource[source] ?? 0) + 1
        if (e.tainted === true) a.taintedLoads++
        for (const t of Array.isArray(e.tiers) ? (e.tiers as Array<Record<string, unknown>>) : []) {
          const d = str(t?.digest)
          if (!d) continue
          const r = row(d, {ref: str(t.ref) ?? null, version: str(t.version) ?? null, time: e.time}, str(t.tier))
          r.loads++
          r.lastLoaded = e.time
        }
        break
      }
      case 'policy.rollback': {
        rollbacks.push(e)
        dayOf(e.time).rollbacks++
        if (digest) flag(row(digest, e, tier), 'rollback')
        break
      }
      case 'policy.refused': {
        refusals.push(e)
        dayOf(e.time).refusals++
        if (digest) flag(row(digest, e, tier), 'refused')
        break
      }
      case 'policy.exported':
      case 'policy.imported':
        transfers.push(e)
        break
      default:
        break
    }
    if (isEmergency(e)) {
      emergencies.push(e)
      dayOf(e.time).emergencies++
      if (digest && e.event !== 'policy.loaded') flag(row(digest, e, tier), 'emergency')
    }
    if (isOverride(e)) {
      overrides.push(e)
      dayOf(e.time).overrides++
    }
  }

  // Events without a tier (an emergency change, a signature seen alone) take the tier of other
  // versions of the same repository.
  const repoTier = new Map<string, string>()
  for (const r of versions.values()) if (r.tier !== 'unknown' && r.ref) repoTier.set(repositoryOf(r.ref), r.tier)
  for (const r of versions.values()) if (r.tier === 'unknown' && r.ref) r.tier = repoTier.get(repositoryOf(r.ref)) ?? 'unknown'

  const tiers = new Map<string, VersionRow[]>()
  for (const r of versions.values()) {
    const list = tiers.get(r.tier) ?? []
    list.push(r)
    tiers.set(r.tier, list)
  }
  const rank = (t: string) => (TIER_ORDER.includes(t) ? TIER_ORDER.indexOf(t) : TIER_ORDER.length)
  const max = options.maxEvents ?? 20_000
  return {
    log: options.log,
    generatedAt: (options.generatedAt ?? new Date()).toISOString(),
    ...(options.since ? {since: options.since} : {}),
    chain: options.chain,
    entries: entries.length,
    ...(entries.length ? {first: entries[0]!.time, last: entries.at(-1)!.time} : {}),
    eventCounts: [...counts].map(([event, count]) => ({event, count})).sort((a, b) => (a.event < b.event ? -1 : a.event > b.event ? 1 : 0)),
    tiers: [...tiers]
      .sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
      .map(([tier, list]) => ({tier, versions: list.sort((x, y) => Date.parse(x.firstSeen) - Date.parse(y.firstSeen))})),
    rollbacks,
    emergencies,
    overrides,
    refusals,
    transfers,
    days: [...days.values()].sort((a, b) => (a.day < b.day ? -1 : 1)),
    events: entries.slice(-max),
    eventsOmitted: Math.max(0, entries.length - max),
    totals: {
      versions: versions.size,
      signatures,
      approvals,
      loads,
      rollbacks: rollbacks.length,
      emergencies: emergencies.length,
      overrides: overrides.length,
      refusals: refusals.length,
    },
  }
}

/**
 * Reading the audit log: filters for `aibox audit log` and the JSONL export for a SIEM.
 * Queries read entries as they are; whether the log is intact is `verifyChain`'s job (the
 * commands run both and warn when the chain is broken).
 */
import fsp from 'node:fs/promises'
import path from 'node:path'

import {InputError} from '../errors.js'
import {writeFileAtomic} from '../util/atomic.js'
import {fsError, isErrno} from '../util/fs-errors.js'
import {type AuditEntry, isRfc3339, orderEntry, parseLine} from './entry.js'
import {AUDIT_EVENT_NAMES} from './events.js'

export interface AuditFilter {
  /** A duration back from now (`30m`, `24h`, `7d`, `2w`, `1h30m`) or an RFC 3339 date (`2025-06-01`) or date-time. */
  since?: string
  /** Event names, or prefixes ending in `.*` (`policy.*`); an entry matching any is kept. */
  events?: string[]
  /** Keep entries whose `ref` (or one of its loaded tiers' refs) equals this. */
  ref?: string
  /** Keep only the newest N entries (after the other filters), still oldest first. */
  limit?: number
  /** Clock for `since` durations; default now. */
  now?: () => Date
}

export interface AuditReadResult {
  log: string
  exists: boolean
  /** Entries in file order (malformed lines skipped). */
  entries: AuditEntry[]
  /** Complete lines that could not be read as entries. */
  skipped: number
  /** True when the file ends with an incomplete line (not returned). */
  torn: boolean
}

const UNIT_MS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000}

function sinceError(value: string): InputError {
  return new InputError('INVALID_SINCE', `invalid --since "${value}": expected a duration (30m, 24h, 7d, 2w, 1h30m) or an RFC 3339 date (2025-06-01, 2025-06-01T12:00:00Z)`, {
    suggestions: ['aibox audit log --since 7d', 'aibox audit log --since 2025-06-01'],
  })
}

/** Resolves a `since` value to the earliest time to keep. */
export function parseSince(value: string, now: Date = new Date()): Date {
  const v = value.trim()
  if (/^(\d+(ms|s|m|h|d|w))+$/.test(v)) {
    let ms = 0
    for (const [, n, unit] of v.matchAll(/(\d+)(ms|s|m|h|d|w)/g)) ms += Number(n) * UNIT_MS[unit!]!
    if (!Number.isSafeInteger(ms)) throw sinceError(value)
    return new Date(now.getTime() - ms)
  }
  let iso: string | undefined
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) iso = `${v}T00:00:00Z`
  else if (isRfc3339(v)) iso = v
  if (iso) {
    const t = Date.parse(iso)
    if (!Number.isNaN(t) && checkDay(iso)) return new Date(t)
  }
  throw sinceError(value)
}

/** Date.parse rolls 2025-02-30 over to March: a date must round-trip to itself. */
function checkDay(iso: string): boolean {
  const [y, m, d] = iso.slice(0, 10).split('-').map(Number) as [number, number, number]
  const dt = new Date(Date.UTC(y, m - 1, d))
  return dt.getUTCFullYear() === y && dt.getUTCMonth() === m - 1 && dt.getUTCDate() === d
}

const PATTERN_RE = /^(\*|[a-z][a-z0-9-]*(\.[a-z0-9-]+)*(\.\*)?)$/

/** A predicate for event names; throws INVALID_EVENT_FILTER for a pattern that can match nothing. */
export function eventMatcher(patterns: string[]): (event: string) => boolean {
  for (const p of patterns) {
    if (!PATTERN_RE.test(p)) {
      throw new InputError('INVALID_EVENT_FILTER', `invalid --event "${p}": expected an event name (policy.loaded) or a prefix ending in .* (policy.*)`, {
        suggestions: [`known events: ${AUDIT_EVENT_NAMES.join(', ')}`],
      })
    }
  }
  if (patterns.length === 0 || patterns.includes('*')) return () => true
  const exact = new Set(patterns.filter((p) => !p.endsWith('.*')))
  const prefixes = patterns.filter((p) => p.endsWith('.*')).map((p) => p.slice(0, -1))
  return (event) => exact.has(event) || prefixes.some((pre) => event.startsWith(pre))
}

/** Exact names in `patterns` that aibox never writes (likely typos), for a warning. */
export function unknownEventNames(patterns: string[]): string[] {
  const known = new Set<string>(AUDIT_EVENT_NAMES)
  return patterns.filter((p) => p !== '*' && !p.endsWith('.*') && !known.has(p))
}

/** Reads every entry of `log`; a missing log reads as empty (`exists: false`). */
export async function readAuditLog(log: string): Promise<AuditReadResult> {
  const file = path.resolve(log)
  let buf: Buffer
  try {
    buf = await fsp.readFile(file)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return {log: file, exists: false, entries: [], skipped: 0, torn: false}
    throw fsError(err, 'read the audit log', file)
  }
  const entries: AuditEntry[] = []
  let skipped = 0
  let start = 0
  let torn = false
  while (start < buf.length) {
    const nl = buf.indexOf(0x0a, start)
    if (nl < 0) {
      torn = true
      break
    }
    const parsed = parseLine(buf.subarray(start, nl))
    if (parsed.problem || !parsed.entry) skipped++
    else entries.push(parsed.entry)
    start = nl + 1
  }
  return {log: file, exists: true, entries, skipped, torn}
}

/** Applies `filter` to entries in file order. Validates the filter first (InputError, exit 1). */
export function filterEntries(entries: AuditEntry[], filter: AuditFilter = {}): AuditEntry[] {
  const since = filter.since === undefined ? undefined : parseSince(filter.since, (filter.now ?? (() => new Date()))()).getTime()
  const matches = eventMatcher(filter.events ?? [])
  if (filter.limit !== undefined && (!Number.isSafeInteger(filter.limit) || filter.limit < 1)) {
    throw new InputError('INVALID_LIMIT', `invalid --limit ${filter.limit}: expected a positive integer`)
  }
  const out = entries.filter((e) => {
    if (since !== undefined && !(Date.parse(e.time) >= since)) return false
    if (!matches(e.event)) return false
    if (filter.ref !== undefined) {
      const tiers = Array.isArray(e.tiers) ? (e.tiers as Array<{ref?: unknown}>) : []
      if (e.ref !== filter.ref && !tiers.some((t) => t?.ref === filter.ref)) return false
    }
    return true
  })
  return filter.limit === undefined ? out : out.slice(-filter.limit)
}

/** Reads and filters `log` in one call. */
export async function queryAudit(log: string, filter: AuditFilter = {}): Promise<AuditReadResult> {
  // Validate the filter before touching the file, so bad input fails the same way with or without a log.
  filterEntries([], filter)
  const read = await readAuditLog(log)
  return {...read, entries: filterEntries(read.entries, filter)}
}

export interface ExportOptions extends AuditFilter {
  /** Keep `prev` (default true); false strips it, for SIEMs that do not verify the chain. `seq` is kept as an ordered, unique event id. */
  chain?: boolean
  /** Write the JSONL here atomically; otherwise only return it. */
  output?: string
}

export interface ExportResult {
  log: string
  exists: boolean
  output: string | null
  entries: number
  chain: boolean
  /** The JSONL text (one entry per line, stable key order). */
  text: string
}

/** One export line: the entry with keys in the fixed order of formats.md (extras sorted). */
export function exportLine(entry: AuditEntry, chain = true): string {
  const e: Record<string, unknown> = {...entry}
  if (!chain) delete e.prev
  return JSON.stringify(orderEntry(e))
}

/** Exports the (filtered) log as JSONL for a SIEM, to `output` (atomically) or as text. */
export async function exportAudit(log: string, options: ExportOptions = {}): Promise<ExportResult> {
  const q = await queryAudit(log, options)
  const chain = options.chain ?? true
  const text = q.entries.map((e) => `${exportLine(e, chain)}\n`).join('')
  const output = options.output ? path.resolve(options.output) : null
  if (output) await writeFileAtomic(output, text)
  return {log: q.log, exists: q.exists, output, entries: q.entries.length, chain, text}
}

/**
 * The byte-level format of the audit log (formats.md "Audit log") and its anchor file.
 *
 * - One JSON object per line, `\n`-terminated, UTF-8, no other whitespace. Keys in a fixed
 *   order: seq, time, event, actor, ref, digest, version, from?, reason?, prev, then the
 *   event's own fields sorted by name (nested objects sorted too).
 * - `prev` is `sha256:<hex>` of the previous line's exact bytes, without its `\n`. The first
 *   line's `prev` is the genesis value `sha256:` + 64 zeros (`GENESIS_PREV`).
 * - `seq` counts from 1 with no gaps; `time` is RFC 3339 UTC with milliseconds.
 *
 * A chain alone cannot show that its last lines were deleted, so every append also updates
 * `<log>.head` (written atomically): the last committed `{seq, hash, size}`, the hash of line 1
 * (`first`), and the lines an append is about to write (`pending`), so that a crash between
 * the append and the head update is told apart from a line added by something else.
 */
import {isUtf8} from 'node:buffer'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'

import {fsError, isErrno} from '../util/fs-errors.js'
import {writeFileAtomicSync} from '../util/atomic.js'
import type {AuditSubject} from './events.js'
import {shownValue} from '../util/text.js'

export const GENESIS_PREV = `sha256:${'0'.repeat(64)}`
/** Longest line we write; longer input is refused (an audit event is a few hundred bytes). */
export const MAX_LINE_BYTES = 64 * 1024
export const HEAD_VERSION = 1

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/
/** RFC 3339 date-time, UTC or with an offset. */
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/
const EVENT_NAME_RE = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/

/** The fields every line has (the subject's, plus the chain's); event-specific fields follow. */
export interface AuditEntryBase extends AuditSubject {
  seq: number
  time: string
  event: string
  actor: string
  prev: string
}

export type AuditEntry = AuditEntryBase & {[field: string]: unknown}

export const BASE_KEYS = ['seq', 'time', 'event', 'actor', 'ref', 'digest', 'version', 'from', 'reason', 'prev'] as const
/** The fields that make the hash chain; `aibox audit export --no-chain` drops `prev`. */
export const CHAIN_KEYS = ['prev'] as const

export function isSha256(s: unknown): s is string {
  return typeof s === 'string' && DIGEST_RE.test(s)
}

export function isRfc3339(s: unknown): s is string {
  return typeof s === 'string' && RFC3339_RE.test(s) && !Number.isNaN(Date.parse(s))
}

export function isEventName(s: unknown): s is string {
  return typeof s === 'string' && EVENT_NAME_RE.test(s)
}

/** `sha256:<hex>` of a line's exact bytes (without the newline). */
export function lineHash(line: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(line).digest('hex')}`
}

// Objects built here have no prototype, so a hostile "__proto__" key read from a log line is
// kept as an ordinary key instead of silently replacing the object's prototype.
function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep)
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = Object.create(null)
    for (const k of Object.keys(v).sort()) out[k] = sortDeep((v as Record<string, unknown>)[k])
    return out
  }
  return v
}

/** The entry with its keys in the canonical order (base keys first, then the rest sorted, deeply). */
export function orderEntry(entry: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null)
  for (const k of BASE_KEYS) if (entry[k] !== undefined) out[k] = entry[k]
  const base = new Set<string>(BASE_KEYS)
  for (const k of Object.keys(entry).sort()) if (!base.has(k) && entry[k] !== undefined) out[k] = sortDeep(entry[k])
  return out
}

/** The line for an entry (without `\n`). */
export function serializeEntry(entry: Record<string, unknown>): string {
  return JSON.stringify(orderEntry(entry))
}

/** Why a parsed line is not a well-formed entry, or undefined when it is. */
export function entryShapeProblem(v: unknown): string | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return 'not a JSON object'
  const e = v as Record<string, unknown>
  if (!Number.isSafeInteger(e.seq) || (e.seq as number) < 1) return '"seq" is not a positive integer'
  if (!isRfc3339(e.time)) return '"time" is not an RFC 3339 date-time'
  if (!isEventName(e.event)) return '"event" is not an event name'
  if (typeof e.actor !== 'string' || e.actor === '') return '"actor" is missing'
  for (const k of ['ref', 'version'] as const) if (e[k] !== null && typeof e[k] !== 'string') return `"${k}" is not a string or null`
  if (e.digest !== null && !isSha256(e.digest)) return '"digest" is not sha256:<hex> or null'
  for (const k of ['from', 'reason'] as const) if (e[k] !== undefined && typeof e[k] !== 'string') return `"${k}" is not a string`
  if (!isSha256(e.prev)) return '"prev" is not sha256:<hex>'
  return undefined
}

/** Parses one line; `{problem}` when it is not JSON or not an entry. */
export function parseLine(line: Uint8Array | string): {entry: AuditEntry; problem?: undefined} | {entry?: AuditEntry; problem: string} {
  // aibox never writes such lines: an oversized or non-UTF-8 line was put there by someone else
  // (decoding would silently replace the bad bytes, and a huge line only costs memory).
  const size = typeof line === 'string' ? Buffer.byteLength(line) : line.byteLength
  if (size > MAX_LINE_BYTES) return {problem: `line of ${size} bytes, longer than any entry aibox writes (${MAX_LINE_BYTES})`}
  if (typeof line !== 'string' && !isUtf8(line)) return {problem: 'not valid UTF-8'}
  let v: unknown
  try {
    v = JSON.parse(typeof line === 'string' ? line : Buffer.from(line).toString('utf8'))
  } catch (err) {
    return {problem: `not valid JSON (${(err as Error).message})`}
  }
  const problem = entryShapeProblem(v)
  if (problem) {
    const seq = (v as {seq?: unknown})?.seq
    return Number.isSafeInteger(seq) ? {problem, entry: v as AuditEntry} : {problem}
  }
  return {entry: v as AuditEntry}
}

/** The default actor: `AIBOX_ACTOR`, else `user@host`. */
export function defaultActor(env: Record<string, string | undefined> = process.env): string {
  if (env.AIBOX_ACTOR) return env.AIBOX_ACTOR
  let user: string | undefined
  try {
    user = os.userInfo().username
  } catch {
    // no passwd entry (some containers): fall back to the environment
  }
  user ||= env.USER || env.LOGNAME || `uid-${process.getuid?.() ?? 'unknown'}`
  return `${user}@${os.hostname()}`
}

// ---- the anchor file -------------------------------------------------------------------

/** A line the writer is about to append: accepted beyond the committed end only if it matches. */
export interface PendingLine {
  seq: number
  hash: string
  /** Log size in bytes once this line is written. */
  size: number
}

export interface AuditHead {
  v: typeof HEAD_VERSION
  /** Last committed seq (0: empty log). */
  seq: number
  /** Hash of the line with that seq (GENESIS_PREV for 0). */
  hash: string
  /** Log size in bytes at the end of that line. */
  size: number
  /** Hash of line 1, or null while the log is empty: shows a whole-file replacement. */
  first: string | null
  /** Lines being appended right now (empty when no append is in progress). */
  pending: PendingLine[]
  /** When the head was written (for people; not checked). */
  time: string
}

export function headPathFor(log: string): string {
  return `${log}.head`
}

export type HeadState = {state: 'missing'} | {state: 'malformed'; problem: string} | {state: 'ok'; head: AuditHead}

function headProblem(v: unknown): string | undefined {
  if (!v || typeof v !== 'object') return 'not a JSON object'
  const h = v as Record<string, unknown>
  if (h.v !== HEAD_VERSION) return `unsupported version ${shownValue(h.v)}`
  if (!Number.isSafeInteger(h.seq) || (h.seq as number) < 0) return '"seq" is not a non-negative integer'
  if (!isSha256(h.hash)) return '"hash" is not sha256:<hex>'
  if (!Number.isSafeInteger(h.size) || (h.size as number) < 0) return '"size" is not a non-negative integer'
  if (h.first !== null && !isSha256(h.first)) return '"first" is not sha256:<hex> or null'
  if (!Array.isArray(h.pending)) return '"pending" is not an array'
  for (const p of h.pending as unknown[]) {
    const q = p as Record<string, unknown>
    if (!q || !Number.isSafeInteger(q.seq) || !isSha256(q.hash) || !Number.isSafeInteger(q.size)) return '"pending" has a bad entry'
  }
  return undefined
}

export function readHead(file: string): HeadState {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return {state: 'missing'}
    throw fsError(err, 'read the audit anchor', file)
  }
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return {state: 'malformed', problem: 'not valid JSON'}
  }
  const problem = headProblem(v)
  return problem ? {state: 'malformed', problem} : {state: 'ok', head: v as AuditHead}
}

export function writeHead(file: string, head: AuditHead): void {
  writeFileAtomicSync(file, `${JSON.stringify(head)}\n`, {mode: 0o600})
}

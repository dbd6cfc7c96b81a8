/**
 * Appending to the audit log: serialised across processes by a file lock, durable (fsync
 * before returning), crash-safe, and never destroying evidence of tampering.
 *
 * One append, under `<log>.lock`:
 *  1. Repair an incomplete last line (an append cut by a crash or power loss). If those bytes
 *     are a whole entry that continues the chain (only its `\n` is missing), the newline is
 *     added. Otherwise they are moved, base64-encoded, to `<log>.quarantine`, the log is
 *     truncated to its last complete line, and an `audit.repaired` event records the move.
 *     Only bytes after the last `\n` are ever touched: a complete line is never dropped.
 *  2. Check that the log still matches its anchor `<log>.head`. If it does not (lines
 *     deleted, edited, or added by something else), the event is still appended (a start
 *     must not fail because someone edited a log) but the anchor is left as it is, so that
 *     `aibox audit verify` keeps reporting the tampering; the result carries a warning.
 *  3. Record the lines about to be written in the anchor (`pending`), append them with one
 *     write, fsync, then commit the anchor. A crash at any point leaves a state that
 *     `verifyChain` accepts, or a torn tail that step 1 of the next append repairs.
 */
import fs from 'node:fs'
import path from 'node:path'

import {defaultAuditLogPath, type PathEnv} from '../config/paths.js'
import {InputError, type Problem, ValidationError} from '../errors.js'
import {appendDurableSync} from '../util/atomic.js'
import {fsError} from '../util/fs-errors.js'
import {withLock} from '../util/lock.js'
import {
  type AuditEntry,
  type AuditHead,
  GENESIS_PREV,
  HEAD_VERSION,
  type HeadState,
  MAX_LINE_BYTES,
  type PendingLine,
  defaultActor,
  headPathFor,
  isSha256,
  lineHash,
  parseLine,
  readHead,
  serializeEntry,
  writeHead,
} from './entry.js'
import {AUDIT_EVENTS, type AuditEventFields, type AuditEventName, type FieldType, isAuditEventName} from './events.js'

export interface AuditOptions {
  /** The log file; default from `defaultAuditLogPath()` (AIBOX_AUDIT_LOG, XDG_STATE_HOME, ~/.local/state). */
  log?: string
  /** Clock, for tests; default `() => new Date()`. */
  now?: () => Date
  /** Who did it; default AIBOX_ACTOR, else user@host. */
  actor?: string
  /** Environment for the defaults above; default process.env. */
  env?: PathEnv
  /** How long to wait for another process's append; default 60 s (then TransientError LOCK_TIMEOUT, exit 4). */
  lockTimeoutMs?: number
}

/** One event to append: the compiler checks the fields against the event name. */
export type AuditEventInput = {[E in AuditEventName]: {event: E; fields: AuditEventFields[E]}}[AuditEventName]

export interface TailRepair {
  /** `completed`: a whole entry missing only its newline got one; `quarantined`: torn bytes were moved out. */
  action: 'completed' | 'quarantined'
  offset: number
  bytes: number
  sha256: string
  quarantine?: string
}

export interface AppendResult {
  log: string
  /** The entries written, in order (an `audit.repaired` entry first when a torn tail was quarantined). */
  entries: AuditEntry[]
  /** False when the log did not match its anchor: the entries were appended, the anchor left as evidence. */
  anchored: boolean
  repaired?: TailRepair
  /** Human-readable notes for stderr (repair done, anchor mismatch). */
  warnings: string[]
}

/** Extension `.quarantine`: where torn bytes from interrupted appends are kept. */
export function quarantinePathFor(log: string): string {
  return `${log}.quarantine`
}

// ---- field validation ------------------------------------------------------------------

const RESERVED = new Set(['seq', 'time', 'event', 'actor', 'prev'])
const TIER_NAMES = ['org', 'team', 'project']

function typeProblem(type: FieldType, v: unknown): string | undefined {
  if (Array.isArray(type)) return typeof v === 'string' && type.includes(v) ? undefined : `must be one of ${type.join(', ')}`
  switch (type) {
    case 'string':
      return typeof v === 'string' ? undefined : 'must be a string'
    case 'nullable-string':
      return v === null || typeof v === 'string' ? undefined : 'must be a string or null'
    case 'digest':
      return isSha256(v) ? undefined : 'must be sha256:<64 hex>'
    case 'nullable-digest':
      return v === null || isSha256(v) ? undefined : 'must be sha256:<64 hex> or null'
    case 'integer':
      return Number.isSafeInteger(v) && (v as number) >= 0 ? undefined : 'must be a non-negative integer'
    case 'boolean':
      return typeof v === 'boolean' ? undefined : 'must be true or false'
    case 'string[]':
      return Array.isArray(v) && v.every((x) => typeof x === 'string') ? undefined : 'must be an array of strings'
    case 'tiers': {
      if (!Array.isArray(v)) return 'must be an array of tiers'
      for (const [i, t] of v.entries()) {
        const o = t as Record<string, unknown>
        if (!o || typeof o !== 'object') return `[${i}] must be an object`
        const extra = Object.keys(o).filter((k) => !['tier', 'ref', 'digest', 'version', 'signers', 'emergency'].includes(k))
        if (extra.length > 0) return `[${i}] has unknown field(s) ${extra.join(', ')}`
        if (!TIER_NAMES.includes(o.tier as string)) return `[${i}].tier must be one of ${TIER_NAMES.join(', ')}`
        if (typeof o.ref !== 'string') return `[${i}].ref must be a string`
        if (!isSha256(o.digest)) return `[${i}].digest must be sha256:<64 hex>`
        if (o.version !== null && typeof o.version !== 'string') return `[${i}].version must be a string or null`
        if (!Array.isArray(o.signers) || !o.signers.every((s) => typeof s === 'string')) return `[${i}].signers must be an array of strings`
        if (o.emergency !== undefined && typeof o.emergency !== 'string') return `[${i}].emergency must be a string`
      }
      return undefined
    }
  }
  return 'has an unknown type'
}

/**
 * Checks an event's fields against `AUDIT_EVENTS` (for JavaScript callers and data that came
 * from outside); collects every problem and throws one ValidationError AUDIT_EVENT_INVALID.
 */
export function validateAuditEvent(event: string, fields: Record<string, unknown>): void {
  const problems: Problem[] = []
  if (!isAuditEventName(event)) {
    throw new InputError('AUDIT_EVENT_UNKNOWN', `unknown audit event "${event}"`, {
      suggestions: [`use one of: ${Object.keys(AUDIT_EVENTS).join(', ')}`],
    })
  }
  const spec = AUDIT_EVENTS[event].fields
  const subject: Record<string, FieldType> = {ref: 'nullable-string', digest: 'nullable-digest', version: 'nullable-string'}
  for (const [k, type] of Object.entries(subject)) {
    if (!(k in fields)) problems.push({pointer: `/${k}`, message: 'is required (null when there is none)'})
    else {
      const p = typeProblem(type, fields[k])
      if (p) problems.push({pointer: `/${k}`, message: p})
    }
  }
  for (const [k, s] of Object.entries(spec)) {
    if (fields[k] === undefined) {
      if (s.required) problems.push({pointer: `/${k}`, message: 'is required'})
      continue
    }
    const p = typeProblem(s.type, fields[k])
    if (p) problems.push({pointer: `/${k}`, message: p})
  }
  for (const k of ['from', 'reason', 'tenant']) {
    if (!(k in spec) && fields[k] !== undefined && typeof fields[k] !== 'string') problems.push({pointer: `/${k}`, message: 'must be a string'})
  }
  for (const k of Object.keys(fields)) {
    if (RESERVED.has(k)) problems.push({pointer: `/${k}`, message: 'is set by the audit log itself'})
    else if (!(k in subject) && !(k in spec) && k !== 'from' && k !== 'reason' && k !== 'tenant' && fields[k] !== undefined) {
      problems.push({pointer: `/${k}`, message: `is not a field of ${event}`})
    }
  }
  if (problems.length > 0) throw new ValidationError('AUDIT_EVENT_INVALID', `invalid ${event} audit event`, problems)
}

// ---- byte-level helpers on an open log -------------------------------------------------

const CHUNK = 64 * 1024

function pread(fd: number, start: number, end: number): Buffer {
  const buf = Buffer.alloc(end - start)
  let off = 0
  while (off < buf.length) {
    const n = fs.readSync(fd, buf, off, buf.length - off, start + off)
    if (n === 0) break
    off += n
  }
  return buf.subarray(0, off)
}

/** Index of the last `\n` before `pos`, or -1. */
function lastNewlineBefore(fd: number, pos: number): number {
  let end = pos
  while (end > 0) {
    const start = Math.max(0, end - CHUNK)
    const i = pread(fd, start, end).lastIndexOf(0x0a)
    if (i >= 0) return start + i
    end = start
  }
  return -1
}

/** The complete line ending with the `\n` at index `nl` (without it). */
function lineEndingAt(fd: number, nl: number): Buffer {
  return pread(fd, lastNewlineBefore(fd, nl) + 1, nl)
}

function firstLine(fd: number, size: number): Buffer | undefined {
  for (let end = Math.min(size, CHUNK); ; end = Math.min(size, end * 2)) {
    const buf = pread(fd, 0, end)
    const i = buf.indexOf(0x0a)
    if (i >= 0) return buf.subarray(0, i)
    if (end >= size) return undefined
  }
}

function countNewlines(fd: number, size: number): number {
  let n = 0
  for (let pos = 0; pos < size; pos += CHUNK) {
    const buf = pread(fd, pos, Math.min(size, pos + CHUNK))
    for (const b of buf) if (b === 0x0a) n++
  }
  return n
}

/** Why the log no longer matches its anchor, or undefined when it does (see module comment, step 2). */
function anchorProblem(fd: number, size: number, hs: HeadState, headFile: string): string | undefined {
  if (hs.state === 'missing') return size === 0 ? undefined : `its anchor ${headFile} is missing`
  if (hs.state === 'malformed') return `its anchor ${headFile} is malformed (${hs.problem})`
  const head = hs.head
  if (head.size > size) return `it is shorter (${size} bytes) than its anchor records (${head.size} bytes): lines were deleted`
  if (head.size === 0) {
    if (head.seq !== 0) return `its anchor records seq ${head.seq} at size 0`
  } else {
    if (pread(fd, head.size - 1, head.size)[0] !== 0x0a) return `byte ${head.size} is not the end of a line as its anchor records`
    if (lineHash(lineEndingAt(fd, head.size - 1)) !== head.hash) return `the line its anchor records (seq ${head.seq}) was changed`
  }
  if (size > head.size) {
    if (size - head.size > head.pending.length * MAX_LINE_BYTES) return 'it has lines after its anchored end that aibox did not write'
    const extra = pread(fd, head.size, size)
    let start = 0
    let offset = head.size
    for (let i = 0; start < extra.length; i++) {
      const nl = extra.indexOf(0x0a, start)
      const line = extra.subarray(start, nl)
      offset += line.length + 1
      const want = head.pending[i]
      if (!want || want.hash !== lineHash(line) || want.size !== offset) return 'it has lines after its anchored end that aibox did not write'
      start = nl + 1
    }
  }
  return undefined
}

// ---- append ----------------------------------------------------------------------------

/**
 * Appends one event. The compiler checks `fields` against `event`; at run time the same
 * table is checked again (ValidationError AUDIT_EVENT_INVALID, exit 1). Throws TransientError
 * LOCK_TIMEOUT (exit 4) when another process holds the log for longer than `lockTimeoutMs`.
 */
export async function appendAudit<E extends AuditEventName>(
  event: E,
  fields: AuditEventFields[E],
  options: AuditOptions = {},
): Promise<AppendResult & {entry: AuditEntry}> {
  const result = await appendAuditEvents([{event, fields} as AuditEventInput], options)
  return {...result, entry: result.entries.at(-1)!}
}

/** Appends several events as one durable write under one lock (e.g. `policy.override` then `policy.loaded`). */
export async function appendAuditEvents(events: AuditEventInput[], options: AuditOptions = {}): Promise<AppendResult> {
  const env = options.env ?? process.env
  const log = path.resolve(options.log ?? defaultAuditLogPath(env))
  const now = options.now ?? (() => new Date())
  const actor = options.actor ?? defaultActor(env)
  if (!actor) throw new InputError('AUDIT_ACTOR_EMPTY', 'the audit actor is empty', {suggestions: ['set AIBOX_ACTOR to a name']})
  for (const e of events) validateAuditEvent(e.event, e.fields as unknown as Record<string, unknown>)
  try {
    fs.mkdirSync(path.dirname(log), {recursive: true, mode: 0o700})
  } catch (err) {
    throw fsError(err, 'create the directory of the audit log', log)
  }
  return withLock(log, () => appendLocked(log, events, now, actor), {
    timeoutMs: options.lockTimeoutMs,
    purpose: 'audit append',
  })
}

function appendLocked(log: string, inputs: AuditEventInput[], now: () => Date, actor: string): AppendResult {
  const headFile = headPathFor(log)
  const warnings: string[] = []
  let fd: number
  try {
    fd = fs.openSync(log, 'a+', 0o600)
  } catch (err) {
    throw fsError(err, 'open the audit log', log)
  }
  try {
    // One clock reading per append: every entry of the batch and the anchor share it.
    const time = now().toISOString()
    let size = fs.fstatSync(fd).size
    const hs = readHead(headFile)
    const todo: AuditEventInput[] = [...inputs]

    // 1. An incomplete last line.
    let nl = lastNewlineBefore(fd, size)
    let lastLine = nl >= 0 ? lineEndingAt(fd, nl) : undefined
    let repaired: TailRepair | undefined
    if (size > nl + 1) {
      const offset = nl + 1
      const torn = pread(fd, offset, size)
      const sha256 = lineHash(torn)
      const parsed = torn.length <= MAX_LINE_BYTES ? parseLine(torn) : undefined
      const lastSeq = lastLine ? parseLine(lastLine).entry?.seq : 0
      const whole = parsed && !parsed.problem ? parsed.entry : undefined
      if (whole && lastSeq !== undefined && whole.seq === lastSeq + 1 && whole.prev === (lastLine ? lineHash(lastLine) : GENESIS_PREV)) {
        fs.writeSync(fd, '\n')
        fs.fsyncSync(fd)
        size += 1
        nl = size - 1
        lastLine = torn
        repaired = {action: 'completed', offset, bytes: torn.length, sha256}
        warnings.push(`the last line of ${log} was complete but lacked its newline (an interrupted append): completed it`)
      } else {
        const quarantine = quarantinePathFor(log)
        const record = {time, log, offset, bytes: torn.length, sha256, data: torn.toString('base64')}
        appendDurableSync(quarantine, `${JSON.stringify(record)}\n`, {mode: 0o600})
        fs.ftruncateSync(fd, offset)
        fs.fsyncSync(fd)
        size = offset
        repaired = {action: 'quarantined', offset, bytes: torn.length, sha256, quarantine}
        todo.unshift({
          event: 'audit.repaired',
          fields: {ref: null, digest: null, version: null, reason: 'torn-tail', quarantine, bytes: torn.length, sha256},
        })
        warnings.push(`${log} ended with an incomplete line (${torn.length} bytes, an interrupted append): moved it to ${quarantine}`)
      }
    }

    // 2. The anchor.
    const problem = anchorProblem(fd, size, hs, headFile)
    if (problem) {
      warnings.push(
        `audit log ${log} does not match its anchor: ${problem}. The event was appended, but the anchor was left as it is; run "aibox audit verify"`,
      )
    }

    // 3. Build the lines.
    let seq = 0
    if (lastLine) {
      const p = parseLine(lastLine)
      seq = p.entry?.seq ?? countNewlines(fd, size)
    }
    let prev = lastLine ? lineHash(lastLine) : GENESIS_PREV
    const committed = {seq, hash: prev, size}
    const entries: AuditEntry[] = []
    const pending: PendingLine[] = []
    const parts: string[] = []
    let offset = size
    for (const input of todo) {
      seq++
      const line = serializeEntry({seq, time, event: input.event, actor, ...input.fields, prev})
      const bytes = Buffer.byteLength(line)
      if (bytes > MAX_LINE_BYTES) {
        throw new InputError('AUDIT_EVENT_TOO_LARGE', `the ${input.event} audit event is ${bytes} bytes; the limit is ${MAX_LINE_BYTES}`, {
          suggestions: ['log digests and references, not documents'],
        })
      }
      prev = lineHash(line)
      offset += bytes + 1
      pending.push({seq, hash: prev, size: offset})
      parts.push(`${line}\n`)
      entries.push(JSON.parse(line) as AuditEntry)
    }

    const anchored = problem === undefined
    let first: string | null = null
    if (anchored) {
      // The anchor's `first` holds only once a line is committed (size > 0): an append killed
      // before its first line was written left the hash of a line that never reached the log.
      const h = hs.state === 'ok' && hs.head.size > 0 ? hs.head : undefined
      first = h?.first ?? (size > 0 ? lineHash(firstLine(fd, size) ?? '') : pending[0]!.hash)
      writeHead(headFile, {v: HEAD_VERSION, ...committed, first, pending, time} satisfies AuditHead)
    }

    const data = Buffer.from(parts.join(''), 'utf8')
    let off = 0
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off)
    fs.fsyncSync(fd)

    if (anchored) {
      writeHead(headFile, {v: HEAD_VERSION, seq, hash: prev, size: offset, first, pending: [], time} satisfies AuditHead)
    }
    return {log, entries, anchored, ...(repaired ? {repaired} : {}), warnings}
  } catch (err) {
    throw fsError(err, 'append to the audit log', log)
  } finally {
    fs.closeSync(fd)
  }
}

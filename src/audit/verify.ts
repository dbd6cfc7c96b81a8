/**
 * Verifies the audit log: the hash chain line by line, then the anchor (`<log>.head`), and
 * reports the first thing that is wrong with its line number, seq and a reason:
 *
 * - `edited`: a line's bytes differ from the hash the next line (or the anchor) records.
 * - `deleted`: a gap in seq (lines removed from the middle or the start).
 * - `reordered`: seq out of order, and the missing seq appears later in the file.
 * - `duplicated`: an exact copy of an earlier line.
 * - `inserted`: a line that forks the chain (two lines after the same predecessor), reuses a
 *   seq, or was added after the anchored end without being the append aibox was making.
 * - `truncated`: the log ends before the seq its anchor records (tail lines deleted, or the
 *   whole log deleted while its anchor remains).
 * - `replaced`: line 1 is not the line the anchor recorded: the whole log was rewritten.
 * - `malformed`: a complete line that is not JSON or not an entry.
 * - `torn`: an incomplete last line, the mark of an interrupted append; the next append
 *   moves it to `<log>.quarantine` (see append.ts).
 * - `head-missing` / `head-malformed`: the anchor is gone or unreadable although the log has entries.
 *
 * Limits: whoever can rewrite both the log and its anchor can forge a consistent history; the
 * anchor only raises the bar from "edit one file" to "edit two files consistently".
 */
import fsp from 'node:fs/promises'
import path from 'node:path'

import {fsError, isErrno} from '../util/fs-errors.js'
import {type AuditEntry, GENESIS_PREV, type HeadState, headPathFor, lineHash, parseLine, readHead} from './entry.js'

export type BreakReason =
  | 'edited'
  | 'deleted'
  | 'reordered'
  | 'duplicated'
  | 'inserted'
  | 'truncated'
  | 'replaced'
  | 'malformed'
  | 'torn'
  | 'head-missing'
  | 'head-malformed'

export interface BrokenAt {
  /** 1-based line number in the log, or null for a problem of the anchor file itself. */
  line: number | null
  seq: number | null
  reason: BreakReason
  message: string
}

export interface VerifyOptions {
  /** The anchor file; default `<log>.head`. `false` checks the chain only (e.g. a copy of a log). */
  head?: string | false
}

export interface VerifyResult {
  ok: boolean
  log: string
  /** The anchor file checked, or null with `head: false`. */
  head: string | null
  /** False when there is no log file (then `ok` tells whether its absence is consistent with the anchor). */
  exists: boolean
  /** Complete lines in the log. */
  entries: number
  /** Lines verified before the first break (all of them when ok). */
  verified: number
  lastSeq: number | null
  /** The last seq the anchor commits, null without an anchor. */
  anchoredSeq: number | null
  /** Entries after the anchored end that are the append aibox was making when it stopped (the next append commits them). */
  unanchored: number
  firstBroken?: BrokenAt
}

interface Line {
  no: number
  bytes: Buffer
  hash: string
  entry?: AuditEntry
  problem?: string
}

function splitLines(buf: Buffer): {lines: Line[]; torn?: Buffer} {
  const lines: Line[] = []
  let start = 0
  for (let no = 1; start < buf.length; no++) {
    const nl = buf.indexOf(0x0a, start)
    if (nl < 0) return {lines, torn: buf.subarray(start)}
    const bytes = buf.subarray(start, nl)
    const parsed = parseLine(bytes)
    lines.push({no, bytes, hash: lineHash(bytes), entry: parsed.entry, problem: parsed.problem})
    start = nl + 1
  }
  return {lines}
}

/** The first break in the chain itself (without the anchor), or undefined. */
function checkChain(lines: Line[]): BrokenAt | undefined {
  const laterSeqs = new Map<number, number>()
  for (const l of lines) if (l.entry && !laterSeqs.has(l.entry.seq)) laterSeqs.set(l.entry.seq, l.no)
  const byHash = new Map<string, number>()
  const byPrev = new Map<string, Line>()
  let expectedSeq = 1
  let expectedPrev = GENESIS_PREV
  for (const l of lines) {
    if (l.problem || !l.entry) {
      return {line: l.no, seq: l.entry?.seq ?? null, reason: 'malformed', message: `line ${l.no} is malformed: ${l.problem}`}
    }
    const e = l.entry
    if (e.seq !== expectedSeq || e.prev !== expectedPrev) {
      const copyOf = byHash.get(l.hash)
      if (copyOf !== undefined) {
        return {line: l.no, seq: e.seq, reason: 'duplicated', message: `line ${l.no} (seq ${e.seq}) is a copy of line ${copyOf}`}
      }
      if (e.seq === expectedSeq) {
        if (l.no === 1) {
          return {line: 1, seq: e.seq, reason: 'edited', message: 'line 1 does not start the chain (its prev is not the genesis value): it was edited'}
        }
        return {
          line: l.no - 1,
          seq: expectedSeq - 1,
          reason: 'edited',
          message: `line ${l.no - 1} (seq ${expectedSeq - 1}) does not match the hash that line ${l.no} records for it: it was edited (or line ${l.no}'s prev was)`,
        }
      }
      if (e.seq > expectedSeq) {
        const later = laterSeqs.get(expectedSeq)
        if (later !== undefined && later > l.no) {
          return {
            line: l.no,
            seq: e.seq,
            reason: 'reordered',
            message: `line ${l.no} has seq ${e.seq} where seq ${expectedSeq} belongs; seq ${expectedSeq} is at line ${later}: lines were reordered`,
          }
        }
        const n = e.seq - expectedSeq
        return {
          line: l.no,
          seq: e.seq,
          reason: 'deleted',
          message: `seq ${expectedSeq}${n > 1 ? `..${e.seq - 1}` : ''} missing before line ${l.no} (seq ${e.seq}): ${n} line(s) deleted`,
        }
      }
      const sibling = byPrev.get(e.prev)
      if (sibling) {
        return {
          line: sibling.no,
          seq: sibling.entry!.seq,
          reason: 'inserted',
          message: `lines ${sibling.no} and ${l.no} both follow the same line with seq ${e.seq}: one of them was inserted`,
        }
      }
      return {line: l.no, seq: e.seq, reason: 'inserted', message: `line ${l.no} reuses seq ${e.seq} after seq ${expectedSeq - 1}: it was inserted`}
    }
    byHash.set(l.hash, l.no)
    byPrev.set(e.prev, l)
    expectedSeq++
    expectedPrev = l.hash
  }
  return undefined
}

function tornBreak(lines: Line[], torn: Buffer, log: string): BrokenAt {
  const parsed = parseLine(torn)
  return {
    line: lines.length + 1,
    seq: parsed.entry?.seq ?? null,
    reason: 'torn',
    message: `the last line (${torn.length} bytes) is incomplete: an append was interrupted; the next append moves it to ${path.basename(log)}.quarantine`,
  }
}

/** Checks the anchor against a log whose chain verified. Returns the break and the unanchored count. */
function checkAnchor(lines: Line[], torn: Buffer | undefined, hs: HeadState, headFile: string): {broken?: BrokenAt; unanchored: number; anchoredSeq: number | null} {
  const lastSeq = lines.length
  if (hs.state === 'missing') {
    if (lastSeq === 0) return {unanchored: 0, anchoredSeq: null}
    return {
      unanchored: 0,
      anchoredSeq: null,
      broken: {
        line: null,
        seq: null,
        reason: 'head-missing',
        message: `the log has ${lastSeq} entries but its anchor ${headFile} is missing: it was deleted, so deleted tail lines could no longer be detected`,
      },
    }
  }
  if (hs.state === 'malformed') {
    return {unanchored: 0, anchoredSeq: null, broken: {line: null, seq: null, reason: 'head-malformed', message: `the anchor ${headFile} is malformed: ${hs.problem}`}}
  }
  const head = hs.head
  const anchoredSeq = head.seq
  if (head.first && lastSeq > 0 && lines[0]!.hash !== head.first) {
    return {
      unanchored: 0,
      anchoredSeq,
      broken: {line: 1, seq: lines[0]!.entry!.seq, reason: 'replaced', message: `line 1 is not the line the anchor recorded: the whole log was replaced`},
    }
  }
  if (head.seq > lastSeq) {
    const cut = torn && head.seq === lastSeq + 1 ? ' (the last one was cut short)' : ''
    return {
      unanchored: 0,
      anchoredSeq,
      broken: {
        line: lastSeq + 1,
        seq: lastSeq + 1,
        reason: 'truncated',
        message: `the log ends at seq ${lastSeq} but its anchor records seq ${head.seq}: ${head.seq - lastSeq} line(s) deleted from the end${cut}`,
      },
    }
  }
  if (head.seq > 0 && lines[head.seq - 1]!.hash !== head.hash) {
    return {
      unanchored: 0,
      anchoredSeq,
      broken: {
        line: head.seq,
        seq: head.seq,
        reason: 'edited',
        message: `line ${head.seq} (seq ${head.seq}) does not match the hash its anchor records: it was edited (or the log rewritten from there)`,
      },
    }
  }
  let unanchored = 0
  for (const l of lines.slice(head.seq)) {
    const want = head.pending.find((p) => p.seq === l.entry!.seq)
    if (!want || want.hash !== l.hash) {
      return {
        unanchored,
        anchoredSeq,
        broken: {
          line: l.no,
          seq: l.entry!.seq,
          reason: 'inserted',
          message: `line ${l.no} (seq ${l.entry!.seq}) was added after the anchored end (seq ${head.seq}) and is not an entry aibox was writing`,
        },
      }
    }
    unanchored++
  }
  return {unanchored, anchoredSeq}
}

function verifiedBefore(b: BrokenAt, total: number): number {
  return b.line === null ? total : Math.min(total, Math.max(0, b.line - 1))
}

/**
 * Verifies `log` (see the module comment for what is detected). Never throws for a broken
 * log: the result says what broke. Throws only when the file cannot be read at all.
 */
export async function verifyChain(log: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const file = path.resolve(log)
  const headFile = options.head === false ? null : path.resolve(options.head ?? headPathFor(file))
  let buf: Buffer | undefined
  try {
    buf = await fsp.readFile(file)
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw fsError(err, 'read the audit log', file)
  }
  const hs: HeadState | undefined = headFile ? readHead(headFile) : undefined
  const base = {log: file, head: headFile}
  if (!buf) {
    const anchoredSeq = hs?.state === 'ok' ? hs.head.seq : null
    if (anchoredSeq) {
      return {
        ...base,
        ok: false,
        exists: false,
        entries: 0,
        verified: 0,
        lastSeq: null,
        anchoredSeq,
        unanchored: 0,
        firstBroken: {line: 1, seq: 1, reason: 'truncated', message: `the log is missing but its anchor records ${anchoredSeq} entries: it was deleted`},
      }
    }
    return {...base, ok: true, exists: false, entries: 0, verified: 0, lastSeq: null, anchoredSeq, unanchored: 0}
  }

  const {lines, torn} = splitLines(buf)
  const result: VerifyResult = {
    ...base,
    ok: true,
    exists: true,
    entries: lines.length,
    verified: lines.length,
    lastSeq: lines.at(-1)?.entry?.seq ?? null,
    anchoredSeq: hs?.state === 'ok' ? hs.head.seq : null,
    unanchored: 0,
  }
  const broken = checkChain(lines)
  if (broken) return {...result, ok: false, verified: verifiedBefore(broken, lines.length), firstBroken: broken}
  if (hs && headFile) {
    const a = checkAnchor(lines, torn, hs, headFile)
    result.anchoredSeq = a.anchoredSeq
    result.unanchored = a.unanchored
    if (a.broken) return {...result, ok: false, verified: verifiedBefore(a.broken, lines.length), firstBroken: a.broken}
  }
  if (torn) return {...result, ok: false, firstBroken: tornBreak(lines, torn, file)}
  return result
}

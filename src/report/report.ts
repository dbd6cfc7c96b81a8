/**
 * `aibox audit report --html OUT`: reads the audit log, verifies its chain, keeps the entries
 * since `since`, and writes the HTML page atomically (temp + fsync + rename: a reader never sees
 * half a report, a failure leaves the previous one in place).
 */
import path from 'node:path'

import {filterEntries, readAuditLog} from '../audit/query.js'
import {verifyChain} from '../audit/verify.js'
import {NotFoundError} from '../errors.js'
import {writeFileAtomic} from '../util/atomic.js'
import {renderAuditReportHtml} from './html.js'
import {type AuditReportModel, buildAuditReport} from './model.js'

export interface AuditReportOptions {
  /** The audit log to read. */
  log: string
  /** Where to write the HTML page. */
  output: string
  /** Only entries at or after this time (a duration back from now, or an RFC 3339 date). */
  since?: string
  now?: () => Date
  maxEvents?: number
}

export interface AuditReportResult {
  log: string
  output: string
  /** True when the whole log's hash chain and anchor verified. */
  verified: boolean
  chain: string
  /** Entries in the report (after --since). */
  entries: number
  since: string | null
  generatedAt: string
  totals: AuditReportModel['totals']
  bytes: number
}

export async function writeAuditReport(options: AuditReportOptions): Promise<AuditReportResult> {
  const now = options.now ?? (() => new Date())
  // Validate --since before reading anything, so bad input fails the same with or without a log.
  filterEntries([], {since: options.since, now})
  const read = await readAuditLog(options.log)
  if (!read.exists) {
    throw new NotFoundError('AUDIT_LOG_NOT_FOUND', `no audit log at ${read.log}: nothing to report`, {
      suggestions: ['point --log or AIBOX_AUDIT_LOG at the log to report on', 'aibox start, push and approve append to it'],
    })
  }
  const v = await verifyChain(options.log)
  const chain = v.ok
    ? `${v.entries} entries, anchored at seq ${v.anchoredSeq ?? 0}${v.unanchored ? ` (${v.unanchored} of an interrupted append)` : ''}`
    : `at line ${v.firstBroken?.line ?? '?'}${v.firstBroken?.seq === null || v.firstBroken?.seq === undefined ? '' : ` (seq ${v.firstBroken.seq})`}: ${v.firstBroken?.reason}: ${v.firstBroken?.message}`
  const entries = filterEntries(read.entries, {since: options.since, now})
  const generatedAt = now()
  const model = buildAuditReport(entries, {log: read.log, chain: {ok: v.ok, message: chain}, since: options.since, generatedAt, maxEvents: options.maxEvents})
  const html = renderAuditReportHtml(model)
  const output = path.resolve(options.output)
  await writeFileAtomic(output, html)
  return {
    log: read.log,
    output,
    verified: v.ok,
    chain,
    entries: entries.length,
    since: options.since ?? null,
    generatedAt: generatedAt.toISOString(),
    totals: model.totals,
    bytes: Buffer.byteLength(html),
  }
}

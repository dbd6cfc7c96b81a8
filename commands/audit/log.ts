import {Flags} from '@oclif/core'

import {type AuditEntry, queryAudit, unknownEventNames, verifyChain} from '../../src/audit/index.js'
import {auditFilterFlags, auditLogFlag} from '../../src/cli/audit-flags.js'
import {BaseCommand} from '../../src/cli/base.js'
import {defaultAuditLogPath} from '../../src/config/paths.js'
import {escapeControl} from '../../src/util/text.js'

const SHOWN = new Set(['seq', 'time', 'event', 'actor', 'ref', 'digest', 'version', 'prev'])

function short(digest: unknown): string {
  return typeof digest === 'string' ? `${digest.slice(0, 19)}…` : '-'
}

function detail(k: string, v: unknown): string {
  if (k === 'tiers' && Array.isArray(v)) {
    return `tiers=${v.map((t: {tier?: string; version?: string | null}) => `${t.tier}@${t.version ?? '-'}`).join(',')}`
  }
  if (Array.isArray(v)) return `${k}=${v.join(',')}`
  if (typeof v === 'string' && /^sha256:[0-9a-f]{64}$/.test(v)) return `${k}=${short(v)}`
  return `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`
}

export default class AuditLog extends BaseCommand<AuditEntry[]> {
  static override summary = 'Show audit log entries'
  static override description = [
    'Lists the entries of the tamper-evident audit log, oldest first, optionally filtered by time, event and reference.',
    'A missing log is not an error: it has no entries yet. When the log does not verify, a warning names the first broken line (see "aibox audit verify").',
    'With --json, prints the matching entries as an array, each exactly as stored.',
  ].join(' ')
  static override examples = [
    '<%= config.bin %> audit log --since 7d',
    '<%= config.bin %> audit log --event policy.loaded --event policy.override --limit 20',
    '<%= config.bin %> audit log --event "policy.*" --ref registry.example.com/policies/org:stable --json',
  ]
  static override flags = {
    log: auditLogFlag,
    ...auditFilterFlags,
    limit: Flags.integer({summary: 'only the newest N matching entries', min: 1, helpValue: 'N'}),
  }

  async run(): Promise<AuditEntry[]> {
    const {flags} = await this.parse(AuditLog)
    const log = flags.log ?? defaultAuditLogPath()
    const q = await queryAudit(log, {since: flags.since, events: flags.event, ref: flags.ref, limit: flags.limit})
    for (const name of unknownEventNames(flags.event ?? [])) this.info(`note: "${name}" is not an event aibox writes; did you mean a prefix such as "${name.split('.')[0]}.*"?`)
    if (!q.exists) {
      this.info(`no audit log at ${q.log} yet (nothing has been logged)`)
      return []
    }
    const v = await verifyChain(log)
    if (!v.ok && v.firstBroken) {
      const where = v.firstBroken.line === null ? '' : ` at line ${v.firstBroken.line}`
      this.info(`warning: the audit log does not verify${where}: ${v.firstBroken.reason}; run "aibox audit verify" for details`)
    }
    if (q.skipped > 0) this.info(`warning: ${q.skipped} malformed line(s) skipped`)
    if (q.entries.length === 0) {
      this.info('no matching entries')
      return q.entries
    }
    const rows = q.entries.map((e) => [
      String(e.seq),
      e.time,
      e.event,
      e.actor,
      e.ref ?? '-',
      e.version ?? '-',
      short(e.digest),
      Object.entries(e)
        .filter(([k]) => !SHOWN.has(k))
        .map(([k, v]) => detail(k, v))
        .join(' '),
    ].map(escapeControl))
    const header = ['SEQ', 'TIME', 'EVENT', 'ACTOR', 'REF', 'VERSION', 'DIGEST', 'DETAILS']
    // A reduce, not Math.max(...rows): spreading 100,000+ rows overflows the call stack.
    const widths = header.map((h, i) => rows.reduce((w, r) => Math.max(w, r[i]!.length), h.length))
    const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()
    this.log(this.color('bold', fmt(header)))
    for (const r of rows) this.log(fmt(r))
    return q.entries
  }
}

import {Flags} from '@oclif/core'

import {exportAudit, unknownEventNames, verifyChain} from '../../src/audit/index.js'
import {auditFilterFlags, auditLogFlag} from '../../src/cli/audit-flags.js'
import {BaseCommand} from '../../src/cli/base.js'
import {defaultAuditLogPath} from '../../src/config/paths.js'
import {InputError} from '../../src/errors.js'

export interface AuditExportResult {
  log: string
  exists: boolean
  output: string | null
  entries: number
  chain: boolean
  verified: boolean
}

export default class AuditExport extends BaseCommand<AuditExportResult> {
  static override summary = 'Export audit events as JSONL for a SIEM'
  static override description = [
    'Writes the (filtered) audit entries as JSON Lines: one object per line, keys in a stable order',
    '(seq, time, event, actor, ref, digest, version, from, reason, prev, then the event fields sorted).',
    'To stdout by default, or atomically to a file with -o. --no-chain drops prev (seq stays as an ordered event id).',
    'The log is verified first; a broken log is still exported, with a warning and "verified": false.',
  ].join(' ')
  static override examples = [
    '<%= config.bin %> audit export --since 24h > aibox-audit.jsonl',
    '<%= config.bin %> audit export --event "policy.*" -o /var/spool/siem/aibox.jsonl --json',
    '<%= config.bin %> audit export --since 2025-06-01 --no-chain | vector --config siem.toml',
  ]
  static override flags = {
    log: auditLogFlag,
    ...auditFilterFlags,
    output: Flags.string({char: 'o', summary: 'write the JSONL to this file (atomically) instead of stdout', helpValue: 'FILE'}),
    chain: Flags.boolean({summary: 'keep the prev hash of each entry (--no-chain drops it)', default: true, allowNo: true}),
  }

  async run(): Promise<AuditExportResult> {
    const {flags} = await this.parse(AuditExport)
    if (this.json && !flags.output) {
      throw new InputError('EXPORT_NEEDS_OUTPUT', '--json needs -o FILE: without -o the JSONL itself is written to stdout', {
        suggestions: ['aibox audit export -o audit.jsonl --json', 'aibox audit export > audit.jsonl'],
      })
    }
    const log = flags.log ?? defaultAuditLogPath()
    for (const name of unknownEventNames(flags.event ?? [])) this.info(`note: "${name}" is not an event aibox writes`)
    const r = await exportAudit(log, {since: flags.since, events: flags.event, ref: flags.ref, chain: flags.chain, output: flags.output})
    let verified = false
    if (r.exists) {
      const v = await verifyChain(log)
      verified = v.ok
      if (!v.ok) this.info(`warning: the audit log does not verify (${v.firstBroken?.reason}${v.firstBroken?.line ? ` at line ${v.firstBroken.line}` : ''}); exported anyway; run "aibox audit verify"`)
    } else {
      this.info(`no audit log at ${r.log}: nothing to export`)
    }
    if (r.output) this.info(`exported ${r.entries} entries to ${r.output}`)
    else process.stdout.write(r.text)
    return {log: r.log, exists: r.exists, output: r.output, entries: r.entries, chain: r.chain, verified}
  }
}

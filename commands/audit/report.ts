import {Flags} from '@oclif/core'

import {auditLogFlag} from '../../src/cli/audit-flags.js'
import {BaseCommand} from '../../src/cli/base.js'
import {defaultAuditLogPath} from '../../src/config/paths.js'
import {type AuditReportResult, writeAuditReport} from '../../src/report/index.js'

export default class AuditReport extends BaseCommand<AuditReportResult> {
  static override summary = 'Write an HTML report of the audit log for auditors'
  static override description = [
    'Writes one self-contained HTML page (inline CSS and JavaScript, no network access, opens from a file) with:',
    'the timeline of policy versions per tier and who pushed, signed and approved each; rollbacks; emergency changes;',
    'overrides and policy-lock refusals; refused policies; loads, overrides and refusals per day (UTC); air-gap exports and imports;',
    'and every entry in a filterable table (event kinds the report does not know are listed like the others).',
    '\n\n',
    'The log is verified first: a broken hash chain is shown at the top of the page in red, with a warning, and the report is still written.',
    'The page is written atomically (an existing file is replaced). Exit 3 when there is no log.',
  ].join(' ')
  static override examples = [
    '<%= config.bin %> audit report --html audit-report.html',
    '<%= config.bin %> audit report --html /srv/reports/aibox-$(date +%F).html --since 30d',
    '<%= config.bin %> audit report --html report.html --log /var/log/aibox/audit.jsonl --json',
  ]
  static override flags = {
    html: Flags.string({summary: 'write the HTML report to this file', required: true, helpValue: 'FILE'}),
    log: auditLogFlag,
    since: Flags.string({
      summary: 'only entries at or after this time: a duration back from now (30m, 24h, 7d, 2w) or an RFC 3339 date (2025-06-01)',
      helpValue: 'WHEN',
    }),
  }

  async run(): Promise<AuditReportResult> {
    const {flags} = await this.parse(AuditReport)
    const r = await writeAuditReport({log: flags.log ?? defaultAuditLogPath(), output: flags.html, since: flags.since})
    if (!r.verified) this.info(`warning: the audit log does not verify (${r.chain}); the report says so at the top; run "aibox audit verify"`)
    const t = r.totals
    this.log(`wrote ${r.output}: ${r.entries} entries, ${t.versions} versions, ${t.loads} loads, ${t.rollbacks} rollbacks, ${t.emergencies} emergency changes, ${t.overrides} overrides`)
    return r
  }
}

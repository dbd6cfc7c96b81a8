import {Flags} from '@oclif/core'

import {type VerifyResult, headPathFor, quarantinePathFor, verifyChain} from '../../src/audit/index.js'
import {auditLogFlag} from '../../src/cli/audit-flags.js'
import {BaseCommand} from '../../src/cli/base.js'
import {defaultAuditLogPath} from '../../src/config/paths.js'
import {EXIT, NotFoundError, VerificationError} from '../../src/errors.js'

export default class AuditVerify extends BaseCommand<VerifyResult> {
  static override summary = 'Verify the hash chain and anchor of the audit log'
  static override description = [
    'Checks every line of the audit log against the hash recorded in the next line, seq numbering from 1 without gaps,',
    'and the anchor file (LOG.head) that records the last committed entry, so that edited, deleted, reordered,',
    'duplicated or inserted lines, a truncated tail and a replaced file are all detected.',
    '\n\n',
    'Exit 0 when intact; exit 2 with the first broken line number, its seq and the reason; exit 3 when there is no log',
    '(and no anchor saying there should be one). With --json the report is printed in both the 0 and the 2 case.',
  ].join(' ')
  static override examples = [
    '<%= config.bin %> audit verify',
    '<%= config.bin %> audit verify --log /var/log/aibox/audit.jsonl --json',
    '<%= config.bin %> audit verify --log copy-of-audit.jsonl --no-anchor',
  ]
  static override flags = {
    log: auditLogFlag,
    head: Flags.string({summary: 'anchor file to check against (default: LOG.head)', helpValue: 'FILE', exclusive: ['no-anchor']}),
    'no-anchor': Flags.boolean({
      summary: 'check the hash chain only (e.g. a copy of a log without its anchor); deleted tail lines are then undetectable',
      default: false,
    }),
  }

  async run(): Promise<VerifyResult> {
    const {flags} = await this.parse(AuditVerify)
    const log = flags.log ?? defaultAuditLogPath()
    const r = await verifyChain(log, {head: flags['no-anchor'] ? false : flags.head})
    if (!r.exists && r.ok) {
      throw new NotFoundError('AUDIT_LOG_NOT_FOUND', `no audit log at ${r.log}`, {
        suggestions: [
          'nothing has been logged yet: aibox start, push and approve append to it',
          'point --log or AIBOX_AUDIT_LOG at the log to check',
        ],
      })
    }
    if (r.ok) {
      const anchor = r.head === null ? 'chain only (no anchor checked)' : `anchored at seq ${r.anchoredSeq ?? 0}`
      const pending = r.unanchored > 0 ? `; ${r.unanchored} entr${r.unanchored === 1 ? 'y' : 'ies'} of an interrupted append, committed by the next append` : ''
      this.log(`audit log ${r.log}: ${r.entries} entries, chain intact, ${anchor}${pending}`)
      return r
    }
    const b = r.firstBroken!
    if (this.json) {
      // Machines get the whole report (schemas/output/audit-verify.json) and the exit code.
      process.exitCode = EXIT.VERIFY
      return r
    }
    const where = b.line === null ? '' : ` at line ${b.line}${b.seq === null ? '' : ` (seq ${b.seq})`}`
    const suggestions =
      b.reason === 'torn'
        ? [`an append was interrupted (crash or power loss); the next append moves the incomplete line to ${quarantinePathFor(r.log)} and logs audit.repaired`]
        : [
            'treat the log as tampered with: compare it with a backup or the copy exported to your SIEM',
            `the anchor ${r.head ?? headPathFor(r.log)} records the last committed entry (seq ${r.anchoredSeq ?? '?'})`,
          ]
    throw new VerificationError('AUDIT_LOG_BROKEN', `audit log ${r.log} is broken${where}: ${b.reason}: ${b.message}`, {
      suggestions,
      details: {firstBroken: b, entries: r.entries, verified: r.verified},
    })
  }
}

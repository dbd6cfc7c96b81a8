import {Flags} from '@oclif/core'

import {auditLogFlag} from '../../src/cli/audit-flags.js'
import {BaseCommand} from '../../src/cli/base.js'
import {registryFlags, registryOptions} from '../../src/cli/registry-flags.js'
import {defaultAuditLogPath} from '../../src/config/paths.js'
import {EXIT, GovernanceError} from '../../src/errors.js'
import {type EmergencyReport, listEmergencies} from '../../src/govern/index.js'
import {loadTrustPolicy} from '../../src/trust/index.js'

export default class AuditEmergencies extends BaseCommand<EmergencyReport> {
  static override summary = 'List emergency changes still lacking a retroactive approval'
  static override description = [
    'Reads policy.emergency entries from the audit log (written by aibox push --emergency) and lists those that no later approval of the same digest by another key has cleared.',
    'Approvals made on other machines are not in this log: with --trust, each pending change is also verified where it was published, and counts as approved once its digest meets the normal requirements of the trust policy (not only its emergency path).',
    '\n\n',
    'Exit 0, also when changes are pending (use --fail-pending in CI: exit 5 then). A log whose chain does not verify is reported with a warning.',
  ].join(' ')
  static override examples = [
    '<%= config.bin %> audit emergencies',
    '<%= config.bin %> audit emergencies --all --since 30d --json',
    '<%= config.bin %> audit emergencies --trust trust.yaml --fail-pending',
  ]
  static override flags = {
    log: auditLogFlag,
    all: Flags.boolean({summary: 'also list emergency changes that were approved afterwards'}),
    since: Flags.string({summary: 'only emergency changes at or after this time (30m, 24h, 7d, 2w, or an RFC 3339 date)', helpValue: 'WHEN'}),
    trust: Flags.string({summary: 'check pending changes where they were published against this trust policy', helpValue: 'FILE'}),
    'fail-pending': Flags.boolean({summary: 'exit 5 when an emergency change is still pending'}),
    ...registryFlags,
  }

  async run(): Promise<EmergencyReport> {
    const {flags} = await this.parse(AuditEmergencies)
    const log = flags.log ?? defaultAuditLogPath()
    const trust = flags.trust ? loadTrustPolicy(flags.trust) : undefined
    const registry = trust ? await registryOptions(flags, {warn: (m) => this.warn(m)}) : undefined
    const r = await listEmergencies(log, {all: flags.all, since: flags.since, trust, ...(registry ? {registry} : {})})
    if (!r.exists) this.info(`no audit log at ${r.log} yet (nothing has been logged)`)
    if (!r.intact) this.info(`warning: the audit log does not verify (${r.brokenAt}); run "aibox audit verify"`)
    for (const e of r.emergencies) {
      this.log(`${e.status === 'pending' ? 'PENDING ' : 'approved'}  seq ${e.seq}  ${e.time}  ${e.ref ?? '-'}  ${e.version ?? '-'}  incident ${e.incident ?? '-'}  by ${e.actor} (key ${e.keyId})`)
      this.log(`          digest ${e.digest ?? '-'}: ${e.reason}`)
      for (const a of e.approvals) this.log(`          approved by key ${a.key ? `'${a.key}' (${a.keyId})` : a.keyId} as ${a.role} at ${a.time} (${a.source}${a.seq ? ` seq ${a.seq}` : ''})`)
      if (e.registryCheck && e.registryCheck.status !== 'approved') this.log(`          published copy: ${e.registryCheck.status}: ${e.registryCheck.message}`)
    }
    this.log(`${r.pending} emergency change${r.pending === 1 ? '' : 's'} pending retroactive approval (of ${r.total})`)
    if (flags['fail-pending'] && r.pending > 0) {
      const err = new GovernanceError('EMERGENCY_PENDING', `${r.pending} emergency change${r.pending === 1 ? '' : 's'} still lack${r.pending === 1 ? 's' : ''} a retroactive approval`, {
        suggestions: ['approve each digest with a key other than the one that pushed it: aibox approve REF@DIGEST --key … --role … --note … --incident …'],
        details: {pending: r.emergencies.filter((e) => e.status === 'pending').map((e) => e.digest)},
      })
      if (this.json) {
        process.exitCode = EXIT.GOVERNANCE
        return r
      }
      throw err
    }
    return r
  }
}

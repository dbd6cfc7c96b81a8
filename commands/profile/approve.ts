import {Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {loadSigningKey, signingKeyFlags} from '../../src/cli/registry-flags.js'
import {parseDurationMs} from '../../src/config/start-config.js'
import {InputError} from '../../src/errors.js'
import {type ApproveProfileResult, approveProfileChange} from '../../src/profile/index.js'

export type ProfileApproveResult = ApproveProfileResult

export default class ProfileApprove extends BaseCommand<ProfileApproveResult> {
  static override summary = "Sign an org admin's approval of a change to a weaker profile"
  static override description = `Signs a DSSE envelope (payload type application/vnd.aibox.profile-change.v1+json) with an org admin's key over the configured stack (its policy references), the change --from → --to, the change ticket, the reason, the approver (AIBOX_ACTOR, else user@host, and the key) and a validity window (--expires, default 24h), and writes it to -o FILE. The person asking for the change passes it to aibox profile set --approval FILE.

With a trust policy (the configuration's, or --trust) the key must be a valid key holding the org-admin role (else exit 5: KEY_NOT_TRUSTED, KEY_NOT_VALID, ROLE_NOT_HELD). When the cache holds the verified org policy, --from and --to must be among its profiles (exit 1, PROFILE_UNKNOWN). aibox profile set refuses an approval by the one asking (separation of duties), for another stack or change, or expired.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --key carol.key --from audit-strict --to dev-fast --ticket CHG-1234 --reason "profiling the build for one day" -o approval.json',
    '<%= config.bin %> <%= command.id %> --key carol.key --from lab-default --to dev-fast --ticket CHG-77 --reason "load test" --expires 4h --config projects/webapp/aibox.yaml -o approval.json --json',
  ]
  static override flags = {
    ...signingKeyFlags,
    from: Flags.string({summary: 'the profile the stack loads now', required: true, helpValue: 'NAME'}),
    to: Flags.string({summary: 'the weaker profile you approve', required: true, helpValue: 'NAME'}),
    ticket: Flags.string({summary: 'the change ticket', required: true, helpValue: 'ID'}),
    reason: Flags.string({summary: 'why the change is approved', required: true, helpValue: 'TEXT'}),
    expires: Flags.string({summary: 'how long the approval is valid (default 24h)', default: '24h', helpValue: 'DURATION'}),
    output: Flags.string({char: 'o', summary: 'the approval file to write', required: true, helpValue: 'FILE'}),
    force: Flags.boolean({summary: 'replace an existing output file', default: false}),
    config: Flags.string({char: 'c', summary: 'configuration file of the stack (default: AIBOX_CONFIG, ./aibox.yaml, then ~/.config/aibox/aibox.yaml)', helpValue: 'FILE'}),
    cache: Flags.string({summary: 'verified-policy cache directory (to check --from and --to against the org profiles)', helpValue: 'DIR'}),
    trust: Flags.string({summary: 'trust policy in which the key must hold org-admin (default: the configuration\'s)', helpValue: 'FILE'}),
  }

  async run(): Promise<ProfileApproveResult> {
    const {flags} = await this.parse(ProfileApprove)
    const ttlMs = parseDurationMs(flags.expires)
    if (ttlMs === undefined || ttlMs <= 0) throw new InputError('INVALID_DURATION', `--expires ${JSON.stringify(flags.expires)} is not a duration`, {suggestions: ['use e.g. 24h, 4h or 90m']})
    const key = await loadSigningKey(flags)
    const r = await approveProfileChange({
      key,
      from: flags.from,
      to: flags.to,
      ticket: flags.ticket,
      reason: flags.reason,
      output: flags.output,
      force: flags.force,
      ttlMs,
      ...(flags.config ? {config: flags.config} : {}),
      ...(flags.cache ? {cache: flags.cache} : {}),
      ...(flags.trust ? {trust: flags.trust} : {}),
    })
    this.log(`Approved ${r.payload.from} -> ${r.payload.to} (ticket ${r.payload.ticket}) with key ${r.payload.approver.name ? `'${r.payload.approver.name}' (${r.payload.approver.keyId})` : r.payload.approver.keyId}, valid until ${r.payload.expires}`)
    this.log(`  written to ${r.file}`)
    for (const n of r.notes) this.info(`note: ${n}`)
    return r
  }
}

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {type SetProfileResult, setProfile} from '../../src/profile/index.js'

export type ProfileSetResult = SetProfileResult

export default class ProfileSet extends BaseCommand<ProfileSetResult> {
  static override summary = 'Change the org policy profile of a stack (a weaker one needs an admin-approved change)'
  static override description = `Records a profile change with its change ticket (always required) and reason: in the cache state, so that the next aibox start loads it; in aibox.yaml (profile: and profileTicket:, comments kept); and in the audit log (policy.profile.set).

A profile at least as strict as the current one (the one aibox start loaded last) needs nothing more; this is also how a weaker profile is reverted, which lifts the policy_override taint on the next start. A weaker profile needs --approval FILE(s) from aibox profile approve, verified against the trust policy (the configuration's, or --trust): signed by a valid key holding org-admin, for this stack and exactly this change, not expired, and not approved by the one asking (separation of duties). The runs that follow are tainted policy_override until a profile as strict as before is loaded again. AIBOX_POLICY_LOCK=1 refuses a weaker profile outright.

Exit codes: 0 recorded, 1 invalid input (unknown profile, missing ticket), 3 the cache holds no verified org policy yet, 5 refused (PROFILE_LOCKED, PROFILE_APPROVAL_REQUIRED, SELF_APPROVAL, APPROVAL_EXPIRED, APPROVAL_MISMATCH, APPROVAL_SIGNATURE_INVALID, ROLE_NOT_HELD).`
  static override examples = [
    '<%= config.bin %> <%= command.id %> audit-strict --ticket CHG-1240 --reason "back to the audit profile"',
    '<%= config.bin %> <%= command.id %> dev-fast --ticket CHG-1234 --reason "profiling the build for one day" --approval approval.json',
    'AIBOX_CONFIG=projects/webapp/aibox.yaml <%= config.bin %> <%= command.id %> lab-default --ticket CHG-9 --reason "new default" --json',
  ]
  static override args = {
    profile: Args.string({description: 'the profile to load from now on', required: true}),
  }
  static override flags = {
    ticket: Flags.string({summary: 'the change ticket (recorded in aibox.yaml and the audit log)', required: true, helpValue: 'ID'}),
    reason: Flags.string({summary: 'why (recorded in the audit log)', required: true, helpValue: 'TEXT'}),
    approval: Flags.string({summary: "an org admin's approval from aibox profile approve (repeatable; needed for a weaker profile)", multiple: true, helpValue: 'FILE'}),
    config: Flags.string({char: 'c', summary: 'configuration file (default: AIBOX_CONFIG, ./aibox.yaml, then ~/.config/aibox/aibox.yaml)', helpValue: 'FILE'}),
    cache: Flags.string({summary: 'verified-policy cache directory (default: AIBOX_CACHE, the configuration, ~/.cache/aibox)', helpValue: 'DIR'}),
    trust: Flags.string({summary: "trust policy to verify approvals with (default: the configuration's)", helpValue: 'FILE'}),
  }

  async run(): Promise<ProfileSetResult> {
    const {args, flags} = await this.parse(ProfileSet)
    const r = await setProfile({
      profile: args.profile,
      ticket: flags.ticket,
      reason: flags.reason,
      ...(flags.approval ? {approvals: flags.approval} : {}),
      ...(flags.config ? {config: flags.config} : {}),
      ...(flags.cache ? {cache: flags.cache} : {}),
      ...(flags.trust ? {trust: flags.trust} : {}),
    })
    this.log(`Profile ${r.from ?? '(none)'} -> ${r.profile} recorded (ticket ${r.ticket}) in ${r.config}`)
    if (r.weaker) this.log(`  weaker profile, approved by ${r.approvers.join(', ')}: runs are tainted policy_override until a profile as strict as ${r.from} is loaded again`)
    this.log('  the next aibox start loads it')
    for (const n of r.notes) this.info(`note: ${n}`)
    return r
  }
}

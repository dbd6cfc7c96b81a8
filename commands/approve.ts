import {Args, Flags} from '@oclif/core'

import {auditLogFlag} from '../src/cli/audit-flags.js'
import {BaseCommand} from '../src/cli/base.js'
import {loadSigningKey, registryFlags, registriesOf, registryOptions, signingKeyFlags} from '../src/cli/registry-flags.js'
import {type GovernedApproveResult, governedApprove} from '../src/govern/index.js'
import {loadTrustPolicy} from '../src/trust/index.js'

export type ApproveResult = GovernedApproveResult

export default class Approve extends BaseCommand<ApproveResult> {
  static override summary = 'Attach a signed approval (role, note, ticket) to a published policy'
  static override description = `Signs an approval attestation with the approver's key and attaches it to REF's manifest as a referrer: a Sigstore bundle v0.3 whose in-toto statement names the exact manifest digest, predicateType https://aibox.dev/attestations/policy-approval/v1 and predicate {role, note, ticket?, incident?, approvedAt}. Approving a tag approves the digest it points at now, never a later version.

Separation of duties is checked first, and nothing is attached when it refuses (exit 5): a key that signed this digest (its author) cannot approve it (SELF_APPROVAL), and a key approves a digest once (ALREADY_APPROVED). With --trust, the key must also be a valid key of the trust policy holding --role (KEY_NOT_TRUSTED, KEY_NOT_VALID, ROLE_NOT_HELD).

Trust policies count approvals by role (require: approvals: {ROLE: N}). An approval of an emergency change is its retroactive approval. Writes policy.approved to the audit log.`
  static override examples = [
    '<%= config.bin %> approve registry.example.com/policies/org:1.4.0 --key bob.key --role approver --note "reviewed egress changes" --ticket SEC-1234 --trust trust.yaml',
    '<%= config.bin %> approve oci:./policies:1.4.1 --key bob.key --role approver --note "retroactive approval of the emergency fix" --incident INC-77 --json',
  ]
  static override args = {
    ref: Args.string({description: 'the policy reference (tag or digest)', required: true}),
  }
  static override flags = {
    ...signingKeyFlags,
    role: Flags.string({summary: 'the role you approve in (e.g. approver, security)', required: true}),
    note: Flags.string({summary: 'why you approve', required: true}),
    ticket: Flags.string({summary: 'change ticket reference'}),
    incident: Flags.string({summary: 'incident reference (e.g. for an emergency change or a rollback)'}),
    trust: Flags.string({summary: 'trust policy: refuse unless the key holds --role there', helpValue: 'FILE'}),
    'audit-log': auditLogFlag,
    ...registryFlags,
  }

  async run(): Promise<ApproveResult> {
    const {args, flags} = await this.parse(Approve)
    const trust = flags.trust ? loadTrustPolicy(flags.trust) : undefined
    const key = await loadSigningKey(flags)
    const registry = await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(args.ref)})
    const r = await governedApprove({
      reference: args.ref,
      key,
      role: flags.role,
      note: flags.note,
      ticket: flags.ticket,
      incident: flags.incident,
      trust,
      registry,
      audit: {log: flags['audit-log']},
    })
    this.log(`Approved ${r.reference} as ${r.approval.role} with key ${r.keyName ? `'${r.keyName}' (${r.attestation.keyId})` : r.attestation.keyId}`)
    this.log(`  attestation ${r.attestation.digest}`)
    if (!trust) this.info('note: the role was not checked against a trust policy (pass --trust to check it before approving)')
    for (const n of r.notes) this.info(`note: ${n}`)
    return r
  }
}

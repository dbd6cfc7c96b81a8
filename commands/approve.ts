import {Args, Flags} from '@oclif/core'

import {auditLogFlag} from '../src/cli/audit-flags.js'
import {BaseCommand} from '../src/cli/base.js'
import {loadSigningKey, registryFlags, registriesOf, registryOptions, signingKeyFlags} from '../src/cli/registry-flags.js'
import {type ApproveReferenceResult, approveReference} from '../src/distribute/index.js'

export type ApproveResult = ApproveReferenceResult

export default class Approve extends BaseCommand<ApproveResult> {
  static override summary = 'Attach a signed approval (role, note, ticket) to a published policy'
  static override description = `Signs an approval attestation with the approver's key and attaches it to REF's manifest as a referrer: a Sigstore bundle v0.3 whose in-toto statement names the exact manifest digest, predicateType https://aibox.dev/attestations/policy-approval/v1 and predicate {role, note, ticket?, incident?, approvedAt}. Approving a tag approves the digest it points at now, never a later version.

Trust policies count approvals by the approver key's roles (require: approvals: …). Writes policy.approved to the audit log.`
  static override examples = [
    '<%= config.bin %> approve registry.example.com/policies/org:1.4.0 --key alice.key --role security --note "reviewed egress changes" --ticket SEC-1234',
    '<%= config.bin %> approve oci:./policies:1.4.1 --key bob.key --role approver --note "emergency fix" --incident INC-77 --json',
  ]
  static override args = {
    ref: Args.string({description: 'the policy reference (tag or digest)', required: true}),
  }
  static override flags = {
    ...signingKeyFlags,
    role: Flags.string({summary: 'the role you approve in (e.g. security, approver)', required: true}),
    note: Flags.string({summary: 'why you approve', required: true}),
    ticket: Flags.string({summary: 'change ticket reference'}),
    incident: Flags.string({summary: 'incident reference (e.g. for an emergency change or a rollback)'}),
    'audit-log': auditLogFlag,
    ...registryFlags,
  }

  async run(): Promise<ApproveResult> {
    const {args, flags} = await this.parse(Approve)
    const key = await loadSigningKey(flags)
    const registry = await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(args.ref)})
    const r = await approveReference({
      reference: args.ref,
      key,
      role: flags.role,
      note: flags.note,
      ticket: flags.ticket,
      incident: flags.incident,
      registry,
      audit: {log: flags['audit-log']},
    })
    this.log(`Approved ${r.reference} as ${r.approval.role} with key ${r.attestation.keyId}`)
    this.log(`  attestation ${r.attestation.digest}`)
    return r
  }
}

import {Args} from '@oclif/core'

import {BaseCommand} from '../src/cli/base.js'
import {loadVerification, registryFlags, registriesOf, registryOptions, verificationFlags} from '../src/cli/registry-flags.js'
import {type DiscoverNode, type DiscoverResult, discoverReferrers, openForRead, requireSelector} from '../src/distribute/index.js'

export type DiscoverCommandResult = DiscoverResult & {reference: string}

export default class Discover extends BaseCommand<DiscoverCommandResult> {
  static override summary = 'Show the signatures, approvals and other artifacts attached to a policy'
  static override description = `Lists the referrers of REF's manifest as a tree (what is attached to them too): signatures (Sigstore bundle referrers and legacy cosign .sig layers), approvals (role, note, ticket, incident, time), other attestations and artifacts, and dangling entries.

Without --key/--trust nothing is verified: the tree shows what each referrer CLAIMS (predicate, key hint, approval fields). With --key or --trust each signature is verified over the manifest digest and its signer named (the key file name, or the trust policy's key name).`
  static override examples = [
    '<%= config.bin %> discover registry.example.com/policies/org:stable',
    '<%= config.bin %> discover oci:./policies:1.4.0 --trust trust.yaml',
    '<%= config.bin %> discover 127.0.0.1:5000/policies/org@sha256:… --key release.pub --json',
  ]
  static override args = {
    ref: Args.string({description: 'the policy reference', required: true}),
  }
  static override flags = {
    ...verificationFlags,
    ...registryFlags,
  }

  async run(): Promise<DiscoverCommandResult> {
    const {args, flags} = await this.parse(Discover)
    const v = loadVerification(flags, false)
    const registry = await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(args.ref)})
    const opened = await openForRead(args.ref, {registry})
    let r: DiscoverResult
    try {
      r = await discoverReferrers(opened.target, requireSelector(opened), {keys: v.trust?.keys ?? v.keys, keySource: v.trust ? 'trust' : 'keys'})
    } finally {
      await opened.close()
    }
    this.log(`${args.ref}@${r.digest}${r.artifactType ? ` (${r.artifactType})` : ''}`)
    if (r.referrers.length === 0) this.log('└── (no referrers)')
    this.printTree(r.referrers, '')
    if (r.verifiedWith === 'nothing' && r.referrers.length > 0) this.info('note: nothing was verified; pass --key or --trust to check the signatures')
    return {reference: args.ref, ...r}
  }

  private printTree(nodes: DiscoverNode[], indent: string): void {
    nodes.forEach((n, i) => {
      const last = i === nodes.length - 1
      this.log(`${indent}${last ? '└── ' : '├── '}${describe(n)}`)
      const sub = `${indent}${last ? '    ' : '│   '}`
      if (n.approval) {
        const a = n.approval
        const parts = [`role ${String(a.role)}`, a.ticket !== undefined ? `ticket ${String(a.ticket)}` : '', a.incident !== undefined ? `incident ${String(a.incident)}` : '', a.approvedAt !== undefined ? `at ${String(a.approvedAt)}` : '']
        this.log(`${sub}${nodes.length ? '  ' : ''}${parts.filter(Boolean).join(', ')}${a.note !== undefined ? `: ${String(a.note)}` : ''}`)
      }
      if (n.problem && n.verified !== true) this.log(`${sub}  ${n.problem}`)
      this.printTree(n.referrers, sub)
    })
  }
}

function describe(n: DiscoverNode): string {
  const status = n.verified === undefined ? (n.kind === 'signature' || n.kind === 'approval' || n.kind === 'attestation' ? ' [unverified]' : '') : n.verified ? ' [verified]' : ' [NOT VERIFIED]'
  const who = n.signer ? ` by ${n.signer.name === undefined ? n.signer.keyId : `'${n.signer.name}' (${n.signer.keyId})`}` : n.keyHint ? ` key hint ${n.keyHint}` : ''
  const what = n.kind === 'attestation' ? `attestation ${n.predicateType ?? ''}` : n.kind === 'artifact' ? `artifact ${n.artifactType ?? ''}` : n.kind
  return `${what}${n.format === 'cosign-legacy' ? ' (legacy .sig)' : ''} ${n.id}${who}${status}${n.created ? ` ${n.created}` : ''}`
}

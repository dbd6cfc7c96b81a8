import {Args} from '@oclif/core'

import {BaseCommand} from '../src/cli/base.js'
import {loadVerification, registryFlags, registriesOf, registryOptions, verificationFlags} from '../src/cli/registry-flags.js'
import {type DiscoverNode, type DiscoverResult, discoverReferrers, openForRead} from '../src/distribute/index.js'
import {InputError} from '../src/errors.js'
import {type VersionGovernance, governanceByVersion, governanceOf} from '../src/govern/index.js'

/** One reference: the referrer tree (and its governance with keys); a repository: every version's governance. */
export type DiscoverCommandResult =
  | (DiscoverResult & {reference: string; governance?: VersionGovernance})
  | {reference: string; location: string; verifiedWith: 'keys' | 'trust'; versions: VersionGovernance[]}

const QUORUM: Record<VersionGovernance['quorum']['status'], string> = {
  met: 'quorum met',
  'met-emergency': 'accepted as an EMERGENCY change, retroactive approval pending',
  'approvals-missing': 'approvals MISSING (pull/start refuse it, exit 5)',
  unmet: 'signatures MISSING (pull/start refuse it, exit 2)',
  invalid: 'INVALID (pull/start refuse it)',
  unchecked: 'quorum not checked (pass --trust)',
}

export default class Discover extends BaseCommand<DiscoverCommandResult> {
  static override summary = 'Show who signed and approved a policy: the attached signatures, approvals and artifacts, per version'
  static override description = `With a tag or digest, lists the referrers of REF's manifest as a tree (what is attached to them too): signatures (Sigstore bundle referrers and legacy cosign .sig layers), approvals (role, note, ticket, incident, time), other attestations and artifacts, and dangling entries.

Without --key/--trust nothing is verified: the tree shows what each referrer CLAIMS (predicate, key hint, approval fields). With --key or --trust each signature is verified over the manifest digest and its signer named (the key file name, or the trust policy's key name), followed by a governance summary: who signed (and which role each signature was counted for), who approved (role, note, ticket, incident, when, and whether it counts), and the quorum status as pull and start would decide it.

With a repository (no tag or digest) and --trust (or --key), prints that summary for every tagged version, grouped by digest.`
  static override examples = [
    '<%= config.bin %> discover registry.example.com/policies/org:stable',
    '<%= config.bin %> discover oci:./policies:1.4.0 --trust trust.yaml',
    '<%= config.bin %> discover registry.example.com/policies/org --trust trust.yaml',
    '<%= config.bin %> discover 127.0.0.1:5000/policies/org@sha256:… --key release.pub --json',
  ]
  static override args = {
    ref: Args.string({description: 'the policy reference (a repository lists every version)', required: true}),
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
    const keys = v.trust?.keys ?? v.keys
    const verifiedWith = v.trust ? ('trust' as const) : ('keys' as const)
    try {
      if (opened.selector === undefined) {
        // A repository: every version's governance (needs keys to say anything true).
        if (!keys) {
          throw new InputError('KEYS_OR_TRUST', `${args.ref} names a repository: listing who signed and approved each version needs --trust TRUST.yaml (or --key PUB)`, {
            suggestions: [`aibox discover ${args.ref} --trust trust.yaml`, `or name one version: aibox discover ${args.ref}:TAG`],
          })
        }
        const versions = await governanceByVersion(opened.target, {trust: v.trust, keys: v.keys})
        this.log(`${opened.display}: ${versions.length} version${versions.length === 1 ? '' : 's'}`)
        for (const g of versions) this.printGovernance(g, '')
        return {reference: args.ref, location: opened.target.location, verifiedWith, versions}
      }
      const r = await discoverReferrers(opened.target, opened.selector, {keys, keySource: v.trust ? 'trust' : 'keys', ...(v.trust?.keyless ? {keyless: v.trust.keyless, identities: v.trust.identities ?? []} : {})})
      this.log(`${args.ref}@${r.digest}${r.artifactType ? ` (${r.artifactType})` : ''}`)
      if (r.referrers.length === 0) this.log('└── (no referrers)')
      this.printTree(r.referrers, '')
      if (r.verifiedWith === 'nothing' && r.referrers.length > 0) this.info('note: nothing was verified; pass --key or --trust to check the signatures')
      let governance: VersionGovernance | undefined
      if (keys && r.artifactType === 'application/vnd.aibox.policy.bundle.v1+json') {
        governance = await governanceOf(opened.target, r.digest, {trust: v.trust, keys: v.keys})
        this.log('')
        this.printGovernance(governance, '')
      }
      return {reference: args.ref, ...r, ...(governance ? {governance} : {})}
    } finally {
      await opened.close()
    }
  }

  private printGovernance(g: VersionGovernance, indent: string): void {
    const names = g.tags.length ? g.tags.join(', ') : g.digest
    this.log(`${indent}${g.version ?? '?'}${g.tier ? ` (tier ${g.tier})` : ''}  ${names}${g.draft ? '  [draft]' : ''}`)
    this.log(`${indent}  digest ${g.digest}`)
    if (g.emergency) this.log(`${indent}  emergency change, incident ${g.emergency.incident}`)
    for (const s of g.signers) {
      const roles = s.countedAs.length ? `counted as ${s.countedAs.join(', ')}` : s.roles.length ? `roles ${s.roles.join(', ')}` : 'not in the trust policy'
      this.log(`${indent}  signed by '${s.key}' (${s.identity ? `keyless ${s.identity.subject}, issuer ${s.identity.issuer}` : s.keyId}; ${roles})${s.created ? ` ${s.created}` : ''}`)
    }
    if (g.signers.length === 0) this.log(`${indent}  signed by nobody the keys trust`)
    for (const a of g.approvals) {
      const extra = [a.ticket ? `ticket ${a.ticket}` : '', a.incident ? `incident ${a.incident}` : ''].filter(Boolean).join(', ')
      const verdict = a.eligible === false ? `  [does not count: ${a.reason ?? 'refused'}]` : ''
      this.log(`${indent}  approved by '${a.key}' (${a.keyId}) as ${a.role} at ${a.approvedAt}${extra ? ` (${extra})` : ''}: ${a.note}${verdict}`)
    }
    this.log(`${indent}  ${QUORUM[g.quorum.status]}`)
    for (const sc of g.quorum.scopes) {
      const reqs = sc.via === 'emergency' && sc.emergency ? sc.emergency.requirements : sc.requirements
      this.log(`${indent}    scope '${sc.scope}'${sc.via === 'emergency' ? ' (emergency path)' : ''}: ${reqs.map((q) => `${q.role} ${q.kind} ${q.keys.length}/${q.threshold}${q.keys.length ? ` (${q.keys.join(', ')})` : ''}`).join('; ')}`)
    }
    for (const m of g.quorum.missing) this.log(`${indent}    ${m}`)
    if (g.quorum.status === 'invalid' && g.quorum.message) this.log(`${indent}    ${g.quorum.message}`)
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
  const s = n.signer
  const who = s ? ` by ${s.identity ? `${s.identity.subject} (issuer ${s.identity.issuer}, keyless)` : s.name === undefined ? s.keyId : `'${s.name}' (${s.keyId})`}` : n.keyHint ? ` key hint ${n.keyHint}` : ''
  const what = n.kind === 'attestation' ? `attestation ${n.predicateType ?? ''}` : n.kind === 'artifact' ? `artifact ${n.artifactType ?? ''}` : n.kind
  return `${what}${n.format === 'cosign-legacy' ? ' (legacy .sig)' : ''} ${n.id}${who}${status}${n.created ? ` ${n.created}` : ''}`
}

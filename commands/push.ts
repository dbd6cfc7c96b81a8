import {Args, Flags} from '@oclif/core'

import {auditLogFlag} from '../src/cli/audit-flags.js'
import {BaseCommand} from '../src/cli/base.js'
import {keylessFlags, keylessSignerFromFlags} from '../src/cli/keyless-flags.js'
import {TransferProgress} from '../src/cli/progress.js'
import {loadSigningKey, registryFlags, registriesOf, registryOptions, signingKeyFlags} from '../src/cli/registry-flags.js'
import {InputError} from '../src/errors.js'
import {type GovernedPushResult, governedPush} from '../src/govern/index.js'
import {loadTrustPolicy} from '../src/trust/index.js'

export type PushResult = Omit<GovernedPushResult, 'manifest'> & {mediaType: string; size: number}

export default class Push extends BaseCommand<PushResult> {
  static override summary = 'Publish a signed policy bundle to a registry or an OCI layout'
  static override description = `Loads and validates BUNDLE, packs its RFC 8785 canonical JSON (and YAML source) as an OCI artifact (artifactType application/vnd.aibox.policy.bundle.v1+json), pushes it, attaches a cosign-compatible signature (Sigstore bundle v0.3 referrer over the manifest digest), then tags it with the bundle's version, REF's tag and every --tag.

REF is registry/repo, registry/repo:channel, or oci:DIR[:tag] (a local OCI layout, created when missing: no server needed).

Submit gate: for a protected tier (org and team by default; a trust policy scope may say protected: true|false), the push is refused (exit 5) unless the bundle only tightens the tiers above it (--against, most general first: a file, or a reference verified with --trust) and passes its own policy tests (BUNDLE's sibling <name>.tests.yaml and every --tests). --draft pushes anyway, tagged draft-<version> only: pull and start never use a draft, and the same bundle pushed later as a release gets the same digest, so approvals given to the draft carry over.

Emergency change: --emergency --incident ID marks the change in the signed manifest; it is pushed only when the trust policy (--trust) has an emergency path for the destination that this key alone satisfies, is logged as policy.emergency, and is listed by aibox audit emergencies until someone else approves its digest.

The same bundle always gives the same manifest digest: nothing time-dependent is packed, except org.opencontainers.image.created when SOURCE_DATE_EPOCH is set. A version with build metadata (1.0.0+abc) is tagged 1.0.0_abc (tags cannot hold "+").

Keyless (--keyless instead of --key): the signature is made with YOUR Sigstore before anything is pushed — a Fulcio certificate (--fulcio-url / AIBOX_FULCIO_URL) for the OIDC token in SIGSTORE_ID_TOKEN (or AIBOX_OIDC_TOKEN), a Rekor entry (--rekor-url / AIBOX_REKOR_URL) and/or an RFC 3161 timestamp (--tsa-url / AIBOX_TSA_URL). Key-based signing stays the default and needs no network besides the destination.

Writes policy.pushed and policy.signed (and policy.emergency) to the audit log.`
  static override examples = [
    'COSIGN_PASSWORD=… <%= config.bin %> push org/baseline.yaml registry.example.com/policies/org:stable --key release.key',
    '<%= config.bin %> push teams/alpha/policy.yaml registry.example.com/policies/teams/alpha --key lead.key --against registry.example.com/policies/org:stable --trust trust.yaml',
    '<%= config.bin %> push teams/alpha/policy.yaml oci:./policies/team --key lead.key --against org/baseline.yaml --draft',
    '<%= config.bin %> push org/baseline.yaml registry.example.com/policies/org --key security.key --emergency --incident INC-4711 --reason "block exfiltration host" --trust trust.yaml',
    '<%= config.bin %> push org/baseline.yaml oci:./policies --key release.key --tag stable --json',
    'SIGSTORE_ID_TOKEN=… <%= config.bin %> push org/baseline.yaml registry.example.com/policies/org:stable --keyless --fulcio-url https://fulcio.example.com --rekor-url https://rekor.example.com',
  ]
  static override args = {
    bundle: Args.string({description: 'the policy bundle file (YAML or JSON)', required: true}),
    ref: Args.string({description: 'destination: registry/repo[:tag] or oci:DIR[:tag]', required: true}),
  }
  static override flags = {
    ...signingKeyFlags,
    key: Flags.string({summary: 'private key file (cosign format) to sign with; or --keyless', helpValue: 'FILE', helpGroup: 'KEY'}),
    ...keylessFlags,
    tag: Flags.string({summary: 'also tag it with this channel (repeatable)', multiple: true, helpValue: 'TAG'}),
    'cosign-legacy': Flags.boolean({summary: "also write cosign's legacy sha256-<hex>.sig signature (for cosign v1/v2 verifiers)"}),
    'no-source': Flags.boolean({summary: 'do not include the YAML source layer (only the canonical JSON)'}),
    against: Flags.string({summary: 'a tier above (file or reference), most general first; repeatable', multiple: true, helpValue: 'FILE|REF', helpGroup: 'GOVERNANCE'}),
    tests: Flags.string({summary: 'a policy tests file the bundle must pass (repeatable; <name>.tests.yaml next to BUNDLE is always used)', multiple: true, helpValue: 'FILE', helpGroup: 'GOVERNANCE'}),
    draft: Flags.boolean({summary: 'push as a draft: tagged draft-<version> only, never refused by the gate, never used as a release', exclusive: ['emergency'], helpGroup: 'GOVERNANCE'}),
    trust: Flags.string({summary: 'trust policy: protected scopes, emergency paths, and the keys to verify --against references', helpValue: 'FILE', helpGroup: 'GOVERNANCE'}),
    emergency: Flags.boolean({summary: 'an emergency change (needs --incident and --trust)', dependsOn: ['incident', 'trust'], helpGroup: 'GOVERNANCE'}),
    incident: Flags.string({summary: 'the incident reference of the emergency change', dependsOn: ['emergency'], helpValue: 'ID', helpGroup: 'GOVERNANCE'}),
    reason: Flags.string({summary: 'why the emergency change is needed (audit log)', dependsOn: ['emergency'], helpValue: 'TEXT', helpGroup: 'GOVERNANCE'}),
    ticket: Flags.string({summary: 'change ticket of the emergency change (audit log)', dependsOn: ['emergency'], helpValue: 'ID', helpGroup: 'GOVERNANCE'}),
    'audit-log': auditLogFlag,
    ...registryFlags,
  }

  async run(): Promise<PushResult> {
    const {args, flags} = await this.parse(Push)
    const keyless = keylessSignerFromFlags(flags)
    if (keyless && flags['key-password-stdin']) throw new InputError('PASSWORD_WITH_KEYLESS', '--key-password-stdin is the key password: keyless signing has no key file')
    if (keyless && flags['cosign-legacy']) throw new InputError('LEGACY_WITH_KEYLESS', "--cosign-legacy writes cosign's key-signed .sig layout; keyless signatures are Sigstore bundle referrers only")
    const trust = flags.trust ? loadTrustPolicy(flags.trust) : undefined
    const key = keyless ? undefined : await loadSigningKey({...flags, key: flags.key!})
    const registry = await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(args.ref, ...(flags.against ?? []))})
    const progress = new TransferProgress({enabled: this.interactive, label: `push ${args.ref}`})
    let r: GovernedPushResult
    try {
      r = await governedPush({
        bundle: args.bundle,
        reference: args.ref,
        ...(keyless ? {keyless} : {key}),
        tags: flags.tag,
        cosignLegacy: flags['cosign-legacy'],
        includeSource: !flags['no-source'],
        against: flags.against,
        tests: flags.tests,
        draft: flags.draft,
        trust,
        ...(flags.emergency ? {emergency: {incident: flags.incident!, ...(flags.reason ? {reason: flags.reason} : {}), ...(flags.ticket ? {ticket: flags.ticket} : {})}} : {}),
        registry,
        onProgress: progress.onProgress,
        audit: {log: flags['audit-log']},
      })
    } finally {
      progress.stop()
    }
    const g = r.gate
    this.log(`Pushed ${r.name} ${r.version} (tier ${r.tier})${r.draft ? ' as a DRAFT' : ''}${r.emergency ? ` as an EMERGENCY change (incident ${r.emergency.incident})` : ''} to ${r.repository}`)
    this.log(`  digest:    ${r.digest}`)
    this.log(`  content:   ${r.contentDigest}`)
    const who = r.signature.keyless ? `${r.signature.keyless.identity.subject} (issuer ${r.signature.keyless.identity.issuer}, keyless: ${r.signature.keyless.tlogEntries} tlog entr${r.signature.keyless.tlogEntries === 1 ? 'y' : 'ies'}, ${r.signature.keyless.timestamps} timestamp(s))` : r.signature.keyId
    this.log(`  signed by: ${who} (signature ${r.signature.digest})`)
    if (r.legacySignature) this.log(`  legacy:    ${r.legacySignature.tag}`)
    if (g.protected) {
      this.log(`  gate:      ${g.ok ? 'passed' : 'FAILED'} (${g.protectedBy}): tighten-only ${g.tightenOnly.status}, tests ${g.tests.status}${g.tests.passed + g.tests.failed > 0 ? ` (${g.tests.passed} passed, ${g.tests.failed} failed)` : ''}`)
      for (const p of g.problems) this.log(`    ${p}`)
    } else {
      this.log(`  gate:      not protected (${g.protectedBy})`)
    }
    for (const ref of r.refs) this.log(`  ${ref}`)
    for (const n of r.notes) this.info(`note: ${n}`)
    if (r.emergency) this.info(`note: list emergency changes awaiting their retroactive approval with: aibox audit emergencies`)
    const {manifest, ...rest} = r
    return {...rest, mediaType: manifest.mediaType, size: r.size}
  }
}

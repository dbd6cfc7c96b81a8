import {Args, Flags} from '@oclif/core'

import {auditLogFlag} from '../src/cli/audit-flags.js'
import {BaseCommand} from '../src/cli/base.js'
import {TransferProgress} from '../src/cli/progress.js'
import {loadSigningKey, registryFlags, registriesOf, registryOptions, signingKeyFlags} from '../src/cli/registry-flags.js'
import {type PushPolicyResult, pushPolicy} from '../src/distribute/index.js'

export type PushResult = Omit<PushPolicyResult, 'manifest'> & {mediaType: string; size: number}

export default class Push extends BaseCommand<PushResult> {
  static override summary = 'Publish a signed policy bundle to a registry or an OCI layout'
  static override description = `Loads and validates BUNDLE, packs its RFC 8785 canonical JSON (and YAML source) as an OCI artifact (artifactType application/vnd.aibox.policy.bundle.v1+json), pushes it, attaches a cosign-compatible signature (Sigstore bundle v0.3 referrer over the manifest digest), then tags it with the bundle's version, REF's tag and every --tag.

REF is registry/repo, registry/repo:channel, or oci:DIR[:tag] (a local OCI layout, created when missing: no server needed).

The same bundle always gives the same manifest digest: nothing time-dependent is packed, except org.opencontainers.image.created when SOURCE_DATE_EPOCH is set. A version with build metadata (1.0.0+abc) is tagged 1.0.0_abc (tags cannot hold "+").

Writes policy.pushed and policy.signed to the audit log.`
  static override examples = [
    'COSIGN_PASSWORD=… <%= config.bin %> push org/baseline.yaml registry.example.com/policies/org:stable --key release.key',
    '<%= config.bin %> push org/baseline.yaml oci:./policies --key release.key --tag stable --json',
    '<%= config.bin %> push org/baseline.yaml 127.0.0.1:5000/policies/org --key release.key --cosign-legacy',
  ]
  static override args = {
    bundle: Args.string({description: 'the policy bundle file (YAML or JSON)', required: true}),
    ref: Args.string({description: 'destination: registry/repo[:tag] or oci:DIR[:tag]', required: true}),
  }
  static override flags = {
    ...signingKeyFlags,
    tag: Flags.string({summary: 'also tag it with this channel (repeatable)', multiple: true, helpValue: 'TAG'}),
    'cosign-legacy': Flags.boolean({summary: "also write cosign's legacy sha256-<hex>.sig signature (for cosign v1/v2 verifiers)"}),
    'no-source': Flags.boolean({summary: 'do not include the YAML source layer (only the canonical JSON)'}),
    'audit-log': auditLogFlag,
    ...registryFlags,
  }

  async run(): Promise<PushResult> {
    const {args, flags} = await this.parse(Push)
    const key = await loadSigningKey(flags)
    const registry = await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(args.ref)})
    const progress = new TransferProgress({enabled: this.interactive, label: `push ${args.ref}`})
    let r: PushPolicyResult
    try {
      r = await pushPolicy({
        bundle: args.bundle,
        reference: args.ref,
        key,
        tags: flags.tag,
        cosignLegacy: flags['cosign-legacy'],
        includeSource: !flags['no-source'],
        registry,
        onProgress: progress.onProgress,
        audit: {log: flags['audit-log']},
      })
    } finally {
      progress.stop()
    }
    this.log(`Pushed ${r.name} ${r.version} (tier ${r.tier}) to ${r.repository}`)
    this.log(`  digest:    ${r.digest}`)
    this.log(`  content:   ${r.contentDigest}`)
    this.log(`  signed by: ${r.signature.keyId} (signature ${r.signature.digest})`)
    if (r.legacySignature) this.log(`  legacy:    ${r.legacySignature.tag}`)
    for (const ref of r.refs) this.log(`  ${ref}`)
    const {manifest, ...rest} = r
    return {...rest, mediaType: manifest.mediaType, size: r.size}
  }
}

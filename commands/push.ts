import {Args, Flags} from '@oclif/core'

import {auditLogFlag} from '../src/cli/audit-flags.js'
import {BaseCommand} from '../src/cli/base.js'
import {keylessFlags, keylessSignerFromFlags} from '../src/cli/keyless-flags.js'
import {TransferProgress} from '../src/cli/progress.js'
import {loadSigningKey, registryFlags, registriesOf, registryOptions, signingKeyFlags} from '../src/cli/registry-flags.js'
import {type PushPolicyResult, pushPolicy} from '../src/distribute/index.js'
import {InputError} from '../src/errors.js'

export type PushResult = Omit<PushPolicyResult, 'manifest'> & {mediaType: string; size: number}

export default class Push extends BaseCommand<PushResult> {
  static override summary = 'Publish a signed policy bundle to a registry or an OCI layout'
  static override description = `Loads and validates BUNDLE, packs its RFC 8785 canonical JSON (and YAML source) as an OCI artifact (artifactType application/vnd.aibox.policy.bundle.v1+json), pushes it, attaches a cosign-compatible signature (Sigstore bundle v0.3 referrer over the manifest digest), then tags it with the bundle's version, REF's tag and every --tag.

REF is registry/repo, registry/repo:channel, or oci:DIR[:tag] (a local OCI layout, created when missing: no server needed).

The same bundle always gives the same manifest digest: nothing time-dependent is packed, except org.opencontainers.image.created when SOURCE_DATE_EPOCH is set. A version with build metadata (1.0.0+abc) is tagged 1.0.0_abc (tags cannot hold "+").

Keyless (--keyless instead of --key): the signature is made with YOUR Sigstore before anything is pushed — a Fulcio certificate (--fulcio-url / AIBOX_FULCIO_URL) for the OIDC token in SIGSTORE_ID_TOKEN (or AIBOX_OIDC_TOKEN), a Rekor entry (--rekor-url / AIBOX_REKOR_URL) and/or an RFC 3161 timestamp (--tsa-url / AIBOX_TSA_URL). Key-based signing stays the default and needs no network besides the destination.

Writes policy.pushed and policy.signed to the audit log.`
  static override examples = [
    'COSIGN_PASSWORD=… <%= config.bin %> push org/baseline.yaml registry.example.com/policies/org:stable --key release.key',
    '<%= config.bin %> push org/baseline.yaml oci:./policies --key release.key --tag stable --json',
    '<%= config.bin %> push org/baseline.yaml 127.0.0.1:5000/policies/org --key release.key --cosign-legacy',
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
    'audit-log': auditLogFlag,
    ...registryFlags,
  }

  async run(): Promise<PushResult> {
    const {args, flags} = await this.parse(Push)
    const keyless = keylessSignerFromFlags(flags)
    if (keyless && flags['key-password-stdin']) throw new InputError('PASSWORD_WITH_KEYLESS', '--key-password-stdin is the key password: keyless signing has no key file')
    if (keyless && flags['cosign-legacy']) throw new InputError('LEGACY_WITH_KEYLESS', "--cosign-legacy writes cosign's key-signed .sig layout; keyless signatures are Sigstore bundle referrers only")
    const key = keyless ? undefined : await loadSigningKey({...flags, key: flags.key!})
    const registry = await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(args.ref)})
    const progress = new TransferProgress({enabled: this.interactive, label: `push ${args.ref}`})
    let r: PushPolicyResult
    try {
      r = await pushPolicy({
        bundle: args.bundle,
        reference: args.ref,
        ...(keyless ? {keyless} : {key}),
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
    const who = r.signature.keyless ? `${r.signature.keyless.identity.subject} (issuer ${r.signature.keyless.identity.issuer}, keyless: ${r.signature.keyless.tlogEntries} tlog entr${r.signature.keyless.tlogEntries === 1 ? 'y' : 'ies'}, ${r.signature.keyless.timestamps} timestamp(s))` : r.signature.keyId
    this.log(`  signed by: ${who} (signature ${r.signature.digest})`)
    if (r.legacySignature) this.log(`  legacy:    ${r.legacySignature.tag}`)
    for (const ref of r.refs) this.log(`  ${ref}`)
    const {manifest, ...rest} = r
    return {...rest, mediaType: manifest.mediaType, size: r.size}
  }
}

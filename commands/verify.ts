import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../src/cli/base.js'
import {type VerifiedPolicySummary, summarizeVerified, verifiedLines} from '../src/cli/policy-result.js'
import {isReferenceArgument} from '../src/cli/reference-arg.js'
import {loadVerification, registryFlags, registriesOf, registryOptions} from '../src/cli/registry-flags.js'
import {isDraftTag, openForRead, requireSelector, verifyPolicyArtifact, withDigest} from '../src/distribute/index.js'
import {InputError} from '../src/errors.js'
import {tenantAdminFlags, tenantContext, tenantFlag} from '../src/cli/tenant-flags.js'
import type {CrossTenantRead} from '../src/tenant/index.js'
import {type VerifiedSignature, type VerifyFileResult, verifyFileWithKeys} from '../src/sign/index.js'
import {type Tier, type VerifyFileTrustResult, verifyFileWithTrust} from '../src/trust/index.js'

export type VerifyReferenceResult = VerifiedPolicySummary & {verified: true; reference: string; crossTenant?: CrossTenantRead}
export type VerifyResult = VerifyFileResult | VerifyFileTrustResult | VerifyReferenceResult

export default class Verify extends BaseCommand<VerifyResult> {
  static override summary = 'Verify a published policy reference, or a file’s signature(s), against a key or a trust policy'
  static override description = `TARGET is a file or a reference: a reference when it starts with oci: or oci-archive:, or when no such file exists and it reads as registry/repo:tag or registry/repo@sha256:…; otherwise a file (which needs --signature).

A reference is verified as aibox pull does, without writing anything (a draft- tag is verified too, for review; pull and start refuse drafts): a signature over the exact manifest digest by a trusted key (--key) or as the trust policy requires (--trust; scopes match the reference — or --ref — and the tier of the signed content), the layer digest, RFC 8785 canonical content, the dev.aibox.policy.digest annotation and the other annotations against the content.

For a file, the signature kind is detected: Sigstore bundle v0.1-v0.3 (DSSE or message signature; public key or certificate), DSSE envelope, cosign sign-blob signature (base64 with or without newline, or raw DER), cosign's legacy LocalSignedPayload bundle, or a containers/image sigstore-json signature (then FILE is the image manifest).

A statement's subject must name FILE's digest (or the envelope's payload must be FILE). With --key, transparency-log entries and timestamps are reported but not checked (like cosign --insecure-ignore-tlog). A keyless signature (a Fulcio certificate) is verified with the trust policy's keyless trust material — certificate chain, tlog entries, RFC 3161 timestamps — and its certified identity (issuer + subject) must match one of the policy's identities. Verification never makes a network call.

With --key, every --signature must verify with one of the keys. With --trust, the signatures are checked against the trust policy: every scope matching --ref / --tier must have its thresholds met by distinct, valid, unrevoked keys, approvals included (a key that signed never counts as an approver; approvals only count for roles their key holds).

Exit codes: 0 verified, 1 bad input, 2 verification failed, 3 a file does not exist, 5 approvals missing (quorum or separation of duties).`

  static override examples = [
    '<%= config.bin %> verify policy.yaml --signature policy.yaml.sigstore.json --key cosign.pub',
    '<%= config.bin %> verify artifact.txt --signature artifact.sig --key cosign.pub',
    '<%= config.bin %> verify policy.yaml --signature alice.sigstore.json --signature bob.sigstore.json --trust trust.yaml --ref registry.example.com/policies/org --tier org',
    '<%= config.bin %> verify registry.example.com/policies/org:stable --trust trust.yaml',
    '<%= config.bin %> verify oci:./policies:1.4.0 --key release.pub --json',
  ]

  static override args = {
    file: Args.string({description: 'the signed file, or a policy reference', required: true}),
  }

  static override flags = {
    signature: Flags.string({description: 'a signature file (repeatable; files only)', multiple: true}),
    key: Flags.string({description: 'a trusted public key or certificate (repeatable)', multiple: true, exactlyOne: ['key', 'trust']}),
    trust: Flags.string({description: 'a trust policy file (YAML)', exactlyOne: ['key', 'trust']}),
    ref: Flags.string({description: 'the reference the file (or the oci: copy) is published under, for trust-policy scopes (registry/repository[:tag])', dependsOn: ['trust']}),
    tier: Flags.string({description: 'the policy tier, for trust-policy scopes (files only: a reference’s tier is read from its signed content)', options: ['org', 'team', 'project'], dependsOn: ['trust']}),
    ...tenantFlag,
    ...tenantAdminFlags,
    ...registryFlags,
  }

  async run(): Promise<VerifyResult> {
    const {args, flags} = await this.parse(Verify)
    if (!flags.signature?.length && isReferenceArgument(args.file)) {
      if (flags.tier) throw new InputError('TIER_WITH_REFERENCE', "--tier applies to files: a reference's tier is read from its signed content")
      const verification = loadVerification(flags, true)
      const tenants = await tenantContext(flags, {trust: verification.trust})
      if (tenants.tenant !== undefined) this.info(`tenant ${tenants.tenant}`)
      const opened = await openForRead(args.file, {registry: await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(args.file)})})
      try {
        // Reviewers verify drafts before approving them; pull and start refuse draft- tags.
        const selector = requireSelector(opened)
        const v = await verifyPolicyArtifact(opened.target, selector, {...verification, reference: flags.ref, allowDraft: true})
        const reference = withDigest(opened.reference, v.manifest.digest)
        // README "Tenants": another tenant's policy only with a proven, logged admin scope.
        const crossTenant = await tenants.authorize({policyTenant: v.tenant, reference, digest: v.manifest.digest, version: v.version, operation: 'verify'})
        if (crossTenant) this.info(`cross-tenant read of tenant ${crossTenant.toTenant}'s policy as ${crossTenant.fromTenant} with tenant-admin key '${crossTenant.key}' (${crossTenant.keyId}): logged`)
        this.log(`Verified ${v.name} ${v.version} (tier ${v.tier}) ${reference}`)
        if (isDraftTag(selector)) this.info(`note: ${selector} is a draft: pull and start refuse it until it is pushed without --draft`)
        this.log(`  content ${v.contentDigest}`)
        for (const line of verifiedLines(v)) this.log(line)
        if (v.rejected.length > 0) this.info(`  note: ${v.rejected.length} other referrer(s) did not verify with the trusted keys and were ignored (details: --json .rejected, or aibox discover)`)
        return {verified: true, reference, ...summarizeVerified(v), ...(crossTenant ? {crossTenant} : {})}
      } finally {
        await opened.close()
      }
    }
    if (!flags.signature?.length) {
      throw new InputError('MISSING_SIGNATURE', `${args.file} is a file: pass its signature with --signature FILE`, {
        suggestions: ['to verify a published policy, pass its reference (registry/repo:tag or oci:DIR:tag)'],
      })
    }
    const result = flags.trust
      ? await verifyFileWithTrust({file: args.file, signatures: flags.signature, trustFile: flags.trust, ref: flags.ref, tier: flags.tier as Tier | undefined})
      : await verifyFileWithKeys({file: args.file, signatures: flags.signature, keyFiles: flags.key ?? []})
    this.log(`Verified ${result.file} (${result.digest})`)
    for (const s of result.signatures) {
      this.log(`  ${s.source}: ${describe(s)}, signed by ${s.signers.map((k) => (k.identity ? `${k.identity.subject} (issuer ${k.identity.issuer}, keyless)` : k.name ? `'${k.name}' (${k.keyId})` : k.keyId)).join(', ')}`)
      for (const w of s.warnings) this.info(`  note: ${s.source}: ${w}`)
    }
    if (isTrustResult(result)) {
      for (const sc of result.trust.scopes) {
        this.log(`  trust scope '${sc.scope}': ${sc.requirements.map((r) => `${r.role} ${r.keys.length}/${r.threshold} (${r.keys.join(', ')})`).join('; ')}`)
      }
      for (const r of result.trust.refused) this.info(`  refused: ${r.message}`)
      for (const r of result.rejected) this.info(`  rejected: ${r.message}`)
    }
    return result
  }
}

function isTrustResult(r: VerifyResult): r is VerifyFileTrustResult {
  return 'trust' in r
}

function describe(s: VerifiedSignature): string {
  const kind =
    s.format === 'sigstore-bundle'
      ? `Sigstore bundle v${s.bundle!.version} (${s.bundle!.content === 'dsse' ? 'DSSE' : 'message signature'})`
      : {dsse: 'DSSE envelope', raw: 'raw signature', 'cosign-local-bundle': 'cosign bundle', 'simple-signing': 'cosign simple signing'}[s.format]
  return s.predicateType ? `${kind}, ${s.predicateType}` : kind
}

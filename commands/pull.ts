import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../src/cli/base.js'
import {type VerifiedPolicySummary, summarizeVerified, verifiedLines} from '../src/cli/policy-result.js'
import {loadVerification, registryFlags, registriesOf, registryOptions, verificationFlags} from '../src/cli/registry-flags.js'
import {tenantAdminFlags, tenantContext, tenantFlag} from '../src/cli/tenant-flags.js'
import {pullPolicy} from '../src/distribute/index.js'
import type {CrossTenantRead} from '../src/tenant/index.js'

export type PullResult = VerifiedPolicySummary & {reference: string; files: string[]; crossTenant?: CrossTenantRead}

export default class Pull extends BaseCommand<PullResult> {
  static override summary = 'Fetch a policy, verify it, and write it to a directory'
  static override description = `Fetches REF (registry/repo:tag, …@sha256:…, oci:DIR:tag or oci-archive:FILE:tag) and verifies, before writing anything:
  - a signature over the exact manifest digest by a trusted key (--key) or as the trust policy requires (--trust: scope by registry/repository and by the tier of the SIGNED content);
  - the layer digest and size against the signed manifest, that the layer is RFC 8785 canonical JSON of a valid aibox bundle, that its digest equals the dev.aibox.policy.digest annotation, and that the title/version/tier annotations agree with the content.

Then writes DIR/<name>.json (the canonical JSON, byte for byte) and DIR/<name>.yaml (the source, when published), atomically. Anything unverified is refused with exit 2 and nothing is written.`
  static override examples = [
    '<%= config.bin %> pull registry.example.com/policies/org:stable --key release.pub -o policies/',
    '<%= config.bin %> pull oci:./policies:1.4.0 --trust trust.yaml --json',
    '<%= config.bin %> pull oci:/media/usb/policies:stable --trust trust.yaml --trust-ref registry.example.com/policies/org',
    '<%= config.bin %> pull registry.example.com/policies/beta:stable --trust trust.yaml --tenant acme --tenant-admin-key admin.key --reason "SEC-42: audit of tenant beta"',
  ]
  static override args = {
    ref: Args.string({description: 'the policy reference', required: true}),
  }
  static override flags = {
    output: Flags.string({char: 'o', summary: 'directory to write into (created when missing)', default: '.', helpValue: 'DIR'}),
    ...verificationFlags,
    'trust-ref': Flags.string({summary: 'the reference the policy is published under, for trust scopes, when REF is a copy (e.g. an oci: layout)', dependsOn: ['trust'], helpValue: 'REF'}),
    ...tenantFlag,
    ...tenantAdminFlags,
    ...registryFlags,
  }

  async run(): Promise<PullResult> {
    const {args, flags} = await this.parse(Pull)
    const verification = loadVerification(flags, true)
    const tenants = await tenantContext(flags, {trust: verification.trust})
    if (tenants.tenant !== undefined) this.info(`tenant ${tenants.tenant}`)
    const registry = await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(args.ref)})
    let crossTenant: CrossTenantRead | undefined
    const r = await pullPolicy({
      reference: args.ref,
      outputDir: flags.output,
      ...verification,
      trustReference: flags['trust-ref'],
      registry,
      // README "Tenants": another tenant's policy is written only with a proven, logged admin scope.
      beforeWrite: async (v, reference) => {
        crossTenant = await tenants.authorize({policyTenant: v.tenant, reference, digest: v.manifest.digest, version: v.version, operation: 'pull'})
      },
    })
    const v = r.verified
    if (crossTenant) this.info(`cross-tenant read of tenant ${crossTenant.toTenant}'s policy as ${crossTenant.fromTenant} with tenant-admin key '${crossTenant.key}' (${crossTenant.keyId}): logged`)
    this.log(`Verified ${v.name} ${v.version} (tier ${v.tier}) ${r.reference}`)
    for (const line of verifiedLines(v)) this.log(line)
    if (v.rejected.length > 0) this.info(`  note: ${v.rejected.length} other referrer(s) did not verify with the trusted keys and were ignored (details: --json .rejected, or aibox discover)`)
    for (const f of r.files) this.log(`  wrote ${f}`)
    return {reference: r.reference, files: r.files, ...summarizeVerified(v), ...(crossTenant ? {crossTenant} : {})}
  }
}

import {Args} from '@oclif/core'

import {BaseCommand} from '../src/cli/base.js'
import {registryFlags, registriesOf, registryOptions} from '../src/cli/registry-flags.js'
import {type InspectPolicyResult, inspectPolicyReference, openForRead, requireSelector} from '../src/distribute/index.js'
import {printInspection} from '../src/cli/inspect-output.js'
import {tenantAdminFlags, tenantAdminTrustFlag, tenantContext, tenantFlag} from '../src/cli/tenant-flags.js'
import {withDigest} from '../src/distribute/index.js'
import type {CrossTenantRead} from '../src/tenant/index.js'

export type InspectRefResult = InspectPolicyResult & {reference: string; crossTenant?: CrossTenantRead}

export default class Inspect extends BaseCommand<InspectRefResult> {
  static override summary = 'Show a published policy: manifest, annotations, policy name/version/tier/digest and referrers'
  static override description = `Reads REF (registry/repo:tag, …@sha256:…, oci:DIR:tag, oci-archive:FILE:tag) without verifying signatures: it shows what is there, and flags annotations that disagree with the policy content. Use aibox verify or aibox pull to decide whether to trust it.`
  static override examples = [
    '<%= config.bin %> inspect registry.example.com/policies/org:stable',
    '<%= config.bin %> inspect oci:./policies:1.4.0 --json',
    '<%= config.bin %> inspect registry.example.com/policies/beta:stable --tenant acme --tenant-admin-key admin.key --trust trust.yaml --reason "SEC-42: audit"',
  ]
  static override args = {
    ref: Args.string({description: 'the reference', required: true}),
  }
  static override flags = {...tenantFlag, ...tenantAdminFlags, ...tenantAdminTrustFlag, ...registryFlags}

  async run(): Promise<InspectRefResult> {
    const {args, flags} = await this.parse(Inspect)
    const tenants = await tenantContext(flags, {trustFile: flags.trust})
    if (tenants.tenant !== undefined) this.info(`tenant ${tenants.tenant}`)
    const registry = await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(args.ref)})
    const opened = await openForRead(args.ref, {registry})
    let r: InspectPolicyResult
    try {
      r = await inspectPolicyReference(opened.target, requireSelector(opened))
    } finally {
      await opened.close()
    }
    // README "Tenants": the content's metadata.tenant decides (inspect verifies nothing else either).
    const crossTenant = await tenants.authorize({policyTenant: r.policy?.tenant ?? undefined, reference: withDigest(opened.reference, r.digest), digest: r.digest, version: r.policy?.version ?? null, operation: 'inspect'})
    if (crossTenant) this.info(`cross-tenant read of tenant ${crossTenant.toTenant}'s policy as ${crossTenant.fromTenant} with tenant-admin key '${crossTenant.key}' (${crossTenant.keyId}): logged`)
    printInspection(args.ref, r, (s) => this.log(s))
    return {reference: args.ref, ...r, ...(crossTenant ? {crossTenant} : {})}
  }
}

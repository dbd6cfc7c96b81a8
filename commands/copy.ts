import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../src/cli/base.js'
import {TransferProgress, formatBytes} from '../src/cli/progress.js'
import {registryFlags, registriesOf, registryOptions} from '../src/cli/registry-flags.js'
import {tenantAdminFlags, tenantAdminTrustFlag, tenantContext, tenantFlag} from '../src/cli/tenant-flags.js'
import {type CopyPolicyResult, copyPolicy} from '../src/distribute/index.js'
import type {CrossTenantRead} from '../src/tenant/index.js'

export type CopyResult = CopyPolicyResult & {crossTenant?: CrossTenantRead}

export default class Copy extends BaseCommand<CopyResult> {
  static override summary = 'Copy a policy artifact with its signatures and approvals between registries and layouts'
  static override description = `SRC and DST are registry/repo[:tag|@digest], oci:DIR[:tag] (created when missing) or, as a source only, oci-archive:FILE[:tag]. The manifest, its layers and — unless --no-referrers — every referrer (signatures, approvals, and what is attached to them) are copied, plus cosign's legacy sha256-<hex>.sig tag when there is one. Content the destination already has is skipped; every byte read is checked against its digest. DST's tag defaults to SRC's tag.

Copying does not verify signatures (use aibox pull / verify on the copy); an unsigned copy made with --no-referrers is refused by them.`
  static override examples = [
    '<%= config.bin %> copy registry.example.com/policies/org:stable oci:./mirror:stable',
    '<%= config.bin %> copy oci:./mirror:stable 127.0.0.1:5000/policies/org:stable',
    '<%= config.bin %> copy oci-archive:policies.tar:1.4.0 oci:./policies --json',
  ]
  static override args = {
    src: Args.string({description: 'source reference', required: true}),
    dst: Args.string({description: 'destination reference', required: true}),
  }
  static override flags = {
    'no-referrers': Flags.boolean({summary: 'copy only the artifact, without its signatures and approvals'}),
    ...tenantFlag,
    ...tenantAdminFlags,
    ...tenantAdminTrustFlag,
    ...registryFlags,
  }

  async run(): Promise<CopyResult> {
    const {args, flags} = await this.parse(Copy)
    const tenants = await tenantContext(flags, {trustFile: flags.trust})
    if (tenants.tenant !== undefined) this.info(`tenant ${tenants.tenant}`)
    let crossTenant: CrossTenantRead | undefined
    const registry = await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(args.src, args.dst)})
    const progress = new TransferProgress({enabled: this.interactive, label: `copy ${args.dst}`})
    let r: CopyPolicyResult
    try {
      r = await copyPolicy({
        source: args.src,
        destination: args.dst,
        referrers: !flags['no-referrers'],
        sourceOptions: {registry},
        onProgress: progress.onProgress,
        // README "Tenants": copying another tenant's policy is a cross-tenant read (no tenant: nothing extra is read).
        ...(tenants.tenant !== undefined
          ? {
              authorize: async (root: {reference: string; digest: string; tenant?: string}) => {
                crossTenant = await tenants.authorize({policyTenant: root.tenant, reference: root.reference, digest: root.digest, version: null, operation: 'copy'})
              },
            }
          : {}),
      })
    } finally {
      progress.stop()
    }
    if (crossTenant) this.info(`cross-tenant read of tenant ${crossTenant.toTenant}'s policy as ${crossTenant.fromTenant} with tenant-admin key '${crossTenant.key}' (${crossTenant.keyId}): logged`)
    this.log(`Copied ${r.source} to ${r.destination}`)
    this.log(`  ${r.copied} copied (${formatBytes(r.bytes)}), ${r.skipped} already there${r.referrers ? ', referrers included' : ', without referrers'}${r.legacySignature ? `, ${r.legacySignature}` : ''}`)
    return {...r, ...(crossTenant ? {crossTenant} : {})}
  }
}

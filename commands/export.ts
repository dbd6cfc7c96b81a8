import {Args, Flags} from '@oclif/core'

import {auditLogFlag} from '../src/cli/audit-flags.js'
import {BaseCommand} from '../src/cli/base.js'
import {TransferProgress, formatBytes} from '../src/cli/progress.js'
import {loadSigningKey, registryFlags, registriesOf, registryOptions, signingKeyFlags} from '../src/cli/registry-flags.js'
import {tenantAdminFlags, tenantAdminTrustFlag, tenantContext, tenantFlag} from '../src/cli/tenant-flags.js'
import {type ExportPoliciesResult, exportPolicies} from '../src/distribute/index.js'
import type {CrossTenantRead} from '../src/tenant/index.js'
import {InputError} from '../src/errors.js'

export type ExportResult = ExportPoliciesResult & {tenant?: string; crossTenant?: CrossTenantRead[]}

export default class Export extends BaseCommand<ExportResult> {
  static override summary = 'Write policies, their signatures and approvals, and a signed seal into an archive for an air-gapped site'
  static override description = `Resolves each REF (registry/repo:tag, …@sha256:…, oci:DIR:tag or oci-archive:FILE:tag), checks that it is a signed policy artifact, and copies it with every referrer (signatures, approvals, and what is attached to them) and cosign's legacy sha256-<hex>.sig into an OCI image layout tar, with a seal: an artifact of type application/vnd.aibox.seal.v1+json whose DSSE statement, signed with --key, lists every manifest digest in the archive, its tags, where each policy came from, who exported it and when.

Every manifest is tagged in the archive (policies by their tag and version, qualified as <repo>-<tag> when two policies claim the same tag; referrers as sha256-<hex>.ref; the seal as aibox-seal), so skopeo and oras can read it too: skopeo copy oci-archive:FILE:TAG docker://….

Same inputs and SOURCE_DATE_EPOCH give a byte-identical archive (fixed order, owners and modes, entry times from SOURCE_DATE_EPOCH, deterministic signature). The archive is built in a temporary directory ($TMPDIR) and written under a temporary name, then renamed: a failed export leaves no file. Writes policy.exported (digest = the seal) to the audit log.

Carry the archive to the site and run aibox import there.`
  static override examples = [
    'COSIGN_PASSWORD=… <%= config.bin %> export registry.example.com/policies/org:stable registry.example.com/policies/teams/alpha:stable -o policies.tar --key exporter.key',
    'SOURCE_DATE_EPOCH=1767225600 <%= config.bin %> export oci:./policies/org:1.4.0 -o org-1.4.0.tar --key exporter.key --json',
    '<%= config.bin %> export registry.example.com/policies/acme:stable -o acme.tar --key exporter.key --tenant acme',
  ]
  static override strict = false
  static override args = {
    ref: Args.string({description: 'policy references to export (one or more)', required: true}),
  }
  static override flags = {
    output: Flags.string({char: 'o', summary: 'archive to write (a tar)', required: true, helpValue: 'FILE'}),
    force: Flags.boolean({summary: 'replace the output file if it exists'}),
    ...signingKeyFlags,
    'audit-log': auditLogFlag,
    ...tenantFlag,
    ...tenantAdminFlags,
    ...tenantAdminTrustFlag,
    ...registryFlags,
  }

  async run(): Promise<ExportResult> {
    const {argv, flags} = await this.parse(Export)
    const refs = argv as string[]
    if (refs.length === 0) {
      throw new InputError('NO_REFERENCES', 'nothing to export: name at least one policy reference', {suggestions: ['aibox export registry.example.com/policies/org:stable -o policies.tar --key exporter.key']})
    }
    const tenants = await tenantContext(flags, {trustFile: flags.trust, auditLog: flags['audit-log']})
    if (tenants.tenant !== undefined) this.info(`tenant ${tenants.tenant}`)
    const key = await loadSigningKey(flags)
    const crossTenant: CrossTenantRead[] = []
    const registry = await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(...refs)})
    const fetching = new TransferProgress({enabled: this.interactive, label: 'export: fetch'})
    const writing = new TransferProgress({enabled: this.interactive, label: `export: write ${flags.output}`})
    let r: ExportPoliciesResult
    try {
      r = await exportPolicies({
        references: refs,
        output: flags.output,
        key,
        force: flags.force,
        registry,
        onFetchProgress: fetching.onProgress,
        onWriteProgress: (d, n) => {
          fetching.stop()
          writing.onProgress(d, n)
        },
        audit: {log: flags['audit-log']},
        ...(tenants.tenant !== undefined ? {tenant: tenants.tenant} : {}),
        // README "Tenants": another tenant's policy is exported only with a proven, logged admin scope.
        authorize: async (p) => {
          const read = await tenants.authorize({policyTenant: p.tenant, reference: p.source, digest: p.digest, version: p.version || null, operation: 'export'})
          if (read) crossTenant.push(read)
        },
      })
    } finally {
      fetching.stop()
      writing.stop()
    }
    for (const c of crossTenant) this.info(`cross-tenant read of tenant ${c.toTenant}'s ${c.reference} as ${c.fromTenant} with tenant-admin key '${c.key}' (${c.keyId}): logged`)
    this.log(`Exported ${r.policies.length} polic${r.policies.length === 1 ? 'y' : 'ies'} to ${r.file}`)
    for (const p of r.policies) {
      this.log(`  ${p.name} ${p.version} (tier ${p.tier}${p.tenant !== undefined ? `, tenant ${p.tenant}` : ''}) from ${p.source}`)
      this.log(`    ${p.digest}, tags ${p.tags.join(', ')}; ${p.referrers} referrer(s)${p.legacySignature ? `, ${p.legacySignature}` : ''}`)
    }
    this.log(`  seal:    ${r.seal.digest} (tag ${r.seal.tag}), signed by ${r.seal.keyId}, ${r.seal.exportedAt}`)
    this.log(`  archive: ${r.digest}, ${formatBytes(r.size)}, ${r.manifests} manifests, ${r.blobs} blobs`)
    return {...(tenants.tenant !== undefined ? {tenant: tenants.tenant} : {}), ...r, ...(crossTenant.length > 0 ? {crossTenant} : {})}
  }
}

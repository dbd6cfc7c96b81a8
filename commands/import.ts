import {Args, Flags} from '@oclif/core'

import {auditLogFlag} from '../src/cli/audit-flags.js'
import {BaseCommand} from '../src/cli/base.js'
import {TransferProgress, formatBytes} from '../src/cli/progress.js'
import {loadVerification, registryFlags, registriesOf, registryOptions, verificationFlags} from '../src/cli/registry-flags.js'
import {tenantContext, tenantFlag} from '../src/cli/tenant-flags.js'
import {type ImportPoliciesResult, importPolicies} from '../src/distribute/index.js'
import {defaultCacheDir} from '../src/config/paths.js'
import {InputError} from '../src/errors.js'

export type ImportResult = ImportPoliciesResult

export default class Import extends BaseCommand<ImportResult> {
  static override summary = 'Verify a sealed archive from aibox export, then import its policies'
  static override description = `Verifies EVERYTHING before anything is stored:
  - the archive as hostile input: path traversal, absolute paths, symlinks, hard links, devices, duplicate entries, forged sizes, truncation, gzip bombs and unknown entries are refused; every blob is hashed against its name and size;
  - completeness: every blob index.json reaches is present, and nothing else is;
  - the seal: its signature by a trusted key (--key, or a key of the --trust policy that is valid now; --seal-role narrows it to keys holding a role);
  - the archive against the seal, both ways: every manifest listed is present with its type, size and subject, nothing unlisted is there, and no tag in index.json names another manifest than the seal says;
  - every policy's own signatures and content, as aibox pull verifies them (trust scopes apply to the reference the seal says it was exported from).

Any failure: exit 2, nothing written (the destination is untouched, temporary files are removed). Then each policy is copied with its referrers into --to (a registry repository, or oci:DIR, created when missing) and tagged with its archive tags, last; or, with --cache, recorded in aibox start's verified-policy cache under the reference it was exported from, so that aibox start loads it with no registry at all (its log says source: import; an older version than the cached one is refused unless a signed approval carries an incident). Without --to or --cache, only verifies. Writes policy.imported (digest = the seal) to the audit log.

ARCHIVE is a tar or tar.gz file (or oci-archive:FILE), or an OCI layout directory (oci:DIR) such as one skopeo wrote.`
  static override examples = [
    '<%= config.bin %> import policies.tar --to registry.airgap.local/policies --trust trust.yaml',
    '<%= config.bin %> import policies.tar --to oci:/srv/aibox/policies --key exporter.pub --key release.pub',
    '<%= config.bin %> import /media/usb/policies.tar.gz --cache --trust trust.yaml',
    '<%= config.bin %> import policies.tar --trust trust.yaml --json   # verify only',
    '<%= config.bin %> import acme.tar --cache --trust trust.yaml --tenant acme',
  ]
  static override args = {
    archive: Args.string({description: 'the sealed archive (tar, tar.gz, oci-archive:FILE or oci:DIR)', required: true}),
  }
  static override flags = {
    to: Flags.string({summary: 'destination: registry/repo or oci:DIR (without --to or --cache, verify only)', helpValue: 'REF', exclusive: ['cache']}),
    cache: Flags.boolean({summary: "record the policies in aibox start's verified-policy cache, so start needs no registry", exclusive: ['to']}),
    'cache-dir': Flags.string({
      summary: 'the cache directory for --cache',
      description: 'Default: $AIBOX_CACHE, else $XDG_CACHE_HOME/aibox, else ~/.cache/aibox.',
      dependsOn: ['cache'],
      helpValue: 'DIR',
    }),
    ...verificationFlags,
    'seal-role': Flags.string({summary: 'with --trust: the seal must be signed by a key holding this role (repeatable)', multiple: true, dependsOn: ['trust'], helpValue: 'ROLE', helpGroup: 'VERIFY'}),
    'audit-log': auditLogFlag,
    ...tenantFlag,
    ...registryFlags,
  }

  async run(): Promise<ImportResult> {
    const {args, flags} = await this.parse(Import)
    const verification = loadVerification(flags, true)
    const tenants = await tenantContext(flags, {trust: verification.trust})
    if (tenants.tenant !== undefined) this.info(`tenant ${tenants.tenant}`)
    if (flags['seal-role'] && !verification.trust) throw new InputError('SEAL_ROLE_NEEDS_TRUST', '--seal-role needs --trust')
    const registry = await registryOptions(flags, {warn: (m) => this.warn(m), registries: flags.to ? registriesOf(flags.to) : []})
    const progress = new TransferProgress({enabled: this.interactive, label: `import ${flags.to ?? ''}`})
    let r: ImportPoliciesResult
    try {
      r = await importPolicies({
        archive: args.archive,
        ...(flags.to === undefined ? {} : {to: flags.to}),
        ...(flags.cache ? {cache: flags['cache-dir'] ?? defaultCacheDir()} : {}),
        ...verification,
        ...(flags['seal-role'] ? {sealRoles: flags['seal-role']} : {}),
        registry,
        onProgress: progress.onProgress,
        audit: {log: flags['audit-log']},
        ...(tenants.tenant !== undefined ? {tenant: tenants.tenant} : {}),
      })
    } finally {
      progress.stop()
    }
    const who = r.seal.signer === undefined ? r.seal.keyId : `'${r.seal.signer}' (${r.seal.keyId})`
    this.log(`Verified ${r.archive}: seal ${r.seal.digest} by ${who}, exported ${r.seal.exportedAt} by ${r.seal.exporter}`)
    this.log(`  ${r.manifests} manifests, ${r.blobs} blobs (${formatBytes(r.bytes)}), every one listed in the seal and verified`)
    for (const p of r.policies) {
      this.log(`  ${p.name} ${p.version} (tier ${p.tier}${p.tenant !== undefined ? `, tenant ${p.tenant}` : ''}) ${p.digest}, signed by ${p.signers.map((k) => (k.name === undefined ? k.keyId : `'${k.name}' (${k.keyId})`)).join(', ')}${p.approvals ? `, ${p.approvals} approval(s)` : ''}`)
      for (const ref of p.references) this.log(`    ${ref}`)
    }
    if (r.destination === null) this.log('  nothing written (no --to or --cache): verification only')
    else this.log(`Imported into ${r.destination}: ${r.copied} written, ${r.skipped} already there`)
    return r
  }
}

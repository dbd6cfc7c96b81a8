import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {printInspection} from '../../src/cli/inspect-output.js'
import {isReferenceArgument} from '../../src/cli/reference-arg.js'
import {registryFlags, registriesOf, registryOptions} from '../../src/cli/registry-flags.js'
import {tenantAdminFlags, tenantAdminTrustFlag, tenantContext, tenantFlag} from '../../src/cli/tenant-flags.js'
import type {CrossTenantRead} from '../../src/tenant/index.js'
import {KIND_LABEL, loadBundle, type Tier} from '../../src/bundle/index.js'
import {type InspectPolicyResult, inspectPolicyReference, openForRead, requireSelector, withDigest} from '../../src/distribute/index.js'

export type InspectResult = InspectFileResult | (InspectPolicyResult & {reference: string; crossTenant?: CrossTenantRead})

export interface InspectFileResult {
  file: string
  kind: string
  name: string | null
  version: string | null
  tier: Tier | null
  /** metadata.tenant (README "Tenants"). */
  tenant?: string
  description: string | null
  digest: string
  defaultVerdict: string | null
  rules: {total: number; allow: number; deny: number; escalate: number}
  policy: {sections: string[]; networkAllow: number; denyPaths: number; toolRules: number} | null
}

export default class Inspect extends BaseCommand<InspectResult> {
  static override summary = 'Show what a policy file or a published policy is: name, version, tier, digest, rule counts or manifest and referrers.'
  static override description = `FILE may also be a reference (registry/repo:tag, …@sha256:…, oci:DIR:tag, oci-archive:FILE:tag): then it shows the manifest, annotations, the policy's name/version/tier/digest and the referrers, like aibox inspect, without verifying signatures.

Reads and validates the file without using it anywhere. Accepts aibox bundles, bare AI-Box v1 policy files and HELM PolicyBundles (ALLOW / BLOCK / ESCALATE counted as allow / deny / escalate) and HELM policy files.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> org/baseline.yaml',
    '<%= config.bin %> <%= command.id %> helm/production-policy.yaml --json',
    '<%= config.bin %> <%= command.id %> oci:./policies:1.4.0',
  ]
  static override args = {
    file: Args.string({description: 'policy file ("-" for stdin), or a reference', required: true}),
  }
  static override flags = {
    tier: Flags.string({description: 'tier for files without an envelope', options: ['org', 'team', 'project']}),
    ...tenantFlag,
    ...tenantAdminFlags,
    ...tenantAdminTrustFlag,
    ...registryFlags,
  }

  async run(): Promise<InspectResult> {
    const {args, flags} = await this.parse(Inspect)
    if (isReferenceArgument(args.file)) {
      // A reference is read like aibox inspect reads it, with the same cross-tenant check (README "Tenants").
      const tenants = await tenantContext(flags, {trustFile: flags.trust})
      if (tenants.tenant !== undefined) this.info(`tenant ${tenants.tenant}`)
      const opened = await openForRead(args.file, {registry: await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(args.file)})})
      try {
        const r = await inspectPolicyReference(opened.target, requireSelector(opened))
        const crossTenant = await tenants.authorize({policyTenant: r.policy?.tenant ?? undefined, reference: withDigest(opened.reference, r.digest), digest: r.digest, version: r.policy?.version ?? null, operation: 'inspect'})
        if (crossTenant) this.info(`cross-tenant read of tenant ${crossTenant.toTenant}'s policy as ${crossTenant.fromTenant} with tenant-admin key '${crossTenant.key}' (${crossTenant.keyId}): logged`)
        printInspection(args.file, r, (s) => this.log(s))
        return {reference: args.file, ...r, ...(crossTenant ? {crossTenant} : {})}
      } finally {
        await opened.close()
      }
    }
    const b = loadBundle(args.file, {tier: flags.tier as Tier | undefined})
    const verdicts = b.kind === 'helm-bundle' ? (b.helmRules ?? []).map((r) => (r.verdict === 'ALLOW' ? 'allow' : r.verdict === 'BLOCK' ? 'deny' : 'escalate')) : b.rules.map((r) => r.verdict)
    const count = (v: string) => verdicts.filter((x) => x === v).length
    const p = b.policy
    const result: InspectFileResult = {
      file: args.file,
      kind: b.kind,
      name: b.name ?? null,
      version: b.version ?? null,
      tier: b.tier ?? null,
      ...(b.tenant !== undefined ? {tenant: b.tenant} : {}),
      description: b.description ?? null,
      digest: b.digest,
      defaultVerdict: b.defaultVerdict ?? null,
      rules: {total: verdicts.length, allow: count('allow'), deny: count('deny'), escalate: count('escalate')},
      policy: p
        ? {
            sections: ['network', 'filesystem', 'tools', 'resources', 'runtime', 'credentials'].filter((k) => (p as unknown as Record<string, unknown>)[k] !== undefined),
            networkAllow: p.network?.allow?.length ?? 0,
            denyPaths: p.filesystem?.deny?.length ?? 0,
            toolRules: p.tools?.rules?.length ?? 0,
          }
        : null,
    }
    const rows: Array<[string, string]> = [
      ['file', args.file],
      ['kind', KIND_LABEL[b.kind]],
      ['name', b.name ?? '-'],
      ['version', b.version ?? '-'],
      ['tier', b.tier ?? '-'],
      ...(b.tenant !== undefined ? [['tenant', b.tenant] as [string, string]] : []),
      ['digest', b.digest],
      ['rules', `${result.rules.total} (${result.rules.allow} allow, ${result.rules.deny} deny${result.rules.escalate ? `, ${result.rules.escalate} escalate` : ''})`],
      ['default', b.defaultVerdict ?? (b.kind === 'helm-bundle' ? '-' : 'deny (not set: fail closed)')],
    ]
    if (result.policy) {
      rows.push(['policy', result.policy.sections.join(', ') || '(version only)'])
      rows.push(['', `${result.policy.networkAllow} network entries, ${result.policy.denyPaths} denied paths, ${result.policy.toolRules} tools rules`])
    }
    if (b.description) rows.push(['about', b.description])
    for (const [k, v] of rows) this.log(`${k.padEnd(8)} ${v}`)
    return result
  }
}

/**
 * Tenants (seed 002 §1.5, §4; README "Tenants"): a policy bundle carries its tenant in signed
 * content (`metadata.tenant`), `tenant-global` marks a shared baseline usable by every tenant, and
 * a configured tenant (`--tenant`, AIBOX_TENANT, aibox.yaml `tenant:`) scopes the cache, the trust
 * policy and what start and import accept. No tenant configured: nothing here applies.
 *
 * This module is on the hot path of `aibox start` (node built-ins and errors only); the
 * cross-tenant admin proof, which needs keys and the audit log, is in admin.ts.
 */
import fs from 'node:fs'
import path from 'node:path'

import {InputError, VerificationError} from '../errors.js'
import {writeFileAtomicSync} from '../util/atomic.js'

/** The tenant of shared baselines: accepted by every tenant (seed 002 §4). */
export const GLOBAL_TENANT = 'tenant-global'
/** A tenant name: a DNS label, like a policy name (schemas/policy-bundle.schema.json metadata.tenant). */
export const TENANT_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
/** The trust-policy role whose key proves an explicit cross-tenant admin scope (seed 002 `policy:tenant-admin`). */
export const TENANT_ADMIN_ROLE = 'tenant-admin'
/** Where each tenant's cache lives under the cache root: `<cache>/tenants/<tenant>/`. */
export const TENANTS_DIR = 'tenants'

/** Checks a tenant name given by a flag, the environment or a file; InputError INVALID_TENANT (exit 1). */
export function validateTenant(name: string, where: string): string {
  if (!TENANT_RE.test(name)) {
    throw new InputError('INVALID_TENANT', `${where}: ${JSON.stringify(name.slice(0, 80))} is not a tenant name (a DNS label: lowercase letters, digits and '-', at most 63 characters)`, {
      suggestions: ['e.g. --tenant acme, AIBOX_TENANT=acme, or tenant: acme in aibox.yaml'],
    })
  }
  return name
}

/** The tenant in force: `--tenant` > AIBOX_TENANT > the configuration's `tenant:`; undefined when none is set. */
export function resolveTenant(options: {flag?: string; env?: Record<string, string | undefined>; config?: string}): string | undefined {
  const env = options.env ?? process.env
  if (options.flag !== undefined) return validateTenant(options.flag, '--tenant')
  if (env.AIBOX_TENANT !== undefined && env.AIBOX_TENANT !== '') return validateTenant(env.AIBOX_TENANT, 'AIBOX_TENANT')
  if (options.config !== undefined) return validateTenant(options.config, 'tenant in the configuration')
  return undefined
}

/** A tenant's own cache directory under the cache root, or the root itself without a tenant (unchanged behaviour). */
export function tenantCacheDir(root: string, tenant: string | undefined): string {
  return tenant === undefined ? root : path.join(root, TENANTS_DIR, tenant)
}

/** Whether a policy of `policyTenant` belongs to (or is shared with) `tenant`. */
export function tenantOwns(tenant: string, policyTenant: string | undefined): boolean {
  return policyTenant === tenant || policyTenant === GLOBAL_TENANT
}

/**
 * Refuses, for `tenant`, a policy that another tenant owns (TENANT_MISMATCH) or that names no
 * tenant (TENANT_MISSING): what `aibox start` loads and `aibox import` stores (exit 2). Without a
 * configured tenant every policy is accepted, as before tenants existed.
 */
export function assertTenantPolicy(tenant: string | undefined, policyTenant: string | undefined, reference: string, action: 'start' | 'import'): void {
  if (tenant === undefined || tenantOwns(tenant, policyTenant)) return
  const details = {reference, tenant, policyTenant: policyTenant ?? null}
  if (policyTenant === undefined) {
    throw new VerificationError('TENANT_MISSING', `${reference}: the policy names no tenant (no metadata.tenant in its signed content), but this ${action === 'start' ? 'sandbox runs' : 'import is'} for tenant ${tenant}`, {
      details,
      suggestions: [`ask the publisher to set metadata.tenant: ${tenant} in the bundle, or metadata.tenant: ${GLOBAL_TENANT} for a baseline shared by every tenant, and publish it again`],
    })
  }
  throw new VerificationError('TENANT_MISMATCH', `${reference} belongs to tenant ${policyTenant} (signed metadata.tenant), not to the configured tenant ${tenant}: ${action === 'start' ? 'aibox start refuses another tenant\'s policy' : 'the whole import is refused and nothing is stored'}`, {
    details,
    suggestions: [`use a policy of tenant ${tenant} (or ${GLOBAL_TENANT}), or check --tenant / AIBOX_TENANT / tenant: in aibox.yaml`],
  })
}

/** Refuses a trust policy that names another tenant than the configured one (TRUST_TENANT_MISMATCH, exit 1). */
export function assertTrustTenant(tenant: string | undefined, trust: {file: string; tenant?: string} | undefined): void {
  if (tenant === undefined || trust?.tenant === undefined || trust.tenant === tenant) return
  throw new InputError('TRUST_TENANT_MISMATCH', `the trust policy '${trust.file}' is tenant ${trust.tenant}'s, but the configured tenant is ${tenant}: tenants never share a trust policy`, {
    details: {trustPolicy: trust.file, trustTenant: trust.tenant, tenant},
    suggestions: [`use tenant ${tenant}'s trust policy, or check --tenant / AIBOX_TENANT / tenant: in aibox.yaml`],
  })
}

/** The tenant and effective policy the last tenant-scoped `aibox start` under a cache root loaded. */
export interface ActiveTenant {
  tenant: string
  effective: string
  loadedAt: string
}

/** `<cache>/tenants/active.json`: which tenant last loaded a policy from this cache root. */
export const ACTIVE_TENANT_FILE = 'active.json'

/**
 * Records that `tenant` loaded `effective` under the cache root and returns the tenant it switches
 * from when that tenant's active policy was another one (seed 002 §4: "switching tenant triggers
 * warnings when active policy differs"). The file is only rewritten when the tenant or its policy
 * changes, so a warm start reads one small file and writes nothing. A missing or unreadable file is
 * no switch, and a failed write only costs the next warning: it never stops a start.
 */
export function noteActiveTenant(root: string, tenant: string, effective: string, now: Date): ActiveTenant | undefined {
  const file = path.join(root, TENANTS_DIR, ACTIVE_TENANT_FILE)
  let before: ActiveTenant | undefined
  try {
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<ActiveTenant> | null
    if (raw && typeof raw.tenant === 'string' && typeof raw.effective === 'string' && typeof raw.loadedAt === 'string') before = raw as ActiveTenant
  } catch {
    before = undefined
  }
  if (before?.tenant === tenant && before.effective === effective) return undefined
  try {
    fs.mkdirSync(path.dirname(file), {recursive: true})
    writeFileAtomicSync(file, `${JSON.stringify({tenant, effective, loadedAt: now.toISOString()})}\n`)
  } catch {
    // Best effort: the record only feeds a warning.
  }
  return before !== undefined && before.tenant !== tenant && before.effective !== effective ? before : undefined
}

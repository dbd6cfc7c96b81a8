/**
 * The tenant flags of the reading and air-gap commands (pull, inspect, verify, export, import) and
 * how they resolve (README "Tenants"): `--tenant` > AIBOX_TENANT > `tenant:` of the aibox.yaml
 * that `aibox start` would use (when there is one). A cross-tenant read needs
 * `--tenant-admin-key KEY --reason TEXT`, checked by src/tenant (the same check for every command).
 */
import {Flags} from '@oclif/core'

import type {AuditOptions} from '../audit/append.js'
import {type StartConfig, loadStartConfig} from '../config/start-config.js'
import {type CrossTenantRead, type ReadCheck, type TenantAdminScope, authorizeRead, checkAdminScope} from '../tenant/admin.js'
import {assertTrustTenant, resolveTenant} from '../tenant/tenant.js'
import {type TrustPolicy, loadTrustPolicy} from '../trust/policy.js'

export const tenantFlag = {
  tenant: Flags.string({summary: 'the tenant to act as (default: AIBOX_TENANT, then tenant: in aibox.yaml); README "Tenants"', helpValue: 'NAME', helpGroup: 'TENANT'}),
}

export const tenantAdminFlags = {
  'tenant-admin-key': Flags.string({
    summary: "read a policy of another tenant with this private key, which must hold the tenant-admin role in the trust policy (needs --reason; logged as policy.tenant.cross-read)",
    helpValue: 'KEY',
    helpGroup: 'TENANT',
  }),
  reason: Flags.string({summary: "why you read another tenant's policy (recorded in the audit log with who and when)", helpValue: 'TEXT', helpGroup: 'TENANT'}),
}

/** For commands without their own --trust (inspect, export): where the tenant-admin key is looked up. */
export const tenantAdminTrustFlag = {
  trust: Flags.string({
    summary: 'trust policy in which --tenant-admin-key must hold tenant-admin (default: trust: in aibox.yaml)',
    helpValue: 'FILE',
    dependsOn: ['tenant-admin-key'],
    helpGroup: 'TENANT',
  }),
}

export interface TenantContext {
  tenant?: string
  admin?: TenantAdminScope
  audit: AuditOptions
  /** Checks one read (src/tenant authorizeRead) with this context. */
  authorize(check: Omit<ReadCheck, 'tenant' | 'admin' | 'audit'>): Promise<CrossTenantRead | undefined>
}

/** The configuration `aibox start` would use, or undefined when there is none (a broken one is reported). */
async function optionalConfig(env: NodeJS.ProcessEnv): Promise<StartConfig | undefined> {
  try {
    return await loadStartConfig({env})
  } catch (err) {
    if ((err as {code?: unknown} | null)?.code === 'CONFIG_NOT_FOUND') return undefined
    throw err
  }
}

/**
 * Resolves the tenant and the admin scope of a command. `trust` is the command's own trust policy
 * (pull, verify, import); `trustFile` a `--trust` only for the admin key (inspect, export).
 */
export async function tenantContext(flags: {tenant?: string; 'tenant-admin-key'?: string; reason?: string}, options: {trust?: TrustPolicy; trustFile?: string; auditLog?: string; env?: NodeJS.ProcessEnv} = {}): Promise<TenantContext> {
  const env = options.env ?? process.env
  const wantsConfig = flags.tenant === undefined && !env.AIBOX_TENANT
  const config = wantsConfig || (flags['tenant-admin-key'] !== undefined && !options.trust && !options.trustFile) ? await optionalConfig(env) : undefined
  const tenant = resolveTenant({flag: flags.tenant, env, config: config?.tenant})
  assertTrustTenant(tenant, options.trust)
  let adminTrust = options.trust
  if (flags['tenant-admin-key'] !== undefined && !adminTrust) {
    const file = options.trustFile ?? config?.trust
    if (file) adminTrust = loadTrustPolicy(file)
  }
  const admin = checkAdminScope({keyFile: flags['tenant-admin-key'], reason: flags.reason, trust: adminTrust}, tenant)
  const audit: AuditOptions = {...(options.auditLog ? {log: options.auditLog} : config?.audit && !env.AIBOX_AUDIT_LOG ? {log: config.audit} : {}), env}
  return {
    ...(tenant !== undefined ? {tenant} : {}),
    ...(admin ? {admin} : {}),
    audit,
    authorize: (check) => authorizeRead({...check, tenant, ...(admin ? {admin} : {}), audit, env}),
  }
}

/**
 * Cross-tenant reads (seed 002 §1.5 "cross-tenant access requires explicit admin scopes and is
 * logged", §4 `policy:tenant-admin`; README "Tenants"): one check every reading command uses
 * (pull, inspect, verify, export).
 *
 * A read of a policy that belongs to another tenant than the configured one is refused (exit 5
 * CROSS_TENANT) unless the caller proves an admin scope: `--tenant-admin-key KEY --reason TEXT`.
 * Proof of possession: a DSSE statement {actor, fromTenant, toTenant, reference, reason, time,
 * operation} is signed with KEY and verified against the trust policy, where the key must be valid
 * now and hold the `tenant-admin` role. Every allowed read is appended to the audit log
 * (`policy.tenant.cross-read`, with the signed statement) before the command goes on; a log that
 * cannot be written refuses the read.
 */
import {createHash} from 'node:crypto'

import {canonicalBytes} from '../bundle/canonical.js'
import {type AuditOptions, appendAuditEvents} from '../audit/append.js'
import {defaultActor} from '../audit/entry.js'
import {GovernanceError, InputError} from '../errors.js'
import {envelopeToJSON, parseEnvelope, signEnvelope, verifyEnvelopeSignature} from '../sign/dsse.js'
import {type PasswordSource, type PrivateKeyInfo, loadPrivateKey} from '../sign/keys.js'
import {PasswordSession} from '../sign/password.js'
import {roleRefusal} from '../trust/evaluate.js'
import type {TrustKey, TrustPolicy} from '../trust/policy.js'
import {GLOBAL_TENANT, TENANT_ADMIN_ROLE, assertTrustTenant} from './tenant.js'

/** The DSSE payload type of a cross-tenant read statement. */
export const CROSS_READ_PAYLOAD_TYPE = 'application/vnd.aibox.tenant-cross-read.v1+json'

export type ReadOperation = 'pull' | 'inspect' | 'verify' | 'export' | 'copy'

/** The explicit admin scope a caller offers for a cross-tenant read. */
export interface TenantAdminScope {
  /** The tenant-admin's private key file (cosign format). */
  keyFile: string
  /** Why (required; logged). */
  reason: string
  /** The trust policy in which the key must hold `tenant-admin`. */
  trust?: TrustPolicy
  /** The key's password (default: COSIGN_PASSWORD / AIBOX_PASSWORD or a prompt, as for signing). */
  password?: PasswordSource
}

export interface CrossTenantStatement {
  actor: string
  fromTenant: string
  toTenant: string
  reference: string
  reason: string
  time: string
  operation: ReadOperation
}

/** A cross-tenant read that was allowed (in `--json` results as `crossTenant`). */
export interface CrossTenantRead extends CrossTenantStatement {
  keyId: string
  /** The key's name in the trust policy. */
  key: string
}

export interface ReadCheck {
  /** The configured tenant (undefined: no tenant, every read allowed as before). */
  tenant: string | undefined
  /** The policy's signed metadata.tenant (for inspect and export: read from the content). */
  policyTenant: string | undefined
  reference: string
  digest: string | null
  version: string | null
  operation: ReadOperation
  admin?: TenantAdminScope
  audit?: AuditOptions
  env?: NodeJS.ProcessEnv
  now?: Date
}

/** Whether reading a policy of `policyTenant` as `tenant` is a cross-tenant read. */
export function isCrossTenant(tenant: string | undefined, policyTenant: string | undefined): tenant is string {
  return tenant !== undefined && policyTenant !== undefined && policyTenant !== tenant && policyTenant !== GLOBAL_TENANT
}

/** Checks the flags of an admin scope before anything is read (REASON_REQUIRED, TENANT_ADMIN_NEEDS_TRUST). */
export function checkAdminScope(scope: {keyFile?: string; reason?: string; trust?: TrustPolicy}, tenant: string | undefined): TenantAdminScope | undefined {
  const reason = scope.reason?.trim()
  if (scope.keyFile === undefined) {
    if (reason) throw new InputError('REASON_WITHOUT_ADMIN_KEY', '--reason is only taken together with --tenant-admin-key (a cross-tenant read)')
    return undefined
  }
  if (!reason) {
    throw new InputError('REASON_REQUIRED', '--tenant-admin-key needs --reason TEXT: every cross-tenant read is logged with who, when and why', {
      suggestions: ['--tenant-admin-key admin.key --reason "SEC-42: audit of tenant beta\'s baseline"'],
    })
  }
  if (tenant === undefined) {
    throw new InputError('NO_TENANT', '--tenant-admin-key is for reading another tenant\'s policy, but no tenant is configured', {suggestions: ['pass --tenant NAME (or set AIBOX_TENANT, or tenant: in aibox.yaml)']})
  }
  if (!scope.trust) {
    throw new InputError('TENANT_ADMIN_NEEDS_TRUST', '--tenant-admin-key needs a trust policy in which the key holds the tenant-admin role: pass --trust FILE (or set trust: in aibox.yaml)')
  }
  assertTrustTenant(tenant, scope.trust)
  return {keyFile: scope.keyFile, reason, trust: scope.trust}
}

/** Signs the statement with the admin key (DSSE). */
export function signCrossRead(statement: CrossTenantStatement, key: PrivateKeyInfo): {envelope: string; digest: string} {
  const env = signEnvelope(canonicalBytes(statement), CROSS_READ_PAYLOAD_TYPE, key)
  const json = JSON.stringify(envelopeToJSON(env))
  return {envelope: json, digest: `sha256:${createHash('sha256').update(json).digest('hex')}`}
}

/**
 * Verifies a signed statement against the trust policy: some key of the policy must have signed
 * it, be valid at `now`, and hold `tenant-admin`. GovernanceError (exit 5) otherwise.
 */
export function verifyCrossRead(envelopeJson: string, trust: TrustPolicy, now: Date): TrustKey {
  const env = parseEnvelope(JSON.parse(envelopeJson), 'cross-tenant read statement')
  const key = trust.keys.find((k) => env.signatures.some((s) => verifyEnvelopeSignature(env, s.sig, k)))
  if (!key) {
    throw new GovernanceError('TENANT_ADMIN_KEY_NOT_TRUSTED', `the --tenant-admin-key is not a key of the trust policy '${trust.file}': no cross-tenant read without a tenant-admin key`, {
      suggestions: [`use a key that holds the ${TENANT_ADMIN_ROLE} role in '${trust.file}'`],
    })
  }
  const refusal = roleRefusal(trust, key, TENANT_ADMIN_ROLE, now)
  if (refusal?.code === 'KEY_NOT_VALID') throw new GovernanceError('TENANT_ADMIN_KEY_NOT_VALID', `${refusal.message}: it cannot authorise a cross-tenant read`)
  if (refusal) {
    throw new GovernanceError('TENANT_ADMIN_ROLE_NOT_HELD', `${refusal.message}: cross-tenant reads need an explicit admin scope`, {
      suggestions: [`ask the owners of '${trust.file}' for a key with the ${TENANT_ADMIN_ROLE} role`],
    })
  }
  return key
}

/**
 * The one cross-tenant check (see the module comment): undefined when the read is within the
 * tenant (or no tenant is configured), the logged record when an admin scope allowed it;
 * GovernanceError CROSS_TENANT (exit 5) otherwise.
 */
export async function authorizeRead(check: ReadCheck): Promise<CrossTenantRead | undefined> {
  const {tenant, policyTenant} = check
  if (!isCrossTenant(tenant, policyTenant)) return undefined
  if (!check.admin) {
    throw new GovernanceError('CROSS_TENANT', `${check.reference} belongs to tenant ${policyTenant}, not to the configured tenant ${tenant}: cross-tenant ${check.operation} needs an explicit admin scope`, {
      details: {reference: check.reference, tenant, policyTenant},
      suggestions: [
        `a tenant admin may read it: aibox ${check.operation} … --tenant-admin-key ADMIN.key --reason "why" (the key must hold ${TENANT_ADMIN_ROLE} in the trust policy; the read is logged)`,
        'or check --tenant / AIBOX_TENANT / tenant: in aibox.yaml',
      ],
    })
  }
  const env = check.env ?? process.env
  const now = check.now ?? new Date()
  const key = await loadPrivateKey(check.admin.keyFile, {password: check.admin.password ?? new PasswordSession({env}).decrypt})
  const statement: CrossTenantStatement = {
    actor: check.audit?.actor ?? defaultActor(env),
    fromTenant: tenant,
    toTenant: policyTenant!,
    reference: check.reference,
    reason: check.admin.reason,
    time: now.toISOString(),
    operation: check.operation,
  }
  const signed = signCrossRead(statement, key)
  const trustKey = verifyCrossRead(signed.envelope, check.admin.trust!, now)
  await appendAuditEvents(
    [
      {
        event: 'policy.tenant.cross-read',
        fields: {
          ref: check.reference,
          digest: check.digest,
          version: check.version,
          reason: statement.reason,
          tenant,
          fromTenant: tenant,
          toTenant: statement.toTenant,
          operation: check.operation,
          keyId: trustKey.keyId,
          key: trustKey.name,
          statement: signed.digest,
          proof: signed.envelope,
        },
      },
    ],
    {...check.audit, env},
  )
  return {...statement, keyId: trustKey.keyId, key: trustKey.name}
}

/**
 * The audit events aibox writes (formats.md "Audit log"), with the fields each one carries.
 *
 * `AuditEventFields` maps an event name to its fields, so `appendAudit('policy.loaded', {...})`
 * is checked by the compiler (a misspelt event or field does not compile), and `AUDIT_EVENTS`
 * holds the same table at run time so that JavaScript callers get a clear error instead of a
 * silently odd log line. `schemas/audit-entry.schema.json` mirrors both (a test keeps them equal).
 */

export type PolicyTier = 'org' | 'team' | 'project'
export type LoadSource = 'registry' | 'cache' | 'import'

/** What every event is about; null where an event has no such thing (e.g. `audit.repaired`). */
export interface AuditSubject {
  /** The policy reference: a registry reference, `oci:DIR:tag`, or a file path. */
  ref: string | null
  /**
   * `sha256:<hex>`: the OCI manifest digest of the policy artifact (what signatures and
   * approvals bind to); for `policy.loaded`, the digest of the effective policy handed to the sandbox.
   */
  digest: string | null
  /** The policy version (the bundle's `metadata.version`). */
  version: string | null
  /** The state before the change (a version or digest), where an event has one. */
  from?: string
  /** Why: free text or a stable code. */
  reason?: string
  /** The tenant the action was done as (README "Tenants"); absent when no tenant is configured. */
  tenant?: string
}

/** One tier of a loaded policy stack. */
export interface TierLoad {
  tier: PolicyTier
  ref: string
  /** Manifest digest of the tier's policy artifact (or the file's content digest for a project file). */
  digest: string
  version: string | null
  /** Key ids (fingerprints) of the signatures that verified; empty for an unsigned project file. */
  signers: string[]
  /** The incident, when this tier is an emergency change accepted through its emergency path (README "Governance"). */
  emergency?: string
}

export interface AuditEventFields {
  'policy.pushed': AuditSubject & {
    tier?: PolicyTier
    tags?: string[]
    contentDigest?: string
    /** A draft push (`draft-` tags only; never a release). */
    draft?: boolean
    /** An emergency change (see `policy.emergency`), with its incident. */
    emergency?: boolean
    incident?: string
    /** The submit gate's outcome (README "Governance"). */
    gate?: 'passed' | 'failed' | 'not-protected'
  }
  'policy.signed': AuditSubject & {keyId: string; signature?: string; identity?: string; issuer?: string}
  'policy.approved': AuditSubject & {keyId: string; role: string; note?: string; ticket?: string; incident?: string; attestation?: string}
  'policy.loaded': AuditSubject & {
    source: LoadSource
    /** Seconds since the loaded policy was last verified against the registry (0 when fetched now). */
    stalenessSeconds: number
    tiers: TierLoad[]
    /** The previously loaded version or digest, when this load changed it. */
    from?: string
    /** True while a policy override taints runs (seed 000: "taint policy_override until reverted"). */
    tainted?: boolean
    /** The org policy profile loaded (README "Profiles"). */
    profile?: string
  }
  'policy.refused': AuditSubject & {reason: string; code: string; tier?: PolicyTier}
  'policy.rollback': AuditSubject & {from: string; incident: string; approvals?: string[]}
  'policy.override': AuditSubject & {reason: string; override: string; taint: string}
  'policy.override.reverted': AuditSubject & {taint: string; reason?: string}
  'policy.lock.refused': AuditSubject & {from: string; reason: string}
  'policy.exported': AuditSubject & {artifacts: string[]; file?: string}
  'policy.imported': AuditSubject & {artifacts: string[]; destination?: string}
  'policy.emergency': AuditSubject & {keyId: string; reason: string; incident?: string; ticket?: string}
  'audit.repaired': AuditSubject & {reason: string; quarantine: string; bytes: number; sha256: string}
  /** README "Profiles": aibox start loaded another profile than the last one (from = the old profile). */
  'policy.profile.changed': AuditSubject & {profile: string; weaker?: boolean; ticket?: string; approvers?: string[]; approvals?: string[]}
  /** aibox start refused a weaker profile (policy lock, or no approved change). */
  'policy.profile.refused': AuditSubject & {profile: string; reason: string; code: string}
  /** aibox profile set recorded a profile change (ticket, reason, approvers of a weaker one). */
  'policy.profile.set': AuditSubject & {profile: string; reason: string; ticket: string; weaker: boolean; approvers?: string[]; approvals?: string[]}
  'policy.tenant.cross-read': AuditSubject & {
    reason: string
    fromTenant: string
    toTenant: string
    operation: string
    keyId: string
    key?: string
    /** sha256 of the signed DSSE statement (`proof`). */
    statement: string
    /** The DSSE envelope signed with the tenant-admin key: {actor, fromTenant, toTenant, reference, reason, time, operation}. */
    proof: string
  }
}

export type AuditEventName = keyof AuditEventFields

export type FieldType = 'string' | 'nullable-string' | 'digest' | 'nullable-digest' | 'integer' | 'boolean' | 'string[]' | 'tiers' | readonly string[]

export interface EventSpec {
  summary: string
  /** Event-specific fields (the subject fields ref/digest/version are common to all). */
  fields: Record<string, {type: FieldType; required: boolean}>
}

const req = (type: FieldType) => ({type, required: true})
const opt = (type: FieldType) => ({type, required: false})
const TIERS = ['org', 'team', 'project'] as const

/** The run-time table of events: what each means (README) and which fields it takes. */
export const AUDIT_EVENTS: {readonly [E in AuditEventName]: EventSpec} = {
  'policy.pushed': {
    summary: 'a policy version was pushed to a registry or layout (ref, manifest digest, tags; draft, emergency and the submit gate outcome)',
    fields: {
      tier: opt(TIERS),
      tags: opt('string[]'),
      contentDigest: opt('digest'),
      draft: opt('boolean'),
      emergency: opt('boolean'),
      incident: opt('string'),
      gate: opt(['passed', 'failed', 'not-protected']),
    },
  },
  'policy.signed': {
    summary: 'a signature by key keyId (keyless: the ephemeral key certified for identity, issued by OIDC issuer) was attached to the policy manifest',
    fields: {keyId: req('string'), signature: opt('digest'), identity: opt('string'), issuer: opt('string')},
  },
  'policy.approved': {
    summary: 'an approval attestation (role, note, ticket) by key keyId was attached',
    fields: {keyId: req('string'), role: req('string'), note: opt('string'), ticket: opt('string'), incident: opt('string'), attestation: opt('digest')},
  },
  'policy.loaded': {
    summary: 'aibox start loaded a verified policy stack (source registry|cache|import, staleness, per-tier digests and signers)',
    fields: {source: req(['registry', 'cache', 'import']), stalenessSeconds: req('integer'), tiers: req('tiers'), from: opt('string'), tainted: opt('boolean'), profile: opt('string')},
  },
  'policy.refused': {
    summary: 'aibox start refused a policy (verification failure, loosening, rollback); reason and error code',
    fields: {reason: req('string'), code: req('string'), tier: opt(TIERS)},
  },
  'policy.rollback': {
    summary: 'an older version was accepted with a signed rollback approval (from = the newer version, incident reference)',
    fields: {from: req('string'), incident: req('string'), approvals: opt('string[]')},
  },
  'policy.override': {
    summary: 'an operator overrode a refusal explicitly (who/when/why); runs are tainted until reverted',
    fields: {reason: req('string'), override: req('string'), taint: req('string')},
  },
  'policy.override.reverted': {
    summary: 'an override was reverted; the taint is lifted',
    fields: {taint: req('string'), reason: opt('string')},
  },
  'policy.lock.refused': {
    summary: 'AIBOX_POLICY_LOCK=1 refused a policy weaker than the last loaded one (from = that one)',
    fields: {from: req('string'), reason: req('string')},
  },
  'policy.exported': {
    summary: 'policy artifacts were exported to a sealed air-gap bundle (digest = the seal)',
    fields: {artifacts: req('string[]'), file: opt('string')},
  },
  'policy.imported': {
    summary: 'a sealed bundle was verified and imported (digest = the seal)',
    fields: {artifacts: req('string[]'), destination: opt('string')},
  },
  'policy.emergency': {
    summary: 'an emergency change signed by a security-team key alone (incident); needs a retroactive approval (aibox audit emergencies)',
    fields: {keyId: req('string'), reason: req('string'), incident: opt('string'), ticket: opt('string')},
  },
  'policy.tenant.cross-read': {
    summary: 'a policy of another tenant (toTenant) was read as fromTenant with a tenant-admin key (keyId), its signed statement (proof) and reason',
    fields: {
      reason: req('string'),
      fromTenant: req('string'),
      toTenant: req('string'),
      operation: req(['pull', 'inspect', 'verify', 'export', 'copy']),
      keyId: req('string'),
      key: opt('string'),
      statement: req('digest'),
      proof: req('string'),
    },
  },
  'audit.repaired': {
    summary: 'aibox moved an incomplete last line (an interrupted append) to the quarantine file',
    fields: {reason: req('string'), quarantine: req('string'), bytes: req('integer'), sha256: req('digest')},
  },
  'policy.profile.changed': {
    summary: 'aibox start loaded another org policy profile than the last one (from = the old profile; a weaker one with its ticket and approvers)',
    fields: {profile: req('string'), weaker: opt('boolean'), ticket: opt('string'), approvers: opt('string[]'), approvals: opt('string[]')},
  },
  'policy.profile.refused': {
    summary: 'aibox start refused a profile weaker than the last loaded one (AIBOX_POLICY_LOCK=1, or no approved change)',
    fields: {profile: req('string'), reason: req('string'), code: req('string')},
  },
  'policy.profile.set': {
    summary: 'aibox profile set recorded a profile change with its change ticket and reason (and the approvers of a weaker profile)',
    fields: {profile: req('string'), reason: req('string'), ticket: req('string'), weaker: req('boolean'), approvers: opt('string[]'), approvals: opt('string[]')},
  },
}

export const AUDIT_EVENT_NAMES = Object.keys(AUDIT_EVENTS) as AuditEventName[]

export function isAuditEventName(name: string): name is AuditEventName {
  return Object.hasOwn(AUDIT_EVENTS, name)
}

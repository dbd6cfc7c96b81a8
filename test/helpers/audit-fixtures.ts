/** Shared helpers for the audit tests: sample events of every kind and a log built with a fixed clock. */
import fs from 'node:fs'
import path from 'node:path'

import {type AuditEventInput, appendAuditEvents} from '../../src/audit/index.js'

export const D1 = `sha256:${'1'.repeat(64)}`
export const D2 = `sha256:${'2'.repeat(64)}`
export const D3 = `sha256:${'3'.repeat(64)}`

/** One event of every kind aibox writes, with realistic fields. */
export const SAMPLE_EVENTS: AuditEventInput[] = [
  {event: 'policy.pushed', fields: {ref: 'registry.example.com/policies/org:1.4.0', digest: D1, version: '1.4.0', tier: 'org', tags: ['1.4.0', 'stable'], contentDigest: D2}},
  {event: 'policy.signed', fields: {ref: 'registry.example.com/policies/org:1.4.0', digest: D1, version: '1.4.0', keyId: 'SHA256:sec-team-key'}},
  {event: 'policy.approved', fields: {ref: 'registry.example.com/policies/org:1.4.0', digest: D1, version: '1.4.0', keyId: 'SHA256:approver', role: 'approver', note: 'reviewed', ticket: 'SEC-12'}},
  {
    event: 'policy.loaded',
    fields: {
      ref: 'registry.example.com/policies/org:stable',
      digest: D3,
      version: '1.4.0',
      source: 'registry',
      stalenessSeconds: 0,
      from: '1.3.0',
      tiers: [
        {tier: 'org', ref: 'registry.example.com/policies/org:stable', digest: D1, version: '1.4.0', signers: ['SHA256:sec-team-key']},
        {tier: 'project', ref: 'aibox/policy.yaml', digest: D2, version: null, signers: []},
      ],
    },
  },
  {event: 'policy.refused', fields: {ref: 'registry.example.com/policies/teams/alpha:stable', digest: D2, version: '2.0.0', reason: 'loosens org baseline', code: 'LOOSENING', tier: 'team'}},
  {event: 'policy.rollback', fields: {ref: 'registry.example.com/policies/org:stable', digest: D1, version: '1.3.0', from: '1.4.0', incident: 'INC-7', approvals: ['SHA256:a', 'SHA256:b']}},
  {event: 'policy.override', fields: {ref: 'registry.example.com/policies/org:stable', digest: D1, version: '1.4.0', reason: 'registry cert expired', override: 'verification', taint: 'policy_override'}},
  {event: 'policy.override.reverted', fields: {ref: 'registry.example.com/policies/org:stable', digest: D1, version: '1.4.0', taint: 'policy_override'}},
  {event: 'policy.lock.refused', fields: {ref: 'registry.example.com/policies/org:stable', digest: D2, version: '1.2.0', from: '1.4.0', reason: 'weaker than the last loaded policy'}},
  {event: 'policy.exported', fields: {ref: '/media/usb/policies.tar', digest: D3, version: null, artifacts: [D1, D2], file: '/media/usb/policies.tar'}},
  {event: 'policy.imported', fields: {ref: '/media/usb/policies.tar', digest: D3, version: null, artifacts: [D1, D2], destination: 'oci:/srv/policies'}},
  {event: 'policy.emergency', fields: {ref: 'registry.example.com/policies/org:1.4.1', digest: D2, version: '1.4.1', keyId: 'SHA256:sec-team-key', reason: 'block exfil host', ticket: 'INC-8'}},
]

/** The tenant events (README "Tenants"), apart like the profile events below. */
export const TENANT_SAMPLE_EVENTS: AuditEventInput[] = [
  {
    event: 'policy.tenant.cross-read',
    fields: {
      ref: 'registry.example.com/policies/beta:stable',
      digest: D1,
      version: '1.0.0',
      reason: 'SEC-42: audit of tenant beta',
      tenant: 'acme',
      fromTenant: 'acme',
      toTenant: 'beta',
      operation: 'pull',
      keyId: '0123456789abcdef',
      key: 'tenant-admin',
      statement: D2,
      proof: '{"payloadType":"application/vnd.aibox.tenant-cross-read.v1+json","payload":"e30=","signatures":[{"sig":"AA=="}]}',
    },
  },
]

/** The profile events (README "Profiles"), apart so that logs cycling through SAMPLE_EVENTS keep their shape. */
export const PROFILE_SAMPLE_EVENTS: AuditEventInput[] = [
  {event: 'policy.profile.set', fields: {ref: 'registry.example.com/policies/org:stable', digest: null, version: null, from: 'audit-strict', profile: 'dev-fast', reason: 'profiling the build', ticket: 'CHG-12', weaker: true, approvers: ['carol'], approvals: [D3]}},
  {event: 'policy.profile.changed', fields: {ref: 'registry.example.com/policies/org:stable', digest: D1, version: '1.4.0', from: 'audit-strict', profile: 'dev-fast', weaker: true, ticket: 'CHG-12', reason: 'profiling the build', approvers: ['carol']}},
  {event: 'policy.profile.refused', fields: {ref: 'registry.example.com/policies/org:stable', digest: D1, version: '1.4.0', from: 'audit-strict', profile: 'dev-fast', reason: 'AIBOX_POLICY_LOCK=1 refuses a weaker profile', code: 'PROFILE_LOCKED'}},
]

/** A clock that starts at `start` and advances one minute per call. */
export function steppingClock(start = Date.UTC(2025, 0, 1)): () => Date {
  let t = start - 60_000
  return () => {
    t += 60_000
    return new Date(t)
  }
}

/** Builds a log with `n` entries (cycling through SAMPLE_EVENTS), one append per entry. */
export async function buildLog(dir: string, n: number, name = 'audit.jsonl', actor = 'alice@ws1'): Promise<string> {
  const log = path.join(dir, name)
  const now = steppingClock()
  for (let i = 0; i < n; i++) await appendAuditEvents([SAMPLE_EVENTS[i % SAMPLE_EVENTS.length]!], {log, now, actor})
  return log
}

export function readLines(log: string): string[] {
  const text = fs.readFileSync(log, 'utf8')
  return text.split('\n').slice(0, -1)
}

export function writeLines(log: string, lines: string[]): void {
  fs.writeFileSync(log, lines.map((l) => `${l}\n`).join(''))
}

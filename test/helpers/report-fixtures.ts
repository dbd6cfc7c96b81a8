/**
 * An audit log that tells a known story over three UTC days, for the audit report tests: two org
 * versions and a team version pushed, signed and approved by different people; loads from the
 * registry and the cache (one tainted); an override, an emergency change, a rollback, a refusal, a
 * lock refusal, an export/import; a note carrying HTML that must be shown as text; and an event
 * kind this version does not know (other branches add events), appended with a valid chain.
 */
import fs from 'node:fs'
import path from 'node:path'

import {type AuditEventInput, appendAuditEvents} from '../../src/audit/index.js'
import {type AuditEntry, lineHash, readHead, serializeEntry, writeHead} from '../../src/audit/entry.js'

const hex = (c: string) => `sha256:${c.repeat(64)}`
export const ORG_1 = hex('a')
export const ORG_2 = hex('b')
export const ORG_3 = hex('c')
export const TEAM_1 = hex('d')
export const TEAM_3 = hex('e')
export const EFFECTIVE = hex('f')
export const SEAL = hex('9')

export const HOSTILE_NOTE = 'looks fine <script>window.__pwned = 1; document.title = "pwned"</script><img src=x onerror="window.__pwned = 2">'
export const ORG = 'registry.example.com/policies/org'
export const TEAM = 'registry.example.com/policies/teams/alpha'

type Step = {at: string; actor: string; input: AuditEventInput}

const load = (tiers: Array<{tier: 'org' | 'team'; ref: string; digest: string; version: string}>, source: 'registry' | 'cache', tainted = false): AuditEventInput => ({
  event: 'policy.loaded',
  fields: {
    ref: tiers[0]!.ref,
    digest: EFFECTIVE,
    version: tiers[0]!.version,
    source,
    stalenessSeconds: source === 'cache' ? 3600 : 0,
    tiers: tiers.map((t) => ({...t, signers: ['SHA256:alice-key']})),
    ...(tainted ? {tainted: true} : {}),
  },
})

export const STORY: Step[] = [
  // 2025-03-01
  {at: '2025-03-01T09:00:00Z', actor: 'alice@ws1', input: {event: 'policy.pushed', fields: {ref: `${ORG}:1.0.0`, digest: ORG_1, version: '1.0.0', tier: 'org', tags: ['1.0.0', 'stable']}}},
  {at: '2025-03-01T09:01:00Z', actor: 'alice@ws1', input: {event: 'policy.signed', fields: {ref: `${ORG}:1.0.0`, digest: ORG_1, version: '1.0.0', keyId: 'SHA256:alice-key'}}},
  {at: '2025-03-01T09:30:00Z', actor: 'bob@ws2', input: {event: 'policy.approved', fields: {ref: `${ORG}:1.0.0`, digest: ORG_1, version: '1.0.0', keyId: 'SHA256:bob-key', role: 'security', note: HOSTILE_NOTE, ticket: 'SEC-1'}}},
  {at: '2025-03-01T10:00:00Z', actor: 'sandbox@host1', input: load([{tier: 'org', ref: `${ORG}:stable`, digest: ORG_1, version: '1.0.0'}], 'registry')},
  {at: '2025-03-01T11:00:00Z', actor: 'sandbox@host2', input: load([{tier: 'org', ref: `${ORG}:stable`, digest: ORG_1, version: '1.0.0'}], 'registry')},
  {at: '2025-03-01T12:00:00Z', actor: 'sandbox@host1', input: load([{tier: 'org', ref: `${ORG}:stable`, digest: ORG_1, version: '1.0.0'}], 'cache')},
  // 2025-03-02
  {at: '2025-03-02T08:00:00Z', actor: 'carol@ws3', input: {event: 'policy.pushed', fields: {ref: `${TEAM}:2.0.0`, digest: TEAM_1, version: '2.0.0', tier: 'team', tags: ['2.0.0', 'stable']}}},
  {at: '2025-03-02T08:01:00Z', actor: 'carol@ws3', input: {event: 'policy.signed', fields: {ref: `${TEAM}:2.0.0`, digest: TEAM_1, version: '2.0.0', keyId: 'SHA256:carol-key'}}},
  {at: '2025-03-02T09:00:00Z', actor: 'alice@ws1', input: {event: 'policy.pushed', fields: {ref: `${ORG}:1.1.0`, digest: ORG_2, version: '1.1.0', tier: 'org', tags: ['1.1.0', 'stable']}}},
  {at: '2025-03-02T09:01:00Z', actor: 'alice@ws1', input: {event: 'policy.signed', fields: {ref: `${ORG}:1.1.0`, digest: ORG_2, version: '1.1.0', keyId: 'SHA256:alice-key'}}},
  {at: '2025-03-02T09:20:00Z', actor: 'dave@ws4', input: {event: 'policy.approved', fields: {ref: `${ORG}:1.1.0`, digest: ORG_2, version: '1.1.0', keyId: 'SHA256:dave-key', role: 'approver', ticket: 'SEC-2'}}},
  {at: '2025-03-02T10:00:00Z', actor: 'sandbox@host1', input: load([{tier: 'org', ref: `${ORG}:stable`, digest: ORG_2, version: '1.1.0'}, {tier: 'team', ref: `${TEAM}:stable`, digest: TEAM_1, version: '2.0.0'}], 'registry')},
  {at: '2025-03-02T13:00:00Z', actor: 'ops@host2', input: {event: 'policy.override', fields: {ref: `${ORG}:stable`, digest: ORG_2, version: '1.1.0', reason: 'registry unreachable during incident INC-8', override: 'verification', taint: 'policy_override'}}},
  {at: '2025-03-02T13:05:00Z', actor: 'sandbox@host2', input: load([{tier: 'org', ref: `${ORG}:stable`, digest: ORG_2, version: '1.1.0'}, {tier: 'team', ref: `${TEAM}:stable`, digest: TEAM_1, version: '2.0.0'}], 'cache', true)},
  {at: '2025-03-02T15:00:00Z', actor: 'sec@ws5', input: {event: 'policy.emergency', fields: {ref: `${ORG}:1.1.1`, digest: ORG_3, version: '1.1.1', keyId: 'SHA256:security-key', reason: 'block exfiltration host', ticket: 'INC-9'}}},
  // 2025-03-03
  {at: '2025-03-03T09:00:00Z', actor: 'alice@ws1', input: {event: 'policy.rollback', fields: {ref: `${ORG}:stable`, digest: ORG_1, version: '1.0.0', from: '1.1.0', incident: 'INC-10', approvals: ['SHA256:bob-key', 'SHA256:dave-key']}}},
  {at: '2025-03-03T10:00:00Z', actor: 'sandbox@host1', input: {event: 'policy.refused', fields: {ref: `${TEAM}:stable`, digest: TEAM_3, version: '3.0.0', reason: 'loosens org baseline network.allow[llm].hosts', code: 'LOOSENING', tier: 'team'}}},
  {at: '2025-03-03T10:30:00Z', actor: 'sandbox@host1', input: {event: 'policy.lock.refused', fields: {ref: `${ORG}:stable`, digest: ORG_1, version: '1.0.0', from: '1.1.0', reason: 'weaker than the last loaded policy'}}},
  {at: '2025-03-03T11:00:00Z', actor: 'ops@host2', input: {event: 'policy.override.reverted', fields: {ref: `${ORG}:stable`, digest: ORG_2, version: '1.1.0', taint: 'policy_override', reason: 'registry back'}}},
  {at: '2025-03-03T12:00:00Z', actor: 'alice@ws1', input: {event: 'policy.exported', fields: {ref: '/media/usb/policies.tar', digest: SEAL, version: null, artifacts: [ORG_1, TEAM_1], file: '/media/usb/policies.tar'}}},
]

/** An event kind aibox does not write (yet): the report must still count and list it. */
export const UNKNOWN_EVENT = {event: 'policy.profile.selected', actor: 'erin@ws6', at: '2025-03-03T13:00:00Z', fields: {ref: `${ORG}:stable`, digest: null, version: null, profile: 'dev-fast', reason: 'prototype sprint'}}

/**
 * Appends an entry of any event kind with a valid chain and anchor, the way a newer aibox would:
 * `appendAuditEvents` only writes the events this version knows.
 */
export function appendForeignEntry(log: string, event: string, actor: string, time: string, fields: Record<string, unknown>): void {
  const text = fs.readFileSync(log, 'utf8')
  const lines = text.split('\n').slice(0, -1)
  const last = lines.at(-1)!
  const prev = JSON.parse(last) as AuditEntry
  const line = serializeEntry({seq: prev.seq + 1, time, event, actor, ...fields, prev: lineHash(last)})
  fs.appendFileSync(log, `${line}\n`)
  const head = readHead(`${log}.head`)
  if (head.state !== 'ok') throw new Error('the story log has no anchor')
  writeHead(`${log}.head`, {...head.head, seq: prev.seq + 1, hash: lineHash(line), size: fs.statSync(log).size, pending: []})
}

/** Writes the story (and the unknown event) to `dir/audit.jsonl`; returns the log path. */
export async function writeStoryLog(dir: string): Promise<string> {
  const log = path.join(dir, 'audit.jsonl')
  for (const s of STORY) await appendAuditEvents([s.input], {log, now: () => new Date(s.at), actor: s.actor})
  appendForeignEntry(log, UNKNOWN_EVENT.event, UNKNOWN_EVENT.actor, new Date(UNKNOWN_EVENT.at).toISOString(), UNKNOWN_EVENT.fields)
  return log
}

/**
 * Emergency changes still lacking their retroactive approval (README "Governance", seed 004 §5:
 * "post-incident: retroactive PR created for documentation and audit trail").
 *
 * From the audit log: every `policy.emergency` entry, cleared by a later `policy.approved` of the
 * same manifest digest by another key (the emergency key approving its own change is separation of
 * duties violated, and never clears it). Approvals are often made on other machines, whose logs this
 * one does not see, so with a trust policy each emergency still pending in the log is also checked
 * where it was published: it is cleared when its digest now verifies through the normal requirements
 * (the quorum of approvals), not the emergency path.
 */
import {type AuditEntry, readAuditLog, verifyChain} from '../audit/index.js'
import {parseSince} from '../audit/query.js'
import {type OpenOptions, openForRead} from '../distribute/targets.js'
import {verifyPolicyArtifact} from '../distribute/verify.js'
import {AiboxError, errorMessage} from '../errors.js'
import {formatReference, parseReference} from '../oci/reference.js'
import type {TrustPolicy} from '../trust/policy.js'

export interface ClearingApproval {
  source: 'audit-log' | 'registry'
  keyId: string
  key?: string
  role: string
  time: string
  seq?: number
  ticket?: string
  incident?: string
}

export interface EmergencyChange {
  seq: number
  time: string
  actor: string
  ref: string | null
  digest: string | null
  version: string | null
  incident: string | null
  reason: string
  keyId: string
  ticket?: string
  status: 'pending' | 'approved'
  approvals: ClearingApproval[]
  /** With a trust policy: what checking the published digest found (`approved`, `pending`, or why it could not be checked). */
  registryCheck?: {status: 'approved' | 'pending' | 'error'; message: string}
}

export interface EmergencyReport {
  log: string
  exists: boolean
  /** False when the log's chain does not verify (the listing may then be incomplete or forged). */
  intact: boolean
  brokenAt?: string
  /** Emergencies in log order; only pending ones unless `all`. */
  emergencies: EmergencyChange[]
  pending: number
  total: number
}

export interface EmergencyOptions extends OpenOptions {
  /** List approved ones too. */
  all?: boolean
  /** Only emergencies at or after this time (as `aibox audit log --since`). */
  since?: string
  /** Check pending emergencies where they were published, against this trust policy. */
  trust?: TrustPolicy
  now?: Date
  signal?: AbortSignal
}

function clearingFromLog(e: AuditEntry, entries: AuditEntry[]): ClearingApproval[] {
  return entries
    .filter((a) => a.event === 'policy.approved' && a.seq > e.seq && a.digest === e.digest && a.keyId !== e.keyId)
    .map((a) => ({
      source: 'audit-log' as const,
      keyId: String(a.keyId),
      role: String(a.role),
      time: a.time,
      seq: a.seq,
      ...(typeof a.ticket === 'string' ? {ticket: a.ticket} : {}),
      ...(typeof a.incident === 'string' ? {incident: a.incident} : {}),
    }))
}

async function checkPublished(change: EmergencyChange, trust: TrustPolicy, options: EmergencyOptions): Promise<EmergencyChange['registryCheck']> {
  if (change.ref === null || change.digest === null) return {status: 'error', message: 'the entry names no reference or digest'}
  let location: string
  try {
    const r = parseReference(change.ref)
    location = formatReference({...r, tag: undefined, digest: undefined})
  } catch (err) {
    return {status: 'error', message: `cannot read the reference ${change.ref}: ${errorMessage(err)}`}
  }
  try {
    const opened = await openForRead(location, options)
    try {
      const v = await verifyPolicyArtifact(opened.target, change.digest, {trust, reference: change.ref, now: options.now, signal: options.signal})
      if (v.emergency?.pendingApproval === false) {
        for (const a of (v.approvalSummary ?? []).filter((x) => x.eligible)) {
          change.approvals.push({source: 'registry', keyId: a.keyId, key: a.key, role: a.role, time: a.approvedAt, ...(a.ticket ? {ticket: a.ticket} : {}), ...(a.incident ? {incident: a.incident} : {})})
        }
        return {status: 'approved', message: `${location}@${change.digest} now meets its normal requirements`}
      }
      return {status: 'pending', message: `${location}@${change.digest} is still accepted only through its emergency path`}
    } finally {
      await opened.close()
    }
  } catch (err) {
    return {status: 'error', message: err instanceof AiboxError ? `${err.code}: ${err.message}` : errorMessage(err)}
  }
}

/** Lists emergency changes and whether each was approved afterwards (see the module comment). */
export async function listEmergencies(log: string, options: EmergencyOptions = {}): Promise<EmergencyReport> {
  const since = options.since === undefined ? undefined : parseSince(options.since, options.now ?? new Date()).getTime()
  const read = await readAuditLog(log)
  const chain = read.exists ? await verifyChain(log) : undefined
  const changes: EmergencyChange[] = []
  for (const e of read.entries) {
    if (e.event !== 'policy.emergency') continue
    if (since !== undefined && !(Date.parse(e.time) >= since)) continue
    const approvals = clearingFromLog(e, read.entries)
    const change: EmergencyChange = {
      seq: e.seq,
      time: e.time,
      actor: e.actor,
      ref: e.ref,
      digest: e.digest,
      version: e.version,
      incident: typeof e.incident === 'string' ? e.incident : null,
      reason: typeof e.reason === 'string' ? e.reason : '',
      keyId: String(e.keyId),
      ...(typeof e.ticket === 'string' ? {ticket: e.ticket} : {}),
      status: approvals.length > 0 ? 'approved' : 'pending',
      approvals,
    }
    if (change.status === 'pending' && options.trust) {
      change.registryCheck = await checkPublished(change, options.trust, options)
      if (change.registryCheck?.status === 'approved') change.status = 'approved'
    }
    changes.push(change)
  }
  const pending = changes.filter((c) => c.status === 'pending').length
  const broken = chain && !chain.ok ? chain.firstBroken : undefined
  return {
    log: read.log,
    exists: read.exists,
    intact: chain ? chain.ok : true,
    ...(broken ? {brokenAt: `${broken.line === null ? 'anchor' : `line ${broken.line}`}: ${broken.reason}: ${broken.message}`} : {}),
    emergencies: options.all ? changes : changes.filter((c) => c.status === 'pending'),
    pending,
    total: changes.length,
  }
}

/** JSON-friendly summaries of a verified policy (no bytes, no parsed tree) for command results. */
import type {VerifiedPolicy} from '../distribute/verify.js'

export interface VerifiedPolicySummary {
  location: string
  digest: string
  contentDigest: string
  name: string
  version: string
  tier: string
  /** The signed metadata.tenant, when the policy names one. */
  tenant?: string
  annotations: Record<string, string>
  signatures: VerifiedPolicy['signatures']
  approvals: VerifiedPolicy['approvals']
  attestations: VerifiedPolicy['attestations']
  rejected: VerifiedPolicy['rejected']
  skipped: VerifiedPolicy['skipped']
  trust?: VerifiedPolicy['trust']
  emergency?: VerifiedPolicy['emergency']
  approvalSummary: NonNullable<VerifiedPolicy['approvalSummary']>
}

export function summarizeVerified(v: VerifiedPolicy): VerifiedPolicySummary {
  return {
    location: v.location,
    digest: v.manifest.digest,
    contentDigest: v.contentDigest,
    name: v.name,
    version: v.version,
    tier: v.tier,
    ...(v.tenant !== undefined ? {tenant: v.tenant} : {}),
    annotations: v.annotations,
    signatures: v.signatures,
    approvals: v.approvals,
    attestations: v.attestations,
    rejected: v.rejected,
    skipped: v.skipped,
    ...(v.trust ? {trust: v.trust} : {}),
    ...(v.emergency ? {emergency: v.emergency} : {}),
    approvalSummary: v.approvalSummary ?? [],
  }
}

/** Human lines describing who signed and approved. */
export function verifiedLines(v: VerifiedPolicy): string[] {
  const name = (s: {name?: string; keyId: string; identity?: {issuer: string; subject: string}}) =>
    s.identity ? `${s.identity.subject} (issuer ${s.identity.issuer}, keyless)` : s.name === undefined ? s.keyId : `'${s.name}' (${s.keyId})`
  const lines = v.signatures.map((s) => `  signed by ${name(s.signer)}${s.format === 'cosign-legacy' ? ' (legacy .sig)' : ''}`)
  if (v.tenant !== undefined) lines.unshift(`  tenant ${v.tenant}`)
  for (const a of v.approvalSummary ?? []) {
    const verdict = a.eligible === false ? ` [not counted: ${a.reason ?? 'refused'}]` : ''
    lines.push(`  approved by ${a.key === a.keyId ? a.keyId : `'${a.key}' (${a.keyId})`} as ${a.role}${a.ticket ? ` [${a.ticket}]` : ''}${a.incident ? ` (incident ${a.incident})` : ''} at ${a.approvedAt}: ${a.note}${verdict}`)
  }
  if (v.trust) {
    for (const sc of v.trust.scopes) {
      const reqs = sc.via === 'emergency' && sc.emergency ? sc.emergency.requirements : sc.requirements
      lines.push(`  trust scope '${sc.scope}'${sc.via === 'emergency' ? ' (emergency path)' : ''}: ${reqs.map((r) => `${r.kind} ${r.role} ${r.keys.length}/${r.threshold}`).join('; ')}`)
    }
  }
  if (v.emergency) {
    const status = v.emergency.pendingApproval === true ? ': accepted on its emergency path, retroactive approval pending' : v.emergency.pendingApproval === false ? ': retroactively approved' : ''
    lines.push(`  emergency change for incident ${v.emergency.incident}${status}`)
  }
  return lines
}

/** JSON-friendly summaries of a verified policy (no bytes, no parsed tree) for command results. */
import type {VerifiedPolicy} from '../distribute/verify.js'

export interface VerifiedPolicySummary {
  location: string
  digest: string
  contentDigest: string
  name: string
  version: string
  tier: string
  annotations: Record<string, string>
  signatures: VerifiedPolicy['signatures']
  approvals: VerifiedPolicy['approvals']
  attestations: VerifiedPolicy['attestations']
  rejected: VerifiedPolicy['rejected']
  skipped: VerifiedPolicy['skipped']
  trust?: VerifiedPolicy['trust']
}

export function summarizeVerified(v: VerifiedPolicy): VerifiedPolicySummary {
  return {
    location: v.location,
    digest: v.manifest.digest,
    contentDigest: v.contentDigest,
    name: v.name,
    version: v.version,
    tier: v.tier,
    annotations: v.annotations,
    signatures: v.signatures,
    approvals: v.approvals,
    attestations: v.attestations,
    rejected: v.rejected,
    skipped: v.skipped,
    ...(v.trust ? {trust: v.trust} : {}),
  }
}

/** Human lines describing who signed and approved. */
export function verifiedLines(v: VerifiedPolicy): string[] {
  const name = (s: {name?: string; keyId: string}) => (s.name === undefined ? s.keyId : `'${s.name}' (${s.keyId})`)
  const lines = v.signatures.map((s) => `  signed by ${name(s.signer)}${s.format === 'cosign-legacy' ? ' (legacy .sig)' : ''}`)
  for (const a of v.approvals) {
    lines.push(`  approved by ${name(a.signer)} as ${a.role}${a.ticket ? ` [${a.ticket}]` : ''}${a.incident ? ` (incident ${a.incident})` : ''}: ${a.note}`)
  }
  if (v.trust) {
    for (const sc of v.trust.scopes) {
      lines.push(`  trust scope '${sc.scope}': ${sc.requirements.map((r) => `${r.kind} ${r.role} ${r.keys.length}/${r.threshold}`).join('; ')}`)
    }
  }
  return lines
}

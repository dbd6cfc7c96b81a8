/** Human output of `aibox inspect REF` / `aibox bundle inspect REF`. */
import type {DiscoverNode} from '../distribute/discover.js'
import type {InspectPolicyResult} from '../distribute/inspect.js'

export function printInspection(ref: string, r: InspectPolicyResult, log: (s: string) => void): void {
  const rows: Array<[string, string]> = [
    ['reference', ref],
    ['digest', r.digest],
    ['type', `${r.mediaType}${r.artifactType ? ` (${r.artifactType})` : ''}, ${r.size} bytes`],
  ]
  if (r.policy) {
    rows.push(['policy', `${r.policy.name ?? '-'} ${r.policy.version ?? '-'} (tier ${r.policy.tier ?? '-'})`])
    if (r.policy.tenant !== null) rows.push(['tenant', r.policy.tenant])
    rows.push(['content', r.policy.contentDigest])
  }
  for (const [k, v] of rows) log(`${k.padEnd(10)} ${v}`)
  const ann = Object.entries(r.annotations)
  if (ann.length) {
    log('annotations')
    for (const [k, v] of ann) log(`  ${k}: ${v}`)
  }
  if (r.layers.length) {
    log('layers')
    for (const l of r.layers) log(`  ${l.mediaType} ${l.digest} ${l.size} bytes${l.annotations?.['org.opencontainers.image.title'] ? ` ${l.annotations['org.opencontainers.image.title']}` : ''}`)
  }
  for (const p of r.policy?.problems ?? []) log(`problem   ${p}`)
  log(`referrers (not verified; aibox discover --key/--trust verifies)`)
  if (r.referrers.length === 0) log('  (none)')
  const walk = (nodes: DiscoverNode[], indent: string) => {
    for (const n of nodes) {
      const what = n.kind === 'approval' ? `approval role ${String(n.approval?.role ?? '?')}` : n.kind
      log(`${indent}${what} ${n.id}${n.created ? ` ${n.created}` : ''}${n.problem ? `: ${n.problem}` : ''}`)
      walk(n.referrers, `${indent}  `)
    }
  }
  walk(r.referrers, '  ')
  log('not verified: use aibox verify REF --key/--trust before trusting it')
}

// Child for the concurrency and crash tests: appends `count` events (or forever with
// count "loop", printing "ready" after the first) to `log` as actor `actor`.
import {appendAudit} from '../../../../src/audit/index.js'

const [log, count, actor] = process.argv.slice(2) as [string, string, string]
const digest = `sha256:${'ab'.repeat(32)}`
const tiers = [{tier: 'org' as const, ref: 'oci:/srv/org:stable', digest, version: '1.0.0', signers: ['SHA256:k']}]
const n = count === 'loop' ? Number.POSITIVE_INFINITY : Number(count)
for (let i = 0; i < n; i++) {
  await appendAudit(
    'policy.loaded',
    {ref: 'oci:/srv/org:stable', digest, version: `1.0.${i}`, source: 'cache', stalenessSeconds: i, tiers},
    {log, actor, lockTimeoutMs: 120_000},
  )
  if (i === 0 && count === 'loop') process.stdout.write('ready\n')
}

// Our side of bench/airgap.bench.ts, run as its own process (its wall time includes start-up, like
// skopeo's, and its peak RSS is its own). Uses the compiled library (dist/), as the CLI does.
//   node bench/airgap-client.mjs export REF OUT.tar KEY_FILE       (registry → sealed layout tar)
//   node bench/airgap-client.mjs import ARCHIVE HOST/REPO PUB...   (sealed tar → verified → registry)
// The key file's password comes from COSIGN_PASSWORD. Prints {"maxRssKiB": N} on stdout.
import {exportPolicies, importPolicies, loadPrivateKey, loadPublicKey} from '../dist/src/index.js'

const [, , op, a, b, ...rest] = process.argv
if (op === 'export') {
  const key = await loadPrivateKey(rest[0], {password: process.env.COSIGN_PASSWORD ?? ''})
  await exportPolicies({references: [a], output: b, key, force: true, env: {SOURCE_DATE_EPOCH: '1700000000'}})
} else if (op === 'import') {
  await importPolicies({archive: a, to: b, keys: rest.map((f) => loadPublicKey(f))})
} else {
  process.stderr.write(`unknown operation ${op}\n`)
  process.exit(1)
}
process.stdout.write(`${JSON.stringify({maxRssKiB: process.resourceUsage().maxRSS})}\n`)

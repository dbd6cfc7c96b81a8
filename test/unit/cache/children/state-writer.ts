// Child for the cache state tests: records `n` stack memos named `<tag>-<i>` in the cache at `dir`,
// each a read-modify-write of state.json under the cache lock (PolicyCache.update).
import {PolicyCache} from '../../../../src/cache/cache.js'

const [dir, tag, n] = process.argv.slice(2) as [string, string, string]
const cache = new PolicyCache(dir, {lockTimeoutMs: 120_000})
for (let i = 0; i < Number(n); i++) {
  await cache.update((state) => {
    state.profiles[`${tag}-${i}`] = {refs: {org: `${tag}-${i}`}}
    return {result: undefined, changed: true}
  })
}

/**
 * `make stress`: the crash-safety suite (test/e2e/crash.test.ts) with STRESS_KILLS kill points
 * (default 100) instead of make test's 8: 30 in a push to an oci: layout, 15 in its audit append,
 * 10 in a pull, 25 in an `aibox start` cache fill (empty or warm cache) and 20 in an `aibox import`
 * (into the start cache, a cache to be updated, or an oci: layout). The titles print the counts.
 */
process.env.STRESS_KILLS ??= '100'
await import('../e2e/crash.test.js')

/**
 * `make stress`: the crash-safety suite (test/e2e/crash.test.ts) with STRESS_KILLS kill points
 * (default 100) instead of make test's few.
 */
process.env.STRESS_KILLS ??= '100'
await import('../e2e/crash.test.js')

/**
 * `make stress`: every case of the hostile-input corpus (testdata/hostile/cases.json), not only
 * the quick ones `make test` runs.
 */
process.env.HOSTILE_ALL ??= '1'
await import('../e2e/hostile.test.js')

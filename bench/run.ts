/**
 * `make bench`: runs every bench/*.bench.ts (or those named in BENCH=a,b) one after the
 * other in its own process, so that a benchmark's memory and JIT state never leak into the
 * next. Each benchmark measures its own baseline in the same run and prints ratios.
 */
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const dir = path.dirname(fileURLToPath(import.meta.url))
const only = (process.env.BENCH ?? '').split(',').filter(Boolean)
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.bench\.ts$/, '')))
  .sort()
let failed = 0
for (const f of files) {
  process.stdout.write(`\n=== ${f}\n`)
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', path.join(dir, f)], {stdio: 'inherit'})
  if (r.status !== 0) {
    failed++
    process.stdout.write(`!!! ${f} exited ${r.status}\n`)
  }
}
process.stdout.write(`\n${files.length - failed} benchmarks ran, ${failed} failed\n`)
process.exit(failed ? 1 : 0)

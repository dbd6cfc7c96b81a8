/**
 * `make fuzz`: runs every fuzz target (test/fuzz/targets.ts) for FUZZ_SECONDS (default 60) with
 * a random seed (FUZZ_SEED to replay one), FUZZ_TARGETS=a,b to choose targets. An input that
 * breaks the invariant is shrunk by fast-check and saved as
 * testdata/hostile/regressions/<target>/<sha256 prefix>.bin, which test/unit/fuzz/fuzz.test.ts
 * replays from then on. Exit 1 when anything was found.
 *
 *   node --import tsx scripts/fuzz.ts
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import fc from 'fast-check'

import {TARGETS, violation} from '../test/fuzz/targets.js'
import {cleanupTmp} from '../test/helpers/tmp.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const seconds = Number(process.env.FUZZ_SECONDS ?? 60)
const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31)
const only = process.env.FUZZ_TARGETS?.split(',').filter(Boolean)
const targets = TARGETS.filter((t) => !only || only.includes(t.name))
if (targets.length === 0) {
  console.error(`no such target; targets: ${TARGETS.map((t) => t.name).join(', ')}`)
  process.exit(2)
}

console.log(`fuzzing ${targets.length} targets for ${seconds} s each, seed ${seed} (replay: FUZZ_SEED=${seed})`)
let found = 0
for (const target of targets) {
  let runs = 0
  const started = Date.now()
  const result = await fc.check(
    fc.asyncProperty(target.arbitrary, async (input) => {
      runs++
      const v = await violation(target, input)
      if (v) throw new Error(v)
    }),
    {seed, numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false},
  )
  const took = ((Date.now() - started) / 1000).toFixed(0)
  if (!result.failed) {
    console.log(`  ${target.name}: ${runs} inputs in ${took} s, nothing found`)
    continue
  }
  found++
  const input = result.counterexample![0] as Buffer
  const dir = path.join(ROOT, 'testdata', 'hostile', 'regressions', target.name)
  fs.mkdirSync(dir, {recursive: true})
  const file = path.join(dir, `${createHash('sha256').update(input).digest('hex').slice(0, 16)}.bin`)
  fs.writeFileSync(file, input)
  console.log(`  ${target.name}: FOUND after ${runs} inputs (${took} s): ${result.errorInstance instanceof Error ? result.errorInstance.message.split('\n')[0] : String(result.errorInstance)}`)
  console.log(`    saved ${path.relative(ROOT, file)} (${input.length} bytes); it is now a regression test`)
}
cleanupTmp()
process.exit(found > 0 ? 1 : 0)

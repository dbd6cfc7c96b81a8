/**
 * The fuzz targets (test/fuzz/targets.ts) in a short deterministic run: a fixed seed and a few
 * hundred inputs per target, so `make test` fails the same way on every machine. `make fuzz`
 * runs the same targets for FUZZ_SECONDS each with a random seed and saves what it finds under
 * testdata/hostile/regressions/<target>/, which is replayed here on every run.
 */
import path from 'node:path'

import {expect} from 'chai'
import fc from 'fast-check'

import {TARGETS, regressions, violation} from '../../fuzz/targets.js'

const SEED = 20_261_121

describe('fuzz targets', function () {
  this.timeout(120_000)
  for (const target of TARGETS) {
    describe(target.name, () => {
      it(`keeps the invariant on ${target.quickRuns} generated inputs (seed ${SEED}): ${target.about}`, async () => {
        await fc.assert(
          fc.asyncProperty(target.arbitrary, async (input) => {
            const v = await violation(target, input)
            if (v) throw new Error(v)
          }),
          {seed: SEED, numRuns: target.quickRuns},
        )
      })
      for (const r of regressions(target)) {
        it(`regression ${path.basename(r.file)}: only AiboxErrors, within ${target.maxCpuMs} ms of CPU`, async () => {
          expect(await violation(target, r.input)).to.equal(undefined)
        })
      }
    })
  }
})

/**
 * Regenerates testdata/golden: the policy artifact manifests `packPolicy` produces for
 * testdata/golden/org-baseline.yaml (a frozen copy of testdata/bundles/org/baseline.yaml), with SOURCE_DATE_EPOCH=1700000000 and without it.
 * test/unit/distribute/pack.test.ts compares fresh packs with these bytes: a change in the
 * packing (field order, annotations, media types) is a failing test until this script is run
 * on purpose and the diff reviewed, because it changes every published digest.
 * Run: node --import tsx scripts/gen-golden.ts
 */
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {loadBundle} from '../src/bundle/load.js'
import {packPolicy} from '../src/distribute/pack.js'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = path.join(root, 'testdata', 'golden')
fs.mkdirSync(out, {recursive: true})
const bundle = loadBundle(path.join(out, 'org-baseline.yaml'))
const cases: Array<[string, NodeJS.ProcessEnv]> = [
  ['org-baseline.manifest.json', {SOURCE_DATE_EPOCH: '1700000000'}],
  ['org-baseline.no-created.manifest.json', {}],
]
for (const [file, env] of cases) {
  const packed = await packPolicy(bundle, {env})
  fs.writeFileSync(path.join(out, file), packed.manifestBytes)
  console.log(`${packed.manifest.digest}  ${file}`)
}

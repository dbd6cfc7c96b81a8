/**
 * Fixtures for the cache and start tests: versions of the testdata bundles (the same policy with
 * another metadata.version, or with a changed field), written to real files and published with the
 * real pack/sign code.
 */
import fs from 'node:fs'
import path from 'node:path'

import {loadBundleText} from '../../src/bundle/load.js'
import type {LoadedBundle} from '../../src/bundle/model.js'
import {ORG_BASELINE, TEAM_ALPHA} from './policy-fixtures.js'

/** The org baseline's YAML with `version` (and optional textual replacements). */
export function orgYaml(version: string, replace: Array<[string | RegExp, string]> = []): string {
  let text = fs.readFileSync(ORG_BASELINE, 'utf8').replace(/^ {2}version: 1\.4\.0$/m, `  version: ${version}`)
  for (const [a, b] of replace) text = text.replace(a, b)
  return text
}

export function teamYaml(version: string, replace: Array<[string | RegExp, string]> = []): string {
  let text = fs.readFileSync(TEAM_ALPHA, 'utf8').replace(/^ {2}version: 2\.1\.0$/m, `  version: ${version}`)
  for (const [a, b] of replace) text = text.replace(a, b)
  return text
}

/** Writes `text` to `dir/name` and returns the path. */
export function writeFile(dir: string, name: string, text: string): string {
  const file = path.join(dir, name)
  fs.mkdirSync(path.dirname(file), {recursive: true})
  fs.writeFileSync(file, text)
  return file
}

export function bundleOf(text: string, file = 'policy.yaml'): LoadedBundle {
  return loadBundleText(text, file)
}

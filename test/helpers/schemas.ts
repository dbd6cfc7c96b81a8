/**
 * One ajv (JSON Schema 2020-12, formats) loaded with every schema under schemas/, so tests
 * validate `--json` output and documents against the same files users get.
 */
import {expect} from 'chai'
import {Ajv2020} from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import fs from 'node:fs'
import path from 'node:path'

import {ROOT} from './cli.js'

let ajv: Ajv2020 | undefined

export function schemaAjv(): Ajv2020 {
  if (ajv) return ajv
  ajv = new Ajv2020({allErrors: true, strict: false, allowUnionTypes: true})
  const addFormats = ((addFormatsModule as unknown as {default?: unknown}).default ?? addFormatsModule) as (a: Ajv2020) => void
  addFormats(ajv)
  for (const dir of ['schemas', path.join('schemas', 'output')]) {
    for (const f of fs.readdirSync(path.join(ROOT, dir)).filter((x) => x.endsWith('.json')).sort()) {
      const schema = JSON.parse(fs.readFileSync(path.join(ROOT, dir, f), 'utf8'))
      // Key every schema by its $id (resolvable $refs) and by its repo path (schemas/output/x.json).
      ajv.addSchema(schema, `${dir}/${f}`.split(path.sep).join('/'))
    }
  }
  return ajv
}

/** Asserts `value` is valid against `schemas/output/<name>.json`. */
export function expectOutputSchema(name: string, value: unknown): void {
  const validate = schemaAjv().getSchema(`schemas/output/${name}.json`)
  if (!validate) throw new Error(`no schema schemas/output/${name}.json`)
  expect(validate(value), `${name}: ${JSON.stringify(validate.errors, null, 1)}`).to.equal(true)
}

/** Asserts `value` is valid against `schemas/<file>`. */
export function expectSchema(file: string, value: unknown): void {
  const validate = schemaAjv().getSchema(`schemas/${file}`)
  if (!validate) throw new Error(`no schema schemas/${file}`)
  expect(validate(value), `${file}: ${JSON.stringify(validate.errors, null, 1)}`).to.equal(true)
}

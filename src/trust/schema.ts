/** Finds and compiles the JSON Schemas shipped in the package's `schemas/` directory (from src/ under tsx or dist/src/ when built). */
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {Ajv2020, type ValidateFunction} from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'

const compiled = new Map<string, ValidateFunction>()

export function schemaPath(name: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'schemas', name)
    if (fs.existsSync(candidate)) return candidate
    dir = path.dirname(dir)
  }
  throw new Error(`schema ${name} not found above ${fileURLToPath(import.meta.url)}`)
}

export function compileSchema(name: string): ValidateFunction {
  let fn = compiled.get(name)
  if (!fn) {
    const ajv = new Ajv2020({allErrors: true, strict: true})
    // ajv-formats is CommonJS; under ESM its default export is the plugin function itself or {default}.
    const addFormats = ((addFormatsModule as unknown as {default?: unknown}).default ?? addFormatsModule) as (a: Ajv2020) => void
    addFormats(ajv)
    fn = ajv.compile(JSON.parse(fs.readFileSync(schemaPath(name), 'utf8')))
    compiled.set(name, fn)
  }
  return fn
}

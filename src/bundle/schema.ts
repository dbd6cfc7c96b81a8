/**
 * JSON Schema validation (ajv, draft 2020-12) against the files in `schemas/`, with every
 * ajv error turned into a located problem: `file:line:col /json/pointer: message`, an
 * unknown key pointing at the key itself with a "did you mean" hint.
 */
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {Ajv2020, type ErrorObject, type ValidateFunction} from 'ajv/dist/2020.js'

import {InputError, type Problem} from '../errors.js'
import {didYouMean} from './json.js'
import type {ParsedDocument} from './parse.js'

export const SCHEMA_BASE = 'https://aibox.dev/schemas/'

export const SCHEMA_IDS = {
  bundle: `${SCHEMA_BASE}policy-bundle.schema.json`,
  aiboxPolicy: `${SCHEMA_BASE}aibox-policy-v1.schema.json`,
  helmBundle: `${SCHEMA_BASE}helm-policy-bundle.schema.json`,
  helmPolicy: `${SCHEMA_BASE}helm-policy.schema.json`,
  tests: `${SCHEMA_BASE}policy-tests.schema.json`,
} as const

let schemasDir: string | undefined

/** The package's `schemas/` directory (works from src/ under tsx and from dist/ when built). */
export function schemaDirectory(): string {
  if (schemasDir) return schemasDir
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'schemas', 'policy-bundle.schema.json'))) return (schemasDir = path.join(dir, 'schemas'))
    dir = path.dirname(dir)
  }
  throw new InputError('SCHEMAS_MISSING', 'cannot find the schemas/ directory of aibox-policy', {suggestions: ['reinstall the package; schemas/ ships with it']})
}

let ajv: Ajv2020 | undefined
const compiled = new Map<string, ValidateFunction>()

function instance(): Ajv2020 {
  if (ajv) return ajv
  const a = new Ajv2020({allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true})
  // Our annotation: the human wording of a pattern, used in error messages.
  a.addKeyword({keyword: 'errorHint', schemaType: 'string'})
  const dir = schemaDirectory()
  for (const f of fs.readdirSync(dir).sort()) {
    if (!f.endsWith('.schema.json')) continue
    a.addSchema(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as object)
  }
  ajv = a
  return a
}

/** A compiled validator for a schema id (or a `$id#/$defs/x` reference). */
export function validator(id: string): ValidateFunction {
  let v = compiled.get(id)
  if (!v) {
    const got = instance().getSchema(id)
    if (!got) throw new InputError('SCHEMA_MISSING', `schema ${id} is not available`)
    v = got
    compiled.set(id, v)
  }
  return v
}

/** Validates a parsed document; returns located problems (empty when valid). */
export function validateDocument(doc: ParsedDocument, schemaId: string): Problem[] {
  const validate = validator(schemaId)
  if (validate(doc.value)) return []
  return ajvProblems(validate.errors ?? [], doc)
}

/** Validates plain data (no source positions): problems carry only the pointer. */
export function validateValue(value: unknown, schemaId: string, file?: string): Problem[] {
  const validate = validator(schemaId)
  if (validate(value)) return []
  return mapErrors(validate.errors ?? [], (ptr) => ({file, pointer: ptr}))
}

function ajvProblems(errors: ErrorObject[], doc: ParsedDocument): Problem[] {
  return mapErrors(errors, (ptr, preferKey) => ({file: doc.file, ...doc.locate(ptr, preferKey), pointer: ptr}))
}

/**
 * Schema problems reported (and located) per document. Locating one re-reads the source up to it,
 * so a hostile file with 200,000 unknown keys took minutes when every problem was located
 * (testdata/hostile/README.md); nobody reads past the first hundred anyway.
 */
export const MAX_SCHEMA_PROBLEMS = 100

function mapErrors(errors: ErrorObject[], where: (ptr: string, preferKey: boolean) => Omit<Problem, 'message'>): Problem[] {
  const out: Problem[] = []
  const seen = new Set<string>()
  for (let i = 0; i < errors.length; i++) {
    if (out.length >= MAX_SCHEMA_PROBLEMS) {
      // Not described (a "did you mean" per unknown key is itself costly): counted only.
      const more = errors.length - i
      out.push({file: where('', false).file, message: `… and up to ${more} more schema problem${more === 1 ? '' : 's'} not shown`})
      break
    }
    const mapped = describe(errors[i]!)
    if (!mapped) continue
    const key = `${mapped.pointer}\u0000${mapped.message}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push({...where(mapped.pointer, mapped.preferKey), message: mapped.message})
  }
  return out
}

function esc(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1')
}

function show(v: unknown): string {
  const s = JSON.stringify(v)
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s
}

function typeName(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a mapping'
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a number'
  return `a ${typeof v}`
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'a boolean (true or false)',
  object: 'a mapping',
  array: 'a list',
  null: 'null',
}

function describe(e: ErrorObject): {pointer: string; message: string; preferKey: boolean} | undefined {
  const ptr = e.instancePath
  const hint = (e.parentSchema as {errorHint?: string} | undefined)?.errorHint
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'if':
      return undefined // the failing "then" branch is reported on its own
    case 'additionalProperties': {
      const k = String(p.additionalProperty)
      const props = Object.keys(((e.parentSchema as {properties?: object})?.properties ?? {}) as object)
      const guess = didYouMean(k, props)
      const allowed = props.length > 0 && props.length <= 8 ? `; allowed here: ${props.join(', ')}` : ''
      return {pointer: `${ptr}/${esc(k)}`, message: `unknown key ${show(k)}${guess ? ` (did you mean ${show(guess)}?)` : allowed}`, preferKey: true}
    }
    case 'required':
      return {pointer: ptr, message: `missing required key ${show(p.missingProperty)}`, preferKey: true}
    case 'enum':
      return {pointer: ptr, message: `must be one of ${(p.allowedValues as unknown[]).map((v) => show(v)).join(', ')} (got ${show(e.data)})`, preferKey: false}
    case 'const':
      return {pointer: ptr, message: `must be ${show(p.allowedValue)} (got ${show(e.data)})`, preferKey: false}
    case 'type': {
      const want = String(p.type)
        .split(',')
        .map((t) => TYPE_WORDS[t] ?? t)
        .join(' or ')
      return {pointer: ptr, message: `must be ${want} (got ${typeName(e.data)})`, preferKey: false}
    }
    case 'pattern':
    case 'not':
      return {pointer: ptr, message: hint ? `${show(e.data)} is not valid: expected ${hint}` : `${show(e.data)} ${e.message ?? 'is not valid'}`, preferKey: false}
    case 'minItems':
      return {pointer: ptr, message: p.limit === 1 ? 'must not be empty' : `must have at least ${String(p.limit)} items`, preferKey: false}
    case 'minLength':
      return {pointer: ptr, message: p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters`, preferKey: false}
    case 'maxLength':
      return {pointer: ptr, message: `must be at most ${String(p.limit)} characters`, preferKey: false}
    case 'uniqueItems':
      return {pointer: ptr, message: `has a repeated item (items ${String(p.j)} and ${String(p.i)} are equal)`, preferKey: false}
    case 'minimum':
    case 'maximum':
      return {pointer: ptr, message: `must be ${e.keyword === 'minimum' ? '≥' : '≤'} ${String(p.limit)} (got ${show(e.data)})`, preferKey: false}
    case 'minProperties':
    case 'maxProperties': {
      const props = Object.keys(((e.parentSchema as {properties?: object})?.properties ?? {}) as object)
      if (props.length > 0 && (e.parentSchema as {maxProperties?: number}).maxProperties === 1) {
        return {pointer: ptr, message: `must have exactly one of ${props.join(', ')}`, preferKey: false}
      }
      return {pointer: ptr, message: e.keyword === 'minProperties' ? 'must not be empty' : (e.message ?? 'has too many keys'), preferKey: false}
    }
    case 'propertyNames':
      return {pointer: ptr, message: `has an invalid key ${show(p.propertyName)}`, preferKey: false}
    case 'anyOf':
    case 'oneOf':
      return {pointer: ptr, message: 'does not match any allowed form', preferKey: false}
    default:
      return {pointer: ptr, message: e.message ?? `fails ${e.keyword}`, preferKey: false}
  }
}

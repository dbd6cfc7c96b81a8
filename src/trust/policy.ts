/**
 * Trust policy loading (schemas/trust-policy.schema.json, README "Trust policy"): strict YAML,
 * schema, then semantic checks, every problem collected with file:line and JSON pointer and
 * thrown once as a ValidationError (exit 1).
 *
 * Semantic checks beyond the schema: each key has exactly one of publicKey/path and parses as a
 * supported public key; roles are built-in or declared; no public key appears under two names
 * (distinct-key thresholds would be fooled); notBefore < notAfter; revocations name a known key
 * (or a key identifier); scope names are unique; every threshold can be met by the policy's
 * non-revoked keys (a typo in a role must not silently lock everyone out).
 */
import path from 'node:path'

import {pointer as jsonPointer} from '../bundle/json.js'
import {type ParsedDocument, parseDocument, type SourcePosition} from '../bundle/parse.js'
import {InputError, NotFoundError, type Problem, ValidationError, errorMessage} from '../errors.js'
import {parsePublicKey} from '../sign/keys.js'
import {readFileBounded} from '../sign/fs.js'
import type {VerificationKey} from '../sign/types.js'
import {maxAssignment} from './match.js'
import {compileSchema} from './schema.js'

export const TRUST_POLICY_API_VERSION = 'aibox.dev/v1'
export const BUILTIN_ROLES = ['org-admin', 'security', 'team-lead', 'project-owner', 'author', 'approver', 'operator'] as const
import type {Tier} from '../bundle/model.js'
export type {Tier}

export interface TrustKey extends VerificationKey {
  name: string
  roles: string[]
  notBefore?: Date
  notAfter?: Date
  description?: string
  revoked?: {reason: string; revokedAt?: Date}
}

export interface TrustScope {
  name: string
  description?: string
  match: {registry?: string[]; repository?: string[]; tiers?: Tier[]}
  /** statement kind (e.g. `signatures`) → role → threshold of distinct keys. */
  require: Record<string, Record<string, number>>
}

export interface TrustPolicy {
  file: string
  keys: TrustKey[]
  scopes: TrustScope[]
  roles: string[]
  metadata?: {name?: string; description?: string}
}

const MAX_TRUST_FILE_BYTES = 4 * 1024 * 1024
/** Schema problems reported per policy (the bundle module's limit). */
const MAX_SCHEMA_PROBLEMS = 100

/** Loads and validates a trust policy file. */
export function loadTrustPolicy(file: string): TrustPolicy {
  let text: string
  try {
    text = readFileBounded(file, 'trust policy', MAX_TRUST_FILE_BYTES).toString('utf8')
  } catch (err) {
    if (err instanceof NotFoundError) throw new NotFoundError('TRUST_POLICY_NOT_FOUND', `trust policy '${file}' does not exist`, {suggestions: ['see README "Trust policy" for an example']})
    throw err
  }
  return parseTrustPolicy(text, file)
}

/** Parses trust policy text; `file` names it in problems and anchors relative key paths. */
export function parseTrustPolicy(text: string, file: string): TrustPolicy {
  const y = parseYaml(text, file)
  const problems: Problem[] = []
  const at = (pointer: string, message: string, key = false): Problem => ({file, ...locate(y, pointer, key), pointer, message})

  const validate = compileSchema('trust-policy.schema.json')
  if (!validate(y.value)) {
    const errors = validate.errors ?? []
    for (const [i, e] of errors.entries()) {
      // Locating a problem re-reads the source: a hostile policy with 200,000 unknown keys must not be located 200,000 times.
      if (problems.length >= MAX_SCHEMA_PROBLEMS) {
        problems.push({file, message: `… and up to ${errors.length - i} more problems not shown`})
        break
      }
      // ajv reports a bad property name twice: once from the name's own schema (with e.propertyName), once as propertyNames.
      if ((e as {propertyName?: string}).propertyName !== undefined) continue
      if (e.keyword === 'additionalProperties') {
        const prop = (e.params as {additionalProperty: string}).additionalProperty
        problems.push(at(`${e.instancePath}${jsonPointer([prop])}`, `unknown field '${prop}'`, true))
      } else if (e.keyword === 'oneOf' || e.keyword === 'if') {
        continue // the branch errors say what is wrong
      } else if (e.keyword === 'const' || e.keyword === 'enum') {
        const allowed = e.keyword === 'const' ? [(e.params as {allowedValue: unknown}).allowedValue] : (e.params as {allowedValues: unknown[]}).allowedValues
        problems.push(at(e.instancePath, `must be ${allowed.map((a) => JSON.stringify(a)).join(' or ')}`))
      } else if (e.keyword === 'propertyNames') {
        const name = (e.params as {propertyName: string}).propertyName
        problems.push(at(`${e.instancePath}${jsonPointer([name])}`, `invalid name '${name}' (lower-case letters, digits, '.', '_', '-')`, true))
      } else if (e.keyword === 'pattern' && e.instancePath.includes('/roles/')) {
        problems.push(at(e.instancePath, 'invalid role name (lower-case letters, digits and "-", starting with a letter)'))
      } else {
        problems.push(at(e.instancePath, e.message ?? 'is invalid'))
      }
    }
    // Drop the duplicate "must match a schema in oneOf" noise and keep one message per place.
    throw invalid(file, dedupe(problems))
  }

  const doc = y.value as unknown as RawPolicy
  const policy = buildPolicy(doc, file, y, problems)
  if (problems.length > 0) throw invalid(file, problems)
  return policy
}

/**
 * The bundle module's strict YAML parser (duplicate keys, non-JSON values and tags are located
 * problems), with anchors and aliases refused: a trust policy is written out in full.
 */
function parseYaml(text: string, file: string): ParsedDocument {
  let doc: ParsedDocument
  try {
    doc = parseDocument(text, file, {format: 'yaml', aliases: false})
  } catch (err) {
    if (err instanceof ValidationError) throw invalid(file, err.problems)
    throw err
  }
  if (doc.problems.length > 0) throw invalid(file, doc.problems)
  return doc
}

/** Position of the value (or key) at `pointer`, else of its nearest ancestor that exists (ajv names missing members by their parent's path). */
function locate(doc: ParsedDocument, pointer: string, key: boolean): SourcePosition | undefined {
  for (let p = pointer; ; p = p.slice(0, p.lastIndexOf('/'))) {
    const hit = doc.locate(p, key && p === pointer)
    if (hit || p === '') return hit
  }
}

interface RawPolicy {
  apiVersion: string
  kind: string
  metadata?: {name?: string; description?: string}
  roles?: string[]
  keys: Record<string, {publicKey?: string; path?: string; roles: string[]; notBefore?: string; notAfter?: string; description?: string}>
  revoked?: Array<{key: string; reason: string; revokedAt?: string}>
  scopes: Array<{name: string; description?: string; match?: {registry?: string | string[]; repository?: string | string[]; tiers?: Tier[]}; require: Record<string, Record<string, number>>}>
}

function buildPolicy(doc: RawPolicy, file: string, y: ParsedDocument, problems: Problem[]): TrustPolicy {
  const at = (pointer: string, message: string, key = false) => problems.push({file, ...locate(y, pointer, key), pointer, message})
  const roles = [...BUILTIN_ROLES, ...(doc.roles ?? [])]
  for (const [i, r] of (doc.roles ?? []).entries()) {
    if ((BUILTIN_ROLES as readonly string[]).includes(r)) at(`/roles/${i}`, `'${r}' is a built-in role; do not declare it`)
  }
  const keys: TrustKey[] = []
  for (const [name, k] of Object.entries(doc.keys)) {
    const ptr = jsonPointer(['keys', name])
    if ((k.publicKey === undefined) === (k.path === undefined)) {
      at(ptr, "needs exactly one of 'publicKey' (inline PEM) or 'path' (file relative to the trust policy)", true)
      continue
    }
    for (const [i, r] of k.roles.entries()) {
      if (!roles.includes(r)) at(`${ptr}/roles/${i}`, `unknown role '${r}'; built-in roles: ${BUILTIN_ROLES.join(', ')}; declare others under 'roles:'`)
    }
    const notBefore = k.notBefore === undefined ? undefined : new Date(k.notBefore)
    const notAfter = k.notAfter === undefined ? undefined : new Date(k.notAfter)
    if (notBefore && notAfter && notBefore >= notAfter) at(`${ptr}/notAfter`, `notAfter (${k.notAfter}) must be after notBefore (${k.notBefore})`)
    let info
    try {
      if (k.publicKey !== undefined) {
        info = parsePublicKey(k.publicKey, `key '${name}'`)
      } else {
        const keyFile = path.resolve(path.dirname(path.resolve(file)), k.path!)
        info = parsePublicKey(readFileBounded(keyFile, `public key of '${name}'`, 64 * 1024), keyFile)
      }
    } catch (err) {
      at(`${ptr}/${k.publicKey !== undefined ? 'publicKey' : 'path'}`, err instanceof InputError || err instanceof NotFoundError ? err.message : errorMessage(err))
      continue
    }
    const dup = keys.find((o) => o.spki.equals(info.spki))
    if (dup) {
      at(ptr, `is the same public key as '${dup.name}' (${info.keyId}); a key may appear once, or distinct-key thresholds could be met by one key`, true)
      continue
    }
    keys.push({
      ...info,
      name,
      roles: k.roles,
      ...(notBefore ? {notBefore} : {}),
      ...(notAfter ? {notAfter} : {}),
      ...(k.description === undefined ? {} : {description: k.description}),
    })
  }

  for (const [i, r] of (doc.revoked ?? []).entries()) {
    const ptr = `/revoked/${i}`
    const matches = keys.filter((k) => k.name === r.key || k.keyId === r.key || k.hint === r.key || k.fingerprint === r.key)
    const looksLikeId = /^[0-9a-f]{16}$/.test(r.key) || r.key.startsWith('SHA256:') || /^[A-Za-z0-9+/]{43}=$/.test(r.key)
    if (matches.length === 0 && !looksLikeId) {
      at(`${ptr}/key`, `unknown key '${r.key}': name a key under 'keys:', or give a key id (16 hex), cosign hint or SSH fingerprint`)
      continue
    }
    for (const k of matches) {
      if (k.revoked) {
        at(`${ptr}/key`, `key '${k.name}' is already revoked above`)
        continue
      }
      k.revoked = {reason: r.reason, ...(r.revokedAt ? {revokedAt: new Date(r.revokedAt)} : {})}
    }
  }

  const scopes: TrustScope[] = []
  const seen = new Set<string>()
  for (const [i, s] of doc.scopes.entries()) {
    const ptr = `/scopes/${i}`
    if (seen.has(s.name)) at(`${ptr}/name`, `duplicate scope name '${s.name}'`)
    seen.add(s.name)
    const list = (v: string | string[] | undefined) => (v === undefined ? undefined : Array.isArray(v) ? v : [v])
    const scope: TrustScope = {
      name: s.name,
      ...(s.description === undefined ? {} : {description: s.description}),
      match: {
        ...(s.match?.registry === undefined ? {} : {registry: list(s.match.registry)}),
        ...(s.match?.repository === undefined ? {} : {repository: list(s.match.repository)}),
        ...(s.match?.tiers === undefined ? {} : {tiers: s.match.tiers}),
      },
      require: s.require,
    }
    for (const [kind, thresholds] of Object.entries(s.require)) {
      for (const role of Object.keys(thresholds)) {
        if (!roles.includes(role)) at(`${ptr}${jsonPointer(['require', kind, role])}`, `unknown role '${role}'; built-in roles: ${BUILTIN_ROLES.join(', ')}; declare others under 'roles:'`, true)
      }
      // Can the policy's non-revoked keys ever satisfy this requirement?
      const usable = keys.filter((k) => !k.revoked)
      const {assigned} = maxAssignment(thresholds, usable.map((k) => ({id: k.name, roles: k.roles})))
      const short = Object.entries(thresholds).filter(([role, n]) => (assigned.get(role)?.length ?? 0) < n)
      if (short.length > 0) {
        const needed = Object.values(thresholds).reduce((a, b) => a + b, 0)
        at(
          `${ptr}${jsonPointer(['require', kind])}`,
          `can never be satisfied: ${short.map(([role, n]) => `'${role}' needs ${n} distinct key(s), ${usable.filter((k) => k.roles.includes(role)).length} non-revoked key(s) hold it`).join('; ')}${needed > 1 ? ` (${needed} distinct keys in total, each counted once)` : ''}`,
          true,
        )
      }
    }
    scopes.push(scope)
  }
  return {file, keys, scopes, roles, ...(doc.metadata ? {metadata: doc.metadata} : {})}
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>()
  return problems.filter((p) => {
    const k = `${p.pointer}|${p.message}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

function invalid(file: string, problems: Problem[]): ValidationError {
  return new ValidationError('TRUST_POLICY_INVALID', `trust policy '${file}' is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'})`, problems, {
    suggestions: ['fix the listed fields; see README "Trust policy" for the format'],
  })
}

/** Every key of the policy, named, for the verifiers (expired and revoked ones included, so they can be named when refused). */
export function trustKeys(policy: TrustPolicy): TrustKey[] {
  return policy.keys
}

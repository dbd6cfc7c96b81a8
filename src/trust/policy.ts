/**
 * Trust policy loading (schemas/trust-policy.schema.json, README "Trust policy"): strict YAML,
 * schema, then semantic checks, every problem collected with file:line and JSON pointer and
 * thrown once as a ValidationError (exit 1).
 *
 * Semantic checks beyond the schema: each key has exactly one of publicKey/path and parses as a
 * supported public key; roles are built-in or declared; no public key appears under two names
 * (distinct-key thresholds would be fooled); notBefore < notAfter; revocations name a known key
 * (or a key identifier); scope names are unique; every threshold can be met by the policy's
 * non-revoked keys (a typo in a role must not silently lock everyone out). Keyless identities and
 * their trust material (`identities`, `keyless`) are checked in identities.ts: identities need
 * trust material and trust material needs identities, names are unique across keys and identities.
 */
import path from 'node:path'

import {pointer as jsonPointer} from '../bundle/json.js'
import {type ParsedDocument, parseDocument, type SourcePosition} from '../bundle/parse.js'
import {InputError, NotFoundError, type Problem, ValidationError, errorMessage} from '../errors.js'
import {parsePublicKey} from '../sign/keys.js'
import {readFileBounded} from '../sign/fs.js'
import type {VerificationKey} from '../sign/types.js'
import {type PolicyKeyless, type RawIdentity, type RawKeyless, type TrustIdentity, buildIdentities, buildKeyless, nameClashes} from './identities.js'
import {maxAssignment} from './match.js'
import {compileSchema} from './schema.js'

export const TRUST_POLICY_API_VERSION = 'aibox.dev/v1'
export const BUILTIN_ROLES = ['org-admin', 'security', 'team-lead', 'project-owner', 'author', 'approver', 'operator', 'tenant-admin'] as const
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

/** statement kind (`signatures`, `approvals`) → role → threshold of distinct keys. */
export type Requirements = Record<string, Record<string, number>>

/** The statement kinds a `require` block may name (schemas/trust-policy.schema.json `requirements`). */
export const REQUIREMENT_KINDS = ['signatures', 'approvals'] as const

export interface TrustScope {
  name: string
  description?: string
  match: {registry?: string[]; repository?: string[]; tiers?: Tier[]}
  require: Requirements
  /** What accepts an emergency change instead of `require` (README "Governance"); absent: no emergency path. */
  emergency?: Requirements
  /** Whether `aibox push` runs the submit gate for this scope; absent: by tier (org, team). */
  protected?: boolean
}

export interface TrustPolicy {
  file: string
  keys: TrustKey[]
  scopes: TrustScope[]
  roles: string[]
  metadata?: {name?: string; description?: string}
  /** The tenant the policy belongs to (README "Tenants"); absent: any. */
  tenant?: string
  /** Keyless signers (OIDC issuer + certificate subject), principals like keys (identities.ts). */
  identities?: TrustIdentity[]
  /** Trust material of the organisation's own Sigstore, for keyless signatures. */
  keyless?: PolicyKeyless
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
  tenant?: string
  roles?: string[]
  keys?: Record<string, {publicKey?: string; path?: string; roles: string[]; notBefore?: string; notAfter?: string; description?: string}>
  identities?: Record<string, RawIdentity>
  keyless?: RawKeyless
  revoked?: Array<{key: string; reason: string; revokedAt?: string}>
  scopes: Array<{
    name: string
    description?: string
    match?: {registry?: string | string[]; repository?: string | string[]; tiers?: Tier[]}
    require: Requirements
    emergency?: Requirements
    protected?: boolean
  }>
}

function buildPolicy(doc: RawPolicy, file: string, y: ParsedDocument, problems: Problem[]): TrustPolicy {
  const at = (pointer: string, message: string, key = false) => problems.push({file, ...locate(y, pointer, key), pointer, message})
  const roles = [...BUILTIN_ROLES, ...(doc.roles ?? [])]
  for (const [i, r] of (doc.roles ?? []).entries()) {
    if ((BUILTIN_ROLES as readonly string[]).includes(r)) at(`/roles/${i}`, `'${r}' is a built-in role; do not declare it`)
  }
  const keys: TrustKey[] = []
  if (doc.keys === undefined && doc.identities === undefined) at('', "needs 'keys', 'identities' (keyless signers), or both")
  for (const [name, k] of Object.entries(doc.keys ?? {})) {
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

  const identities = buildIdentities(doc.identities, roles, BUILTIN_ROLES, at)
  nameClashes(keys.map((k) => k.name), identities, at)
  const keyless = buildKeyless(doc.keyless, file, at)
  if (doc.identities !== undefined && doc.keyless === undefined) {
    at('/identities', "keyless identities need trust material: add 'keyless:' with your Fulcio CA (and Rekor key / TSA chain), or a trustedRoot", true)
  }
  if (doc.keyless !== undefined && doc.identities === undefined) at('/keyless', "is useless without 'identities:': name who may sign keyless", true)

  for (const [i, r] of (doc.revoked ?? []).entries()) {
    const ptr = `/revoked/${i}`
    const named = identities.filter((id) => id.name === r.key)
    if (named.length > 0) {
      for (const id of named) {
        if (id.revoked) at(`${ptr}/key`, `identity '${id.name}' is already revoked above`)
        else id.revoked = {reason: r.reason, ...(r.revokedAt ? {revokedAt: new Date(r.revokedAt)} : {})}
      }
      continue
    }
    const matches = keys.filter((k) => k.name === r.key || k.keyId === r.key || k.hint === r.key || k.fingerprint === r.key)
    const looksLikeId = /^[0-9a-f]{16}$/.test(r.key) || r.key.startsWith('SHA256:') || /^[A-Za-z0-9+/]{43}=$/.test(r.key)
    if (matches.length === 0 && !looksLikeId) {
      at(`${ptr}/key`, `unknown key '${r.key}': name a key under 'keys:' or an identity under 'identities:', or give a key id (16 hex), cosign hint or SSH fingerprint`)
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
      ...(s.emergency === undefined ? {} : {emergency: s.emergency}),
      ...(s.protected === undefined ? {} : {protected: s.protected}),
    }
    // Keyless identities are principals like keys: they fill roles and count once each (identities.ts).
    const usable = [...keys, ...identities].filter((k) => !k.revoked)
    for (const block of ['require', 'emergency'] as const) {
      const req = s[block]
      if (req === undefined) continue
      for (const [kind, thresholds] of Object.entries(req)) {
        for (const role of Object.keys(thresholds)) {
          if (!roles.includes(role)) at(`${ptr}${jsonPointer([block, kind, role])}`, `unknown role '${role}'; built-in roles: ${BUILTIN_ROLES.join(', ')}; declare others under 'roles:'`, true)
        }
        // Can the policy's non-revoked keys ever satisfy this requirement?
        const {assigned} = maxAssignment(thresholds, usable.map((k) => ({id: k.name, roles: k.roles})))
        const short = Object.entries(thresholds).filter(([role, n]) => (assigned.get(role)?.length ?? 0) < n)
        if (short.length > 0) {
          const needed = Object.values(thresholds).reduce((a, b) => a + b, 0)
          at(
            `${ptr}${jsonPointer([block, kind])}`,
            `can never be satisfied: ${short.map(([role, n]) => `'${role}' needs ${n} distinct key(s), ${usable.filter((k) => k.roles.includes(role)).length} non-revoked key(s) hold it`).join('; ')}${needed > 1 ? ` (${needed} distinct keys in total, each counted once)` : ''}`,
            true,
          )
        }
      }
      // Signers never approve the same digest (separation of duties), so all kinds together need distinct keys.
      const kinds = Object.keys(req)
      if (kinds.length > 1) {
        const combined = jointThresholds(req)
        const {assigned} = maxAssignment(combined, usable.map((k) => ({id: k.name, roles: kinds.flatMap((kind) => k.roles.map((r) => `${kind}:${r}`))})))
        const filled = [...assigned.values()].reduce((n, ids) => n + ids.length, 0)
        const needed = Object.values(combined).reduce((a, b) => a + b, 0)
        if (filled < needed && Object.entries(req).every(([, th]) => maxAssignment(th, usable.map((k) => ({id: k.name, roles: k.roles}))).total === Object.values(th).reduce((a, b) => a + b, 0))) {
          at(
            `${ptr}/${block}`,
            `can never be satisfied: ${kinds.join(' and ')} together need ${needed} distinct keys (a key that signs a digest never counts as its approver, and one key fills one role), but the non-revoked keys can fill only ${filled}`,
            true,
          )
        }
      }
    }
    scopes.push(scope)
  }
  return {
    file,
    keys,
    scopes,
    roles,
    ...(doc.metadata ? {metadata: doc.metadata} : {}),
    ...(doc.tenant !== undefined ? {tenant: doc.tenant} : {}),
    ...(identities.length > 0 ? {identities} : {}),
    ...(keyless ? {keyless} : {}),
  }
}

/** `{kind: {role: n}}` as one threshold table `{"kind:role": n}`, for assignments where a key fills one slot across kinds. */
export function jointThresholds(req: Requirements): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [kind, thresholds] of Object.entries(req)) for (const [role, n] of Object.entries(thresholds)) out[`${kind}:${role}`] = n
  return out
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

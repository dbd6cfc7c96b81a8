/**
 * Evaluating verified signatures against a trust policy: which scopes apply to the target,
 * which signing keys are acceptable now (validity window, revocation), and whether every
 * applicable scope's thresholds are met by DISTINCT keys (see match.ts). Pure: no I/O, the
 * clock is a parameter.
 */
import {VerificationError} from '../errors.js'
import {formatReference, parseReference} from '../oci/reference.js'
import {COSIGN_SIGN_PREDICATE_TYPE} from '../sign/statement.js'
import type {SignerInfo} from '../sign/types.js'
import {maxAssignment} from './match.js'
import type {Tier, TrustKey, TrustPolicy, TrustScope} from './policy.js'

/** formats.md "Signatures and approvals": the approval predicate (evaluated by govern later; counted here by kind). */
export const APPROVAL_PREDICATE_TYPE = 'https://aibox.dev/attestations/policy-approval/v1'

/**
 * The statement kind a verified signature counts as: `signatures` for plain signatures
 * (cosign's sign predicate, or formats with no statement: raw, message-signature, simple
 * signing), `approvals` for approval statements, and the predicate type itself otherwise (which
 * no `require` block names, so an SBOM or provenance attestation never counts as a signature;
 * cosign counts any bundle, see user-demand.md W1 #5).
 */
export function statementKind(predicateType: string | undefined): string {
  if (predicateType === undefined || predicateType === COSIGN_SIGN_PREDICATE_TYPE) return 'signatures'
  if (predicateType === APPROVAL_PREDICATE_TYPE) return 'approvals'
  return predicateType
}

export interface TrustTarget {
  registry?: string
  repository?: string
  tier?: Tier
  /** How to name the target in messages when there is no registry/repository (e.g. a file name). */
  display?: string
}

/** One verified signer, as evidence for the policy. */
export interface TrustEvidence {
  kind: string
  signer: SignerInfo
  /** The signature file or referrer it came from. */
  source: string
}

export interface RequirementResult {
  kind: string
  role: string
  threshold: number
  /** Names of the distinct keys counted for this role. */
  keys: string[]
  satisfied: boolean
}

export interface ScopeResult {
  scope: string
  satisfied: boolean
  requirements: RequirementResult[]
}

export interface RefusedKey {
  key: string
  keyId: string
  reason: 'expired' | 'not-yet-valid' | 'revoked' | 'unknown'
  message: string
  source: string
}

export interface TrustDecision {
  satisfied: boolean
  /** `registry/repository (tier t)` or the display name. */
  target: string
  scopes: ScopeResult[]
  /** Keys that counted, with their roles. */
  accepted: Array<{key: string; keyId: string; roles: string[]; kinds: string[]}>
  refused: RefusedKey[]
  /** One line per unmet requirement (the error message lines). */
  missing: string[]
}

/**
 * Whole-string glob match: `**` any characters, `*` any except '/', `?` one character except
 * '/'; everything else literal. Dynamic programming over (pattern token, string position), so
 * O(|glob|·|value|) whatever the glob: the RegExp this replaced backtracked exponentially on
 * globs like `**a**a**a…b` (a trust policy could hang every verification; testdata/hostile).
 */
export function globMatch(glob: string, value: string): boolean {
  const tokens: string[] = []
  for (let i = 0; i < glob.length; i++) {
    if (glob[i] === '*' && glob[i + 1] === '*') {
      if (tokens.at(-1) !== '**') tokens.push('**')
      i++
    } else tokens.push(glob[i]!)
  }
  // can[j]: the tokens seen so far match value[0, j).
  let can = new Array<boolean>(value.length + 1).fill(false)
  can[0] = true
  for (const t of tokens) {
    const next = new Array<boolean>(value.length + 1).fill(false)
    if (t === '**' || t === '*') {
      let reach = false
      for (let j = 0; j <= value.length; j++) {
        if (t === '*' && j > 0 && value[j - 1] === '/') reach = false
        reach ||= can[j]!
        next[j] = reach
      }
    } else {
      for (let j = 1; j <= value.length; j++) next[j] = can[j - 1]! && (t === '?' ? value[j - 1] !== '/' : value[j - 1] === t)
    }
    can = next
  }
  return can[value.length]!
}

function matchesAny(globs: string[] | undefined, value: string | undefined): boolean {
  if (globs === undefined) return true
  if (value === undefined) return false
  return globs.some((g) => globMatch(g, value))
}

export function scopeApplies(scope: TrustScope, target: TrustTarget): boolean {
  const m = scope.match
  if (!matchesAny(m.registry, target.registry)) return false
  if (!matchesAny(m.repository, target.repository)) return false
  if (m.tiers !== undefined && (target.tier === undefined || !m.tiers.includes(target.tier))) return false
  return true
}

export function describeTarget(target: TrustTarget): string {
  const name = target.registry !== undefined || target.repository !== undefined ? [target.registry, target.repository].filter(Boolean).join('/') : (target.display ?? 'the artifact')
  return target.tier ? `${name} (tier ${target.tier})` : name
}

/**
 * The registry and repository a trust scope matches, from a reference as `aibox pull` takes it
 * (src/oci/reference.ts: `host[:port]/repo[:tag][@digest]`, Docker Hub as `docker.io/…`).
 * A local layout (`oci:DIR`, `oci-archive:FILE`) has neither, so only scopes that do not match
 * on registry or repository apply to it. Throws INVALID_REFERENCE for a malformed reference.
 */
export function targetFromReference(ref: string, tier?: Tier): TrustTarget {
  const parsed = parseReference(ref)
  const where = parsed.kind === 'registry' ? {registry: parsed.registry, repository: parsed.repository} : {display: formatReference(parsed)}
  return {...where, ...(tier ? {tier} : {})}
}

/** Whether a trust key may count now, and if not why (with its name, for the message). */
export function keyStatus(key: TrustKey, now: Date): {ok: true} | {ok: false; reason: RefusedKey['reason']; message: string} {
  if (key.revoked && (key.revoked.revokedAt === undefined || key.revoked.revokedAt <= now)) {
    const when = key.revoked.revokedAt ? ` at ${key.revoked.revokedAt.toISOString()}` : ''
    return {ok: false, reason: 'revoked', message: `key '${key.name}' (${key.keyId}) was revoked${when}: ${key.revoked.reason}`}
  }
  if (key.notBefore && now < key.notBefore) {
    return {ok: false, reason: 'not-yet-valid', message: `key '${key.name}' (${key.keyId}) is not valid before ${key.notBefore.toISOString()}`}
  }
  if (key.notAfter && now > key.notAfter) {
    return {ok: false, reason: 'expired', message: `key '${key.name}' (${key.keyId}) expired at ${key.notAfter.toISOString()}`}
  }
  return {ok: true}
}

function plural(kind: string, n: number): string {
  return n === 1 ? kind.replace(/s$/, '') : kind
}

/** Evaluates evidence against the policy for a target at `now`. Never throws; see `assertTrusted`. */
export function evaluateTrust(policy: TrustPolicy, target: TrustTarget, evidence: TrustEvidence[], options: {now?: Date} = {}): TrustDecision {
  const now = options.now ?? new Date()
  const where = describeTarget(target)
  const refused: RefusedKey[] = []
  const byName = new Map<string, {key: TrustKey; kinds: Set<string>}>()
  for (const e of evidence) {
    const key = policy.keys.find((k) => k.keyId === e.signer.keyId)
    if (!key) {
      refused.push({key: e.signer.name ?? e.signer.keyId, keyId: e.signer.keyId, reason: 'unknown', message: `key ${e.signer.keyId} is not in the trust policy`, source: e.source})
      continue
    }
    const status = keyStatus(key, now)
    if (!status.ok) {
      if (!refused.some((r) => r.keyId === key.keyId)) refused.push({key: key.name, keyId: key.keyId, reason: status.reason, message: status.message, source: e.source})
      continue
    }
    const entry = byName.get(key.name) ?? {key, kinds: new Set<string>()}
    entry.kinds.add(e.kind)
    byName.set(key.name, entry)
  }

  const applicable = policy.scopes.filter((s) => scopeApplies(s, target))
  const missing: string[] = []
  if (applicable.length === 0) {
    missing.push(
      `no scope of the trust policy applies to ${where}; scopes: ${policy.scopes.map((s) => `'${s.name}' (${describeMatch(s)})`).join(', ')}`,
    )
  }
  const scopes: ScopeResult[] = applicable.map((scope) => {
    const requirements: RequirementResult[] = []
    for (const [kind, thresholds] of Object.entries(scope.require)) {
      const signed = [...byName.values()].filter((e) => e.kinds.has(kind))
      const {assigned} = maxAssignment(thresholds, signed.map((e) => ({id: e.key.name, roles: e.key.roles})))
      for (const [role, threshold] of Object.entries(thresholds)) {
        const keys = assigned.get(role) ?? []
        const ok = keys.length >= threshold
        requirements.push({kind, role, threshold, keys, satisfied: ok})
        if (!ok) {
          const got = keys.length === 0 ? 'got none' : `got ${keys.length}: ${keys.map((k) => `key '${k}'`).join(', ')}`
          const elsewhere = signed.filter((e) => e.key.roles.includes(role) && !keys.includes(e.key.name)).map((e) => `'${e.key.name}'`)
          const note = elsewhere.length ? ` (${elsewhere.join(', ')} also hold${elsewhere.length === 1 ? 's' : ''} '${role}' but ${elsewhere.length === 1 ? 'was' : 'were'} counted for another role: a key counts once)` : ''
          missing.push(`scope '${scope.name}': needs ${threshold} distinct '${role}' ${plural(kind, threshold)} for ${where}, ${got}${note}`)
        }
      }
    }
    return {scope: scope.name, satisfied: requirements.every((r) => r.satisfied), requirements}
  })
  return {
    satisfied: applicable.length > 0 && scopes.every((s) => s.satisfied),
    target: where,
    scopes,
    accepted: [...byName.values()].map((e) => ({key: e.key.name, keyId: e.key.keyId, roles: e.key.roles, kinds: [...e.kinds].sort()})),
    refused,
    missing,
  }
}

function describeMatch(s: TrustScope): string {
  const parts = [
    s.match.registry ? `registry ${s.match.registry.join('|')}` : undefined,
    s.match.repository ? `repository ${s.match.repository.join('|')}` : undefined,
    s.match.tiers ? `tiers ${s.match.tiers.join('|')}` : undefined,
  ].filter(Boolean)
  return parts.length ? parts.join(', ') : 'everything'
}

/** Throws TRUST_NOT_SATISFIED (exit 2) naming every missing requirement and refused key, unless the decision is satisfied. */
export function assertTrusted(decision: TrustDecision, policyFile: string, rejected: Array<{source: string; message: string}> = []): void {
  if (decision.satisfied) return
  const lines = [
    ...decision.missing,
    ...decision.refused.map((r) => `refused: ${r.message} (${r.source})`),
    ...rejected.map((r) => `rejected: ${r.message}`),
  ]
  const noScope = decision.scopes.length === 0
  throw new VerificationError(noScope ? 'TRUST_NO_SCOPE' : 'TRUST_NOT_SATISFIED', lines.join('\n'), {
    suggestions: noScope
      ? ['pass the reference the file is published under (--ref) and its tier (--tier), or add a scope to the trust policy']
      : [`collect the missing signatures from keys holding the named roles in '${policyFile}'`],
    details: {decision, rejected},
  })
}

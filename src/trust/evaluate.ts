/**
 * Evaluating verified signatures and approvals against a trust policy: which scopes apply to the
 * target, which keys are acceptable now (validity window, revocation), and whether every
 * applicable scope's thresholds are met by DISTINCT keys (see match.ts), with separation of duties
 * (README "Governance"): an approval counts only for the role it claims, only when its key holds
 * that role and did not sign the same digest, and one key fills one role per digest. An emergency
 * change (marked in the signed manifest) may satisfy a scope through its `emergency` block instead.
 * Pure: no I/O, the clock is a parameter.
 */
import {GovernanceError, VerificationError} from '../errors.js'
import {formatReference, parseReference} from '../oci/reference.js'
import {COSIGN_SIGN_PREDICATE_TYPE} from '../sign/statement.js'
import type {SignerInfo} from '../sign/types.js'
import {explainNoIdentity, findIdentity, type TrustIdentity} from './identities.js'
import {maxAssignment} from './match.js'
import {type Requirements, type Tier, type TrustKey, type TrustPolicy, type TrustScope, jointThresholds} from './policy.js'

/** Who can count toward a threshold: a key, or a keyless identity (identities.ts). */
export type TrustPrincipal = TrustKey | TrustIdentity

function isIdentity(p: TrustPrincipal): p is TrustIdentity {
  return 'subject' in p && 'issuer' in p
}

/** `key 'alice' (ab12…)` or `identity 'release-ci'`, for messages. */
export function principalLabel(p: TrustPrincipal): string {
  return isIdentity(p) ? `identity '${p.name}'` : `key '${p.name}' (${p.keyId})`
}

/**
 * The policy principal a verified signer is: the key with its key id, or for a keyless signer
 * (certified issuer + subject) the first identity it matches. Undefined with the reason otherwise.
 */
export function resolveSigner(policy: TrustPolicy, signer: SignerInfo): {principal: TrustPrincipal} | {principal?: undefined; message: string} {
  if (signer.identity) {
    const id = findIdentity(policy.identities ?? [], signer.identity)
    return id ? {principal: id} : {message: explainNoIdentity(policy.identities ?? [], signer.identity)}
  }
  const key = policy.keys.find((k) => k.keyId === signer.keyId)
  return key ? {principal: key} : {message: `key ${signer.keyId} is not in the trust policy`}
}

/** formats.md "Signatures and approvals": the approval predicate (counted by the role it claims, see evaluateTrust). */
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
  /**
   * The incident reference of an emergency change, as the SIGNED manifest states it
   * (`dev.aibox.policy.emergency`); scopes with an `emergency` block may then accept it with those
   * thresholds instead of `require`.
   */
  emergency?: string
}

/** One verified signer, as evidence for the policy. */
export interface TrustEvidence {
  kind: string
  signer: SignerInfo
  /** The signature file or referrer it came from. */
  source: string
  /** For approvals: the role the signed approval claims (absent when the predicate names none). */
  role?: string
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
  /** The normal requirements (`require`). */
  requirements: RequirementResult[]
  /** How the scope was satisfied: its `require`, or its `emergency` block for an emergency change. */
  via?: 'require' | 'emergency'
  /** The emergency requirements, evaluated only for an emergency change when the scope has an `emergency` block. */
  emergency?: {satisfied: boolean; requirements: RequirementResult[]}
}

export interface RefusedKey {
  key: string
  keyId: string
  reason: 'expired' | 'not-yet-valid' | 'revoked' | 'unknown'
  message: string
  source: string
}

/** Why an approval may not count (separation of duties, roles, key validity). */
export type ApprovalRefusal = RefusedKey['reason'] | 'self-approval' | 'role-not-held' | 'no-role' | 'duplicate'

/** Every approval seen, and whether it may count (README "Governance"). */
export interface ApprovalOutcome {
  /** The trust policy's key or identity name (or the key id / certificate subject of an unknown signer). */
  key: string
  /** The key id, or `identity:<name>` for a keyless identity. */
  keyId: string
  /** The role the approval claims. */
  role: string
  source: string
  /** True when it may count for a requirement: a valid key that holds the role and did not sign the digest. */
  eligible: boolean
  reason?: ApprovalRefusal
  message?: string
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
  /** Every approval, with whether it may count and why not. */
  approvals: ApprovalOutcome[]
  /**
   * For an emergency change: its incident, the scopes accepted through their emergency path, and
   * whether the normal requirements (the retroactive approvals) are still unmet.
   */
  emergency?: {incident: string; scopes: string[]; pendingApproval: boolean}
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

/**
 * Why `key` of `policy` may not act in `role` at `now` (KEY_NOT_VALID: revoked, expired or not yet
 * valid; ROLE_NOT_HELD), or undefined when it may: the one check behind approvals, profile-change
 * approvals and tenant-admin proofs, each wording its own consequence.
 */
export function roleRefusal(policy: {file: string}, key: TrustKey, role: string, now: Date): {code: 'KEY_NOT_VALID' | 'ROLE_NOT_HELD'; message: string} | undefined {
  const status = keyStatus(key, now)
  if (!status.ok) return {code: 'KEY_NOT_VALID', message: status.message}
  if (!key.roles.includes(role)) return {code: 'ROLE_NOT_HELD', message: `key '${key.name}' (${key.keyId}) does not hold the role '${role}' in '${policy.file}' (its roles: ${key.roles.join(', ')})`}
  return undefined
}

/** Whether a trust key (or identity) may count now, and if not why (with its name, for the message). */
export function keyStatus(key: TrustPrincipal, now: Date): {ok: true} | {ok: false; reason: RefusedKey['reason']; message: string} {
  const label = principalLabel(key)
  if (key.revoked && (key.revoked.revokedAt === undefined || key.revoked.revokedAt <= now)) {
    const when = key.revoked.revokedAt ? ` at ${key.revoked.revokedAt.toISOString()}` : ''
    return {ok: false, reason: 'revoked', message: `${label} was revoked${when}: ${key.revoked.reason}`}
  }
  if (key.notBefore && now < key.notBefore) {
    return {ok: false, reason: 'not-yet-valid', message: `${label} is not valid before ${key.notBefore.toISOString()}`}
  }
  if (key.notAfter && now > key.notAfter) {
    return {ok: false, reason: 'expired', message: `${label} expired at ${key.notAfter.toISOString()}`}
  }
  return {ok: true}
}

function plural(kind: string, n: number): string {
  return n === 1 ? kind.replace(/s$/, '') : kind
}

/** The distinct-key assignment of one requirement block (all kinds at once: one key fills one role per digest). */
function assign(
  req: Requirements,
  candidates: Map<string, {kinds: Map<string, Set<string>>}>,
  kindLabel: (kind: string, n: number) => string,
  where: string,
  label: string,
  who: (name: string) => string,
): {requirements: RequirementResult[]; missing: string[]} {
  const cands = [...candidates.entries()].map(([id, c]) => ({id, roles: [...c.kinds.entries()].flatMap(([kind, roles]) => [...roles].map((r) => `${kind}:${r}`))}))
  const {assigned} = maxAssignment(jointThresholds(req), cands)
  const requirements: RequirementResult[] = []
  const missing: string[] = []
  for (const [kind, thresholds] of Object.entries(req)) {
    for (const [role, threshold] of Object.entries(thresholds)) {
      const keys = assigned.get(`${kind}:${role}`) ?? []
      const ok = keys.length >= threshold
      requirements.push({kind, role, threshold, keys, satisfied: ok})
      if (!ok) {
        const got = keys.length === 0 ? 'got none' : `got ${keys.length}: ${keys.map(who).join(', ')}`
        const elsewhere = [...candidates.entries()].filter(([id, c]) => c.kinds.get(kind)?.has(role) && !keys.includes(id)).map(([id]) => `'${id}'`)
        const note = elsewhere.length ? ` (${elsewhere.join(', ')} also hold${elsewhere.length === 1 ? 's' : ''} '${role}' but ${elsewhere.length === 1 ? 'was' : 'were'} counted for another role: a key counts once)` : ''
        missing.push(`${label}: needs ${threshold} distinct '${role}' ${kindLabel(kind, threshold)} for ${where}, ${got}${note}`)
      }
    }
  }
  return {requirements, missing}
}

function approvalRefusal(reason: ApprovalRefusal, key: TrustPrincipal | undefined, e: TrustEvidence, signedBy: string): string {
  const who = key ? principalLabel(key) : `key ${e.signer.keyId}`
  switch (reason) {
    case 'self-approval':
      return `${who} signed this digest (its author) and cannot also approve it: separation of duties (approval ${e.source})`
    case 'role-not-held':
      return `${who} approved as '${e.role}', a role the trust policy does not give it (its roles: ${key!.roles.join(', ')}) (approval ${e.source})`
    case 'no-role':
      return `${who}: the approval names no role (approval ${e.source})`
    case 'duplicate':
      return `${who} already approved this digest as '${signedBy}': one key or identity fills one role per digest (approval ${e.source})`
    default:
      return `${who}: ${reason}`
  }
}

/** Evaluates evidence against the policy for a target at `now`. Never throws; see `assertTrusted`. */
export function evaluateTrust(policy: TrustPolicy, target: TrustTarget, evidence: TrustEvidence[], options: {now?: Date} = {}): TrustDecision {
  const now = options.now ?? new Date()
  const where = describeTarget(target)
  const refused: RefusedKey[] = []
  const byName = new Map<string, {key: TrustPrincipal; kinds: Set<string>}>()
  const approvals: ApprovalOutcome[] = []
  // Each evidence's policy principal: a key by its key id, a keyless signer by the identity its certificate matches.
  const resolved = evidence.map((e) => resolveSigner(policy, e.signer))
  // The authors of the digest: every principal (or unknown key) whose plain signature verified, valid in the policy or not.
  // A keyless identity is one author however many ephemeral keys its certificates carried.
  const authors = new Set(evidence.flatMap((e, i) => (e.kind === 'signatures' ? [resolved[i].principal?.keyId ?? e.signer.keyId] : [])))
  // Candidates per principal name: statement kind → roles it may fill (signers by their roles, approvers by the role they claim).
  const candidates = new Map<string, {kinds: Map<string, Set<string>>}>()
  const approvedAs = new Map<string, string>()
  for (const [i, e] of evidence.entries()) {
    const r = resolved[i]
    const key = r.principal
    const unknown = r.principal ? '' : r.message
    const status = key ? keyStatus(key, now) : undefined
    if (e.kind === 'approvals') {
      const role = e.role ?? ''
      const out: ApprovalOutcome = {key: key?.name ?? e.signer.identity?.subject ?? e.signer.name ?? e.signer.keyId, keyId: key?.keyId ?? e.signer.keyId, role, source: e.source, eligible: false}
      let reason: ApprovalRefusal | undefined
      if (!key) reason = 'unknown'
      else if (!status!.ok) reason = status!.reason
      else if (authors.has(key.keyId)) reason = 'self-approval'
      else if (role === '') reason = 'no-role'
      else if (!key.roles.includes(role)) reason = 'role-not-held'
      else if (approvedAs.has(key.keyId) && approvedAs.get(key.keyId) !== role) reason = 'duplicate'
      if (reason) {
        out.reason = reason
        out.message = !key ? `${unknown} (approval ${e.source})` : !status!.ok ? status!.message : approvalRefusal(reason, key, e, approvedAs.get(key.keyId) ?? '')
      } else {
        out.eligible = true
        approvedAs.set(key!.keyId, role)
        const c = candidates.get(key!.name) ?? {kinds: new Map()}
        c.kinds.set('approvals', new Set([role]))
        candidates.set(key!.name, c)
      }
      approvals.push(out)
    }
    if (!key) {
      if (!refused.some((x) => x.keyId === e.signer.keyId)) refused.push({key: e.signer.identity?.subject ?? e.signer.name ?? e.signer.keyId, keyId: e.signer.keyId, reason: 'unknown', message: unknown, source: e.source})
      continue
    }
    if (!status!.ok) {
      if (!refused.some((x) => x.keyId === key.keyId)) refused.push({key: key.name, keyId: key.keyId, reason: status!.reason, message: status!.message, source: e.source})
      continue
    }
    const entry = byName.get(key.name) ?? {key, kinds: new Set<string>()}
    entry.kinds.add(e.kind)
    byName.set(key.name, entry)
    if (e.kind !== 'approvals') {
      const c = candidates.get(key.name) ?? {kinds: new Map()}
      c.kinds.set(e.kind, new Set(key.roles))
      candidates.set(key.name, c)
    }
  }

  const applicable = policy.scopes.filter((s) => scopeApplies(s, target))
  const missing: string[] = []
  if (applicable.length === 0) {
    missing.push(
      `no scope of the trust policy applies to ${where}; scopes: ${policy.scopes.map((s) => `'${s.name}' (${describeMatch(s)})`).join(', ')}`,
    )
  }
  const emergencyScopes: string[] = []
  const who = (name: string) => {
    const p = byName.get(name)?.key
    return p && isIdentity(p) ? `identity '${name}'` : `key '${name}'`
  }
  const scopes: ScopeResult[] = applicable.map((scope) => {
    const normal = assign(scope.require, candidates, plural, where, `scope '${scope.name}'`, who)
    const result: ScopeResult = {scope: scope.name, satisfied: normal.missing.length === 0, requirements: normal.requirements}
    if (result.satisfied) {
      result.via = 'require'
      return result
    }
    if (target.emergency !== undefined && scope.emergency) {
      const em = assign(scope.emergency, candidates, plural, where, `scope '${scope.name}' (emergency path, incident ${target.emergency})`, who)
      result.emergency = {satisfied: em.missing.length === 0, requirements: em.requirements}
      if (result.emergency.satisfied) {
        result.satisfied = true
        result.via = 'emergency'
        emergencyScopes.push(scope.name)
        return result
      }
      missing.push(...normal.missing, ...em.missing)
      return result
    }
    missing.push(...normal.missing)
    if (target.emergency !== undefined) missing.push(`scope '${scope.name}' has no emergency path: the emergency change (incident ${target.emergency}) needs its normal requirements`)
    return result
  })
  // Name the approvals that did not count, under the requirement they could not fill.
  if (missing.length > 0) for (const a of approvals) if (!a.eligible && a.message && a.reason !== 'unknown') missing.push(`approval not counted: ${a.message}`)
  const satisfied = applicable.length > 0 && scopes.every((s) => s.satisfied)
  return {
    satisfied,
    target: where,
    scopes,
    accepted: [...byName.values()].map((e) => ({key: e.key.name, keyId: e.key.keyId, roles: e.key.roles, kinds: [...e.kinds].sort()})),
    refused,
    missing,
    approvals,
    ...(target.emergency === undefined ? {} : {emergency: {incident: target.emergency, scopes: emergencyScopes, pendingApproval: emergencyScopes.length > 0}}),
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

/**
 * True when a decision fails only for want of approvals: every applicable scope's signatures are
 * met, so the refusal is governance (quorum, separation of duties; exit 5), not a bad signature (exit 2).
 */
export function onlyApprovalsMissing(decision: TrustDecision): boolean {
  if (decision.satisfied || decision.scopes.length === 0) return false
  return decision.scopes.every((s) => s.satisfied || s.requirements.every((r) => r.satisfied || r.kind === 'approvals'))
}

/**
 * Throws unless the decision is satisfied, naming every missing requirement and refused key:
 * APPROVALS_NOT_SATISFIED (GovernanceError, exit 5) when only approvals are missing, else
 * TRUST_NOT_SATISFIED / TRUST_NO_SCOPE (VerificationError, exit 2).
 */
export function assertTrusted(decision: TrustDecision, policyFile: string, rejected: Array<{source: string; message: string}> = []): void {
  if (decision.satisfied) return
  const lines = [
    ...decision.missing,
    ...decision.refused.map((r) => `refused: ${r.message} (${r.source})`),
    ...rejected.map((r) => `rejected: ${r.message}`),
  ]
  if (onlyApprovalsMissing(decision)) {
    throw new GovernanceError('APPROVALS_NOT_SATISFIED', lines.join('\n'), {
      suggestions: [
        `collect approvals of this exact digest from keys holding the named roles in '${policyFile}' (aibox approve REF --key KEY --role ROLE --note …)`,
        'the key that signed (pushed) a digest cannot approve it, and an approval counts only for a role its key holds',
      ],
      details: {decision, rejected},
    })
  }
  const noScope = decision.scopes.length === 0
  throw new VerificationError(noScope ? 'TRUST_NO_SCOPE' : 'TRUST_NOT_SATISFIED', lines.join('\n'), {
    suggestions: noScope
      ? ['pass the reference the file is published under (--ref) and its tier (--tier), or add a scope to the trust policy']
      : [`collect the missing signatures from keys holding the named roles in '${policyFile}'`],
    details: {decision, rejected},
  })
}

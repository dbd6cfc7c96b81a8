/**
 * Keyless identities in the trust policy (README "Keyless signing (your own Sigstore)"): who may
 * sign without a long-lived key, named by the OIDC issuer and the certificate subject (SAN) that
 * the organisation's Fulcio binds into a short-lived certificate, with roles like keys have.
 *
 * An identity is a principal, like a key: however many certificates it gets, it counts once per
 * statement kind. A certificate counts for the FIRST identity it matches, in file order (so one
 * signature never fills two principals' slots). Regular expressions must match the whole value.
 *
 * Loading (called by policy.ts) collects located problems; matching and explaining are pure.
 */
import path from 'node:path'

import type {Problem} from '../errors.js'
import {DEFAULT_KEYLESS_THRESHOLDS, type KeylessThresholds, type KeylessTrust, type KeylessTrustSources, loadKeylessTrust, resolveTrustSources} from '../sign/keyless-trust.js'
import type {SignerInfo} from '../sign/types.js'

/** How one certificate field is matched: exactly, or by a whole-value regular expression. */
export type ValueMatcher = {exact: string} | {pattern: string; re: RegExp}

export interface TrustIdentity {
  name: string
  /** `identity:<name>`: stands where a key id would be in results (an identity has no key). */
  keyId: string
  roles: string[]
  issuer: ValueMatcher
  subject: ValueMatcher
  notBefore?: Date
  notAfter?: Date
  description?: string
  revoked?: {reason: string; revokedAt?: Date}
}

/** The trust policy's `keyless`: loaded material plus where it came from (absolute paths). */
export type PolicyKeyless = KeylessTrust & {sources: KeylessTrustSources}

export interface RawIdentity {
  issuer?: string
  issuerRegExp?: string
  subject?: string
  subjectRegExp?: string
  roles: string[]
  notBefore?: string
  notAfter?: string
  description?: string
}

export interface RawKeyless {
  trustedRoot?: string
  fulcio?: string | string[]
  rekor?: string | string[]
  tsa?: string | string[]
  ctlog?: string | string[]
  tlog?: number
  timestamps?: number
  sct?: number
}

type At = (pointer: string, message: string, key?: boolean) => void

export function identityKeyId(name: string): string {
  return `identity:${name}`
}

function matcher(exact: string | undefined, pattern: string | undefined, ptr: string, field: 'issuer' | 'subject', at: At): ValueMatcher | undefined {
  if ((exact === undefined) === (pattern === undefined)) {
    at(ptr, `needs exactly one of '${field}' (exact) or '${field}RegExp' (a regular expression the whole ${field} must match)`, true)
    return undefined
  }
  if (exact !== undefined) return {exact}
  try {
    // Anchored: a pattern that matched a substring would trust far more identities than it reads.
    return {pattern: pattern!, re: new RegExp(`^(?:${pattern})$`)}
  } catch (err) {
    at(`${ptr}/${field}RegExp`, `is not a valid regular expression: ${(err as Error).message}`)
    return undefined
  }
}

/** Builds the identities of a trust policy; every problem is reported through `at`. */
export function buildIdentities(raw: Record<string, RawIdentity> | undefined, roles: string[], builtinRoles: readonly string[], at: At): TrustIdentity[] {
  const out: TrustIdentity[] = []
  for (const [name, id] of Object.entries(raw ?? {})) {
    const ptr = `/identities/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`
    for (const [i, r] of id.roles.entries()) {
      if (!roles.includes(r)) at(`${ptr}/roles/${i}`, `unknown role '${r}'; built-in roles: ${builtinRoles.join(', ')}; declare others under 'roles:'`)
    }
    const notBefore = id.notBefore === undefined ? undefined : new Date(id.notBefore)
    const notAfter = id.notAfter === undefined ? undefined : new Date(id.notAfter)
    if (notBefore && notAfter && notBefore >= notAfter) at(`${ptr}/notAfter`, `notAfter (${id.notAfter}) must be after notBefore (${id.notBefore})`)
    const issuer = matcher(id.issuer, id.issuerRegExp, ptr, 'issuer', at)
    const subject = matcher(id.subject, id.subjectRegExp, ptr, 'subject', at)
    if (!issuer || !subject) continue
    const dup = out.find((o) => sameMatcher(o.issuer, issuer) && sameMatcher(o.subject, subject))
    if (dup) {
      at(ptr, `names the same issuer and subject as identity '${dup.name}'; an identity may appear once, or distinct-signer thresholds could be met by one signer`, true)
      continue
    }
    out.push({
      name,
      keyId: identityKeyId(name),
      roles: id.roles,
      issuer,
      subject,
      ...(notBefore ? {notBefore} : {}),
      ...(notAfter ? {notAfter} : {}),
      ...(id.description === undefined ? {} : {description: id.description}),
    })
  }
  return out
}

function sameMatcher(a: ValueMatcher, b: ValueMatcher): boolean {
  return 'exact' in a ? 'exact' in b && a.exact === b.exact : 'pattern' in b && a.pattern === b.pattern
}

function list(v: string | string[] | undefined): string[] | undefined {
  return v === undefined ? undefined : Array.isArray(v) ? v : [v]
}

/**
 * Loads `keyless` trust material (paths relative to the policy file) and checks that every
 * threshold can be met by it; problems are located at `/keyless/<field>[/<index>]`.
 */
export function buildKeyless(raw: RawKeyless | undefined, file: string, at: At): PolicyKeyless | undefined {
  if (raw === undefined) return undefined
  const sources = resolveTrustSources(
    {
      ...(raw.trustedRoot === undefined ? {} : {trustedRoot: raw.trustedRoot}),
      ...(raw.fulcio === undefined ? {} : {fulcio: list(raw.fulcio)}),
      ...(raw.rekor === undefined ? {} : {rekor: list(raw.rekor)}),
      ...(raw.tsa === undefined ? {} : {tsa: list(raw.tsa)}),
      ...(raw.ctlog === undefined ? {} : {ctlog: list(raw.ctlog)}),
    },
    path.dirname(path.resolve(file)),
  )
  const thresholds: KeylessThresholds = {
    tlog: raw.tlog ?? DEFAULT_KEYLESS_THRESHOLDS.tlog,
    timestamps: raw.timestamps ?? DEFAULT_KEYLESS_THRESHOLDS.timestamps,
    sct: raw.sct ?? DEFAULT_KEYLESS_THRESHOLDS.sct,
  }
  const {trust, problems} = loadKeylessTrust(sources, thresholds)
  for (const p of problems) {
    const many = Array.isArray(raw[p.field])
    at(`/keyless/${p.field}${p.index !== undefined && many ? `/${p.index}` : ''}`, p.message)
  }
  if (!trust) return undefined
  const c = trust.counts
  if (c.certificateAuthorities === 0) at('/keyless', "has no certificate authority: add your Fulcio CA certificates (fulcio: FILE.pem) or a trustedRoot with certificateAuthorities", true)
  const never = (field: 'tlog' | 'timestamps' | 'sct', have: number, what: string, where: string) => {
    if (thresholds[field] > 0 && have === 0) at(`/keyless/${field}`, `requires ${thresholds[field]} but the trust material has no ${what} (${where}): no keyless signature could ever be accepted`)
  }
  never('tlog', c.tlogs, 'Rekor key', "keyless.rekor or the trusted root's tlogs; set tlog: 0 if your Sigstore has no transparency log")
  never('timestamps', c.timestampAuthorities, 'timestamp authority', "keyless.tsa or the trusted root's timestampAuthorities")
  never('sct', c.ctlogs, 'CT log key', "keyless.ctlog or the trusted root's ctlogs")
  if (c.tlogs === 0 && c.timestampAuthorities === 0) {
    at('/keyless', 'has neither a Rekor key nor a timestamp authority: a short-lived Fulcio certificate can only be checked at a verified signing time', true)
  }
  return {...trust, sources}
}

function matches(m: ValueMatcher, value: string): boolean {
  return 'exact' in m ? m.exact === value : m.re.test(value)
}

function describeMatcher(m: ValueMatcher): string {
  return 'exact' in m ? `'${m.exact}'` : `matching /${m.pattern}/`
}

/** The first identity (file order) a certificate identity matches. */
export function findIdentity(identities: TrustIdentity[], cert: {issuer: string; subject: string}): TrustIdentity | undefined {
  return identities.find((i) => matches(i.issuer, cert.issuer) && matches(i.subject, cert.subject))
}

/** Why a certificate identity matches none of the identities: one clause per identity, naming the field that differs. */
export function explainNoIdentity(identities: TrustIdentity[], cert: {issuer: string; subject: string}): string {
  const head = `certificate identity '${cert.subject}' (issuer '${cert.issuer}')`
  if (identities.length === 0) return `${head}: the trust policy has no identities`
  const why = identities.map((i) => {
    const bad: string[] = []
    if (!matches(i.issuer, cert.issuer)) bad.push(`wrong issuer: wants ${describeMatcher(i.issuer)}`)
    if (!matches(i.subject, cert.subject)) bad.push(`wrong subject: wants ${describeMatcher(i.subject)}`)
    return `identity '${i.name}' (${bad.join('; ')})`
  })
  return `${head} is not a trusted identity: ${why.join(', ')}`
}

/** For results: who a signer is to the trust policy. */
export function describeSigner(signer: SignerInfo): string {
  return signer.identity ? `'${signer.identity.subject}' (issuer '${signer.identity.issuer}')` : signer.name === undefined ? signer.keyId : `'${signer.name}' (${signer.keyId})`
}

/** Problems for identities whose names clash with keys (principal names must be unique). */
export function nameClashes(keyNames: string[], identities: TrustIdentity[], at: At): void {
  for (const i of identities) {
    if (keyNames.includes(i.name)) at(`/identities/${i.name}`, `'${i.name}' is also the name of a key; keys and identities share one namespace`, true)
  }
}

export type {Problem}

/**
 * Filling the cache with a verified policy, and the anti-rollback rule (seed 002: "Rollbacks
 * require incident reference and produce policy.rollback audit events").
 *
 * `fillCache` copies, from the source the policy was verified on, only what verified: the policy
 * manifest with its blobs, and the signature and approval referrers that verified (plus cosign's
 * legacy `.sig` manifest when a legacy signature verified). Referrers that did not verify are
 * left behind, so the cache never holds unverified bytes. `recordVerified` then records the
 * entry in state.json under the cache lock, refusing a rollback without a signed incident approval.
 */
import fs from 'node:fs'

import {compareSemver, parseSemver} from '../distribute/inspect.js'
import {legacySignatureTag} from '../distribute/referrers.js'
import type {VerifiedPolicy} from '../distribute/verify.js'
import {VerificationError} from '../errors.js'
import {copy, copyGraph} from '../oci/copy.js'
import {LayoutDirStore} from '../oci/stores/layout-dir.js'
import {type Descriptor, type ReadOnlyTarget, isGraphTarget} from '../oci/target.js'
import {keyStatus, resolveSigner} from '../trust/evaluate.js'
import type {TrustPolicy} from '../trust/policy.js'
import type {PolicyCache} from './cache.js'
import type {CacheEntry, CacheOrigin, CacheTier, TrustStamp} from './state.js'

/** A signed approval with an incident reference that allows going back to an older version. */
export interface RollbackApproval {
  /** The version (or `version (content digest)`) being replaced. */
  from: string
  incident: string
  /** Referrer digests of the approvals that carry the incident. */
  approvals: string[]
  /** Key ids of their signers. */
  signers: string[]
}

export type VersionChange = {kind: 'new' | 'same' | 'upgrade'} | {kind: 'rollback'; approval: RollbackApproval}

/**
 * Compares a verified policy with the cached entry for the same reference (anti-rollback):
 * - no entry, or the same content: fine;
 * - a higher version (semver precedence): an upgrade;
 * - a lower version, or the same version with other content (a republished version): refused with
 *   VerificationError POLICY_ROLLBACK (exit 2), unless an approval over this exact manifest digest,
 *   signed by a trusted key (valid now, under a trust policy), carries an `incident` reference.
 */
export function checkVersionChange(previous: CacheEntry | undefined, verified: VerifiedPolicy, options: {trust?: TrustPolicy; now?: Date; reference?: string} = {}): VersionChange {
  if (!previous) return {kind: 'new'}
  if (previous.contentDigest === verified.contentDigest) return {kind: 'same'}
  const prev = parseSemver(previous.version)
  const next = parseSemver(verified.version)
  const order = prev && next ? compareSemver(next, prev) : undefined
  if (order !== undefined && order > 0) return {kind: 'upgrade'}
  const now = options.now ?? new Date()
  const incident = verified.approvals.filter((a) => {
    if (typeof a.incident !== 'string' || a.incident.trim() === '') return false
    if (!options.trust) return true
    // A key, or a keyless identity whose certificate was verified with the policy's Sigstore material.
    const principal = resolveSigner(options.trust, a.signer).principal
    return principal !== undefined && keyStatus(principal, now).ok
  })
  const where = options.reference ?? previous.reference
  const sameVersion = order === 0 || previous.version === verified.version
  const from = sameVersion ? `${previous.version} (${previous.contentDigest})` : previous.version
  if (incident.length > 0) {
    return {
      kind: 'rollback',
      approval: {from, incident: incident[0]!.incident!, approvals: incident.map((a) => a.referrer), signers: [...new Set(incident.map((a) => a.signer.keyId))]},
    }
  }
  const what = sameVersion
    ? `${verified.name} ${verified.version} (${verified.manifest.digest}) has the same version as the cached ${previous.version} but other content (${verified.contentDigest}, cached ${previous.contentDigest}): a published version never changes`
    : order === undefined
      ? `${verified.name} version ${JSON.stringify(verified.version)} cannot be ordered against the cached ${JSON.stringify(previous.version)}`
      : `${verified.name} ${verified.version} (${verified.manifest.digest}) is older than the cached ${previous.version} (${previous.digest})`
  throw new VerificationError('POLICY_ROLLBACK', `rollback refused for ${where}: ${what}`, {
    suggestions: [
      'if the registry was rolled back on purpose, attach a signed rollback approval with the incident: aibox approve REF@DIGEST --key KEY --role security --note "…" --incident INC-…',
      'otherwise someone may be replaying an old policy: keep the cached version and investigate',
    ],
    details: {reference: where, cached: {version: previous.version, digest: previous.digest, contentDigest: previous.contentDigest}, offered: {version: verified.version, digest: verified.manifest.digest, contentDigest: verified.contentDigest}},
  })
}

/** Opens (creating) the cache's OCI layout. */
export async function cacheLayout(cache: PolicyCache): Promise<LayoutDirStore> {
  cache.ensureDir()
  return LayoutDirStore.open(cache.layoutDir, {create: true})
}

/**
 * Copies into the cache layout what verified on `source`: the policy manifest graph, then each
 * verified signature, approval or attestation referrer (with their own blobs), then cosign's
 * legacy `.sig` manifest when a legacy signature verified. Skips what the cache already has.
 */
export async function fillCache(cache: PolicyCache, source: ReadOnlyTarget, verified: VerifiedPolicy, options: {signal?: AbortSignal} = {}): Promise<void> {
  const store = await cacheLayout(cache)
  const root: Descriptor = {mediaType: verified.manifest.mediaType, digest: verified.manifest.digest, size: verified.manifest.size}
  dropDamaged(cache, root, verified.manifestBytes)
  await copyGraph(source, store, root, {signal: options.signal})
  const wanted = new Set([...verified.signatures, ...verified.approvals, ...verified.attestations].map((r) => r.referrer))
  if (isGraphTarget(source)) {
    for (const d of await source.predecessors(root, {signal: options.signal})) {
      if (wanted.has(d.digest)) await copyGraph(source, store, d, {signal: options.signal})
    }
  }
  if (verified.signatures.some((s) => s.format === 'cosign-legacy')) {
    const tag = legacySignatureTag(root.digest)
    await copy(source, tag, store, tag, {signal: options.signal})
  }
}

/**
 * The copy engine skips a manifest the destination has, with everything below it: so a damaged
 * cached graph (a blob edited or truncated on disk) is first taken apart here, its bad blobs and
 * its manifest removed, for the copy to fetch them again.
 */
function dropDamaged(cache: PolicyCache, root: Descriptor, manifestBytes: Buffer): void {
  const m = JSON.parse(manifestBytes.toString('utf8')) as {config?: Descriptor; layers?: Descriptor[]}
  let damaged = false
  for (const d of [...(m.config ? [m.config] : []), ...(m.layers ?? [])]) {
    const file = cache.blobPath(d.digest)
    if (!fs.existsSync(file)) {
      damaged = true
      continue
    }
    if (!cache.readBlob(d.digest, d.size)) {
      fs.rmSync(file, {force: true})
      damaged = true
    }
  }
  const top = cache.blobPath(root.digest)
  if (fs.existsSync(top) && (damaged || !cache.readBlob(root.digest, root.size))) fs.rmSync(top, {force: true})
}

export interface EntryInput {
  reference: string
  tier?: CacheTier
  verified: VerifiedPolicy
  origin: CacheOrigin
  sealDigest?: string
  /** When the source last vouched for the digest (default now); for an import, the seal's time. */
  observedAt?: Date
  trust?: TrustStamp
  now?: Date
  rollback?: RollbackApproval
}

/** The state entry for a verified policy. */
export function entryFor(input: EntryInput): CacheEntry {
  const v = input.verified
  const tier = input.tier ?? v.tier
  if (tier !== v.tier) {
    throw new VerificationError('TIER_MISMATCH', `${input.reference} is configured as the ${tier} tier but its signed content says ${v.tier}`, {
      suggestions: ['point each tier of the configuration at a policy published for that tier'],
    })
  }
  const now = input.now ?? new Date()
  const manifest = JSON.parse(v.manifestBytes.toString('utf8')) as {layers: Array<{digest: string; size: number}>}
  return {
    reference: input.reference,
    tier,
    digest: v.manifest.digest,
    mediaType: v.manifest.mediaType,
    size: v.manifest.size,
    contentDigest: v.contentDigest,
    blobs: manifest.layers.map((l) => ({digest: l.digest, size: l.size})),
    name: v.name,
    version: v.version,
    origin: input.origin,
    verifiedAt: now.toISOString(),
    checkedAt: (input.observedAt ?? now).toISOString(),
    signers: [...new Set(v.signatures.map((s) => s.signer.keyId))],
    ...(v.tenant !== undefined ? {tenant: v.tenant} : {}),
    ...(input.trust ? {trust: input.trust} : {}),
    ...(input.sealDigest ? {sealDigest: input.sealDigest} : {}),
    ...(input.rollback ? {rollback: {from: input.rollback.from, incident: input.rollback.incident, approvals: input.rollback.approvals}} : {}),
  }
}

export interface RecordVerifiedInput {
  /** The tier it is recorded as (default: the tier of its signed content; they must agree). */
  tier?: CacheTier
  /** The cache key: the reference the policy is published under, as a configuration names it (e.g. `registry.example.com/policies/org:stable`). */
  reference: string
  /** Where `verified` was read (a registry repository, an OCI layout, a sealed layout tar). */
  source: ReadOnlyTarget
  /** The verified manifest (default `verified.manifest`; must be the same digest). */
  descriptor?: Descriptor
  verified: VerifiedPolicy
  origin: CacheOrigin
  /** The seal digest of a sealed import. */
  sealDigest?: string
  /** When the source last vouched for this digest (default now); for an import, the seal's creation time. */
  observedAt?: Date
  /** What it was verified against; without it, the first `aibox start` that uses the entry verifies it again (offline, from the cache) against its own trust. */
  trust?: TrustStamp
  /** The trust policy it was verified with, to check the signer of a rollback approval (valid, not revoked). */
  trustPolicy?: TrustPolicy
  now?: Date
  signal?: AbortSignal
}

export interface RecordVerifiedResult {
  entry: CacheEntry
  /** The entry it replaced, if any. */
  previous?: CacheEntry
  change: VersionChange['kind']
  /** Set when an older version was accepted with a signed incident approval (log `policy.rollback`). */
  rollback?: RollbackApproval
}

/**
 * Copies a verified policy into the cache and records it for `reference` (see the module
 * comment). Throws VerificationError POLICY_ROLLBACK (exit 2, nothing recorded) for an older
 * version without a signed incident approval.
 */
export async function recordVerified(cache: PolicyCache, input: RecordVerifiedInput): Promise<RecordVerifiedResult> {
  if (input.descriptor && input.descriptor.digest !== input.verified.manifest.digest) {
    throw new VerificationError('DIGEST_MISMATCH', `recordVerified: descriptor ${input.descriptor.digest} is not the verified manifest ${input.verified.manifest.digest}`)
  }
  await fillCache(cache, input.source, input.verified, {signal: input.signal})
  return cache.update((state) => {
    const previous = state.entries[input.reference]
    const change = checkVersionChange(previous, input.verified, {trust: input.trustPolicy, now: input.now, reference: input.reference})
    const rollback = change.kind === 'rollback' ? change.approval : undefined
    const entry = entryFor({...input, rollback})
    state.entries[input.reference] = entry
    return {result: {entry, ...(previous ? {previous} : {}), change: change.kind, ...(rollback ? {rollback} : {})}, changed: true}
  })
}

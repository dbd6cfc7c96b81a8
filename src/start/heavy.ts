/**
 * The slow half of `aibox start`, loaded only when the cache cannot answer alone (a new digest, a
 * changed trust policy, an unknown stack, a policy-lock comparison): registry client, Sigstore
 * verification, the strict bundle parser and the tighten-only check. The warm path never
 * imports this module (toolchain.md §A: the start path must not pay for what it does not use).
 */
import fs from 'node:fs'
import path from 'node:path'

import {loadBundleText} from '../bundle/load.js'
import type {LoadedBundle} from '../bundle/model.js'
import {parseDocument} from '../bundle/parse.js'
import {analyzeStack} from '../bundle/tighten.js'
export {selectProfile} from '../bundle/profiles.js'
import {compareEffective, type EffectiveComparison, type EffectivePolicyDocument, resolveEffective} from '../bundle/effective.js'
import type {Violation} from '../bundle/layers.js'
import {type PolicyCache} from '../cache/cache.js'
import {checkVersionChange, entryFor, fillCache, type VersionChange} from '../cache/record.js'
import type {CacheEntry, TrustStamp} from '../cache/state.js'
import {makeTrustStamp} from '../cache/trust-stamp.js'
import {openForRead} from '../distribute/targets.js'
import {type VerifiedPolicy, verifyPolicyArtifact} from '../distribute/verify.js'
import {VerificationError} from '../errors.js'
import {LayoutDirStore} from '../oci/stores/layout-dir.js'
import type {RemoteRepositoryOptions} from '../oci/stores/remote.js'
import type {Descriptor, ReadOnlyGraphTarget} from '../oci/target.js'
import {loadPublicKey} from '../sign/keys.js'
import type {VerificationKey} from '../sign/types.js'
import {type TrustPolicy, loadTrustPolicy} from '../trust/policy.js'

export {checkVersionChange, entryFor, type VersionChange}

export interface TrustSelection {
  kind: 'keys' | 'trust'
  /** Key files, or the trust policy file. */
  files: string[]
}

export interface LoadedTrust {
  keys?: VerificationKey[]
  trust?: TrustPolicy
  stamp: TrustStamp
}

/** Loads `--key` files or the trust policy, and stamps them (with the key files the policy names). */
export function loadTrust(sel: TrustSelection, now: Date): LoadedTrust {
  if (sel.kind === 'keys') {
    const keys = sel.files.map((f) => ({...loadPublicKey(f), name: path.basename(f)}))
    return {keys, stamp: makeTrustStamp('keys', sel.files)}
  }
  const file = sel.files[0]!
  const trust = loadTrustPolicy(file)
  // The key files the policy names (paths relative to it): an edit to one re-verifies the cache.
  const keyFiles: string[] = []
  try {
    const doc = parseDocument(fs.readFileSync(file), file).value as {keys?: Record<string, {path?: unknown}>}
    for (const k of Object.values(doc.keys ?? {})) {
      if (typeof k?.path === 'string') keyFiles.push(path.resolve(path.dirname(path.resolve(file)), k.path))
    }
  } catch {
    // loadTrustPolicy read and validated it a moment ago; a race just makes the stamp miss next time
  }
  let revalidate: number | undefined
  for (const k of trust.keys) {
    for (const t of [k.notAfter?.getTime(), k.revoked?.revokedAt?.getTime()]) {
      if (t !== undefined && t > now.getTime() && (revalidate === undefined || t < revalidate)) revalidate = t
    }
  }
  return {trust, stamp: makeTrustStamp('trust', [file, ...keyFiles], revalidate === undefined ? undefined : new Date(revalidate))}
}

/** Opens the source of a reference for reading (registry repository or layout). */
export async function openSource(ref: string, registry: RemoteRepositoryOptions): Promise<{target: ReadOnlyGraphTarget; close(): Promise<void>}> {
  const opened = await openForRead(ref, {registry})
  return {target: opened.target, close: () => opened.close()}
}

/** Resolves a reference with the full client (credentials, GET fallback, every layout spelling). */
export async function resolveFull(ref: string, selector: string, registry: RemoteRepositoryOptions): Promise<Descriptor> {
  const src = await openSource(ref, registry)
  try {
    return await src.target.resolve(selector)
  } finally {
    await src.close()
  }
}

/** Verifies the manifest `desc` at its source: signatures, content, trust (distribute/verify.ts). */
export async function verifyAtSource(target: ReadOnlyGraphTarget, desc: Descriptor, trust: LoadedTrust, trustRef: string | undefined): Promise<VerifiedPolicy> {
  return verifyPolicyArtifact(target, {mediaType: desc.mediaType, digest: desc.digest, size: desc.size}, {
    ...(trust.trust ? {trust: trust.trust} : {keys: trust.keys!}),
    ...(trustRef ? {reference: trustRef} : {}),
  })
}

/** Verifies a cached entry again, offline, from the cache layout (after a trust change). */
export async function reverifyCached(cache: PolicyCache, entry: CacheEntry, trust: LoadedTrust, trustRef: string | undefined): Promise<VerifiedPolicy> {
  const layout = await LayoutDirStore.open(cache.layoutDir, {readOnly: true})
  return verifyAtSource(layout, {mediaType: entry.mediaType, digest: entry.digest, size: entry.size}, trust, trustRef ?? referenceForTrust(entry.reference))
}

/** The reference a cached entry was published under, for trust scopes: a registry reference as is, a layout none. */
function referenceForTrust(ref: string): string | undefined {
  return ref.startsWith('oci:') || ref.startsWith('oci-archive:') ? undefined : ref
}

export {fillCache}

/** A bundle from its verified canonical JSON (a cached or fresh artifact) or a project file's bytes. */
export function bundleFrom(bytes: Uint8Array, label: string, tier: 'org' | 'team' | 'project', format: 'json' | undefined): LoadedBundle {
  const b = loadBundleText(bytes, label, {tier, ...(format ? {format, accept: ['aibox-bundle'] as const} : {})})
  if (b.tier !== undefined && b.tier !== tier) {
    throw new VerificationError('TIER_MISMATCH', `${label} is configured as the ${tier} tier but says tier ${b.tier}`, {suggestions: ['point each tier of aibox.yaml at a policy of that tier']})
  }
  return b.tier === tier ? b : {...b, tier}
}

const CLOSING: Record<'team' | 'project', string> = {
  team: 'Team policies can only tighten the org baseline. Contact the security team to request org-level changes.',
  project: 'Project policies can only add restrictions, not remove them.',
}

/** The runbook's refusal (seed 004 §3, §4), one line per loosening, then what the tier may do. */
export function runbookRefusal(violations: readonly Violation[]): VerificationError {
  const lines: string[] = []
  const tiers = new Set<'team' | 'project'>()
  for (const v of violations) {
    const parent = v.againstTier === 'org' ? 'org' : v.againstTier === 'team' ? 'team' : 'parent'
    if (v.tier === 'project') {
      tiers.add('project')
      lines.push(`Project policy loosens ${parent} restriction '${v.against}': ${v.detail} (${v.file}).`)
    } else {
      tiers.add('team')
      lines.push(`Team policy '${v.file}' loosens ${parent === 'org' ? 'org baseline' : parent} rule '${v.against}': ${v.detail}.`)
    }
  }
  for (const t of ['team', 'project'] as const) if (tiers.has(t)) lines.push(CLOSING[t])
  return new VerificationError('POLICY_LOOSENED', lines.join('\n'), {
    details: {violations},
    suggestions: ['tighten instead (README "Tighten-only rules"); aibox bundle check --base ORG --base TEAM CHILD shows the same list before publishing'],
  })
}

/** The effective policy of a stack, or the runbook's refusal (exit 2) when a tier loosens the ones above. */
export function effectiveOf(bundles: LoadedBundle[]): {canonical: string; digest: string; document: EffectivePolicyDocument} {
  const a = analyzeStack(bundles)
  if (!a.ok) throw runbookRefusal(a.violations)
  return resolveEffective(a.stack)
}

/** Compares the last loaded effective policy with a new one (policy lock). */
export function compareLock(previous: Uint8Array, next: Uint8Array): EffectiveComparison {
  const parse = (b: Uint8Array) => JSON.parse(Buffer.from(b).toString('utf8')) as EffectivePolicyDocument
  return compareEffective(parse(previous), parse(next))
}

export type {VerifiedPolicy}

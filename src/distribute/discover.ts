/**
 * `aibox discover REF`: the tree of what is attached to a manifest — signatures, approvals, other
 * attestations and artifacts, and what is attached to those (counter-signatures) — like
 * `oras discover`. Without keys it shows what the referrers CLAIM (predicate type, key hint,
 * approval fields), marked unverified; with keys or a trust policy each one is verified and its
 * signer named.
 */
import {isOciError} from '../oci/errors.js'
import {parseManifest} from '../oci/manifest.js'
import {fetchAll} from '../oci/content.js'
import type {Descriptor, ReadOnlyTarget} from '../oci/target.js'
import type {SignerInfo, VerificationKey} from '../sign/types.js'
import {COSIGN_SIGN_PREDICATE_TYPE} from '../sign/statement.js'
import {APPROVAL_PREDICATE_TYPE, type ReferrerRecord, listPolicyReferrers, verifyReferrers} from './referrers.js'

export type DiscoverKind = 'signature' | 'approval' | 'attestation' | 'artifact' | 'dangling' | 'invalid'

export interface DiscoverNode {
  /** Referrer manifest digest, or `sha256-<hex>.sig#<n>` for a legacy cosign signature. */
  id: string
  kind: DiscoverKind
  format?: 'sigstore-bundle' | 'cosign-legacy'
  artifactType?: string
  predicateType?: string
  created?: string
  /** True/false when keys were given (verified with one of them or not), absent otherwise. */
  verified?: boolean
  /** The verified signer (with keys). */
  signer?: SignerInfo
  /** The unauthenticated key hint the bundle carries (base64 sha256 of the public key). */
  keyHint?: string
  /** Approval fields (as signed when verified, as claimed otherwise). */
  approval?: {role?: unknown; note?: unknown; ticket?: unknown; incident?: unknown; approvedAt?: unknown}
  /** Why it did not verify, or why it is dangling/invalid. */
  problem?: string
  referrers: DiscoverNode[]
}

export interface DiscoverResult {
  location: string
  digest: string
  mediaType: string
  artifactType?: string
  verifiedWith: 'keys' | 'trust' | 'nothing'
  referrers: DiscoverNode[]
}

export interface DiscoverOptions {
  keys?: VerificationKey[]
  /** Name of what `keys` came from, for the result. */
  keySource?: 'keys' | 'trust'
  /** Referrers of referrers, how deep (default 4). */
  depth?: number
  signal?: AbortSignal
}

/** The statement inside a DSSE bundle, read WITHOUT verification (display only). */
function claimedStatement(bundle: Record<string, unknown> | undefined): {predicateType?: string; predicate?: Record<string, unknown>; hint?: string} {
  const out: {predicateType?: string; predicate?: Record<string, unknown>; hint?: string} = {}
  const vm = bundle?.verificationMaterial as {publicKey?: {hint?: unknown}} | undefined
  if (typeof vm?.publicKey?.hint === 'string') out.hint = vm.publicKey.hint
  const env = bundle?.dsseEnvelope as {payload?: unknown} | undefined
  if (typeof env?.payload !== 'string') return out
  try {
    const s = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as {predicateType?: unknown; predicate?: unknown}
    if (typeof s.predicateType === 'string') out.predicateType = s.predicateType
    if (typeof s.predicate === 'object' && s.predicate !== null && !Array.isArray(s.predicate)) out.predicate = s.predicate as Record<string, unknown>
  } catch {
    // shown as unverified with no predicate
  }
  return out
}

function kindOf(r: ReferrerRecord, predicateType: string | undefined): DiscoverKind {
  if (r.kind === 'dangling') return 'dangling'
  if (r.kind === 'invalid') return 'invalid'
  if (r.kind === 'cosign-legacy') return 'signature'
  if (r.kind === 'other') return 'artifact'
  if (predicateType === COSIGN_SIGN_PREDICATE_TYPE) return 'signature'
  if (predicateType === APPROVAL_PREDICATE_TYPE) return 'approval'
  return 'attestation'
}

function approvalFields(p: Record<string, unknown> | undefined): DiscoverNode['approval'] {
  if (!p) return undefined
  const out: NonNullable<DiscoverNode['approval']> = {}
  for (const k of ['role', 'note', 'ticket', 'incident', 'approvedAt'] as const) if (p[k] !== undefined) out[k] = p[k]
  return out
}

async function nodesFor(target: ReadOnlyTarget, subject: Descriptor, options: DiscoverOptions, depth: number, seen: Set<string>): Promise<DiscoverNode[]> {
  const records = await listPolicyReferrers(target, subject, {signal: options.signal, legacy: true})
  const out: DiscoverNode[] = []
  for (const r of records) {
    const claim = r.kind === 'sigstore-bundle' ? claimedStatement(r.bundle) : {}
    const node: DiscoverNode = {id: r.id, kind: kindOf(r, claim.predicateType ?? r.claimedPredicateType), referrers: []}
    if (r.kind === 'sigstore-bundle' || r.kind === 'cosign-legacy') node.format = r.kind
    if (r.artifactType !== undefined) node.artifactType = r.artifactType
    const pt = claim.predicateType ?? r.claimedPredicateType
    if (pt !== undefined) node.predicateType = pt
    if (r.created !== undefined) node.created = r.created
    if (claim.hint !== undefined) node.keyHint = claim.hint
    if (r.problem !== undefined) node.problem = r.problem
    if (node.kind === 'approval') node.approval = approvalFields(claim.predicate)
    if (options.keys && (r.kind === 'sigstore-bundle' || r.kind === 'cosign-legacy')) {
      const v = verifyReferrers([r], subject, options.keys)
      const ok = v.signatures[0] ?? v.approvals[0] ?? v.attestations[0]
      node.verified = ok !== undefined
      if (ok) node.signer = ok.signer
      else node.problem = v.rejected[0]?.reason ?? node.problem
      if (v.approvals[0]) {
        const {referrer: _r, signer: _s, ...fields} = v.approvals[0]
        node.approval = fields
      }
    }
    if (depth > 1 && r.kind !== 'dangling' && r.kind !== 'cosign-legacy' && !seen.has(r.id)) {
      seen.add(r.id)
      node.referrers = await nodesFor(target, {mediaType: r.descriptor.mediaType, digest: r.descriptor.digest, size: r.descriptor.size}, options, depth - 1, seen)
    }
    out.push(node)
  }
  return out
}

/** Lists the referrer tree of the manifest `ref` (tag or digest) in `target`. */
export async function discoverReferrers(target: ReadOnlyTarget, ref: string, options: DiscoverOptions = {}): Promise<DiscoverResult> {
  const desc = await target.resolve(ref, {signal: options.signal})
  let artifactType = desc.artifactType
  if (artifactType === undefined) {
    try {
      const parsed = parseManifest(await fetchAll(target, desc), desc, target.location)
      artifactType = parsed.kind === 'manifest' ? (parsed.manifest.artifactType ?? parsed.manifest.config.mediaType) : parsed.index.artifactType
    } catch (err) {
      if (!isOciError(err)) throw err
    }
  }
  const referrers = await nodesFor(target, desc, options, options.depth ?? 4, new Set([desc.digest]))
  return {
    location: target.location,
    digest: desc.digest,
    mediaType: desc.mediaType,
    ...(artifactType === undefined ? {} : {artifactType}),
    verifiedWith: options.keys ? (options.keySource ?? 'keys') : 'nothing',
    referrers,
  }
}

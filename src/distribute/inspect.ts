/**
 * `aibox tags REPO` and `aibox inspect REF`: read-only views of a repository or layout.
 *
 * Tags are sorted semver-aware (versions by precedence, `1.2.0 < 1.10.0`, `1.0.0-rc.1 < 1.0.0`),
 * after the other tags (channels such as `stable`) in code-point order; the referrers machinery
 * (`sha256-<hex>` indexes, cosign's `sha256-<hex>.sig/.att/.sbom`) is hidden: those are not versions.
 *
 * Inspect shows what a reference points at WITHOUT verifying signatures: manifest, annotations,
 * layers, the policy's name/version/tier/digest read from its canonical layer and whether they
 * agree with the annotations, and the referrers with what they claim. `aibox pull` / `verify`
 * are what decide about trust.
 */
import {loadBundleText} from '../bundle/load.js'
import {MAX_DOCUMENT_BYTES} from '../bundle/parse.js'
import {VerificationError, errorMessage} from '../errors.js'
import {fetchAll, sha256Digest} from '../oci/content.js'
import {parseManifest} from '../oci/manifest.js'
import {ANNOTATION, MT} from '../oci/media.js'
import type {Descriptor, ReadOnlyTarget, TagLister} from '../oci/target.js'
import {type DiscoverNode, discoverReferrers} from './discover.js'

const MACHINERY_TAG_RE = /^sha256-[a-f0-9]{64}(?:\.[a-z]+)?$/
const SEMVER_RE = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:[_+]([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/

interface SemVer {
  nums: [number, number, number]
  pre: string[]
}

export function parseSemver(tag: string): SemVer | undefined {
  const m = SEMVER_RE.exec(tag)
  if (!m) return undefined
  const nums: [number, number, number] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (!nums.every(Number.isSafeInteger)) return undefined
  return {nums, pre: m[4] ? m[4].split('.') : []}
}

/** semver.org §11 precedence; build metadata is ignored (ties broken by the tag text). */
export function compareSemver(a: SemVer, b: SemVer): number {
  for (let i = 0; i < 3; i++) if (a.nums[i] !== b.nums[i]) return a.nums[i]! - b.nums[i]!
  if (a.pre.length === 0 || b.pre.length === 0) return (a.pre.length === 0 ? 1 : 0) - (b.pre.length === 0 ? 1 : 0)
  for (let i = 0; i < Math.max(a.pre.length, b.pre.length); i++) {
    const x = a.pre[i]
    const y = b.pre[i]
    if (x === undefined) return -1
    if (y === undefined) return 1
    const xn = /^\d+$/.test(x)
    const yn = /^\d+$/.test(y)
    if (xn && yn) {
      const d = Number(x) - Number(y)
      if (d !== 0) return d
    } else if (xn !== yn) return xn ? -1 : 1
    else if (x !== y) return x < y ? -1 : 1
  }
  return 0
}

/** Hides referrers machinery tags and sorts: other tags first (code-point order), then versions by precedence. */
export function sortTags(tags: string[]): string[] {
  const visible = [...new Set(tags)].filter((t) => !MACHINERY_TAG_RE.test(t))
  const versions = visible.map((t) => ({t, v: parseSemver(t)}))
  const channels = versions.filter((x) => !x.v).map((x) => x.t).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const sorted = versions
    .filter((x): x is {t: string; v: SemVer} => x.v !== undefined)
    .sort((a, b) => compareSemver(a.v, b.v) || (a.t < b.t ? -1 : a.t > b.t ? 1 : 0))
    .map((x) => x.t)
  return [...channels, ...sorted]
}

export interface TagsResult {
  location: string
  tags: string[]
  /** The highest version tag, if any. */
  latest?: string
}

export async function listTags(target: ReadOnlyTarget & TagLister, opts: {signal?: AbortSignal} = {}): Promise<TagsResult> {
  const tags = sortTags(await target.tags({signal: opts.signal}))
  const latest = [...tags].reverse().find((t) => parseSemver(t) !== undefined)
  return {location: target.location, tags, ...(latest ? {latest} : {})}
}

export interface InspectPolicyResult {
  location: string
  digest: string
  mediaType: string
  size: number
  artifactType: string | null
  annotations: Record<string, string>
  config: Descriptor | null
  layers: Descriptor[]
  /** The policy as read from the canonical layer (not verified: see `aibox verify`). Null when this is not a policy artifact. */
  policy: {
    name: string | null
    version: string | null
    tier: string | null
    /** metadata.tenant (null: none). */
    tenant: string | null
    contentDigest: string
    /** Annotations disagreeing with the content, or content that is not a valid bundle. */
    problems: string[]
  } | null
  referrers: DiscoverNode[]
  verified: false
}

/**
 * The metadata.tenant of the policy artifact `desc` as its content says (read, not verified: for
 * the cross-tenant check of commands that copy without verifying), or undefined for a policy
 * without a tenant and for anything that is not a policy artifact.
 */
export async function policyTenantOf(target: ReadOnlyTarget, desc: Descriptor, opts: {signal?: AbortSignal} = {}): Promise<string | undefined> {
  if (desc.mediaType !== MT.ociManifest) return undefined
  const parsed = parseManifest(await fetchAll({fetch: (d) => target.fetch(d, {signal: opts.signal})}, desc), desc, target.location)
  const m = parsed.kind === 'manifest' ? parsed.manifest : undefined
  const layer = m?.layers[0]
  if (!m || m.artifactType !== MT.policyBundle || layer?.mediaType !== MT.policyBundle) return undefined
  try {
    return await layerTenant(target, layer, `${target.location}@${desc.digest}`, opts.signal)
  } catch (err) {
    // Not a valid bundle: nobody can verify or use it, and it claims no tenant. Fetch errors stand.
    if (err instanceof VerificationError && err.code === 'POLICY_CONTENT_INVALID') return undefined
    throw err
  }
}

/**
 * The metadata.tenant of a policy's canonical layer, read (not verified: import and pull verify it
 * against the signatures); VerificationError POLICY_CONTENT_INVALID when the layer is no valid
 * aibox bundle.
 */
export async function layerTenant(target: ReadOnlyTarget, layer: Descriptor, label: string, signal?: AbortSignal): Promise<string | undefined> {
  const data = await fetchAll({fetch: (d) => target.fetch(d, {signal})}, layer, MAX_DOCUMENT_BYTES)
  try {
    return loadBundleText(data, `${label} (policy layer)`, {format: 'json', accept: ['aibox-bundle']}).tenant
  } catch (err) {
    throw new VerificationError('POLICY_CONTENT_INVALID', `the policy layer of ${label} is not a valid aibox bundle: ${errorMessage(err)}`, {suggestions: ['an archive holding it could not be imported anywhere; export a valid policy']})
  }
}

export async function inspectPolicyReference(target: ReadOnlyTarget, ref: string, opts: {signal?: AbortSignal} = {}): Promise<InspectPolicyResult> {
  const desc = await target.resolve(ref, {signal: opts.signal})
  const bytes = await fetchAll(target, desc)
  const parsed = parseManifest(bytes, desc, target.location)
  const m = parsed.kind === 'manifest' ? parsed.manifest : undefined
  const annotations = (m ? m.annotations : parsed.kind === 'index' ? parsed.index.annotations : undefined) ?? {}
  let policy: InspectPolicyResult['policy'] = null
  const layer = m?.layers[0]
  if (m && m.artifactType === MT.policyBundle && layer?.mediaType === MT.policyBundle) {
    const problems: string[] = []
    let name: string | null = null
    let version: string | null = null
    let tier: string | null = null
    let tenant: string | null = null
    let contentDigest = layer.digest
    try {
      const data = await fetchAll(target, layer, MAX_DOCUMENT_BYTES)
      contentDigest = sha256Digest(data)
      const b = loadBundleText(data, `${target.location}@${desc.digest} (policy layer)`, {format: 'json', accept: ['aibox-bundle']})
      name = b.name ?? null
      version = b.version ?? null
      tier = b.tier ?? null
      tenant = b.tenant ?? null
      const say = (key: string, want: string | null) => {
        if (annotations[key] !== undefined && annotations[key] !== want) problems.push(`annotation ${key} is ${JSON.stringify(annotations[key])} but the content says ${JSON.stringify(want)}`)
      }
      say(ANNOTATION.title, name)
      say(ANNOTATION.version, version)
      say(ANNOTATION.tier, tier)
      say(ANNOTATION.tenant, tenant)
      say(ANNOTATION.policyDigest, b.digest)
    } catch (err) {
      problems.push(errorMessage(err))
    }
    policy = {name, version, tier, tenant, contentDigest, problems}
  }
  const tree = desc.mediaType === MT.ociManifest || desc.mediaType === MT.ociIndex ? (await discoverReferrers(target, desc.digest, {signal: opts.signal, depth: 2})).referrers : []
  return {
    location: target.location,
    digest: desc.digest,
    mediaType: desc.mediaType,
    size: desc.size,
    artifactType: (m ? (m.artifactType ?? m.config.mediaType) : parsed.kind === 'index' ? parsed.index.artifactType : undefined) ?? null,
    annotations,
    config: m?.config ?? null,
    layers: m?.layers ?? [],
    policy,
    referrers: tree,
    verified: false,
  }
}

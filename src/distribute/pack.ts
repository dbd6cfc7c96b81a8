/**
 * Packing a policy bundle as an OCI artifact exactly as formats.md "Policy artifact" says:
 *
 * - `artifactType` application/vnd.aibox.policy.bundle.v1+json, the empty config `{}`;
 * - `layers[0]`: the RFC 8785 canonical JSON (so the layer digest IS the content digest), titled
 *   `<name>.json`; `layers[1]` (optional): the YAML source as written, titled `<name>.yaml`;
 * - annotations: title (the bundle name), version, tier, the content digest, and `created` only
 *   when SOURCE_DATE_EPOCH (or the caller) pins it. The clock is never read: the same bundle gives
 *   the same manifest bytes and digest on every machine (style.md rule 8).
 *
 * The result is a MemoryStore holding the whole graph, from which `copy` pushes it anywhere.
 */
import {canonicalBytes} from '../bundle/canonical.js'
import type {LoadedBundle, Tier} from '../bundle/model.js'
import {InputError} from '../errors.js'
import {descriptorFor, sha256Digest} from '../oci/content.js'
import {packManifest} from '../oci/manifest.js'
import {ANNOTATION, EMPTY_DESCRIPTOR, EMPTY_JSON, MT} from '../oci/media.js'
import {MemoryStore} from '../oci/stores/memory.js'
import type {Descriptor} from '../oci/target.js'

/** formats.md "Policy bundle (source)": `metadata.name` is a DNS label (also a safe file name). */
export const POLICY_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

/**
 * Draft pushes (README "Governance", submit gate) are tagged `draft-<version>` only: never the
 * version or a channel, and pull/start refuse a `draft-` tag, so a draft is never taken for a release.
 */
export const DRAFT_TAG_PREFIX = 'draft-'

export function isDraftTag(tag: string): boolean {
  return tag.startsWith(DRAFT_TAG_PREFIX)
}

const MAX_INCIDENT = 256

/** Why an incident reference (the emergency annotation, `--incident`) is unusable, or undefined. */
export function incidentProblem(incident: string): string | undefined {
  if (incident.trim() === '') return 'is empty'
  if (incident.length > MAX_INCIDENT) return `is longer than ${MAX_INCIDENT} characters`
  if (/[\u0000-\u001f\u007f]/.test(incident)) return 'contains control characters'
  return undefined
}

export interface PackPolicyOptions {
  /** Include the YAML source as `layers[1]` (default true; JSON sources have none: the canonical layer is their content). */
  includeSource?: boolean
  /**
   * `org.opencontainers.image.created`. Default: from `SOURCE_DATE_EPOCH` in `env` when set, else
   * omitted — never the clock, so that the same input always gives the same digest.
   */
  created?: string
  env?: NodeJS.ProcessEnv
  /**
   * Marks the artifact as an emergency change for this incident (`dev.aibox.policy.emergency`),
   * inside the manifest the signatures bind to. Gives a different digest than a normal push.
   */
  emergency?: string
}

export interface PackedPolicy {
  /** The packed graph: config, layers and manifest. */
  store: MemoryStore
  manifest: Descriptor
  /** The exact manifest bytes (the signatures bind to their digest). */
  manifestBytes: Buffer
  layers: Descriptor[]
  /** RFC 8785 canonical JSON of the bundle: layers[0]. */
  canonical: Buffer
  /** `sha256:<hex>` of `canonical` (= layers[0].digest = the `dev.aibox.policy.digest` annotation). */
  contentDigest: string
  /** The YAML source (layers[1]) when included. */
  source?: Buffer
  name: string
  version: string
  tier: Tier
  /** metadata.tenant, when the bundle names one. */
  tenant?: string
  annotations: Record<string, string>
}

/**
 * RFC 3339 UTC time (seconds) from SOURCE_DATE_EPOCH (reproducible-builds.org), or undefined when
 * it is not set. A set but invalid value is an error rather than silently ignored.
 */
export function createdFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env.SOURCE_DATE_EPOCH
  if (raw === undefined || raw === '') return undefined
  if (!/^\d{1,12}$/.test(raw.trim())) {
    throw new InputError('INVALID_SOURCE_DATE_EPOCH', `SOURCE_DATE_EPOCH=${JSON.stringify(raw.slice(0, 40))} is not a number of seconds since 1970`, {
      suggestions: ['set it to an integer such as $(git log -1 --format=%ct), or unset it'],
    })
  }
  return new Date(Number(raw.trim()) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** The fields a publishable bundle must have: an aibox PolicyBundle with name, version and tier. */
export function publishableFields(bundle: LoadedBundle): {name: string; version: string; tier: Tier} {
  if (bundle.kind !== 'aibox-bundle') {
    throw new InputError('NOT_PUBLISHABLE', `${bundle.file} is not an aibox PolicyBundle (apiVersion: aibox.dev/v1): only those can be published`, {
      suggestions: ['wrap the policy in an aibox bundle envelope with metadata name, version and tier (aibox bundle init shows one)'],
    })
  }
  const {name, version, tier} = bundle
  if (name === undefined || version === undefined || tier === undefined) {
    throw new InputError('NOT_PUBLISHABLE', `${bundle.file} has no metadata.name, metadata.version or metadata.tier: all three are needed to publish it`)
  }
  if (!POLICY_NAME_RE.test(name)) throw new InputError('NOT_PUBLISHABLE', `${bundle.file}: metadata.name ${JSON.stringify(name)} is not a DNS label`)
  return {name, version, tier}
}

/** The canonical JSON bytes of a loaded bundle (the scanner's when it produced them). */
export function canonicalOf(bundle: LoadedBundle): Buffer {
  return bundle.source.canonical ?? canonicalBytes(bundle.document)
}

/** Packs a validated aibox bundle into an in-memory OCI artifact (see the module comment). */
export async function packPolicy(bundle: LoadedBundle, options: PackPolicyOptions = {}): Promise<PackedPolicy> {
  const {name, version, tier} = publishableFields(bundle)
  const canonical = canonicalOf(bundle)
  const contentDigest = sha256Digest(canonical)
  if (bundle.digest !== '' && bundle.digest !== contentDigest) {
    // Two canonicalisation paths disagreeing would be a bug; never publish under a wrong digest.
    throw new InputError('INTERNAL', `canonical bytes of ${bundle.file} hash to ${contentDigest}, but the bundle digest is ${bundle.digest}`)
  }
  const layers: Descriptor[] = [descriptorFor(MT.policyBundle, canonical, {annotations: {[ANNOTATION.title]: `${name}.json`}})]
  let source: Buffer | undefined
  if ((options.includeSource ?? true) && bundle.format === 'yaml') {
    source = Buffer.from(bundle.source.text, 'utf8')
    layers.push(descriptorFor(MT.policySource, source, {annotations: {[ANNOTATION.title]: `${name}.yaml`}}))
  }
  const annotations: Record<string, string> = {
    [ANNOTATION.title]: name,
    [ANNOTATION.version]: version,
    [ANNOTATION.tier]: tier,
    [ANNOTATION.policyDigest]: contentDigest,
  }
  if (bundle.tenant !== undefined) annotations[ANNOTATION.tenant] = bundle.tenant
  if (options.emergency !== undefined) {
    const problem = incidentProblem(options.emergency)
    if (problem) throw new InputError('INVALID_INCIDENT', `the incident reference ${JSON.stringify(options.emergency.slice(0, 80))} ${problem}`, {suggestions: ['pass --incident ID, e.g. --incident INC-1234']})
    annotations[ANNOTATION.emergency] = options.emergency
  }
  const created = options.created ?? createdFromEnv(options.env ?? process.env)
  const packed = packManifest({artifactType: MT.policyBundle, layers, annotations, created})
  const store = new MemoryStore({location: `packed ${name}@${version}`})
  await store.push({...EMPTY_DESCRIPTOR}, EMPTY_JSON)
  await store.push(layers[0]!, canonical)
  if (source) await store.push(layers[1]!, source)
  await store.push(packed.descriptor, packed.bytes)
  return {
    store,
    manifest: packed.descriptor,
    manifestBytes: packed.bytes,
    layers,
    canonical,
    contentDigest,
    ...(source ? {source} : {}),
    name,
    version,
    tier,
    ...(bundle.tenant !== undefined ? {tenant: bundle.tenant} : {}),
    annotations: {...(packed.descriptor.annotations ?? {})},
  }
}

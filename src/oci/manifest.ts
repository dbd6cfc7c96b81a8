/**
 * Image manifests and indexes: strict parsing (enough to walk graphs safely: schemaVersion 2,
 * well-formed descriptors, sha256 digests, size caps, no ambiguous documents), the successor
 * relation the copy engine walks, and deterministic packing (same input, same bytes, same digest;
 * style.md rule 8, oras-go `pack.go`).
 */
import {isUtf8} from 'node:buffer'

import {MAX_MANIFEST_BYTES, sha256Digest, verifyBytes} from './content.js'
import {shownValue} from '../util/text.js'
import {OciError} from './errors.js'
import {ANNOTATION, EMPTY_DESCRIPTOR, MT} from './media.js'
import type {Descriptor} from './target.js'

/** OCI image manifest (image-spec manifest.md), also the Docker schema 2 manifest (same shape). */
export interface ImageManifest {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  config: Descriptor
  layers: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

/** OCI image index (image-spec image-index.md), also the Docker manifest list. */
export interface ImageIndex {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  manifests: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

export type ParsedManifest =
  | {kind: 'manifest'; mediaType: string; manifest: ImageManifest}
  | {kind: 'index'; mediaType: string; index: ImageIndex}

/** A located problem in a manifest: RFC 6901 pointer + message. */
export interface ManifestProblem {
  pointer: string
  message: string
}

const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/
const ANY_DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/
/** More problems than this are summarised: a hostile manifest must not make a huge error message. */
const MAX_PROBLEMS = 20

const MANIFEST_TYPES = new Set<string>([MT.ociManifest, MT.dockerManifest])
const INDEX_TYPES = new Set<string>([MT.ociIndex, MT.dockerManifestList])

export function isManifestType(mediaType: string): boolean {
  return MANIFEST_TYPES.has(mediaType)
}

export function isIndexType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType)
}

/** True for media types whose content is a manifest or an index (a graph node with successors). */
export function isGraphNodeType(mediaType: string): boolean {
  return MANIFEST_TYPES.has(mediaType) || INDEX_TYPES.has(mediaType)
}

export function isValidMediaType(s: unknown): s is string {
  return typeof s === 'string' && MEDIA_TYPE_RE.test(s)
}

class Problems {
  readonly list: ManifestProblem[] = []
  add(pointer: string, message: string): void {
    if (this.list.length < MAX_PROBLEMS) this.list.push({pointer, message})
    else if (this.list.length === MAX_PROBLEMS) this.list.push({pointer: '', message: 'further problems not shown'})
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function checkAnnotations(v: unknown, ptr: string, p: Problems): Record<string, string> | undefined {
  if (v === undefined) return undefined
  if (!isPlainObject(v)) {
    p.add(ptr, 'must be an object of string values')
    return undefined
  }
  const out: Record<string, string> = {}
  for (const [k, val] of Object.entries(v)) {
    if (k === '') p.add(ptr, 'annotation keys must not be empty')
    else if (typeof val !== 'string') p.add(`${ptr}/${escapePointer(k)}`, 'annotation values must be strings')
    else out[k] = val
  }
  return out
}

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1')
}

/**
 * Validates one descriptor (image-spec descriptor.md). Digests must be sha256 (we never accept
 * content we cannot verify), sizes non-negative safe integers, embedded `data` must match.
 */
function checkDescriptor(v: unknown, ptr: string, p: Problems): Descriptor | undefined {
  if (!isPlainObject(v)) {
    p.add(ptr, 'must be a descriptor object')
    return undefined
  }
  const before = p.list.length
  const {mediaType, digest, size, artifactType, annotations, data, urls, platform} = v
  if (!isValidMediaType(mediaType)) p.add(`${ptr}/mediaType`, `must be a media type (type/subtype), got ${shownValue(mediaType)}`)
  if (typeof digest !== 'string') p.add(`${ptr}/digest`, 'is required and must be a string')
  else if (!DIGEST_RE.test(digest)) {
    p.add(
      `${ptr}/digest`,
      ANY_DIGEST_RE.test(digest) && !digest.startsWith('sha256:')
        ? `unsupported digest algorithm in "${digest.slice(0, 80)}": only sha256 is accepted`
        : `invalid digest "${digest.slice(0, 80)}": expected sha256:<64 lowercase hex>`,
    )
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) p.add(`${ptr}/size`, `must be a non-negative integer, got ${shownValue(size)}`)
  if (artifactType !== undefined && !isValidMediaType(artifactType)) p.add(`${ptr}/artifactType`, 'must be a media type')
  const ann = checkAnnotations(annotations, `${ptr}/annotations`, p)
  if (urls !== undefined && !(Array.isArray(urls) && urls.every((u) => typeof u === 'string'))) p.add(`${ptr}/urls`, 'must be an array of strings')
  if (platform !== undefined && !isPlainObject(platform)) p.add(`${ptr}/platform`, 'must be an object')
  if (data !== undefined) {
    if (typeof data !== 'string' || data.length % 4 !== 0 || !BASE64_RE.test(data)) p.add(`${ptr}/data`, 'must be base64')
    else if (typeof digest === 'string' && DIGEST_RE.test(digest) && typeof size === 'number') {
      // image-spec descriptor.md: embedded data MUST match the digest and size.
      const bytes = Buffer.from(data, 'base64')
      if (bytes.byteLength !== size || sha256Digest(bytes) !== digest) p.add(`${ptr}/data`, 'does not match the descriptor digest and size')
    }
  }
  if (p.list.length !== before) return undefined
  const d: Descriptor = {mediaType: mediaType as string, digest: digest as string, size: size as number}
  if (artifactType !== undefined) d.artifactType = artifactType as string
  if (ann !== undefined) d.annotations = ann
  if (data !== undefined) d.data = data as string
  if (urls !== undefined) d.urls = urls as string[]
  if (platform !== undefined) d.platform = platform as Record<string, unknown>
  return d
}

/** Validates a descriptor given by a caller (not parsed from JSON); throws INVALID_MANIFEST. */
export function assertDescriptor(d: unknown, what = 'descriptor'): asserts d is Descriptor {
  const p = new Problems()
  checkDescriptor(d, '', p)
  if (p.list.length > 0) throw manifestError(`invalid ${what}`, p.list)
}

function manifestError(summary: string, problems: ManifestProblem[]): OciError {
  const lines = problems.map((x) => `  ${x.pointer || '/'}: ${x.message}`)
  return new OciError('INVALID_MANIFEST', `${summary}\n${lines.join('\n')}`, {details: {problems}})
}

/**
 * Parses and validates a manifest or index. When `desc` carries a digest the bytes are verified
 * against it first (never parse unverified bytes); its media type must agree with the document's.
 * Documents that look like both a manifest and an index are refused (CVE-2021-41190).
 */
export function parseManifest(bytes: Uint8Array, desc?: Partial<Descriptor>, location = ''): ParsedManifest {
  const where = location || desc?.digest || 'manifest'
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new OciError('MANIFEST_TOO_LARGE', `${where} has ${bytes.byteLength} bytes, more than the ${MAX_MANIFEST_BYTES}-byte limit`)
  }
  if (desc?.digest !== undefined && desc.size !== undefined) verifyBytes(desc as Descriptor, bytes, location)
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  // JSON is UTF-8 (RFC 8259 §8.1); decoding would silently turn bad bytes into U+FFFD, so two
  // different signed manifests could show the same annotations.
  if (!isUtf8(buf)) throw new OciError('INVALID_MANIFEST', `${where} is not valid UTF-8`)
  let json: unknown
  try {
    json = JSON.parse(buf.toString('utf8'))
  } catch (err) {
    throw new OciError('INVALID_MANIFEST', `${where} is not valid JSON: ${(err as Error).message}`)
  }
  if (!isPlainObject(json)) throw new OciError('INVALID_MANIFEST', `${where} is not a JSON object`)
  const p = new Problems()
  if (json.schemaVersion !== 2) p.add('/schemaVersion', `must be 2, got ${shownValue(json.schemaVersion)}`)
  const declared = json.mediaType
  if (declared !== undefined && !isValidMediaType(declared)) p.add('/mediaType', 'must be a media type')
  const expected = desc?.mediaType
  if (typeof declared === 'string' && expected !== undefined && isGraphNodeType(expected) && declared !== expected) {
    p.add('/mediaType', `is "${declared}" but the descriptor says "${expected}"`)
  }
  const hasManifests = 'manifests' in json
  const hasImageFields = 'config' in json || 'layers' in json
  if (hasManifests && hasImageFields) p.add('', 'has both "manifests" and "config"/"layers": ambiguous manifest refused')
  const mediaType =
    typeof declared === 'string' && isGraphNodeType(declared)
      ? declared
      : expected !== undefined && isGraphNodeType(expected)
        ? expected
        : hasManifests
          ? MT.ociIndex
          : MT.ociManifest
  const artifactType = json.artifactType
  if (artifactType !== undefined && !isValidMediaType(artifactType)) p.add('/artifactType', 'must be a media type')
  const annotations = checkAnnotations(json.annotations, '/annotations', p)
  const subject = json.subject === undefined ? undefined : checkDescriptor(json.subject, '/subject', p)

  if (isIndexType(mediaType)) {
    if (hasImageFields) p.add('', `an index (${mediaType}) must not have "config" or "layers"`)
    const manifests: Descriptor[] = []
    if (!Array.isArray(json.manifests)) p.add('/manifests', 'is required and must be an array')
    else json.manifests.forEach((m, i) => {
      const d = checkDescriptor(m, `/manifests/${i}`, p)
      if (d) manifests.push(d)
    })
    if (p.list.length > 0) throw manifestError(`${where} is not a valid image index`, p.list)
    const index: ImageIndex = {schemaVersion: 2, manifests}
    if (typeof declared === 'string') index.mediaType = declared
    if (artifactType !== undefined) index.artifactType = artifactType as string
    if (subject) index.subject = subject
    if (annotations) index.annotations = annotations
    return {kind: 'index', mediaType, index}
  }

  if (hasManifests) p.add('/manifests', `an image manifest (${mediaType}) must not have "manifests"`)
  const config = json.config === undefined ? (p.add('/config', 'is required'), undefined) : checkDescriptor(json.config, '/config', p)
  const layers: Descriptor[] = []
  if (!Array.isArray(json.layers)) p.add('/layers', 'is required and must be an array')
  else json.layers.forEach((l, i) => {
    const d = checkDescriptor(l, `/layers/${i}`, p)
    if (d) layers.push(d)
  })
  if (p.list.length > 0 || !config) throw manifestError(`${where} is not a valid image manifest`, p.list)
  const manifest: ImageManifest = {schemaVersion: 2, config, layers}
  if (typeof declared === 'string') manifest.mediaType = declared
  if (artifactType !== undefined) manifest.artifactType = artifactType as string
  if (subject) manifest.subject = subject
  if (annotations) manifest.annotations = annotations
  return {kind: 'manifest', mediaType, manifest}
}

/**
 * The nodes a manifest points down to: config then layers for a manifest, the listed manifests for
 * an index. `subject` is NOT a successor: a referrer points up at its subject, and copying a
 * referrer must not drag the subject along (it is reached the other way, via predecessors).
 * Content of any other media type has no successors.
 */
export function successors(manifestBytes: Uint8Array, desc: Descriptor): Descriptor[] {
  if (!isGraphNodeType(desc.mediaType)) return []
  return successorsOf(parseManifest(manifestBytes, desc))
}

export function successorsOf(parsed: ParsedManifest): Descriptor[] {
  return parsed.kind === 'manifest' ? [parsed.manifest.config, ...parsed.manifest.layers] : [...parsed.index.manifests]
}

export function subjectOf(parsed: ParsedManifest): Descriptor | undefined {
  return parsed.kind === 'manifest' ? parsed.manifest.subject : parsed.index.subject
}

/**
 * The descriptor a referrers listing shows for `desc` (distribution-spec v1.1 "listing referrers"):
 * `artifactType` from the manifest, else its config media type; the manifest's annotations.
 */
export function referrerDescriptor(desc: Descriptor, parsed: ParsedManifest): Descriptor {
  const out: Descriptor = {mediaType: parsed.mediaType, digest: desc.digest, size: desc.size}
  const doc = parsed.kind === 'manifest' ? parsed.manifest : parsed.index
  const artifactType = doc.artifactType ?? (parsed.kind === 'manifest' ? parsed.manifest.config.mediaType : undefined)
  if (artifactType !== undefined) out.artifactType = artifactType
  if (doc.annotations && Object.keys(doc.annotations).length > 0) out.annotations = {...doc.annotations}
  return out
}

/**
 * Guesses the media type of content that may be a manifest (used when a layout gives a digest
 * without a descriptor). Returns undefined for anything that is not a manifest or index.
 */
export function sniffManifestMediaType(bytes: Uint8Array): string | undefined {
  if (bytes.byteLength > MAX_MANIFEST_BYTES || bytes.byteLength < 2) return undefined
  const first = bytes[0]
  if (first !== 0x7b /* { */ && first !== 0x20 && first !== 0x0a && first !== 0x09 && first !== 0x0d) return undefined
  try {
    return parseManifest(bytes).mediaType
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Deterministic packing

export interface PackManifestOptions {
  /** Required when the config is the empty descriptor (image-spec 1.1 artifact guidance). */
  artifactType?: string
  /** Defaults to the empty descriptor `{}` (application/vnd.oci.empty.v1+json). */
  config?: Descriptor
  layers: Descriptor[]
  annotations?: Record<string, string>
  subject?: Descriptor
  /**
   * RFC 3339 time written as `org.opencontainers.image.created`. Never taken from the clock:
   * the caller pins it (SOURCE_DATE_EPOCH or the bundle) so the same input gives the same digest.
   */
  created?: string
}

export interface PackIndexOptions {
  manifests: Descriptor[]
  artifactType?: string
  annotations?: Record<string, string>
  subject?: Descriptor
  created?: string
}

export interface Packed {
  /** The exact bytes to push; digests are over these bytes, never re-serialise them. */
  bytes: Buffer
  /** mediaType, digest, size, plus artifactType and annotations when set (what a referrers listing shows). */
  descriptor: Descriptor
}

function sortedRecord(r: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(r).sort()) out[k] = r[k]
  return out
}

const PLATFORM_ORDER = ['architecture', 'os', 'os.version', 'os.features', 'variant', 'features']

/** A descriptor in a fixed key order (that of image-spec's Go struct, so oras-go output reads the same). */
function orderedDescriptor(d: Descriptor): Record<string, unknown> {
  const o: Record<string, unknown> = {mediaType: d.mediaType, digest: d.digest, size: d.size}
  if (d.urls !== undefined) o.urls = [...d.urls]
  if (d.annotations !== undefined && Object.keys(d.annotations).length > 0) o.annotations = sortedRecord(d.annotations)
  if (d.data !== undefined) o.data = d.data
  if (d.platform !== undefined) {
    const p: Record<string, unknown> = {}
    for (const k of PLATFORM_ORDER) if (k in d.platform) p[k] = d.platform[k]
    for (const k of Object.keys(d.platform).sort()) if (!(k in p)) p[k] = d.platform[k]
    o.platform = p
  }
  if (d.artifactType !== undefined) o.artifactType = d.artifactType
  return o
}

function packAnnotations(annotations: Record<string, string> | undefined, created: string | undefined): Record<string, string> | undefined {
  const out: Record<string, string> = {...annotations}
  if (created !== undefined) {
    if (!RFC3339_RE.test(created)) throw new OciError('INVALID_MANIFEST', `created "${created}" is not an RFC 3339 date-time`)
    out[ANNOTATION.created] = created
  }
  const p = new Problems()
  checkAnnotations(out, '/annotations', p)
  if (p.list.length > 0) throw manifestError('invalid annotations', p.list)
  return Object.keys(out).length > 0 ? (sortedRecord(out) as Record<string, string>) : undefined
}

function finish(mediaType: string, doc: Record<string, unknown>, artifactType?: string): Packed {
  const bytes = Buffer.from(JSON.stringify(doc), 'utf8')
  if (bytes.byteLength > MAX_MANIFEST_BYTES) throw new OciError('MANIFEST_TOO_LARGE', `packed ${mediaType} has ${bytes.byteLength} bytes, more than the ${MAX_MANIFEST_BYTES}-byte limit`)
  const descriptor: Descriptor = {mediaType, digest: sha256Digest(bytes), size: bytes.byteLength}
  if (artifactType !== undefined) descriptor.artifactType = artifactType
  if (doc.annotations !== undefined) descriptor.annotations = {...(doc.annotations as Record<string, string>)}
  return {bytes, descriptor}
}

/**
 * Packs an OCI image manifest (artifact) deterministically: fixed key order, sorted annotations,
 * no whitespace, no clock. Same options, same bytes.
 */
export function packManifest(opts: PackManifestOptions): Packed {
  const config = opts.config ?? {...EMPTY_DESCRIPTOR}
  assertDescriptor(config, 'config descriptor')
  opts.layers.forEach((l, i) => assertDescriptor(l, `layer descriptor ${i}`))
  if (opts.subject !== undefined) assertDescriptor(opts.subject, 'subject descriptor')
  if (opts.artifactType !== undefined && !isValidMediaType(opts.artifactType)) {
    throw new OciError('INVALID_MANIFEST', `artifactType "${opts.artifactType}" is not a media type`)
  }
  if (config.mediaType === MT.ociEmpty && opts.artifactType === undefined) {
    throw new OciError('INVALID_MANIFEST', 'artifactType is required when the config is the empty descriptor (image-spec 1.1)')
  }
  const doc: Record<string, unknown> = {schemaVersion: 2, mediaType: MT.ociManifest}
  if (opts.artifactType !== undefined) doc.artifactType = opts.artifactType
  doc.config = orderedDescriptor(config)
  doc.layers = opts.layers.map(orderedDescriptor)
  if (opts.subject !== undefined) doc.subject = orderedDescriptor(opts.subject)
  const annotations = packAnnotations(opts.annotations, opts.created)
  if (annotations) doc.annotations = annotations
  return finish(MT.ociManifest, doc, opts.artifactType)
}

/** Packs an OCI image index deterministically (entries kept in the given order). */
export function packIndex(opts: PackIndexOptions): Packed {
  opts.manifests.forEach((m, i) => assertDescriptor(m, `manifest descriptor ${i}`))
  if (opts.subject !== undefined) assertDescriptor(opts.subject, 'subject descriptor')
  if (opts.artifactType !== undefined && !isValidMediaType(opts.artifactType)) {
    throw new OciError('INVALID_MANIFEST', `artifactType "${opts.artifactType}" is not a media type`)
  }
  const doc: Record<string, unknown> = {schemaVersion: 2, mediaType: MT.ociIndex}
  if (opts.artifactType !== undefined) doc.artifactType = opts.artifactType
  doc.manifests = opts.manifests.map(orderedDescriptor)
  if (opts.subject !== undefined) doc.subject = orderedDescriptor(opts.subject)
  const annotations = packAnnotations(opts.annotations, opts.created)
  if (annotations) doc.annotations = annotations
  return finish(MT.ociIndex, doc, opts.artifactType)
}

/** Serialises a descriptor with the same fixed key order the packers use (for index.json entries). */
export function descriptorJson(d: Descriptor): Record<string, unknown> {
  return orderedDescriptor(d)
}

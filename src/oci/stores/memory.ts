/**
 * In-memory content store (oras-go `content/memory`): where push packs an artifact before copying
 * it out, and the reference store the conformance suite and copy tests compare the others to.
 */
import type {Readable} from 'node:stream'

import {assertDigest, MAX_MANIFEST_BYTES} from '../content.js'
import {OciError} from '../errors.js'
import {throwIfAborted} from '../abort.js'
import {isGraphNodeType, parseManifest, referrerDescriptor, sniffManifestMediaType, subjectOf} from '../manifest.js'
import type {Descriptor, GraphTarget, OpOptions, TagLister} from '../target.js'
import {assertDescriptorShape, assertTag, discardBody, isDigestRef, predecessorList, readVerified, verifiedReadable} from './common.js'

export interface MemoryStoreOptions {
  /** Shown in messages; default `memory`. */
  location?: string
  /**
   * The digest → bytes map backing the store. Pass your own to share content between stores or to
   * inspect it; bytes put there directly are still verified on every fetch.
   */
  blobs?: Map<string, Buffer>
}

export class MemoryStore implements GraphTarget, TagLister {
  readonly location: string
  private readonly blobs: Map<string, Buffer>
  /** What we know about pushed content beyond its bytes: media type, artifact type. */
  private readonly meta = new Map<string, Descriptor>()
  private readonly tagMap = new Map<string, Descriptor>()
  /** subject digest → referrer digest → referrer descriptor. */
  private readonly referrers = new Map<string, Map<string, Descriptor>>()

  constructor(opts: MemoryStoreOptions = {}) {
    this.location = opts.location ?? 'memory'
    this.blobs = opts.blobs ?? new Map()
  }

  async resolve(ref: string, opts: OpOptions = {}): Promise<Descriptor> {
    throwIfAborted(opts.signal, `resolve ${ref}`)
    if (isDigestRef(ref)) {
      assertDigest(ref, 'digest reference')
      const data = this.blobs.get(ref)
      if (data === undefined) throw new OciError('NOT_FOUND', `${this.location}@${ref}: manifest not found`)
      const known = this.meta.get(ref)
      const mediaType = known && isGraphNodeType(known.mediaType) ? known.mediaType : sniffManifestMediaType(data)
      if (mediaType === undefined) throw new OciError('NOT_FOUND', `${this.location}@${ref}: content exists but is not a manifest or index`)
      return {...(known ?? {}), mediaType, digest: ref, size: data.byteLength}
    }
    const desc = this.tagMap.get(ref)
    if (!desc) throw new OciError('NOT_FOUND', `${this.location}:${ref}: tag not found`, {suggestions: ['list the tags that exist with `aibox tags`']})
    return {...desc}
  }

  async exists(desc: Descriptor, opts: OpOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal, `exists ${desc.digest}`)
    assertDigest(desc.digest)
    return this.blobs.get(desc.digest)?.byteLength === desc.size
  }

  async fetch(desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    throwIfAborted(opts.signal, `fetch ${desc.digest}`)
    assertDigest(desc.digest)
    const data = this.blobs.get(desc.digest)
    if (data === undefined) throw new OciError('NOT_FOUND', `${this.location}: ${desc.digest} not found`)
    return verifiedReadable(desc, data, this.location)
  }

  async push(expected: Descriptor, body: Readable | Uint8Array, opts: OpOptions = {}): Promise<void> {
    assertDescriptorShape(expected)
    if (this.blobs.get(expected.digest)?.byteLength === expected.size) {
      discardBody(body)
      return
    }
    const node = isGraphNodeType(expected.mediaType)
    const data = await readVerified(expected, body, node ? MAX_MANIFEST_BYTES : Number.MAX_SAFE_INTEGER, this.location, opts.signal)
    const meta: Descriptor = {mediaType: expected.mediaType, digest: expected.digest, size: expected.size}
    if (node) {
      // Registries refuse invalid manifests; so do we, before anything is stored.
      const parsed = parseManifest(data, expected, this.location)
      const subject = subjectOf(parsed)
      const ref = referrerDescriptor(expected, parsed)
      if (ref.artifactType !== undefined) meta.artifactType = ref.artifactType
      if (subject) {
        let m = this.referrers.get(subject.digest)
        if (!m) this.referrers.set(subject.digest, (m = new Map()))
        m.set(expected.digest, ref)
      }
    } else if (expected.artifactType !== undefined) meta.artifactType = expected.artifactType
    throwIfAborted(opts.signal, `push of ${expected.digest}`)
    this.blobs.set(expected.digest, Buffer.from(data))
    this.meta.set(expected.digest, meta)
  }

  async tag(desc: Descriptor, tag: string, opts: OpOptions = {}): Promise<void> {
    throwIfAborted(opts.signal, `tag ${tag}`)
    assertTag(tag)
    assertDigest(desc.digest)
    const data = this.blobs.get(desc.digest)
    if (data === undefined) throw new OciError('NOT_FOUND', `${this.location}: cannot tag ${tag}: ${desc.digest} not found`, {suggestions: ['push the manifest before tagging it']})
    const known = this.meta.get(desc.digest)
    const mediaType = isGraphNodeType(desc.mediaType) ? desc.mediaType : known?.mediaType
    if (mediaType === undefined || !isGraphNodeType(mediaType)) {
      throw new OciError('INVALID_REFERENCE', `${this.location}: cannot tag ${tag}: ${desc.digest} is not a manifest or index`)
    }
    const out: Descriptor = {mediaType, digest: desc.digest, size: data.byteLength}
    const artifactType = desc.artifactType ?? known?.artifactType
    if (artifactType !== undefined) out.artifactType = artifactType
    this.tagMap.set(tag, out)
  }

  async predecessors(desc: Descriptor, opts: OpOptions & {artifactType?: string} = {}): Promise<Descriptor[]> {
    throwIfAborted(opts.signal, `predecessors of ${desc.digest}`)
    assertDigest(desc.digest)
    const found = [...(this.referrers.get(desc.digest)?.values() ?? [])].filter((d) => this.blobs.has(d.digest))
    return predecessorList(found, opts.artifactType)
  }

  async tags(opts: OpOptions = {}): Promise<string[]> {
    throwIfAborted(opts.signal, 'list tags')
    return [...this.tagMap.keys()].sort()
  }
}

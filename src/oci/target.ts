/**
 * The storage abstraction every medium implements (after oras-go's content model,
 * style.md §2): an artifact is a rooted DAG of descriptors in a content-addressed store.
 * Memory, OCI layout directory, OCI layout tar and remote registry repository are all
 * Targets, and one `copy` engine moves graphs between any two of them.
 */
import type {Readable} from 'node:stream'

/** OCI content descriptor (image-spec descriptor.md). */
export interface Descriptor {
  mediaType: string
  /** `sha256:<64 hex>`; other algorithms are refused. */
  digest: string
  size: number
  artifactType?: string
  annotations?: Record<string, string>
  /** Embedded content (base64), image-spec 1.1. Never trusted without a digest check. */
  data?: string
  urls?: string[]
  platform?: Record<string, unknown>
}

export interface OpOptions {
  signal?: AbortSignal
}

/** Read access to content. */
export interface ReadOnlyTarget {
  /** Human-readable location for messages, e.g. `oci:/tmp/layout` or `127.0.0.1:5000/policies/org`. Never contains secrets. */
  readonly location: string
  /** Tag or digest (`sha256:…`) → descriptor of the manifest/index it names. NotFound (OciError NOT_FOUND) when absent. */
  resolve(ref: string, opts?: OpOptions): Promise<Descriptor>
  exists(desc: Descriptor, opts?: OpOptions): Promise<boolean>
  /**
   * Content of `desc`, streamed. The stream is verified as it is read: it errors with
   * DIGEST_MISMATCH or SIZE_MISMATCH at (or before) its end, and never yields more than
   * `desc.size` bytes. NOT_FOUND when absent.
   */
  fetch(desc: Descriptor, opts?: OpOptions): Promise<Readable>
}

/** Read/write access to content. */
export interface Target extends ReadOnlyTarget {
  /**
   * Stores `body` as the content of `expected`, verifying digest and size while writing;
   * atomic (nothing visible on failure). Pushing content that already exists is a no-op.
   */
  push(expected: Descriptor, body: Readable | Uint8Array, opts?: OpOptions): Promise<void>
  /** Points `tag` at an existing manifest/index. */
  tag(desc: Descriptor, tag: string, opts?: OpOptions): Promise<void>
}

/** Finds the manifests whose `subject` is `desc` (OCI 1.1 referrers). */
export interface PredecessorFinder {
  predecessors(desc: Descriptor, opts?: OpOptions & {artifactType?: string}): Promise<Descriptor[]>
}

export interface ReadOnlyGraphTarget extends ReadOnlyTarget, PredecessorFinder {}
export interface GraphTarget extends Target, PredecessorFinder {}

/** Lists tags (sorted client-side: registries return them unsorted, registry-notes.md §8.12). */
export interface TagLister {
  tags(opts?: OpOptions): Promise<string[]>
}

/**
 * Cross-repository blob mount (distribution-spec v1.1 "mounting a blob from another repository"),
 * offered by registry repositories. The copy engine tries it before transferring a blob.
 */
export interface Mounter {
  /**
   * Makes `desc` present in this repository by mounting it from `fromRepo` on the same registry.
   * Resolves true when the blob is now present without transfer; false when the registry declined
   * (it answered with an upload session, which the implementation cancels or keeps to itself), in
   * which case the caller pushes the blob normally.
   */
  mount(desc: Descriptor, fromRepo: string, opts?: OpOptions): Promise<boolean>
}

export function isMounter(t: ReadOnlyTarget): t is Target & Mounter {
  return typeof (t as Partial<Mounter>).mount === 'function'
}

export function isGraphTarget(t: ReadOnlyTarget): t is ReadOnlyGraphTarget {
  return typeof (t as Partial<PredecessorFinder>).predecessors === 'function'
}

export function isTagLister(t: ReadOnlyTarget): t is ReadOnlyTarget & TagLister {
  return typeof (t as Partial<TagLister>).tags === 'function'
}

/** Options of `RemoteRepository.mount` beyond `Mounter`'s. */
export interface MountOptions extends OpOptions {
  /**
   * When the registry cannot mount (it opens an upload session instead), upload the blob from
   * this content into that session rather than cancelling it (the result is then false).
   */
  getContent?: () => Promise<Readable | Uint8Array>
}

/** Pushes a manifest under a tag in one request (instead of push by digest, then tag). */
export interface ReferencePusher {
  pushReference(expected: Descriptor, body: Readable | Uint8Array, reference: string, opts?: OpOptions): Promise<void>
}

/**
 * A store whose referrers are found through a listing (an OCI layout's index.json) that is written
 * after the manifest itself: a referrer stored by a writer killed in between is present but not
 * listed, so the copy engine, which skips what is present, asks the store to list it.
 */
export interface ReferrerRelister {
  relistReferrer(desc: Descriptor, opts?: OpOptions): Promise<void>
}

export function isReferrerRelister(t: ReadOnlyTarget): t is Target & ReferrerRelister {
  return typeof (t as Partial<ReferrerRelister>).relistReferrer === 'function'
}

/** Deletes content. Registries may refuse (405 when deletes are disabled). */
export interface Deleter {
  delete(desc: Descriptor, opts?: OpOptions): Promise<void>
}

export function isReferencePusher(t: ReadOnlyTarget): t is Target & ReferencePusher {
  return typeof (t as Partial<ReferencePusher>).pushReference === 'function'
}

/**
 * Opening the medium a reference names (architecture.md "References"): a registry repository,
 * an OCI layout directory (`oci:DIR[:tag]`, the embedded default that needs no server) or a
 * layout tar (`oci-archive:FILE[:tag]`, read-only here). Every distribute function takes a
 * reference string and gets a Target from here, so each works on every medium.
 */
import {InputError} from '../errors.js'
import {OciError} from '../oci/errors.js'
import {type Reference, formatReference, parseReference} from '../oci/reference.js'
import {LayoutDirStore} from '../oci/stores/layout-dir.js'
import {LayoutTarStore} from '../oci/stores/layout-tar.js'
import {RemoteRepository, type RemoteRepositoryOptions} from '../oci/stores/remote.js'
import type {GraphTarget, ReadOnlyGraphTarget, TagLister} from '../oci/target.js'

export interface OpenOptions {
  /** Connection options for registries (TLS, plain HTTP, credentials, retries). */
  registry?: RemoteRepositoryOptions
}

export interface OpenedTarget<T> {
  /** The reference as given. */
  input: string
  reference: Reference
  target: T & TagLister
  /** The tag or digest the reference names (digest first), if any. */
  selector?: string
  /** A canonical string for messages and audit entries. */
  display: string
  close(): Promise<void>
}

function selectorOf(r: Reference): string | undefined {
  return r.digest ?? r.tag
}

/** Opens a reference for reading: registry, `oci:DIR` (must exist) or `oci-archive:FILE`. */
export async function openForRead(input: string, options: OpenOptions = {}): Promise<OpenedTarget<ReadOnlyGraphTarget>> {
  const reference = parseReference(input)
  const base = {input, reference, selector: selectorOf(reference), display: formatReference(reference)}
  if (reference.kind === 'registry') {
    const repo = new RemoteRepository(reference, options.registry)
    return {...base, target: repo, close: () => repo.close()}
  }
  if (reference.format === 'dir') {
    const store = await LayoutDirStore.open(reference.path, {readOnly: true})
    return {...base, target: store, close: async () => {}}
  }
  const tar = await LayoutTarStore.open(reference.path)
  return {...base, target: tar, close: () => tar.close()}
}

/** Opens a reference for writing: registry, or `oci:DIR` (created when missing). */
export async function openForWrite(input: string, options: OpenOptions = {}): Promise<OpenedTarget<GraphTarget>> {
  const reference = parseReference(input)
  const base = {input, reference, selector: selectorOf(reference), display: formatReference(reference)}
  if (reference.kind === 'registry') {
    const repo = new RemoteRepository(reference, options.registry)
    return {...base, target: repo, close: () => repo.close()}
  }
  if (reference.format === 'tar') {
    throw new InputError('READ_ONLY_DESTINATION', `${input}: an oci-archive is read-only here`, {
      suggestions: ['write to an OCI layout directory (oci:DIR[:tag]) or a registry; sealed archives are made with aibox export'],
    })
  }
  const store = await LayoutDirStore.open(reference.path, {create: true})
  return {...base, target: store, close: async () => {}}
}

/** The tag or digest to read, or a clear error when the reference names neither. */
export function requireSelector(opened: {input: string; selector?: string}): string {
  if (opened.selector === undefined) {
    throw new OciError('INVALID_REFERENCE', `${opened.input} names no tag or digest`, {
      suggestions: [`add a tag (${opened.input}:stable) or a digest (${opened.input}@sha256:…); aibox tags ${opened.input} lists the tags`],
    })
  }
  return opened.selector
}

/** The reference without its tag/digest, plus a selector: `registry/repo@sha256:…` / `oci:DIR@sha256:…`. */
export function withDigest(reference: Reference, digest: string): string {
  return formatReference({...reference, tag: undefined, digest})
}

export function withTag(reference: Reference, tag: string): string {
  return formatReference({...reference, tag, digest: undefined})
}

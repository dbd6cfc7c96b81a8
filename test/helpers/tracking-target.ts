/**
 * A call-counting wrapper around any target (oras-go's `storageTracker`, copy_test.go): proves
 * that copy skipped what the destination had, fetched nothing twice, and kept its concurrency
 * bound. It records every call in order, so tests can also assert "blobs before manifest".
 */
import type {Readable} from 'node:stream'

import type {Descriptor, GraphTarget, OpOptions, ReadOnlyTarget, TagLister, Target} from '../../src/oci/index.js'
import {isGraphTarget, isTagLister} from '../../src/oci/index.js'

export type TrackedOp = 'resolve' | 'exists' | 'fetch' | 'push' | 'tag' | 'predecessors' | 'tags'

export interface TrackedCall {
  op: TrackedOp
  /** digest, or the reference for resolve/tag */
  what: string
}

export class TrackingTarget implements GraphTarget, TagLister {
  readonly calls: TrackedCall[] = []
  /** Most push() calls that were in flight at the same time. */
  maxConcurrentPushes = 0
  private pushing = 0

  constructor(readonly inner: ReadOnlyTarget) {}

  get location(): string {
    return this.inner.location
  }

  count(op: TrackedOp, what?: string): number {
    return this.calls.filter((c) => c.op === op && (what === undefined || c.what === what)).length
  }

  /** Digests pushed, in push order. */
  pushed(): string[] {
    return this.calls.filter((c) => c.op === 'push').map((c) => c.what)
  }

  reset(): void {
    this.calls.length = 0
    this.maxConcurrentPushes = 0
  }

  async resolve(ref: string, opts?: OpOptions): Promise<Descriptor> {
    this.calls.push({op: 'resolve', what: ref})
    return this.inner.resolve(ref, opts)
  }

  async exists(desc: Descriptor, opts?: OpOptions): Promise<boolean> {
    this.calls.push({op: 'exists', what: desc.digest})
    return this.inner.exists(desc, opts)
  }

  async fetch(desc: Descriptor, opts?: OpOptions): Promise<Readable> {
    this.calls.push({op: 'fetch', what: desc.digest})
    return this.inner.fetch(desc, opts)
  }

  async push(expected: Descriptor, body: Readable | Uint8Array, opts?: OpOptions): Promise<void> {
    this.calls.push({op: 'push', what: expected.digest})
    this.pushing++
    this.maxConcurrentPushes = Math.max(this.maxConcurrentPushes, this.pushing)
    try {
      await (this.inner as Target).push(expected, body, opts)
    } finally {
      this.pushing--
    }
  }

  async tag(desc: Descriptor, tag: string, opts?: OpOptions): Promise<void> {
    this.calls.push({op: 'tag', what: tag})
    return (this.inner as Target).tag(desc, tag, opts)
  }

  async predecessors(desc: Descriptor, opts?: OpOptions & {artifactType?: string}): Promise<Descriptor[]> {
    this.calls.push({op: 'predecessors', what: desc.digest})
    if (!isGraphTarget(this.inner)) throw new Error(`${this.inner.location} has no predecessors`)
    return this.inner.predecessors(desc, opts)
  }

  async tags(opts?: OpOptions): Promise<string[]> {
    this.calls.push({op: 'tags', what: ''})
    if (!isTagLister(this.inner)) throw new Error(`${this.inner.location} cannot list tags`)
    return this.inner.tags(opts)
  }
}

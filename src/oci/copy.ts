/**
 * The one transfer engine (architecture.md "One transfer engine", oras-go `copy.go`): push, pull,
 * export, import and cache fill are all `copy` between two Targets.
 *
 * - Successors before the node: a manifest is pushed only after its config and layers (and an
 *   index only after its manifests), so the destination never holds a node with missing children.
 * - A node the destination already has is skipped together with its whole sub-DAG.
 * - Every read is verified: sources return verifying streams, manifests are re-verified before
 *   they are parsed, and the destination verifies again while writing.
 * - With `referrers`, every manifest whose `subject` is a copied manifest comes along,
 *   recursively (signatures of signatures), after the manifest it refers to.
 * - Failures are CopyErrors saying which side failed, on which reference, and what to try.
 */
import {type Readable, Transform} from 'node:stream'

import {AiboxError} from '../errors.js'
import {fetchAll, verifyBytes} from './content.js'
import {CopyError, type CopyOrigin, OciError} from './errors.js'
import {abortError, fsError} from './fsutil.js'
import {isGraphNodeType, parseManifest, successorsOf} from './manifest.js'
import {isDigestRef, refString} from './stores/common.js'
import type {PushOptions} from './stores/remote.js'
import {type Descriptor, isGraphTarget, isMounter, isReferencePusher, isReferrerRelister, type ReadOnlyTarget, type Target} from './target.js'

export interface CopyGraphOptions {
  /** Most transfers in flight at once (default 3). */
  concurrency?: number
  signal?: AbortSignal
  /** Also copy every referrer (manifest whose `subject` is a copied manifest), recursively. Needs a source with `predecessors`. */
  referrers?: boolean
  /** Bytes of `desc` transferred so far (cumulative), called as data flows. */
  onProgress?: (desc: Descriptor, bytes: number) => void
  /** `desc` is now at the destination (pushed or mounted). */
  onCopied?: (desc: Descriptor) => void
  /** `desc` was already at the destination: it and everything below it were skipped. */
  onSkipped?: (desc: Descriptor) => void
  /** `desc` was mounted from `fromRepo` instead of transferred. */
  onMounted?: (desc: Descriptor, fromRepo: string) => void
  /** Repositories of the destination's registry to try mounting blobs from (when the destination is a Mounter). */
  mountFrom?: string[] | ((desc: Descriptor) => string[])
  /** Refuse graphs with more nodes than this (default 100,000): a hostile source must not make us walk forever. */
  maxNodes?: number
}

export type CopyOptions = CopyGraphOptions

const DEFAULT_CONCURRENCY = 3
const DEFAULT_MAX_NODES = 100_000

/**
 * Resolves `srcRef` in `src`, copies its graph into `dst` and, when `dstRef` is a tag, tags the
 * root there (last, so the tag never points at an incomplete graph). `dstRef` may be empty (no tag)
 * or a digest (which must be the root's). Returns the root descriptor.
 */
export async function copy(src: ReadOnlyTarget, srcRef: string, dst: Target, dstRef: string, opts: CopyOptions = {}): Promise<Descriptor> {
  const engine = new Engine(src, dst, opts)
  return engine.guard(async () => {
    const root = await engine.sourceOp('resolve', srcRef, () => src.resolve(srcRef, {signal: engine.signal}))
    if (dstRef !== '' && isDigestRef(dstRef) && dstRef !== root.digest) {
      throw new OciError('INVALID_REFERENCE', `destination reference ${dstRef} is a digest that differs from the source's ${root.digest}`, {
        suggestions: ['give a tag as the destination reference, or the digest the source resolves to'],
      })
    }
    // Without referrers the root is the last node pushed, so a registry that can push a manifest
    // under a tag does it in one request; with referrers the tag waits until they are copied too.
    const tag = dstRef !== '' && !isDigestRef(dstRef) ? dstRef : undefined
    if (tag !== undefined && !opts.referrers && isReferencePusher(dst)) engine.rootTag = {digest: root.digest, tag}
    await engine.copyGraph(root)
    if (tag !== undefined && !engine.rootTagged) {
      await engine.destinationOp('tag', tag, () => dst.tag(root, tag, {signal: engine.signal}))
    }
    return root
  })
}

/** Copies the graph rooted at `root` from `src` to `dst` (no tagging). */
export async function copyGraph(src: ReadOnlyTarget, dst: Target, root: Descriptor, opts: CopyGraphOptions = {}): Promise<void> {
  const engine = new Engine(src, dst, opts)
  await engine.guard(() => engine.copyGraph(root))
}

/** A counting semaphore: at most `n` tasks run at once. */
class Limiter {
  private active = 0
  private readonly waiting: Array<() => void> = []
  constructor(private readonly n: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    // A released slot is handed straight to the next waiter, so a newcomer cannot take it in between.
    if (this.active >= this.n) await new Promise<void>((r) => this.waiting.push(r))
    else this.active++
    try {
      return await fn()
    } finally {
      const next = this.waiting.shift()
      if (next) next()
      else this.active--
    }
  }
}

function suggestionsFor(origin: CopyOrigin, code: string, location: string): string[] | undefined {
  switch (code) {
    case 'NOT_FOUND':
      return origin === 'source' ? [`check the reference; list what exists with \`aibox tags ${location}\``] : undefined
    case 'DIGEST_MISMATCH':
    case 'SIZE_MISMATCH':
    case 'INVALID_MANIFEST':
    case 'MANIFEST_TOO_LARGE':
      return origin === 'source'
        ? [`the content served by ${location} does not match its digest: it is corrupt or was tampered with; do not use it, fetch it again from a trusted copy`]
        : [`the destination ${location} stored or returned different bytes; check its storage and retry`]
    case 'UNAUTHORIZED':
    case 'DENIED':
      return [`check your credentials and permissions for ${location} (docker login / --username)`]
    case 'NETWORK':
    case 'TIMEOUT':
    case 'REGISTRY_ERROR':
      return [`${location} is unreachable or failing; retry later (the copy resumes: what was copied is skipped)`]
    case 'IO_ERROR':
      return [`check free disk space and permissions for ${location}`]
    default:
      return undefined
  }
}

class Engine {
  private readonly controller = new AbortController()
  readonly signal: AbortSignal = this.controller.signal
  private readonly limiter: Limiter
  private readonly visits = new Map<string, Promise<void>>()
  private firstError: AiboxError | undefined
  private nodes = 0
  /** Push this root manifest with its tag in one request (ReferencePusher destinations). */
  rootTag?: {digest: string; tag: string}
  rootTagged = false

  constructor(
    private readonly src: ReadOnlyTarget,
    private readonly dst: Target,
    private readonly opts: CopyGraphOptions,
  ) {
    const n = opts.concurrency ?? DEFAULT_CONCURRENCY
    if (!Number.isInteger(n) || n < 1) throw new OciError('UNSUPPORTED', `copy concurrency must be a positive integer, got ${n}`)
    this.limiter = new Limiter(n)
  }

  /** Links the caller's AbortSignal, and turns an abort into one ABORTED error whatever got interrupted. */
  async guard<T>(fn: () => Promise<T>): Promise<T> {
    const outer = this.opts.signal
    if (outer?.aborted) throw abortError(outer, 'copy')
    const onAbort = () => this.controller.abort(outer?.reason)
    outer?.addEventListener('abort', onAbort, {once: true})
    try {
      return await fn()
    } catch (err) {
      if (outer?.aborted) throw abortError(outer, `copy from ${this.src.location} to ${this.dst.location}`)
      throw this.firstError ?? err
    } finally {
      outer?.removeEventListener('abort', onAbort)
    }
  }

  private wrap(origin: CopyOrigin, op: string, ref: string, err: unknown): AiboxError {
    if (err instanceof CopyError) return err
    const target = origin === 'source' ? this.src : this.dst
    const location = refString(target.location, ref)
    const base = err instanceof AiboxError ? err : fsError(err, op, location)
    if (base instanceof OciError && base.code === 'ABORTED') return base
    const wrapped = new CopyError(origin, op, location, base)
    if (!wrapped.suggestions) {
      const s = suggestionsFor(origin, base.code, target.location)
      if (s) wrapped.suggestions = s
    }
    return wrapped
  }

  async sourceOp<T>(op: string, ref: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw this.wrap('source', op, ref, err)
    }
  }

  async destinationOp<T>(op: string, ref: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw this.wrap('destination', op, ref, err)
    }
  }

  /** Records the first failure and stops everything else in flight. */
  private fail(err: unknown): void {
    if (this.firstError === undefined && err instanceof AiboxError && !(err instanceof OciError && err.code === 'ABORTED')) {
      this.firstError = err
    }
    if (!this.controller.signal.aborted) this.controller.abort(err)
  }

  /** Waits for every task (no write keeps running after we return); throws the first failure. */
  private async all(tasks: Array<Promise<void>>): Promise<void> {
    const results = await Promise.allSettled(tasks)
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) throw this.firstError ?? failed.reason
  }

  private checkAborted(): void {
    if (this.signal.aborted) throw this.firstError ?? abortError(this.signal, 'copy')
  }

  async copyGraph(root: Descriptor): Promise<void> {
    await this.visit(root)
    if (this.opts.referrers) await this.copyReferrers(root)
  }

  private visit(desc: Descriptor): Promise<void> {
    let p = this.visits.get(desc.digest)
    if (!p) {
      if (++this.nodes > (this.opts.maxNodes ?? DEFAULT_MAX_NODES)) {
        const err = new OciError('INVALID_MANIFEST', `the graph has more than ${this.opts.maxNodes ?? DEFAULT_MAX_NODES} nodes: refused`)
        this.fail(err)
        return Promise.reject(err)
      }
      p = this.copyNode(desc).catch((err) => {
        this.fail(err)
        throw err
      })
      this.visits.set(desc.digest, p)
    }
    return p
  }

  private async copyNode(desc: Descriptor): Promise<void> {
    this.checkAborted()
    const present = await this.limiter.run(() => this.destinationOp('exists', desc.digest, () => this.dst.exists(desc, {signal: this.signal})))
    if (present) {
      // Present, but maybe not listed: a referrer stored by a writer killed before it listed it
      // would otherwise stay invisible to predecessors() for good (crash.test.ts, import).
      const dst = this.dst
      if (isGraphNodeType(desc.mediaType) && isReferrerRelister(dst)) {
        await this.limiter.run(() => this.destinationOp('list', desc.digest, () => dst.relistReferrer(desc, {signal: this.signal})))
      }
      this.opts.onSkipped?.(desc)
      return
    }
    if (isGraphNodeType(desc.mediaType)) {
      const bytes = await this.limiter.run(() => this.fetchManifest(desc))
      const children = await this.sourceOp('parse manifest', desc.digest, async () => successorsOf(parseManifest(bytes, desc, this.src.location)))
      await this.all(children.map((c) => this.visit(c)))
      this.checkAborted()
      const rootTag = this.rootTag?.digest === desc.digest ? this.rootTag.tag : undefined
      const dst = this.dst
      if (rootTag !== undefined && isReferencePusher(dst)) {
        await this.limiter.run(() => this.destinationOp('push', rootTag, () => dst.pushReference(desc, bytes, rootTag, {signal: this.signal})))
        this.rootTagged = true
      } else {
        await this.limiter.run(() => this.destinationOp('push', desc.digest, () => this.dst.push(desc, bytes, {signal: this.signal})))
      }
      this.opts.onProgress?.(desc, desc.size)
      this.opts.onCopied?.(desc)
      return
    }
    await this.limiter.run(() => this.copyBlob(desc))
  }

  /** Reads a manifest whole (size-capped) and verifies it before anyone parses it. */
  private async fetchManifest(desc: Descriptor): Promise<Buffer> {
    return this.sourceOp('fetch', desc.digest, async () => {
      const bytes = await fetchAll(this.src, desc)
      verifyBytes(desc, bytes, this.src.location)
      return bytes
    })
  }

  private mountCandidates(desc: Descriptor): string[] {
    const m = this.opts.mountFrom
    if (!m) return []
    return typeof m === 'function' ? m(desc) : m
  }

  private async copyBlob(desc: Descriptor): Promise<void> {
    this.checkAborted()
    if (isMounter(this.dst)) {
      for (const from of this.mountCandidates(desc)) {
        let mounted = false
        try {
          mounted = await this.dst.mount(desc, from, {signal: this.signal})
        } catch (err) {
          // A failed mount is only a missed shortcut: fall back to transferring the blob.
          if (this.signal.aborted) throw this.wrap('destination', 'mount', desc.digest, err)
        }
        if (mounted) {
          this.opts.onMounted?.(desc, from)
          this.opts.onCopied?.(desc)
          return
        }
      }
    }
    const stream = await this.sourceOp('fetch', desc.digest, () => this.src.fetch(desc, {signal: this.signal}))
    let sourceError: unknown
    let bytes = 0
    const onProgress = this.opts.onProgress
    const counted = new Transform({
      highWaterMark: 1024 * 1024,
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length
        onProgress?.(desc, bytes)
        cb(null, chunk)
      },
    })
    stream.on('error', (err) => {
      sourceError ??= err
      counted.destroy(err)
    })
    // The destination may not be reading yet when the source fails: the failure is reported by
    // push (it reads an errored stream) and by sourceError, never as an unhandled 'error' event.
    counted.on('error', () => {})
    counted.on('close', () => {
      if (!stream.destroyed) stream.destroy()
    })
    stream.pipe(counted)
    // A registry can restart a streamed upload that failed half-way, from a fresh read of the
    // source (RemoteRepository's `reopen`); other targets ignore the option.
    const src = this.src
    const signal = this.signal
    const pushOptions: PushOptions = {
      signal,
      reopen: async () => {
        bytes = 0
        const again = await src.fetch(desc, {signal})
        const recount = new Transform({
          highWaterMark: 1024 * 1024,
          transform(chunk: Buffer, _enc, cb) {
            bytes += chunk.length
            onProgress?.(desc, bytes)
            cb(null, chunk)
          },
        })
        again.on('error', (err) => recount.destroy(err))
        recount.on('close', () => {
          if (!again.destroyed) again.destroy()
        })
        return again.pipe(recount)
      },
    }
    try {
      await this.dst.push(desc, counted as Readable, pushOptions)
    } catch (err) {
      // The destination reports what broke its read; a failure that started in the source is the source's.
      if (sourceError !== undefined) throw this.wrap('source', 'fetch', desc.digest, sourceError)
      throw this.wrap('destination', 'push', desc.digest, err)
    } finally {
      if (!stream.destroyed) stream.destroy()
    }
    this.opts.onCopied?.(desc)
  }

  /**
   * Extended copy: the referrers of `root`, then theirs, and so on. Each referrer's own graph is
   * copied (skipping what exists), after its subject, so a signature never precedes what it signs.
   */
  private async copyReferrers(root: Descriptor): Promise<void> {
    if (!isGraphTarget(this.src)) {
      throw new OciError('UNSUPPORTED', `${this.src.location} cannot list referrers, so they cannot be copied`)
    }
    const src = this.src
    const seen = new Set<string>([root.digest])
    let level: Descriptor[] = [root]
    while (level.length > 0) {
      this.checkAborted()
      const next: Descriptor[] = []
      for (const node of level) {
        if (!isGraphNodeType(node.mediaType)) continue
        const preds = await this.sourceOp('list referrers of', node.digest, () => src.predecessors(node, {signal: this.signal}))
        for (const p of preds) {
          if (seen.has(p.digest)) continue
          seen.add(p.digest)
          next.push(p)
        }
      }
      await this.all(next.map((p) => this.visit(p)))
      level = next
    }
  }
}

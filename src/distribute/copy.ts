/**
 * `aibox copy SRC DST`: one `copy` between any two media (registry, layout directory, layout tar
 * as a source), with the referrers (signatures, approvals, and theirs) unless told otherwise, and
 * cosign's legacy `.sig` tag when the source has one. Nothing is verified here beyond digests:
 * what is copied is exactly what was there, and `aibox pull`/`verify` decide about trust.
 */
import {copy as copyEngine, type CopyGraphOptions} from '../oci/copy.js'
import {isOciError} from '../oci/errors.js'
import type {Descriptor} from '../oci/target.js'
import {policyTenantOf} from './inspect.js'
import {legacySignatureTag} from './referrers.js'
import {type OpenOptions, openForRead, openForWrite, requireSelector, withDigest, withTag} from './targets.js'

export interface CopyPolicyOptions {
  source: string
  destination: string
  /** Copy referrers too (default true). */
  referrers?: boolean
  /** Options for the source and destination registries (default: the same for both). */
  sourceOptions?: OpenOptions
  destinationOptions?: OpenOptions
  onProgress?: CopyGraphOptions['onProgress']
  /**
   * Called with the source manifest and the tenant its policy content names (undefined for a policy
   * without one, or another artifact) before anything is copied: the cross-tenant check (src/tenant).
   */
  authorize?: (root: {reference: string; digest: string; tenant?: string}) => Promise<void>
  signal?: AbortSignal
}

export interface CopyPolicyResult {
  source: string
  destination: string
  digest: string
  mediaType: string
  tag?: string
  /** Nodes pushed, and nodes the destination already had. */
  copied: number
  skipped: number
  bytes: number
  referrers: boolean
  legacySignature?: string
}

export async function copyPolicy(options: CopyPolicyOptions): Promise<CopyPolicyResult> {
  const src = await openForRead(options.source, options.sourceOptions)
  try {
    const sel = requireSelector(src)
    // Before the destination is opened (a layout would be created): nothing is written when refused.
    if (options.authorize) {
      const desc = await src.target.resolve(sel, {signal: options.signal})
      const tenant = await policyTenantOf(src.target, desc, {signal: options.signal})
      await options.authorize({reference: withDigest(src.reference, desc.digest), digest: desc.digest, ...(tenant !== undefined ? {tenant} : {})})
    }
    const dst = await openForWrite(options.destination, options.destinationOptions ?? options.sourceOptions)
    try {
      const referrers = options.referrers ?? true
      // The destination tag: its own, else the source's tag; a digest-only source copies untagged.
      const tag = dst.reference.tag ?? (dst.reference.digest === undefined ? src.reference.tag : undefined)
      const dstRef = dst.reference.digest ?? tag ?? ''
      let copied = 0
      let skipped = 0
      let bytes = 0
      const counted = new Set<string>()
      const hooks: CopyGraphOptions = {
        referrers,
        signal: options.signal,
        onProgress: options.onProgress,
        onCopied: (d: Descriptor) => {
          if (counted.has(d.digest)) return
          counted.add(d.digest)
          copied++
          bytes += d.size
        },
        onSkipped: () => {
          skipped++
        },
      }
      const root = await copyEngine(src.target, sel, dst.target, dstRef, hooks)
      let legacy: string | undefined
      if (referrers) {
        const lt = legacySignatureTag(root.digest)
        let exists = true
        try {
          await src.target.resolve(lt, {signal: options.signal})
        } catch (err) {
          if (!isOciError(err, 'NOT_FOUND')) throw err
          exists = false
        }
        if (exists) {
          await copyEngine(src.target, lt, dst.target, lt, hooks)
          legacy = lt
        }
      }
      return {
        source: withDigest(src.reference, root.digest),
        destination: tag ? withTag(dst.reference, tag) : withDigest(dst.reference, root.digest),
        digest: root.digest,
        mediaType: root.mediaType,
        ...(tag ? {tag} : {}),
        copied,
        skipped,
        bytes,
        referrers,
        ...(legacy ? {legacySignature: legacy} : {}),
      }
    } finally {
      await dst.close()
    }
  } finally {
    await src.close()
  }
}

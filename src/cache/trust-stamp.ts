/**
 * Trust stamps: a cheap fingerprint of what a cached policy was verified against (the trust
 * policy file and the key files it names, or the `--key` files), so that `aibox start` can tell
 * on the hot path, without parsing YAML or loading Sigstore, whether the cached verification
 * still holds. A changed file, another trust source, or a key that has expired or been revoked
 * since (`revalidateAfter`) makes the entry be verified again, offline, from the cache.
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import type {TrustStamp} from './state.js'

function hashFile(file: string): string | undefined {
  try {
    return createHash('sha256').update(fs.readFileSync(file)).digest('hex')
  } catch {
    return undefined
  }
}

function fingerprintOf(kind: TrustStamp['kind'], files: TrustStamp['files']): string {
  return `sha256:${createHash('sha256').update(JSON.stringify([kind, files.map((f) => [f.path, f.sha256])])).digest('hex')}`
}

/**
 * Stamps the current contents of `files` (the first one is the trust policy, or the key files in
 * order). `revalidateAfter` is the earliest future expiry or revocation of a key in the set.
 */
export function makeTrustStamp(kind: TrustStamp['kind'], files: string[], revalidateAfter?: Date): TrustStamp {
  const list = files.map((f) => {
    const abs = path.resolve(f)
    return {path: abs, sha256: hashFile(abs) ?? 'missing'}
  })
  return {kind, files: list, fingerprint: fingerprintOf(kind, list), ...(revalidateAfter ? {revalidateAfter: revalidateAfter.toISOString()} : {})}
}

/**
 * True when `stamp` still describes the configured trust: same kind, same primary files (the trust
 * policy, or the key files), every file unchanged, and no key expiry or revocation passed since.
 * `hashes` memoises file hashes within one start.
 */
export function trustStampHolds(stamp: TrustStamp | undefined, current: {kind: TrustStamp['kind']; files: string[]}, now: Date, hashes = new Map<string, string | undefined>()): boolean {
  if (!stamp || stamp.kind !== current.kind) return false
  if (stamp.revalidateAfter !== undefined && now.getTime() >= Date.parse(stamp.revalidateAfter)) return false
  const primary = current.files.map((f) => path.resolve(f))
  if (current.kind === 'keys') {
    if (primary.length !== stamp.files.length || primary.some((p, i) => stamp.files[i]!.path !== p)) return false
  } else if (stamp.files[0]?.path !== primary[0]) return false
  for (const f of stamp.files) {
    if (!hashes.has(f.path)) hashes.set(f.path, hashFile(f.path))
    if (hashes.get(f.path) !== f.sha256) return false
  }
  return stamp.fingerprint === fingerprintOf(stamp.kind, stamp.files)
}

/**
 * src/cache: the verified-policy cache of `aibox start` (architecture.md `cache/`, issue 5).
 *
 * Stable API (used by `aibox start` and by `aibox import --cache`):
 *
 *   openCache(dir: string, options?: {create?: boolean; lockTimeoutMs?: number}): Promise<PolicyCache>
 *     Opens (creating when missing) the cache directory: `oci/` (an OCI layout of verified
 *     artifacts and their verified referrers), `state.json`, `effective/`.
 *
 *   recordVerified(cache: PolicyCache, input: RecordVerifiedInput): Promise<RecordVerifiedResult>
 *     input = {reference, source, verified, origin: 'registry' | 'import', tier?, descriptor?,
 *              sealDigest?, observedAt?, trust?, trustPolicy?, now?, signal?}
 *     Copies from `source` (any ReadOnlyTarget: registry repository, LayoutDirStore, LayoutTarStore)
 *     the verified policy graph and only the referrers that verified, then records it in
 *     state.json under `reference` (the reference the policy is published under, as an aibox.yaml
 *     names it) under the cache lock. Throws VerificationError POLICY_ROLLBACK (exit 2, nothing
 *     recorded) for an older version (or a changed same version) unless `verified.approvals` holds
 *     a trusted approval with an `incident`; then the result's `rollback` says so (log
 *     `policy.rollback`). Without `trust`, the first `aibox start` that uses the entry verifies
 *     it again, offline, from the cache, against its own trust policy or keys. For an import,
 *     pass `observedAt` = the seal's creation time: staleness counts from it.
 *
 *   cacheKey(reference, baseDir?): the key start looks entries up by (canonical reference; an oci:
 *     layout with an absolute path, resolved against aibox.yaml's directory). Record imports under it.
 *   PolicyCache: readState(), update(fn) (read-modify-write under the lock), entryProblem(entry)
 *     (re-hash its blobs), readBlob, putEffective/readEffective/effectivePath.
 *   checkVersionChange(previous, verified, {trust?, now?}): the anti-rollback rule alone.
 *   makeTrustStamp / trustStampHolds: what an entry was verified against.
 */
export * from './cache.js'
export * from './record.js'
export * from './state.js'
export * from './trust-stamp.js'

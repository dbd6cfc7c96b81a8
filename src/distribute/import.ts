/**
 * `aibox import policies.tar (--to REGISTRY/REPO | --to oci:DIR | --cache) (--trust T | --key PUB)`:
 * the verified import of a sealed export (formats.md "Sealed export (air gap)", issue 6).
 *
 * Everything is verified before anything is stored (style.md: "Import opens the tar read-only,
 * verifies everything, and only then copies into the store"):
 *
 * 1. the archive itself, as hostile input: LayoutTarStore refuses path traversal, absolute paths,
 *    links, devices, duplicate entries, forged sizes, truncation, gzip bombs, junk entries, and
 *    hashes every blob against its name; an `oci:DIR` layout has every reachable blob hashed here;
 * 2. completeness both ways: every blob reachable from index.json is present with its size, and
 *    no blob is there that nothing reaches;
 * 3. the seal: exactly one, its DSSE signature by a trusted key (the trust policy's, valid now);
 * 4. the seal against the archive: every manifest in the archive is listed, every listed manifest
 *    is present with the listed type, size and subject, every tag in index.json is one the seal
 *    gives that manifest (a moved tag would be a rollback);
 * 5. each policy's own signatures and content (verifyPolicyArtifact, the one verification pull and
 *    start use), with trust scopes on the reference the seal says it was exported from.
 *
 * Any failure is a VerificationError (exit 2) and nothing has been written: the destination is
 * untouched and the temporary extraction directory is removed. Only then is each policy copied
 * with its referrers (the same `copy` engine as push and pull), and tagged last.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import {Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {type AuditEventInput, type AuditOptions, appendAuditEvents} from '../audit/append.js'
import {type PolicyCache, openCache} from '../cache/cache.js'
import {checkVersionChange, recordVerified} from '../cache/record.js'
import {AiboxError, EXIT, InputError, VerificationError, errorMessage} from '../errors.js'
import {fetchAll, verifyBytes} from '../oci/content.js'
import {copy as copyEngine, type CopyGraphOptions} from '../oci/copy.js'
import {OciError} from '../oci/errors.js'
import {isGraphNodeType, type ParsedManifest, parseManifest, subjectOf, successorsOf} from '../oci/manifest.js'
import {ANNOTATION, MT} from '../oci/media.js'
import {parseReference} from '../oci/reference.js'
import {LayoutDirStore, type LayoutIndex} from '../oci/stores/layout-dir.js'
import {LayoutTarStore, type TarLimits} from '../oci/stores/layout-tar.js'
import type {Descriptor, ReadOnlyGraphTarget} from '../oci/target.js'
import type {VerificationKey} from '../sign/types.js'
import {assertTenantPolicy, assertTrustTenant, tenantCacheDir} from '../tenant/tenant.js'
import type {TrustPolicy} from '../trust/policy.js'
import {legacySignatureTag} from './referrers.js'
import {type SealedArtifact, type VerifiedSeal, verifySeal} from './seal.js'
import {type OpenOptions, openForWrite, withDigest, withTag} from './targets.js'
import {type VerifiedPolicy, verifyPolicyArtifact} from './verify.js'

/** Error codes of the archive readers that mean "this archive's content is bad": exit 2 on import. */
const CONTENT_CODES = new Set(['INVALID_LAYOUT', 'UNSAFE_ARCHIVE', 'DIGEST_MISMATCH', 'SIZE_MISMATCH', 'INVALID_MANIFEST', 'MANIFEST_TOO_LARGE', 'UNSUPPORTED'])
const MAX_NODES = 100_000

export interface ArchiveVerifyOptions {
  /** Trusted public keys (for the seal and the policies). Exactly one of keys/trust. */
  keys?: VerificationKey[]
  /** A trust policy: the seal's key must be one of its keys; each policy must satisfy its scopes. */
  trust?: TrustPolicy
  /** With a trust policy: the seal's key must hold one of these roles. */
  sealRoles?: string[]
  now?: Date
  /** Parent of the temporary directory a gzip-wrapped archive is extracted into (default os.tmpdir()). */
  tmpDir?: string
  limits?: TarLimits
  signal?: AbortSignal
}

/** A policy of the archive, verified. */
export interface ImportedPolicy {
  artifact: SealedArtifact
  descriptor: Descriptor
  verified: VerifiedPolicy
}

/** An opened, fully verified sealed archive: read from `store`, then `close()`. */
export interface VerifiedArchive {
  /** The archive as given, absolute. */
  location: string
  store: ReadOnlyGraphTarget
  seal: VerifiedSeal
  policies: ImportedPolicy[]
  /** Manifests (the seal included) and blobs in the archive, and the blobs' total size. */
  manifests: number
  blobs: number
  bytes: number
  close(): Promise<void>
}

function refuse(code: string, message: string, suggestions?: string[]): VerificationError {
  return new VerificationError(code, message, {
    suggestions: suggestions ?? ['do not import this archive; ask its producer for a new sealed export (aibox export)'],
  })
}

/** Archive-content failures of any reader become VerificationErrors (exit 2): the archive is refused. */
function asRefusal(err: unknown): unknown {
  if (err instanceof VerificationError || !(err instanceof AiboxError)) return err
  if (CONTENT_CODES.has(err.code) || err.exit === EXIT.VERIFY) {
    return new VerificationError(err.code, err.message, {cause: err, suggestions: err.suggestions, details: err.details})
  }
  return err
}

type ArchiveStore = LayoutTarStore | LayoutDirStore

/** Opens `input`: a tar / tar.gz file (or `oci-archive:FILE`), or a layout directory (`oci:DIR`, or a directory path). */
async function openArchive(input: string, options: ArchiveVerifyOptions): Promise<{store: ArchiveStore; location: string}> {
  let kind: 'tar' | 'dir' | undefined
  let file = input
  if (input.startsWith('oci:') || input.startsWith('oci-archive:')) {
    const r = parseReference(input)
    if (r.kind !== 'layout') throw new InputError('INVALID_ARCHIVE_REFERENCE', `${input} is not a layout`)
    if (r.tag !== undefined || r.digest !== undefined) {
      throw new InputError('INVALID_ARCHIVE_REFERENCE', `${input}: an import takes the whole archive, not one tag or digest of it`, {suggestions: [`aibox import ${input.replace(/[:@][^:/]*$/, '')}`]})
    }
    kind = r.format
    file = r.path
  }
  const abs = path.resolve(file)
  const st = await fs.stat(abs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new OciError('NOT_FOUND', `archive ${abs} does not exist`, {suggestions: ['check the path of the archive written by aibox export']})
    throw new InputError('IO_ERROR', `cannot read ${abs}: ${errorMessage(err)}`)
  })
  kind ??= st.isDirectory() ? 'dir' : 'tar'
  if (kind === 'dir') return {store: await LayoutDirStore.open(abs, {readOnly: true}), location: `oci:${abs}`}
  return {store: await LayoutTarStore.open(abs, {tmpDir: options.tmpDir, limits: options.limits, signal: options.signal}), location: abs}
}

async function readIndexOf(store: ArchiveStore): Promise<LayoutIndex> {
  return store.readIndex()
}

interface Walked {
  manifests: Map<string, {desc: Descriptor; parsed: ParsedManifest}>
  blobs: Map<string, Descriptor>
}

/** Every node reachable from index.json; manifests verified and parsed, other blobs verified by a full read. */
async function walk(store: ArchiveStore, index: LayoutIndex, hashBlobs: boolean, signal?: AbortSignal): Promise<Walked> {
  const manifests = new Map<string, {desc: Descriptor; parsed: ParsedManifest}>()
  const blobs = new Map<string, Descriptor>()
  const queue: Array<{d: Descriptor; from: string}> = index.manifests.map((d) => ({d, from: 'index.json'}))
  while (queue.length > 0) {
    const {d, from} = queue.shift()!
    const seen = blobs.get(d.digest)
    if (seen) {
      if (seen.size !== d.size) throw refuse('SIZE_MISMATCH', `${store.location}: ${from} gives ${d.digest} size ${d.size}, elsewhere ${seen.size}`)
      continue
    }
    if (blobs.size >= MAX_NODES) throw refuse('UNSAFE_ARCHIVE', `${store.location}: more than ${MAX_NODES} blobs are reachable: refused`)
    blobs.set(d.digest, {mediaType: d.mediaType, digest: d.digest, size: d.size})
    if (!(await store.exists(d, {signal}))) {
      throw refuse('BLOB_MISSING', `${store.location}: ${from} names ${d.digest} (${d.mediaType}, ${d.size} bytes), which is not in the archive (or has another size)`)
    }
    if (isGraphNodeType(d.mediaType)) {
      const bytes = await fetchAll({fetch: (x) => store.fetch(x, {signal})}, d)
      verifyBytes(d, bytes, store.location)
      const parsed = parseManifest(bytes, d, `${store.location} ${d.digest}`)
      manifests.set(d.digest, {desc: {mediaType: d.mediaType, digest: d.digest, size: d.size}, parsed})
      for (const c of successorsOf(parsed)) queue.push({d: c, from: `manifest ${d.digest}`})
    } else if (hashBlobs) {
      await pipeline(await store.fetch(d, {signal}), new Writable({write: (_c, _e, cb) => cb()}), {signal})
    }
  }
  return {manifests, blobs}
}

/** Blobs the archive holds that nothing reaches. */
async function unreferenced(store: ArchiveStore, walked: Walked): Promise<string[]> {
  if (store instanceof LayoutTarStore) return store.report.unreferenced
  const dir = path.join(store.root, 'blobs', 'sha256')
  const names = await fs.readdir(dir).catch(() => [] as string[])
  return names
    .map((n) => `sha256:${n}`)
    .filter((d) => !walked.blobs.has(d))
    .sort()
}

function typeOf(parsed: ParsedManifest): string | undefined {
  return parsed.kind === 'manifest' ? (parsed.manifest.artifactType ?? parsed.manifest.config.mediaType) : parsed.index.artifactType
}

/**
 * Opens and verifies a sealed archive (steps 1–5 of the module comment). The caller reads the
 * verified content from `store` and must `close()` it (which removes any temporary files); on
 * failure everything is closed and removed before the error is thrown.
 */
export async function openVerifiedArchive(input: string, options: ArchiveVerifyOptions): Promise<VerifiedArchive> {
  if ((options.keys === undefined) === (options.trust === undefined)) {
    throw new InputError('KEYS_OR_TRUST', 'verifying an archive needs either trusted keys or a trust policy (exactly one)', {suggestions: ['pass --key PUB or --trust TRUST.yaml']})
  }
  let opened: {store: ArchiveStore; location: string}
  try {
    opened = await openArchive(input, options)
  } catch (err) {
    throw asRefusal(err)
  }
  const {store, location} = opened
  const close = async () => {
    if (store instanceof LayoutTarStore) await store.close()
  }
  try {
    const {signal} = options
    const index = await readIndexOf(store)
    const walked = await walk(store, index, store instanceof LayoutDirStore, signal)
    const extra = await unreferenced(store, walked)
    if (extra.length > 0) {
      throw refuse('UNLISTED_BLOB', `${location} holds ${extra.length} blob(s) that nothing in index.json reaches (${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ', …' : ''}): an export holds nothing but what its seal lists`)
    }

    // 3. The seal: a top-level index.json entry of the seal artifact type, exactly one.
    const seals = [...new Set(index.manifests.map((d) => d.digest))].filter((d) => {
      const m = walked.manifests.get(d)
      return m !== undefined && typeOf(m.parsed) === MT.seal
    })
    if (seals.length === 0) {
      throw refuse('SEAL_MISSING', `${location} has no seal (no ${MT.seal} manifest in index.json): it is not a sealed export`, [
        'only archives written by aibox export (or copied from one with every tag) can be imported; an unsealed layout can be read with aibox pull oci-archive:FILE:TAG',
      ])
    }
    if (seals.length > 1) throw refuse('SEAL_AMBIGUOUS', `${location} holds ${seals.length} seals (${seals.join(', ')}): refused`)
    const sealDesc = walked.manifests.get(seals[0]!)!.desc
    const seal = await verifySeal(store, sealDesc, {keys: options.keys, trust: options.trust, roles: options.sealRoles, now: options.now, signal})

    // 4. The seal against the archive, both ways.
    const listed = new Map(seal.predicate.artifacts.map((a) => [a.digest, a]))
    const problems: string[] = []
    for (const [digest, m] of walked.manifests) {
      if (digest === sealDesc.digest) continue
      const a = listed.get(digest)
      if (!a) {
        problems.push(`${digest} (${typeOf(m.parsed) ?? m.desc.mediaType}) is in the archive but not listed in the seal`)
        continue
      }
      if (a.mediaType !== m.desc.mediaType || a.size !== m.desc.size) problems.push(`${digest} is a ${m.desc.mediaType} of ${m.desc.size} bytes, the seal says ${a.mediaType} of ${a.size}`)
      const actualType = typeOf(m.parsed)
      if (a.artifactType !== undefined && a.artifactType !== actualType) problems.push(`${digest} has artifactType ${actualType ?? '(none)'}, the seal says ${a.artifactType}`)
      const subject = subjectOf(m.parsed)?.digest
      if (a.kind === 'referrer' && subject !== a.subject) problems.push(`referrer ${digest} refers to ${subject ?? 'nothing'}, the seal says ${a.subject}`)
      if (a.kind === 'referrer' && !listed.has(a.subject!)) problems.push(`referrer ${digest} refers to ${a.subject}, which the seal does not list`)
      if (a.kind !== 'referrer' && subject !== undefined) problems.push(`${digest} refers to ${subject} but the seal lists it as a ${a.kind}`)
      if (a.kind === 'legacy-signature' && (listed.get(a.subject!)?.kind !== 'policy' || !a.tags.includes(legacySignatureTag(a.subject!)))) {
        problems.push(`legacy signature ${digest} is not tagged ${legacySignatureTag(a.subject ?? '')} for a listed policy`)
      }
    }
    for (const a of seal.predicate.artifacts) if (!walked.manifests.has(a.digest)) problems.push(`${a.digest} (${a.kind}${a.source ? ` ${a.source}` : ''}) is listed in the seal but not in the archive`)
    for (const e of index.manifests) {
      const tag = e.annotations?.[ANNOTATION.refName]
      if (tag === undefined || e.digest === sealDesc.digest) continue
      const a = listed.get(e.digest)
      if (a && !a.tags.includes(tag)) {
        const owner = seal.predicate.artifacts.find((x) => x.tags.includes(tag))
        problems.push(`index.json tags ${e.digest} as "${tag}", but the seal gives "${tag}" to ${owner ? owner.digest : 'no manifest'}`)
      }
    }
    if (problems.length > 0) {
      throw refuse('SEAL_MISMATCH', `${location} does not match its seal ${sealDesc.digest}:\n  ${problems.slice(0, 20).join('\n  ')}${problems.length > 20 ? `\n  … and ${problems.length - 20} more` : ''}`, [
        'the archive was changed after it was sealed: do not import it; ask for a new export',
      ])
    }

    // 5. Each policy's own signatures and content.
    const policies: ImportedPolicy[] = []
    for (const a of seal.predicate.artifacts.filter((x) => x.kind === 'policy').sort((x, y) => (x.source! < y.source! ? -1 : x.source! > y.source! ? 1 : 0))) {
      const descriptor = walked.manifests.get(a.digest)!.desc
      let verified: VerifiedPolicy
      try {
        verified = await verifyPolicyArtifact(store, descriptor, {keys: options.keys, trust: options.trust, reference: a.source, now: options.now, signal})
      } catch (err) {
        const e = asRefusal(err)
        if (e instanceof VerificationError) {
          throw new VerificationError(e.code, `policy ${a.source} (${a.digest}) in ${location}: ${e.message}`, {cause: e, suggestions: e.suggestions, details: e.details})
        }
        if (e instanceof OciError && e.code === 'INVALID_REFERENCE') throw refuse('SEAL_INVALID', `the seal gives policy ${a.digest} the source ${JSON.stringify(a.source)}, which is not a reference: ${e.message}`)
        throw e
      }
      // The seal's record of the tenant must be the signed content's (the seal covers it).
      if (a.tenant !== verified.tenant) {
        throw refuse('SEAL_MISMATCH', `policy ${a.source} (${a.digest}) in ${location}: the seal says tenant ${a.tenant ?? '(none)'}, its signed content says ${verified.tenant ?? '(none)'}`, [
          'the archive was changed after it was sealed: do not import it; ask for a new export',
        ])
      }
      policies.push({artifact: a, descriptor, verified})
    }
    let bytes = 0
    for (const b of walked.blobs.values()) bytes += b.size
    return {location, store, seal, policies, manifests: walked.manifests.size, blobs: walked.blobs.size, bytes, close}
  } catch (err) {
    await close()
    throw asRefusal(err)
  }
}

// ---------------------------------------------------------------------------------------------
// Import into a registry repository or a layout

export interface ImportPoliciesOptions extends ArchiveVerifyOptions, OpenOptions {
  /** The archive: FILE (tar or tar.gz), oci-archive:FILE, oci:DIR or a layout directory. */
  archive: string
  /** Destination: registry/repo or oci:DIR (created when missing). Without it (and without `cache`), verify only. */
  to?: string
  /**
   * Or: the verified-policy cache directory of `aibox start` (src/cache). Each policy is recorded
   * under every reference the seal says it was exported from, with origin `import`, so `aibox
   * start` loads it with no registry at all (its log says `source: import`).
   */
  cache?: string
  onProgress?: CopyGraphOptions['onProgress']
  /** Write `policy.imported` to this audit log (nothing when absent). */
  audit?: AuditOptions
  /**
   * The tenant importing (README "Tenants"): every policy must be its own or tenant-global, checked
   * before anything is written (else the whole import is refused, exit 2); the cache is the tenant's.
   */
  tenant?: string
}

export interface ImportedPolicySummary {
  /** Where it was exported from (as the seal says). */
  source: string
  digest: string
  contentDigest: string
  name: string
  version: string
  tier: string
  /** The signed metadata.tenant. */
  tenant?: string
  /** Its tags (the archive's), applied at the destination. */
  tags: string[]
  /** The references that now name it at the destination; for the cache, the references it is recorded under (none for a verify-only run). */
  references: string[]
  /** The keys whose signatures verified (named by the trust policy or key file), and the number of verified approvals. */
  signers: Array<{keyId: string; name?: string}>
  approvals: number
  trust?: VerifiedPolicy['trust']
}

export interface ImportPoliciesResult {
  /** The tenant the import was made for, when one is configured. */
  tenant?: string
  archive: string
  /** The destination (`cache:DIR` for the start cache), or null for a verify-only run. */
  destination: string | null
  seal: {digest: string; keyId: string; signer?: string; exportedAt: string; exporter: string; tool: string}
  policies: ImportedPolicySummary[]
  manifests: number
  blobs: number
  bytes: number
  /** Nodes written, and nodes the destination already had. */
  copied: number
  skipped: number
}

export function summarizeImported(p: ImportedPolicy, references: string[]): ImportedPolicySummary {
  const v = p.verified
  return {
    source: p.artifact.source!,
    digest: p.descriptor.digest,
    contentDigest: v.contentDigest,
    name: v.name,
    version: v.version,
    tier: v.tier,
    ...(v.tenant !== undefined ? {tenant: v.tenant} : {}),
    tags: [...p.artifact.tags],
    references,
    signers: [...new Map(v.signatures.map((s) => [s.signer.keyId, {keyId: s.signer.keyId, ...(s.signer.name === undefined ? {} : {name: s.signer.name})}])).values()],
    approvals: v.approvals.length,
    ...(v.trust ? {trust: v.trust} : {}),
  }
}

export function sealSummary(seal: VerifiedSeal): ImportPoliciesResult['seal'] {
  return {
    digest: seal.descriptor.digest,
    keyId: seal.signer.keyId,
    ...(seal.signer.name === undefined ? {} : {signer: seal.signer.name}),
    exportedAt: seal.predicate.exportedAt,
    exporter: seal.predicate.exporter,
    tool: seal.predicate.tool,
  }
}

/** Verifies the archive (openVerifiedArchive), then copies every policy with its referrers into `to`, tags last. */
export async function importPolicies(options: ImportPoliciesOptions): Promise<ImportPoliciesResult> {
  if (options.to !== undefined && options.cache !== undefined) {
    throw new InputError('ONE_DESTINATION', 'import into a registry or layout (--to) or into the start cache (--cache), not both')
  }
  // The destination reference is checked before the (possibly long) verification.
  if (options.to !== undefined) {
    const r = parseReference(options.to)
    if (r.kind === 'layout' && r.format === 'tar') {
      throw new InputError('READ_ONLY_DESTINATION', `--to ${options.to}: an oci-archive cannot be imported into; use a registry repository or oci:DIR`)
    }
    if (r.tag !== undefined || r.digest !== undefined) {
      throw new InputError('DESTINATION_TAG', `--to ${options.to}: name a repository or layout without tag or digest; each policy keeps the tags the archive gives it`)
    }
  }
  assertTrustTenant(options.tenant, options.trust)
  const archive = await openVerifiedArchive(options.archive, options)
  try {
    // Every policy's signed tenant, before anything is written: one policy of another tenant refuses the whole import.
    for (const p of archive.policies) assertTenantPolicy(options.tenant, p.verified.tenant, `policy ${p.artifact.source} (${p.descriptor.digest})`, 'import')
    let copied = 0
    let skipped = 0
    const counted = new Set<string>()
    const hooks: CopyGraphOptions = {
      referrers: true,
      signal: options.signal,
      onProgress: options.onProgress,
      onCopied: (d) => {
        if (!counted.has(d.digest)) {
          counted.add(d.digest)
          copied++
        }
      },
      onSkipped: () => {
        skipped++
      },
    }
    const summaries: ImportedPolicySummary[] = []
    const rollbacks: AuditEventInput[] = []
    let destination: string | null = null
    if (options.to !== undefined) {
      const dst = await openForWrite(options.to, options)
      destination = dst.display
      try {
        for (const p of archive.policies) {
          await copyEngine(archive.store, p.descriptor.digest, dst.target, '', hooks)
          const legacy = archive.seal.predicate.artifacts.find((a) => a.kind === 'legacy-signature' && a.subject === p.descriptor.digest)
          if (legacy) {
            const tag = legacySignatureTag(p.descriptor.digest)
            await copyEngine(archive.store, tag, dst.target, tag, {...hooks, referrers: false})
          }
        }
        // Tags last: no tag at the destination names a policy before every policy and referrer is there.
        for (const p of archive.policies) {
          for (const t of p.artifact.tags) await dst.target.tag(p.descriptor, t, {signal: options.signal})
          summaries.push(summarizeImported(p, [...p.artifact.tags.map((t) => withTag(dst.reference, t)), withDigest(dst.reference, p.descriptor.digest)]))
        }
      } finally {
        await dst.close()
      }
    } else if (options.cache !== undefined) {
      const cache = await openCache(tenantCacheDir(options.cache, options.tenant))
      destination = `cache:${cache.dir}`
      summaries.push(...(await recordInCache(cache, archive, options, (e) => rollbacks.push(e))))
    } else {
      for (const p of archive.policies) summaries.push(summarizeImported(p, []))
    }
    const result: ImportPoliciesResult = {
      ...(options.tenant !== undefined ? {tenant: options.tenant} : {}),
      archive: archive.location,
      destination,
      seal: sealSummary(archive.seal),
      policies: summaries,
      manifests: archive.manifests,
      blobs: archive.blobs,
      bytes: archive.bytes,
      copied,
      skipped,
    }
    if (options.audit && destination !== null) await auditImported(result, options.audit, rollbacks)
    return result
  } finally {
    await archive.close()
  }
}

/** Appends `policy.imported` (digest = the seal) for a completed import, after the given events (rollbacks into the cache). */
export async function auditImported(result: ImportPoliciesResult, audit: AuditOptions, before: AuditEventInput[] = []): Promise<void> {
  try {
    await appendAuditEvents(
      [
        ...before,
        {
          event: 'policy.imported',
          fields: {
            ref: result.archive,
            digest: result.seal.digest,
            version: null,
            artifacts: result.policies.map((p) => p.references.at(-1) ?? `${p.source}@${p.digest}`),
            ...(result.destination === null ? {} : {destination: result.destination}),
            ...(result.tenant !== undefined ? {tenant: result.tenant} : {}),
          },
        },
      ],
      audit,
    )
  } catch (err) {
    throw new AiboxError('AUDIT_FAILED', `imported ${result.archive} (seal ${result.seal.digest}), but the audit log could not be written: ${errorMessage(err)}`, {
      cause: err,
      exit: err instanceof AiboxError ? err.exit : 1,
      suggestions: ['fix the audit log (aibox audit verify); the import is complete'],
    })
  }
}

/** The references a policy is recorded under in the start cache: every one it was exported under. */
function cacheReferences(a: SealedArtifact): string[] {
  return a.sources ?? [a.source!]
}

/**
 * Records every verified policy of the archive in the start cache (src/cache `recordVerified`,
 * origin `import`, the seal digest, staleness from the seal's time). The anti-rollback rule is
 * checked for every reference first, so that a refused rollback records nothing at all.
 */
async function recordInCache(cache: PolicyCache, archive: VerifiedArchive, options: ImportPoliciesOptions, onRollback: (e: AuditEventInput) => void): Promise<ImportedPolicySummary[]> {
  const now = options.now ?? new Date()
  const state = cache.readState()
  for (const p of archive.policies) {
    for (const reference of cacheReferences(p.artifact)) checkVersionChange(state.entries[reference], p.verified, {trust: options.trust, now, reference})
  }
  const observedAt = new Date(archive.seal.predicate.exportedAt)
  const out: ImportedPolicySummary[] = []
  for (const p of archive.policies) {
    const references = cacheReferences(p.artifact)
    for (const reference of references) {
      const r = await recordVerified(cache, {
        reference,
        source: archive.store,
        descriptor: p.descriptor,
        verified: p.verified,
        origin: 'import',
        sealDigest: archive.seal.descriptor.digest,
        observedAt: observedAt.getTime() > now.getTime() ? now : observedAt,
        ...(options.trust ? {trustPolicy: options.trust} : {}),
        now,
        ...(options.signal ? {signal: options.signal} : {}),
      })
      if (r.rollback) {
        onRollback({
          event: 'policy.rollback',
          fields: {ref: reference, digest: p.descriptor.digest, version: p.verified.version, from: r.rollback.from, incident: r.rollback.incident, approvals: r.rollback.approvals},
        })
      }
    }
    out.push(summarizeImported(p, references))
  }
  return out
}

/**
 * `aibox export REF… -o policies.tar --key K`: a sealed export for air-gapped sites (formats.md
 * "Sealed export (air gap)", issue 6).
 *
 * export = copy(source → a staging OCI layout) for each policy with every referrer and cosign's
 * legacy `.sig` manifest, then the seal, then the deterministic layout tar (architecture.md "One
 * transfer engine"; style.md rule 4: built in a temporary directory, written under a temporary
 * name and renamed, so a failed export leaves no file). Blobs stream through the copy engine and
 * the tar writer, verified on every read: memory stays flat whatever the artifact sizes.
 *
 * Every manifest is tagged in the archive's index.json so that skopeo and oras can address it
 * (registry-notes.md §8.18): a policy by its source tag and its version (qualified with its
 * repository's last path component when two policies in the archive claim the same tag), a
 * referrer as `sha256-<its own hex>.ref`, a legacy signature by its cosign tag, the seal as
 * `aibox-seal`. Same inputs, SOURCE_DATE_EPOCH set: byte-identical tar (the seal's ECDSA
 * signature uses RFC 6979 nonces, see sign/deterministic.ts).
 */
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import {createRequire} from 'node:module'
import os from 'node:os'
import path from 'node:path'

import {type AuditOptions, appendAuditEvents} from '../audit/append.js'
import {defaultActor} from '../audit/entry.js'
import {AiboxError, InputError, VerificationError, errorMessage} from '../errors.js'
import {fetchAll} from '../oci/content.js'
import {copy as copyEngine, type CopyGraphOptions} from '../oci/copy.js'
import {isOciError} from '../oci/errors.js'
import {isGraphNodeType, parseManifest, subjectOf} from '../oci/manifest.js'
import {ANNOTATION} from '../oci/media.js'
import {type Reference, isValidTag} from '../oci/reference.js'
import {LayoutDirStore} from '../oci/stores/layout-dir.js'
import {writeLayoutTar} from '../oci/stores/layout-tar.js'
import type {Descriptor, ReadOnlyTarget} from '../oci/target.js'
import {DeterministicKeySigner} from '../sign/deterministic.js'
import type {PrivateKeyInfo} from '../sign/keys.js'
import {COSIGN_SIGN_PREDICATE_TYPE} from '../sign/statement.js'
import {fileExistsError} from '../util/atomic.js'
import {layerTenant} from './inspect.js'
import {createdFromEnv} from './pack.js'
import {versionTag} from './push.js'
import {legacySignatureTag, listPolicyReferrers, rfc3339Seconds} from './referrers.js'
import {SEAL_TAG, type SealedArtifact, type SealPredicate, packSeal} from './seal.js'
import {type OpenOptions, openForRead, requireSelector, withDigest} from './targets.js'
import {readPolicyManifest} from './verify.js'

export interface ExportPoliciesOptions extends OpenOptions {
  /** Policy references: registry/repo:tag, …@sha256:…, oci:DIR:tag, oci-archive:FILE:tag. */
  references: string[]
  /** The archive to write. */
  output: string
  /** The exporter's key: signs the seal. */
  key: PrivateKeyInfo
  /** Replace an existing output file (default: refuse). */
  force?: boolean
  /** SOURCE_DATE_EPOCH (the seal's time and the tar's mtimes) and AIBOX_ACTOR; default process.env. */
  env?: NodeJS.ProcessEnv
  /** The time of the export when SOURCE_DATE_EPOCH is not set (default: the clock). */
  now?: Date
  /** Bytes fetched from the sources, per blob. */
  onFetchProgress?: CopyGraphOptions['onProgress']
  /** Bytes written to the archive, per blob. */
  onWriteProgress?: (desc: Descriptor, bytes: number) => void
  /** Write `policy.exported` to this audit log (nothing when absent). */
  audit?: AuditOptions
  /** Parent of the staging directory (default os.tmpdir(), i.e. TMPDIR). */
  tmpDir?: string
  /**
   * Called for each policy with its metadata.tenant (read from its content) before anything of it
   * is copied: the cross-tenant check (src/tenant authorizeRead) refuses by throwing.
   */
  authorize?: (policy: {source: string; digest: string; name: string; version: string; tenant?: string}) => Promise<void>
  /** The tenant exporting (recorded in the audit event). */
  tenant?: string
  signal?: AbortSignal
}

export interface ExportedPolicy {
  /** The reference it was exported from (the first one, when several name it). */
  source: string
  digest: string
  name: string
  version: string
  tier: string
  /** Its metadata.tenant (also in the seal). */
  tenant?: string
  /** Its tags in the archive. */
  tags: string[]
  /** Referrer manifests exported with it (signatures, approvals, and theirs). */
  referrers: number
  legacySignature?: string
}

export interface ExportPoliciesResult {
  /** The archive written (absolute). */
  file: string
  /** sha256 of the archive file. */
  digest: string
  size: number
  seal: {digest: string; keyId: string; exportedAt: string; exporter: string; tag: string}
  policies: ExportedPolicy[]
  /** Manifests in the archive, the seal included. */
  manifests: number
  /** Blobs in the archive (manifests, configs, layers). */
  blobs: number
}

/** `aibox-policy <version>`, recorded in the seal. */
export function toolName(): string {
  try {
    const pkg = createRequire(import.meta.url)('aibox-policy/package.json') as {name: string; version: string}
    return `${pkg.name} ${pkg.version}`
  } catch {
    return 'aibox-policy'
  }
}

interface PolicyEntry {
  desc: Descriptor
  source: string
  sources: string[]
  reference: Reference
  qualifier: string
  wanted: string[]
  name: string
  version: string
  tier: string
  tenant?: string
  legacy?: Descriptor
}

/** A tag-safe qualifier from a reference: the repository's last path component, or the layout's file name. */
function qualifierOf(reference: Reference): string {
  const raw = reference.kind === 'registry' ? (reference.repository.split('/').pop() ?? 'policy') : path.basename(reference.path).replace(/\.(tar|tgz|tar\.gz)$/, '')
  const q = raw.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[.-]+/, '')
  return q === '' ? 'policy' : q.slice(0, 60)
}

/**
 * The archive tags of each policy: what its references and its version name, qualified where two
 * different policies claim the same tag. Throws TAG_CONFLICT when that is still ambiguous.
 */
export function assignPolicyTags(policies: Array<{digest: string; source: string; qualifier: string; wanted: string[]}>, reserved: Set<string>): Map<string, string[]> {
  const owners = new Map<string, Set<string>>()
  for (const p of policies) for (const t of p.wanted) (owners.get(t) ?? owners.set(t, new Set()).get(t)!).add(p.digest)
  const out = new Map<string, string[]>()
  const taken = new Map<string, string>()
  for (const p of policies) {
    const tags: string[] = []
    for (const t of p.wanted) {
      const tag = owners.get(t)!.size > 1 || reserved.has(t) ? `${p.qualifier}-${t}` : t
      const other = taken.get(tag)
      if (!isValidTag(tag) || reserved.has(tag) || (other !== undefined && other !== p.source)) {
        throw new InputError('TAG_CONFLICT', `cannot give tag "${t}" of ${p.source} a unique name in the archive${other ? `: "${tag}" is also ${other}'s` : ''}`, {
          suggestions: ['export these policies into separate archives'],
        })
      }
      taken.set(tag, p.source)
      if (!tags.includes(tag)) tags.push(tag)
    }
    out.set(p.digest, tags)
  }
  return out
}

async function exists(target: {resolve(ref: string, o?: {signal?: AbortSignal}): Promise<Descriptor>}, ref: string, signal?: AbortSignal): Promise<Descriptor | undefined> {
  try {
    return await target.resolve(ref, {signal})
  } catch (err) {
    if (isOciError(err, 'NOT_FOUND')) return undefined
    throw err
  }
}

/** Exports policies with their referrers and a signed seal into a layout tar (see the module comment). */
export async function exportPolicies(options: ExportPoliciesOptions): Promise<ExportPoliciesResult> {
  if (options.references.length === 0) throw new InputError('NO_REFERENCES', 'nothing to export: name at least one policy reference')
  const out = path.resolve(options.output)
  if (!options.force && fs.existsSync(out)) throw fileExistsError(out)
  const env = options.env ?? process.env
  const created = createdFromEnv(env)
  const exportedAt = created ?? rfc3339Seconds(options.now ?? new Date())
  const exporter = options.audit?.actor ?? defaultActor(env)
  const {signal} = options

  const parent = options.tmpDir ?? os.tmpdir()
  const staging = await fsp.mkdtemp(path.join(parent, 'aibox-export-')).catch((err) => {
    throw new InputError('IO_ERROR', `cannot create a staging directory in ${parent}: ${errorMessage(err)}`, {suggestions: ['set TMPDIR to a writable directory with room for the export']})
  })
  try {
    const store = await LayoutDirStore.open(path.join(staging, 'layout'), {create: true})
    const policies = new Map<string, PolicyEntry>()
    for (const ref of options.references) {
      const src = await openForRead(ref, options)
      try {
        const sel = requireSelector(src)
        const desc = await src.target.resolve(sel, {signal})
        const {manifest} = await readPolicyManifest(src.target, desc, signal)
        const a = manifest.annotations ?? {}
        // The tenant from the content (what import verifies and the seal records), not from an annotation.
        const tenant = await layerTenant(src.target, manifest.layers[0]!, `${src.display}@${desc.digest}`, signal)
        if (!policies.has(desc.digest)) {
          await options.authorize?.({source: src.display, digest: desc.digest, name: a[ANNOTATION.title] ?? '', version: a[ANNOTATION.version] ?? '', ...(tenant !== undefined ? {tenant} : {})})
        }
        const version = a[ANNOTATION.version] ?? ''
        const wanted = [...(src.reference.tag ? [src.reference.tag] : []), ...(version && isValidTag(versionTag(version)) ? [versionTag(version)] : [])]
        const known = policies.get(desc.digest)
        if (known) {
          for (const t of wanted) if (!known.wanted.includes(t)) known.wanted.push(t)
          if (!known.sources.includes(src.display)) known.sources.push(src.display)
          continue
        }
        await copyEngine(src.target, desc.digest, store, '', {referrers: true, onProgress: options.onFetchProgress, signal})
        const lt = legacySignatureTag(desc.digest)
        const legacy = await exists(src.target, lt, signal)
        if (legacy) await copyEngine(src.target, lt, store, lt, {onProgress: options.onFetchProgress, signal})
        policies.set(desc.digest, {
          desc: {mediaType: desc.mediaType, digest: desc.digest, size: desc.size},
          source: src.display,
          sources: [src.display],
          reference: src.reference,
          qualifier: qualifierOf(src.reference),
          wanted: wanted.length > 0 ? wanted : [`sha256-${desc.digest.slice(7, 19)}`],
          name: a[ANNOTATION.title] ?? '',
          version,
          tier: a[ANNOTATION.tier] ?? '',
          ...(tenant !== undefined ? {tenant} : {}),
          ...(legacy ? {legacy: {mediaType: legacy.mediaType, digest: legacy.digest, size: legacy.size}} : {}),
        })
      } finally {
        await src.close()
      }
    }

    // A policy nobody signed could never be imported: refuse it here, where it can still be fixed.
    for (const p of policies.values()) {
      const records = await listPolicyReferrers(store, p.desc, {signal})
      const signed = records.some((r) => r.kind === 'cosign-legacy' || (r.kind === 'sigstore-bundle' && r.claimedPredicateType === COSIGN_SIGN_PREDICATE_TYPE))
      if (!signed) {
        throw new VerificationError('NO_SIGNATURES', `${p.source} (${p.desc.digest}) has no signature: an archive holding it could not be imported anywhere`, {
          suggestions: [`sign it first: aibox sign ${p.source} --key KEY`],
        })
      }
    }

    // Every manifest the copies brought: the policies, their referrers (recursively), legacy .sig manifests.
    const index = await store.readIndex()
    const legacyOf = new Map([...policies.values()].filter((p) => p.legacy).map((p) => [p.legacy!.digest, p.desc.digest]))
    const artifacts = new Map<string, SealedArtifact>()
    for (const entry of index.manifests) {
      if (artifacts.has(entry.digest) || !isGraphNodeType(entry.mediaType)) continue
      const bytes = await fetchAll(store, entry)
      const parsed = parseManifest(bytes, entry, store.location)
      const artifactType = parsed.kind === 'manifest' ? (parsed.manifest.artifactType ?? parsed.manifest.config.mediaType) : parsed.index.artifactType
      const base = {digest: entry.digest, mediaType: entry.mediaType, size: entry.size, ...(artifactType ? {artifactType} : {})}
      const policy = policies.get(entry.digest)
      if (policy) {
        artifacts.set(entry.digest, {
          ...base,
          kind: 'policy',
          tags: [],
          source: policy.source,
          ...(policy.sources.length > 1 ? {sources: policy.sources} : {}),
          name: policy.name,
          version: policy.version,
          tier: policy.tier,
          ...(policy.tenant !== undefined ? {tenant: policy.tenant} : {}),
        })
      } else if (legacyOf.has(entry.digest)) {
        artifacts.set(entry.digest, {...base, kind: 'legacy-signature', tags: [legacySignatureTag(legacyOf.get(entry.digest)!)], subject: legacyOf.get(entry.digest)!})
      } else {
        const subject = subjectOf(parsed)
        if (!subject) throw new AiboxError('INTERNAL', `staging layout holds ${entry.digest}, which is neither an exported policy nor a referrer`)
        artifacts.set(entry.digest, {...base, kind: 'referrer', tags: [`sha256-${entry.digest.slice(7)}.ref`], subject: subject.digest})
      }
    }
    const reserved = new Set([SEAL_TAG, ...[...artifacts.values()].flatMap((a) => (a.kind === 'policy' ? [] : a.tags))])
    const policyTags = assignPolicyTags(
      [...policies.values()].map((p) => ({digest: p.desc.digest, source: p.source, qualifier: p.qualifier, wanted: p.wanted})),
      reserved,
    )
    for (const [digest, tags] of policyTags) artifacts.get(digest)!.tags = tags
    for (const a of artifacts.values()) {
      for (const t of a.tags) await store.tag({mediaType: a.mediaType, digest: a.digest, size: a.size}, t, {signal})
    }

    const predicate: SealPredicate = {exportedAt, exporter, tool: toolName(), artifacts: [...artifacts.values()]}
    const signer = new DeterministicKeySigner(options.key)
    const seal = await packSeal(predicate, signer)
    for (const b of seal.blobs) await store.push(b.desc, b.bytes, {signal})
    await store.push(seal.manifest.desc, seal.manifest.bytes, {signal})
    await store.tag(seal.manifest.desc, SEAL_TAG, {signal})

    const mtime = created ? new Date(created) : undefined
    const written = await writeLayoutTar(store, out, {digest: true, signal, onProgress: options.onWriteProgress, ...(mtime ? {mtime} : {})})

    const referrerRoot = (digest: string): string | undefined => {
      let d: string | undefined = digest
      for (let i = 0; i < 64 && d !== undefined; i++) {
        const a = artifacts.get(d)
        if (a === undefined) return undefined
        if (a.kind === 'policy') return a.digest
        d = a.subject
      }
      return undefined
    }
    const counts = new Map<string, number>()
    for (const a of artifacts.values()) {
      if (a.kind !== 'referrer') continue
      const root = referrerRoot(a.digest)
      if (root) counts.set(root, (counts.get(root) ?? 0) + 1)
    }
    const result: ExportPoliciesResult = {
      file: out,
      digest: written.digest!,
      size: written.size,
      seal: {digest: seal.manifest.desc.digest, keyId: signer.key.public.keyId, exportedAt, exporter, tag: SEAL_TAG},
      policies: [...policies.values()].map((p) => ({
        source: p.source,
        digest: p.desc.digest,
        name: p.name,
        version: p.version,
        tier: p.tier,
        ...(p.tenant !== undefined ? {tenant: p.tenant} : {}),
        tags: policyTags.get(p.desc.digest)!,
        referrers: counts.get(p.desc.digest) ?? 0,
        ...(p.legacy ? {legacySignature: legacySignatureTag(p.desc.digest)} : {}),
      })),
      manifests: artifacts.size + 1,
      blobs: written.blobs.length,
    }
    if (options.audit) {
      try {
        await appendAuditEvents(
          [
            {
              event: 'policy.exported',
              fields: {
                ref: `oci-archive:${out}`,
                digest: result.seal.digest,
                version: null,
                artifacts: [...policies.values()].map((p) => withDigest(p.reference, p.desc.digest)),
                file: out,
                ...(options.tenant !== undefined ? {tenant: options.tenant} : {}),
              },
            },
          ],
          options.audit,
        )
      } catch (err) {
        throw new AiboxError('AUDIT_FAILED', `exported ${out} (seal ${result.seal.digest}), but the audit log could not be written: ${errorMessage(err)}`, {
          cause: err,
          exit: err instanceof AiboxError ? err.exit : 1,
          suggestions: ['fix the audit log (aibox audit verify); the archive is complete'],
        })
      }
    }
    return result
  } finally {
    await fsp.rm(staging, {recursive: true, force: true})
  }
}

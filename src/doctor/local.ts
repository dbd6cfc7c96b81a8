/**
 * The local checks of `aibox doctor`: a layout reference, the trust policy or keys, the
 * verified-policy cache and the audit log. Each reads through the module that owns the format
 * (src/trust, src/oci LayoutDirStore, src/audit), so a file doctor calls healthy is one the other
 * commands accept.
 */
import fs from 'node:fs'
import path from 'node:path'

import {verifyChain} from '../audit/verify.js'
import {headPathFor} from '../audit/entry.js'
import {openForRead, requireSelector} from '../distribute/targets.js'
import {EXIT} from '../errors.js'
import {readAll} from '../oci/content.js'
import {isOciError} from '../oci/errors.js'
import {isGraphNodeType, parseManifest, successorsOf} from '../oci/manifest.js'
import {MAX_MANIFEST_BYTES} from '../oci/content.js'
import {LayoutDirStore} from '../oci/stores/layout-dir.js'
import type {Descriptor} from '../oci/target.js'
import {loadPublicKey} from '../sign/keys.js'
import {keyStatus, scopeApplies, targetFromReference} from '../trust/evaluate.js'
import {maxAssignment} from '../trust/match.js'
import {loadTrustPolicy} from '../trust/policy.js'
import {type CheckOutcome, DEFAULT_CACHE_MAX_AGE_MS, DEFAULT_EXPIRY_WARN_MS, fail, failFrom, formatDuration, pass, skip, warn} from './types.js'

// ---- a local layout reference ------------------------------------------------------------

/** `oci:DIR[:tag]` / `oci-archive:FILE[:tag]`: the layout opens and the tag or digest resolves. */
export async function checkLayoutReference(reference: string): Promise<CheckOutcome> {
  let opened
  try {
    opened = await openForRead(reference)
  } catch (err) {
    return failFrom(err, {reference})
  }
  try {
    const tags = await opened.target.tags().catch(() => [] as string[])
    if (opened.selector === undefined) return pass(`${opened.display} is a readable OCI layout (${tags.length} tag${tags.length === 1 ? '' : 's'})`, {reference, tags: tags.length})
    const desc = await opened.target.resolve(requireSelector(opened))
    return pass(`${opened.display} resolves to ${desc.digest}${desc.artifactType ? ` (${desc.artifactType})` : ''}`, {reference, digest: desc.digest})
  } catch (err) {
    return failFrom(err, {reference})
  } finally {
    await opened.close()
  }
}

// ---- trust ---------------------------------------------------------------------------------

export interface TrustCheckOptions {
  trustFile?: string
  keyFiles?: string[]
  reference?: string
  now: Date
  expiryWarnMs?: number
}

/**
 * The trust policy parses and validates (keys loadable, roles known, thresholds satisfiable), every
 * threshold can be met by keys valid NOW (not expired, not yet valid, revoked), no key expires
 * within the warning window, and a scope applies to REF. Or, with `--key`, the keys load.
 */
export function checkTrust(o: TrustCheckOptions): CheckOutcome {
  if (o.keyFiles?.length) {
    const loaded: Array<{file: string; keyId: string; algorithm: string}> = []
    for (const f of o.keyFiles) {
      try {
        const k = loadPublicKey(f)
        loaded.push({file: f, keyId: k.keyId, algorithm: k.algorithm})
      } catch (err) {
        return failFrom(err, {keys: loaded})
      }
    }
    return pass(`${loaded.length} public key${loaded.length === 1 ? '' : 's'} load: ${loaded.map((k) => `${path.basename(k.file)} (${k.algorithm}, ${k.keyId})`).join(', ')}`, {keys: loaded})
  }
  if (!o.trustFile) {
    return skip('no --trust or --key given: aibox verify and start need one of them', {})
  }
  let policy
  try {
    policy = loadTrustPolicy(o.trustFile)
  } catch (err) {
    return failFrom(err, {file: o.trustFile})
  }
  const now = o.now
  const soon = o.expiryWarnMs ?? DEFAULT_EXPIRY_WARN_MS
  const keys = policy.keys.map((k) => {
    const status = keyStatus(k, now)
    return {
      name: k.name,
      keyId: k.keyId,
      roles: k.roles,
      status: status.ok ? 'valid' : status.reason,
      ...(k.notAfter ? {notAfter: k.notAfter.toISOString()} : {}),
      ...(status.ok ? {} : {problem: status.message}),
    }
  })
  const details: Record<string, unknown> = {file: o.trustFile, keys, scopes: policy.scopes.map((s) => s.name)}
  const problems: string[] = []
  const warnings: string[] = []

  // Thresholds that the keys valid now cannot meet: every verification in that scope fails today.
  // Keyless identities fill roles like keys (README "Keyless signing"), so they count here too.
  const identities = policy.identities ?? []
  const usable = policy.keys.filter((k) => keyStatus(k, now).ok)
  const usableIdentities = identities.filter((k) => keyStatus(k, now).ok)
  for (const scope of policy.scopes) {
    for (const [kind, thresholds] of Object.entries(scope.require)) {
      const {assigned} = maxAssignment(thresholds, [...usable, ...usableIdentities].map((k) => ({id: k.name, roles: k.roles})))
      for (const [role, n] of Object.entries(thresholds)) {
        const got = assigned.get(role)?.length ?? 0
        if (got < n) problems.push(`scope '${scope.name}' needs ${n} '${role}' ${kind} but only ${got} key(s)${identities.length ? ' or identities' : ''} holding that role are valid now`)
      }
    }
  }
  for (const k of keys) if (k.status === 'expired' || k.status === 'not-yet-valid') warnings.push(k.problem!)
  for (const k of policy.keys) {
    if (k.notAfter && keyStatus(k, now).ok && k.notAfter.getTime() - now.getTime() < soon) {
      warnings.push(`key '${k.name}' (${k.keyId}) expires in ${formatDuration(k.notAfter.getTime() - now.getTime())} (${k.notAfter.toISOString()})`)
    }
  }
  if (o.reference) {
    let target
    try {
      target = targetFromReference(o.reference)
    } catch {
      target = undefined
    }
    if (target) {
      // Doctor does not know REF's tier: a scope limited to tiers counts as applying to some tier of it.
      const applying = policy.scopes.filter((s) => scopeApplies({...s, match: {...s.match, tiers: undefined}}, target))
      details.applyingScopes = applying.map((s) => s.name)
      if (applying.length === 0) problems.push(`no scope applies to ${o.reference}: aibox verify and start will refuse every policy there`)
    }
  }
  const revoked = policy.keys.filter((k) => k.revoked).length
  const summary = `trust policy '${o.trustFile}': ${policy.keys.length} key${policy.keys.length === 1 ? '' : 's'} (${usable.length} valid now${revoked ? `, ${revoked} revoked` : ''})${identities.length ? `, ${identities.length} keyless identit${identities.length === 1 ? 'y' : 'ies'} (${usableIdentities.length} valid now)` : ''}, ${policy.scopes.length} scope${policy.scopes.length === 1 ? '' : 's'}`
  if (problems.length > 0) {
    return fail('TRUST_POLICY_UNUSABLE', `${summary}: ${[...problems, ...warnings].join('; ')}`, [
      'add or renew keys for the roles named, or fix the scope match',
      'aibox verify REF --trust FILE shows the decision for one policy',
    ], EXIT.VERIFY, details)
  }
  if (warnings.length > 0) {
    return warn('TRUST_KEYS_EXPIRING', `${summary}: ${warnings.join('; ')}`, ['rotate the keys before they expire: add the new key, re-sign, then remove the old one'], details)
  }
  return pass(`${summary}, all loadable and every threshold can be met`, details)
}

// ---- the verified-policy cache -------------------------------------------------------------

/** Names the cache module uses (src/cache, architecture.md `cache/`): state.json beside an `oci/` layout. */
const STATE_FILE = 'state.json'
const LAYOUT_DIR = 'oci'
/** Bytes re-hashed at most; beyond that only presence and size are checked. */
const MAX_HASHED_BYTES = 256 * 1024 * 1024

export interface CacheCheckOptions {
  dir: string
  now: Date
  maxAgeMs?: number
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

interface StateSummary {
  entries: Array<{reference: string; digest?: string; version?: string; checkedAt?: number; verifiedAt?: number; blobs: Descriptor[]}>
  taints: Array<{reason: string; since?: string; actor?: string}>
  known: boolean
}

/** Reads the parts of state.json doctor reports on, tolerating shapes it does not know. */
function summariseState(raw: unknown): StateSummary {
  const out: StateSummary = {entries: [], taints: [], known: false}
  if (!isObj(raw)) return out
  out.known = isObj(raw.entries)
  for (const [key, e] of Object.entries(isObj(raw.entries) ? raw.entries : {})) {
    if (!isObj(e)) continue
    const time = (v: unknown) => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? Date.parse(v) : undefined)
    const blobs = Array.isArray(e.blobs)
      ? e.blobs.filter((b): b is {digest: string; size: number} => isObj(b) && typeof b.digest === 'string' && Number.isSafeInteger(b.size)).map((b) => ({mediaType: 'application/octet-stream', digest: b.digest, size: b.size}))
      : []
    out.entries.push({
      reference: typeof e.reference === 'string' ? e.reference : key,
      ...(typeof e.digest === 'string' ? {digest: e.digest} : {}),
      ...(typeof e.version === 'string' ? {version: e.version} : {}),
      checkedAt: time(e.checkedAt),
      verifiedAt: time(e.verifiedAt),
      blobs,
    })
  }
  for (const p of Object.values(isObj(raw.profiles) ? raw.profiles : {})) {
    if (isObj(p) && isObj(p.taint) && typeof p.taint.reason === 'string') {
      out.taints.push({reason: p.taint.reason, ...(typeof p.taint.since === 'string' ? {since: p.taint.since} : {}), ...(typeof p.taint.actor === 'string' ? {actor: p.taint.actor} : {})})
    }
  }
  return out
}

/**
 * The cache directory: readable state.json, an OCI layout whose every manifest and blob is present
 * and hashes to its digest, every state entry present in the layout, and how long ago its
 * sources were last checked. A missing cache is "no cache yet", not a failure.
 */
export async function checkCache(o: CacheCheckOptions): Promise<CheckOutcome> {
  const dir = o.dir
  const details: Record<string, unknown> = {dir}
  let st
  try {
    st = fs.statSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return skip(`no cache yet at ${dir} (aibox start fills it with every policy it verifies)`, details)
    return failFrom(err, details)
  }
  if (!st.isDirectory()) return fail('CACHE_NOT_A_DIRECTORY', `the cache path ${dir} is not a directory`, ['point AIBOX_CACHE at a directory, or remove the file'], EXIT.USAGE, details)
  const statePath = path.join(dir, STATE_FILE)
  const layoutDir = fs.existsSync(path.join(dir, LAYOUT_DIR)) ? path.join(dir, LAYOUT_DIR) : fs.existsSync(path.join(dir, 'oci-layout')) ? dir : undefined
  const hasState = fs.existsSync(statePath)
  if (!hasState && !layoutDir) return skip(`no cache yet at ${dir} (no ${STATE_FILE} and no OCI layout)`, details)
  const problems: string[] = []
  const notes: string[] = []

  try {
    fs.accessSync(dir, fs.constants.W_OK)
  } catch {
    problems.push(`${dir} is not writable: aibox start cannot record newly verified policies`)
  }

  let state: StateSummary = {entries: [], taints: [], known: false}
  let stateMtime: number | undefined
  if (hasState) {
    try {
      stateMtime = fs.statSync(statePath).mtimeMs
      state = summariseState(JSON.parse(fs.readFileSync(statePath, 'utf8')))
      if (!state.known) notes.push(`${STATE_FILE} has a shape this version does not know; its age is taken from the file time`)
    } catch (err) {
      problems.push(`${statePath} is unreadable (${(err as Error).message}): the cache will be refilled from the registry, and offline starts have nothing to fall back on until then`)
    }
  }

  // The layout: every manifest listed, its children, and the blobs state.json names, verified.
  let manifests = 0
  let blobs = 0
  let hashed = 0
  const present = new Set<string>()
  if (layoutDir) {
    details.layout = layoutDir
    let store: LayoutDirStore | undefined
    try {
      store = await LayoutDirStore.open(layoutDir, {readOnly: true})
    } catch (err) {
      problems.push(failFrom(err).reason)
    }
    if (store) {
      const verify = async (d: Descriptor, what: string) => {
        if (hashed + d.size > MAX_HASHED_BYTES) {
          if (!(await store.exists(d))) problems.push(`${what} ${d.digest} is missing or has the wrong size`)
          return undefined
        }
        try {
          const bytes = await readAll(await store.fetch(d), isGraphNodeType(d.mediaType) ? MAX_MANIFEST_BYTES : d.size, `${what} ${d.digest}`)
          hashed += bytes.length
          return bytes
        } catch (err) {
          problems.push(isOciError(err, 'NOT_FOUND') ? `${what} ${d.digest} is missing from ${layoutDir}` : `${what} ${d.digest}: ${(err as Error).message}`)
          return undefined
        }
      }
      let listed: Descriptor[] = []
      try {
        listed = (await store.readIndex()).manifests
      } catch (err) {
        problems.push(failFrom(err).reason)
      }
      for (const m of listed) {
        manifests++
        const bytes = await verify(m, 'manifest')
        if (!bytes) continue
        present.add(m.digest)
        let children: Descriptor[] = []
        try {
          children = successorsOf(parseManifest(bytes, m, layoutDir))
        } catch (err) {
          problems.push(`manifest ${m.digest}: ${(err as Error).message}`)
        }
        for (const c of children) {
          // Blobs shared between manifests (the empty config) are verified once.
          if (isGraphNodeType(c.mediaType) || present.has(c.digest)) continue
          if (await verify(c, 'blob')) {
            present.add(c.digest)
            blobs++
          }
        }
      }
      for (const e of state.entries) {
        if (e.digest && !present.has(e.digest)) problems.push(`state entry ${e.reference} names manifest ${e.digest}, which the layout does not hold intact`)
        for (const b of e.blobs) if (!present.has(b.digest) && !(await verify(b, 'blob'))) problems.push(`state entry ${e.reference}: blob ${b.digest} missing`)
      }
    }
  } else if (state.entries.length > 0) {
    problems.push(`${STATE_FILE} lists ${state.entries.length} entries but ${dir} has no OCI layout (${LAYOUT_DIR}/)`)
  }
  details.manifests = manifests
  details.blobs = blobs
  details.entries = state.entries.map((e) => ({
    reference: e.reference,
    ...(e.version ? {version: e.version} : {}),
    ...(e.digest ? {digest: e.digest} : {}),
    ...(e.checkedAt ? {checkedAt: new Date(e.checkedAt).toISOString()} : {}),
    ...(e.verifiedAt ? {verifiedAt: new Date(e.verifiedAt).toISOString()} : {}),
  }))
  if (state.taints.length > 0) details.taints = state.taints

  // Age: when each source last vouched for its entry; without a known shape, the newest file time.
  const now = o.now.getTime()
  const maxAge = o.maxAgeMs ?? DEFAULT_CACHE_MAX_AGE_MS
  const checked = state.entries.map((e) => e.checkedAt).filter((t): t is number => t !== undefined)
  let ageText: string
  if (checked.length > 0) {
    const newest = Math.max(...checked)
    const oldest = Math.min(...checked)
    details.newestCheckMs = now - newest
    details.oldestCheckMs = now - oldest
    ageText = `sources last checked ${formatDuration(now - newest)} ago${checked.length > 1 ? ` (oldest entry ${formatDuration(now - oldest)} ago)` : ''}`
    const stale = state.entries.filter((e) => e.checkedAt !== undefined && now - e.checkedAt > maxAge)
    if (stale.length > 0) {
      notes.push(`${stale.map((e) => `${e.reference} was last checked against its source ${formatDuration(now - e.checkedAt!)} ago`).join('; ')} (over ${formatDuration(maxAge)}: starts have been using the cache offline, or nothing started)`)
    }
  } else {
    const times = [stateMtime, layoutDir ? mtime(path.join(layoutDir, 'index.json')) : undefined].filter((t): t is number => t !== undefined)
    const newest = times.length ? Math.max(...times) : undefined
    if (newest !== undefined) details.newestCheckMs = Math.max(0, now - newest)
    ageText = newest === undefined ? 'age unknown' : `last written ${formatDuration(Math.max(0, now - newest))} ago`
    if (newest !== undefined && now - newest > maxAge) notes.push(`the cache was last written ${formatDuration(now - newest)} ago (over ${formatDuration(maxAge)})`)
  }
  for (const t of state.taints) notes.push(`runs are tainted (policy_override) since ${t.since ?? '?'}${t.actor ? ` by ${t.actor}` : ''}: ${t.reason}`)

  const summary = `cache ${dir}: ${state.entries.length} verified polic${state.entries.length === 1 ? 'y' : 'ies'}, ${manifests} manifest${manifests === 1 ? '' : 's'} and ${blobs} blob${blobs === 1 ? '' : 's'} intact, ${ageText}`
  if (problems.length > 0) {
    return fail('CACHE_UNHEALTHY', `cache ${dir}: ${problems.join('; ')}`, [
      `move ${dir} aside: aibox start refills the cache from the registry (with the registry reachable)`,
    ], EXIT.VERIFY, details)
  }
  if (notes.length > 0) return warn('CACHE_STALE', `${summary}; ${notes.join('; ')}`, ['run aibox start (or aibox pull) with the registry reachable to refresh it', 'see aibox audit log --event policy.override for the taint'], details)
  return pass(summary, details)
}

function mtime(file: string): number | undefined {
  try {
    return fs.statSync(file).mtimeMs
  } catch {
    return undefined
  }
}

// ---- the audit log -------------------------------------------------------------------------

/** The log's hash chain and anchor verify, and its directory is writable for the next append. */
export async function checkAudit(log: string): Promise<CheckOutcome> {
  const r = await verifyChain(log)
  const details: Record<string, unknown> = {log: r.log, entries: r.entries, anchoredSeq: r.anchoredSeq}
  if (!r.exists && r.ok) return skip(`no audit log yet at ${r.log} (aibox start, push and approve append to it)`, details)
  if (!r.ok) {
    const b = r.firstBroken!
    const where = b.line === null ? '' : ` at line ${b.line}${b.seq === null ? '' : ` (seq ${b.seq})`}`
    return fail('AUDIT_LOG_BROKEN', `audit log ${r.log} is broken${where}: ${b.reason}: ${b.message}`, [
      'aibox audit verify shows the details',
      'treat the log as tampered with: compare it with a backup or the copy exported to your SIEM',
    ], EXIT.VERIFY, {...details, firstBroken: b})
  }
  try {
    fs.accessSync(path.dirname(r.log), fs.constants.W_OK)
  } catch {
    return warn('AUDIT_LOG_NOT_WRITABLE', `audit log ${r.log} verifies (${r.entries} entries) but its directory is not writable: the next append will fail`, ['fix the permissions, or point AIBOX_AUDIT_LOG elsewhere'], details)
  }
  const unanchored = r.unanchored > 0 ? `; ${r.unanchored} entr${r.unanchored === 1 ? 'y' : 'ies'} of an interrupted append, committed by the next one` : ''
  return pass(`audit log ${r.log}: ${r.entries} entr${r.entries === 1 ? 'y' : 'ies'}, chain intact, anchored at seq ${r.anchoredSeq ?? 0} (${headPathFor(r.log)})${unanchored}`, details)
}

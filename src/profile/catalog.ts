/**
 * The profile catalog of a configured stack (README "Profiles"): the org bundle's profiles,
 * weakest first, read from the verified cache that `aibox start` filled (or from an org bundle
 * file, for its authors), with the default, the current selection and the profile loaded last.
 */
import {loadBundle, loadBundleText} from '../bundle/load.js'
import type {LoadedBundle} from '../bundle/model.js'
import {PolicyCache} from '../cache/cache.js'
import {resolveTenant, tenantCacheDir} from '../tenant/tenant.js'
import {type CacheState, type ProfileState, profileKey} from '../cache/state.js'
import {expandHome} from '../config/paths.js'
import {type StartConfig, loadStartConfig} from '../config/start-config.js'
import {InputError, NotFoundError} from '../errors.js'

export interface CatalogOptions {
  /** `--config FILE` (else AIBOX_CONFIG, ./aibox.yaml, the user default). */
  config?: string
  /** `--cache DIR` (over AIBOX_CACHE and the configuration). */
  cache?: string
  /** `--bundle FILE`: read the profiles from this org bundle instead of the cache. */
  bundle?: string
  env?: NodeJS.ProcessEnv
  cwd?: string
}

export interface CatalogProfile {
  name: string
  description?: string
  /** Position in the list, 0 = weakest. */
  rank: number
  default: boolean
  selected: boolean
  lastLoaded: boolean
}

export interface ProfileCatalog {
  /** `cache`: the verified org bundle in the cache; `bundle`: --bundle FILE. */
  source: 'cache' | 'bundle'
  config?: string
  /** The org reference (cache) or file (bundle). */
  org: {ref: string; name: string | null; version: string | null; digest?: string}
  profiles: CatalogProfile[]
  defaultProfile?: string
  /** The selection: AIBOX_PROFILE, else aibox.yaml `profile:`, else the default. */
  selected?: string
  selectedBy?: 'AIBOX_PROFILE' | 'aibox.yaml' | 'default'
  /** The profile `aibox start` loaded last for this stack. */
  lastLoaded?: string
  /** A change recorded by `aibox profile set` that no start has loaded yet. */
  pending?: {from: string | null; to: string; ticket: string}
}

export interface StackContext {
  config: StartConfig
  cache: PolicyCache
  /** The stack's key in the cache state (cache/state.ts profileKey: the configured references). */
  stackId: string
  refs: ProfileState['refs']
  orgRef: string
}

/** The configuration, cache and stack key of a configured stack (the same key aibox start uses). */
export async function stackContext(options: CatalogOptions = {}): Promise<StackContext> {
  const env = options.env ?? process.env
  const cwd = options.cwd ?? process.cwd()
  const config = await loadStartConfig({file: options.config, env, cwd})
  // The tenant's own cache, as aibox start uses it (README "Tenants": AIBOX_TENANT, then tenant: in aibox.yaml).
  const cache = new PolicyCache(tenantCacheDir(options.cache ? expandHome(options.cache, env, cwd) : config.cache, resolveTenant({env, config: config.tenant})))
  // As in start/run.ts: a file tier by its path, a reference by its canonical form.
  const refs: ProfileState['refs'] = {}
  for (const t of config.tiers) refs[t.tier] = t.kind === 'file' ? t.path : t.ref
  const org = config.tiers.find((t) => t.tier === 'org')!
  return {config, cache, stackId: profileKey(refs), refs, orgRef: org.kind === 'reference' ? org.ref : org.path}
}

/** The verified org bundle of the stack from the cache; NotFoundError when aibox start never loaded it. */
export function cachedOrgBundle(ctx: StackContext, state: CacheState): LoadedBundle {
  const entry = state.entries[ctx.orgRef]
  const blob = entry?.blobs[0]
  const bytes = blob ? ctx.cache.readBlob(blob.digest, blob.size) : undefined
  if (!entry || !bytes) {
    throw new NotFoundError('PROFILE_CATALOG_UNAVAILABLE', `the cache ${ctx.cache.dir} holds no verified copy of the org policy ${ctx.orgRef}, so its profiles are not known here`, {
      suggestions: ['run aibox start once (it verifies and caches the org policy)', 'or read the profiles of an org bundle file: aibox profile list --bundle org.yaml'],
    })
  }
  return loadBundleText(bytes, `${ctx.orgRef} (cached ${entry.version})`, {format: 'json', tier: 'org'})
}

/** The selected profile name and how it was selected. */
export function selectionOf(config: StartConfig | undefined, env: NodeJS.ProcessEnv, org: LoadedBundle): {name?: string; by?: ProfileCatalog['selectedBy']} {
  const fromEnv = env.AIBOX_PROFILE?.trim()
  if (fromEnv) return {name: fromEnv, by: 'AIBOX_PROFILE'}
  if (config?.profile !== undefined) return {name: config.profile, by: 'aibox.yaml'}
  return org.defaultProfile !== undefined ? {name: org.defaultProfile, by: 'default'} : {}
}

/** The catalog (see the module comment). */
export async function profileCatalog(options: CatalogOptions = {}): Promise<ProfileCatalog> {
  const env = options.env ?? process.env
  if (options.bundle !== undefined) {
    const org = loadBundle(options.bundle)
    if (org.tier !== 'org') throw new InputError('NOT_ORG_BUNDLE', `${options.bundle} is a ${org.tier ?? 'tier-less'} policy: profiles are defined in the org bundle`)
    return catalogOf(org, {source: 'bundle', ref: options.bundle, env})
  }
  const ctx = await stackContext(options)
  const state = ctx.cache.readState()
  const org = cachedOrgBundle(ctx, state)
  const ps = state.profiles[ctx.stackId]
  return catalogOf(org, {source: 'cache', ref: ctx.orgRef, env, config: ctx.config, digest: state.entries[ctx.orgRef]?.digest, state: ps})
}

function catalogOf(org: LoadedBundle, o: {source: 'cache' | 'bundle'; ref: string; env: NodeJS.ProcessEnv; config?: StartConfig; digest?: string; state?: ProfileState}): ProfileCatalog {
  const sel = o.source === 'cache' ? selectionOf(o.config, o.env, org) : org.defaultProfile !== undefined ? {name: org.defaultProfile, by: 'default' as const} : {}
  const last = o.state?.profile?.name
  return {
    source: o.source,
    ...(o.config ? {config: o.config.file} : {}),
    org: {ref: o.ref, name: org.name ?? null, version: org.version ?? null, ...(o.digest ? {digest: o.digest} : {})},
    profiles: (org.profiles ?? []).map((p, rank) => ({
      name: p.name,
      ...(p.description !== undefined ? {description: p.description} : {}),
      rank,
      default: p.name === org.defaultProfile,
      selected: p.name === sel.name,
      lastLoaded: p.name === last,
    })),
    ...(org.defaultProfile !== undefined ? {defaultProfile: org.defaultProfile} : {}),
    ...(sel.name !== undefined ? {selected: sel.name, selectedBy: sel.by} : {}),
    ...(last !== undefined ? {lastLoaded: last} : {}),
    ...(o.state?.change ? {pending: {from: o.state.change.from, to: o.state.change.to, ticket: o.state.change.ticket}} : {}),
  }
}

/**
 * Semantic diff of two versions of a policy: what got looser and what got tighter. "Looser"
 * is exactly what the tighten-only check refuses (same comparison code), applied to the two
 * files as written: a new version replaces the old one rather than inheriting from it, so a
 * limit that disappears is a loosening.
 */
import {InputError} from '../errors.js'
import type {CallTier} from './calls.js'
import {compareLayers, type Origin, resolveLayer, type Violation} from './layers.js'
import {KIND_LABEL, type LoadedBundle} from './model.js'
import {compareCallStacks} from './tighten.js'

export interface DiffItem {
  /** The field or rule that changed (dotted, as in check violations). */
  field: string
  change: 'looser' | 'tighter'
  /** E.g. `adds "pastebin.com"` (looser) or `removes "pastebin.com"` (tighter). */
  detail: string
  /** Stable code of the kind of change (the check violation code). */
  code: string
  /** The rule or entry involved, or null. */
  rule: string | null
}

export interface DiffSide {
  file: string
  digest: string
  name?: string
  version?: string
}

export interface DiffResult {
  old: DiffSide
  new: DiffSide
  /** Same content digest. */
  identical: boolean
  looser: DiffItem[]
  tighter: DiffItem[]
}

function side(b: LoadedBundle): DiffSide {
  const s: DiffSide = {file: b.file, digest: b.digest}
  if (b.name) s.name = b.name
  if (b.version) s.version = b.version
  return s
}

function tiersOf(b: LoadedBundle, origin: Origin): CallTier[] {
  return [{origin, rules: b.rules, defaultVerdict: b.defaultVerdict}]
}

/** What `next` allows beyond `prev` (looser) and what it no longer allows (tighter). */
export function diffBundles(prev: LoadedBundle, next: LoadedBundle): DiffResult {
  for (const b of [prev, next]) {
    if (b.kind === 'helm-bundle') {
      throw new InputError('UNSUPPORTED_KIND', `${b.file} is a ${KIND_LABEL[b.kind]}: its CEL rules cannot be compared semantically`, {suggestions: ['diff aibox bundles, AI-Box v1 policy files or HELM policy files']})
    }
  }
  const po: Origin = {tier: prev.tier, file: prev.file}
  const no: Origin = {tier: next.tier, file: next.file}
  const pl = resolveLayer(undefined, prev.policy, po)
  const nl = resolveLayer(undefined, next.policy, no)
  const looser = [...compareLayers(pl, nl, no), ...compareCallStacks(tiersOf(prev, po), tiersOf(next, no), no)].map((v) => item(v, 'looser'))
  const tighter = [...compareLayers(nl, pl, po), ...compareCallStacks(tiersOf(next, no), tiersOf(prev, po), po)].map((v) => item(v, 'tighter'))
  return {old: side(prev), new: side(next), identical: prev.digest === next.digest, looser, tighter}
}

function item(v: Violation, change: 'looser' | 'tighter'): DiffItem {
  return {field: change === 'looser' ? v.field : v.against, change, detail: change === 'looser' ? v.detail : v.inverse, code: v.code, rule: v.rule}
}

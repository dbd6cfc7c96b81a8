/**
 * Composition of bundles (seed 001, formats.md "Peer formats"): rules merged by id, the first
 * bundle wins, every conflict (same id, different content) reported, the result sorted by id
 * in code-point order, and a content digest over the composed bundle.
 *
 * Sorting by id changes the order of first-match rules; when that changes a decision, the
 * composition says so in `warnings` (the composed bundle still follows seed 001).
 */
import {InputError} from '../errors.js'
import {type CallTier, decideCall, freshChar, showCall, witnessCalls} from './calls.js'
import {canonicalJson, contentDigest} from './canonical.js'
import {compareCodePoints, type JsonObject, jsonEqual, type JsonValue, toNullProto} from './json.js'
import {type CallRule, KIND_LABEL, type LoadedBundle} from './model.js'

export interface ComposedRule {
  id: string
  /** The file the kept rule comes from. */
  from: string
  [field: string]: unknown
}

export interface ComposeConflict {
  /** The rule id, or the section name for a non-rule conflict. */
  id: string
  /** What conflicts: a rule, or a whole section taken from the first bundle. */
  field: 'rule' | 'policy' | 'defaultVerdict' | 'metadata.tier'
  /** File whose content was kept. */
  kept: string
  /** File whose content was dropped. */
  dropped: string
}

export interface ComposeResult {
  /** The composed bundle document (valid against the inputs' schema). */
  document: JsonObject
  rules: ComposedRule[]
  conflicts: ComposeConflict[]
  /** Decisions that sorting by id changes (aibox rules are first-match). */
  warnings: string[]
  digest: string
}

export interface ComposeOptions {
  /** metadata.name of the result (default: the first bundle's). */
  name?: string
  /** metadata.version of the result (default: the first bundle's). */
  version?: string
}

/** Composes aibox bundles or HELM PolicyBundles (not a mix of both). */
export function composeBundles(bundles: readonly LoadedBundle[], options: ComposeOptions = {}): ComposeResult {
  if (bundles.length === 0) throw new InputError('NOTHING_TO_COMPOSE', 'compose needs at least one bundle')
  const family = bundles[0].kind
  for (const b of bundles) {
    if (b.kind !== 'aibox-bundle' && b.kind !== 'helm-bundle') {
      throw new InputError('UNSUPPORTED_KIND', `${b.file} is a ${KIND_LABEL[b.kind]}; compose takes aibox PolicyBundles or HELM PolicyBundles`, {
        suggestions: ['wrap the file in an aibox bundle (aibox bundle init shows the envelope)'],
      })
    }
    if (b.kind !== family) {
      throw new InputError('MIXED_KINDS', `${b.file} is a ${KIND_LABEL[b.kind]} but ${bundles[0].file} is a ${KIND_LABEL[family]}; compose bundles of one kind`)
    }
  }
  const kept = new Map<string, {rule: JsonObject; from: string}>()
  const conflicts: ComposeConflict[] = []
  for (const b of bundles) {
    const rules = (b.kind === 'helm-bundle' ? b.helmRules ?? [] : b.rules) as unknown as JsonObject[]
    for (const r of rules) {
      const id = r.id as string
      const prev = kept.get(id)
      if (!prev) kept.set(id, {rule: r, from: b.file})
      else if (!jsonEqual(prev.rule, r)) conflicts.push({id, field: 'rule', kept: prev.from, dropped: b.file})
    }
  }
  const ids = [...kept.keys()].sort(compareCodePoints)
  const first = bundles[0]
  const doc = toNullProto({apiVersion: first.document.apiVersion, kind: first.document.kind, metadata: first.document.metadata}) as JsonObject
  const meta = doc.metadata as JsonObject
  if (options.name !== undefined) meta.name = options.name
  if (options.version !== undefined) meta.version = options.version
  if (family === 'aibox-bundle') {
    const section = (key: 'policy' | 'defaultVerdict') => {
      const owner = bundles.find((b) => b.document[key] !== undefined)
      if (!owner) return
      doc[key] = toNullProto(owner.document[key])
      for (const b of bundles) {
        if (b !== owner && b.document[key] !== undefined && !jsonEqual(b.document[key], owner.document[key])) conflicts.push({id: key, field: key, kept: owner.file, dropped: b.file})
      }
    }
    section('policy')
    for (const b of bundles.slice(1)) {
      if (b.tier !== first.tier) conflicts.push({id: 'metadata.tier', field: 'metadata.tier', kept: first.file, dropped: b.file})
    }
    doc.rules = ids.map((id) => toNullProto(kept.get(id)!.rule))
    section('defaultVerdict')
  } else {
    doc.rules = ids.map((id) => toNullProto(kept.get(id)!.rule))
  }
  const warnings = family === 'aibox-bundle' ? orderWarnings(bundles, ids.map((id) => kept.get(id)!.rule as unknown as CallRule)) : []
  const rules = ids.map((id) => ({...(kept.get(id)!.rule as Record<string, unknown>), id, from: kept.get(id)!.from}) as ComposedRule)
  conflicts.sort((a, b) => compareCodePoints(a.id, b.id) || compareCodePoints(a.dropped, b.dropped))
  return {document: doc, rules, conflicts, warnings, digest: contentDigest(doc)}
}

/** Where first-match decisions differ between the input order and the id order. */
function orderWarnings(bundles: readonly LoadedBundle[], sorted: readonly CallRule[]): string[] {
  const seen = new Set<string>()
  const inputOrder: CallRule[] = []
  for (const b of bundles) for (const r of b.rules) if (!seen.has(r.id)) (seen.add(r.id), inputOrder.push(r))
  const before: CallTier[] = [{origin: {file: 'input order'}, rules: inputOrder}]
  const after: CallTier[] = [{origin: {file: 'id order'}, rules: sorted}]
  const fresh = freshChar(inputOrder)
  const out: string[] = []
  const keys = new Set<string>()
  for (const target of [...inputOrder, undefined]) {
    for (const w of witnessCalls(target, inputOrder, fresh)) {
      const a = decideCall(before, w)
      const b = decideCall(after, w)
      if (a.verdict === b.verdict) continue
      const key = `${a.rule?.id}\u0000${b.rule?.id}`
      if (keys.has(key)) continue
      keys.add(key)
      out.push(`sorting by id changes ${showCall(w, fresh)} from ${a.verdict} (rule "${a.rule?.id ?? 'default'}") to ${b.verdict} (rule "${b.rule?.id ?? 'default'}")`)
    }
  }
  return out
}

/** The composed bundle as canonical JSON (what `compose -o` writes). */
export function composedJson(result: ComposeResult): string {
  return canonicalJson(result.document as JsonValue)
}


/**
 * Loading policy documents: parse strictly, tell the kind apart (aibox bundle, bare AI-Box
 * v1 policy, HELM PolicyBundle, HELM policy file), validate against its schema, run the
 * semantic checks a schema cannot express (unique ids, values that must parse by value), and
 * throw every problem at once. The result is a `LoadedBundle` with its content digest.
 */
import {type Problem, ValidationError} from '../errors.js'
import {canonicalBytes, sha256Digest} from './canonical.js'
import {isObject, type JsonObject, own, pointer} from './json.js'
import {isPathMatcher, normalizePath} from './match.js'
import {type CallRule, type DocumentKind, type HelmBundleRule, KIND_LABEL, type LoadedBundle, type ProfileDef, RESOURCE_KEYS, type SandboxPolicy, type Tier, TTL_KEYS, type Verdict} from './model.js'
import {type DocFormat, type ParsedDocument, parseDocument, readSource, sortProblems} from './parse.js'
import {profileProblems} from './profiles.js'
import {SCHEMA_IDS, validateDocument} from './schema.js'
import {parseDuration, parseQuantity} from './units.js'

export interface LoadOptions {
  /** Tier for documents without an envelope (flag or position); must agree with metadata.tier otherwise. */
  tier?: Tier
  /** Kinds the caller can use; anything else is refused with a clear message. */
  accept?: readonly DocumentKind[]
  /** Force the format instead of detecting it from the extension or content. */
  format?: DocFormat
}

/** Reads and loads a policy document from a file ("-" for stdin). */
export function loadBundle(file: string, options: LoadOptions = {}): LoadedBundle {
  return loadBundleText(readSource(file), file, options)
}

/** Loads a policy document from text or bytes; `file` is used in messages. */
export function loadBundleText(input: string | Uint8Array, file: string, options: LoadOptions = {}): LoadedBundle {
  const doc = parseDocument(input, file, {format: options.format})
  const problems: Problem[] = [...doc.problems]
  const value = doc.value
  if (!isObject(value)) {
    problems.push({file, line: 1, col: 1, pointer: '', message: `expected a mapping at the top level (got ${Array.isArray(value) ? 'a list' : value === null ? 'null' : `a ${typeof value}`})`})
    throw invalid(file, problems)
  }
  const kind = detectKind(value)
  if (typeof kind !== 'string') {
    problems.push({file, ...(doc.locate(kind.pointer, true) ?? {line: 1, col: 1}), pointer: kind.pointer, message: kind.message})
    throw invalid(file, problems)
  }
  if (options.accept && !options.accept.includes(kind)) {
    const what = options.accept.map((k) => KIND_LABEL[k]).join(' or ')
    throw new ValidationError('UNSUPPORTED_KIND', `${file} is a ${KIND_LABEL[kind]}; this command takes a ${what}`, [], {
      suggestions: kind === 'helm-bundle' ? ['HELM PolicyBundle rules are CEL expressions, which aibox does not evaluate; use an aibox bundle or a HELM policy file'] : undefined,
    })
  }
  // One problem per spot: a value the parser refused (replaced by null) is not also a type
  // error, and a value the schema refused is not also a semantic one.
  const reported = new Set(problems.map((p) => p.pointer))
  const schemaProblems = validateDocument(doc, schemaFor(kind)).filter((p) => !reported.has(p.pointer))
  problems.push(...schemaProblems)
  for (const p of schemaProblems) reported.add(p.pointer)
  const bundle = normalise(doc, value, kind, options)
  problems.push(...semanticProblems(doc, bundle, options).filter((p) => !reported.has(p.pointer)))
  if (problems.length > 0) throw invalid(file, problems)
  // Profiles must tighten the org policy and be listed weakest first (proven, not declared).
  if (bundle.profiles !== undefined && bundle.tier === 'org') {
    const pp = profileProblems(bundle)
    if (pp.length > 0) throw invalid(file, pp)
  }
  return bundle
}

function invalid(file: string, problems: Problem[]): ValidationError {
  const n = problems.length
  return new ValidationError('INVALID_BUNDLE', `${file}: ${n} problem${n === 1 ? '' : 's'}`, sortProblems(problems), {
    suggestions: ['fix every problem listed (file:line:col /pointer); README "Policy bundles" documents the format'],
  })
}

function schemaFor(kind: DocumentKind): string {
  switch (kind) {
    case 'aibox-bundle':
      return SCHEMA_IDS.bundle
    case 'aibox-policy':
      return SCHEMA_IDS.aiboxPolicy
    case 'helm-bundle':
      return SCHEMA_IDS.helmBundle
    case 'helm-policy':
      return SCHEMA_IDS.helmPolicy
  }
}

const AIBOX_POLICY_KEYS = ['network', 'filesystem', 'tools', 'resources', 'runtime', 'credentials']

/**
 * Tells the document kinds apart by their envelope (formats.md "Peer formats"): `apiVersion`
 * names the aibox or HELM bundle; without one, `version: 1` (a number) is an AI-Box v1 policy
 * and a string `version` with `rules` is a HELM policy file.
 */
export function detectKind(v: JsonObject): DocumentKind | {pointer: string; message: string} {
  const api = own(v, 'apiVersion')
  if (api !== undefined) {
    if (api === 'aibox.dev/v1') return 'aibox-bundle'
    if (api === 'helm.mindburn.run/v1') return 'helm-bundle'
    return {pointer: '/apiVersion', message: `unknown apiVersion ${JSON.stringify(api)}: expected "aibox.dev/v1" (aibox bundle) or "helm.mindburn.run/v1" (HELM PolicyBundle)`}
  }
  const version = own(v, 'version')
  if (typeof version === 'number' || AIBOX_POLICY_KEYS.some((k) => own(v, k) !== undefined)) return 'aibox-policy'
  if (typeof version === 'string' || own(v, 'rules') !== undefined || own(v, 'defaultVerdict') !== undefined) return 'helm-policy'
  return {
    pointer: '',
    message: 'cannot tell what this document is: expected an aibox bundle (apiVersion: aibox.dev/v1), a HELM PolicyBundle (apiVersion: helm.mindburn.run/v1), an AI-Box v1 policy (version: 1) or a HELM policy file (version: "1.0" with rules)',
  }
}

function normalise(doc: ParsedDocument, v: JsonObject, kind: DocumentKind, options: LoadOptions): LoadedBundle {
  const canonical = doc.canonical ?? safeCanonical(v)
  const base = {file: doc.file, format: doc.format, kind, document: v, digest: canonical ? sha256Digest(canonical) : '', source: doc}
  const meta = isObject(own(v, 'metadata')) ? (own(v, 'metadata') as JsonObject) : undefined
  const str = (o: JsonObject | undefined, k: string) => (o && typeof own(o, k) === 'string' ? (own(o, k) as string) : undefined)
  const metaTier = str(meta, 'tier') as Tier | undefined
  const tier = kind === 'aibox-bundle' ? metaTier : options.tier
  const out: LoadedBundle = {...base, rules: []}
  if (str(meta, 'name') !== undefined) out.name = str(meta, 'name')
  if (str(meta, 'version') !== undefined) out.version = str(meta, 'version')
  if (str(meta, 'description') !== undefined) out.description = str(meta, 'description')
  if (kind === 'aibox-bundle' && str(meta, 'tenant') !== undefined) out.tenant = str(meta, 'tenant')
  if (tier) out.tier = tier
  const arr = (k: string) => (Array.isArray(own(v, k)) ? (own(v, k) as unknown[]) : [])
  switch (kind) {
    case 'aibox-bundle':
      if (isObject(own(v, 'policy'))) out.policy = own(v, 'policy') as unknown as SandboxPolicy
      out.rules = arr('rules').filter(isObject) as unknown as CallRule[]
      if (own(v, 'defaultVerdict') !== undefined) out.defaultVerdict = own(v, 'defaultVerdict') as Verdict
      if (Array.isArray(own(v, 'profiles'))) {
        out.profiles = arr('profiles')
          .filter(isObject)
          .map((p) => {
            const def: ProfileDef = {name: own(p, 'name') as string, rules: Array.isArray(own(p, 'rules')) ? ((own(p, 'rules') as unknown[]).filter(isObject) as unknown as CallRule[]) : []}
            if (typeof own(p, 'description') === 'string') def.description = own(p, 'description') as string
            if (isObject(own(p, 'policy'))) def.policy = own(p, 'policy') as unknown as SandboxPolicy
            return def
          })
      }
      if (typeof own(v, 'defaultProfile') === 'string') out.defaultProfile = own(v, 'defaultProfile') as string
      break
    case 'aibox-policy':
      out.policy = v as unknown as SandboxPolicy
      break
    case 'helm-policy':
      // HELM policy files name their rules; the name is the rule id (seed 003).
      out.rules = arr('rules')
        .filter(isObject)
        .map((r) => {
          // Not String(name): a missing name must stay missing (the schema reports it), not become "undefined".
          const rule: CallRule = {id: own(r, 'name') as string, match: own(r, 'match') as unknown as CallRule['match'], verdict: own(r, 'verdict') as Verdict}
          if (typeof own(r, 'reason') === 'string') rule.reason = own(r, 'reason') as string
          if (typeof own(r, 'description') === 'string') rule.description = own(r, 'description') as string
          return rule
        })
      if (own(v, 'defaultVerdict') !== undefined) out.defaultVerdict = own(v, 'defaultVerdict') as Verdict
      break
    case 'helm-bundle':
      out.helmRules = arr('rules').filter(isObject) as unknown as HelmBundleRule[]
      break
  }
  return out
}

function safeCanonical(v: JsonObject): Buffer | undefined {
  try {
    return canonicalBytes(v)
  } catch {
    return undefined // reported as a parse problem already (e.g. a lone surrogate)
  }
}

/** Checks a schema cannot express: unique ids, values that must parse, tier agreement. */
function semanticProblems(doc: ParsedDocument, b: LoadedBundle, options: LoadOptions): Problem[] {
  const out: Problem[] = []
  const add = (ptr: string, message: string, preferKey = false) => out.push({file: doc.file, ...doc.locate(ptr, preferKey), pointer: ptr, message})
  const root = b.kind === 'aibox-bundle' ? '/policy' : ''
  if (b.kind === 'aibox-bundle' && options.tier && b.tier && options.tier !== b.tier) {
    add('/metadata/tier', `metadata.tier is ${JSON.stringify(b.tier)} but the file is used as the ${options.tier} tier`)
  }
  checkPolicy(b.policy, root, b.tier === 'org', add)
  const ruleList = b.kind === 'helm-bundle' ? (b.helmRules ?? []).map((r) => r.id) : b.rules.map((r) => r.id)
  checkRules(ruleList, b.rules, b.kind === 'helm-policy' ? 'name' : 'id', [], doc, add)
  if (b.kind === 'aibox-bundle') profileDefinitionProblems(doc, b, add)
  return out
}

type AddProblem = (ptr: string, message: string, preferKey?: boolean) => void

/** The sandbox-policy checks of a `policy:` block (or a profile's overlay at `root`). */
function checkPolicy(p: SandboxPolicy | undefined, root: string, isOrgRoot: boolean, add: AddProblem): void {
  if (!p || !isObject(p as unknown)) return
  const allow = Array.isArray(p.network?.allow) ? p.network!.allow : []
  const ids = new Map<string, number>()
  allow.forEach((e, i) => {
    if (!isObject(e as unknown) || typeof e.id !== 'string') return
    const first = ids.get(e.id)
    if (first !== undefined) add(`${root}/network/allow/${i}/id`, `duplicate network.allow id ${JSON.stringify(e.id)} (first at entry ${first})`)
    else ids.set(e.id, i)
    // The org tier is the root of every stack: there is no parent entry to inherit from.
    if (isOrgRoot) {
      if (e.hosts === undefined) add(`${root}/network/allow/${i}`, `network.allow[${e.id}] has no hosts (an org baseline entry cannot inherit them)`)
      if (e.ports === undefined) add(`${root}/network/allow/${i}`, `network.allow[${e.id}] has no ports (an org baseline entry cannot inherit them)`)
    }
  })
  const rules = Array.isArray(p.tools?.rules) ? p.tools!.rules : []
  const seen = new Map<string, number>()
  rules.forEach((r, i) => {
    if (!isObject(r as unknown) || !Array.isArray(r.match)) return
    const k = JSON.stringify(r.match)
    const first = seen.get(k)
    if (first !== undefined) add(`${root}/tools/rules/${i}/match`, `tools rule ${i} repeats the match of rule ${first} and can never apply (first match wins)`)
    else seen.set(k, i)
  })
  for (const k of RESOURCE_KEYS) {
    const q = p.resources?.[k]
    if (q !== undefined && (typeof q === 'string' || typeof q === 'number') && parseQuantity(q) === undefined) {
      add(`${root}/resources/${k}`, `${JSON.stringify(q)} is not a Kubernetes quantity`)
    }
  }
  for (const k of TTL_KEYS) {
    const d = p.credentials?.[k]
    if (typeof d === 'string' && parseDuration(d) === undefined) add(`${root}/credentials/${k}`, `${JSON.stringify(d)} is not a Go duration`)
  }
}

/** Unique rule ids and normalised path matchers of a rule list at `base` (e.g. [] or ['profiles', 0]). */
function checkRules(ids: unknown[], rules: CallRule[], ruleKey: string, base: Array<string | number>, doc: ParsedDocument, add: AddProblem): void {
  const firstAt = new Map<string, number>()
  ids.forEach((id, i) => {
    if (typeof id !== 'string') return
    const first = firstAt.get(id)
    if (first !== undefined) {
      const line = doc.locate(pointer([...base, 'rules', first, ruleKey]))?.line
      add(pointer([...base, 'rules', i, ruleKey]), `duplicate rule ${ruleKey} ${JSON.stringify(id)} (first at rules[${first}]${line ? `, line ${line}` : ''})`)
    } else firstAt.set(id, i)
  })
  rules.forEach((r, i) => {
    const args = r.match && isObject(r.match as unknown) && isObject(r.match.args as unknown) ? r.match.args! : undefined
    if (!args) return
    for (const name of Object.keys(args)) {
      const m = args[name]
      if (!isObject(m as unknown)) continue
      const value = 'equals' in m ? m.equals : 'startsWith' in m ? m.startsWith : undefined
      if (typeof value !== 'string' || !isPathMatcher(m)) continue
      const norm = normalizePath(value) + (value.endsWith('/') && value !== '/' ? '/' : '')
      if (norm !== value) add(pointer([...base, 'rules', i, 'match', 'args', name]), `path ${JSON.stringify(value)} is not normalised (write ${JSON.stringify(norm)})`)
    }
  })
}

/** Profiles (README "Profiles"): org tier only, unique names, a defaultProfile that exists, and each overlay checked like a policy. */
function profileDefinitionProblems(doc: ParsedDocument, b: LoadedBundle, add: AddProblem): void {
  const profiles = b.profiles
  if (profiles === undefined) {
    if (b.defaultProfile !== undefined) add('/defaultProfile', `defaultProfile ${JSON.stringify(b.defaultProfile)} names a profile, but the bundle defines no profiles`, true)
    return
  }
  if (b.tier !== undefined && b.tier !== 'org') add('/profiles', `only the org tier may define profiles (this bundle is the ${b.tier} tier): profiles are the org admin's catalog`, true)
  const names = new Map<string, number>()
  profiles.forEach((p, i) => {
    checkPolicy(p.policy, `/profiles/${i}/policy`, false, add)
    checkRules(p.rules.map((r) => r.id), p.rules, 'id', ['profiles', i], doc, add)
    if (typeof p.name !== 'string') return
    const first = names.get(p.name)
    if (first !== undefined) add(`/profiles/${i}/name`, `duplicate profile name ${JSON.stringify(p.name)} (first at profiles[${first}], line ${doc.locate(`/profiles/${first}/name`)?.line ?? '?'})`)
    else names.set(p.name, i)
  })
  if (b.defaultProfile !== undefined && !names.has(b.defaultProfile)) {
    add('/defaultProfile', `defaultProfile ${JSON.stringify(b.defaultProfile)} is not a profile of this bundle (profiles: ${[...names.keys()].join(', ')})`)
  }
}

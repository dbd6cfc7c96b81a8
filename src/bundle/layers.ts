/**
 * Policy layers: a tier's sandbox policy resolved against its parent (omitted fields inherit),
 * the tighten-only comparison of a layer with its parent (formats.md table, field by field),
 * and the merge of a stack into the effective policy (deny lists unioned, limits minimised).
 *
 * Every value in a layer remembers which tier and file set it (`from`), so a violation can
 * name the parent rule it loosens and where that rule comes from.
 */
import type {Problem} from '../errors.js'
import {hostCovers, normalizePath, pathCovers} from './match.js'
import {
  CREDENTIAL_FLAGS,
  type CredentialFlag,
  type Engine,
  ENGINES,
  type Quantity,
  type RateLimit,
  RESOURCE_KEYS,
  type ResourceKey,
  RUNTIME_FLAGS,
  type RuntimeFlag,
  type SandboxPolicy,
  type Tier,
  TTL_KEYS,
  type TtlKey,
} from './model.js'
import {compareToolLists, type LayerToolRule, showArgv, showMatch, ANY_TOKEN} from './tools.js'
import {compareRational, parseDuration, parseQuantity} from './units.js'

/** Where a value comes from. */
export interface Origin {
  tier?: Tier
  file: string
}

export interface Sourced<T> {
  value: T
  from: Origin
}

export interface LayerEntry {
  id: string
  hosts: string[]
  ports: number[]
  rate_limit: RateLimit
  from: Origin
}

/** A sandbox policy with inheritance applied and provenance on every value. */
export interface Layer {
  network: LayerEntry[]
  deny: Array<Sourced<string>>
  workspaceRoot?: Sourced<string>
  tools: LayerToolRule[]
  resources: Partial<Record<ResourceKey, Sourced<Quantity>>>
  engine?: Sourced<Engine>
  flags: Partial<Record<RuntimeFlag | CredentialFlag, Sourced<boolean>>>
  ttls: Partial<Record<TtlKey, Sourced<string>>>
  /** Who set the network.allow and tools.rules lists (the root tier owns the implicit "nothing allowed"). */
  listFrom: {network?: Origin; tools?: Origin}
}

/** One loosening: a child value that allows more than its parent stack. */
export interface Violation {
  /** The child tier (undefined for files compared outside a stack). */
  tier?: Tier
  /** The child's file, as given. */
  file: string
  /** The child's field, dotted (e.g. `network.allow[git-server].hosts`). */
  field: string
  /** The parent rule it loosens, dotted (e.g. `network.allow[git-server].hosts`). */
  against: string
  /** Tier and file of the parent rule. */
  againstTier?: Tier
  againstFile?: string
  /** The child's rule or entry involved (an id, a tools match, a rule id), or null. */
  rule: string | null
  /** The offending child value. */
  value: unknown
  /** The parent's value, when there is one. */
  parentValue?: unknown
  /** Stable code of the kind of loosening (HOST_ADDED, RESOURCE_RAISED, …). */
  code: string
  /** What the child does, e.g. `adds "pastebin.com"`. */
  detail: string
  /** The same change seen the other way round (used by diff for tightenings), e.g. `removes "pastebin.com"`. */
  inverse: string
  /** `team policy 'teams/alpha/policy.yaml' loosens org baseline rule '…': adds "pastebin.com"`. */
  message: string
}

const TIER_LABEL: Record<Tier, string> = {org: 'org baseline', team: 'team policy', project: 'project policy'}

export function tierLabel(t: Tier | undefined): string {
  return t ? TIER_LABEL[t] : 'policy'
}

/** The runbook's message shape (seed 004). */
export function violationMessage(v: Pick<Violation, 'tier' | 'file' | 'against' | 'againstTier' | 'detail'>): string {
  const parent = v.againstTier ? TIER_LABEL[v.againstTier] : 'parent'
  return `${tierLabel(v.tier)} '${v.file}' loosens ${parent} rule '${v.against}': ${v.detail}`
}

export function emptyLayer(): Layer {
  return {network: [], deny: [], tools: [], resources: {}, flags: {}, ttls: {}, listFrom: {}}
}

/**
 * The child's view of the policy: what it writes, with omitted fields inherited from the
 * parent layer (never loosening). A written `network.allow` or `filesystem.deny` list is the
 * child's complete list (entries it leaves out are dropped); entries inherit omitted fields
 * from the parent entry with the same id. Written `tools.rules` add to the parent's: new
 * rules go first, and a rule restating a parent match replaces that rule in place
 * (inheriting its omitted `allow` and `risk`).
 */
export function resolveLayer(parent: Layer | undefined, raw: SandboxPolicy | undefined, origin: Origin, problems?: Problem[]): Layer {
  const p = parent ?? emptyLayer()
  const out: Layer = {
    network: p.network,
    deny: p.deny,
    workspaceRoot: p.workspaceRoot,
    tools: p.tools,
    resources: {...p.resources},
    engine: p.engine,
    flags: {...p.flags},
    ttls: {...p.ttls},
    listFrom: parent ? {...p.listFrom} : {network: origin, tools: origin},
  }
  if (!raw) return out
  if (raw.network?.allow !== undefined) {
    out.listFrom.network = origin
    out.network = raw.network.allow.map((e) => {
      const pe = p.network.find((x) => x.id === e.id)
      const hosts = e.hosts ?? pe?.hosts
      const ports = e.ports ?? pe?.ports
      for (const [k, v] of [
        ['hosts', hosts],
        ['ports', ports],
      ] as const) {
        if (v === undefined) {
          problems?.push({file: origin.file, message: `network.allow[${e.id}] has no ${k} and no parent entry with id "${e.id}" to inherit them from`})
        }
      }
      return {
        id: e.id,
        hosts: hosts ?? [],
        ports: ports ?? [],
        rate_limit: {...pe?.rate_limit, ...e.rate_limit},
        from: origin,
      }
    })
  }
  if (raw.filesystem?.deny !== undefined) out.deny = raw.filesystem.deny.map((d) => ({value: normalizePath(d), from: origin}))
  if (raw.filesystem?.workspace_root !== undefined) out.workspaceRoot = {value: normalizePath(raw.filesystem.workspace_root), from: origin}
  if (raw.tools?.rules !== undefined) {
    out.listFrom.tools = origin
    const mine: LayerToolRule[] = raw.tools.rules.map((r) => {
      const same = p.tools.find((x) => sameMatch(x.match, r.match))
      return {match: [...r.match], allow: r.allow ?? same?.allow ?? false, risk: r.risk ?? same?.risk ?? 'safe', from: origin}
    })
    // New rules go first (a child adds rules); a rule restating a parent match replaces the
    // parent rule where it stands, so raising its risk never reorders the parent's rules.
    const replaced = p.tools.map((x) => mine.find((m) => sameMatch(m.match, x.match)) ?? x)
    out.tools = [...mine.filter((m) => !p.tools.some((x) => sameMatch(m.match, x.match))), ...replaced]
  }
  for (const k of RESOURCE_KEYS) {
    const v = raw.resources?.[k]
    if (v !== undefined) out.resources[k] = {value: v, from: origin}
  }
  if (raw.runtime?.engine !== undefined) out.engine = {value: raw.runtime.engine, from: origin}
  for (const k of RUNTIME_FLAGS) {
    const v = raw.runtime?.[k]
    if (v !== undefined) out.flags[k] = {value: v, from: origin}
  }
  for (const k of CREDENTIAL_FLAGS) {
    const v = raw.credentials?.[k]
    if (v !== undefined) out.flags[k] = {value: v, from: origin}
  }
  for (const k of TTL_KEYS) {
    const v = raw.credentials?.[k]
    if (v !== undefined) out.ttls[k] = {value: v, from: origin}
  }
  return out
}

function sameMatch(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i])
}

/**
 * The effective layer of parent + child: the child's view, with deny lists unioned and every
 * limit the stricter of the two (so the merge is safe even before the check has passed).
 */
export function mergeLayers(parent: Layer | undefined, child: Layer): Layer {
  if (!parent) return child
  const out: Layer = {...child, resources: {...child.resources}, flags: {...child.flags}, ttls: {...child.ttls}, listFrom: {...child.listFrom}}
  const deny = [...parent.deny]
  for (const d of child.deny) if (!deny.some((x) => x.value === d.value)) deny.push(d)
  out.deny = deny
  for (const k of RESOURCE_KEYS) {
    const a = parent.resources[k]
    const b = child.resources[k]
    if (a && b) out.resources[k] = compareRational(parseQuantity(b.value)!, parseQuantity(a.value)!) < 0 ? b : a
    else out.resources[k] = a ?? b
  }
  if (parent.engine && child.engine) out.engine = ENGINES.indexOf(child.engine.value) > ENGINES.indexOf(parent.engine.value) ? child.engine : parent.engine
  else out.engine = parent.engine ?? child.engine
  for (const k of [...RUNTIME_FLAGS, ...CREDENTIAL_FLAGS]) {
    const a = parent.flags[k]
    out.flags[k] = a?.value === true ? a : (child.flags[k] ?? a)
  }
  for (const k of TTL_KEYS) {
    const a = parent.ttls[k]
    const b = child.ttls[k]
    if (a && b) out.ttls[k] = compareRational(parseDuration(b.value)!, parseDuration(a.value)!) < 0 ? b : a
    else out.ttls[k] = a ?? b
  }
  for (const k of Object.keys(out.resources) as ResourceKey[]) if (out.resources[k] === undefined) delete out.resources[k]
  for (const k of Object.keys(out.flags) as Array<keyof Layer['flags']>) if (out.flags[k] === undefined) delete out.flags[k]
  for (const k of Object.keys(out.ttls) as TtlKey[]) if (out.ttls[k] === undefined) delete out.ttls[k]
  if (out.engine === undefined) delete out.engine
  return out
}

/** Renders a layer in the AI-Box v1 layout (what the sandbox reads). */
export function layerToPolicy(l: Layer): SandboxPolicy {
  const p: SandboxPolicy = {
    version: 1,
    network: {
      mode: 'deny-by-default',
      allow: l.network.map((e) => {
        const out: {id: string; hosts: string[]; ports: number[]; rate_limit?: RateLimit} = {id: e.id, hosts: [...e.hosts], ports: [...e.ports]}
        if (Object.keys(e.rate_limit).length > 0) out.rate_limit = {...e.rate_limit}
        return out
      }),
    },
    filesystem: {deny: l.deny.map((d) => d.value)},
    tools: {rules: l.tools.map((r) => ({match: [...r.match], allow: r.allow, risk: r.risk}))},
  }
  if (l.workspaceRoot) p.filesystem!.workspace_root = l.workspaceRoot.value
  const res: Partial<Record<ResourceKey, Quantity>> = {}
  for (const k of RESOURCE_KEYS) if (l.resources[k]) res[k] = l.resources[k]!.value
  if (Object.keys(res).length > 0) p.resources = res
  const rt: NonNullable<SandboxPolicy['runtime']> = {}
  if (l.engine) rt.engine = l.engine.value
  for (const k of RUNTIME_FLAGS) if (l.flags[k]) rt[k] = l.flags[k]!.value
  if (Object.keys(rt).length > 0) p.runtime = rt
  const cr: NonNullable<SandboxPolicy['credentials']> = {}
  for (const k of TTL_KEYS) if (l.ttls[k]) cr[k] = l.ttls[k]!.value
  for (const k of CREDENTIAL_FLAGS) if (l.flags[k]) cr[k] = l.flags[k]!.value
  if (Object.keys(cr).length > 0) p.credentials = cr
  return p
}

interface Who {
  tier?: Tier
  file: string
}

/**
 * Every way `child` allows more than `parent`, field by field (formats.md tighten-only
 * table). Both are resolved layers; in a stack the child inherited what it omits, so an
 * omission never shows up here, while a value the parent has and the child lacks (possible
 * only when comparing two complete policies, e.g. two versions) is a removal.
 */
export function compareLayers(parent: Layer, child: Layer, who: Who): Violation[] {
  const out: Violation[] = []
  const add = (v: Omit<Violation, 'tier' | 'file' | 'message'> & {againstFrom?: Origin}) => {
    const {againstFrom, ...rest} = v
    const full: Violation = {tier: who.tier, file: who.file, ...rest, message: ''}
    if (againstFrom?.tier) full.againstTier = againstFrom.tier
    if (againstFrom) full.againstFile = againstFrom.file
    full.message = violationMessage(full)
    out.push(full)
  }
  compareNetwork(parent, child, add)
  // filesystem.deny: every parent path must stay denied (by itself or an ancestor).
  for (const d of parent.deny) {
    if (!child.deny.some((c) => pathCovers(c.value, d.value))) {
      add({field: 'filesystem.deny', against: 'filesystem.deny', againstFrom: d.from, rule: null, value: d.value, parentValue: d.value, code: 'DENY_PATH_REMOVED', detail: `removes ${JSON.stringify(d.value)}`, inverse: `adds ${JSON.stringify(d.value)}`})
    }
  }
  // filesystem.workspace_root: equal or below the parent's.
  const pw = parent.workspaceRoot
  if (pw) {
    const cw = child.workspaceRoot
    if (!cw) {
      add({field: 'filesystem.workspace_root', against: 'filesystem.workspace_root', againstFrom: pw.from, rule: null, value: null, parentValue: pw.value, code: 'WORKSPACE_REMOVED', detail: `removes workspace_root (${pw.value})`, inverse: `sets workspace_root to ${pw.value}`})
    } else if (!pathCovers(pw.value, cw.value)) {
      add({field: 'filesystem.workspace_root', against: 'filesystem.workspace_root', againstFrom: pw.from, rule: null, value: cw.value, parentValue: pw.value, code: 'WORKSPACE_MOVED', detail: `moves workspace_root from ${pw.value} to ${cw.value} (only a path below it is allowed)`, inverse: `moves workspace_root from ${cw.value} to ${pw.value}`})
    }
  }
  compareTools(parent, child, add)
  for (const k of RESOURCE_KEYS) {
    const a = parent.resources[k]
    if (!a) continue
    const b = child.resources[k]
    if (!b) {
      add({field: `resources.${k}`, against: `resources.${k}`, againstFrom: a.from, rule: null, value: null, parentValue: a.value, code: 'RESOURCE_REMOVED', detail: `removes the ${k} limit (${a.value})`, inverse: `sets a ${k} limit (${a.value})`})
    } else if (compareRational(parseQuantity(b.value)!, parseQuantity(a.value)!) > 0) {
      add({field: `resources.${k}`, against: `resources.${k}`, againstFrom: a.from, rule: null, value: b.value, parentValue: a.value, code: 'RESOURCE_RAISED', detail: `raises ${k} from ${a.value} to ${b.value}`, inverse: `lowers ${k} from ${b.value} to ${a.value}`})
    }
  }
  if (parent.engine) {
    const a = parent.engine
    const b = child.engine
    const weaker = !b || ENGINES.indexOf(b.value) < ENGINES.indexOf(a.value)
    if (weaker) {
      const to = b?.value ?? 'unset'
      add({field: 'runtime.engine', against: 'runtime.engine', againstFrom: a.from, rule: null, value: b?.value ?? null, parentValue: a.value, code: 'ENGINE_WEAKENED', detail: `weakens engine from ${a.value} to ${to} (runc < gvisor < kata)`, inverse: `strengthens engine from ${to} to ${a.value}`})
    }
  }
  for (const k of [...RUNTIME_FLAGS, ...CREDENTIAL_FLAGS]) {
    const a = parent.flags[k]
    if (a?.value !== true) continue
    const b = child.flags[k]
    if (b?.value !== true) {
      const field = (RUNTIME_FLAGS as readonly string[]).includes(k) ? `runtime.${k}` : `credentials.${k}`
      add({field, against: field, againstFrom: a.from, rule: null, value: b?.value ?? null, parentValue: true, code: 'FLAG_TURNED_OFF', detail: `turns off ${k}`, inverse: `turns on ${k}`})
    }
  }
  for (const k of TTL_KEYS) {
    const a = parent.ttls[k]
    if (!a) continue
    const b = child.ttls[k]
    const field = `credentials.${k}`
    if (!b) {
      add({field, against: field, againstFrom: a.from, rule: null, value: null, parentValue: a.value, code: 'TTL_REMOVED', detail: `removes ${k} (${a.value})`, inverse: `sets ${k} to ${a.value}`})
    } else if (compareRational(parseDuration(b.value)!, parseDuration(a.value)!) > 0) {
      add({field, against: field, againstFrom: a.from, rule: null, value: b.value, parentValue: a.value, code: 'TTL_LENGTHENED', detail: `lengthens ${k} from ${a.value} to ${b.value}`, inverse: `shortens ${k} from ${b.value} to ${a.value}`})
    }
  }
  return out
}

type Add = (v: Omit<Violation, 'tier' | 'file' | 'message'> & {againstFrom?: Origin}) => void

/**
 * network.allow, flow by flow: each (host, port) a child entry allows must be allowed by a
 * parent entry covering the host and the port, with rate limits at most the parent's. The
 * parent entry with the same id is tried first and named in messages.
 */
function compareNetwork(parent: Layer, child: Layer, add: Add): void {
  const RATE_KEYS = ['requests_per_min', 'tokens_per_min'] as const
  const rateOk = (c: LayerEntry, p: LayerEntry) => RATE_KEYS.every((k) => p.rate_limit[k] === undefined || (c.rate_limit[k] !== undefined && c.rate_limit[k]! <= p.rate_limit[k]!))
  for (const c of child.network) {
    const same = parent.network.find((p) => p.id === c.id)
    const base = `network.allow[${c.id}]`
    const reported = new Set<string>()
    for (const h of c.hosts) {
      const covering = parent.network.filter((p) => p.hosts.some((ph) => hostCovers(ph, h)))
      const ordered = same && covering.includes(same) ? [same, ...covering.filter((p) => p !== same)] : covering
      if (ordered.some((p) => c.ports.every((port) => p.ports.includes(port)) && rateOk(c, p))) continue
      if (ordered.length === 0) {
        const against = same ? `network.allow[${same.id}].hosts` : 'network.allow'
        add({field: `${base}.hosts`, against, againstFrom: same?.from ?? parent.listFrom.network, rule: c.id, value: h, parentValue: same ? same.hosts : null, code: 'HOST_ADDED', detail: `adds ${JSON.stringify(h)}`, inverse: `removes ${JSON.stringify(h)}`})
        continue
      }
      const p = ordered[0]
      for (const port of c.ports) {
        if (p.ports.includes(port) || reported.has(`port:${port}`)) continue
        reported.add(`port:${port}`)
        add({field: `${base}.ports`, against: `network.allow[${p.id}].ports`, againstFrom: p.from, rule: c.id, value: port, parentValue: p.ports, code: 'PORT_ADDED', detail: `adds port ${port}${p.id === c.id ? '' : ` for ${JSON.stringify(h)}`}`, inverse: `removes port ${port}`})
      }
      for (const k of RATE_KEYS) {
        const pv = p.rate_limit[k]
        const cv = c.rate_limit[k]
        if (pv === undefined || reported.has(`rate:${k}`)) continue
        const field = `${base}.rate_limit.${k}`
        const against = `network.allow[${p.id}].rate_limit.${k}`
        if (cv === undefined) {
          reported.add(`rate:${k}`)
          add({field, against, againstFrom: p.from, rule: c.id, value: null, parentValue: pv, code: 'RATE_LIMIT_REMOVED', detail: `removes the ${k} limit (${pv})`, inverse: `sets ${k} to ${pv}`})
        } else if (cv > pv) {
          reported.add(`rate:${k}`)
          add({field, against, againstFrom: p.from, rule: c.id, value: cv, parentValue: pv, code: 'RATE_LIMIT_RAISED', detail: `raises ${k} from ${pv} to ${cv}`, inverse: `lowers ${k} from ${cv} to ${pv}`})
        }
      }
    }
  }
}

function compareTools(parent: Layer, child: Layer, add: Add): void {
  for (const l of compareToolLists(parent.tools, child.tools)) {
    const c = l.child.rule! // a loosening is always decided by a child rule
    const p = l.parent.rule
    const example = showArgv(l.argv)
    const cm = showMatch(c.match)
    const field = `tools.rules[${cm}]`
    const against = p ? `tools.rules[${showMatch(p.match)}]` : 'tools.rules'
    const againstFrom = p?.from ?? parent.listFrom.tools
    const exampleNote = example === cm ? '' : ` (e.g. "${example}")`
    let detail: string
    let inverse: string
    let code: string
    if (!p) {
      code = 'TOOL_ALLOWED'
      detail = `allows "${cm}"${exampleNote}, which no parent rule allows (denied by default)`
      inverse = `no longer allows "${cm}"`
    } else if (sameMatch(p.match, c.match)) {
      if (!p.allow) {
        code = 'TOOL_FLIPPED'
        detail = `flips "${cm}" from deny to allow`
        inverse = `flips "${cm}" from allow to deny`
      } else {
        code = 'TOOL_RISK_LOWERED'
        detail = `lowers the risk of "${cm}" from ${p.risk} to ${c.risk}`
        inverse = `raises the risk of "${cm}" from ${c.risk} to ${p.risk}`
      }
    } else if (!p.allow) {
      code = 'TOOL_SHADOWS_DENY'
      detail = c.match.length <= p.match.length ? `adds an earlier, more general allow "${cm}" that shadows deny "${showMatch(p.match)}"${exampleNote}` : `allows "${cm}", which parent rule "${showMatch(p.match)}" denies`
      inverse = `denies "${example}" (was allowed by "${cm}")`
    } else {
      code = 'TOOL_RISK_LOWERED'
      detail = `lowers the risk of "${example}" from ${p.risk}${showMatch(p.match) === example ? '' : ` (rule "${showMatch(p.match)}")`} to ${c.risk}`
      inverse = `raises the risk of "${example}" from ${c.risk} to ${p.risk}`
    }
    add({field, against, againstFrom, rule: cm, value: l.argv.map((t) => (t === ANY_TOKEN ? '…' : t)), parentValue: p ? {match: p.match, allow: p.allow, risk: p.risk} : null, code, detail, inverse})
  }
}


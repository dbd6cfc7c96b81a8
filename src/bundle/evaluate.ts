/**
 * Decisions: what a stack (or one file, or an effective policy) says about a tool call
 * (`--tool NAME --args JSON`, HELM-style rules) or a command line (`--command "git push"`,
 * the AI-Box `tools.rules`). A stack that loosens has no effective policy and is refused.
 */
import {type Call, type CallTier, decideCall} from './calls.js'
import {type EffectivePolicyDocument, effectiveCallTiers} from './effective.js'
import {dict} from './json.js'
import {resolveLayer} from './layers.js'
import type {LoadedBundle, Risk, Tier, Verdict} from './model.js'
import {analyzeStack, loosenedError} from './tighten.js'
import {decideTools, type LayerToolRule, showMatch} from './tools.js'

export interface Decision {
  verdict: Verdict
  /** The deciding rule: a rule id, a tools match ("git push"), or null for the default. */
  rule: string | null
  /** Machine-readable reason: the rule's reason code, or default-deny / default-allow. */
  reason: string
  /** Tier of the deciding rule (or of the default), when known. */
  tier: Tier | null
  /** File of the deciding rule, when known. */
  file: string | null
  /** For commands: the risk level of an allowed command. */
  risk?: Risk
}

export type EvalTarget = LoadedBundle | readonly LoadedBundle[] | EffectivePolicyDocument

function isEffective(t: EvalTarget): t is EffectivePolicyDocument {
  return !Array.isArray(t) && (t as EffectivePolicyDocument).kind === 'EffectivePolicy'
}

interface Resolved {
  tiers: CallTier[]
  tools: LayerToolRule[]
}

// Targets are immutable once loaded: resolve each once (policy tests evaluate many cases).
const resolved = new WeakMap<object, Resolved>()

function resolveTarget(t: EvalTarget): Resolved {
  const hit = resolved.get(t)
  if (hit) return hit
  let r: Resolved
  if (isEffective(t)) {
    r = {tiers: effectiveCallTiers(t), tools: resolveLayer(undefined, t.policy, {file: 'effective policy'}).tools}
  } else {
    const stack = Array.isArray(t) ? (t as readonly LoadedBundle[]) : [t as LoadedBundle]
    const a = analyzeStack(stack)
    if (!a.ok) throw loosenedError(a.violations)
    r = {tiers: a.callTiers, tools: a.layer.tools}
  }
  resolved.set(t, r)
  return r
}

/** The decision for a tool call: per tier first match, a deny from any tier wins, else the strictest default. */
export function evaluateCall(target: EvalTarget, call: {tool: string; args?: Record<string, unknown>}): Decision {
  const {tiers} = resolveTarget(target)
  const args = dict<unknown>()
  for (const [k, v] of Object.entries(call.args ?? {})) args[k] = v
  const d = decideCall(tiers, {tool: call.tool, args} satisfies Call)
  return {verdict: d.verdict, rule: d.rule?.id ?? null, reason: d.reason, tier: d.origin?.tier ?? null, file: d.origin?.file ?? null}
}

/** The decision for a command line (argv), from the effective `tools.rules`: first match wins, none means denied. */
export function evaluateCommand(target: EvalTarget, argv: readonly string[]): Decision {
  const {tools} = resolveTarget(target)
  const d = decideTools(tools, argv)
  if (!d.rule) return {verdict: 'deny', rule: null, reason: 'default-deny', tier: null, file: null}
  const out: Decision = {
    verdict: d.allow ? 'allow' : 'deny',
    rule: showMatch(d.rule.match),
    reason: d.allow ? `allowed-${d.risk}` : 'denied-by-rule',
    tier: d.rule.from.tier ?? null,
    file: d.rule.from.file,
  }
  if (d.allow) out.risk = d.risk
  return out
}

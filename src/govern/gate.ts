/**
 * The submit gate of `aibox push` (README "Governance", seed 004 §2-3): a policy of a protected
 * tier is published only when it tightens the tiers above it (`bundle check`) and passes its own
 * policy tests; otherwise the push is refused (exit 5), unless it is a draft, which is tagged
 * `draft-<version>` only and never used as a release.
 *
 * Which tiers are protected: a trust policy scope that applies to the destination and tier decides
 * with `protected: true|false` (true wins when scopes disagree); without one, org and team tiers are
 * protected (they are inherited by every sandbox below them) and project tiers are not (they live
 * in the project's repository and `aibox start` checks them against the published tiers).
 */
import fs from 'node:fs'
import path from 'node:path'

import {loadBundle, loadBundleText} from '../bundle/load.js'
import type {LoadedBundle, Tier} from '../bundle/model.js'
import {TIERS} from '../bundle/model.js'
import type {Violation} from '../bundle/layers.js'
import {loadPolicyTests, runPolicyTests} from '../bundle/testing.js'
import {analyzeStack, assignTiers} from '../bundle/tighten.js'
import {isReferenceArgument} from '../cli/reference-arg.js'
import {GovernanceError, InputError} from '../errors.js'
import {type OpenOptions, openForRead, requireSelector, withDigest} from '../distribute/targets.js'
import {verifyPolicyArtifact} from '../distribute/verify.js'
import {type TrustTarget, scopeApplies} from '../trust/evaluate.js'
import type {TrustPolicy} from '../trust/policy.js'

/** Tiers the gate protects when no trust policy scope says otherwise. */
export const DEFAULT_PROTECTED_TIERS: readonly Tier[] = ['org', 'team']

export interface Protection {
  protected: boolean
  /** Why: `tier org is protected by default`, or the trust scopes that decided. */
  by: string
}

/** Whether pushes of `tier` to `target` go through the gate (see the module comment). */
export function protectionFor(tier: Tier, target: TrustTarget, trust?: TrustPolicy): Protection {
  const deciding = (trust?.scopes ?? []).filter((s) => s.protected !== undefined && scopeApplies(s, {...target, tier}))
  const yes = deciding.filter((s) => s.protected === true)
  if (yes.length > 0) return {protected: true, by: `trust scope${yes.length === 1 ? '' : 's'} ${yes.map((s) => `'${s.name}'`).join(', ')} set${yes.length === 1 ? 's' : ''} protected: true`}
  if (deciding.length > 0) return {protected: false, by: `trust scope${deciding.length === 1 ? '' : 's'} ${deciding.map((s) => `'${s.name}'`).join(', ')} set${deciding.length === 1 ? 's' : ''} protected: false`}
  const byDefault = DEFAULT_PROTECTED_TIERS.includes(tier)
  return {protected: byDefault, by: `tier ${tier} is ${byDefault ? 'protected' : 'not protected'} by default`}
}

/** A tier above the pushed one, as the gate used it. */
export interface AgainstTier {
  /** The file or reference as given. */
  spec: string
  tier: Tier
  /** The bundle's content digest; for a reference also the verified manifest digest. */
  digest: string
  reference?: string
}

export interface GateTestFailure {
  file: string
  name: string
  failures: string[]
}

export interface GateResult {
  protected: boolean
  protectedBy: string
  /** True when every check passed (or the tier is not protected). */
  ok: boolean
  tightenOnly: {
    /** `not-applicable`: an org tier has nothing above it; `skipped`: not protected. */
    status: 'passed' | 'failed' | 'missing-base' | 'not-applicable' | 'skipped'
    against: AgainstTier[]
    violations: Violation[]
  }
  tests: {
    /** `none`: no tests file was given or found; `not-run`: the stack loosens, so it cannot be evaluated. */
    status: 'passed' | 'failed' | 'none' | 'not-run' | 'skipped'
    files: string[]
    passed: number
    failed: number
    failures: GateTestFailure[]
  }
  /** One line per reason the gate refuses (empty when ok). */
  problems: string[]
}

/** `<dir>/<stem>.tests.yaml` (or .yml/.json) next to a bundle file: the bundle's own tests, when present. */
export function conventionalTestsFile(bundleFile: string): string | undefined {
  const dir = path.dirname(bundleFile)
  const stem = path.basename(bundleFile).replace(/\.(ya?ml|json)$/i, '')
  for (const ext of ['yaml', 'yml', 'json']) {
    const candidate = path.join(dir, `${stem}.tests.${ext}`)
    if (fs.existsSync(candidate)) return candidate
  }
  return undefined
}

export interface ResolveAgainstOptions extends OpenOptions {
  /** Verifies `--against` references (a reference is never read unverified). */
  trust?: TrustPolicy
  signal?: AbortSignal
}

/**
 * Loads a tier above: a bundle file, or a published reference verified with the trust policy
 * (its canonical content is then the tier, exactly as `aibox start` would load it).
 */
export async function resolveAgainst(spec: string, options: ResolveAgainstOptions = {}): Promise<{bundle: LoadedBundle; against: AgainstTier}> {
  if (!isReferenceArgument(spec)) {
    const bundle = loadBundle(spec)
    return {bundle, against: {spec, tier: bundle.tier ?? 'org', digest: bundle.digest}}
  }
  if (!options.trust) {
    throw new InputError('AGAINST_NEEDS_TRUST', `--against ${spec} is a reference: verifying it needs --trust TRUST.yaml (the gate never reads an unverified policy)`, {
      suggestions: ['pass --trust, or give the tier above as a file'],
    })
  }
  const opened = await openForRead(spec, options)
  try {
    const v = await verifyPolicyArtifact(opened.target, requireSelector(opened), {trust: options.trust, signal: options.signal})
    const bundle = loadBundleText(v.canonical, spec, {format: 'json'})
    const reference = withDigest(opened.reference, v.manifest.digest)
    return {bundle, against: {spec, tier: v.tier, digest: v.contentDigest, reference}}
  } finally {
    await opened.close()
  }
}

export interface GateInput {
  bundle: LoadedBundle
  protection: Protection
  /** The tiers above, most general first. */
  against: Array<{bundle: LoadedBundle; against: AgainstTier}>
  /** Tests files (the `--tests` flags plus the conventional file next to the bundle). */
  tests: string[]
}

/** Runs the gate's checks; never throws for a failed check (see `assertGate`). Bad input (a tests file that does not parse, tiers out of order) throws InputError. */
export function runGate(input: GateInput): GateResult {
  const {bundle, protection} = input
  const tier = bundle.tier!
  const result: GateResult = {
    protected: protection.protected,
    protectedBy: protection.by,
    ok: true,
    tightenOnly: {status: 'skipped', against: input.against.map((a) => a.against), violations: []},
    tests: {status: 'skipped', files: input.tests, passed: 0, failed: 0, failures: []},
    problems: [],
  }
  if (!protection.protected) return result
  // Bare AI-Box files take their tier from their position (org first), as in `bundle check`.
  const above = assignTiers(input.against.map((a) => a.bundle))
  input.against.forEach((a, i) => (a.against.tier = above[i]!.tier!))
  result.tightenOnly.against = input.against.map((a) => a.against)
  for (const a of input.against) {
    if (TIERS.indexOf(a.against.tier) >= TIERS.indexOf(tier)) {
      throw new InputError('AGAINST_TIER', `--against ${a.against.spec} is a ${a.against.tier} tier, not above the ${tier} tier being pushed`, {
        suggestions: ['give the tiers above, most general first: the org baseline, then (for a project) the team policy'],
      })
    }
  }
  let stackOk = true
  if (tier === 'org') {
    result.tightenOnly.status = 'not-applicable'
  } else if (above.length === 0) {
    result.tightenOnly.status = 'missing-base'
    stackOk = false
    result.problems.push(`a ${tier} policy must tighten the tiers above it, but none was given: pass --against with the org baseline${tier === 'project' ? ' (and the team policy)' : ''} as a file or reference`)
  } else {
    const a = analyzeStack([...above, bundle])
    result.tightenOnly.violations = a.violations
    result.tightenOnly.status = a.ok ? 'passed' : 'failed'
    if (!a.ok) {
      stackOk = false
      result.problems.push(`tighten-only: ${a.violations.length} loosening${a.violations.length === 1 ? '' : 's'} of ${input.against.map((x) => `'${x.against.spec}'`).join(' + ')}:`)
      for (const v of a.violations) result.problems.push(`  ${v.message}`)
    }
  }
  if (input.tests.length === 0) {
    result.tests.status = 'none'
  } else if (!stackOk && above.length > 0) {
    result.tests.status = 'not-run'
  } else {
    const target = above.length > 0 ? [...above, bundle] : bundle
    for (const file of input.tests) {
      const report = runPolicyTests(target, loadPolicyTests(file))
      result.tests.passed += report.passed
      result.tests.failed += report.failed
      for (const r of report.results) if (!r.ok) result.tests.failures.push({file, name: r.name, failures: r.failures})
    }
    result.tests.status = result.tests.failed === 0 ? 'passed' : 'failed'
    if (result.tests.failed > 0) {
      result.problems.push(`policy tests: ${result.tests.failed} of ${result.tests.passed + result.tests.failed} failed:`)
      for (const f of result.tests.failures) result.problems.push(`  ${f.file}: ${f.name}: ${f.failures.join('; ')}`)
    }
  }
  result.ok = result.problems.length === 0
  return result
}

/** Throws SUBMIT_GATE_FAILED (exit 5) for a failed gate, naming every reason. */
export function assertGate(result: GateResult, what: string): void {
  if (result.ok) return
  throw new GovernanceError('SUBMIT_GATE_FAILED', `the submit gate refuses ${what}, protected because ${result.protectedBy}:\n${result.problems.map((l) => `  ${l}`).join('\n')}`, {
    suggestions: [
      'fix the policy (aibox bundle check --base … / aibox bundle test … show the same results) and push again',
      'or push it as a draft for review: aibox push … --draft (tagged draft-<version>, never used as a release)',
    ],
    details: {gate: result},
  })
}

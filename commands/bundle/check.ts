import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {refuse} from '../../src/cli/outcome.js'
import {analyzeStack, canonicalJson, selectProfile, type EffectivePolicyDocument, effectiveDigest, effectivePolicy, loadBundle, loosenedError, tierLabel, type Violation, writeOutputFile} from '../../src/bundle/index.js'

export interface CheckCommandResult {
  ok: boolean
  /** The stack, org first, with the tier each file was checked as. */
  stack: Array<{file: string; tier: string; digest: string}>
  violations: Violation[]
  effective?: EffectivePolicyDocument
  /** Digest of the effective policy (when ok). */
  digest?: string
  output?: string
}

export default class Check extends BaseCommand<CheckCommandResult> {
  static override summary = 'Check that a policy only tightens its base tiers (tighten-only), and print the effective policy.'
  static override description = `Compares the team policy with the org baseline, and a project policy with the merge of org and team, field by field as the tighten-only table says (README "Tighten-only rules"): hosts and wildcards, ports, rate limits, denied paths, workspace root, tools rules and risk, resources and TTLs by value, runtime engine and flags, tool-call rules and the default verdict. Omitted fields inherit. Every loosening is reported (exit 2) and nothing is written. When the stack tightens only, --effective prints the merged policy and -o writes it (canonical JSON, atomically). Bare AI-Box v1 policy files take their tier from their position: the first --base is the org baseline.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --base org/baseline.yaml teams/alpha/policy.yaml',
    '<%= config.bin %> <%= command.id %> --base org/baseline.yaml --base teams/alpha/policy.yaml projects/webapp/aibox/policy.yaml --effective',
    '<%= config.bin %> <%= command.id %> --base org/baseline.yaml --base teams/alpha/policy.yaml aibox/policy.yaml -o effective.json --json',
    '<%= config.bin %> <%= command.id %> --base org/baseline.yaml --profile audit-strict teams/alpha/policy.yaml',
  ]
  static override args = {
    child: Args.string({description: 'the policy to check (team or project)', required: true}),
  }
  static override flags = {
    base: Flags.string({description: 'a base tier, most general first (org, then team); repeat the flag for each', multiple: true, multipleNonGreedy: true}),
    effective: Flags.boolean({description: 'print the effective (merged) policy when the check passes', default: false}),
    output: Flags.string({char: 'o', description: 'write the effective policy (canonical JSON) to this file when the check passes'}),
    force: Flags.boolean({description: 'replace an existing output file', default: false}),
    profile: Flags.string({description: "check against the org baseline with this profile of it selected (org + profile + team + project; README \"Profiles\")", helpValue: 'NAME'}),
  }

  async run(): Promise<CheckCommandResult> {
    const {args, flags} = await this.parse(Check)
    const files = [...(flags.base ?? []), args.child]
    let bundles = files.map((f) => loadBundle(f))
    if (flags.profile !== undefined) bundles = [...selectProfile(bundles[0]!, flags.profile, '--profile').stack, ...bundles.slice(1)]
    const a = analyzeStack(bundles)
    const stack = a.stack.map((b) => ({file: b.file, tier: b.tier!, digest: b.digest}))
    if (!a.ok) {
      return refuse(this, {ok: false, stack, violations: a.violations}, loosenedError(a.violations))
    }
    const doc = effectivePolicy(a.stack)
    const canonical = canonicalJson(doc)
    const digest = effectiveDigest(doc)
    const result: CheckCommandResult = {ok: true, stack, violations: []}
    if (flags.output) {
      writeOutputFile(flags.output, canonical, {overwrite: flags.force})
      result.output = flags.output
    }
    const child = a.stack.at(-1)!
    if (a.stack.length > 1) {
      this.log(`ok: ${tierLabel(child.tier)} '${child.file}' only tightens ${a.stack.slice(0, -1).map((b) => `'${b.file}'`).join(' + ')}`)
    } else {
      this.log(`ok: '${child.file}' is a valid ${child.tier} tier`)
    }
    this.log(`effective policy ${digest}`)
    if (flags.effective) {
      result.effective = doc
      this.log(JSON.stringify(doc, null, 2))
    }
    if (result.output) this.info(`wrote ${result.output}`)
    result.digest = digest
    return result
  }
}

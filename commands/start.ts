import {Flags, type Interfaces} from '@oclif/core'

import {BaseCommand} from '../src/cli/base.js'
import {START_FLAGS, type StartFlagSpec, type StartFlagValues, bannerOf, execCommand, finisher, manifestEnv, runRecord, splitAtDashDash, summaryLines, toStartOptions} from '../src/start/cli.js'
import {startPolicy} from '../src/start/run.js'
import type {StartResult} from '../src/start/types.js'

/** The oclif flags from the one table the fast path parses too (src/start/cli.ts). */
function oclifFlags(): Interfaces.FlagInput {
  const out: Record<string, unknown> = {}
  for (const [name, s] of Object.entries(START_FLAGS) as Array<[string, StartFlagSpec]>) {
    const common = {summary: s.summary, ...(s.char ? {char: s.char as 'c'} : {}), ...(s.helpValue ? {helpValue: s.helpValue} : {})}
    out[name] = s.type === 'boolean' ? Flags.boolean(common) : s.multiple ? Flags.string({...common, multiple: true}) : Flags.string(common)
  }
  return out as Interfaces.FlagInput
}

export default class Start extends BaseCommand<StartResult | undefined> {
  static override summary = 'Load the verified policy stack for a sandbox (cache, freshness check, verification), then run the sandbox command'
  static override description = `Reads aibox.yaml (--config, AIBOX_CONFIG, ./aibox.yaml, ~/.config/aibox/aibox.yaml), checks each tier's tag with one request, and uses the verified cache when the digest is unchanged. A new digest is fetched and verified (signatures against the trust policy or --key, content, tier), an older version is refused unless a signed approval with an incident reference is attached, and the stack must only tighten (team vs org, project vs team + org). When the registry cannot be reached the verified cache is used with a warning, up to maxStaleness (then the sealed-mode banner). A verification failure never falls back unless --override-verification --reason is given (logged; runs are tainted policy_override). With AIBOX_POLICY_LOCK=1 a policy weaker than the last loaded one is refused (exit 5) unless --override-lock --reason.

Every load is logged as policy.loaded in the audit log. The effective policy (canonical JSON) is written to the cache, and the command after -- runs with AIBOX_POLICY_FILE, AIBOX_POLICY_DIGEST, AIBOX_POLICY_VERSION and AIBOX_POLICY_SOURCE (and AIBOX_POLICY_TAINT when tainted); its exit status is aibox's. Without a command the result is printed (--json for machines).

Exit codes: 0 ok, 1 usage or invalid configuration, 2 verification failed (signature, digest, trust, rollback, loosening), 3 not found, 4 source unreachable and no usable cache (or past maxStaleness), 5 refused by the policy lock.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> -- my-agent --task review',
    '<%= config.bin %> <%= command.id %> --json',
    '<%= config.bin %> <%= command.id %> --key release.pub --offline -- bash',
    '<%= config.bin %> <%= command.id %> --tenant acme -- my-agent',
    'AIBOX_POLICY_LOCK=1 <%= config.bin %> <%= command.id %> --override-lock --reason "SEC-77: temporary egress for the migration" -- my-agent',
  ]
  static override strict = false
  static override flags = oclifFlags()

  async run(): Promise<StartResult | undefined> {
    const {flags: before, command} = splitAtDashDash(this.argv)
    const {flags, argv} = await this.parse(Start, before)
    if (argv.length > 0) this.error(`unexpected argument(s) ${argv.map((a) => JSON.stringify(a)).join(' ')}: put the sandbox command after --`, {exit: 1, code: 'UNEXPECTED_ARGUMENTS'})
    const values = flags as StartFlagValues
    if (this.json && command.length > 0) this.error('--json prints the result when there is no command; with a command, stdout belongs to the command', {exit: 1, code: 'JSON_WITH_COMMAND'})
    let outcome
    try {
      outcome = await startPolicy({...toStartOptions(values), onWarning: (m) => process.stderr.write(`warning: ${m}\n`)})
    } catch (err) {
      const banner = bannerOf(err)
      if (banner) process.stderr.write(`${banner}\n`)
      throw err
    }
    if (command.length > 0 && outcome.result.tenant !== undefined) process.stderr.write(`tenant ${outcome.result.tenant}\n`)
    if (!values.quiet) for (const l of outcome.lines) process.stderr.write(`${l}\n`)
    const manifest = runRecord(values, outcome.result, command)
    if (command.length > 0) {
      process.exitCode = await execCommand(command, {...process.env, ...outcome.env, ...manifestEnv(manifest)}, undefined, finisher(manifest))
      return undefined
    }
    manifest?.finish(0)
    for (const l of summaryLines(outcome.result)) this.log(l)
    return outcome.result
  }
}

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {type Decision, evaluateCall, evaluateCommand, isObject, loadBundle, parseStrict, splitCommand} from '../../src/bundle/index.js'
import {InputError} from '../../src/errors.js'

export interface EvalResult extends Decision {
  /** What was evaluated. */
  subject: {tool: string; args: Record<string, unknown>} | {command: string[]}
}

export default class Eval extends BaseCommand<EvalResult> {
  static override summary = 'Evaluate a tool call or a command against a policy (or a stack of tiers).'
  static override description = `--tool NAME --args JSON evaluates a tool call against the tool-call rules (HELM style): first match wins within a tier, a deny from any tier wins, and when nothing matches the default verdict applies (deny unless set: fail closed). --command "git push" evaluates a command line against the effective tools.rules (argv prefixes, first match wins, no match is denied). With several files (org first), the stack must pass the tighten-only check and the effective decision is printed. Path arguments are normalised, so ".." cannot escape an allowed prefix. Accepts aibox bundles, AI-Box v1 policy files and HELM policy files.`
  static override examples = [
    `<%= config.bin %> <%= command.id %> org/baseline.yaml --tool write_file --args '{"path": "/workspace/src/app.ts"}'`,
    `<%= config.bin %> <%= command.id %> org/baseline.yaml teams/alpha/policy.yaml --tool get_file --args '{"path": "/workspace/secrets/token"}' --json`,
    '<%= config.bin %> <%= command.id %> org/baseline.yaml teams/alpha/policy.yaml --command "git push origin main"',
  ]
  static override strict = false
  static override args = {
    files: Args.string({description: 'policy files, org first', required: true}),
  }
  static override flags = {
    tool: Flags.string({description: 'tool name of the call', exactlyOne: ['tool', 'command']}),
    args: Flags.string({description: 'arguments of the call, a JSON object', dependsOn: ['tool']}),
    command: Flags.string({description: 'a command line ("git push origin main"), split like a shell would (quotes, no expansion)', exactlyOne: ['tool', 'command']}),
  }

  async run(): Promise<EvalResult> {
    const {argv, flags} = await this.parse(Eval)
    const stack = (argv as string[]).map((f) => loadBundle(f, {accept: ['aibox-bundle', 'aibox-policy', 'helm-policy']}))
    let result: EvalResult
    if (flags.command !== undefined) {
      let command: string[]
      try {
        command = splitCommand(flags.command)
      } catch (err) {
        throw new InputError('BAD_COMMAND', `--command: ${(err as Error).message}`)
      }
      if (command.length === 0) throw new InputError('BAD_COMMAND', '--command is empty')
      result = {...evaluateCommand(stack, command), subject: {command}}
    } else {
      const args = flags.args === undefined ? {} : parseArgs(flags.args)
      result = {...evaluateCall(stack, {tool: flags.tool!, args}), subject: {tool: flags.tool!, args}}
    }
    const by = result.rule === null ? 'default' : `rule "${result.rule}"`
    this.log(`${result.verdict.toUpperCase()} by ${by}${result.tier ? ` (${result.tier}${result.file ? `, ${result.file}` : ''})` : ''}: ${result.reason}${result.risk ? `, risk ${result.risk}` : ''}`)
    return result
  }
}

function parseArgs(text: string): Record<string, unknown> {
  const doc = parseStrict(text, '--args', {format: 'json'})
  if (!isObject(doc.value)) throw new InputError('BAD_ARGS', '--args must be a JSON object, e.g. \'{"path": "/workspace/a.txt"}\'')
  return doc.value
}

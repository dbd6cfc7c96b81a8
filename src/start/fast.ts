/**
 * `aibox start` without oclif (bin/run.js imports this module for `aibox start …` unless `--help`
 * is asked or AIBOX_NO_FAST_START is set): oclif alone costs more than node's start-up, and this
 * command runs on every sandbox start (toolchain.md §A). Flags are parsed with node:util's
 * parseArgs from the same table the oclif command uses (cli.ts), with the same errors and exit codes.
 */
import {parseArgs} from 'node:util'

import {InputError} from '../errors.js'
import {START_FLAGS, type StartFlagValues, errorJson, formatError, processIo, runStart, splitAtDashDash} from './cli.js'

type ParseArgsOptions = NonNullable<Parameters<typeof parseArgs>[0]>['options']

function options(): ParseArgsOptions {
  const out: NonNullable<ParseArgsOptions> = {json: {type: 'boolean'}}
  for (const [name, spec] of Object.entries(START_FLAGS)) {
    out[name] = {type: spec.type, ...('multiple' in spec && spec.multiple ? {multiple: true} : {}), ...('char' in spec ? {short: spec.char} : {})}
  }
  return out
}

/** Parses `aibox start` arguments (without the leading `start`). */
export function parseStartArgv(argv: readonly string[]): {flags: StartFlagValues; command: string[]} {
  const {flags: before, command} = splitAtDashDash(argv)
  let parsed
  try {
    parsed = parseArgs({args: before, options: options(), strict: true, allowPositionals: true})
  } catch (err) {
    const e = err as Error & {code?: string}
    throw new InputError('INVALID_FLAGS', `aibox start: ${e.message}`, {suggestions: ['see aibox start --help']})
  }
  if (parsed.positionals.length > 0) {
    throw new InputError('UNEXPECTED_ARGUMENTS', `aibox start: unexpected argument(s) ${parsed.positionals.map((p) => JSON.stringify(p)).join(' ')}: put the sandbox command after --`, {
      suggestions: ['aibox start -- bash -lc "my-agent"'],
    })
  }
  return {flags: parsed.values as StartFlagValues, command}
}

/** The fast-path entry point: returns the exit status (bin/run.js sets process.exitCode). */
export async function main(argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseStartArgv(argv)
  } catch (err) {
    const json = splitAtDashDash(argv).flags.includes('--json')
    if (json) processIo.stdout(`${JSON.stringify(errorJson(err), null, 2)}\n`)
    else processIo.stderr(formatError(err))
    return 1
  }
  return runStart(parsed.flags, parsed.command)
}

/**
 * Commands whose result is itself a refusal (check finds loosenings, lint finds problems,
 * tests fail) print the full result with `--json` and still exit non-zero; without `--json`
 * they throw the error, which oclif prints with its code and suggestions.
 */
import type {AiboxError} from '../errors.js'
import type {BaseCommand} from './base.js'

export function refuse<T>(cmd: BaseCommand<T>, result: T, err: AiboxError): T {
  if (cmd.json) {
    process.exitCode = err.exit
    return result
  }
  throw err
}

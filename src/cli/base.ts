/**
 * BaseCommand: what every `aibox` command shares.
 *
 * - `--json` on every command (oclif's `enableJsonFlag`): the value `run()` returns is printed
 *   as JSON, prose goes to stderr or is silenced, and errors print as `{error: {...}}`.
 * - Exit codes from `src/errors.ts`: AiboxErrors carry their own; oclif's flag/arg parse
 *   errors are usage errors (exit 1, configured in package.json `oclif.exitCodes`); anything
 *   else is an internal error (exit 1) printed with its message, never a raw stack.
 * - Colour only on a TTY and never with NO_COLOR.
 * - Human output (stdout, stderr, error messages) never carries terminal control characters
 *   from input: they are shown escaped (util/text.ts), so a hostile policy or archive cannot
 *   rewrite the user's screen. `--json` output is JSON-escaped already.
 */
import {Command} from '@oclif/core'

import {AiboxError, EXIT, errorMessage} from '../errors.js'
import {escapeControl} from '../util/text.js'

export abstract class BaseCommand<T> extends Command {
  static override enableJsonFlag = true

  abstract override run(): Promise<T>

  /** True when human output should be suppressed (`--json`). */
  get json(): boolean {
    return this.jsonEnabled()
  }

  /** True when stderr is an interactive terminal and we are not in `--json` or CI mode. */
  get interactive(): boolean {
    return Boolean(process.stderr.isTTY) && !this.jsonEnabled() && !process.env.CI
  }

  /** Prose for humans: stderr, silent in `--json` mode. */
  info(message: string): void {
    this.logToStderr(message)
  }

  override log(message = '', ...args: unknown[]): void {
    super.log(escapeControl(message), ...args)
  }

  override logToStderr(message = '', ...args: unknown[]): void {
    super.logToStderr(escapeControl(message), ...args)
  }

  override warn(input: string | Error): string | Error {
    return super.warn(typeof input === 'string' ? escapeControl(input) : input)
  }

  /** Colours a string when stdout is a TTY and NO_COLOR is unset. */
  color(code: 'bold' | 'dim' | 'green' | 'red' | 'yellow', s: string): string {
    if (!process.stdout.isTTY || process.env.NO_COLOR !== undefined || this.jsonEnabled()) return s
    const codes = {bold: [1, 22], dim: [2, 22], green: [32, 39], red: [31, 39], yellow: [33, 39]} as const
    const [a, b] = codes[code]
    return `\u001B[${a}m${s}\u001B[${b}m`
  }

  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}; code?: string}): Promise<unknown> {
    if (!(err instanceof AiboxError)) {
      const isOclif = err.oclif !== undefined
      if (!isOclif) {
        // An unexpected error is a bug or an unmapped boundary failure: keep the message and
        // the cause, give it a code and a usage exit so scripts see a consistent shape.
        const wrapped = new AiboxError('INTERNAL', errorMessage(err), {
          exit: EXIT.USAGE,
          cause: err,
          suggestions: ['re-run with DEBUG=aibox* for details, and report it if it persists'],
        })
        if (process.env.DEBUG && err.stack) process.stderr.write(`${err.stack}\n`)
        return super.catch(this.forHumans(wrapped))
      }
      if (err.oclif && err.oclif.exit === undefined) err.oclif.exit = EXIT.USAGE
    }
    return super.catch(err instanceof AiboxError ? this.forHumans(err) : err)
  }

  /** An error whose message and suggestions are safe to print on a terminal (see the header). */
  private forHumans(err: AiboxError): AiboxError {
    if (this.jsonEnabled()) return err
    err.message = escapeControl(err.message)
    if (err.suggestions) err.suggestions = err.suggestions.map(escapeControl)
    return err
  }
}

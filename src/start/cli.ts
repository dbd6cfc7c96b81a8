/**
 * The command-line surface of `aibox start`, shared by the oclif command (`commands/start.ts`,
 * used for `--help` and with AIBOX_NO_FAST_START=1) and the fast path (`fast.ts`, which bin/run.js
 * runs without loading oclif: toolchain.md §A). One flag table, one way to run, print and exit.
 */
import os from 'node:os'

import {AiboxError, EXIT, InputError, errorMessage} from '../errors.js'
import {type RunManifest, startRunRecord} from './manifest.js'
import {aiboxErrorOf, startPolicy} from './run.js'
import type {StartOptions, StartResult} from './types.js'

export interface StartFlagSpec {
  type: 'string' | 'boolean'
  multiple?: boolean
  char?: string
  helpValue?: string
  summary: string
}

/** Every flag of `aibox start` (besides `--json`), in help order. */
export const START_FLAGS = {
  config: {type: 'string', char: 'c', helpValue: 'FILE', summary: 'configuration file (default: AIBOX_CONFIG, ./aibox.yaml, then ~/.config/aibox/aibox.yaml)'},
  key: {type: 'string', multiple: true, helpValue: 'PUB', summary: 'trust this public key for every tier instead of the configured trust (repeatable)'},
  trust: {type: 'string', helpValue: 'FILE', summary: 'trust policy to verify with instead of the configured one'},
  cache: {type: 'string', helpValue: 'DIR', summary: 'verified-policy cache directory (default: AIBOX_CACHE, the configuration, ~/.cache/aibox)'},
  offline: {type: 'boolean', summary: 'do not contact registries or layouts: load the verified cache (within maxStaleness)'},
  'max-staleness': {type: 'string', helpValue: 'DURATION', summary: 'how old the cache may be when the source cannot be reached (default: the configuration, 7d)'},
  output: {type: 'string', char: 'o', helpValue: 'FILE', summary: 'also write the effective policy (canonical JSON) to FILE; AIBOX_POLICY_FILE then names it'},
  'override-verification': {type: 'boolean', summary: 'on a verification failure, load the last verified policy instead (needs --reason; logged; taints runs policy_override)'},
  'override-lock': {type: 'boolean', summary: 'with AIBOX_POLICY_LOCK=1, accept a weaker policy than the last loaded (needs --reason; logged; taints runs policy_override)'},
  reason: {type: 'string', helpValue: 'TEXT', summary: 'why you override (recorded in the audit log with who and when)'},
  manifest: {type: 'string', helpValue: 'FILE', summary: 'write a run record (JSON: profile, policy digest, tiers, taint, command, exit status) before the command runs and complete it after (default: AIBOX_RUN_MANIFEST)'},
  tenant: {type: 'string', helpValue: 'NAME', summary: 'the tenant to run as (default: AIBOX_TENANT, then tenant: in aibox.yaml): its own cache, only its own and tenant-global policies'},
  quiet: {type: 'boolean', char: 'q', summary: 'do not print the per-tier "policy … loaded from …" lines (warnings are still printed)'},
} as const satisfies Record<string, StartFlagSpec>

export interface StartFlagValues {
  config?: string
  key?: string[]
  trust?: string
  cache?: string
  offline?: boolean
  'max-staleness'?: string
  output?: string
  'override-verification'?: boolean
  'override-lock'?: boolean
  reason?: string
  manifest?: string
  tenant?: string
  quiet?: boolean
  json?: boolean
}

/** Splits `aibox start [FLAGS] [-- CMD…]` at the first `--`. */
export function splitAtDashDash(argv: readonly string[]): {flags: string[]; command: string[]} {
  const i = argv.indexOf('--')
  return i < 0 ? {flags: [...argv], command: []} : {flags: argv.slice(0, i), command: argv.slice(i + 1)}
}

export function toStartOptions(flags: StartFlagValues): StartOptions {
  if (flags.key?.length && flags.trust) throw new InputError('KEYS_OR_TRUST', '--key and --trust cannot be used together: give one key set or one trust policy')
  return {
    ...(flags.config !== undefined ? {config: flags.config} : {}),
    ...(flags.key?.length ? {keys: flags.key} : {}),
    ...(flags.trust !== undefined ? {trust: flags.trust} : {}),
    ...(flags.cache !== undefined ? {cache: flags.cache} : {}),
    ...(flags.offline ? {offline: true} : {}),
    ...(flags['max-staleness'] !== undefined ? {maxStaleness: flags['max-staleness']} : {}),
    ...(flags.output !== undefined ? {output: flags.output} : {}),
    ...(flags['override-verification'] ? {overrideVerification: true} : {}),
    ...(flags['override-lock'] ? {overrideLock: true} : {}),
    ...(flags.reason !== undefined ? {reason: flags.reason} : {}),
    ...(flags.tenant !== undefined ? {tenant: flags.tenant} : {}),
  }
}

export interface StartIo {
  stdout(text: string): void
  stderr(text: string): void
}

export const processIo: StartIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
}

/** The human summary printed on stdout when there is no command. */
export function summaryLines(r: StartResult): string[] {
  const lines = [`effective policy ${r.effective.digest} (${r.version})`, `  file: ${r.effective.file}`]
  // README "Tenants": the tenant context comes first, where nobody misses it.
  if (r.tenant !== undefined) lines.unshift(`tenant ${r.tenant}`)
  if (r.effective.output) lines.push(`  written to: ${r.effective.output}`)
  lines.push(`  source: ${r.source}${r.stalenessSeconds > 0 ? `, stale by ${r.stalenessSeconds}s` : ''}`)
  if (r.profile !== undefined) lines.push(`  profile: ${r.profile}`)
  if (r.manifest) lines.push(`  run record: ${r.manifest}`)
  if (r.taint) lines.push(`  TAINTED policy_override (${r.taint.override} override by ${r.taint.actor} at ${r.taint.since}: ${r.taint.reason})`)
  return lines
}

/** The sealed-mode banner of a CACHE_TOO_STALE refusal, if any (printed before the error). */
export function bannerOf(err: unknown): string | undefined {
  const b = aiboxErrorOf(err)?.details?.banner
  return typeof b === 'string' ? b : undefined
}

/** An error as oclif prints it (header, code, suggestions, reference; 4-space indent) for the fast path. */
export function formatError(err: unknown): string {
  const e = aiboxErrorOf(err) ?? new AiboxError('INTERNAL', errorMessage(err), {cause: err, suggestions: ['re-run with DEBUG=aibox* for details, and report it if it persists']})
  const parts = [`${e.name}: ${e.message}`, `Code: ${e.code}`]
  const s = e.suggestions ?? []
  if (s.length === 1) parts.push(`Try this: ${s[0]}`)
  else if (s.length > 1) parts.push(`Try this:\n${s.map((x) => `  * ${x}`).join('\n')}`)
  if (e.ref) parts.push(`Reference: ${e.ref}`)
  return `${parts
    .join('\n')
    .split('\n')
    .map((l) => (l ? `    ${l}` : l))
    .join('\n')}\n`
}

/** `{error: {…}}` as oclif prints it in `--json` mode (schemas/output/error.json). */
export function errorJson(err: unknown): {error: Record<string, unknown>} {
  const e = aiboxErrorOf(err) ?? new AiboxError('INTERNAL', errorMessage(err))
  return {error: {...e.toJSON(), exitCode: e.exit}}
}

export function exitCodeOf(err: unknown): number {
  return aiboxErrorOf(err)?.exit ?? EXIT.USAGE
}

/**
 * Runs the sandbox command with the policy variables, its stdio inherited; resolves to its exit
 * status. A signal that ends it is re-raised on this process (after our handlers are removed) so
 * the caller sees the same death; SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 sent to aibox are passed
 * on. SIGINT and SIGQUIT from a terminal reach the command directly (same process group), so they
 * are only kept from killing aibox before the command has ended.
 */
export async function execCommand(command: readonly string[], env: NodeJS.ProcessEnv, io: StartIo = processIo, onExit?: (status: number, signal: NodeJS.Signals | null) => void): Promise<number> {
  const {spawn} = await import('node:child_process')
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), {stdio: 'inherit', env})
    const forward = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const
    const hold = ['SIGINT', 'SIGQUIT'] as const
    const handlers = new Map<NodeJS.Signals, () => void>()
    for (const s of forward) handlers.set(s, () => child.kill(s))
    for (const s of hold) handlers.set(s, () => {})
    for (const [s, h] of handlers) process.on(s, h)
    const cleanup = () => {
      for (const [s, h] of handlers) process.off(s, h)
    }
    child.on('error', (err: NodeJS.ErrnoException) => {
      cleanup()
      const code = err.code === 'ENOENT' ? 127 : 126
      io.stderr(`aibox start: cannot run ${command[0]}: ${err.code === 'ENOENT' ? 'command not found' : err.message}\n`)
      onExit?.(code, null)
      resolve(code)
    })
    child.on('exit', (code, signal) => {
      cleanup()
      if (signal) {
        const n = os.constants.signals[signal] ?? 0
        // Before the signal is re-raised on this process (which ends it): e.g. complete the run record.
        onExit?.(128 + n, signal)
        try {
          process.kill(process.pid, signal)
        } catch {
          // cannot re-raise it: the shell convention 128 + n says the same
        }
        resolve(128 + n)
        return
      }
      onExit?.(code ?? 1, null)
      resolve(code ?? 1)
    })
  })
}

/** The run record of --manifest (else AIBOX_RUN_MANIFEST), written before the command runs; undefined without either. */
export function runRecord(flags: StartFlagValues, result: StartResult, command: readonly string[]): RunManifest | undefined {
  const file = flags.manifest ?? (process.env.AIBOX_RUN_MANIFEST || undefined)
  if (file === undefined) return undefined
  const m = startRunRecord(file, result, command)
  result.manifest = m.file
  return m
}

/** AIBOX_RUN_MANIFEST and AIBOX_RUN_ID for the command, when there is a run record. */
export function manifestEnv(m: RunManifest | undefined): Record<string, string> {
  return m ? {AIBOX_RUN_MANIFEST: m.file, AIBOX_RUN_ID: m.record.runId} : {}
}

/** Completes the run record when the command ends; a failure to write it is reported, not fatal (the command has run). */
export function finisher(m: RunManifest | undefined, io: StartIo = processIo): ((status: number, signal: NodeJS.Signals | null) => void) | undefined {
  if (!m) return undefined
  return (status, signal) => {
    try {
      m.finish(status, signal)
    } catch (err) {
      io.stderr(`warning: ${errorMessage(err)}\n`)
    }
  }
}

/**
 * `aibox start` for the fast path: runs, prints (human lines on stderr, the result on stdout when
 * there is no command) and returns the exit status. Never throws.
 */
export async function runStart(flags: StartFlagValues, command: string[], io: StartIo = processIo): Promise<number> {
  const json = Boolean(flags.json)
  try {
    if (json && command.length > 0) {
      throw new InputError('JSON_WITH_COMMAND', '--json prints the result when there is no command; with a command, stdout belongs to the command', {
        suggestions: ['drop --json: the command gets AIBOX_POLICY_FILE, AIBOX_POLICY_DIGEST and AIBOX_POLICY_VERSION', 'or run aibox start --json first, then the command'],
      })
    }
    const outcome = await startPolicy({...toStartOptions(flags), onWarning: (m) => io.stderr(`warning: ${m}\n`)})
    if (command.length > 0 && outcome.result.tenant !== undefined) io.stderr(`tenant ${outcome.result.tenant}\n`)
    if (!flags.quiet) for (const l of outcome.lines) io.stderr(`${l}\n`)
    const manifest = runRecord(flags, outcome.result, command)
    if (command.length > 0) return await execCommand(command, {...process.env, ...outcome.env, ...manifestEnv(manifest)}, io, finisher(manifest, io))
    manifest?.finish(EXIT.OK)
    if (json) io.stdout(`${JSON.stringify(outcome.result, null, 2)}\n`)
    else io.stdout(`${summaryLines(outcome.result).join('\n')}\n`)
    return EXIT.OK
  } catch (err) {
    const banner = bannerOf(err)
    if (banner) io.stderr(`${banner}\n`)
    if (json) io.stdout(`${JSON.stringify(errorJson(err), null, 2)}\n`)
    else io.stderr(formatError(err))
    if (process.env.DEBUG && err instanceof Error && err.stack) io.stderr(`${err.stack}\n`)
    return exitCodeOf(err)
  }
}

/**
 * The shape of an `aibox doctor` report (schemas/output/doctor.json): one entry per check, each
 * with a stable id, a status, the reason in one sentence and what to try.
 */
import {AiboxError, EXIT, type ExitCode, errorMessage} from '../errors.js'
import type {RemoteRepositoryOptions} from '../oci/stores/remote.js'

/**
 * `pass`: works. `warn`: works, but something deserves attention (a key expiring soon, an old
 * cache). `fail`: will not work. `skip`: not checked (nothing to check, a check it depends on
 * failed, or `--skip`).
 */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip'

export interface DoctorCheck {
  /** Stable id, e.g. `registry.reachable`; `--skip` takes it (or a prefix such as `repository`). */
  id: string
  /** What is checked, for people. */
  title: string
  status: CheckStatus
  /** Why this status, in one sentence naming the file, host or reference. */
  reason: string
  /** What to try (empty when there is nothing to do). */
  suggestions: string[]
  /** For `warn` and `fail`: a stable UPPER_SNAKE code (the underlying error's code where there is one). */
  code?: string
  /** For `fail`: the exit code the problem maps to (src/errors.ts EXIT): 4 for an unreachable registry, 1 for credentials, … */
  exit?: ExitCode
  /** Machine-readable facts the check found (host, scheme, certificate dates, credential source, counts, …). */
  details?: Record<string, unknown>
  /** Wall time of the check. */
  durationMs: number
}

export interface DoctorCounts {
  pass: number
  warn: number
  fail: number
  skip: number
}

export interface DoctorReport {
  /** True when no check failed (warnings allowed). */
  ok: boolean
  /** The reference checked, as given, or null when none was. */
  reference: string | null
  /** RFC 3339: when the checks ran (local clock). */
  checkedAt: string
  counts: DoctorCounts
  checks: DoctorCheck[]
  /** 0 when ok; else the exit code of the first failed check. */
  exit: ExitCode
}

export interface DoctorOptions {
  /** A policy reference: `host/repo[:tag|@digest]`, `oci:DIR[:tag]` or `oci-archive:FILE[:tag]`. */
  reference?: string
  /** Connection and credentials for registries (as `aibox pull` takes them). */
  registry?: RemoteRepositoryOptions
  /** A trust policy file to validate. */
  trustFile?: string
  /** Public key files to load. */
  keyFiles?: string[]
  /** The verified-policy cache directory (default: AIBOX_CACHE / XDG default). */
  cacheDir?: string
  /** The audit log (default: AIBOX_AUDIT_LOG / XDG default). */
  auditLog?: string
  /** Check ids or prefixes not to run (`repository.push`, `repository`, `cache`). */
  skip?: string[]
  /** Environment for the default paths and the docker config (default `process.env`). */
  env?: NodeJS.ProcessEnv
  /** Clock (tests). */
  now?: () => Date
  /** Registry clock differences above this warn (default 60 s) … */
  clockWarnMs?: number
  /** … and above this fail (default 5 min: token and signature validity windows break). */
  clockFailMs?: number
  /** Keys and server certificates expiring within this warn (default 30 days). */
  expiryWarnMs?: number
  /** A cache whose freshest check of its sources is older than this warns (default 7 days). */
  cacheMaxAgeMs?: number
  /** Called as each check finishes (progress for people). */
  onCheck?: (check: DoctorCheck) => void
}

export const DEFAULT_CLOCK_WARN_MS = 60_000
export const DEFAULT_CLOCK_FAIL_MS = 5 * 60_000
export const DEFAULT_EXPIRY_WARN_MS = 30 * 86_400_000
export const DEFAULT_CACHE_MAX_AGE_MS = 7 * 86_400_000

/** A check result without its timing (added by the runner). */
export type CheckOutcome = Omit<DoctorCheck, 'id' | 'title' | 'durationMs'>

export function pass(reason: string, details?: Record<string, unknown>): CheckOutcome {
  return {status: 'pass', reason, suggestions: [], ...(details ? {details} : {})}
}

export function skip(reason: string, details?: Record<string, unknown>): CheckOutcome {
  return {status: 'skip', reason, suggestions: [], ...(details ? {details} : {})}
}

export function warn(code: string, reason: string, suggestions: string[] = [], details?: Record<string, unknown>): CheckOutcome {
  return {status: 'warn', code, reason, suggestions, ...(details ? {details} : {})}
}

export function fail(code: string, reason: string, suggestions: string[], exit: ExitCode, details?: Record<string, unknown>): CheckOutcome {
  return {status: 'fail', code, reason, suggestions, exit, ...(details ? {details} : {})}
}

/** A failed check from an error: its code, message, suggestions and exit code. */
export function failFrom(err: unknown, details?: Record<string, unknown>): CheckOutcome {
  if (err instanceof AiboxError) return fail(err.code, err.message, err.suggestions ?? [], err.exit, details)
  return fail('INTERNAL', errorMessage(err), ['re-run with DEBUG=aibox* and report it if it persists'], EXIT.USAGE, details)
}

/** Milliseconds as a short duration for messages: `45 s`, `3 min`, `5 h`, `12 days`. */
export function formatDuration(ms: number): string {
  const a = Math.abs(ms)
  if (a < 1000) return `${Math.round(a)} ms`
  if (a < 120_000) return `${Math.round(a / 1000)} s`
  if (a < 2 * 3_600_000) return `${Math.round(a / 60_000)} min`
  if (a < 2 * 86_400_000) return `${Math.round(a / 3_600_000)} h`
  return `${Math.round(a / 86_400_000)} days`
}

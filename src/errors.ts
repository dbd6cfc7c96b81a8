/**
 * Errors and exit codes: the single source of truth for what `aibox` exits with.
 *
 * Every failure a user can cause or meet is an `AiboxError` with a stable string `code`,
 * an exit code from `EXIT`, optional `suggestions` ("Try this:") and a `cause` chain.
 * oclif pretty-prints `code`, `suggestions` and `ref` without a custom printer; in `--json`
 * mode it prints `{error: {...err, message, name}}`, so the enumerable fields below are
 * the machine-readable error shape (see schemas/output/error.json).
 *
 * The split between verification failures (exit 2) and transient failures (exit 4) is
 * what makes `aibox start`'s cache fallback safe: it falls back on 4, never on 2.
 */

/** Exit codes. The README's table is generated from `EXIT_TABLE` by `scripts/exit-codes.ts`. */
export const EXIT = {
  OK: 0,
  /** Usage error or invalid input (bad flags, malformed YAML, schema violations). */
  USAGE: 1,
  /** Verification failed: signature, digest, trust policy, rollback, loosening. */
  VERIFY: 2,
  /** Not found: file, reference, tag, blob, key. */
  NOT_FOUND: 3,
  /** Transient: network, registry 5xx, timeout. Retrying later may succeed. */
  TRANSIENT: 4,
  /** Refused by governance: policy lock, missing approvals, separation of duties. */
  GOVERNANCE: 5,
} as const

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

export const EXIT_TABLE: ReadonlyArray<{code: ExitCode; name: string; meaning: string}> = [
  {code: EXIT.OK, name: 'OK', meaning: 'success'},
  {code: EXIT.USAGE, name: 'USAGE', meaning: 'usage error or invalid input (flags, YAML/JSON syntax, schema, unknown fields)'},
  {code: EXIT.VERIFY, name: 'VERIFY', meaning: 'verification failed: signature, digest, trust policy, rollback, loosening'},
  {code: EXIT.NOT_FOUND, name: 'NOT_FOUND', meaning: 'not found: file, reference, tag, blob or key'},
  {code: EXIT.TRANSIENT, name: 'TRANSIENT', meaning: 'transient failure: network, registry 5xx, timeout (retry later)'},
  {code: EXIT.GOVERNANCE, name: 'GOVERNANCE', meaning: 'refused by governance: policy lock, approvals, separation of duties'},
]

/** One located problem, e.g. a schema violation: `policy.yaml:14:3 /rules/2/verdict: must be one of allow, deny`. */
export interface Problem {
  file?: string
  line?: number
  col?: number
  /** RFC 6901 JSON pointer into the document. */
  pointer?: string
  message: string
}

export function formatProblem(p: Problem): string {
  let where = p.file ?? ''
  if (p.line !== undefined) where += `${where ? ':' : ''}${p.line}${p.col !== undefined ? `:${p.col}` : ''}`
  // A hostile document can make a pointer megabytes long (one huge key): show its ends only.
  const raw = p.pointer !== undefined ? (p.pointer === '' ? '/' : p.pointer) : undefined
  const ptr = raw !== undefined && raw.length > 300 ? `${raw.slice(0, 200)}…${raw.slice(-80)}` : raw
  const head = [where, ptr].filter(Boolean).join(' ')
  return head ? `${head}: ${p.message}` : p.message
}

export interface AiboxErrorOptions {
  exit?: ExitCode
  suggestions?: string[]
  cause?: unknown
  /** A documentation reference (URL or README section) oclif prints as "Reference:". */
  ref?: string
  /** Structured details for `--json` consumers (e.g. violations, problems). */
  details?: Record<string, unknown>
}

/** Base class of every error aibox raises on purpose. */
export class AiboxError extends Error {
  readonly code: string
  readonly exit: ExitCode
  suggestions?: string[]
  ref?: string
  details?: Record<string, unknown>
  /** oclif reads `oclif.exit` in plain mode and `exitCode` in `--json` mode: set both. */
  readonly oclif: {exit: number}
  readonly exitCode: number

  constructor(code: string, message: string, options: AiboxErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = new.target.name
    this.code = code
    this.exit = options.exit ?? (new.target as unknown as {defaultExit?: ExitCode}).defaultExit ?? EXIT.USAGE
    this.oclif = {exit: this.exit}
    this.exitCode = this.exit
    if (options.suggestions?.length) this.suggestions = options.suggestions
    if (options.ref) this.ref = options.ref
    if (options.details) this.details = options.details
  }

  /** JSON shape for `--json` output and logs. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {name: this.name, code: this.code, exit: this.exit, message: this.message}
    if (this.suggestions) out.suggestions = this.suggestions
    if (this.ref) out.ref = this.ref
    if (this.details) out.details = this.details
    if (this.cause instanceof Error) out.cause = this.cause.message
    return out
  }
}

/** Invalid input: bad flags, malformed files, schema violations. Exit 1. */
export class InputError extends AiboxError {
  static defaultExit: ExitCode = EXIT.USAGE
}

/**
 * Invalid input with several located problems, all collected then thrown once.
 * The message lists every problem, one per line.
 */
export class ValidationError extends InputError {
  readonly problems: Problem[]
  constructor(code: string, summary: string, problems: Problem[], options: AiboxErrorOptions = {}) {
    const lines = problems.map((p) => `  ${formatProblem(p)}`)
    super(code, problems.length > 0 ? `${summary}\n${lines.join('\n')}` : summary, {
      ...options,
      details: {...options.details, problems},
    })
    this.problems = problems
  }
}

/** A real verification failure (signature, digest, trust, rollback, loosening). Exit 2; never fall back on it. */
export class VerificationError extends AiboxError {
  static defaultExit: ExitCode = EXIT.VERIFY
}

/** Something named does not exist. Exit 3. */
export class NotFoundError extends AiboxError {
  static defaultExit: ExitCode = EXIT.NOT_FOUND
}

/** Network, registry 5xx, timeout: retrying later may succeed. Exit 4. */
export class TransientError extends AiboxError {
  static defaultExit: ExitCode = EXIT.TRANSIENT
}

/** Refused by governance (lock, approvals, separation of duties). Exit 5. */
export class GovernanceError extends AiboxError {
  static defaultExit: ExitCode = EXIT.GOVERNANCE
}

export function isAiboxError(err: unknown): err is AiboxError {
  return err instanceof AiboxError
}

/** True when `err` (or its cause chain) is a transient failure: the only case where a cached policy may be used. */
export function isTransient(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 10; e = (e as {cause?: unknown}).cause, depth++) {
    if (e instanceof TransientError) return true
    if (e instanceof AiboxError) return false
  }
  return false
}

/**
 * Wraps an unexpected error at a boundary (fs, network, parser) into an AiboxError,
 * keeping AiboxErrors as they are.
 */
export function wrapError(err: unknown, code: string, message: string, options: AiboxErrorOptions = {}): AiboxError {
  if (err instanceof AiboxError) return err
  return new AiboxError(code, `${message}: ${errorMessage(err)}`, {...options, cause: err})
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

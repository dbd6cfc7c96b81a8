/**
 * OCI errors: stable codes, the side of a transfer that failed, and what to try.
 * Codes: NOT_FOUND, ALREADY_EXISTS, UNSUPPORTED, DIGEST_MISMATCH, SIZE_MISMATCH,
 * INVALID_REFERENCE, INVALID_MANIFEST, MANIFEST_TOO_LARGE, UNAUTHORIZED, DENIED,
 * REGISTRY_ERROR, NETWORK, TIMEOUT, INVALID_LAYOUT, UNSAFE_ARCHIVE, ABORTED, IO_ERROR.
 */
import {AiboxError, type AiboxErrorOptions, EXIT, type ExitCode} from '../errors.js'

export type OciErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'UNSUPPORTED'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'INVALID_REFERENCE'
  | 'INVALID_MANIFEST'
  | 'MANIFEST_TOO_LARGE'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'REGISTRY_ERROR'
  | 'NETWORK'
  | 'TIMEOUT'
  /** The registry cannot be reached securely: untrusted certificate, HTTP/HTTPS mix-up. */
  | 'TLS'
  | 'INVALID_LAYOUT'
  | 'UNSAFE_ARCHIVE'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** A local file-system failure (disk full, permission, I/O error) while reading or writing a store. */
  | 'IO_ERROR'

const DEFAULT_EXIT: Record<OciErrorCode, ExitCode> = {
  NOT_FOUND: EXIT.NOT_FOUND,
  ALREADY_EXISTS: EXIT.USAGE,
  UNSUPPORTED: EXIT.USAGE,
  // Bytes that do not match their digest are a verification failure, never a reason to fall back.
  DIGEST_MISMATCH: EXIT.VERIFY,
  SIZE_MISMATCH: EXIT.VERIFY,
  INVALID_REFERENCE: EXIT.USAGE,
  INVALID_MANIFEST: EXIT.VERIFY,
  MANIFEST_TOO_LARGE: EXIT.VERIFY,
  UNAUTHORIZED: EXIT.USAGE,
  DENIED: EXIT.USAGE,
  REGISTRY_ERROR: EXIT.TRANSIENT,
  NETWORK: EXIT.TRANSIENT,
  TIMEOUT: EXIT.TRANSIENT,
  // Like any unreachable registry: `aibox start` may fall back to its verified cache.
  TLS: EXIT.TRANSIENT,
  INVALID_LAYOUT: EXIT.USAGE,
  UNSAFE_ARCHIVE: EXIT.VERIFY,
  ABORTED: EXIT.TRANSIENT,
  IO_ERROR: EXIT.USAGE,
}

export class OciError extends AiboxError {
  declare readonly code: OciErrorCode
  constructor(code: OciErrorCode, message: string, options: AiboxErrorOptions = {}) {
    super(code, message, {...options, exit: options.exit ?? DEFAULT_EXIT[code]})
  }
}

/** Which side of a copy failed (oras-go CopyError): lets the user know whether to fix the source or the destination. */
export type CopyOrigin = 'source' | 'destination'

export class CopyError extends AiboxError {
  readonly origin: CopyOrigin
  readonly op: string
  constructor(origin: CopyOrigin, op: string, location: string, err: AiboxError) {
    super(err.code, `${origin} ${location}: ${op}: ${err.message}`, {
      exit: err.exit,
      cause: err,
      suggestions: err.suggestions,
      details: {...err.details, origin, op, location},
    })
    this.origin = origin
    this.op = op
  }
}

export function isOciError(err: unknown, code?: OciErrorCode): err is OciError {
  return err instanceof OciError && (code === undefined || err.code === code)
}

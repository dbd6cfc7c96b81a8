/** Cancellation of store and transport operations (`OpOptions.signal`). Internal to src/oci. */
import {OciError} from './errors.js'

/** The error for an operation its caller aborted. */
export function abortError(signal: AbortSignal | undefined, what: string): OciError {
  return new OciError('ABORTED', `${what}: aborted`, {cause: signal?.reason})
}

/** Throws ABORTED when `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(signal, what)
}

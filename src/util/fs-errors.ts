/**
 * Maps Node fs errors at the boundary to AiboxErrors, so no raw `ENOENT: no such file…`
 * ever reaches a user (briefing: "never let a raw Node error reach the user").
 */
import {AiboxError, InputError, NotFoundError, TransientError} from '../errors.js'

/** The errno code of a Node system error (`ENOENT`, `EEXIST`, …), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as {code?: unknown} | null)?.code
  return typeof code === 'string' ? code : undefined
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = errnoCode(err)
  return code !== undefined && codes.includes(code)
}

/**
 * Wraps a failed fs operation `op` ("write", "read", "lock", …) on `file`. Missing files are
 * NOT_FOUND (exit 3), permissions and wrong file types are input errors (exit 1), and
 * conditions that may clear up by themselves (disk full, I/O errors, too many open files)
 * are transient (exit 4).
 */
export function fsError(err: unknown, op: string, file: string): AiboxError {
  if (err instanceof AiboxError) return err
  const code = errnoCode(err)
  const detail = err instanceof Error ? err.message : String(err)
  switch (code) {
    case 'ENOENT':
      return new NotFoundError('FILE_NOT_FOUND', `cannot ${op} ${file}: no such file or directory`, {
        cause: err,
        suggestions: ['check the path, or the parent directory'],
      })
    case 'EACCES':
    case 'EPERM':
      return new InputError('PERMISSION_DENIED', `cannot ${op} ${file}: permission denied`, {
        cause: err,
        suggestions: [`check the owner and mode of ${file} and its directory`],
      })
    case 'EROFS':
      return new InputError('READ_ONLY_FILESYSTEM', `cannot ${op} ${file}: read-only file system`, {
        cause: err,
        suggestions: ['point the path at a writable location (see the README for the environment variables)'],
      })
    case 'EISDIR':
      return new InputError('IS_A_DIRECTORY', `cannot ${op} ${file}: it is a directory`, {cause: err})
    case 'ENOTDIR':
      return new InputError('NOT_A_DIRECTORY', `cannot ${op} ${file}: a parent of it is not a directory`, {cause: err})
    case 'ENOSPC':
    case 'EDQUOT':
      return new TransientError('NO_SPACE', `cannot ${op} ${file}: no space left on device`, {
        cause: err,
        suggestions: ['free some disk space and retry'],
      })
    case 'EIO':
    case 'EAGAIN':
    case 'EBUSY':
    case 'EMFILE':
    case 'ENFILE':
    case 'EINTR':
      return new TransientError('IO_ERROR', `cannot ${op} ${file}: ${detail}`, {cause: err, suggestions: ['retry']})
    default:
      return new InputError('IO_ERROR', `cannot ${op} ${file}: ${detail}`, {cause: err})
  }
}

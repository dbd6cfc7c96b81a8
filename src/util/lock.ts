/**
 * Cross-process exclusive lock on a file or directory, for the audit log and the cache
 * (architecture.md: "guarded by a file lock so concurrent starts are safe").
 *
 * The lock is a file `<path>.lock` holding its owner `{pid, host, boot, pidns, start, nonce}`.
 * It is created with link(2) from a fully written temp file, so it never exists half
 * written, and link fails with EEXIST when someone else holds it (an NFS-safe O_EXCL).
 *
 * Why not proper-lockfile: its only stale test is the lock's mtime (≥ 2 s, 10 s by default),
 * so a kill -9 of a holder stalls every other start for that long, and its stale-lock removal
 * is not serialised (two waiters can both remove and re-take it). Here a holder on this host
 * is judged by its pid *and* its process start time and boot id, so a dead holder's lock is
 * reclaimed at once and a reused pid is not mistaken for the holder; a holder elsewhere (other
 * host or pid namespace: a shared cache on NFS) refreshes its mtime every `staleMs / 3` and is
 * stale only when that stops. Breaking a stale lock is serialised by `<lock>.break`.
 *
 * Not re-entrant: taking the same lock twice in one process waits for the first to end.
 */
import {randomBytes} from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {TransientError} from '../errors.js'
import {tempPathFor} from './atomic.js'
import {fsError, isErrno} from './fs-errors.js'

export const DEFAULT_LOCK_TIMEOUT_MS = 60_000
export const DEFAULT_LOCK_STALE_MS = 10_000

export interface LockOptions {
  /** Give up after this long with TransientError LOCK_TIMEOUT (exit 4). Default 60 s: holders keep it for milliseconds, but 200 processes starting at once on two cores were measured waiting up to ~27 s for CPU. */
  timeoutMs?: number
  /**
   * A lock whose holder cannot be checked by pid (another host or pid namespace, or an
   * unreadable lock file) is stale when its mtime is older than this. Holders refresh it
   * every staleMs / 3. Default 10 s.
   */
  staleMs?: number
  /** The lock file; default `<path>.lock`. */
  lockfile?: string
  /** What the lock is for, recorded in the lock file and shown to waiters ("audit append"). */
  purpose?: string
  /** Called once when the lock is busy and we start waiting (e.g. to print "waiting for …"). */
  onWait?: (holder: LockOwner | undefined) => void
  /** Stop waiting when this fires: TransientError ABORTED (exit 4). */
  signal?: AbortSignal
}

/** What a lock file records about its holder. */
export interface LockOwner {
  pid: number
  host: string
  /** Linux boot id: a lock from a previous boot is always stale. */
  boot?: string
  /** Linux pid namespace (`pid:[…]`): pids are only comparable inside one namespace. */
  pidns?: string
  /** Start time of the holder process (clock ticks since boot): detects pid reuse. */
  start?: string
  nonce: string
  acquiredAt: string
  purpose?: string
}

export interface LockHandle {
  readonly lockfile: string
  readonly owner: LockOwner
  /** False when the lock file is no longer ours (it was judged stale and broken by another process). */
  stillHeld(): boolean
  /** Releases the lock; returns false when it had been lost meanwhile. Idempotent. */
  release(): boolean
}

interface Identity {
  host: string
  boot?: string
  pidns?: string
  start?: string
}

let identity: Identity | undefined

function readTrim(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim() || undefined
  } catch {
    return undefined
  }
}

/** Field 22 of /proc/<pid>/stat (starttime). The command name (field 2) may hold spaces and parens, so split after the last ')'. */
function procStartTime(pid: number): string | undefined {
  const stat = readTrim(`/proc/${pid}/stat`)
  if (!stat) return undefined
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return rest[19]
}

function self(): Identity {
  if (!identity) {
    let pidns: string | undefined
    try {
      pidns = fs.readlinkSync('/proc/self/ns/pid')
    } catch {
      pidns = undefined
    }
    identity = {host: os.hostname(), boot: readTrim('/proc/sys/kernel/random/boot_id'), pidns, start: procStartTime(process.pid)}
  }
  return identity
}

/** true: alive; false: certainly dead; undefined: cannot tell from here (another host or pid namespace). */
function ownerAlive(owner: LockOwner): boolean | undefined {
  const me = self()
  if (owner.host !== me.host) return undefined
  if (owner.boot && me.boot && owner.boot !== me.boot) return false
  if (owner.pidns !== me.pidns) return undefined
  try {
    process.kill(owner.pid, 0)
  } catch (err) {
    if (isErrno(err, 'ESRCH')) return false
    if (!isErrno(err, 'EPERM')) return undefined
  }
  if (owner.start && me.start) {
    const start = procStartTime(owner.pid)
    if (start !== undefined && start !== owner.start) return false
  }
  return true
}

interface Observed {
  owner?: LockOwner
  mtimeMs: number
  ino: number
  size: number
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockOwner>
    if (typeof v?.pid === 'number' && typeof v.host === 'string' && typeof v.nonce === 'string') return v as LockOwner
  } catch {
    // a lock written by the O_EXCL fallback may be read while still empty
  }
  return undefined
}

/** Reads a lock file; undefined when there is none. */
function observe(lockfile: string): Observed | undefined {
  let fd: number | undefined
  try {
    fd = fs.openSync(lockfile, 'r')
    const st = fs.fstatSync(fd)
    const buf = Buffer.alloc(Math.min(st.size, 4096))
    const n = fs.readSync(fd, buf, 0, buf.length, 0)
    return {owner: parseOwner(buf.subarray(0, n).toString('utf8')), mtimeMs: st.mtimeMs, ino: st.ino, size: st.size}
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined
    throw fsError(err, 'read lock', lockfile)
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

function sameLock(a: Observed, b: Observed): boolean {
  if (a.owner || b.owner) return a.owner?.nonce === b.owner?.nonce
  return a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.size === b.size
}

function isStale(o: Observed, staleMs: number): boolean {
  if (o.owner) {
    const alive = ownerAlive(o.owner)
    if (alive !== undefined) return !alive
  }
  return Date.now() - o.mtimeMs > staleMs
}

/** Reads who holds the lock on `target` (for diagnostics such as `aibox doctor`); undefined when free. */
export function readLockOwner(target: string, options: Pick<LockOptions, 'lockfile'> = {}): LockOwner | undefined {
  return observe(options.lockfile ?? `${target}.lock`)?.owner
}

/** Creates the lock file atomically with its content; false when it already exists. */
function tryCreate(lockfile: string, content: string): boolean {
  const tmp = tempPathFor(lockfile)
  try {
    fs.writeFileSync(tmp, content, {flag: 'wx', mode: 0o644})
    try {
      fs.linkSync(tmp, lockfile)
      return true
    } catch (err) {
      if (isErrno(err, 'EEXIST')) return false
      // File systems without hard links: plain O_EXCL (the content is briefly empty; readers tolerate it).
      if (!isErrno(err, 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EMLINK')) throw err
    }
    try {
      fs.writeFileSync(lockfile, content, {flag: 'wx', mode: 0o644})
      return true
    } catch (err) {
      if (isErrno(err, 'EEXIST')) return false
      throw err
    }
  } finally {
    try {
      fs.unlinkSync(tmp)
    } catch {
      // already gone
    }
  }
}

/** Removes `lockfile` if it is still the stale lock we observed; true when it is gone. Serialised by `<lock>.break`. */
function breakStale(lockfile: string, observed: Observed, staleMs: number): boolean {
  const breaker = `${lockfile}.break`
  try {
    fs.writeFileSync(breaker, String(process.pid), {flag: 'wx'})
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err
    // Another process is breaking it right now (a few syscalls). A breaker file that stays
    // for seconds belongs to a process killed in that window: remove it.
    try {
      if (Date.now() - fs.statSync(breaker).mtimeMs > Math.max(2000, staleMs)) fs.unlinkSync(breaker)
    } catch {
      // gone meanwhile
    }
    return false
  }
  try {
    const now = observe(lockfile)
    if (!now) return true
    if (!sameLock(now, observed) || !isStale(now, staleMs)) return false
    const tomb = tempPathFor(lockfile)
    try {
      fs.renameSync(lockfile, tomb)
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return true
      throw err
    }
    const moved = observe(tomb)
    if (moved && !sameLock(moved, observed)) {
      // The stale holder released and a new holder took the lock between our check and the
      // rename: give it back (link fails only if yet another process took the free lock).
      try {
        fs.linkSync(tomb, lockfile)
      } catch {
        // lost race; the new holder notices through stillHeld()
      }
    }
    fs.rmSync(tomb, {force: true})
    return true
  } finally {
    fs.rmSync(breaker, {force: true})
  }
}

const held = new Map<string, LockHandle>()
let exitHookInstalled = false

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // A process that exits while holding a lock (process.exit in a command) frees it at once.
  process.on('exit', () => {
    for (const h of [...held.values()]) h.release()
  })
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Takes the lock on `target` (a file or directory that need not exist; its parent
 * directory is created if missing), waiting up to `timeoutMs`. Throws TransientError
 * LOCK_TIMEOUT (exit 4: another process is busy; retrying later succeeds).
 */
export async function acquireLock(target: string, options: LockOptions = {}): Promise<LockHandle> {
  const lockfile = path.resolve(options.lockfile ?? `${target}.lock`)
  const timeoutMs = options.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS
  const staleMs = options.staleMs ?? DEFAULT_LOCK_STALE_MS
  const me = self()
  const owner: LockOwner = {
    pid: process.pid,
    host: me.host,
    ...(me.boot ? {boot: me.boot} : {}),
    ...(me.pidns ? {pidns: me.pidns} : {}),
    ...(me.start ? {start: me.start} : {}),
    nonce: randomBytes(12).toString('hex'),
    acquiredAt: new Date().toISOString(),
    ...(options.purpose ? {purpose: options.purpose} : {}),
  }
  const content = `${JSON.stringify(owner)}\n`
  const deadline = Date.now() + timeoutMs
  let delay = 1
  let waited = false
  let last: Observed | undefined
  for (;;) {
    if (options.signal?.aborted) {
      throw new TransientError('ABORTED', `waiting for lock ${lockfile}: aborted`, {cause: options.signal.reason})
    }
    try {
      const current = observe(lockfile)
      if (!current) {
        if (tryCreate(lockfile, content)) break
      } else {
        last = current
        if (isStale(current, staleMs) && breakStale(lockfile, current, staleMs)) continue
      }
    } catch (err) {
      if (isErrno(err, 'ENOENT')) {
        try {
          fs.mkdirSync(path.dirname(lockfile), {recursive: true})
        } catch (mkErr) {
          throw fsError(mkErr, 'create the directory of lock', lockfile)
        }
        continue
      }
      throw fsError(err, 'take lock', lockfile)
    }
    if (Date.now() >= deadline) throw lockTimeout(lockfile, timeoutMs, last?.owner)
    if (!waited) {
      waited = true
      options.onWait?.(last?.owner)
    }
    // Jittered exponential backoff capped at 40 ms: many waiters do not poll in lockstep,
    // and a freed lock is noticed within a few tens of milliseconds.
    await sleep(Math.min(delay, Math.max(0, deadline - Date.now())) * (0.5 + Math.random()))
    delay = Math.min(delay * 1.6, 40)
  }

  let released = false
  let lost = false
  const refresh = setInterval(() => {
    // Keeps the mtime fresh for waiters that cannot check our pid (other hosts). Never throws:
    // an error in a timer would crash the process; a lost lock shows in stillHeld()/release().
    try {
      const cur = observe(lockfile)
      if (cur?.owner?.nonce !== owner.nonce) {
        lost = true
        clearInterval(refresh)
        return
      }
      const now = new Date()
      fs.utimesSync(lockfile, now, now)
    } catch {
      // transient; the next refresh or release decides
    }
  }, Math.max(50, Math.floor(staleMs / 3)))
  refresh.unref()

  const handle: LockHandle = {
    lockfile,
    owner,
    stillHeld() {
      if (released || lost) return false
      let cur: Observed | undefined
      try {
        cur = observe(lockfile)
      } catch {
        return false
      }
      if (cur?.owner?.nonce !== owner.nonce) lost = true
      return !lost
    },
    release() {
      if (released) return !lost
      released = true
      clearInterval(refresh)
      held.delete(owner.nonce)
      try {
        const cur = observe(lockfile)
        if (cur?.owner?.nonce === owner.nonce) fs.unlinkSync(lockfile)
        else lost = true
      } catch {
        lost = true
      }
      return !lost
    },
  }
  held.set(owner.nonce, handle)
  installExitHook()
  return handle
}

function lockTimeout(lockfile: string, timeoutMs: number, holder: LockOwner | undefined): TransientError {
  const by = holder
    ? ` (held by pid ${holder.pid} on ${holder.host} since ${holder.acquiredAt}${holder.purpose ? ` for ${holder.purpose}` : ''})`
    : ''
  return new TransientError('LOCK_TIMEOUT', `timed out after ${timeoutMs} ms waiting for lock ${lockfile}${by}`, {
    suggestions: [
      'another aibox process is using the same files: retry when it has finished',
      `if no aibox process is running anywhere that shares this directory, remove ${lockfile}`,
    ],
    details: {lockfile, timeoutMs, ...(holder ? {holder} : {})},
  })
}

/**
 * Runs `fn` while holding the lock on `target`, releasing it afterwards whatever happens.
 * If the lock was lost while `fn` ran (judged stale and broken by another process: only
 * possible for a holder on another host that stopped refreshing it), throws TransientError
 * LOCK_LOST after `fn`, since `fn`'s exclusive section may have overlapped another's.
 */
export async function withLock<T>(target: string, fn: (lock: LockHandle) => Promise<T> | T, options: LockOptions = {}): Promise<T> {
  const lock = await acquireLock(target, options)
  let kept = true
  let result: T
  try {
    result = await fn(lock)
  } finally {
    kept = lock.release()
  }
  // Reached only when fn succeeded: fn's own error always wins over a lost lock.
  if (!kept) {
    throw new TransientError('LOCK_LOST', `the lock ${lock.lockfile} was taken over by another process while this one held it`, {
      suggestions: ['retry; if it happens again, check that clocks agree on hosts sharing this directory, or raise staleMs'],
    })
  }
  return result
}

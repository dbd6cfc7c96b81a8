// Preload (node --import) for crash-safety tests (test/helpers/crash.ts): kill -9 the process
// right before its Nth file-system mutation, so a test can crash aibox at every point where the
// disk changes (a write, fsync, rename, link, unlink, mkdir, truncate, or an open for writing),
// not only where a timer happens to fire.
//
// AIBOX_TEST_CRASH_AT=N       SIGKILL before mutation N (1-based).
// AIBOX_TEST_CRASH_COUNT=F    write the number of mutations to file F at exit (a dry run).
// AIBOX_TEST_CRASH_MATCH=RE   count only mutations of paths matching RE (for file descriptors and
//                             handles: the path they were opened with), e.g. the audit log's files.
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import {syncBuiltinESMExports} from 'node:module'

const crashAt = Number(process.env.AIBOX_TEST_CRASH_AT ?? 0)
const countFile = process.env.AIBOX_TEST_CRASH_COUNT
const match = process.env.AIBOX_TEST_CRASH_MATCH ? new RegExp(process.env.AIBOX_TEST_CRASH_MATCH) : undefined
let count = 0
// fd → path it was opened with, so writes and fsyncs by descriptor can be matched too.
const fdPaths = new Map()

function pathOf(target) {
  if (typeof target === 'string') return target
  if (target instanceof URL) return target.pathname
  if (typeof target === 'number') return fdPaths.get(target)
  if (target && typeof target.fd === 'number') return fdPaths.get(target.fd)
  return undefined
}

function mutation(target) {
  if (match && !match.test(pathOf(target) ?? '')) return
  count++
  if (count === crashAt) process.kill(process.pid, 'SIGKILL')
}

const WRITE_FLAG = /[wa+]/
const writes = (flags) => (typeof flags === 'string' ? WRITE_FLAG.test(flags) : typeof flags === 'number' && (flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT)) !== 0)

function wrap(obj, name, opts = {}) {
  const orig = obj[name]
  if (typeof orig !== 'function') return
  obj[name] = function (...args) {
    const target = opts.self ? this : args[0]
    if (!opts.when || opts.when(args)) mutation(target)
    const result = orig.apply(this, args)
    if (opts.opens) opts.opens(args, result)
    return result
  }
}

if (crashAt > 0 || countFile) {
  const always = ['writeSync', 'writeFileSync', 'appendFileSync', 'renameSync', 'linkSync', 'symlinkSync', 'unlinkSync', 'rmSync', 'rmdirSync', 'fsyncSync', 'fdatasyncSync', 'ftruncateSync', 'truncateSync', 'mkdirSync', 'copyFileSync', 'writevSync']
  for (const n of always) wrap(fs, n)
  wrap(fs, 'openSync', {when: (a) => writes(a[1]), opens: (a, fd) => fdPaths.set(fd, String(a[0]))})
  for (const n of ['write', 'writev', 'writeFile', 'appendFile', 'rename', 'link', 'symlink', 'unlink', 'rm', 'rmdir', 'fsync', 'fdatasync', 'ftruncate', 'truncate', 'mkdir', 'copyFile']) wrap(fs, n)
  const openCb = fs.open
  fs.open = function (p, flags, ...rest) {
    if (writes(flags)) mutation(p)
    const cb = rest.pop()
    return openCb.call(this, p, flags, ...rest, (err, fd) => {
      if (!err) fdPaths.set(fd, String(p))
      cb(err, fd)
    })
  }
  for (const n of ['writeFile', 'appendFile', 'rename', 'link', 'symlink', 'unlink', 'rm', 'rmdir', 'truncate', 'mkdir', 'copyFile']) wrap(fsp, n)
  const openP = fsp.open
  fsp.open = async function (p, flags, ...rest) {
    if (writes(flags)) mutation(p)
    const fh = await openP.call(this, p, flags, ...rest)
    fdPaths.set(fh.fd, String(p))
    return fh
  }
  // FileHandle methods live on its prototype: reach it through a handle.
  const fh = await openP(process.execPath, 'r')
  const proto = Object.getPrototypeOf(fh)
  await fh.close()
  for (const n of ['write', 'writev', 'writeFile', 'appendFile', 'sync', 'datasync', 'truncate']) wrap(proto, n, {self: true})
  // Named ESM imports of node:fs (import {open} from 'node:fs') see the wrapped functions too.
  syncBuiltinESMExports()
  if (countFile) process.on('exit', () => fs.writeFileSync(countFile, String(count)))
}

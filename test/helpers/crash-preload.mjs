// Preload (node --import) for crash-safety tests (test/helpers/crash.ts): kill -9 the process
// right before its Nth file-system mutation, so a test can crash aibox at every point where the
// disk changes (a write, fsync, rename, link, unlink, mkdir, truncate, or an open for writing),
// not only where a timer happens to fire.
//
// AIBOX_TEST_CRASH_AT=N    SIGKILL before mutation N (1-based).
// AIBOX_TEST_CRASH_COUNT=F write the number of mutations to file F at exit (a dry run).
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import {syncBuiltinESMExports} from 'node:module'

const crashAt = Number(process.env.AIBOX_TEST_CRASH_AT ?? 0)
const countFile = process.env.AIBOX_TEST_CRASH_COUNT
let count = 0

function mutation() {
  count++
  if (count === crashAt) process.kill(process.pid, 'SIGKILL')
}

const WRITE_FLAG = /[wa+]/
const writes = (flags) => (typeof flags === 'string' ? WRITE_FLAG.test(flags) : typeof flags === 'number' && (flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT)) !== 0)

function wrap(obj, name, when = () => true) {
  const orig = obj[name]
  if (typeof orig !== 'function') return
  obj[name] = function (...args) {
    if (when(args)) mutation()
    return orig.apply(this, args)
  }
}

if (crashAt > 0 || countFile) {
  const always = ['writeSync', 'writeFileSync', 'appendFileSync', 'renameSync', 'linkSync', 'symlinkSync', 'unlinkSync', 'rmSync', 'rmdirSync', 'fsyncSync', 'fdatasyncSync', 'ftruncateSync', 'truncateSync', 'mkdirSync', 'copyFileSync', 'writevSync']
  for (const n of always) wrap(fs, n)
  wrap(fs, 'openSync', (a) => writes(a[1]))
  for (const n of ['write', 'writev', 'writeFile', 'appendFile', 'rename', 'link', 'symlink', 'unlink', 'rm', 'rmdir', 'fsync', 'fdatasync', 'ftruncate', 'truncate', 'mkdir', 'copyFile']) wrap(fs, n)
  wrap(fs, 'open', (a) => writes(a[1]))
  for (const n of ['writeFile', 'appendFile', 'rename', 'link', 'symlink', 'unlink', 'rm', 'rmdir', 'truncate', 'mkdir', 'copyFile']) wrap(fsp, n)
  wrap(fsp, 'open', (a) => writes(a[1]))
  // FileHandle methods live on its prototype: reach it through a handle.
  const fh = await fsp.open(process.execPath, 'r')
  const proto = Object.getPrototypeOf(fh)
  await fh.close()
  for (const n of ['write', 'writev', 'writeFile', 'appendFile', 'sync', 'datasync', 'truncate']) wrap(proto, n)
  // Named ESM imports of node:fs (import {open} from 'node:fs') see the wrapped functions too.
  syncBuiltinESMExports()
  if (countFile) process.on('exit', () => fs.writeFileSync(countFile, String(count)))
}

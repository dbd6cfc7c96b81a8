/**
 * Bounded reads. `fs.readFileSync` trusts the file: a path that is (or links to) /dev/zero, a
 * growing file or a pipe is read until memory runs out. These read at most `maxBytes + 1` bytes,
 * whatever stat says, so an oversized input is refused after a bounded amount of work.
 */
import fs from 'node:fs'

const CHUNK = 64 * 1024

/** Reads `fd` to its end; undefined when it holds more than `maxBytes` bytes (then at most maxBytes + 1 were read). */
export function readFdBounded(fd: number, maxBytes: number, sizeHint = 0): Buffer | undefined {
  let buf = Buffer.allocUnsafe(Math.min(Math.max(sizeHint + 1, CHUNK), maxBytes + 1))
  let off = 0
  for (;;) {
    if (off === buf.length) {
      if (buf.length > maxBytes) return undefined
      const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, maxBytes + 1))
      buf.copy(bigger, 0, 0, off)
      buf = bigger
    }
    let n: number
    try {
      n = fs.readSync(fd, buf, off, buf.length - off, null)
    } catch (err) {
      // A non-blocking stdin (a pipe or a terminal node marked O_NONBLOCK) has no data yet: wait for it.
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10)
        continue
      }
      throw err
    }
    if (n === 0) break
    off += n
  }
  if (off > maxBytes) return undefined
  return buf.subarray(0, off)
}

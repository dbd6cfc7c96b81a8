/**
 * Bounded reads. `fs.readFileSync` trusts the file: a path that is (or links to) /dev/zero, a
 * growing file or a pipe is read until memory runs out. These read at most `maxBytes + 1` bytes,
 * whatever stat says, so an oversized input is refused after a bounded amount of work.
 */
import fs from 'node:fs'

const CHUNK = 1024 * 1024

/**
 * Reads `fd` to its end; undefined when it holds more than `maxBytes` bytes (then at most
 * maxBytes + 1 were read). `sizeHint` (a regular file's stat size) lets the common case read
 * into one buffer of the right size; without it (pipes, devices) the data is gathered in chunks.
 */
export function readFdBounded(fd: number, maxBytes: number, sizeHint = 0): Buffer | undefined {
  const chunks: Buffer[] = []
  let total = 0
  let buf = Buffer.allocUnsafe(Math.min(sizeHint > 0 ? sizeHint + 1 : CHUNK, maxBytes + 1))
  let off = 0
  for (;;) {
    if (off === buf.length) {
      chunks.push(buf)
      if (total > maxBytes) return undefined
      buf = Buffer.allocUnsafe(Math.min(CHUNK, maxBytes + 1 - total))
      off = 0
      if (buf.length === 0) return undefined
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
    total += n
  }
  if (total > maxBytes) return undefined
  if (chunks.length === 0) return buf.subarray(0, off)
  chunks.push(buf.subarray(0, off))
  return Buffer.concat(chunks, total)
}

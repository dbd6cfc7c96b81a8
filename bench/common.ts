/**
 * Helpers shared by the benchmarks that time whole processes against skopeo (registry, airgap):
 * a timed child process that reports its peak RSS, the median of repeated runs, and a random
 * blob of any size written in constant memory.
 */
import {spawn} from 'node:child_process'
import {createHash, randomFillSync} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

export const MiB = 1024 * 1024

export interface Run {
  seconds: number
  /** From the `{"maxRssKiB": N}` line the bench clients print; undefined for other programs. */
  maxRssMiB?: number
}

/** Runs `cmd` to completion and times it; rejects with the tail of stderr when it fails. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(cmd, args, {env, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    child.stdout.on('data', (b: Buffer) => (out += b.toString()))
    child.stderr.on('data', (b: Buffer) => (err += b.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`))
      const m = /\{"maxRssKiB":(\d+)\}/.exec(out)
      resolve({seconds, maxRssMiB: m ? Number(m[1]) / 1024 : undefined})
    })
  })
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** Writes `size` random bytes into `blobsDir` under their sha256 name (4 MiB at a time) and returns the digest. */
export function writeRandomBlob(blobsDir: string, size: number): string {
  const tmp = path.join(blobsDir, 'random.tmp')
  const fd = fs.openSync(tmp, 'w')
  const hash = createHash('sha256')
  const chunk = Buffer.allocUnsafe(4 * MiB)
  for (let left = size; left > 0; left -= chunk.length) {
    const piece = chunk.subarray(0, Math.min(chunk.length, left))
    randomFillSync(piece)
    hash.update(piece)
    fs.writeSync(fd, piece)
  }
  fs.closeSync(fd)
  const hex = hash.digest('hex')
  fs.renameSync(tmp, path.join(blobsDir, hex))
  return `sha256:${hex}`
}

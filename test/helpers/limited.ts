/**
 * Runs the real `aibox` binary under resource limits, for hostile-input and fuzz-crash tests: a
 * V8 heap cap (`--max-old-space-size`), a wall-clock limit (SIGKILL after `timeoutMs`), and the
 * child's peak RSS measured at exit (rss-report.mjs). Buffers live outside the V8 heap, so the
 * RSS measurement is what proves memory stayed bounded, not the heap cap alone.
 */
import {spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import {BIN, ROOT, type CliOptions} from './cli.js'
import {tmpdir} from './tmp.js'

export interface LimitedResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** Wall-clock milliseconds. */
  ms: number
  /** Peak resident set size in MiB (undefined when the child died before its exit handler ran). */
  rssMiB?: number
  /** True when the time limit killed it. */
  timedOut: boolean
  /** Bytes written to stdout and stderr (only the first 4 MiB are kept). */
  outputBytes: number
}

export interface Limits {
  /** V8 old-space cap in MiB (default 256). */
  heapMiB?: number
  /** Kill after this many ms (default 20 s). */
  timeoutMs?: number
}

const PRELOAD = `--import=${path.join(ROOT, 'test', 'helpers', 'rss-report.mjs')}`
let rssDir: string | undefined
let counter = 0

export async function aiboxLimited(args: string[], limits: Limits = {}, options: Omit<CliOptions, 'timeoutMs'> = {}): Promise<LimitedResult> {
  rssDir ??= tmpdir('aibox-rss-')
  const rssFile = path.join(rssDir, `${process.pid}-${++counter}`)
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries({...process.env, NO_COLOR: '1', OCLIF_COLUMNS: '10000', ...options.env, AIBOX_TEST_RSS_FILE: rssFile})) if (v !== undefined) env[k] = v
  // NODE_OPTIONS from mocha (tsx) must not leak into the binary under test.
  delete env.NODE_OPTIONS
  const started = Date.now()
  const child = spawn(process.execPath, [`--max-old-space-size=${limits.heapMiB ?? 256}`, PRELOAD, BIN, ...args], {cwd: options.cwd ?? ROOT, env, stdio: ['pipe', 'pipe', 'pipe']})
  const out: Buffer[] = []
  const err: Buffer[] = []
  let kept = 0
  // Output is bounded too: a hostile input must not make aibox print megabytes.
  const keep = (into: Buffer[]) => (b: Buffer) => {
    if (kept < 4 * 1024 * 1024) into.push(b)
    kept += b.length
  }
  child.stdout.on('data', keep(out))
  child.stderr.on('data', keep(err))
  child.stdin.on('error', () => {})
  child.stdin.end(options.input ?? '')
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, limits.timeoutMs ?? 20_000)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (c, s) => resolve([c, s]))
  })
  clearTimeout(timer)
  let rssMiB: number | undefined
  try {
    rssMiB = Number(fs.readFileSync(rssFile, 'utf8')) / 1024
    fs.rmSync(rssFile)
  } catch {
    rssMiB = undefined
  }
  return {code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms: Date.now() - started, rssMiB, timedOut, outputBytes: kept}
}

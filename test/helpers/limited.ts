/**
 * Runs the real `aibox` binary under resource limits, for hostile-input and fuzz-crash tests: a
 * V8 heap cap (`--max-old-space-size`), a wall-clock limit (SIGKILL after `timeoutMs`), and the
 * child's peak RSS and any prototype pollution recorded at exit (resource-report.mjs). Buffers
 * live outside the V8 heap, so the RSS measurement is what proves memory stayed bounded.
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
  /** CPU milliseconds (user + system) of the child, from its exit report: the load-independent measure of work. */
  cpuMs?: number
  /** Peak resident set size in MiB (undefined when the child died before its exit handler ran). */
  rssMiB?: number
  /** Properties hostile input added to Object/Array/Function.prototype (undefined like rssMiB). */
  polluted?: string[]
  /** True when the time limit killed it. */
  timedOut: boolean
  /** Bytes written to stdout and stderr (only the first 4 MiB are kept). */
  outputBytes: number
}

export interface Limits {
  /** V8 old-space cap in MiB (default 256). */
  heapMiB?: number
  /** Kill after this many wall-clock ms (default 120 s: generous, a shared machine can be slow; assert on cpuMs). */
  timeoutMs?: number
}

const PRELOAD = `--import=${path.join(ROOT, 'test', 'helpers', 'resource-report.mjs')}`
let reportDir: string | undefined
let counter = 0

export async function aiboxLimited(args: string[], limits: Limits = {}, options: Omit<CliOptions, 'timeoutMs'> = {}): Promise<LimitedResult> {
  reportDir ??= tmpdir('aibox-report-')
  const reportFile = path.join(reportDir, `${process.pid}-${++counter}`)
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries({...process.env, NO_COLOR: '1', OCLIF_COLUMNS: '10000', ...options.env, AIBOX_TEST_REPORT_FILE: reportFile})) if (v !== undefined) env[k] = v
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
  }, limits.timeoutMs ?? 120_000)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (c, s) => resolve([c, s]))
  })
  clearTimeout(timer)
  let rssMiB: number | undefined
  let polluted: string[] | undefined
  let cpuMs: number | undefined
  try {
    const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as {maxRSS: number; cpuMs: number; polluted: string[]}
    rssMiB = report.maxRSS / 1024
    polluted = report.polluted
    cpuMs = report.cpuMs
    fs.rmSync(reportFile)
  } catch {
    rssMiB = undefined
  }
  return {code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms: Date.now() - started, cpuMs, rssMiB, polluted, timedOut, outputBytes: kept}
}

/**
 * Runs TypeScript child scripts (through tsx, like mocha) for multi-process tests: lock
 * contention, concurrent appends, and kill -9 crash tests.
 */
import {type ChildProcess, spawn} from 'node:child_process'

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Runs `script` with tsx in a child; `env` is added to ours (an undefined value removes that variable). */
export function spawnTs(script: string, args: string[] = [], env: Record<string, string | undefined> = {}): ChildProcess {
  const merged: NodeJS.ProcessEnv = {...process.env, ...env}
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k]
  return spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    env: merged,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

/** Collects a child's output and waits for it to end (killing it after `timeoutMs`). */
export function finished(child: ChildProcess, timeoutMs = 120_000): Promise<ChildResult> {
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout?.on('data', (b: Buffer) => out.push(b))
  child.stderr?.on('data', (b: Buffer) => err.push(b))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8')})
    })
  })
}

export function runTs(script: string, args: string[] = [], env: Record<string, string | undefined> = {}, timeoutMs?: number): Promise<ChildResult> {
  return finished(spawnTs(script, args, env), timeoutMs)
}

/** Resolves when the child prints `marker` on stdout (e.g. "ready"). */
export function waitForOutput(child: ChildProcess, marker: string, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = ''
    const timer = setTimeout(() => reject(new Error(`child did not print "${marker}" within ${timeoutMs} ms`)), timeoutMs)
    child.stdout?.on('data', (b: Buffer) => {
      seen += b.toString('utf8')
      if (seen.includes(marker)) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.on('close', () => {
      clearTimeout(timer)
      if (!seen.includes(marker)) reject(new Error(`child exited before printing "${marker}"`))
    })
  })
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

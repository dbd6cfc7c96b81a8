/**
 * Runs the real `aibox` binary (bin/run.js, compiled dist/) as a child process, the way a
 * user or a CI script does. e2e tests assert on exit code, stdout, stderr and `--json` output.
 */
import {spawn} from 'node:child_process'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const BIN = path.join(ROOT, 'bin', 'run.js')
export const SHARED = path.resolve(ROOT, '..', 'shared')
export const VECTORS = path.join(SHARED, 'vectors')
export const TESTDATA = path.join(ROOT, 'testdata')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
  /** stdout parsed as JSON when it is JSON, else undefined. */
  json: any
}

export interface CliOptions {
  cwd?: string
  env?: Record<string, string | undefined>
  input?: string | Buffer
  timeoutMs?: number
}

export async function aibox(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries({...process.env, NO_COLOR: '1', ...options.env})) if (v !== undefined) env[k] = v
  const child = spawn(process.execPath, [BIN, ...args], {cwd: options.cwd ?? ROOT, env, stdio: ['pipe', 'pipe', 'pipe']})
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (b: Buffer) => out.push(b))
  child.stderr.on('data', (b: Buffer) => err.push(b))
  child.stdin.on('error', () => {})
  child.stdin.end(options.input ?? '')
  const timeout = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
  const code: number = await new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (c, signal) => resolve(c ?? (signal ? 128 : 1)))
  })
  clearTimeout(timeout)
  const stdout = Buffer.concat(out).toString('utf8')
  let json: unknown
  try {
    json = JSON.parse(stdout)
  } catch {
    json = undefined
  }
  return {code, stdout, stderr: Buffer.concat(err).toString('utf8'), json}
}

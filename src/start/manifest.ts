/**
 * The run record of `aibox start --manifest FILE` (or AIBOX_RUN_MANIFEST; seed 000: "every run
 * records the active policy_profile and policy hash in manifest.json"; schemas/run-manifest.schema.json).
 * It is written atomically before the sandbox command runs (status `running`) and rewritten when
 * the command has ended (status `exited`, exit code or signal, end time), so a crashed run still
 * leaves a record of which policy it ran under. Node built-ins only: this is on the start path.
 */
import {randomUUID} from 'node:crypto'
import path from 'node:path'

import {defaultActor} from '../audit/entry.js'
import {InputError, errorMessage} from '../errors.js'
import {writeFileAtomicSync} from '../util/atomic.js'
import type {StartResult, StartTaint} from './types.js'

export interface RunRecord {
  apiVersion: 'aibox.dev/v1'
  kind: 'RunRecord'
  runId: string
  /** `running` while the command runs, `exited` after it, `loaded` when start ran no command. */
  status: 'running' | 'exited' | 'loaded'
  startedAt: string
  endedAt?: string
  /** The command's exit status (128 + n after signal n), when it has ended. */
  exitCode?: number
  signal?: string
  command: string[]
  cwd: string
  actor: string
  config: string
  policy: {profile: string | null; digest: string; version: string; source: string; file: string}
  tiers: Array<{tier: string; ref: string; name: string | null; version: string | null; digest: string}>
  tainted: boolean
  taint?: StartTaint
}

export interface RunManifest {
  file: string
  record: RunRecord
  /** Completes the record after the command (or without one). */
  finish(exitCode: number, signal?: string | null): void
}

function write(file: string, record: RunRecord): void {
  try {
    writeFileAtomicSync(file, `${JSON.stringify(record, null, 2)}\n`, {mode: 0o644})
  } catch (err) {
    throw new InputError('MANIFEST_UNWRITABLE', `cannot write the run record ${file}: ${errorMessage(err)}`, {
      cause: err,
      suggestions: ['check that the directory of --manifest / AIBOX_RUN_MANIFEST exists and is writable'],
    })
  }
}

/** Writes the run record (status `running`, or `loaded` without a command) and returns how to complete it. */
export function startRunRecord(file: string, result: StartResult, command: readonly string[], options: {env?: NodeJS.ProcessEnv; cwd?: string; now?: () => Date} = {}): RunManifest {
  const env = options.env ?? process.env
  const cwd = options.cwd ?? process.cwd()
  const now = options.now ?? (() => new Date())
  const abs = path.resolve(cwd, file)
  const record: RunRecord = {
    apiVersion: 'aibox.dev/v1',
    kind: 'RunRecord',
    runId: randomUUID(),
    status: command.length > 0 ? 'running' : 'loaded',
    startedAt: now().toISOString(),
    command: [...command],
    cwd,
    actor: defaultActor(env),
    config: result.config,
    policy: {profile: result.profile ?? null, digest: result.effective.digest, version: result.version, source: result.source, file: result.effective.output ?? result.effective.file},
    tiers: result.tiers.map((t) => ({tier: t.tier, ref: t.ref, name: t.name, version: t.version, digest: t.digest})),
    tainted: result.tainted,
    ...(result.taint ? {taint: result.taint} : {}),
  }
  write(abs, record)
  return {
    file: abs,
    record,
    finish(exitCode, signal) {
      record.status = command.length > 0 ? 'exited' : 'loaded'
      record.endedAt = now().toISOString()
      record.exitCode = exitCode
      if (signal) record.signal = signal
      write(abs, record)
    },
  }
}

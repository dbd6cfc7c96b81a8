/**
 * Crash-safety helpers: run the real binary with kill -9 before its Nth file-system mutation
 * (crash-preload.mjs), and check an OCI layout afterwards the way a careful reader would.
 */
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {parseState} from '../../src/cache/state.js'
import {parseManifest, successorsOf, subjectOf} from '../../src/oci/manifest.js'
import {isTempName} from '../../src/util/atomic.js'
import {BIN, ROOT} from './cli.js'

const PRELOAD = `--import=${path.join(ROOT, 'test', 'helpers', 'crash-preload.mjs')}`

export interface CrashRun {
  code: number | null
  signal: NodeJS.Signals | null
  killed: boolean
  stdout: string
  stderr: string
}

export interface CrashOptions {
  /** SIGKILL right before this mutation (1-based; 0 or absent: not at all). */
  crashAt?: number
  /** Receives the number of mutations at exit. */
  countFile?: string
  /** Count only mutations of paths matching this (e.g. the audit log's files). */
  match?: string
  env?: Record<string, string | undefined>
  timeoutMs?: number
}

/** Runs `aibox args` with the crash preload (see CrashOptions). */
export function aiboxCrashing(args: string[], opts: CrashOptions = {}): Promise<CrashRun> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries({...process.env, NO_COLOR: '1', ...opts.env})) if (v !== undefined) env[k] = v
  delete env.NODE_OPTIONS
  if (opts.crashAt) env.AIBOX_TEST_CRASH_AT = String(opts.crashAt)
  if (opts.countFile) env.AIBOX_TEST_CRASH_COUNT = opts.countFile
  if (opts.match) env.AIBOX_TEST_CRASH_MATCH = opts.match
  const child = spawn(process.execPath, [PRELOAD, BIN, ...args], {cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe']})
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (b: Buffer) => out.push(b))
  child.stderr.on('data', (b: Buffer) => err.push(b))
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000)
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code, signal, killed: signal === 'SIGKILL', stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8')})
    })
  })
}

/** Counts the mutations of one uninterrupted run (a dry run), which must succeed. */
export async function mutationsOf(args: string[], countFile: string, env: Record<string, string | undefined>, match?: string): Promise<number> {
  const r = await aiboxCrashing(args, {countFile, env, match})
  if (r.code !== 0) throw new Error(`dry run of aibox ${args.join(' ')} failed:\n${r.stderr}`)
  return Number(fs.readFileSync(countFile, 'utf8'))
}

export interface FsckResult {
  /** Real damage: a blob that does not hash to its name, an index entry or a child that is missing or unparsable. */
  problems: string[]
  /** Left-overs of an interrupted writer that no reader looks at (temp files, ingest). */
  leftovers: string[]
}

/**
 * Reads every blob of a layout directory and checks its digest, then walks every graph from
 * index.json: each manifest must be present and parse, and so must everything it points to (a
 * tag never names something incomplete). Referrers (manifests with a subject) must name a subject
 * that is present.
 */
export function fsckLayout(dir: string): FsckResult {
  const problems: string[] = []
  const leftovers: string[] = []
  const blobsDir = path.join(dir, 'blobs', 'sha256')
  const present = new Set<string>()
  for (const name of fs.existsSync(blobsDir) ? fs.readdirSync(blobsDir) : []) {
    if (isTempName(name)) {
      leftovers.push(`blobs/sha256/${name}`)
      continue
    }
    if (!/^[0-9a-f]{64}$/.test(name)) {
      problems.push(`blobs/sha256/${name}: not a digest name`)
      continue
    }
    const got = createHash('sha256').update(fs.readFileSync(path.join(blobsDir, name))).digest('hex')
    if (got !== name) problems.push(`blobs/sha256/${name}: content hashes to ${got}`)
    else present.add(`sha256:${name}`)
  }
  for (const name of fs.readdirSync(dir)) {
    if (isTempName(name)) leftovers.push(name)
    else if (!['oci-layout', 'index.json', 'blobs', 'ingest'].includes(name) && !name.endsWith('.lock')) problems.push(`${name}: unexpected file`)
  }
  const ingest = path.join(dir, 'ingest')
  if (fs.existsSync(ingest)) for (const f of fs.readdirSync(ingest)) leftovers.push(`ingest/${f}`)
  let index: {manifests?: Array<{digest: string; mediaType: string; size: number}>}
  try {
    index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'))
    JSON.parse(fs.readFileSync(path.join(dir, 'oci-layout'), 'utf8'))
  } catch (err) {
    return {problems: [...problems, `index.json or oci-layout unreadable: ${(err as Error).message}`], leftovers}
  }
  const queue = [...(index.manifests ?? [])]
  const seen = new Set<string>()
  while (queue.length > 0) {
    const d = queue.shift()!
    if (seen.has(d.digest)) continue
    seen.add(d.digest)
    if (!present.has(d.digest)) {
      problems.push(`${d.digest} (${d.mediaType}) is referenced but missing`)
      continue
    }
    if (!/manifest|index/.test(d.mediaType)) continue
    try {
      const parsed = parseManifest(fs.readFileSync(path.join(blobsDir, d.digest.slice(7))), d)
      queue.push(...successorsOf(parsed))
      const subject = subjectOf(parsed)
      if (subject && !present.has(subject.digest)) problems.push(`${d.digest} refers to a missing subject ${subject.digest}`)
    } catch (err) {
      problems.push(`${d.digest}: ${(err as Error).message}`)
    }
  }
  return {problems, leftovers}
}

/** A small seeded PRNG (mulberry32): randomized kill points that a seed reproduces. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `n` kill points spread over [1, total]: one uniformly random point in each of n equal slices. */
export function killPoints(n: number, total: number, random: () => number): number[] {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const lo = Math.floor((i * total) / n) + 1
    const hi = Math.max(lo, Math.floor(((i + 1) * total) / n))
    out.push(lo + Math.floor(random() * (hi - lo + 1)))
  }
  return out
}

/**
 * Checks a verified-policy cache directory (src/cache/) the way `aibox start` relies on it:
 * state.json (when present) parses as a version-1 cache state with every entry well formed; the
 * layout under oci/ passes fsckLayout; every entry's manifest and blobs are present and hash to
 * their digests (nothing half-written is referenced); every effective policy named by a stack memo
 * or a profile is present and hashes to its digest, as does every file of effective/.
 */
export function fsckCache(dir: string): FsckResult {
  const problems: string[] = []
  const leftovers: string[] = []
  const statePath = path.join(dir, 'state.json')
  const layout = path.join(dir, 'oci')
  const blobOk = (digest: string, size?: number): string | undefined => {
    const file = path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length))
    if (!fs.existsSync(file)) return `${digest} is missing`
    const bytes = fs.readFileSync(file)
    if (size !== undefined && bytes.length !== size) return `${digest} has ${bytes.length} bytes, ${size} recorded`
    return `sha256:${createHash('sha256').update(bytes).digest('hex')}` === digest ? undefined : `${digest} does not hash to its digest`
  }
  const effectiveOk = (digest: string): string | undefined => {
    const file = path.join(dir, 'effective', `${digest.slice('sha256:'.length)}.json`)
    if (!fs.existsSync(file)) return `effective ${digest} is missing`
    return `sha256:${createHash('sha256').update(fs.readFileSync(file)).digest('hex')}` === digest ? undefined : `effective ${digest} does not hash to its digest`
  }
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) if (isTempName(name)) leftovers.push(name)
  if (fs.existsSync(layout) && !fs.existsSync(path.join(layout, 'index.json'))) {
    // A first fill killed while creating the layout (before index.json): the next fill completes
    // it (LayoutDirStore.open with create). Whatever blobs are there must still be intact.
    leftovers.push('oci/ (created, no index.json yet)')
    const blobs = path.join(layout, 'blobs', 'sha256')
    for (const name of fs.existsSync(blobs) ? fs.readdirSync(blobs) : []) {
      if (isTempName(name)) leftovers.push(`oci/blobs/sha256/${name}`)
      else if (blobOk(`sha256:${name}`)) problems.push(`oci/blobs/sha256/${name}: ${blobOk(`sha256:${name}`)}`)
    }
  } else if (fs.existsSync(layout)) {
    const r = fsckLayout(layout)
    problems.push(...r.problems.map((p) => `oci/${p}`))
    leftovers.push(...r.leftovers.map((l) => `oci/${l}`))
  }
  const effDir = path.join(dir, 'effective')
  for (const name of fs.existsSync(effDir) ? fs.readdirSync(effDir) : []) {
    if (isTempName(name)) {
      leftovers.push(`effective/${name}`)
      continue
    }
    const m = /^([0-9a-f]{64})\.json$/.exec(name)
    if (!m) problems.push(`effective/${name}: not a digest name`)
    else {
      const p = effectiveOk(`sha256:${m[1]}`)
      if (p) problems.push(p)
    }
  }
  if (!fs.existsSync(statePath)) return {problems, leftovers}
  let raw: {version?: unknown; entries?: Record<string, unknown>; stacks?: Record<string, {effective?: string}>; profiles?: Record<string, {last?: {effective?: string}}>}
  try {
    raw = JSON.parse(fs.readFileSync(statePath, 'utf8'))
  } catch (err) {
    return {problems: [...problems, `state.json does not parse: ${(err as Error).message}`], leftovers}
  }
  const parseProblems: string[] = []
  const state = parseState(JSON.stringify(raw), parseProblems)
  problems.push(...parseProblems.map((p) => `state.json: ${p}`))
  for (const [key, e] of Object.entries(state.entries)) {
    for (const b of [{digest: e.digest, size: e.size}, ...e.blobs]) {
      const p = blobOk(b.digest, b.size)
      if (p) problems.push(`state.json entry ${key}: blob ${p}`)
    }
  }
  for (const [key, s] of Object.entries(raw.stacks ?? {})) {
    const p = s.effective ? effectiveOk(s.effective) : 'no effective digest'
    if (p) problems.push(`state.json stack ${key}: ${p}`)
  }
  for (const [key, prof] of Object.entries(raw.profiles ?? {})) {
    const p = prof.last?.effective ? effectiveOk(prof.last.effective) : undefined
    if (p) problems.push(`state.json profile ${key}: ${p}`)
  }
  return {problems, leftovers}
}

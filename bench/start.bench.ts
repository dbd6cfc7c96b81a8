/**
 * `aibox start` on the hot path (issue 5 "Speed", architecture.md performance targets), against a
 * loopback docker-registry, in one run:
 *
 * 1. warm start (registry up, policy unchanged: one HEAD per tier, everything else from the cache)
 *    vs `node -e 0`, alternating, median wall time; target ratio ≤ 1.6;
 * 2. 200 concurrent starts on an empty cache (BENCH_CONCURRENT to change): all must succeed, the
 *    cache must stay consistent (state.json parses, every entry's blobs re-hash, one effective
 *    policy) and the audit chain must verify;
 * 3. offline fallback (the registry stopped: connection refused, no retry) vs `node -e 0`; target ≤ 1.6.
 *
 * Needs `make build` (dist/). BENCH_RUNS sets the timed runs per case (default 15).
 */
import {spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {startRegistry} from '../test/helpers/registry.js'
import {cleanupTmp, tmpdir} from '../test/helpers/tmp.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const BIN = path.join(ROOT, 'bin', 'run.js')
const KEYS = path.join(ROOT, 'testdata', 'trust', 'keys')
const RUNS = Number(process.env.BENCH_RUNS ?? 15)
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 200)

interface Done {
  code: number | null
  ms: number
  stdout: string
  stderr: string
}

function run(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Done> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(process.execPath, args, {env, cwd, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({code, ms: Number(process.hrtime.bigint() - t0) / 1e6, stdout, stderr}))
  })
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function compare(label: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const base: number[] = []
  const ours: number[] = []
  await run(['-e', '0'], env, cwd)
  for (let i = 0; i < RUNS; i++) {
    base.push((await run(['-e', '0'], env, cwd)).ms)
    const r = await run(args, env, cwd)
    if (r.code !== 0) throw new Error(`${label}: aibox start exited ${r.code}\n${r.stderr}`)
    ours.push(r.ms)
  }
  const ratio = median(ours) / median(base)
  console.log(`${label.padEnd(28)} node -e 0 ${median(base).toFixed(1)} ms   aibox start ${median(ours).toFixed(1)} ms   ratio ${ratio.toFixed(2)} (target ≤ 1.6)`)
  return ratio
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'start', 'fast.js'))) throw new Error('run make build first')
  const work = tmpdir('aibox-bench-start-')
  const reg = await startRegistry()
  try {
    const env: NodeJS.ProcessEnv = {...process.env, COSIGN_PASSWORD: 'test', AIBOX_AUDIT_LOG: path.join(work, 'audit.jsonl'), AIBOX_CACHE: path.join(work, 'cache'), NO_COLOR: '1'}
    delete env.AIBOX_CONFIG
    delete env.AIBOX_POLICY_LOCK
    const push = async (file: string, ref: string, key: string) => {
      const r = await run([BIN, 'push', file, ref, '--key', path.join(KEYS, key)], env, ROOT)
      if (r.code !== 0) throw new Error(`push: ${r.stderr}`)
    }
    await push(path.join(ROOT, 'testdata/bundles/org/baseline.yaml'), `${reg.host}/policies/org:stable`, 'alice.key')
    await push(path.join(ROOT, 'testdata/bundles/teams/alpha/policy.yaml'), `${reg.host}/policies/teams/alpha:stable`, 'bob.key')
    const proj = path.join(work, 'project')
    fs.mkdirSync(path.join(proj, 'aibox'), {recursive: true})
    fs.copyFileSync(path.join(ROOT, 'testdata/bundles/projects/webapp/aibox/policy.yaml'), path.join(proj, 'aibox', 'policy.yaml'))
    fs.writeFileSync(
      path.join(proj, 'aibox.yaml'),
      `policy:\n  org: ${reg.host}/policies/org:stable\n  team: ${reg.host}/policies/teams/alpha:stable\n  project: aibox/policy.yaml\nkeys: [${path.join(KEYS, 'alice.pub')}, ${path.join(KEYS, 'bob.pub')}]\nmaxStaleness: 7d\n`,
    )
    const first = await run([BIN, 'start', '--json'], env, proj)
    if (first.code !== 0) throw new Error(`first start: ${first.stderr}`)
    const warm = await run([BIN, 'start', '--json'], env, proj)
    const requests = JSON.parse(warm.stdout).requests
    console.log(`warm start: ${requests} freshness request(s) for 2 registry tiers; source ${JSON.parse(warm.stdout).source}`)
    const warmRatio = await compare('warm (registry up)', [BIN, 'start', '--quiet'], env, proj)

    // 200 concurrent starts on an empty cache.
    const cenv = {...env, AIBOX_CACHE: path.join(work, 'cache-concurrent'), AIBOX_AUDIT_LOG: path.join(work, 'audit-concurrent.jsonl')}
    const t0 = Date.now()
    const all = await Promise.all(Array.from({length: CONCURRENT}, () => run([BIN, 'start', '--json', '--quiet'], cenv, proj)))
    const ok = all.filter((r) => r.code === 0)
    const digests = new Set(ok.map((r) => JSON.parse(r.stdout).effective.digest))
    const state = JSON.parse(fs.readFileSync(path.join(cenv.AIBOX_CACHE, 'state.json'), 'utf8'))
    const verify = await run([BIN, 'audit', 'verify', '--json'], cenv, proj)
    const loaded = fs.readFileSync(cenv.AIBOX_AUDIT_LOG, 'utf8').trim().split('\n').filter((l) => JSON.parse(l).event === 'policy.loaded').length
    console.log(
      `${CONCURRENT} concurrent starts: ${ok.length} succeeded in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${digests.size} effective polic${digests.size === 1 ? 'y' : 'ies'}, ${Object.keys(state.entries).length} cache entries, ${loaded} policy.loaded events, audit chain ${verify.code === 0 ? 'verifies' : 'BROKEN'}`,
    )
    for (const r of all.filter((x) => x.code !== 0).slice(0, 3)) console.log(`  failure (exit ${r.code}): ${(r.stderr + r.stdout).slice(0, 600)}`)

    await reg.stop()
    const offlineRatio = await compare('offline fallback', [BIN, 'start', '--quiet'], env, proj)
    const pass = warmRatio <= 1.6 && offlineRatio <= 1.6 && ok.length === CONCURRENT && digests.size === 1 && verify.code === 0
    console.log(pass ? 'start: all targets met' : 'start: TARGET MISSED (see above; timings depend on machine load)')
  } finally {
    await reg.stop()
    cleanupTmp()
  }
}

await main()

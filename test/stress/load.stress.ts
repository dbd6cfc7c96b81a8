/**
 * `make stress`: load.
 *
 * - STRESS_STARTS (default 200) concurrent `aibox start` of one configuration (org and team tiers
 *   on a real registry, a project file) on an empty cache: counts the exits and the effective
 *   digests; all must exit 0 with the same effective digest, the audit log must hold exactly that
 *   many `policy.loaded` events and verify, and the cache must verify (test/helpers/crash.ts
 *   fsckCache). `make test` runs 50 of them (test/e2e/start.test.ts).
 * - The worst case of the referrers tag fallback: STRESS_SIGNERS (default 30) concurrent `aibox
 *   sign REF` of one digest, with the five test keys in turn, so every one of them rewrites the
 *   same `sha256-<hex>` index on distribution 2.8 (no referrers API). Counts the signatures that
 *   survive; none may be lost.
 * - Then the concurrent pushes of test/e2e/load.test.ts with STRESS_PUSHES (default 40).
 */
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {RemoteRepository} from '../../src/oci/index.js'
import {aibox as run, type CliResult, TESTDATA} from '../helpers/cli.js'
import {fsckCache} from '../helpers/crash.js'
import {KEYS_DIR, ORG_BASELINE, PUB, privateKey, publish} from '../helpers/policy-fixtures.js'
import {type RegistryHandle, startRegistry} from '../helpers/registry.js'
import {bundleOf, orgYaml, teamYaml, writeFile} from '../helpers/start-fixtures.js'
import {tmpdir} from '../helpers/tmp.js'

const STARTS = Number(process.env.STRESS_STARTS ?? 200)

describe(`stress: ${STARTS} concurrent aibox start on an empty cache`, function () {
  this.timeout(Math.max(900_000, STARTS * 5_000))
  let reg: RegistryHandle
  const work = tmpdir('aibox-stress-start-')
  const env = {AIBOX_CACHE: path.join(work, 'cache'), AIBOX_AUDIT_LOG: path.join(work, 'audit.jsonl'), AIBOX_CONFIG: path.join(work, 'aibox.yaml'), AIBOX_POLICY_LOCK: undefined, XDG_CACHE_HOME: path.join(work, 'xdg'), CI: '1'}
  const aibox = (args: string[]): Promise<CliResult> => run(args, {cwd: work, env, timeoutMs: 600_000})

  before(async () => {
    reg = await startRegistry()
    const org = new RemoteRepository(`${reg.host}/load/org`)
    const team = new RemoteRepository(`${reg.host}/load/teams/alpha`)
    try {
      await publish(org, bundleOf(orgYaml('1.4.0')), [await privateKey('alice')], ['stable'])
      await publish(team, bundleOf(teamYaml('2.1.0')), [await privateKey('bob')], ['stable'])
    } finally {
      await org.close()
      await team.close()
    }
    writeFile(work, 'aibox/policy.yaml', fs.readFileSync(path.join(TESTDATA, 'bundles', 'projects', 'webapp', 'aibox', 'policy.yaml'), 'utf8'))
    writeFile(work, 'aibox.yaml', `policy:\n  org: ${reg.host}/load/org:stable\n  team: ${reg.host}/load/teams/alpha:stable\n  project: aibox/policy.yaml\nkeys: [${PUB('alice')}, ${PUB('bob')}]\nmaxStaleness: 7d\n`)
  })
  after(async () => {
    await reg?.stop()
  })

  it('all exit 0 with one effective digest; exactly one policy.loaded per start; the log and the cache verify', async () => {
    const started = Date.now()
    const all = await Promise.all(Array.from({length: STARTS}, () => aibox(['start', '--json', '--quiet'])))
    const seconds = (Date.now() - started) / 1000
    const codes = new Map<number | null, number>()
    for (const r of all) codes.set(r.code, (codes.get(r.code) ?? 0) + 1)
    const digests = new Set(all.filter((r) => r.code === 0).map((r) => r.json?.effective?.digest as string))
    const sources = new Map<string, number>()
    for (const r of all) if (r.code === 0) sources.set(r.json.source, (sources.get(r.json.source) ?? 0) + 1)
    console.log(`      ${STARTS} concurrent starts in ${seconds.toFixed(1)} s: exits ${JSON.stringify(Object.fromEntries(codes))}, ${digests.size} effective digest(s), sources ${JSON.stringify(Object.fromEntries(sources))}`)
    expect(all.filter((r) => r.code !== 0).map((r) => `${r.code}: ${r.stderr.slice(0, 300)}`), 'failed starts').to.deep.equal([])
    expect(digests.size).to.equal(1)
    const loaded = fs.readFileSync(env.AIBOX_AUDIT_LOG, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as {event: string; digest?: string}).filter((e) => e.event === 'policy.loaded')
    console.log(`      audit log: ${loaded.length} policy.loaded events`)
    expect(loaded).to.have.length(STARTS)
    expect(new Set(loaded.map((e) => e.digest))).to.deep.equal(digests)
    const verify = await aibox(['audit', 'verify'])
    expect(verify.code, verify.stderr).to.equal(0)
    expect(fsckCache(env.AIBOX_CACHE).problems).to.deep.equal([])
  })
})

const SIGNERS = Number(process.env.STRESS_SIGNERS ?? 30)
const KEYS = ['alice', 'bob', 'carol', 'ci', 'mallory']

describe(`stress: ${SIGNERS} concurrent signatures of one digest (referrers tag fallback)`, function () {
  this.timeout(Math.max(600_000, SIGNERS * 30_000))
  let reg: RegistryHandle
  const work = tmpdir('aibox-stress-sign-')
  const aibox = (args: string[]): Promise<CliResult> =>
    run(args, {env: {COSIGN_PASSWORD: 'test', AIBOX_AUDIT_LOG: path.join(work, 'audit.jsonl'), CI: '1'}, timeoutMs: 600_000})

  before(async () => {
    reg = await startRegistry()
  })
  after(async () => {
    await reg?.stop()
  })

  it('keeps every signature', async () => {
    const pushed = await aibox(['push', ORG_BASELINE, `${reg.host}/policies/stress`, '--key', path.join(KEYS_DIR, 'alice.key'), '--json'])
    expect(pushed.code, pushed.stderr).to.equal(0)
    const ref = `${reg.host}/policies/stress@${pushed.json.digest}`
    const results = await Promise.all(Array.from({length: SIGNERS}, (_, i) => aibox(['sign', ref, '--key', path.join(KEYS_DIR, `${KEYS[i % KEYS.length]}.key`), '--json'])))
    const codes = results.map((r) => r.code)
    console.log(`      ${SIGNERS} concurrent signs: ${codes.filter((c) => c === 0).length} ok, ${codes.filter((c) => c === 4).length} transient, ${codes.filter((c) => c !== 0 && c !== 4).length} other`)
    expect(codes.filter((c) => c !== 0 && c !== 4), results.map((r) => r.stderr).join('\n')).to.deep.equal([])
    const signed = results.filter((r) => r.code === 0).map((r) => r.json.signature.digest as string)
    const d = await aibox(['discover', ref, '--json'])
    expect(d.code, d.stderr).to.equal(0)
    const listed = new Set((d.json.referrers as Array<{id: string}>).map((n) => n.id))
    const lost = signed.filter((s) => !listed.has(s))
    console.log(`      signatures listed: ${listed.size}, lost: ${lost.length} of ${signed.length}`)
    expect(lost).to.deep.equal([])
  })
})

process.env.LOAD_PUSHES ??= process.env.STRESS_PUSHES ?? '40'
await import('../e2e/load.test.js')

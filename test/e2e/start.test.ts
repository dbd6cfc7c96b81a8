/**
 * e2e: `aibox start` through the real binary (the fast path without oclif, and the oclif command
 * with AIBOX_NO_FAST_START=1) against a real registry (distribution 2.8) behind the fault proxy,
 * which counts the requests and injects outages: first start, unchanged start (one request per
 * tier), propagation, rollback refused and accepted with a signed incident approval, unsigned and
 * wrongly-signed policies refused without fallback, loosening refused, registry down → cache,
 * stale cache refused, lock, override taint, a damaged cache refetched, a tampered layout refused
 * with the cache untouched, concurrent starts, the sandbox command's environment and exit status,
 * and the audit chain.
 */
import {spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {LayoutDirStore, RemoteRepository} from '../../src/oci/index.js'
import {type CliOptions, type CliResult, BIN, TESTDATA, aibox as run} from '../helpers/cli.js'
import {type FaultProxy, startFaultProxy} from '../helpers/fault-proxy.js'
import {KEY, privateKey, PUB, publish} from '../helpers/policy-fixtures.js'
import {type RegistryHandle, startRegistry} from '../helpers/registry.js'
import {expectOutputSchema} from '../helpers/schemas.js'
import {bundleOf, orgYaml, teamYaml, writeFile} from '../helpers/start-fixtures.js'
import {listFiles, tmpdir} from '../helpers/tmp.js'

const WEBAPP = fs.readFileSync(path.join(TESTDATA, 'bundles', 'projects', 'webapp', 'aibox', 'policy.yaml'), 'utf8')
const LEAKY = fs.readFileSync(path.join(TESTDATA, 'bundles', 'projects', 'leaky', 'aibox', 'policy.yaml'), 'utf8')

describe('aibox start (e2e)', function () {
  this.timeout(240_000)
  let reg: RegistryHandle
  let proxy: FaultProxy
  const repos: RemoteRepository[] = []
  let n = 0

  before(async () => {
    reg = await startRegistry()
    proxy = await startFaultProxy(reg.url)
  })
  after(async () => {
    for (const r of repos) await r.close()
    await proxy?.close()
    await reg?.stop()
  })

  /** A fresh project with its own repositories, cache, audit log and trust policy. */
  async function project(options: {team?: boolean; trustText?: (dir: string) => string; via?: FaultProxy} = {}) {
    const front = options.via ?? proxy
    const id = `p${++n}`
    const dir = tmpdir('aibox-start-e2e-')
    const repo = (name: string) => {
      const r = new RemoteRepository(`${reg.host}/${id}/${name}`)
      repos.push(r)
      return r
    }
    const org = repo('org')
    const team = repo('teams/alpha')
    await publish(org, bundleOf(orgYaml('1.4.0')), [await privateKey('alice')], ['stable', '1.4.0'])
    if (options.team !== false) await publish(team, bundleOf(teamYaml('2.1.0')), [await privateKey('bob')], ['stable'])
    writeFile(dir, 'trust.yaml', options.trustText?.(dir) ?? trustPolicy(id))
    writeFile(dir, 'aibox/policy.yaml', WEBAPP)
    const config = [
      'policy:',
      `  org: ${front.host}/${id}/org:stable`,
      ...(options.team !== false ? [`  team: ${front.host}/${id}/teams/alpha:stable`] : []),
      '  project: aibox/policy.yaml',
      'trust: trust.yaml',
      'maxStaleness: 7d',
      'registry: {timeout: 5s}',
    ]
    writeFile(dir, 'aibox.yaml', `${config.join('\n')}\n`)
    const env = {AIBOX_CACHE: path.join(dir, 'cache'), AIBOX_AUDIT_LOG: path.join(dir, 'audit.jsonl'), AIBOX_CONFIG: undefined, AIBOX_POLICY_LOCK: undefined, AIBOX_ACTOR: 'dev@e2e', COSIGN_PASSWORD: 'test', CI: '1'}
    const start = (args: string[], o: CliOptions = {}): Promise<CliResult> => run(['start', ...args], {cwd: dir, ...o, env: {...env, ...o.env}})
    const cli = (args: string[], o: CliOptions = {}): Promise<CliResult> => run(args, {cwd: dir, ...o, env: {...env, ...o.env}})
    const events = () => fs.readFileSync(env.AIBOX_AUDIT_LOG, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    const state = () => fs.readFileSync(path.join(env.AIBOX_CACHE, 'state.json'), 'utf8')
    const requestsDuring = async (fn: () => Promise<CliResult>) => {
      const before = front.requests.length
      const r = await fn()
      return {r, requests: front.requests.slice(before).filter((q) => q.url.includes(`/${id}/`))}
    }
    return {id, dir, org, team, env, start, cli, events, state, requestsDuring}
  }

  function trustPolicy(id: string): string {
    return `apiVersion: aibox.dev/v1
kind: TrustPolicy
metadata: {name: e2e}
keys:
  alice: {path: ${PUB('alice')}, roles: [security]}
  bob: {path: ${PUB('bob')}, roles: [team-lead, approver]}
scopes:
  - name: org
    match: {registry: "127.0.0.1:*", repository: ${id}/org, tiers: [org]}
    require: {signatures: {security: 1}}
  - name: teams
    match: {registry: "127.0.0.1:*", repository: "${id}/teams/*", tiers: [team]}
    require: {signatures: {team-lead: 1}}
`
  }

  const ok = (r: CliResult, what = 'aibox start') => expect(r.code, `${what}\n${r.stdout}\n${r.stderr}`).to.equal(0)

  describe('first start and unchanged start', () => {
    it('fetches, verifies against the trust policy, prints one line per tier and the --json result (schema start)', async () => {
      const p = await project()
      const r = await p.start(['--json'])
      ok(r)
      expectOutputSchema('start', r.json)
      expect(r.json.source).to.equal('registry')
      expect(r.json.tiers.map((t: any) => [t.tier, t.version, t.source])).to.deep.equal([
        ['org', '1.4.0', 'registry'],
        ['team', '2.1.0', 'registry'],
        ['project', '0.3.0', 'file'],
      ])
      expect(r.stderr).to.match(/^policy org-baseline 1\.4\.0 \(sha256:[0-9a-f]{64}\) loaded from registry$/m)
      expect(r.stderr).to.match(/^policy webapp 0\.3\.0 \(sha256:[0-9a-f]{64}\) loaded from file aibox\/policy\.yaml$/m)
      // The effective policy is what `aibox bundle check` computes for the same stack.
      fs.writeFileSync(path.join(p.dir, 'org.yaml'), orgYaml('1.4.0'))
      fs.writeFileSync(path.join(p.dir, 'team.yaml'), teamYaml('2.1.0'))
      const check = await p.cli(['bundle', 'check', '--base', 'org.yaml', '--base', 'team.yaml', 'aibox/policy.yaml', '-o', 'effective.json', '--json'])
      expect(check.json.digest).to.equal(r.json.effective.digest)
      expect(fs.readFileSync(r.json.effective.file).equals(fs.readFileSync(path.join(p.dir, 'effective.json')))).to.equal(true)
      const loaded = p.events().filter((e) => e.event === 'policy.loaded')
      expect(loaded.at(-1)).to.include({digest: r.json.effective.digest, source: 'registry', actor: 'dev@e2e'})
    })

    it('on an unchanged policy makes exactly one request per registry tier (a HEAD) and loads from the cache', async () => {
      const p = await project()
      ok(await p.start([]))
      const {r, requests} = await p.requestsDuring(() => p.start(['--json']))
      ok(r)
      expect(requests.map((q) => `${q.method} ${q.url}`)).to.have.members([`HEAD /v2/${p.id}/org/manifests/stable`, `HEAD /v2/${p.id}/teams/alpha/manifests/stable`])
      expect(r.json).to.include({source: 'cache', requests: 2, stalenessSeconds: 0})
      expect(r.stderr).to.match(/^policy team-alpha 2\.1\.0 \(sha256:[0-9a-f]{64}\) loaded from cache$/m)
    })

    it('gives the same result through the oclif command (AIBOX_NO_FAST_START=1), also with one request per tier', async () => {
      const p = await project()
      const fast = await p.start(['--json'])
      const {r, requests} = await p.requestsDuring(() => p.start(['--json'], {env: {AIBOX_NO_FAST_START: '1'}}))
      ok(r)
      expectOutputSchema('start', r.json)
      expect(r.json.effective).to.deep.equal(fast.json.effective)
      expect(requests).to.have.length(2)
      const help = await p.start(['--help'])
      expect(help.stdout).to.contain('--override-verification').and.contain('--max-staleness')
    })

    it('runs the sandbox command with the policy variables and returns its exit status', async () => {
      const p = await project()
      const script = 'const e=process.env; console.log(JSON.stringify({f:e.AIBOX_POLICY_FILE,d:e.AIBOX_POLICY_DIGEST,v:e.AIBOX_POLICY_VERSION,s:e.AIBOX_POLICY_SOURCE,t:e.AIBOX_POLICY_TAINT ?? null})); process.exit(7)'
      const r = await p.start(['--', process.execPath, '-e', script])
      expect(r.code).to.equal(7)
      const got = JSON.parse(r.stdout)
      expect(got.v).to.equal('org-baseline@1.4.0 team-alpha@2.1.0 webapp@0.3.0')
      expect(got.d).to.match(/^sha256:[0-9a-f]{64}$/)
      expect(JSON.parse(fs.readFileSync(got.f, 'utf8')).kind).to.equal('EffectivePolicy')
      expect([got.s, got.t]).to.deep.equal(['registry', null])
      const missing = await p.start(['--', 'no-such-command-aibox'])
      expect(missing.code).to.equal(127)
      expect(missing.stderr).to.contain('command not found')
      const json = await p.start(['--json', '--', 'true'])
      expect(json.code).to.equal(1)
      expectOutputSchema('error', json.json)
      expect(json.json.error.code).to.equal('JSON_WITH_COMMAND')
    })

    it('passes on a signal that ends the command', async () => {
      const p = await project()
      ok(await p.start([]))
      const env: NodeJS.ProcessEnv = {...process.env}
      for (const [k, v] of Object.entries(p.env)) if (v === undefined) delete env[k]
      else env[k] = v
      const child = spawn(process.execPath, [BIN, 'start', '--quiet', '--', process.execPath, '-e', 'process.kill(process.pid, "SIGTERM")'], {cwd: p.dir, env, stdio: 'ignore'})
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])))
      expect(signal === 'SIGTERM' || code === 143, `code ${code} signal ${signal}`).to.equal(true)
    })
  })

  describe('propagation and rollback', () => {
    it('loads a new version on the next start and logs the change', async () => {
      const p = await project()
      const first = await p.start(['--json'])
      await publish(p.org, bundleOf(orgYaml('1.5.0', [['requests_per_min: 60', 'requests_per_min: 40']])), [await privateKey('alice')], ['stable', '1.5.0'])
      const r = await p.start(['--json'])
      ok(r)
      expect(r.json.tiers[0]).to.include({version: '1.5.0', source: 'registry'})
      expect(r.json.previous).to.equal(first.json.effective.digest)
      expect(r.stderr).to.match(/^policy org-baseline 1\.5\.0 .* loaded from registry$/m)
      expect(p.events().at(-1)).to.include({event: 'policy.loaded', from: first.json.effective.digest})
    })

    it('refuses an older version (exit 2, no fallback, cache untouched), then accepts it with a signed incident approval', async () => {
      const p = await project()
      await publish(p.org, bundleOf(orgYaml('1.5.0', [['requests_per_min: 60', 'requests_per_min: 40']])), [await privateKey('alice')], ['stable', '1.5.0'])
      ok(await p.start([]))
      const before = p.state()
      const older = await publish(p.org, bundleOf(orgYaml('1.4.0')), [await privateKey('alice')], ['stable'])
      const refused = await p.start([])
      expect(refused.code).to.equal(2)
      expect(refused.stderr).to.contain('POLICY_ROLLBACK').and.contain('older than the cached 1.5.0')
      expect(p.state()).to.equal(before)
      expect(p.events().at(-1)).to.include({event: 'policy.refused', code: 'POLICY_ROLLBACK'})
      const approve = await p.cli(['approve', `${reg.host}/${p.id}/org@${older.manifest.digest}`, '--key', KEY('bob'), '--role', 'security', '--note', '1.5.0 broke the LLM gateway', '--incident', 'INC-2041'])
      ok(approve, 'aibox approve')
      const r = await p.start(['--json'])
      ok(r)
      expect(r.json.tiers[0]).to.include({version: '1.4.0'})
      expect(r.json.tiers[0].rollback).to.include({from: '1.5.0', incident: 'INC-2041'})
      expect(p.events().find((e) => e.event === 'policy.rollback')).to.include({incident: 'INC-2041', from: '1.5.0', digest: older.manifest.digest})
    })
  })

  describe('verification failures never fall back silently', () => {
    it('refuses an unsigned or wrongly signed policy (exit 2) although a verified cache exists; --override-verification --reason loads the cached one, tainted', async () => {
      const p = await project()
      const good = await p.start(['--json'])
      await publish(p.org, bundleOf(orgYaml('1.6.0')), [], ['stable'])
      const unsigned = await p.start([])
      expect(unsigned.code).to.equal(2)
      expect(unsigned.stderr).to.contain('NO_SIGNATURES')
      await publish(p.org, bundleOf(orgYaml('1.6.1')), [await privateKey('mallory')], ['stable'])
      const wrong = await p.start(['--json'])
      expect(wrong.code).to.equal(2)
      expectOutputSchema('error', wrong.json)
      expect(wrong.json.error.code).to.equal('SIGNATURE_INVALID')
      const noReason = await p.start(['--override-verification'])
      expect(noReason.code).to.equal(1)
      expect(noReason.stderr).to.contain('REASON_REQUIRED')
      const r = await p.start(['--override-verification', '--reason', 'INC-88: signing key rotation in progress', '--', process.execPath, '-e', 'console.log(process.env.AIBOX_POLICY_TAINT, process.env.AIBOX_POLICY_DIGEST)'])
      ok(r)
      expect(r.stdout.trim()).to.equal(`policy_override ${good.json.effective.digest}`)
      expect(r.stderr).to.contain('warning: verification failed (SIGNATURE_INVALID')
      expect(p.events().find((e) => e.event === 'policy.override')).to.include({override: 'verification', reason: 'INC-88: signing key rotation in progress', actor: 'dev@e2e', taint: 'policy_override'})
      // The taint stays on later runs until the source verifies again.
      await publish(p.org, bundleOf(orgYaml('1.6.2')), [await privateKey('alice')], ['stable'])
      const back = await p.start(['--json'])
      ok(back)
      expect(back.json.tainted).to.equal(false)
      expect(p.events().some((e) => e.event === 'policy.override.reverted')).to.equal(true)
    })

    it("refuses a loosening team policy and a loosening project policy with the runbook's words", async () => {
      const p = await project()
      writeFile(p.dir, 'aibox/policy.yaml', LEAKY)
      const proj = await p.start([])
      expect(proj.code).to.equal(2)
      expect(proj.stderr).to.match(/Project policy loosens (team|org) restriction '[^']+'/).and.contain('Project policies can only add restrictions, not remove them.')
      writeFile(p.dir, 'aibox/policy.yaml', WEBAPP)
      const loose = fs.readFileSync(path.join(TESTDATA, 'bundles', 'loosen', 'teams', 'alpha', 'policy.yaml'), 'utf8').replace('version: 1.0.0', 'version: 2.2.0')
      await publish(p.team, bundleOf(loose), [await privateKey('bob')], ['stable'])
      const team = await p.start([])
      expect(team.code).to.equal(2)
      expect(team.stderr).to.contain(`Team policy '${proxy.host}/${p.id}/teams/alpha:stable' loosens org baseline rule 'network.allow[git-server].hosts': adds "pastebin.com".`)
      expect(team.stderr).to.contain('Team policies can only tighten the org baseline. Contact the security team to request org-level changes.')
    })

    it('refuses a tampered layout (exit 2) and leaves the cache untouched', async () => {
      const p = await project({team: false})
      const layout = path.join(p.dir, 'layout')
      const store = await LayoutDirStore.open(layout, {create: true})
      await publish(store, bundleOf(orgYaml('1.4.0')), [await privateKey('alice')], ['stable'])
      writeFile(p.dir, 'aibox.yaml', `policy:\n  org: oci:layout:stable\n  project: aibox/policy.yaml\nkeys: [${PUB('alice')}]\n`)
      ok(await p.start([]))
      const published = await publish(store, bundleOf(orgYaml('1.7.0', [['foundry.internal', 'foundry.internal2']])), [await privateKey('alice')], ['stable'])
      const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'blobs', 'sha256', published.manifest.digest.slice(7)), 'utf8'))
      const blob = path.join(layout, 'blobs', 'sha256', manifest.layers[0].digest.slice(7))
      fs.chmodSync(blob, 0o644)
      fs.writeFileSync(blob, fs.readFileSync(blob, 'utf8').replace('foundry.internal2', 'foundry.attacker'))
      const before = {state: p.state(), files: listFiles(p.env.AIBOX_CACHE)}
      const r = await p.start([])
      expect(r.code).to.equal(2)
      expect(r.stderr).to.match(/DIGEST_MISMATCH|does not match/)
      expect(p.state()).to.equal(before.state)
      expect(listFiles(p.env.AIBOX_CACHE).filter((f) => !f.startsWith('config-memo'))).to.deep.equal(before.files.filter((f) => !f.startsWith('config-memo')))
    })
  })

  describe('offline', () => {
    it('uses the verified cache when the registry fails (one request per tier, no retry), warns with the age, and refuses past maxStaleness with the sealed-mode banner', async () => {
      const p = await project()
      ok(await p.start([]))
      proxy.addRule({path: new RegExp(`/v2/${p.id}/`), times: 2, action: {status: 503}})
      const {r, requests} = await p.requestsDuring(() => p.start(['--json']))
      ok(r)
      expect(requests).to.have.length(2)
      expect(r.json.source).to.equal('cache')
      expect(r.stderr).to.match(/warning: .*org:stable cannot be reached \(.*answered 503.*\): using the verified cache from \d+s ago/)
      proxy.clearRules()
      await new Promise((res) => setTimeout(res, 2100))
      proxy.addRule({path: new RegExp(`/v2/${p.id}/`), times: 2, action: {reset: true}})
      const stale = await p.start(['--max-staleness', '1s'])
      proxy.clearRules()
      expect(stale.code).to.equal(4)
      expect(stale.stderr).to.contain('SEALED MODE').and.contain('older than maxStaleness (1s)').and.contain('CACHE_TOO_STALE')
    })

    it('with the registry gone entirely (connection refused) still starts from the cache; with an empty cache it cannot (exit 4)', async () => {
      const own = await startFaultProxy(reg.url)
      const p = await project({team: false, via: own})
      ok(await p.start([]))
      await own.close()
      const r = await p.start(['--json'])
      ok(r)
      expect(r.json.source).to.equal('cache')
      expect(r.stderr).to.contain('connection refused')
      const empty = await p.start([], {env: {AIBOX_CACHE: path.join(p.dir, 'empty-cache')}})
      expect(empty.code).to.equal(4)
      expect(empty.stderr).to.contain('NO_VERIFIED_CACHE').and.contain('connection refused')
      const offline = await p.start(['--offline', '--json'])
      ok(offline)
      expect(offline.json.requests).to.equal(0)
    })
    it('with an empty cache, a failed freshness check is not final: the full client tries again (with retries) and fetches', async () => {
      const p = await project({team: false})
      proxy.addRule({path: new RegExp(`/v2/${p.id}/org/manifests/stable`), times: 1, action: {status: 503}})
      const r = await p.start(['--json'])
      proxy.clearRules()
      ok(r)
      expect(r.json.source).to.equal('registry')
    })
  })

  describe('the cache', () => {
    it('detects a damaged blob, refetches it, and starts', async () => {
      const p = await project()
      ok(await p.start([]))
      const state = JSON.parse(p.state())
      const org = Object.values(state.entries).find((e: any) => e.tier === 'org') as any
      const blob = path.join(p.env.AIBOX_CACHE, 'oci', 'blobs', 'sha256', org.blobs[0].digest.slice(7))
      fs.chmodSync(blob, 0o644)
      fs.writeFileSync(blob, '{"tampered":true}')
      const r = await p.start(['--json'])
      ok(r)
      expect(r.stderr).to.contain('is damaged')
      expect(r.json.tiers[0].source).to.equal('registry')
      expect(fs.readFileSync(blob, 'utf8')).to.not.contain('tampered')
    })

    it('survives 50 concurrent starts on an empty cache: all succeed, one effective policy, a consistent cache and audit chain', async () => {
      const p = await project()
      const all = await Promise.all(Array.from({length: 50}, () => p.start(['--json', '--quiet'], {timeoutMs: 200_000})))
      const failed = all.filter((r) => r.code !== 0)
      expect(failed.map((r) => r.stderr.slice(0, 300)), 'failures').to.deep.equal([])
      expect(new Set(all.map((r) => r.json.effective.digest)).size).to.equal(1)
      const state = JSON.parse(p.state())
      expect(Object.keys(state.entries)).to.have.length(2)
      expect(p.events().filter((e) => e.event === 'policy.loaded')).to.have.length(50)
      const verify = await p.cli(['audit', 'verify'])
      ok(verify, 'aibox audit verify')
      // One more start is warm: from the cache.
      const warm = await p.start(['--json'])
      expect(warm.json.source).to.equal('cache')
    })
  })

  describe('AIBOX_POLICY_LOCK=1', () => {
    it('refuses a weaker policy than the last loaded (exit 5); --override-lock --reason accepts it, tainted', async () => {
      const p = await project()
      ok(await p.start([]))
      await publish(p.team, bundleOf(teamYaml('2.2.0', [['rate_limit: {requests_per_min: 30}', 'rate_limit: {requests_per_min: 60}']])), [await privateKey('bob')], ['stable'])
      const refused = await p.start([], {env: {AIBOX_POLICY_LOCK: '1'}})
      expect(refused.code).to.equal(5)
      expect(refused.stderr).to.contain('POLICY_LOCKED').and.contain("raises requests_per_min from 30 to 60")
      expect(p.events().at(-1)).to.include({event: 'policy.lock.refused'})
      const r = await p.start(['--override-lock', '--reason', 'SEC-12 load test', '--json'], {env: {AIBOX_POLICY_LOCK: '1'}})
      ok(r)
      expect(r.json.taint).to.include({override: 'lock', reason: 'SEC-12 load test', actor: 'dev@e2e'})
      expect(p.events().at(-1)).to.include({event: 'policy.loaded', tainted: true})
    })
  })

  describe('the audit log', () => {
    it('verifies, and detects an edited line', async () => {
      const p = await project()
      ok(await p.start([]))
      ok(await p.start([]))
      ok(await p.cli(['audit', 'verify']), 'aibox audit verify')
      const lines = fs.readFileSync(p.env.AIBOX_AUDIT_LOG, 'utf8').split('\n')
      lines[0] = lines[0]!.replace('"source":"registry"', '"source":"cache"')
      fs.writeFileSync(p.env.AIBOX_AUDIT_LOG, lines.join('\n'))
      const broken = await p.cli(['audit', 'verify'])
      expect(broken.code).to.equal(2)
    })
  })

  describe('bad input', () => {
    it('reports a broken aibox.yaml with file:line (exit 1) and a missing one with where it looked (exit 3)', async () => {
      const p = await project()
      writeFile(p.dir, 'aibox.yaml', 'policy:\n  org: oci:x:stable\nmaxStalenes: 7d\n')
      const bad = await p.start([])
      expect(bad.code).to.equal(1)
      expect(bad.stderr).to.contain('aibox.yaml:3:1 /maxStalenes: unknown key "maxStalenes" (did you mean "maxStaleness"?)')
      fs.rmSync(path.join(p.dir, 'aibox.yaml'))
      const none = await p.start([], {env: {HOME: p.dir, XDG_CONFIG_HOME: undefined}})
      expect(none.code).to.equal(3)
      expect(none.stderr).to.contain('CONFIG_NOT_FOUND')
      const flags = await p.start(['--no-such-flag'])
      expect(flags.code).to.equal(1)
      const positional = await p.start(['bash'])
      expect(positional.code).to.equal(1)
      expect(positional.stderr).to.contain('put the sandbox command after --')
    })
  })
})

/**
 * startPolicy in process, on real OCI layouts (the embedded default) with a controlled clock:
 * the decisions of `aibox start` (cache use, propagation, rollback, loosening, staleness, lock,
 * override and taint, corruption, trust changes). The binary against a real registry is in
 * test/e2e/start.test.ts.
 */
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {verifyChain} from '../../../src/audit/index.js'
import {attachApproval} from '../../../src/distribute/index.js'
import {EXIT, GovernanceError, InputError, TransientError, VerificationError} from '../../../src/errors.js'
import {LayoutDirStore} from '../../../src/oci/index.js'
import {startPolicy} from '../../../src/start/index.js'
import type {StartOptions} from '../../../src/start/types.js'
import {expectCode} from '../../helpers/expect-error.js'
import {KEYS_DIR, privateKey, publish} from '../../helpers/policy-fixtures.js'
import {bundleOf, orgYaml, teamYaml, writeFile} from '../../helpers/start-fixtures.js'
import {TESTDATA} from '../../helpers/cli.js'
import {tmpdir} from '../../helpers/tmp.js'

const PUB = (n: string) => path.join(KEYS_DIR, `${n}.pub`)
const WEBAPP = fs.readFileSync(path.join(TESTDATA, 'bundles', 'projects', 'webapp', 'aibox', 'policy.yaml'), 'utf8')
const LEAKY = fs.readFileSync(path.join(TESTDATA, 'bundles', 'projects', 'leaky', 'aibox', 'policy.yaml'), 'utf8')
const T0 = Date.parse('2026-03-01T10:00:00Z')
const HOUR = 3_600_000

interface World {
  dir: string
  project: string
  cache: string
  audit: string
  clock: {t: number}
  org: LayoutDirStore
  team: LayoutDirStore
  start(extra?: Partial<StartOptions>): ReturnType<typeof startPolicy>
  events(): Array<Record<string, any>>
  stateText(): string
}

async function world(config: Record<string, string> = {}): Promise<World> {
  const dir = tmpdir('aibox-start-unit-')
  const org = await LayoutDirStore.open(path.join(dir, 'policies', 'org'), {create: true})
  const team = await LayoutDirStore.open(path.join(dir, 'policies', 'team'), {create: true})
  await publish(org, bundleOf(orgYaml('1.4.0')), [await privateKey('alice')], ['stable'])
  await publish(team, bundleOf(teamYaml('2.1.0')), [await privateKey('bob')], ['stable'])
  const project = path.join(dir, 'repo')
  writeFile(project, 'aibox/policy.yaml', WEBAPP)
  const lines = {
    org: 'oci:../policies/org:stable',
    team: 'oci:../policies/team:stable',
    project: 'aibox/policy.yaml',
    ...config,
  }
  writeFile(
    project,
    'aibox.yaml',
    `policy:\n${['org', 'team', 'project'].filter((t) => lines[t as keyof typeof lines] !== '').map((t) => `  ${t}: ${lines[t as keyof typeof lines]}`).join('\n')}\nkeys: [${PUB('alice')}, ${PUB('bob')}]\nmaxStaleness: 7d\n`,
  )
  const cache = path.join(dir, 'cache')
  const audit = path.join(dir, 'audit.jsonl')
  const clock = {t: T0}
  const env = {AIBOX_CACHE: cache, AIBOX_AUDIT_LOG: audit, HOME: dir, AIBOX_ACTOR: 'tester@unit'}
  return {
    dir,
    project,
    cache,
    audit,
    clock,
    org,
    team,
    start: (extra = {}) => startPolicy({...extra, cwd: project, env: {...env, ...extra.env}, now: () => new Date(clock.t)}),
    events: () => (fs.existsSync(audit) ? fs.readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : []),
    stateText: () => fs.readFileSync(path.join(cache, 'state.json'), 'utf8'),
  }
}

describe('startPolicy', function () {
  this.timeout(60_000)

  describe('when the cache is empty', () => {
    it('fetches and verifies every tier, composes the stack, writes the effective policy and logs policy.loaded', async () => {
      const w = await world()
      const r = await w.start()
      expect(r.result.source).to.equal('registry')
      expect(r.result.tiers.map((t) => [t.tier, t.name, t.version, t.source])).to.deep.equal([
        ['org', 'org-baseline', '1.4.0', 'registry'],
        ['team', 'team-alpha', '2.1.0', 'registry'],
        ['project', 'webapp', '0.3.0', 'file'],
      ])
      expect(r.result.version).to.equal('org-baseline@1.4.0 team-alpha@2.1.0 webapp@0.3.0')
      const file = fs.readFileSync(r.result.effective.file)
      expect(r.env).to.include({AIBOX_POLICY_FILE: r.result.effective.file, AIBOX_POLICY_DIGEST: r.result.effective.digest, AIBOX_POLICY_VERSION: r.result.version})
      expect(JSON.parse(file.toString()).kind).to.equal('EffectivePolicy')
      expect(r.lines[0]).to.match(/^policy org-baseline 1\.4\.0 \(sha256:[0-9a-f]{64}\) loaded from registry/)
      expect(r.lines[2]).to.equal(`policy webapp 0.3.0 (${bundleOf(WEBAPP).digest}) loaded from file aibox/policy.yaml`)
      const loaded = w.events().filter((e) => e.event === 'policy.loaded')
      expect(loaded).to.have.length(1)
      expect(loaded[0]).to.include({digest: r.result.effective.digest, source: 'registry', stalenessSeconds: 0, version: r.result.version})
      expect(loaded[0]!.tiers.map((t: any) => t.signers.length)).to.deep.equal([1, 1, 0])
      expect((await verifyChain(w.audit)).ok).to.equal(true)
    })

    it('refuses a configuration without trust: nothing unverified is ever loaded', async () => {
      const w = await world()
      writeFile(w.project, 'aibox.yaml', 'policy:\n  org: oci:../policies/org:stable\n')
      await expectCode(w.start(), InputError, 'NO_TRUST')
    })
  })

  describe('when the policy is unchanged', () => {
    it('uses the cache (source cache) and reads nothing but the freshness checks', async () => {
      const w = await world()
      await w.start()
      w.clock.t += HOUR
      const r = await w.start()
      expect(r.result.source).to.equal('cache')
      expect(r.result.requests).to.equal(2)
      expect(r.result.tiers.map((t) => t.source)).to.deep.equal(['cache', 'cache', 'file'])
      expect(r.result.stalenessSeconds).to.equal(0)
      expect(r.result.previous).to.equal(undefined)
      // The project file was not parsed again, yet it is named with its content digest (from the memo).
      expect(r.result.tiers[2]).to.include({name: 'webapp', version: '0.3.0', digest: bundleOf(WEBAPP).digest})
    })

    it('gives the same result with the --key of one trusted key set as with the configuration (trust change re-verifies offline)', async () => {
      const w = await world()
      await w.start()
      const r = await w.start({keys: [PUB('alice'), PUB('bob')]})
      expect(r.result.tiers[0]!.source).to.equal('cache')
      // Trusting alice alone: the cached team tier (signed by bob) no longer verifies.
      const err = await expectCode(w.start({keys: [PUB('alice')]}), VerificationError, 'SIGNATURE_INVALID')
      expect(err.exit).to.equal(EXIT.VERIFY)
    })
  })

  describe('when a new version is published', () => {
    it('propagates it on the next start and logs where it came from', async () => {
      const w = await world()
      const first = await w.start()
      await publish(w.org, bundleOf(orgYaml('1.5.0', [['requests_per_min: 60', 'requests_per_min: 40']])), [await privateKey('alice')], ['stable'])
      const r = await w.start()
      expect(r.result.tiers[0]).to.include({version: '1.5.0', source: 'registry'})
      expect(r.result.tiers[1]!.source).to.equal('cache')
      expect(r.result.previous).to.equal(first.result.effective.digest)
      expect(w.events().at(-1)).to.include({event: 'policy.loaded', from: first.result.effective.digest})
    })
  })

  describe('anti-rollback', () => {
    it('refuses an older version (exit 2), logs policy.refused and leaves the cache as it was', async () => {
      const w = await world()
      await publish(w.org, bundleOf(orgYaml('1.5.0', [['requests_per_min: 60', 'requests_per_min: 40']])), [await privateKey('alice')], ['stable'])
      await w.start()
      const before = w.stateText()
      await publish(w.org, bundleOf(orgYaml('1.4.0')), [await privateKey('alice')], ['stable'])
      const err = await expectCode(w.start(), VerificationError, 'POLICY_ROLLBACK')
      expect(err.message).to.contain('older than the cached 1.5.0')
      expect(w.stateText()).to.equal(before)
      expect(w.events().at(-1)).to.include({event: 'policy.refused', code: 'POLICY_ROLLBACK'})
    })

    it('accepts it with a signed approval carrying an incident reference, and logs policy.rollback', async () => {
      const w = await world()
      await publish(w.org, bundleOf(orgYaml('1.5.0', [['requests_per_min: 60', 'requests_per_min: 40']])), [await privateKey('alice')], ['stable'])
      await w.start()
      const old = await publish(w.org, bundleOf(orgYaml('1.4.0')), [await privateKey('alice')], ['stable'])
      await attachApproval(w.org, old.manifest, await privateKey('bob'), {role: 'security', note: '1.5.0 broke the gateway', incident: 'INC-7'})
      const r = await w.start()
      expect(r.result.tiers[0]).to.include({version: '1.4.0'})
      expect(r.result.tiers[0]!.rollback).to.include({from: '1.5.0', incident: 'INC-7'})
      const rb = w.events().find((e) => e.event === 'policy.rollback')
      expect(rb).to.include({from: '1.5.0', incident: 'INC-7', digest: old.manifest.digest})
      expect(r.lines[0]).to.contain('rollback from 1.5.0, incident INC-7')
    })
  })

  describe('tighten-only', () => {
    it("refuses a loosening project policy with the runbook's words (exit 2), writing nothing", async () => {
      const w = await world()
      writeFile(w.project, 'aibox/policy.yaml', LEAKY)
      const err = await expectCode(w.start(), VerificationError, 'POLICY_LOOSENED')
      expect(err.message).to.match(/^Project policy loosens (team|org) restriction '/m)
      expect(err.message).to.contain('Project policies can only add restrictions, not remove them.')
      expect(fs.existsSync(path.join(w.cache, 'effective'))).to.equal(false)
    })

    it('refuses a team policy that loosens the org baseline', async () => {
      const w = await world()
      const loose = fs.readFileSync(path.join(TESTDATA, 'bundles', 'loosen', 'teams', 'alpha', 'policy.yaml'), 'utf8').replace('version: 1.0.0', 'version: 2.2.0')
      await publish(w.team, bundleOf(loose), [await privateKey('bob')], ['stable'])
      const err = await expectCode(w.start(), VerificationError, 'POLICY_LOOSENED')
      expect(err.message).to.match(/^Team policy 'oci:\.\.\/policies\/team:stable' loosens org baseline rule 'network\.allow\[git-server\]\.hosts': adds "pastebin\.com"\.$/m)
      expect(err.message).to.contain('Team policies can only tighten the org baseline. Contact the security team to request org-level changes.')
    })
  })

  describe('when the source cannot be reached', () => {
    it('uses the verified cache with a warning giving its age', async () => {
      const w = await world()
      await w.start()
      fs.renameSync(path.join(w.dir, 'policies'), path.join(w.dir, 'gone'))
      w.clock.t += 26 * HOUR
      const warnings: string[] = []
      const r = await w.start({onWarning: (m) => warnings.push(m)})
      expect(r.result.source).to.equal('cache')
      expect(r.result.stalenessSeconds).to.equal(26 * 3600)
      expect(warnings.join('\n')).to.contain('cannot be reached').and.contain(': using the verified cache from 26h ago')
      expect(w.events().at(-1)).to.include({event: 'policy.loaded', stalenessSeconds: 26 * 3600})
    })

    it('refuses past maxStaleness (exit 4) with the sealed-mode banner', async () => {
      const w = await world()
      await w.start()
      fs.renameSync(path.join(w.dir, 'policies'), path.join(w.dir, 'gone'))
      w.clock.t += 8 * 24 * HOUR
      const err = await expectCode(w.start(), TransientError, 'CACHE_TOO_STALE')
      expect(err.exit).to.equal(EXIT.TRANSIENT)
      expect(String(err.details?.banner)).to.contain('SEALED MODE').and.contain('older than maxStaleness (7d)').and.contain('8d ago')
      // A longer maxStaleness on the command line accepts it.
      const r = await w.start({maxStaleness: '10d'})
      expect(r.result.stalenessSeconds).to.equal(8 * 24 * 3600)
    })

    it('has nothing to fall back to on an empty cache (exit 4)', async () => {
      const w = await world()
      fs.renameSync(path.join(w.dir, 'policies'), path.join(w.dir, 'gone'))
      await expectCode(w.start(), TransientError, 'NO_VERIFIED_CACHE')
    })

    it('--offline reads nothing and uses the cache', async () => {
      const w = await world()
      await w.start()
      const r = await w.start({offline: true})
      expect(r.result.requests).to.equal(0)
      expect(r.result.source).to.equal('cache')
    })
  })

  describe('a damaged cache', () => {
    it('is detected, not used, and fetched again', async () => {
      const w = await world()
      const first = await w.start()
      const state = JSON.parse(w.stateText())
      const entry = Object.values(state.entries).find((e: any) => e.tier === 'org') as any
      const blob = path.join(w.cache, 'oci', 'blobs', 'sha256', entry.blobs[0].digest.slice(7))
      fs.chmodSync(blob, 0o644)
      fs.writeFileSync(blob, fs.readFileSync(blob, 'utf8').replace('foundry.internal', 'foundry.evil'))
      const warnings: string[] = []
      const r = await w.start({onWarning: (m) => warnings.push(m)})
      expect(warnings.join('\n')).to.contain('is damaged')
      expect(r.result.tiers[0]!.source).to.equal('registry')
      expect(r.result.effective.digest).to.equal(first.result.effective.digest)
      expect(fs.readFileSync(blob, 'utf8')).to.not.contain('foundry.evil')
    })
  })

  describe('AIBOX_POLICY_LOCK=1 and overrides', () => {
    const weakerTeam = () => teamYaml('2.2.0', [['rate_limit: {requests_per_min: 30}', 'rate_limit: {requests_per_min: 60}']])

    it('refuses a weaker effective policy than the last loaded (exit 5) and logs policy.lock.refused', async () => {
      const w = await world()
      await w.start()
      await publish(w.team, bundleOf(weakerTeam()), [await privateKey('bob')], ['stable'])
      const err = await expectCode(w.start({env: {AIBOX_POLICY_LOCK: '1'}}), GovernanceError, 'POLICY_LOCKED')
      expect(err.exit).to.equal(EXIT.GOVERNANCE)
      expect(err.message).to.contain('weaker than the last loaded')
      expect(w.events().at(-1)).to.include({event: 'policy.lock.refused'})
      // Without the lock the same (signed, tightening) policy loads.
      const r = await w.start()
      expect(r.result.tiers[1]!.version).to.equal('2.2.0')
    })

    it('--override-lock needs a reason, then loads it, logs who/why and taints runs until a policy as strict as before loads', async () => {
      const w = await world()
      const strict = await w.start()
      await publish(w.team, bundleOf(weakerTeam()), [await privateKey('bob')], ['stable'])
      await expectCode(w.start({env: {AIBOX_POLICY_LOCK: '1'}, overrideLock: true}), InputError, 'REASON_REQUIRED')
      const r = await w.start({env: {AIBOX_POLICY_LOCK: '1'}, overrideLock: true, reason: 'SEC-9 migration'})
      expect(r.result.tainted).to.equal(true)
      expect(r.result.taint).to.include({override: 'lock', reason: 'SEC-9 migration', actor: 'tester@unit'})
      expect(r.env.AIBOX_POLICY_TAINT).to.equal('policy_override')
      expect(w.events().find((e) => e.event === 'policy.override')).to.include({override: 'lock', reason: 'SEC-9 migration', taint: 'policy_override', actor: 'tester@unit'})
      // Still tainted on the next (warm) start.
      expect((await w.start({env: {AIBOX_POLICY_LOCK: '1'}})).result.tainted).to.equal(true)
      // A team version as strict as before lifts it.
      await publish(w.team, bundleOf(teamYaml('2.3.0')), [await privateKey('bob')], ['stable'])
      const back = await w.start({env: {AIBOX_POLICY_LOCK: '1'}})
      expect(back.result.tainted).to.equal(false)
      expect(back.result.effective.digest).to.not.equal(strict.result.effective.digest)
      expect(w.events().at(-2)).to.include({event: 'policy.override.reverted'})
      expect(w.events().at(-1)).to.include({event: 'policy.loaded'}).and.not.have.property('tainted')
    })

    it('--override-verification falls back to the last verified policy, tainted, until the source verifies again', async () => {
      const w = await world()
      const good = await w.start()
      // A new org version signed by an untrusted key.
      await publish(w.org, bundleOf(orgYaml('1.6.0')), [await privateKey('mallory')], ['stable'])
      await expectCode(w.start(), VerificationError, 'SIGNATURE_INVALID')
      const r = await w.start({overrideVerification: true, reason: 'INC-12 key rotation'})
      expect(r.result.effective.digest).to.equal(good.result.effective.digest)
      expect(r.result.taint).to.include({override: 'verification', reason: 'INC-12 key rotation'})
      const kinds = w.events().slice(-3).map((e) => e.event)
      expect(kinds).to.deep.equal(['policy.refused', 'policy.override', 'policy.loaded'])
      expect(w.events().at(-1)).to.include({tainted: true})
      // Without the flag: refused again (never a silent fallback).
      await expectCode(w.start(), VerificationError, 'SIGNATURE_INVALID')
      // A properly signed version: loads, and the taint is lifted.
      await publish(w.org, bundleOf(orgYaml('1.6.1')), [await privateKey('alice')], ['stable'])
      const ok = await w.start()
      expect(ok.result.tainted).to.equal(false)
      expect(w.events().some((e) => e.event === 'policy.override.reverted')).to.equal(true)
    })

    it('--override-verification with nothing loaded before still refuses', async () => {
      const w = await world()
      await publish(w.org, bundleOf(orgYaml('1.6.0')), [await privateKey('mallory')], ['stable'])
      const err = await expectCode(w.start({overrideVerification: true, reason: 'try'}), VerificationError, 'SIGNATURE_INVALID')
      expect(err.suggestions?.join('\n')).to.contain('can only fall back to a policy this stack loaded before')
    })
  })

  describe('air-gapped mode', () => {
    it('never reads the source and loads the cached entries within maxStaleness', async () => {
      const w = await world()
      await w.start()
      fs.appendFileSync(path.join(w.project, 'aibox.yaml'), 'airgap: true\n')
      fs.renameSync(path.join(w.dir, 'policies'), path.join(w.dir, 'gone'))
      const warnings: string[] = []
      const r = await w.start({onWarning: (m) => warnings.push(m)})
      expect(r.result.requests).to.equal(0)
      expect(warnings.join('\n')).to.contain('air-gapped: using the verified cache')
    })
  })
})

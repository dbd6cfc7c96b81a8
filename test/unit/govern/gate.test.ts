import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {loadBundle} from '../../../src/bundle/index.js'
import {InputError} from '../../../src/errors.js'
import {assertGate, conventionalTestsFile, protectionFor, resolveAgainst, runGate} from '../../../src/govern/index.js'
import {loadTrustPolicy, parseTrustPolicy} from '../../../src/trust/index.js'
import {ROOT, TESTDATA} from '../../helpers/cli.js'
import {expectCode, expectCodeSync} from '../../helpers/expect-error.js'
import {ORG_BASELINE, TEAM_ALPHA, privateKey, publish} from '../../helpers/policy-fixtures.js'
import {tmpdir} from '../../helpers/tmp.js'
import {LayoutDirStore} from '../../../src/oci/index.js'

const TRUST = path.join(TESTDATA, 'govern', 'trust.yaml')
const LOOSE_TEAM = path.join(TESTDATA, 'bundles', 'loosen', 'teams', 'alpha', 'policy.yaml')
const TEAM_TESTS = path.join(TESTDATA, 'govern', 'team-alpha.tests.yaml')
const FAILING_TESTS = path.join(TESTDATA, 'bundles', 'tests', 'failing.tests.yaml')
const PROJECT = path.join(TESTDATA, 'bundles', 'projects', 'webapp', 'aibox', 'policy.yaml')

const above = (file: string) => ({bundle: loadBundle(file), against: {spec: file, tier: 'org' as const, digest: loadBundle(file).digest}})
const protectedTeam = {protected: true, by: 'tier team is protected by default'}

describe('govern/gate', () => {
  describe('the governance trust policy example', () => {
    it('loads, and README.md "Governance" shows it byte for byte', () => {
      const text = fs.readFileSync(TRUST, 'utf8')
      const p = loadTrustPolicy(TRUST)
      expect(p.scopes.map((s) => [s.name, s.protected, s.emergency !== undefined])).to.deep.equal([
        ['org-baseline', true, true],
        ['team-policies', undefined, false],
      ])
      expect(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')).to.contain(`\`\`\`yaml\n${text}\`\`\``)
    })
  })

  describe('#protectionFor', () => {
    it('protects org and team tiers by default, not project', () => {
      expect(protectionFor('org', {display: 'oci:x'})).to.deep.equal({protected: true, by: 'tier org is protected by default'})
      expect(protectionFor('team', {display: 'oci:x'}).protected).to.equal(true)
      expect(protectionFor('project', {display: 'oci:x'})).to.deep.equal({protected: false, by: 'tier project is not protected by default'})
    })
    it('follows the protected field of the scopes that apply, true winning', () => {
      const trust = loadTrustPolicy(TRUST)
      expect(protectionFor('org', {display: 'oci:x'}, trust).by).to.equal("trust scope 'org-baseline' sets protected: true")
      const keys = fs.readFileSync(TRUST, 'utf8').split('scopes:')[0]!.replace(/\.\.\/trust\/keys/g, path.join(TESTDATA, 'trust', 'keys'))
      const custom = parseTrustPolicy(
        `${keys}scopes:\n  - name: proj\n    match: {tiers: [project]}\n    protected: true\n    require: {signatures: {author: 1}}\n  - name: teams\n    match: {tiers: [team]}\n    protected: false\n    require: {signatures: {team-lead: 1}}\n  - name: teams-too\n    match: {repository: "policies/**"}\n    protected: true\n    require: {signatures: {author: 1}}\n`,
        'custom.yaml',
      )
      expect(protectionFor('project', {display: 'oci:x'}, custom)).to.deep.equal({protected: true, by: "trust scope 'proj' sets protected: true"})
      expect(protectionFor('team', {display: 'oci:x'}, custom)).to.deep.equal({protected: false, by: "trust scope 'teams' sets protected: false"})
      expect(protectionFor('team', {registry: 'r.example.com', repository: 'policies/teams/a'}, custom).protected).to.equal(true)
    })
  })

  describe('#runGate', () => {
    describe('when a team policy tightens the org baseline and passes its tests', () => {
      it('passes', () => {
        const r = runGate({bundle: loadBundle(TEAM_ALPHA), protection: protectedTeam, against: [above(ORG_BASELINE)], tests: [TEAM_TESTS]})
        expect(r.ok).to.equal(true)
        expect(r.tightenOnly.status).to.equal('passed')
        expect(r.tests).to.deep.include({status: 'passed', passed: 3, failed: 0})
        expect(r.problems).to.deep.equal([])
        expect(() => assertGate(r, 'x')).to.not.throw()
      })
    })
    describe('when the team policy loosens the org baseline', () => {
      it('fails naming each loosening, does not run the tests, and assertGate refuses with exit 5', () => {
        const r = runGate({bundle: loadBundle(LOOSE_TEAM), protection: protectedTeam, against: [above(ORG_BASELINE)], tests: [TEAM_TESTS]})
        expect(r.ok).to.equal(false)
        expect(r.tightenOnly.status).to.equal('failed')
        expect(r.tightenOnly.violations.map((v) => v.message).join()).to.contain('adds "pastebin.com"')
        expect(r.tests.status).to.equal('not-run')
        const e = expectCodeSync(() => assertGate(r, 'team-alpha 1.0.0 (tier team)'), 'SUBMIT_GATE_FAILED', /the submit gate refuses team-alpha 1\.0\.0 \(tier team\), protected because tier team is protected by default:\n {2}tighten-only: 1 loosening/)
        expect(e.exit).to.equal(5)
        expect(e.suggestions!.join()).to.contain('--draft')
      })
    })
    describe('when the tests fail', () => {
      it('fails naming each failed test', () => {
        const r = runGate({bundle: loadBundle(TEAM_ALPHA), protection: protectedTeam, against: [above(ORG_BASELINE)], tests: [FAILING_TESTS]})
        expect(r.ok).to.equal(false)
        expect(r.tests).to.deep.include({status: 'failed', passed: 1, failed: 2})
        expect(r.problems[0]).to.equal('policy tests: 2 of 3 failed:')
        expect(r.problems[1]).to.contain('expects deletes to be allowed: verdict: expected allow, got deny')
      })
    })
    describe('when a team policy is pushed without the tier above', () => {
      it('fails closed: the tighten-only check cannot run', () => {
        const r = runGate({bundle: loadBundle(TEAM_ALPHA), protection: protectedTeam, against: [], tests: []})
        expect(r.ok).to.equal(false)
        expect(r.tightenOnly.status).to.equal('missing-base')
        expect(r.problems[0]).to.match(/must tighten the tiers above it, but none was given: pass --against/)
      })
    })
    describe('when the org baseline is pushed', () => {
      it('has nothing to tighten against and runs its tests alone', () => {
        const r = runGate({bundle: loadBundle(ORG_BASELINE), protection: {protected: true, by: 'x'}, against: [], tests: [FAILING_TESTS]})
        expect(r.tightenOnly.status).to.equal('not-applicable')
        expect(r.tests.status).to.equal('failed')
        expect(runGate({bundle: loadBundle(ORG_BASELINE), protection: {protected: true, by: 'x'}, against: [], tests: []}).tests.status).to.equal('none')
      })
    })
    describe('when the tier is not protected', () => {
      it('skips every check', () => {
        const r = runGate({bundle: loadBundle(PROJECT), protection: {protected: false, by: 'x'}, against: [], tests: [FAILING_TESTS]})
        expect(r).to.deep.include({ok: true, protected: false})
        expect(r.tightenOnly.status).to.equal('skipped')
        expect(r.tests.status).to.equal('skipped')
      })
    })
    describe('when a tier given as above is not above', () => {
      it('refuses with exit 1', () => {
        expectCodeSync(() => runGate({bundle: loadBundle(TEAM_ALPHA), protection: protectedTeam, against: [above(TEAM_ALPHA)], tests: []}), InputError, 'AGAINST_TIER', /is a team tier, not above the team tier being pushed/)
      })
    })
  })

  describe('#conventionalTestsFile', () => {
    it('finds <stem>.tests.yaml next to the bundle', () => {
      const dir = tmpdir()
      const bundle = path.join(dir, 'policy.yaml')
      fs.copyFileSync(TEAM_ALPHA, bundle)
      expect(conventionalTestsFile(bundle)).to.equal(undefined)
      fs.copyFileSync(TEAM_TESTS, path.join(dir, 'policy.tests.yaml'))
      expect(conventionalTestsFile(bundle)).to.equal(path.join(dir, 'policy.tests.yaml'))
    })
  })

  describe('#resolveAgainst', () => {
    it('loads a file as it is', async () => {
      const r = await resolveAgainst(ORG_BASELINE)
      expect(r.against).to.deep.equal({spec: ORG_BASELINE, tier: 'org', digest: loadBundle(ORG_BASELINE).digest})
    })
    it('verifies a reference with the trust policy and uses its signed content', async () => {
      const dir = path.join(tmpdir(), 'org')
      const store = await LayoutDirStore.open(dir, {create: true})
      await publish(store, ORG_BASELINE, [await privateKey('alice')], ['stable'])
      const trust = loadTrustPolicy(TRUST)
      // alice's signature alone lacks the org scope's approval: the gate never uses an unapproved base.
      await expectCode(resolveAgainst(`oci:${dir}:stable`, {trust}), 'APPROVALS_NOT_SATISFIED')
      const {attachApproval} = await import('../../../src/distribute/index.js')
      const desc = await store.resolve('stable')
      await attachApproval(store, desc, await privateKey('carol'), {role: 'approver', note: 'ok'})
      const r = await resolveAgainst(`oci:${dir}:stable`, {trust})
      expect(r.bundle.digest).to.equal(loadBundle(ORG_BASELINE).digest)
      expect(r.against).to.deep.include({tier: 'org', reference: `oci:${dir}@${desc.digest}`})
    })
    it('refuses a reference without a trust policy (never read unverified)', async () => {
      await expectCode(resolveAgainst('oci:/nonexistent:stable'), InputError, 'AGAINST_NEEDS_TRUST', /needs --trust/)
    })
  })
})

import {expect} from 'chai'

import {canonicalJson} from '../../../src/bundle/canonical.js'
import {compareEffective, effectiveCallTiers, resolveEffective} from '../../../src/bundle/effective.js'
import {evaluateCall} from '../../../src/bundle/evaluate.js'
import {loadBundle, loadBundleText} from '../../../src/bundle/load.js'
import {profileNames, selectProfile} from '../../../src/bundle/profiles.js'
import {checkStack} from '../../../src/bundle/tighten.js'
import {InputError, ValidationError} from '../../../src/errors.js'
import {expectCodeSync} from '../../helpers/expect-error.js'
import {BUNDLES, fixture, inDir} from './helpers.js'

const org = () => loadBundle(fixture('profiles', 'org.yaml'))
const team = () => loadBundle(fixture('teams', 'alpha', 'policy.yaml'))

/** The problems of a profiles fixture, as `line:col pointer message` (run from testdata/bundles so paths print short). */
function problemsOf(name: string): string[] {
  const e = inDir(BUNDLES, () => expectCodeSync(() => loadBundle(`bad/profiles/${name}`), ValidationError, 'INVALID_BUNDLE')) as ValidationError
  return e.problems.map((p) => `${p.file}:${p.line}:${p.col} ${p.pointer} ${p.message}`)
}

describe('profiles', () => {
  describe('#loadBundle (profiles of the org bundle)', () => {
    it('reads the catalog weakest first, with its default', () => {
      const b = org()
      expect(profileNames(b)).to.deep.equal(['dev-fast', 'lab-default', 'audit-strict'])
      expect(b.defaultProfile).to.equal('lab-default')
      expect(b.profiles![2]!.rules.map((r) => r.id)).to.deep.equal(['deny-writes'])
    })

    it('puts the profiles into the signed content (the content digest changes with them)', () => {
      const b = org()
      const without = {...(b.document as Record<string, unknown>)}
      delete without.profiles
      delete without.defaultProfile
      expect(loadBundleText(canonicalJson(without), 'x.json').digest).to.not.equal(b.digest)
    })

    describe('when a profile loosens the org policy', () => {
      it('reports each loosening at the profile, with file:line and the org rule', () => {
        expect(problemsOf('loosening.yaml')).to.deep.equal([
          "bad/profiles/loosening.yaml:80:5 /profiles/1/policy profile 'lab-default' loosens org baseline rule 'resources.memory': raises memory from 8Gi to 16Gi",
          `bad/profiles/loosening.yaml:87:5 /profiles/2/policy profile 'audit-strict' loosens org baseline rule 'network.allow[git-server].hosts': adds "pastebin.com"`,
        ])
      })
    })

    describe('when a profile is weaker than the one listed before it', () => {
      it('refuses the order, naming both profiles and what the later one allows more', () => {
        expect(problemsOf('misordered.yaml')).to.deep.equal([
          "bad/profiles/misordered.yaml:85:5 /profiles/2/name profile 'audit-strict' is weaker than 'lab-default' listed before it: 'resources.cpu' raises cpu from 1 to 2 (list profiles weakest first)",
        ])
      })
    })

    describe('when names repeat or the default is unknown', () => {
      it('reports both', () => {
        expect(problemsOf('names.yaml')).to.deep.equal([
          'bad/profiles/names.yaml:74:17 /defaultProfile defaultProfile "prod" is not a profile of this bundle (profiles: dev-fast, lab-default)',
          'bad/profiles/names.yaml:85:11 /profiles/2/name duplicate profile name "lab-default" (first at profiles[1], line 78)',
        ])
      })
    })

    describe('when a team bundle defines profiles', () => {
      it('refuses: only the org tier may', () => {
        expect(problemsOf('team.yaml')).to.deep.equal([
          "bad/profiles/team.yaml:39:1 /profiles only the org tier may define profiles (this bundle is the team tier): profiles are the org admin's catalog",
        ])
      })
    })

    describe('when the schema is not met', () => {
      it('refuses a profile name that is no DNS label and an unknown key in a profile, located', () => {
        const text = `apiVersion: aibox.dev/v1\nkind: PolicyBundle\nmetadata: {name: o, version: 1.0.0, tier: org}\nprofiles:\n  - name: Dev_Fast\n  - name: ok\n    polcy: {}\n`
        const e = expectCodeSync(() => loadBundleText(text, 'o.yaml'), ValidationError, 'INVALID_BUNDLE') as ValidationError
        expect(e.problems.map((p) => `${p.line} ${p.pointer}`)).to.deep.equal(['5 /profiles/0/name', '7 /profiles/1/polcy'])
      })
    })
  })

  describe('#selectProfile', () => {
    it('selects the requested profile, else the default; the overlay follows the org bundle', () => {
      const s = selectProfile(org(), 'audit-strict')
      expect([s.profile, s.rank, s.stack.length, s.stack[1]!.profile]).to.deep.equal(['audit-strict', 2, 2, 'audit-strict'])
      expect(selectProfile(org(), undefined).profile).to.equal('lab-default')
    })

    it('refuses an unknown name listing the allowed ones (PROFILE_UNKNOWN, exit 1)', () => {
      expectCodeSync(() => selectProfile(org(), 'prod'), InputError, 'PROFILE_UNKNOWN', /"prod" is not a profile of the org policy org-profiles 1\.4\.0 \(allowed, weakest first: dev-fast, lab-default, audit-strict\)/)
    })

    it('without profiles in the org bundle: the org bundle alone, and any requested name is unknown', () => {
      const plain = loadBundle(fixture('org', 'baseline.yaml'))
      const s = selectProfile(plain, undefined)
      expect([s.profile, s.profiles, s.stack.length]).to.deep.equal([undefined, [], 1])
      expectCodeSync(() => selectProfile(plain, 'dev-fast'), InputError, 'PROFILE_UNKNOWN', /defines no profiles/)
    })
  })

  describe('effective stack with a profile (org ⊕ profile ⊕ team ⊕ project)', () => {
    it('records the profile in the effective stack and merges its overlay', () => {
      const eff = resolveEffective(selectProfile(org(), 'lab-default').stack).document
      expect(eff.stack.map((e) => e.profile ?? e.tier)).to.deep.equal(['org', 'lab-default'])
      expect(eff.policy.runtime?.engine).to.equal('kata')
      expect(eff.policy.resources?.cpu).to.equal('2')
    })

    it("decides the profile's rules as a tier of its own: its deny wins over an org allow", () => {
      const eff = resolveEffective(selectProfile(org(), 'audit-strict').stack).document
      expect(eff.rules.find((r) => r.id === 'deny-writes')).to.include({tier: 'org', profile: 'audit-strict'})
      expect(effectiveCallTiers(eff)).to.have.length(2)
      const d = evaluateCall(eff, {tool: 'write_file', args: {path: '/workspace/a'}})
      expect(d.verdict).to.equal('deny')
    })

    it('checks the team tier against org + profile: team alpha tightens lab-default but loosens audit-strict', () => {
      expect(checkStack([...selectProfile(org(), 'lab-default').stack, team()]).ok).to.equal(true)
      const r = checkStack([...selectProfile(org(), 'audit-strict').stack, team()])
      expect(r.violations.map((v) => v.detail)).to.deep.equal(['adds "npm.mirror.internal"'])
    })

    it('orders the effective policies: each profile is at least as strict as the one before', () => {
      const effs = profileNames(org()).map((n) => resolveEffective(selectProfile(org(), n).stack).document)
      expect(compareEffective(effs[0]!, effs[1]!).weaker).to.equal(false)
      expect(compareEffective(effs[1]!, effs[2]!).weaker).to.equal(false)
      expect(compareEffective(effs[2]!, effs[0]!).weaker).to.equal(true)
    })
  })
})

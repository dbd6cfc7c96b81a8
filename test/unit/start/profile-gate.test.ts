import {expect} from 'chai'

import type {ProfileChange, ProfileState} from '../../../src/cache/state.js'
import {parseState} from '../../../src/cache/state.js'
import {GovernanceError} from '../../../src/errors.js'
import {applyProfile, decideProfile} from '../../../src/start/profile-gate.js'

const PROFILES = ['dev-fast', 'lab-default', 'audit-strict']
const EFF = `sha256:${'e'.repeat(64)}`
const NOW = new Date('2026-01-02T03:04:05Z')
const opts = (lockOn = false) => ({lockOn, effective: EFF, actor: 'dev@ws', now: NOW})

function state(last: string | undefined, extra: Partial<ProfileState> = {}): ProfileState {
  return {refs: {org: 'oci:/x:stable'}, ...(last ? {profile: {name: last, rank: PROFILES.indexOf(last), loadedAt: '2026-01-01T00:00:00Z'}} : {}), ...extra}
}

function change(from: string | null, to: string, weaker: boolean): ProfileChange {
  return {from, to, ticket: 'CHG-1', reason: 'perf', actor: 'dev@ws', at: '2026-01-02T00:00:00Z', weaker, approvers: weaker ? ['carol'] : [], approvals: []}
}

describe('profile-gate', () => {
  describe('#decideProfile', () => {
    describe('when the org defines no profiles', () => {
      it('has nothing to decide', () => {
        expect(decideProfile(state('audit-strict'), {profiles: []}, opts()).kind).to.equal('same')
      })
    })

    describe('when nothing was loaded before', () => {
      it('loads any profile (nothing to compare with) and consumes a change recorded for it', () => {
        const d = decideProfile(state(undefined, {change: change(null, 'dev-fast', false)}), {profile: 'dev-fast', profiles: PROFILES}, opts())
        expect(d).to.deep.include({kind: 'change', to: 'dev-fast', rank: 0, weaker: false})
        expect((d as {change?: ProfileChange}).change?.ticket).to.equal('CHG-1')
      })
    })

    describe('when the profile is the same or stricter', () => {
      it('is the same for the same profile, and a free change for a stricter one (also under the lock)', () => {
        expect(decideProfile(state('lab-default'), {profile: 'lab-default', profiles: PROFILES}, opts(true)).kind).to.equal('same')
        expect(decideProfile(state('lab-default'), {profile: 'audit-strict', profiles: PROFILES}, opts(true))).to.deep.include({kind: 'change', from: 'lab-default', to: 'audit-strict', weaker: false})
      })
      it('lifts a profile taint once a profile at least as strict as its baseline is loaded, not before', () => {
        const taint = {taint: 'policy_override' as const, override: 'profile' as const, reason: 'CHG-1: perf', actor: 'dev@ws', since: '2026-01-02T00:00:00Z', effective: EFF, baselineProfile: 'audit-strict'}
        const partial = decideProfile(state('dev-fast', {taint}), {profile: 'lab-default', profiles: PROFILES}, opts())
        expect(partial).to.not.have.property('reverted')
        const full = decideProfile(state('dev-fast', {taint}), {profile: 'audit-strict', profiles: PROFILES}, opts())
        expect(full).to.have.property('reverted', taint)
        const s = state('dev-fast', {taint})
        applyProfile(s, full as Extract<typeof full, {kind: 'change'}>, NOW)
        expect(s.taint).to.equal(undefined)
        expect(s.profile).to.deep.equal({name: 'audit-strict', rank: 2, loadedAt: NOW.toISOString()})
      })
    })

    describe('when the profile is weaker', () => {
      it('refuses it outright under AIBOX_POLICY_LOCK=1 (PROFILE_LOCKED), even with an approved change', () => {
        const d = decideProfile(state('audit-strict', {change: change('audit-strict', 'dev-fast', true)}), {profile: 'dev-fast', profiles: PROFILES}, opts(true))
        expect(d.kind).to.equal('refuse')
        const e = (d as {error: GovernanceError}).error
        expect([e.code, e.exit]).to.deep.equal(['PROFILE_LOCKED', 5])
      })
      it('refuses it without a recorded approved change from the last profile to it (PROFILE_CHANGE_UNAPPROVED)', () => {
        for (const s of [state('audit-strict'), state('audit-strict', {change: change('lab-default', 'dev-fast', true)}), state('audit-strict', {change: change('audit-strict', 'dev-fast', false)})]) {
          const d = decideProfile(s, {profile: 'dev-fast', profiles: PROFILES}, opts())
          expect((d as {error: GovernanceError}).error.code).to.equal('PROFILE_CHANGE_UNAPPROVED')
        }
      })
      it('loads it with the approved change and taints runs, keeping the first baseline across further weaker changes', () => {
        const s = state('audit-strict', {change: change('audit-strict', 'lab-default', true)})
        const d = decideProfile(s, {profile: 'lab-default', profiles: PROFILES}, opts())
        if (d.kind !== 'change') throw new Error(d.kind)
        expect(d.taint).to.include({override: 'profile', baselineProfile: 'audit-strict', reason: 'CHG-1: perf', effective: EFF})
        applyProfile(s, d, NOW)
        expect(s.change).to.equal(undefined)
        s.change = change('lab-default', 'dev-fast', true)
        const d2 = decideProfile(s, {profile: 'dev-fast', profiles: PROFILES}, opts())
        if (d2.kind !== 'change') throw new Error(d2.kind)
        expect(d2.taint?.baselineProfile).to.equal('audit-strict')
      })
    })
  })

  describe('when another override taints runs too', () => {
    const verification = {taint: 'policy_override' as const, override: 'verification' as const, reason: 'INC-1: broken signature', actor: 'ops@ws', since: '2026-01-02T00:00:00Z', effective: EFF}
    it('keeps the weaker profile\'s taint under it, and lifts it from there on revert', () => {
      const s = state('audit-strict', {taint: {...verification}, change: change('audit-strict', 'dev-fast', true)})
      const d = decideProfile(s, {profile: 'dev-fast', profiles: PROFILES}, opts())
      if (d.kind !== 'change') throw new Error(d.kind)
      applyProfile(s, d, NOW)
      expect(s.taint?.override).to.equal('verification')
      expect(s.taint?.previous).to.include({override: 'profile', baselineProfile: 'audit-strict'})
      const back = decideProfile(s, {profile: 'audit-strict', profiles: PROFILES}, opts())
      if (back.kind !== 'change') throw new Error(back.kind)
      expect(back.reverted).to.equal(s.taint?.previous)
      applyProfile(s, back, NOW)
      expect(s.taint?.override).to.equal('verification')
      expect(s.taint?.previous).to.equal(undefined)
    })
  })

  describe('cache state round trip', () => {
    it('keeps the last profile and a recorded change, and drops malformed ones', () => {
      const good = state('lab-default', {change: change('lab-default', 'dev-fast', true)})
      const text = JSON.stringify({version: 1, entries: {}, stacks: {}, profiles: {a: good, b: {refs: {}, profile: {name: 'x'}, change: {to: 'y'}}}})
      const parsed = parseState(text)
      expect(parsed.profiles.a).to.deep.equal(good)
      expect(parsed.profiles.b).to.deep.equal({refs: {}})
    })
    it('keeps a profile taint kept under another override only when well formed', () => {
      const under = {taint: 'policy_override', override: 'profile', reason: 'CHG-1: perf', actor: 'dev@ws', since: '2026-01-02T00:00:00Z', effective: EFF, baselineProfile: 'audit-strict'}
      const top = {taint: 'policy_override', override: 'verification', reason: 'INC-1', actor: 'ops@ws', since: '2026-01-02T00:00:00Z', effective: EFF}
      const parsed = parseState(JSON.stringify({version: 1, entries: {}, stacks: {}, profiles: {a: {refs: {}, taint: {...top, previous: under}}, b: {refs: {}, taint: {...top, previous: {override: 'x'}}}}}))
      expect(parsed.profiles.a!.taint!.previous).to.deep.equal(under)
      expect(parsed.profiles.b!.taint).to.deep.equal(top)
    })
  })
})

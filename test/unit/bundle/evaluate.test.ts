import {expect} from 'chai'

import {effectivePolicy} from '../../../src/bundle/effective.js'
import {evaluateCall, evaluateCommand} from '../../../src/bundle/evaluate.js'
import {loadBundle, loadBundleText} from '../../../src/bundle/load.js'
import {VerificationError} from '../../../src/errors.js'
import {fixture} from './helpers.js'
import {expectCodeSync} from '../../helpers/expect-error.js'

const org = () => loadBundle(fixture('org', 'baseline.yaml'))
const team = () => loadBundle(fixture('teams', 'alpha', 'policy.yaml'))
const helm = () => loadBundle(fixture('helm', 'policy.yaml'))

describe('evaluate', () => {
  describe('#evaluateCall', () => {
    describe('when given HELM\'s starter policy (seed 003)', () => {
      it('takes the first matching rule', () => {
        expect(evaluateCall(helm(), {tool: 'get_weather'})).to.deep.include({verdict: 'allow', rule: 'allow-reads', reason: 'allowed-by-rule'})
        expect(evaluateCall(helm(), {tool: 'write_file', args: {path: '/home/a/b'}})).to.deep.include({verdict: 'allow', rule: 'allow-user-writes'})
        expect(evaluateCall(helm(), {tool: 'write_file', args: {path: '/etc/x'}})).to.deep.include({verdict: 'deny', rule: 'deny-all', reason: 'default-deny'})
      })
      it('never matches a missing or non-string argument', () => {
        expect(evaluateCall(helm(), {tool: 'write_file'}).rule).to.equal('deny-all')
        expect(evaluateCall(helm(), {tool: 'write_file', args: {path: 7}}).rule).to.equal('deny-all')
        expect(evaluateCall(helm(), {tool: 'write_file', args: {path: ['/home/a']}}).rule).to.equal('deny-all')
      })
      it('normalises paths so ".." cannot escape the allowed prefix', () => {
        expect(evaluateCall(helm(), {tool: 'write_file', args: {path: '/home/a/../../etc/shadow'}})).to.deep.include({verdict: 'deny', rule: 'deny-all'})
        expect(evaluateCall(helm(), {tool: 'write_file', args: {path: '/home/a/./b/../c'}})).to.deep.include({verdict: 'allow'})
      })
      it('matches tool names case-sensitively and as a whole', () => {
        expect(evaluateCall(helm(), {tool: 'GET_weather'}).rule).to.equal('deny-all')
        expect(evaluateCall(helm(), {tool: 'xget_weather'}).rule).to.equal('deny-all')
      })
    })

    describe('when given a stack', () => {
      it('lets a deny from any tier win and reports its tier and file', () => {
        const d = evaluateCall([org(), team()], {tool: 'get_file', args: {path: '/workspace/secrets/key'}})
        expect(d).to.deep.equal({verdict: 'deny', rule: 'deny-secrets', reason: 'secret-path-blocked', tier: 'team', file: fixture('teams', 'alpha', 'policy.yaml')})
      })
      it('lets an org deny win over everything', () => {
        expect(evaluateCall([org(), team()], {tool: 'get_file', args: {path: '/workspace/../etc/hosts'}})).to.deep.include({verdict: 'deny', rule: 'deny-system-files', tier: 'org'})
      })
      it('falls to the default when no tier matches', () => {
        expect(evaluateCall([org(), team()], {tool: 'launch'})).to.deep.include({verdict: 'deny', rule: null, reason: 'default-deny', tier: 'org'})
      })
      it('gives the same decisions from the effective policy', () => {
        const eff = effectivePolicy([org(), team()])
        for (const call of [{tool: 'get_file', args: {path: '/workspace/secrets/k'}}, {tool: 'get_file', args: {path: '/workspace/a'}}, {tool: 'nope'}]) {
          const a = evaluateCall([org(), team()], call)
          const b = evaluateCall(eff, call)
          expect([b.verdict, b.rule, b.reason, b.tier]).to.deep.equal([a.verdict, a.rule, a.reason, a.tier])
        }
      })
      it('refuses a loosening stack', () => {
        expectCodeSync(() => evaluateCall([org(), loadBundle(fixture('loosen', 'default-allow.yaml'))], {tool: 'x'}), VerificationError, 'POLICY_LOOSENED')
      })
      it('keeps argument names that shadow Object.prototype as plain data', () => {
        const b = loadBundleText('version: "1.0"\ndefaultVerdict: deny\nrules:\n  - {name: c, match: {toolName: t, args: {constructor: {equals: x}}}, verdict: allow}\n', 'p.yaml')
        expect(evaluateCall(b, {tool: 't'}).verdict).to.equal('deny')
        expect(evaluateCall(b, {tool: 't', args: {constructor: 'x'}}).verdict).to.equal('allow')
      })
    })
  })

  describe('#evaluateCommand', () => {
    it('takes the first matching tools rule of the effective list', () => {
      expect(evaluateCommand([org(), team()], ['git', 'push', 'origin', 'main'])).to.deep.include({verdict: 'allow', rule: 'git push', risk: 'review-required', tier: 'org', reason: 'allowed-review-required'})
      expect(evaluateCommand([org(), team()], ['git', 'push', '--force'])).to.deep.include({verdict: 'deny', rule: 'git push --force', reason: 'denied-by-rule'})
      expect(evaluateCommand([org(), team()], ['npm', 'publish'])).to.deep.include({verdict: 'deny', tier: 'team'})
      expect(evaluateCommand([org(), team()], ['curl', 'x'])).to.deep.include({verdict: 'allow', risk: 'blocked-by-default', tier: 'team'})
      expect(evaluateCommand([org(), team()], ['npm', 'ci'])).to.deep.include({verdict: 'allow', rule: 'npm *', risk: 'safe'})
    })
    it('denies a command no rule matches (fail closed)', () => {
      expect(evaluateCommand([org()], ['docker', 'run'])).to.deep.equal({verdict: 'deny', rule: null, reason: 'default-deny', tier: null, file: null})
      expect(evaluateCommand([helm()], ['git', 'status']).verdict).to.equal('deny')
    })
  })
})

import {expect} from 'chai'

import {loadBundle} from '../../../src/bundle/load.js'
import {loadPolicyTests, runPolicyTests} from '../../../src/bundle/testing.js'
import {ValidationError} from '../../../src/errors.js'
import {fixture} from './helpers.js'
import {expectCodeSync} from '../../helpers/expect-error.js'

describe('testing', () => {
  describe('#runPolicyTests', () => {
    it('passes HELM\'s starter policy tests', () => {
      const r = runPolicyTests(loadBundle(fixture('helm', 'policy.yaml')), loadPolicyTests(fixture('tests', 'helm-starter.tests.yaml')))
      expect(r.results.filter((x) => !x.ok)).to.deep.equal([])
      expect(r).to.include({ok: true, passed: 6, failed: 0})
    })
    it('passes the stack tests (tool calls and commands, tiers and risks)', () => {
      const stack = [loadBundle(fixture('org', 'baseline.yaml')), loadBundle(fixture('teams', 'alpha', 'policy.yaml')), loadBundle(fixture('projects', 'webapp', 'aibox', 'policy.yaml'))]
      const r = runPolicyTests(stack, loadPolicyTests(fixture('tests', 'stack.tests.yaml')))
      expect(r.results.filter((x) => !x.ok).map((x) => x.failures)).to.deep.equal([])
      expect(r.passed).to.equal(9)
    })
    it('reports each failing expectation', () => {
      const r = runPolicyTests(loadBundle(fixture('helm', 'policy.yaml')), loadPolicyTests(fixture('tests', 'failing.tests.yaml')))
      expect(r).to.include({ok: false, passed: 1, failed: 2})
      expect(r.results[0].failures).to.deep.equal(['verdict: expected allow, got deny'])
      expect(r.results[1].failures).to.deep.equal(['rule: expected "allow-list", got "allow-reads"'])
      expect(r.results[0].subject).to.equal('tool delete_file')
    })
    it('checks tier and risk expectations too', () => {
      const r = runPolicyTests(loadBundle(fixture('org', 'baseline.yaml')), [
        {name: 'risk', command: 'git push', expect: 'allow', risk: 'safe'},
        {name: 'tier', tool: 'get_x', expect: 'allow', tier: 'team'},
      ])
      expect(r.results.map((x) => x.failures)).to.deep.equal([['risk: expected safe, got review-required'], ['tier: expected team, got org']])
    })
  })

  describe('#loadPolicyTests', () => {
    it('reports every problem of an invalid tests file at once', () => {
      const e = expectCodeSync(() => loadPolicyTests(fixture('tests', 'invalid.tests.yaml')), ValidationError, 'INVALID_TESTS')
      expect(e.problems.map((p) => p.message)).to.deep.equal([
        'a test needs exactly one of tool (with args) or command',
        'a test needs exactly one of tool (with args) or command',
        'must be one of "allow", "deny" (got "maybe")',
        'duplicate test name "neither" (first at tests[1])',
      ])
    })
    it('refuses an unterminated quote in a command line', () => {
      const e = expectCodeSync(() => loadPolicyTests('t.yaml', 'tests:\n  - {name: q, command: "echo \\"x", expect: deny}\n'), ValidationError, 'INVALID_TESTS')
      expect(e.problems[0].message).to.equal('unterminated double quote')
    })
  })
})

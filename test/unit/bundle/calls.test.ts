import {expect} from 'chai'

import {type CallTier, decideCall, freshChar, genericCall, stackDefault, witnessCalls} from '../../../src/bundle/calls.js'
import type {CallRule} from '../../../src/bundle/model.js'

const rule = (id: string, toolName: string, verdict: 'allow' | 'deny', args?: CallRule['match']['args']): CallRule => ({id, match: args ? {toolName, args} : {toolName}, verdict, ...(verdict === 'deny' ? {reason: `${id}-reason`} : {})})
const tier = (t: 'org' | 'team', rules: CallRule[], defaultVerdict?: 'allow' | 'deny'): CallTier => ({origin: {tier: t, file: `${t}.yaml`}, rules, defaultVerdict})

describe('calls', () => {
  describe('#decideCall', () => {
    const org = tier('org', [rule('deny-etc', '*', 'deny', {path: {startsWith: '/etc/'}}), rule('reads', 'get_*', 'allow')], 'deny')
    const team = tier('team', [rule('no-secret', 'get_secret', 'deny'), rule('writes', 'write_*', 'allow')])
    it('lets each tier decide by first match and a deny from any tier win', () => {
      expect(decideCall([org, team], {tool: 'get_secret', args: {}})).to.deep.include({verdict: 'deny', reason: 'no-secret-reason'})
      expect(decideCall([org, team], {tool: 'get_file', args: {path: '/etc/x'}}).rule?.id).to.equal('deny-etc')
      expect(decideCall([org, team], {tool: 'get_file', args: {}}).rule?.id).to.equal('reads')
    })
    it('lets an allow decide when no tier denies (the default applies only when every tier abstains)', () => {
      // org abstains on write_x; team allows it; org's default of deny is not consulted
      expect(decideCall([org, team], {tool: 'write_x', args: {}})).to.deep.include({verdict: 'allow', reason: 'allowed-by-rule'})
    })
    it('falls to the strictest default, deny when none is set', () => {
      expect(stackDefault([tier('org', [], 'allow'), tier('team', [], 'deny')]).verdict).to.equal('deny')
      expect(stackDefault([tier('org', [], 'allow'), tier('team', [])]).verdict).to.equal('allow')
      expect(stackDefault([tier('org', [])]).verdict).to.equal('deny')
    })
  })

  describe('#genericCall / #witnessCalls', () => {
    it('builds the most generic call inside two rules', () => {
      const f = freshChar([])
      const c = genericCall([rule('a', 'get_*', 'allow'), rule('b', '*_file', 'deny', {path: {startsWith: '/home'}})], f)!
      expect(c.tool.startsWith('get_') && c.tool.endsWith('_file')).to.equal(true)
      expect(c.args.path).to.equal(`/home/${f}`)
    })
    it('knows when two rules cannot both match', () => {
      const f = freshChar([])
      expect(genericCall([rule('a', 'get_*', 'allow'), rule('b', 'list_*', 'deny')], f)).to.equal(undefined)
      expect(genericCall([rule('a', '*', 'allow', {mode: {equals: 'r'}}), rule('b', '*', 'deny', {mode: {equals: 'w'}})], f)).to.equal(undefined)
      expect(genericCall([rule('a', '*', 'allow', {p: {startsWith: '/home/'}}), rule('b', '*', 'deny', {p: {startsWith: '/etc/'}})], f)).to.equal(undefined)
    })
    it('gives one witness per overlapping rule', () => {
      const f = freshChar([])
      const w = witnessCalls(rule('t', 'get_*', 'allow'), [rule('x', 'get_secret', 'deny'), rule('y', 'list_*', 'deny')], f)
      expect(w.map((c) => c.tool)).to.deep.equal([`get_${f}`, 'get_secret'])
    })
    it('picks a fresh character no pattern uses', () => {
      expect(freshChar([rule('a', '\uE000*', 'allow')])).to.equal('\uE001')
    })
  })
})

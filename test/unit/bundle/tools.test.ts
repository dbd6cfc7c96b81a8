import {expect} from 'chai'

import {compareToolLists, decideTools, exploreArgv, type LayerToolRule, showArgv, ANY_TOKEN} from '../../../src/bundle/tools.js'

const from = {tier: 'org' as const, file: 'org.yaml'}
const R = (match: string[], allow: boolean, risk: LayerToolRule['risk'] = 'safe'): LayerToolRule => ({match, allow, risk, from})

describe('tools', () => {
  describe('#decideTools', () => {
    it('takes the first matching rule and denies when none matches', () => {
      const rules = [R(['git', 'push', '--force'], false), R(['git', 'push'], true, 'review-required'), R(['git'], true)]
      expect(decideTools(rules, ['git', 'push', '--force']).allow).to.equal(false)
      expect(decideTools(rules, ['git', 'push']).risk).to.equal('review-required')
      expect(decideTools(rules, ['git', 'status']).risk).to.equal('safe')
      expect(decideTools(rules, ['ls'])).to.deep.equal({allow: false, risk: 'blocked-by-default'})
    })
  })

  describe('#exploreArgv', () => {
    it('visits one command line per class, including tokens no rule names', () => {
      const seen: string[] = []
      exploreArgv([[R(['npm', '*'], true), R(['npm', 'install'], true)]], (a) => seen.push(showArgv(a)))
      expect(seen).to.deep.equal(['npm', 'npm install', 'npm …', '…'])
    })
  })

  describe('#compareToolLists', () => {
    it('finds nothing between equal lists or when the child is stricter', () => {
      const p = [R(['git', 'push'], true, 'review-required'), R(['git'], true)]
      expect(compareToolLists(p, p)).to.deep.equal([])
      expect(compareToolLists(p, [R(['git', 'push'], false), ...p])).to.deep.equal([])
    })
    it('finds a more general allow placed before a deny', () => {
      const p = [R(['rm', '-rf'], false), R(['rm'], true, 'review-required')]
      const c = [R(['rm', '*'], true, 'review-required'), ...p]
      const l = compareToolLists(p, c)
      expect(l.map((x) => [showArgv(x.argv), x.parent.rule?.match.join(' '), x.child.rule?.match.join(' ')])).to.deep.equal([['rm -rf', 'rm -rf', 'rm *']])
    })
    it('finds a lower risk reached through a wildcard', () => {
      const p = [R(['kubectl', '*', 'delete'], true, 'blocked-by-default'), R(['kubectl'], true, 'review-required')]
      const c = [R(['kubectl', 'prod'], true, 'safe'), ...p]
      const l = compareToolLists(p, c)
      expect(l.map((x) => showArgv(x.argv))).to.deep.equal(['kubectl prod', 'kubectl prod delete'])
    })
    it('explores tokens under a wildcard with a fresh token', () => {
      const l = compareToolLists([], [R(['*'], true)])
      expect(l).to.have.length(1)
      expect(l[0].argv).to.deep.equal([ANY_TOKEN])
    })
  })
})

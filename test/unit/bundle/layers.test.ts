import {expect} from 'chai'

import {compareLayers, layerToPolicy, mergeLayers, resolveLayer} from '../../../src/bundle/layers.js'
import type {SandboxPolicy} from '../../../src/bundle/model.js'

const org = {tier: 'org' as const, file: 'org.yaml'}
const team = {tier: 'team' as const, file: 'team.yaml'}

const parentPolicy: SandboxPolicy = {
  version: 1,
  network: {allow: [{id: 'llm', hosts: ['llm.internal'], ports: [443], rate_limit: {requests_per_min: 60, tokens_per_min: 1000}}]},
  filesystem: {workspace_root: '/workspace', deny: ['/home']},
  tools: {rules: [{match: ['git', 'push', '--force'], allow: false}, {match: ['git', 'push'], allow: true, risk: 'review-required'}]},
  resources: {memory: '8Gi'},
  runtime: {engine: 'gvisor', rootless: true},
  credentials: {git_token_ttl: '4h'},
}

describe('layers', () => {
  describe('#resolveLayer', () => {
    const parent = resolveLayer(undefined, parentPolicy, org)
    it('inherits omitted entry fields per key from the entry with the same id', () => {
      const l = resolveLayer(parent, {version: 1, network: {allow: [{id: 'llm', rate_limit: {requests_per_min: 30}}]}}, team)
      expect(l.network).to.deep.equal([{id: 'llm', hosts: ['llm.internal'], ports: [443], rate_limit: {requests_per_min: 30, tokens_per_min: 1000}, from: team}])
    })
    it('adds new tools rules first and replaces a restated rule in place, inheriting allow', () => {
      const l = resolveLayer(parent, {version: 1, tools: {rules: [{match: ['curl'], allow: false}, {match: ['git', 'push'], risk: 'blocked-by-default'}]}}, team)
      expect(l.tools.map((r) => [r.match.join(' '), r.allow, r.risk, r.from.tier])).to.deep.equal([
        ['curl', false, 'safe', 'team'],
        ['git push --force', false, 'safe', 'org'],
        ['git push', true, 'blocked-by-default', 'team'],
      ])
    })
    it('keeps everything the child omits, with its origin', () => {
      const l = resolveLayer(parent, {version: 1}, team)
      expect(l.resources.memory).to.deep.equal({value: '8Gi', from: org})
      expect(l.flags.rootless).to.deep.equal({value: true, from: org})
      expect(compareLayers(parent, l, team)).to.deep.equal([])
    })
  })

  describe('#mergeLayers', () => {
    it('unions deny lists and keeps the stricter limit even for an unchecked child', () => {
      const parent = resolveLayer(undefined, parentPolicy, org)
      const child = resolveLayer(parent, {version: 1, filesystem: {deny: ['/srv']}, resources: {memory: '16Gi'}, runtime: {engine: 'runc', rootless: false}, credentials: {git_token_ttl: '1h'}}, team)
      const m = mergeLayers(parent, child)
      expect(m.deny.map((d) => d.value)).to.deep.equal(['/home', '/srv'])
      expect(m.resources.memory!.value).to.equal('8Gi')
      expect(m.engine!.value).to.equal('gvisor')
      expect(m.flags.rootless!.value).to.equal(true)
      expect(m.ttls.git_token_ttl!.value).to.equal('1h')
    })
  })

  describe('#layerToPolicy', () => {
    it('renders the AI-Box v1 layout with explicit lists and the fail-closed mode', () => {
      const p = layerToPolicy(resolveLayer(undefined, {version: 1, resources: {cpu: 2}}, org))
      expect(p).to.deep.equal({version: 1, network: {mode: 'deny-by-default', allow: []}, filesystem: {deny: []}, tools: {rules: []}, resources: {cpu: 2}})
    })
  })
})

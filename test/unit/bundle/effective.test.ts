import {expect} from 'chai'

import {Ajv2020} from 'ajv/dist/2020.js'
import fs from 'node:fs'
import path from 'node:path'

import {canonicalJson} from '../../../src/bundle/canonical.js'
import {compareEffective, effectiveDigest, effectivePolicy, type EffectivePolicyDocument, isWeakerPolicy, resolveEffective} from '../../../src/bundle/effective.js'
import {loadBundle, loadBundleText} from '../../../src/bundle/load.js'
import {InputError, VerificationError} from '../../../src/errors.js'
import {ROOT} from '../../helpers/cli.js'
import {fixture} from './helpers.js'
import {expectCodeSync} from '../../helpers/expect-error.js'

const stack = () => [loadBundle(fixture('org', 'baseline.yaml')), loadBundle(fixture('teams', 'alpha', 'policy.yaml')), loadBundle(fixture('projects', 'webapp', 'aibox', 'policy.yaml'))]

function schemaValidator() {
  const ajv = new Ajv2020({allErrors: true, strict: false})
  const dir = path.join(ROOT, 'schemas')
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.json'))) ajv.addSchema(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')))
  return ajv.getSchema('https://aibox.dev/schemas/effective-policy.schema.json')!
}

describe('effective', () => {
  describe('#effectivePolicy', () => {
    it('merges the stack: deny lists unioned, limits minimised, rules in tier order (org first)', () => {
      const e = effectivePolicy(stack())
      expect(e.kind).to.equal('EffectivePolicy')
      expect(e.stack.map((s) => [s.tier, s.name, s.version])).to.deep.equal([
        ['org', 'org-baseline', '1.4.0'],
        ['team', 'team-alpha', '2.1.0'],
        ['project', 'webapp', '0.3.0'],
      ])
      expect(e.policy.filesystem).to.deep.equal({deny: ['/home', '/root', '/.ssh', '/var/run/docker.sock', '/workspace/secrets'], workspace_root: '/workspace/webapp'})
      expect(e.policy.resources).to.deep.equal({cpu: '1.5', memory: '8Gi', disk: '20Gi'})
      expect(e.policy.runtime).to.deep.equal({engine: 'kata', rootless: true, ephemeral: false})
      expect(e.policy.credentials).to.deep.equal({git_token_ttl: '1h30m', llm_api_key_ttl: '2h', mirror_token_ttl: '8h', revoke_on_stop: true, no_persist_to_workspace: true})
      expect(e.policy.network!.allow).to.deep.equal([
        {id: 'llm-gateway', hosts: ['foundry.internal'], ports: [443], rate_limit: {requests_per_min: 30, tokens_per_min: 100000}},
        {id: 'git-server', hosts: ['git.internal'], ports: [443]},
        {id: 'npm-mirror', hosts: ['npm.mirror.internal'], ports: [443], rate_limit: {requests_per_min: 300}},
      ])
      expect(e.policy.tools!.rules!.slice(0, 3)).to.deep.equal([
        {match: ['npm', 'publish'], allow: false, risk: 'safe'},
        {match: ['git', 'push', '--force'], allow: false, risk: 'safe'},
        {match: ['git', 'push'], allow: true, risk: 'review-required'},
      ])
      expect(e.rules.map((r) => `${r.tier}:${r.id}`)).to.deep.equal([
        'org:deny-system-files',
        'org:deny-destructive',
        'org:allow-reads',
        'org:allow-list',
        'org:allow-workspace-writes',
        'team:deny-secrets',
        'project:deny-drop-statements',
      ])
      expect(e.defaultVerdict).to.equal('deny')
    })
    it('validates against schemas/effective-policy.schema.json', () => {
      const validate = schemaValidator()
      expect(validate(JSON.parse(canonicalJson(effectivePolicy(stack())))), JSON.stringify(validate.errors)).to.equal(true)
    })
    it('has a stable digest: same inputs, same bytes, whatever the rendering', () => {
      const a = resolveEffective(stack())
      const b = resolveEffective([loadBundle(fixture('org', 'baseline.json')), ...stack().slice(1)])
      expect(a.digest).to.equal(b.digest)
      expect(a.canonical).to.equal(b.canonical)
      expect(effectiveDigest(a.document)).to.equal(a.digest)
    })
    it('refuses a loosening stack with every violation (VerificationError, exit 2)', () => {
      const e = expectCodeSync(() => effectivePolicy([loadBundle(fixture('org', 'baseline.yaml')), loadBundle(fixture('loosen', 'all.yaml'))]), VerificationError, 'POLICY_LOOSENED')
      expect(e.exit).to.equal(2)
      expect((e.details!.violations as unknown[]).length).to.equal(11)
      expect(e.message.split('\n')).to.have.length(12)
    })
    it('makes the fail-closed defaults explicit for a single empty tier', () => {
      const e = effectivePolicy([loadBundleText('version: 1\n', 'bare.yaml')])
      expect(e.policy).to.deep.equal({version: 1, network: {mode: 'deny-by-default', allow: []}, filesystem: {deny: []}, tools: {rules: []}})
      expect(e.rules).to.deep.equal([])
      expect(e.defaultVerdict).to.equal('deny')
    })
  })

  describe('#compareEffective / #isWeakerPolicy', () => {
    const base = () => effectivePolicy(stack())
    it('says an identical policy is not weaker', () => {
      expect(isWeakerPolicy(base(), base())).to.equal(false)
    })
    it('says a tighter policy is not weaker, and lists what got tighter', () => {
      const tighter = effectivePolicy([...stack().slice(0, 2), loadBundle(fixture('projects', 'webapp', 'aibox', 'policy.yaml'))])
      const looser = effectivePolicy(stack().slice(0, 2))
      const c = compareEffective(looser, tighter)
      expect(c.weaker).to.equal(false)
      expect(c.tighter.map((v) => v.inverse)).to.include('lowers cpu from 2000m to 1.5')
    })
    it('says a policy without the team tier is weaker than one with it, and why', () => {
      const withTeam = base()
      const orgOnly = effectivePolicy([loadBundle(fixture('org', 'baseline.yaml'))])
      const c = compareEffective(withTeam, orgOnly)
      expect(c.weaker).to.equal(true)
      const details = c.looser.map((v) => `${v.field}: ${v.detail}`)
      expect(details).to.include('resources.cpu: raises cpu from 1.5 to 4')
      expect(details).to.include('filesystem.deny: removes "/workspace/secrets"')
      expect(details).to.include('runtime.engine: weakens engine from kata to gvisor (runc < gvisor < kata)')
      expect(details.some((d) => d.startsWith('rules[allow-reads]: allows get_…(path="/workspace/secrets/…")'))).to.equal(true)
      expect(details.some((d) => d.includes('"npm publish"'))).to.equal(true)
    })
    it('treats a limit that disappears as weaker', () => {
      const prev = base()
      const next = JSON.parse(JSON.stringify(prev)) as EffectivePolicyDocument
      delete next.policy.credentials!.git_token_ttl
      next.defaultVerdict = 'allow'
      const c = compareEffective(prev, next)
      expect(c.looser.map((v) => v.code)).to.include.members(['TTL_REMOVED', 'DEFAULT_ALLOW'])
    })
    it('refuses something that is not an effective policy', () => {
      expectCodeSync(() => compareEffective(base(), {kind: 'Nope'} as unknown as EffectivePolicyDocument), InputError, 'NOT_EFFECTIVE_POLICY')
    })
  })
})

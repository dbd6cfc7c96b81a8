import {expect} from 'chai'

import {loadBundle, loadBundleText} from '../../../src/bundle/load.js'
import type {LoadedBundle} from '../../../src/bundle/model.js'
import {analyzeStack, assignTiers, checkStack} from '../../../src/bundle/tighten.js'
import {InputError, ValidationError} from '../../../src/errors.js'
import {BUNDLES, fixture, inDir} from './helpers.js'
import {expectCodeSync} from '../../helpers/expect-error.js'

const org = () => loadBundle(fixture('org', 'baseline.yaml'))
const team = () => loadBundle(fixture('teams', 'alpha', 'policy.yaml'))

function loosen(name: string) {
  return inDir(`${BUNDLES}/loosen`, () => checkStack([loadBundle('../org/baseline.yaml'), loadBundle(name)]))
}

/** A team bundle text with the given YAML body (policy/rules sections). */
function teamText(body: string): LoadedBundle {
  return loadBundleText(`apiVersion: aibox.dev/v1\nkind: PolicyBundle\nmetadata: {name: t, version: 1.0.0, tier: team}\n${body}`, 'team.yaml')
}

describe('tighten', () => {
  describe('#checkStack', () => {
    describe('when every tier only tightens', () => {
      it('passes org → team alpha → webapp', () => {
        const r = checkStack([org(), team(), loadBundle(fixture('projects', 'webapp', 'aibox', 'policy.yaml'))])
        expect(r.violations).to.deep.equal([])
        expect(r.ok).to.equal(true)
      })
      it('compares by value and inherits omitted fields (tighten/by-value.yaml)', () => {
        expect(checkStack([org(), loadBundle(fixture('tighten', 'by-value.yaml'))]).violations).to.deep.equal([])
      })
      it('passes bare AI-Box v1 files with tiers by position', () => {
        expect(checkStack([loadBundle(fixture('bare', 'org-policy.yaml')), loadBundle(fixture('bare', 'team-policy.yaml'))]).ok).to.equal(true)
      })
      it('treats an omitted boolean as inherited, not as false', () => {
        expect(checkStack([org(), teamText('policy:\n  version: 1\n  runtime: {engine: kata}\n  credentials: {git_token_ttl: 1h}\n')]).ok).to.equal(true)
      })
      it('lets a child add deny rules and keep the default deny', () => {
        expect(checkStack([org(), teamText('rules:\n  - {id: no-http, match: {toolName: "http_*"}, verdict: deny, reason: blocked}\ndefaultVerdict: deny\n')]).ok).to.equal(true)
      })
      it('lets a child restate a parent rule with a higher risk without reordering the parent rules', () => {
        expect(checkStack([org(), teamText('policy:\n  version: 1\n  tools:\n    rules:\n      - {match: [git, push], risk: blocked-by-default}\n')]).ok).to.equal(true)
      })
      it('lets a child allow a call the parent allows (narrower arguments)', () => {
        expect(checkStack([org(), teamText('rules:\n  - {id: w, match: {toolName: write_file, args: {path: {startsWith: /workspace/src/}}}, verdict: allow}\n')]).ok).to.equal(true)
      })
    })

    describe('when a team policy loosens the org baseline (one fixture per row of the tighten-only table)', () => {
      const rows: Array<[string, string[], string?]> = [
        ['teams/alpha/policy.yaml', ['HOST_ADDED'], `team policy 'teams/alpha/policy.yaml' loosens org baseline rule 'network.allow[git-server].hosts': adds "pastebin.com"`],
        ['network-wildcard.yaml', ['HOST_ADDED', 'HOST_ADDED', 'HOST_ADDED'], `team policy 'network-wildcard.yaml' loosens org baseline rule 'network.allow[package-mirrors].hosts': adds "*.internal"`],
        ['network-new-entry.yaml', ['HOST_ADDED'], `team policy 'network-new-entry.yaml' loosens org baseline rule 'network.allow': adds "pastebin.com"`],
        ['network-port.yaml', ['PORT_ADDED'], `team policy 'network-port.yaml' loosens org baseline rule 'network.allow[llm-gateway].ports': adds port 8080`],
        ['network-rate.yaml', ['RATE_LIMIT_RAISED'], `team policy 'network-rate.yaml' loosens org baseline rule 'network.allow[llm-gateway].rate_limit.requests_per_min': raises requests_per_min from 60 to 120`],
        ['network-rate-removed.yaml', ['RATE_LIMIT_REMOVED', 'RATE_LIMIT_REMOVED'], `team policy 'network-rate-removed.yaml' loosens org baseline rule 'network.allow[llm-gateway].rate_limit.requests_per_min': removes the requests_per_min limit (60)`],
        ['filesystem-deny.yaml', ['DENY_PATH_REMOVED', 'DENY_PATH_REMOVED'], `team policy 'filesystem-deny.yaml' loosens org baseline rule 'filesystem.deny': removes "/home"`],
        ['workspace-root.yaml', ['WORKSPACE_MOVED'], `team policy 'workspace-root.yaml' loosens org baseline rule 'filesystem.workspace_root': moves workspace_root from /workspace to /home/dev (only a path below it is allowed)`],
        ['tools-flip.yaml', ['TOOL_FLIPPED'], `team policy 'tools-flip.yaml' loosens org baseline rule 'tools.rules[git push --force]': flips "git push --force" from deny to allow`],
        ['tools-risk.yaml', ['TOOL_RISK_LOWERED'], `team policy 'tools-risk.yaml' loosens org baseline rule 'tools.rules[git push]': lowers the risk of "git push" from review-required to safe`],
        ['tools-shadow.yaml', ['TOOL_SHADOWS_DENY'], `team policy 'tools-shadow.yaml' loosens org baseline rule 'tools.rules[git push --force]': adds an earlier, more general allow "git * --force" that shadows deny "git push --force" (e.g. "git push --force")`],
        ['tools-new-allow.yaml', ['TOOL_ALLOWED'], `team policy 'tools-new-allow.yaml' loosens org baseline rule 'tools.rules': allows "docker", which no parent rule allows (denied by default)`],
        ['resources.yaml', ['RESOURCE_RAISED', 'RESOURCE_RAISED'], `team policy 'resources.yaml' loosens org baseline rule 'resources.memory': raises memory from 8Gi to 16Gi`],
        ['runtime-engine.yaml', ['ENGINE_WEAKENED'], `team policy 'runtime-engine.yaml' loosens org baseline rule 'runtime.engine': weakens engine from gvisor to runc (runc < gvisor < kata)`],
        ['runtime-rootless.yaml', ['FLAG_TURNED_OFF'], `team policy 'runtime-rootless.yaml' loosens org baseline rule 'runtime.rootless': turns off rootless`],
        ['credentials-flags.yaml', ['FLAG_TURNED_OFF', 'FLAG_TURNED_OFF'], `team policy 'credentials-flags.yaml' loosens org baseline rule 'credentials.revoke_on_stop': turns off revoke_on_stop`],
        ['credentials-ttl.yaml', ['TTL_LENGTHENED'], `team policy 'credentials-ttl.yaml' loosens org baseline rule 'credentials.git_token_ttl': lengthens git_token_ttl from 4h to 4h1s`],
        ['rules-allow.yaml', ['CALL_ALLOWED'], `team policy 'rules-allow.yaml' loosens org baseline rule 'rules[deny-system-files]': allow rule "read-config" allows read_file(path="/etc/app/…"), which parent rule "deny-system-files" denies`],
        ['default-allow.yaml', ['DEFAULT_ALLOW'], `team policy 'default-allow.yaml' loosens org baseline rule 'defaultVerdict': sets defaultVerdict to allow under a parent default of deny`],
      ]
      for (const [file, codes, message] of rows) {
        it(`refuses ${file}: ${codes.join(', ')}`, () => {
          const r = loosen(file)
          expect(r.ok).to.equal(false)
          expect(r.violations.map((v) => v.code)).to.deep.equal(codes)
          if (message) expect(r.violations.map((v) => v.message)).to.include(message)
          for (const v of r.violations) {
            expect(v.tier).to.equal('team')
            expect(v.file).to.equal(file)
            expect(v.againstTier).to.equal('org')
            expect(v.againstFile).to.equal('../org/baseline.yaml')
          }
        })
      }
      it('refuses network.mode other than deny-by-default as invalid input', () => {
        expect(() => inDir(`${BUNDLES}/loosen`, () => loadBundle('network-mode.yaml'))).to.throw(ValidationError, /must be "deny-by-default"/)
      })
      it('reports every loosening of loosen/all.yaml, not just the first', () => {
        const r = loosen('all.yaml')
        expect(r.violations.map((v) => v.field)).to.deep.equal([
          'network.allow[git-server].ports',
          'network.allow[git-server].hosts',
          'filesystem.deny',
          'filesystem.deny',
          'filesystem.deny',
          'filesystem.workspace_root',
          'resources.memory',
          'runtime.engine',
          'runtime.rootless',
          'credentials.git_token_ttl',
          'defaultVerdict',
        ])
      })
      it('carries the child value, the parent value and the parent rule', () => {
        const v = loosen('network-port.yaml').violations[0]
        expect(v).to.deep.include({field: 'network.allow[llm-gateway].ports', against: 'network.allow[llm-gateway].ports', rule: 'llm-gateway', value: 8080, parentValue: [443]})
      })
    })

    describe('when a project loosens the merge of org and team', () => {
      it('names the tier the loosened rule comes from', () => {
        const r = inDir(BUNDLES, () => checkStack([loadBundle('org/baseline.yaml'), loadBundle('teams/alpha/policy.yaml'), loadBundle('projects/leaky/aibox/policy.yaml')]))
        expect(r.violations.map((v) => v.message)).to.include(`project policy 'projects/leaky/aibox/policy.yaml' loosens team policy rule 'network.allow[git-server].hosts': adds "pastebin.com"`)
        expect(r.violations.map((v) => v.code)).to.deep.equal(['HOST_ADDED', 'TOOL_RISK_LOWERED', 'TOOL_SHADOWS_DENY', 'RESOURCE_RAISED', 'FLAG_TURNED_OFF', 'CALL_ALLOWED', 'CALL_ALLOWED'])
      })
      it('compares with the team value, not only the org value', () => {
        // team alpha limits requests_per_min to 30 (org: 60); 45 loosens the team rule
        const proj = loadBundleText('apiVersion: aibox.dev/v1\nkind: PolicyBundle\nmetadata: {name: p, version: 1.0.0, tier: project}\npolicy:\n  version: 1\n  network:\n    allow: [{id: llm-gateway, rate_limit: {requests_per_min: 45}}]\n', 'p.yaml')
        const r = checkStack([org(), team(), proj])
        expect(r.violations.map((v) => [v.detail, v.againstTier])).to.deep.equal([['raises requests_per_min from 30 to 45', 'team']])
      })
    })

    describe('when the tool-call rules are subtle', () => {
      it('ignores a child allow shadowed by its own earlier deny', () => {
        const t = teamText('rules:\n  - {id: no-etc, match: {toolName: read_file, args: {path: {startsWith: /etc/}}}, verdict: deny, reason: x}\n  - {id: reads, match: {toolName: read_file, args: {path: {startsWith: /workspace/}}}, verdict: allow}\n')
        // read_file under /workspace: the org allows no read_file → refused; under /etc: caught by the child's own deny
        const r = checkStack([org(), t])
        expect(r.violations.map((v) => v.value)).to.deep.equal(['read_file(path="/workspace/…")'])
      })
      it('flags an allow that overlaps a parent deny on arguments', () => {
        const t = teamText('rules:\n  - {id: any-get, match: {toolName: "get_*", args: {path: {startsWith: /}}}, verdict: allow}\n')
        const r = checkStack([org(), t])
        expect(r.violations.map((v) => v.against)).to.deep.equal(['rules[deny-system-files]'])
      })
      it('accepts a default allow under a parent default allow', () => {
        const parent = loadBundleText('apiVersion: aibox.dev/v1\nkind: PolicyBundle\nmetadata: {name: o, version: 1.0.0, tier: org}\ndefaultVerdict: allow\n', 'o.yaml')
        expect(checkStack([parent, teamText('defaultVerdict: allow\n')]).ok).to.equal(true)
      })
    })

    describe('when the stack is not a stack', () => {
      it('refuses tiers out of order', () => {
        const e = expectCodeSync(() => checkStack([team(), org()]), InputError, 'TIER_ORDER')
        expect(e.message).to.match(/is a org tier but comes after a team tier/)
      })
      it('refuses a HELM PolicyBundle', () => {
        expectCodeSync(() => checkStack([loadBundle(fixture('helm', 'production-policy.yaml'))]), InputError, 'UNSUPPORTED_KIND')
      })
      it('refuses more than three tiers', () => {
        const bare = () => loadBundle(fixture('bare', 'team-policy.yaml'))
        expectCodeSync(() => checkStack([loadBundle(fixture('bare', 'org-policy.yaml')), bare(), bare(), bare()]), InputError, 'TOO_MANY_TIERS')
      })
      it('refuses a new network entry without hosts or ports to inherit', () => {
        const e = expectCodeSync(() => checkStack([org(), teamText('policy:\n  version: 1\n  network:\n    allow: [{id: new-one, hosts: [git.internal]}]\n')]), ValidationError, 'INCOMPLETE_POLICY')
        expect(e.problems[0].message).to.equal('network.allow[new-one] has no ports and no parent entry with id "new-one" to inherit them from')
      })
      it('refuses an empty stack', () => {
        expectCodeSync(() => checkStack([]), InputError, 'EMPTY_STACK')
      })
    })
  })

  describe('#assignTiers', () => {
    it('gives bare files the tier of their position', () => {
      const s = assignTiers([loadBundle(fixture('bare', 'org-policy.yaml')), loadBundle(fixture('bare', 'team-policy.yaml'))])
      expect(s.map((b) => b.tier)).to.deep.equal(['org', 'team'])
    })
    it('continues after an enveloped tier', () => {
      const s = assignTiers([team(), loadBundle(fixture('bare', 'team-policy.yaml'))])
      expect(s.map((b) => b.tier)).to.deep.equal(['team', 'project'])
    })
  })

  describe('#analyzeStack', () => {
    it('merges deny lists and minimises limits', () => {
      const a = analyzeStack([org(), team(), loadBundle(fixture('projects', 'webapp', 'aibox', 'policy.yaml'))])
      expect(a.layer.deny.map((d) => d.value)).to.deep.equal(['/home', '/root', '/.ssh', '/var/run/docker.sock', '/workspace/secrets'])
      expect(a.layer.resources.cpu!.value).to.equal('1.5')
      expect(a.layer.engine!.value).to.equal('kata')
      expect(a.layer.flags.rootless!.value).to.equal(true)
      expect(a.layer.ttls.git_token_ttl!.value).to.equal('1h30m')
    })
  })
})

import fs from 'node:fs'

import {expect} from 'chai'

import {detectKind, loadBundle, loadBundleText} from '../../../src/bundle/load.js'
import {InputError, NotFoundError, type Problem, ValidationError} from '../../../src/errors.js'
import {formatProblem} from '../../../src/errors.js'
import {fixture, inDir, BUNDLES} from './helpers.js'
import {expectCodeSync} from '../../helpers/expect-error.js'

function problemsOf(file: string): string[] {
  const e = expectCodeSync(() => inDir(BUNDLES, () => loadBundle(file)), ValidationError, 'INVALID_BUNDLE')
  return e.problems.map((p: Problem) => formatProblem(p))
}

describe('load', () => {
  describe('#loadBundle', () => {
    describe('when given the sample stack', () => {
      it('loads the org baseline with its metadata, policy and rules', () => {
        const b = loadBundle(fixture('org', 'baseline.yaml'))
        expect(b.kind).to.equal('aibox-bundle')
        expect(b).to.include({name: 'org-baseline', version: '1.4.0', tier: 'org', defaultVerdict: 'deny', format: 'yaml'})
        expect(b.rules.map((r) => r.id)).to.deep.equal(['deny-system-files', 'deny-destructive', 'allow-reads', 'allow-list', 'allow-workspace-writes'])
        expect(b.policy!.network!.allow!.map((e) => e.id)).to.deep.equal(['llm-gateway', 'git-server', 'package-mirrors'])
        expect(b.digest).to.match(/^sha256:[0-9a-f]{64}$/)
      })
      it('gives the YAML and the JSON rendering the same digest', () => {
        expect(loadBundle(fixture('org', 'baseline.json')).digest).to.equal(loadBundle(fixture('org', 'baseline.yaml')).digest)
      })
      it('loads team and project tiers', () => {
        expect(loadBundle(fixture('teams', 'alpha', 'policy.yaml')).tier).to.equal('team')
        expect(loadBundle(fixture('projects', 'webapp', 'aibox', 'policy.yaml')).tier).to.equal('project')
      })
    })

    describe('when given peer formats', () => {
      it('accepts a bare AI-Box v1 policy file, tier from the option', () => {
        const b = loadBundle(fixture('bare', 'org-policy.yaml'), {tier: 'org'})
        expect(b.kind).to.equal('aibox-policy')
        expect(b.tier).to.equal('org')
        expect(b.policy!.runtime!.engine).to.equal('gvisor')
        expect(b.rules).to.deep.equal([])
      })
      it('accepts a HELM PolicyBundle (seed 001)', () => {
        const b = loadBundle(fixture('helm', 'production-policy.yaml'))
        expect(b.kind).to.equal('helm-bundle')
        expect(b.helmRules!.map((r) => r.verdict)).to.deep.equal(['BLOCK', 'BLOCK', 'BLOCK'])
        expect(b).to.include({name: 'production-policy', version: '1.2.0'})
      })
      it('accepts a HELM policy file (seed 003), rule names as ids', () => {
        const b = loadBundle(fixture('helm', 'policy.yaml'))
        expect(b.kind).to.equal('helm-policy')
        expect(b.defaultVerdict).to.equal('deny')
        expect(b.rules.map((r) => r.id)).to.deep.equal(['allow-reads', 'allow-list', 'allow-user-writes', 'deny-all'])
      })
      it('refuses a kind the caller cannot use, saying why', () => {
        const e = expectCodeSync(() => loadBundle(fixture('helm', 'production-policy.yaml'), {accept: ['aibox-bundle', 'helm-policy']}), ValidationError, 'UNSUPPORTED_KIND')
        expect(e.message).to.match(/is a HELM PolicyBundle; this command takes a aibox PolicyBundle or HELM policy file/)
        expect(e.suggestions![0]).to.match(/CEL/)
      })
    })

    describe('when the input is bad', () => {
      it('reports malformed YAML with a position', () => {
        const e = expectCodeSync(() => inDir(BUNDLES, () => loadBundle('bad/malformed.yaml')), ValidationError, 'YAML_SYNTAX')
        expect(e.problems[0]).to.include({file: 'bad/malformed.yaml', line: 12, col: 1})
      })
      it('reports malformed JSON with a position', () => {
        const e = expectCodeSync(() => inDir(BUNDLES, () => loadBundle('bad/malformed.json')), ValidationError, 'JSON_SYNTAX')
        expect(formatProblem(e.problems[0])).to.equal("bad/malformed.json:7:3: unexpected character ']'")
      })
      it('reports every schema violation at once, each with file:line:col and pointer', () => {
        const p = problemsOf('bad/schema-violations.yaml')
        expect(p).to.include('bad/schema-violations.yaml:7:9 /metadata/tier: must be one of "org", "team", "project" (got "department")')
        expect(p).to.include('bad/schema-violations.yaml:13:17 /policy/network/allow/0/hosts/0: "*" is not valid: expected an exact lowercase host name or a "*.suffix" wildcard; a bare "*" is not allowed')
        expect(p).to.include('bad/schema-violations.yaml:14:17 /policy/network/allow/0/ports/0: must be ≥ 1 (got 0)')
        expect(p).to.include('bad/schema-violations.yaml:17:19 /policy/filesystem/deny/1: "/home/../etc" is not valid: expected an absolute path without \'.\' or \'..\' segments')
        expect(p).to.include('bad/schema-violations.yaml:18:23 /policy/resources/memory: "8GB" is not valid: expected a Kubernetes quantity such as 4, 500m, 8Gi or 40G')
        expect(p).to.include('bad/schema-violations.yaml:22:5 /rules/0: missing required key "reason"')
        expect(p).to.include('bad/schema-violations.yaml:23:47 /rules/0/match/args/path: must have exactly one of equals, startsWith')
        expect(p).to.include('bad/schema-violations.yaml:28:17 /defaultVerdict: must be one of "allow", "deny" (got "permit")')
        expect(p).to.have.length(16)
      })
      it('reports unknown fields at the key, with a "did you mean"', () => {
        expect(problemsOf('bad/unknown-fields.yaml')).to.deep.equal([
          'bad/unknown-fields.yaml:8:3 /metadata/owner: unknown key "owner"; allowed here: name, version, tier, tenant, description',
          'bad/unknown-fields.yaml:12:5 /policy/filesystem/wokspace_root: unknown key "wokspace_root" (did you mean "workspace_root"?)',
          'bad/unknown-fields.yaml:18:9 /policy/network/allow/0/ratelimit: unknown key "ratelimit" (did you mean "rate_limit"?)',
          'bad/unknown-fields.yaml:21:33 /rules/0/match/arguments: unknown key "arguments"; allowed here: toolName, args',
          'bad/unknown-fields.yaml:23:5 /rules/0/priority: unknown key "priority"; allowed here: id, description, match, verdict, reason',
        ])
      })
      it('reports duplicate rule ids and duplicate network entry ids', () => {
        expect(problemsOf('bad/duplicate-ids.yaml')).to.deep.equal([
          'bad/duplicate-ids.yaml:13:14 /policy/network/allow/1/id: duplicate network.allow id "git" (first at entry 0)',
          'bad/duplicate-ids.yaml:22:9 /rules/2/id: duplicate rule id "allow-reads" (first at rules[0], line 15)',
        ])
      })
      it('reports duplicate keys in YAML and JSON', () => {
        expect(problemsOf('bad/duplicate-keys.yaml')).to.deep.equal([
          'bad/duplicate-keys.yaml:8:3 /metadata/version: duplicate key "version" (first defined at line 6)',
          'bad/duplicate-keys.yaml:10:1 /defaultVerdict: duplicate key "defaultVerdict" (first defined at line 9)',
        ])
        expect(problemsOf('bad/duplicate-keys.json')).to.deep.equal(['bad/duplicate-keys.json:6:3 /defaultVerdict: duplicate key "defaultVerdict" (first defined at line 5)'])
      })
      it('reports non-JSON values once each (no follow-up type error)', () => {
        const p = problemsOf('bad/non-json-values.yaml')
        expect(p).to.have.length(6)
        expect(p.filter((x) => /must be/.test(x))).to.deep.equal([])
      })
      it('reports big integers and overflowing numbers in JSON', () => {
        expect(problemsOf('bad/big-integer.json').map((x) => x.replace(/:.*? \//, ' /'))).to.deep.equal([
          'bad/big-integer.json /policy/network/allow/0/rate_limit/requests_per_min: integer 9007199254740993 is outside ±(2^53-1) and would lose precision; quote it as a string',
          'bad/big-integer.json /policy/network/allow/0/rate_limit/tokens_per_min: number 1e400 is outside the IEEE 754 double range',
        ])
      })
      it('reports non-string keys', () => {
        expect(problemsOf('bad/non-string-keys.yaml')).to.have.length(3)
      })
      it('refuses __proto__ as an unknown key without polluting anything', () => {
        expect(problemsOf('bad/proto-keys.json')).to.deep.equal(['bad/proto-keys.json:3:2 /__proto__: unknown key "__proto__"; allowed here: apiVersion, kind, metadata, policy, rules, defaultVerdict, profiles, defaultProfile'])
        expect(({} as {isAdmin?: boolean}).isAdmin).to.equal(undefined)
      })
      it('refuses a document that is no known kind', () => {
        expect(problemsOf('bad/not-a-policy.yaml')[0]).to.match(/cannot tell what this document is/)
      })
      it('refuses an unknown apiVersion', () => {
        const e = expectCodeSync(() => loadBundleText('apiVersion: v2\nkind: PolicyBundle\n', 'x.yaml'), ValidationError, 'INVALID_BUNDLE')
        expect(e.problems[0].message).to.match(/unknown apiVersion "v2"/)
      })
      it('refuses a tier that contradicts the position', () => {
        const e = expectCodeSync(() => loadBundle(fixture('teams', 'alpha', 'policy.yaml'), {tier: 'org'}), ValidationError, 'INVALID_BUNDLE')
        expect(e.problems[0].message).to.equal('metadata.tier is "team" but the file is used as the org tier')
      })
      it('requires hosts and ports on org baseline entries', () => {
        const e = expectCodeSync(
          () => loadBundleText('apiVersion: aibox.dev/v1\nkind: PolicyBundle\nmetadata: {name: o, version: 1.0.0, tier: org}\npolicy:\n  version: 1\n  network:\n    allow: [{id: x, hosts: [a.b]}]\n', 'o.yaml'),
          ValidationError,
          'INVALID_BUNDLE',
        )
        expect(e.problems[0].message).to.equal('network.allow[x] has no ports (an org baseline entry cannot inherit them)')
      })
      it('flags unreachable tools rules and unnormalised path matchers', () => {
        const e = expectCodeSync(
          () =>
            loadBundleText(
              'apiVersion: aibox.dev/v1\nkind: PolicyBundle\nmetadata: {name: o, version: 1.0.0, tier: team}\npolicy:\n  version: 1\n  tools:\n    rules: [{match: [git], allow: true}, {match: [git], allow: false}]\nrules:\n  - {id: r, match: {toolName: x, args: {path: {startsWith: /a/../b/}}}, verdict: allow}\n',
              'o.yaml',
            ),
          ValidationError,
          'INVALID_BUNDLE',
        )
        expect(e.problems.map((p) => p.message)).to.deep.equal(['tools rule 1 repeats the match of rule 0 and can never apply (first match wins)', 'path "/a/../b/" is not normalised (write "/b/")'])
      })
      it('maps a missing file to NotFoundError', () => {
        expectCodeSync(() => loadBundle(fixture('nope.yaml')), NotFoundError, 'FILE_NOT_FOUND')
      })
      it('refuses a top-level list', () => {
        const e = expectCodeSync(() => loadBundleText('[1, 2]', 'x.json'), ValidationError, 'INVALID_BUNDLE')
        expect(e.problems[0].message).to.equal('expected a mapping at the top level (got a list)')
      })
    })
  })

  describe('#detectKind', () => {
    it('tells the four kinds apart', () => {
      expect(detectKind({apiVersion: 'aibox.dev/v1'})).to.equal('aibox-bundle')
      expect(detectKind({apiVersion: 'helm.mindburn.run/v1'})).to.equal('helm-bundle')
      expect(detectKind({version: 1})).to.equal('aibox-policy')
      expect(detectKind({version: '1', network: {}})).to.equal('aibox-policy')
      expect(detectKind({version: '1.0', rules: []})).to.equal('helm-policy')
      expect(detectKind({rules: []})).to.equal('helm-policy')
      expect(detectKind({name: 'x'})).to.have.property('message')
    })
  })

  describe('all fixtures', () => {
    it('every non-bad fixture loads, every bad one is refused', () => {
      const walk = (d: string): string[] => fs.readdirSync(d, {withFileTypes: true}).flatMap((e) => (e.isDirectory() ? walk(`${d}/${e.name}`) : [`${d}/${e.name}`]))
      const files = walk(BUNDLES).filter((f) => /\.(ya?ml|json)$/.test(f) && !f.includes('/tests/'))
      expect(files.length).to.be.greaterThan(30)
      for (const f of files) {
        const rel = f.slice(BUNDLES.length + 1)
        if (rel.startsWith('bad/') || rel === 'loosen/network-mode.yaml') expect(() => loadBundle(f), rel).to.throw(InputError)
        else expect(() => loadBundle(f), rel).to.not.throw()
      }
    })
  })
})

/**
 * `aibox bundle …` through the real binary: exit codes, messages, files written (or not), and
 * every `--json` output validated against its schema in schemas/output/.
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {expectOutputSchema} from '../helpers/schemas.js'
import {expect} from 'chai'

import {aibox, type CliResult, ROOT, TESTDATA, VECTORS} from '../helpers/cli.js'
import {listFiles, tmpdir} from '../helpers/tmp.js'

const B = path.join(TESTDATA, 'bundles')
const run = (args: string[], cwd = B) => aibox(args, {cwd})


/** Asserts that a --json output matches schemas/output/<name>.json. */
function expectSchema(name: string, r: CliResult): void {
  expect(r.json, `stdout is not JSON: ${r.stdout}\n${r.stderr}`).to.not.equal(undefined)
  expectOutputSchema(name, r.json)
}

function sha256(data: string | Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

describe('aibox bundle (e2e)', function () {
  this.timeout(120_000)

  describe('init', () => {
    it('scaffolds a valid bundle that lint accepts, as --json', async () => {
      const dir = tmpdir()
      const r = await run(['bundle', 'init', 'org.yaml', '--name', 'acme-baseline', '--json'], dir)
      expect(r.code).to.equal(0)
      expectSchema('bundle-init', r)
      expect(r.json).to.include({file: 'org.yaml', name: 'acme-baseline', tier: 'org', format: 'yaml'})
      const lint = await run(['bundle', 'lint', 'org.yaml'], dir)
      expect(lint.code, lint.stderr).to.equal(0)
      const hash = await run(['bundle', 'hash', 'org.yaml', '--json'], dir)
      expect(hash.json.digest).to.equal(r.json.digest)
    })
    it('scaffolds team and project bundles that pass check under the org scaffold', async () => {
      const dir = tmpdir()
      for (const [f, tier] of [['org.yaml', 'org'], ['team.json', 'team'], ['project.yaml', 'project']]) expect((await run(['bundle', 'init', f, '--tier', tier], dir)).code).to.equal(0)
      const r = await run(['bundle', 'check', '--base', 'org.yaml', '--base', 'team.json', 'project.yaml'], dir)
      expect(r.code, r.stderr).to.equal(0)
    })
    it('never overwrites without --force (exit 1, file unchanged)', async () => {
      const dir = tmpdir()
      fs.writeFileSync(path.join(dir, 'policy.yaml'), 'mine\n')
      const r = await run(['bundle', 'init', 'policy.yaml'], dir)
      expect(r.code).to.equal(1)
      expect(r.stderr).to.contain('policy.yaml already exists')
      expect(r.stderr).to.contain('pass --force to replace it')
      expect(fs.readFileSync(path.join(dir, 'policy.yaml'), 'utf8')).to.equal('mine\n')
      expect(listFiles(dir)).to.deep.equal(['policy.yaml'])
      expect((await run(['bundle', 'init', 'policy.yaml', '--force'], dir)).code).to.equal(0)
      expect(fs.readFileSync(path.join(dir, 'policy.yaml'), 'utf8')).to.contain('kind: PolicyBundle')
    })
    it('refuses an invalid name without writing anything', async () => {
      const dir = tmpdir()
      const r = await run(['bundle', 'init', 'x.yaml', '--name', 'Bad_Name', '--json'], dir)
      expect(r.code).to.equal(1)
      expectSchema('error', r)
      expect(r.json.error.message).to.contain('/metadata/name: "Bad_Name" is not valid')
      expect(listFiles(dir)).to.deep.equal([])
    })
    it('refuses an unknown tier', async () => {
      const r = await run(['bundle', 'init', 'x.yaml', '--tier', 'division'], tmpdir())
      expect(r.code).to.equal(1)
      expect(r.stderr).to.match(/Expected --tier=division to be one of: org, team, project/)
    })
  })

  describe('lint', () => {
    it('accepts the sample stack and the peer formats', async () => {
      const r = await run(['bundle', 'lint', 'org/baseline.yaml', 'org/baseline.json', 'teams/alpha/policy.yaml', 'bare/org-policy.yaml', 'helm/production-policy.yaml', 'helm/policy.yaml', '--json'])
      expect(r.code, r.stderr).to.equal(0)
      expectSchema('bundle-lint', r)
      expect(r.json.files.map((f: {kind: string}) => f.kind)).to.deep.equal(['aibox-bundle', 'aibox-bundle', 'aibox-bundle', 'aibox-policy', 'helm-bundle', 'helm-policy'])
    })
    it('lists every problem of every file with file:line:col and pointer (exit 1)', async () => {
      const r = await run(['bundle', 'lint', 'bad/schema-violations.yaml', 'bad/unknown-fields.yaml', 'org/baseline.yaml'])
      expect(r.code).to.equal(1)
      expect(r.stderr).to.contain('21 problems in 2 of 3 files')
      expect(r.stderr).to.contain('bad/schema-violations.yaml:7:9 /metadata/tier: must be one of "org", "team", "project" (got "department")')
      expect(r.stderr).to.contain('bad/unknown-fields.yaml:12:5 /policy/filesystem/wokspace_root: unknown key "wokspace_root" (did you mean "workspace_root"?)')
      expect(r.stderr).to.contain('Code: LINT_FAILED')
      expect(r.stdout).to.contain('ok  org/baseline.yaml')
    })
    it('prints the full result with --json and still exits 1', async () => {
      const r = await run(['bundle', 'lint', 'bad/duplicate-ids.yaml', '--json'])
      expect(r.code).to.equal(1)
      expectSchema('bundle-lint', r)
      expect(r.json.ok).to.equal(false)
      expect(r.json.problems.map((p: {line: number; message: string}) => `${p.line} ${p.message}`)).to.deep.equal([
        '13 duplicate network.allow id "git" (first at entry 0)',
        '22 duplicate rule id "allow-reads" (first at rules[0], line 15)',
      ])
    })
    const bad: Array<[string, string]> = [
      ['bad/malformed.yaml', 'bad/malformed.yaml:12:1: Flow sequence in block collection must be sufficiently indented and end with a ]'],
      ['bad/malformed.json', "bad/malformed.json:7:3: unexpected character ']'"],
      ['bad/duplicate-keys.yaml', 'bad/duplicate-keys.yaml:10:1 /defaultVerdict: duplicate key "defaultVerdict" (first defined at line 9)'],
      ['bad/duplicate-keys.json', 'bad/duplicate-keys.json:6:3 /defaultVerdict: duplicate key "defaultVerdict" (first defined at line 5)'],
      ['bad/non-json-values.yaml', 'bad/non-json-values.yaml:8:25 /metadata/description: YAML tag !!binary is not allowed'],
      ['bad/non-string-keys.yaml', 'bad/non-string-keys.yaml:8:3 /metadata: key 443 is a number, not a string; quote it ("443")'],
      ['bad/big-integer.json', 'integer 9007199254740993 is outside ±(2^53-1)'],
      ['bad/alias-bomb.yaml', 'bad/alias-bomb.yaml:7:8 /f/0/2/0/6/0/3: alias expansion exceeds 100000 nodes'],
      ['bad/proto-keys.json', 'bad/proto-keys.json:3:2 /__proto__: unknown key "__proto__"'],
      ['bad/multi-document.yaml', "expected a single YAML document, found 2 (remove the extra '---' sections)"],
      ['bad/invalid-utf8.yaml', 'bad/invalid-utf8.yaml:3:70: invalid UTF-8 byte 0xe9'],
      ['loosen/network-mode.yaml', 'loosen/network-mode.yaml:12:11 /policy/network/mode: must be "deny-by-default" (got "allow-all")'],
    ]
    for (const [file, message] of bad) {
      it(`refuses ${file} (exit 1)`, async () => {
        const r = await run(['bundle', 'lint', file])
        expect(r.code).to.equal(1)
        expect(r.stderr).to.contain(message)
      })
    }
    it('exits 3 for a missing file', async () => {
      const r = await run(['bundle', 'lint', 'nope.yaml', '--json'])
      expect(r.code).to.equal(3)
      expectSchema('bundle-lint', r)
      expect(r.json.problems).to.deep.equal([{file: 'nope.yaml', message: 'no such file'}])
      const plain = await run(['bundle', 'lint', 'nope.yaml'])
      expect(plain.code).to.equal(3)
      expect(plain.stderr).to.contain('nope.yaml: no such file')
      expect(plain.stderr).to.contain('Code: FILE_NOT_FOUND')
    })
  })

  describe('hash', () => {
    it('gives YAML and JSON renderings of the same data the same digest', async () => {
      const y = await run(['bundle', 'hash', 'org/baseline.yaml', '--json'])
      const j = await run(['bundle', 'hash', 'org/baseline.json', '--json'])
      expect(y.code).to.equal(0)
      expectSchema('bundle-hash', y)
      expect(y.json.digest).to.match(/^sha256:[0-9a-f]{64}$/)
      expect(j.json.digest).to.equal(y.json.digest)
      const plain = await run(['bundle', 'hash', 'org/baseline.yaml'])
      expect(plain.stdout).to.equal(`${y.json.digest}  org/baseline.yaml\n`)
    })
    it('--raw hashes every RFC 8785 vector to sha256 of the expected output bytes', async () => {
      const jcs = path.join(VECTORS, 'jcs')
      for (const f of fs.readdirSync(path.join(jcs, 'input'))) {
        const r = await run(['bundle', 'hash', '--raw', path.join(jcs, 'input', f), '--json'])
        expect(r.code, r.stderr).to.equal(0)
        expectSchema('bundle-hash', r)
        expect(r.json.digest, f).to.equal(sha256(fs.readFileSync(path.join(jcs, 'output', f))))
      }
    })
    it('--raw reads standard input, YAML or JSON alike', async () => {
      const a = await aibox(['bundle', 'hash', '--raw', '-'], {input: '# comment\nb: 2\na: [1, "x"]\n', cwd: B})
      const b = await aibox(['bundle', 'hash', '--raw', '-'], {input: '{"a":[1,"x"],"b":2}', cwd: B})
      expect(a.code).to.equal(0)
      expect(a.stdout.split(' ')[0]).to.equal(sha256('{"a":[1,"x"],"b":2}'))
      expect(b.stdout.split(' ')[0]).to.equal(a.stdout.split(' ')[0])
    })
    it('validates unless --raw', async () => {
      const r = await run(['bundle', 'hash', 'bad/not-a-policy.yaml'])
      expect(r.code).to.equal(1)
      expect(r.stderr).to.contain('cannot tell what this document is')
      expect((await run(['bundle', 'hash', '--raw', 'bad/not-a-policy.yaml'])).code).to.equal(0)
    })
    it('refuses to hash a document with duplicate keys, even with --raw', async () => {
      const r = await run(['bundle', 'hash', '--raw', 'bad/duplicate-keys.json', '--json'])
      expect(r.code).to.equal(1)
      expectSchema('error', r)
      expect(r.json.error.problems[0]).to.include({line: 6, col: 3, pointer: '/defaultVerdict'})
    })
  })

  describe('inspect', () => {
    it('shows name, version, tier, digest and rule counts', async () => {
      const r = await run(['bundle', 'inspect', 'org/baseline.yaml', '--json'])
      expect(r.code).to.equal(0)
      expectSchema('bundle-inspect', r)
      expect(r.json).to.deep.include({kind: 'aibox-bundle', name: 'org-baseline', version: '1.4.0', tier: 'org', defaultVerdict: 'deny'})
      expect(r.json.rules).to.deep.equal({total: 5, allow: 3, deny: 2, escalate: 0})
      expect(r.json.policy).to.deep.equal({sections: ['network', 'filesystem', 'tools', 'resources', 'runtime', 'credentials'], networkAllow: 3, denyPaths: 4, toolRules: 8})
      const plain = await run(['bundle', 'inspect', 'org/baseline.yaml'])
      expect(plain.stdout).to.match(/^rules {4}5 \(3 allow, 2 deny\)$/m)
    })
    it('refuses a malformed file (exit 1) and a missing one (exit 3)', async () => {
      const bad = await run(['bundle', 'inspect', 'bad/schema-violations.yaml', '--json'])
      expect(bad.code).to.equal(1)
      expectSchema('error', bad)
      expect(bad.json.error.code).to.equal('INVALID_BUNDLE')
      expect(bad.json.error.problems).to.have.length(16)
      const missing = await run(['bundle', 'inspect', 'nope.yaml'])
      expect(missing.code).to.equal(3)
      expect(missing.stderr).to.contain('nope.yaml: no such file')
    })
    it('inspects a HELM PolicyBundle', async () => {
      const r = await run(['bundle', 'inspect', 'helm/staging-policy.yaml', '--json'])
      expectSchema('bundle-inspect', r)
      expect(r.json).to.deep.include({kind: 'helm-bundle', name: 'staging-policy', version: '0.4.0', tier: null, policy: null})
      expect(r.json.rules).to.deep.equal({total: 3, allow: 0, deny: 2, escalate: 1})
    })
  })

  describe('compose', () => {
    it('merges HELM bundles by id, first wins, sorted by code point, with the conflict', async () => {
      const r = await run(['bundle', 'compose', 'helm/production-policy.yaml', 'helm/staging-policy.yaml', 'helm/unicode-ids.yaml', '--json'])
      expect(r.code).to.equal(0)
      expectSchema('bundle-compose', r)
      expect(r.json.rules.map((x: {id: string}) => x.id)).to.deep.equal(['a-plain', 'budget-gate', 'escalate-deploys', 'rate-limit', 'require-approval-for-write', 'ﬁ-ligature', '😀-smile'])
      expect(r.json.conflicts).to.deep.equal([{id: 'budget-gate', field: 'rule', kept: 'helm/production-policy.yaml', dropped: 'helm/staging-policy.yaml'}])
      const plain = await run(['bundle', 'compose', 'helm/production-policy.yaml', 'helm/staging-policy.yaml'])
      expect(plain.stderr).to.contain('conflict: rule "budget-gate" differs; kept helm/production-policy.yaml, dropped helm/staging-policy.yaml')
    })
    it('writes the composed bundle with -o, hashing to the printed digest', async () => {
      const dir = tmpdir()
      for (const out of ['composed.json', 'composed.yaml']) {
        const target = path.join(dir, out)
        const r = await run(['bundle', 'compose', 'compose/base-rules.yaml', 'compose/extra-rules.yaml', '-o', target, '--json'])
        expect(r.code, r.stderr).to.equal(0)
        expectSchema('bundle-compose', r)
        expect(r.json.output).to.equal(target)
        expect(r.json.warnings.length).to.be.greaterThan(0)
        const h = await run(['bundle', 'hash', target, '--json'])
        expect(h.json.digest).to.equal(r.json.digest)
      }
      expect(listFiles(dir)).to.deep.equal(['composed.json', 'composed.yaml'])
      const again = await run(['bundle', 'compose', 'compose/base-rules.yaml', '-o', path.join(dir, 'composed.json')])
      expect(again.code).to.equal(1)
      expect(again.stderr).to.contain('already exists')
    })
    it('refuses to mix aibox and HELM bundles (exit 1)', async () => {
      const r = await run(['bundle', 'compose', 'compose/base-rules.yaml', 'helm/production-policy.yaml'])
      expect(r.code).to.equal(1)
      expect(r.stderr).to.contain('helm/production-policy.yaml is a HELM PolicyBundle but compose/base-rules.yaml is a aibox PolicyBundle; compose bundles of one kind')
    })
    it('refuses a bundle with duplicate rule ids (exit 1)', async () => {
      const r = await run(['bundle', 'compose', 'bad/duplicate-ids.yaml', 'compose/base-rules.yaml'])
      expect(r.code).to.equal(1)
      expect(r.stderr).to.contain('duplicate rule id "allow-reads"')
    })
  })

  describe('check', () => {
    it('passes a tightening stack and prints the effective policy', async () => {
      const r = await run(['bundle', 'check', '--base', 'org/baseline.yaml', '--base', 'teams/alpha/policy.yaml', 'projects/webapp/aibox/policy.yaml', '--effective', '--json'])
      expect(r.code, r.stderr).to.equal(0)
      expectSchema('bundle-check', r)
      expect(r.json.ok).to.equal(true)
      expect(r.json.violations).to.deep.equal([])
      expect(r.json.stack.map((s: {tier: string}) => s.tier)).to.deep.equal(['org', 'team', 'project'])
      expect(r.json.effective.policy.resources).to.deep.equal({cpu: '1.5', memory: '8Gi', disk: '20Gi'})
      const plain = await run(['bundle', 'check', '--base', 'org/baseline.yaml', 'teams/alpha/policy.yaml'])
      expect(plain.code).to.equal(0)
      expect(plain.stdout).to.contain("ok: team policy 'teams/alpha/policy.yaml' only tightens 'org/baseline.yaml'")
    })
    it('writes the effective policy with -o as canonical JSON whose sha256 is the digest', async () => {
      const dir = tmpdir()
      const out = path.join(dir, 'effective.json')
      const r = await run(['bundle', 'check', '--base', 'org/baseline.yaml', 'teams/alpha/policy.yaml', '-o', out, '--json'])
      expect(r.code).to.equal(0)
      expectSchema('bundle-check', r)
      expect(sha256(fs.readFileSync(out))).to.equal(r.json.digest)
    })
    it('refuses the runbook loosening with its exact message (exit 2)', async () => {
      const r = await run(['bundle', 'check', '--base', '../org/baseline.yaml', 'teams/alpha/policy.yaml'], path.join(B, 'loosen'))
      expect(r.code).to.equal(2)
      expect(r.stderr).to.contain(`team policy 'teams/alpha/policy.yaml' loosens org baseline rule 'network.allow[git-server].hosts': adds "pastebin.com"`)
      expect(r.stderr).to.contain('Code: POLICY_LOOSENED')
    })
    it('reports every violation with tier, file, field, against, rule and value in --json, and writes nothing', async () => {
      const dir = tmpdir()
      const out = path.join(dir, 'effective.json')
      const r = await run(['bundle', 'check', '--base', 'org/baseline.yaml', 'loosen/all.yaml', '-o', out, '--json'])
      expect(r.code).to.equal(2)
      expectSchema('bundle-check', r)
      expect(r.json.ok).to.equal(false)
      expect(r.json.violations).to.have.length(11)
      expect(r.json.violations[1]).to.deep.include({tier: 'team', file: 'loosen/all.yaml', field: 'network.allow[git-server].hosts', against: 'network.allow[git-server].hosts', rule: 'git-server', value: 'pastebin.com', againstTier: 'org'})
      expect(r.json.effective).to.equal(undefined)
      expect(listFiles(dir)).to.deep.equal([])
    })
    it('refuses a loosening project policy against org + team', async () => {
      const r = await run(['bundle', 'check', '--base', 'org/baseline.yaml', '--base', 'teams/alpha/policy.yaml', 'projects/leaky/aibox/policy.yaml'])
      expect(r.code).to.equal(2)
      expect(r.stderr).to.contain('7 loosenings refused')
      expect(r.stderr).to.contain(`project policy 'projects/leaky/aibox/policy.yaml' loosens team policy rule 'network.allow[git-server].hosts': adds "pastebin.com"`)
    })
    it('takes tiers by position for bare AI-Box files', async () => {
      expect((await run(['bundle', 'check', '--base', 'bare/org-policy.yaml', 'bare/team-policy.yaml'])).code).to.equal(0)
      const r = await run(['bundle', 'check', '--base', 'bare/org-policy.yaml', 'bare/team-loosen.yaml'])
      expect(r.code).to.equal(2)
      expect(r.stderr).to.contain(`team policy 'bare/team-loosen.yaml' loosens org baseline rule 'network.allow[llm-gateway].ports': adds port 80`)
    })
    it('exits 1 (not 2) for a malformed child, and for tiers out of order', async () => {
      const bad = await run(['bundle', 'check', '--base', 'org/baseline.yaml', 'bad/malformed.yaml'])
      expect(bad.code).to.equal(1)
      expect(bad.stderr).to.contain('bad/malformed.yaml:12:1')
      const order = await run(['bundle', 'check', '--base', 'teams/alpha/policy.yaml', 'org/baseline.yaml'])
      expect(order.code).to.equal(1)
      expect(order.stderr).to.contain('org/baseline.yaml is a org tier but comes after a team tier')
    })
  })

  describe('eval', () => {
    it('evaluates a tool call against a stack', async () => {
      const r = await run(['bundle', 'eval', 'org/baseline.yaml', 'teams/alpha/policy.yaml', '--tool', 'get_file', '--args', '{"path": "/workspace/secrets/token"}', '--json'])
      expect(r.code).to.equal(0)
      expectSchema('bundle-eval', r)
      expect(r.json).to.deep.include({verdict: 'deny', rule: 'deny-secrets', reason: 'secret-path-blocked', tier: 'team'})
      const plain = await run(['bundle', 'eval', 'org/baseline.yaml', '--tool', 'write_file', '--args', '{"path": "/workspace/../etc/passwd"}'])
      expect(plain.stdout).to.equal('DENY by rule "deny-system-files" (org, org/baseline.yaml): system-path-blocked\n')
    })
    it('evaluates a command line against the effective tools rules', async () => {
      const r = await run(['bundle', 'eval', 'org/baseline.yaml', 'teams/alpha/policy.yaml', '--command', 'git push origin main', '--json'])
      expectSchema('bundle-eval', r)
      expect(r.json).to.deep.include({verdict: 'allow', rule: 'git push', risk: 'review-required', tier: 'org'})
      expect(r.json.subject).to.deep.equal({command: ['git', 'push', 'origin', 'main']})
    })
    it('evaluates HELM policy files and falls to the default', async () => {
      const r = await run(['bundle', 'eval', 'helm/policy.yaml', '--tool', 'launch_rocket', '--json'])
      expect(r.json).to.deep.include({verdict: 'deny', rule: 'deny-all', reason: 'default-deny'})
    })
    const bad: Array<[string[], string]> = [
      [['org/baseline.yaml', '--tool', 'x', '--args', '{"a": 1,}'], "--args:1:9: expected a string key, found '}'"],
      [['org/baseline.yaml', '--tool', 'x', '--args', '[1]'], '--args must be a JSON object'],
      [['org/baseline.yaml', '--tool', 'x', '--args', '{"p": 1, "p": 2}'], '--args:1:10 /p: duplicate key "p"'],
      [['org/baseline.yaml'], 'Exactly one of the following must be provided: --command, --tool'],
      [['org/baseline.yaml', '--command', 'echo "unterminated'], '--command: unterminated double quote'],
      [['helm/production-policy.yaml', '--tool', 'x'], 'helm/production-policy.yaml is a HELM PolicyBundle; this command takes a aibox PolicyBundle or AI-Box v1 policy file or HELM policy file'],
    ]
    for (const [args, message] of bad) {
      it(`refuses ${args.slice(1).join(' ')} (exit 1)`, async () => {
        const r = await run(['bundle', 'eval', ...args])
        expect(r.code).to.equal(1)
        expect(r.stderr).to.contain(message)
      })
    }
    it('refuses to evaluate a loosening stack (exit 2)', async () => {
      const r = await run(['bundle', 'eval', 'org/baseline.yaml', 'loosen/default-allow.yaml', '--tool', 'x', '--json'])
      expect(r.code).to.equal(2)
      expectSchema('error', r)
      expect(r.json.error.code).to.equal('POLICY_LOOSENED')
    })
  })

  describe('diff', () => {
    it('shows what got tighter and looser', async () => {
      const r = await run(['bundle', 'diff', 'org/baseline.yaml', 'loosen/teams/alpha/policy.yaml', '--json'])
      expect(r.code).to.equal(0)
      expectSchema('bundle-diff', r)
      expect(r.json.looser.map((i: {detail: string}) => i.detail)).to.include('adds "pastebin.com"')
      expect(r.json.tighter.length).to.be.greaterThan(0)
    })
    it('says nothing changed for two renderings of the same bundle', async () => {
      const r = await run(['bundle', 'diff', 'org/baseline.yaml', 'org/baseline.json'])
      expect(r.code).to.equal(0)
      expect(r.stdout).to.equal('no change (same content digest)\n')
    })
    it('refuses bad input: HELM bundles (exit 1), missing files (exit 3)', async () => {
      const helm = await run(['bundle', 'diff', 'helm/production-policy.yaml', 'helm/staging-policy.yaml'])
      expect(helm.code).to.equal(1)
      expect(helm.stderr).to.contain('its CEL rules cannot be compared semantically')
      const missing = await run(['bundle', 'diff', 'org/baseline.yaml', 'nope.yaml'])
      expect(missing.code).to.equal(3)
      expect(missing.stderr).to.contain('nope.yaml: no such file')
    })
    it('exits 2 with --fail-on-looser when anything got looser', async () => {
      const r = await run(['bundle', 'diff', 'org/baseline.yaml', 'loosen/teams/alpha/policy.yaml', '--fail-on-looser'])
      expect(r.code).to.equal(2)
      expect(r.stderr).to.contain('network.allow[git-server].hosts: adds "pastebin.com"')
      const json = await run(['bundle', 'diff', 'org/baseline.yaml', 'loosen/teams/alpha/policy.yaml', '--fail-on-looser', '--json'])
      expect(json.code).to.equal(2)
      expectSchema('bundle-diff', json)
    })
  })

  describe('test', () => {
    it('runs passing policy tests (exit 0)', async () => {
      const r = await run(['bundle', 'test', 'org/baseline.yaml', 'teams/alpha/policy.yaml', 'projects/webapp/aibox/policy.yaml', 'tests/stack.tests.yaml', '--json'])
      expect(r.code, r.stderr).to.equal(0)
      expectSchema('bundle-test', r)
      expect(r.json).to.include({ok: true, passed: 9, failed: 0})
    })
    it('exits 2 and names each failure', async () => {
      const r = await run(['bundle', 'test', 'helm/policy.yaml', 'tests/failing.tests.yaml'])
      expect(r.code).to.equal(2)
      expect(r.stdout).to.contain('FAIL  expects deletes to be allowed\n        tool delete_file: verdict: expected allow, got deny')
      expect(r.stderr).to.contain('2 of 3 policy tests failed')
      const json = await run(['bundle', 'test', 'helm/policy.yaml', 'tests/failing.tests.yaml', '--json'])
      expect(json.code).to.equal(2)
      expectSchema('bundle-test', json)
    })
    it('refuses an invalid tests file (exit 1) and a missing one', async () => {
      const r = await run(['bundle', 'test', 'helm/policy.yaml', 'tests/invalid.tests.yaml'])
      expect(r.code).to.equal(1)
      expect(r.stderr).to.contain('tests/invalid.tests.yaml:11:5 /tests/3/name: duplicate test name "neither" (first at tests[1])')
      const one = await run(['bundle', 'test', 'helm/policy.yaml'])
      expect(one.code).to.equal(1)
      expect(one.stderr).to.contain('give the policy file(s) and then the tests file')
    })
  })
})

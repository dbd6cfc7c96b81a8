/**
 * e2e: governance through the real binary (README "Governance"): approvals with quorum and
 * separation of duties enforced by pull/verify, `aibox approve` refusals, the submit gate of
 * `aibox push` and drafts, emergency changes and `aibox audit emergencies`, and `aibox discover`
 * per version — against a real registry (distribution 2.8) and `oci:` layouts, with exit codes,
 * messages and `--json` validated against schemas/output.
 */
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {APPROVAL_PREDICATE_TYPE, attachApproval, packSigstoreReferrer, pushReferrer} from '../../src/distribute/index.js'
import {LayoutDirStore} from '../../src/oci/index.js'
import {TESTDATA, aibox as run, type CliOptions, type CliResult} from '../helpers/cli.js'
import {KEY, KEYS_DIR, ORG_BASELINE, privateKey, TEAM_ALPHA} from '../helpers/policy-fixtures.js'
import {type RegistryHandle, startRegistry} from '../helpers/registry.js'
import {expectOutputSchema} from '../helpers/schemas.js'
import {tmpdir} from '../helpers/tmp.js'

const TRUST = path.join(TESTDATA, 'govern', 'trust.yaml')
const TEAM_TESTS = path.join(TESTDATA, 'govern', 'team-alpha.tests.yaml')
const FAILING_TESTS = path.join(TESTDATA, 'bundles', 'tests', 'failing.tests.yaml')
const LOOSE_TEAM = path.join(TESTDATA, 'bundles', 'loosen', 'teams', 'alpha', 'policy.yaml')

describe('aibox governance: approvals, submit gate, emergencies, discover (e2e)', function () {
  this.timeout(180_000)
  let reg: RegistryHandle
  const work = tmpdir('aibox-govern-')
  const audit = path.join(work, 'audit.jsonl')
  const p = (...f: string[]) => path.join(work, ...f)

  function aibox(args: string[], options: CliOptions = {}): Promise<CliResult> {
    return run(args, {...options, env: {OCLIF_COLUMNS: '10000', COSIGN_PASSWORD: 'test', AIBOX_PASSWORD: undefined, AIBOX_AUDIT_LOG: audit, SOURCE_DATE_EPOCH: undefined, CI: '1', ...options.env}})
  }
  async function ok(args: string[], options: CliOptions = {}): Promise<CliResult> {
    const r = await aibox(args, options)
    expect(r.code, `aibox ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).to.equal(0)
    return r
  }
  async function refused(args: string[], exit: number, code: string, message?: RegExp): Promise<CliResult> {
    const r = await aibox(args)
    expect(r.code, `aibox ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).to.equal(exit)
    expect(r.stderr).to.contain(code)
    if (message) expect(r.stderr).to.match(message)
    return r
  }
  /** The trust policy with the org quorum raised to two approvers. */
  function quorumTwo(): string {
    const file = p('trust-quorum-2.yaml')
    const text = fs.readFileSync(TRUST, 'utf8').replace(/\.\.\/trust\/keys/g, KEYS_DIR).replace('approver: 1 ', 'approver: 2 ')
    expect(text).to.contain('approver: 2 ')
    fs.writeFileSync(file, text)
    return file
  }
  /** A copy of the org baseline with another version (a new manifest digest). */
  function orgVersion(version: string): string {
    const file = p(`org-${version}.yaml`)
    fs.writeFileSync(file, fs.readFileSync(ORG_BASELINE, 'utf8').replace('version: 1.4.0', `version: ${version}`))
    return file
  }

  before(async () => {
    reg = await startRegistry()
  })
  after(async () => {
    await reg?.stop()
  })

  describe('approvals: quorum and separation of duties (registry)', () => {
    it('refuses the org baseline until another key approves it, then pull, verify and discover agree', async () => {
      const ref = `${reg.host}/policies/org:stable`
      const push = await ok(['push', ORG_BASELINE, ref, '--key', KEY('alice'), '--trust', TRUST, '--json'])
      expectOutputSchema('push', push.json)
      expect(push.json.gate).to.deep.include({protected: true, ok: true, protectedBy: "trust scope 'org-baseline' sets protected: true"})
      const out = p('org-out')
      await refused(['pull', ref, '--trust', TRUST, '-o', out], 5, 'APPROVALS_NOT_SATISFIED', /scope 'org-baseline': needs 1 distinct 'approver' approval for 127\.0\.0\.1:\d+\/policies\/org \(tier org\), got none/)
      expect(fs.existsSync(out)).to.equal(false)
      const asJson = await aibox(['verify', ref, '--trust', TRUST, '--json'])
      expect(asJson.code).to.equal(5)
      expectOutputSchema('error', asJson.json)
      expect(asJson.json.error).to.include({code: 'APPROVALS_NOT_SATISFIED', exit: 5})
      expect(asJson.json.error.details.decision.scopes[0].requirements.map((r: {kind: string; satisfied: boolean}) => [r.kind, r.satisfied])).to.deep.equal([
        ['signatures', true],
        ['approvals', false],
      ])
      // Self-approval: alice signed this digest.
      await refused(['approve', ref, '--key', KEY('alice'), '--role', 'security', '--note', 'mine'], 5, 'SELF_APPROVAL', /the author of a digest cannot approve it \(separation of duties\)/)
      // Wrong role: carol is an approver, not security.
      await refused(['approve', ref, '--key', KEY('carol'), '--role', 'security', '--note', 'x', '--trust', TRUST], 5, 'ROLE_NOT_HELD', /key 'carol' .* does not hold the role 'security'/)
      const a = await ok(['approve', ref, '--key', KEY('carol'), '--role', 'approver', '--note', 'reviewed egress', '--ticket', 'SEC-1', '--trust', TRUST, '--json'])
      expectOutputSchema('approve', a.json)
      expect(a.json).to.include({keyName: 'carol', digest: push.json.digest})
      await refused(['approve', ref, '--key', KEY('carol'), '--role', 'approver', '--note', 'again'], 5, 'ALREADY_APPROVED')
      const pulled = await ok(['pull', ref, '--trust', TRUST, '-o', out, '--json'])
      expectOutputSchema('pull', pulled.json)
      expect(pulled.json.approvalSummary).to.have.length(1)
      expect(pulled.json.approvalSummary[0]).to.include({key: 'carol', role: 'approver', note: 'reviewed egress', ticket: 'SEC-1', eligible: true})
      const human = await ok(['verify', ref, '--trust', TRUST])
      expect(human.stdout).to.contain("approved by 'carol'")
      expect(human.stdout).to.contain("trust scope 'org-baseline': signatures security 1/1; approvals approver 1/1")

      const d = await ok(['discover', `${reg.host}/policies/org`, '--trust', TRUST, '--json'])
      expectOutputSchema('discover', d.json)
      expect(d.json.versions).to.have.length(1)
      const g = d.json.versions[0]
      expect(g).to.include({digest: push.json.digest, version: '1.4.0', tier: 'org', draft: false})
      expect(g.tags).to.deep.equal(['stable', '1.4.0'])
      expect(g.signers.map((s: {key: string; countedAs: string[]}) => [s.key, s.countedAs])).to.deep.equal([['alice', ['security']]])
      expect(g.approvals[0]).to.include({key: 'carol', role: 'approver', note: 'reviewed egress', ticket: 'SEC-1'})
      expect(g.quorum.status).to.equal('met')
      const text = await ok(['discover', `${reg.host}/policies/org`, '--trust', TRUST])
      expect(text.stdout).to.match(/signed by 'alice' \([0-9a-f]{16}; counted as security\)/)
      expect(text.stdout).to.match(/approved by 'carol' \([0-9a-f]{16}\) as approver at \S+ \(ticket SEC-1\): reviewed egress/)
      expect(text.stdout).to.contain('quorum met')
      const tree = await ok(['discover', ref, '--trust', TRUST, '--json'])
      expectOutputSchema('discover', tree.json)
      expect(tree.json.governance.quorum.status).to.equal('met')
      await refused(['discover', `${reg.host}/policies/org`], 1, 'KEYS_OR_TRUST', /needs --trust/)
    })

    it('refuses while the quorum of distinct approvers is not met', async () => {
      const trust = quorumTwo()
      const ref = `${reg.host}/policies/org-q:stable`
      await ok(['push', ORG_BASELINE, ref, '--key', KEY('alice')])
      await ok(['approve', ref, '--key', KEY('carol'), '--role', 'approver', '--note', 'one'])
      await refused(['verify', ref, '--trust', trust], 5, 'APPROVALS_NOT_SATISFIED', /needs 2 distinct 'approver' approvals .* got 1: key 'carol'/)
      const d = await ok(['discover', `${reg.host}/policies/org-q`, '--trust', trust, '--json'])
      expect(d.json.versions[0].quorum.status).to.equal('approvals-missing')
      await ok(['approve', ref, '--key', KEY('bob'), '--role', 'approver', '--note', 'two'])
      await ok(['verify', ref, '--trust', trust])
    })

    it('refuses an approval made for another digest (a replayed approval counts for nothing)', async () => {
      const dir = p('replay')
      await ok(['push', ORG_BASELINE, `oci:${dir}:v1`, '--key', KEY('alice')])
      await ok(['push', orgVersion('1.5.0'), `oci:${dir}:v2`, '--key', KEY('alice')])
      const store = await LayoutDirStore.open(dir)
      const v1 = await store.resolve('v1')
      const v2 = await store.resolve('v2')
      const approval = await attachApproval(store, v1, await privateKey('carol'), {role: 'approver', note: 'approved 1.4.0'})
      await pushReferrer(store, packSigstoreReferrer(approval.bundle, v2, {predicateType: APPROVAL_PREDICATE_TYPE, created: new Date()}))
      await ok(['verify', `oci:${dir}:v1`, '--trust', TRUST])
      const r = await refused(['verify', `oci:${dir}:v2`, '--trust', TRUST], 5, 'APPROVALS_NOT_SATISFIED', /was signed for another digest, not sha256:[0-9a-f]{64}: an approval binds to the exact manifest digest/)
      expect(r.stderr).to.contain(v2.digest)
    })
  })

  describe('the submit gate of aibox push', () => {
    it('refuses a team policy that loosens the org baseline (exit 5), and pushes nothing', async () => {
      const dir = p('gate-loose')
      const r = await refused(['push', LOOSE_TEAM, `oci:${dir}`, '--key', KEY('bob'), '--against', ORG_BASELINE], 5, 'SUBMIT_GATE_FAILED', /loosens org baseline rule 'network\.allow\[git-server\]\.hosts': adds "pastebin\.com"/)
      expect(r.stderr).to.contain('--draft')
      expect(fs.existsSync(dir)).to.equal(false)
      await refused(['push', TEAM_ALPHA, `oci:${dir}`, '--key', KEY('bob')], 5, 'SUBMIT_GATE_FAILED', /none was given: pass --against/)
    })

    it("refuses a bundle whose own tests fail (the sibling <name>.tests.yaml, or --tests)", async () => {
      const src = p('team-src')
      fs.mkdirSync(src)
      fs.copyFileSync(TEAM_ALPHA, path.join(src, 'policy.yaml'))
      fs.copyFileSync(FAILING_TESTS, path.join(src, 'policy.tests.yaml'))
      await refused(['push', path.join(src, 'policy.yaml'), `oci:${p('gate-tests')}`, '--key', KEY('bob'), '--against', ORG_BASELINE], 5, 'SUBMIT_GATE_FAILED', /policy tests: 2 of 3 failed:[\s\S]*expects deletes to be allowed/)
      await refused(['push', TEAM_ALPHA, `oci:${p('gate-tests2')}`, '--key', KEY('bob'), '--against', ORG_BASELINE, '--tests', FAILING_TESTS], 5, 'SUBMIT_GATE_FAILED')
      fs.copyFileSync(TEAM_TESTS, path.join(src, 'policy.tests.yaml'))
      const r = await ok(['push', path.join(src, 'policy.yaml'), `oci:${p('gate-tests')}`, '--key', KEY('bob'), '--against', ORG_BASELINE, '--json'])
      expect(r.json.gate.tests).to.deep.include({status: 'passed', passed: 3, failed: 0})
      expect(r.json.gate.tightenOnly.status).to.equal('passed')
    })

    it('pushes a failing policy as a draft: draft- tag only, refused by pull, verifiable for review', async () => {
      const dir = p('gate-draft')
      const r = await ok(['push', LOOSE_TEAM, `oci:${dir}`, '--key', KEY('bob'), '--against', ORG_BASELINE, '--draft', '--json'])
      expectOutputSchema('push', r.json)
      expect(r.json).to.include({draft: true})
      expect(r.json.tags).to.deep.equal(['draft-1.0.0'])
      expect(r.json.gate).to.deep.include({ok: false})
      expect((await ok(['tags', `oci:${dir}`, '--json'])).json.tags).to.deep.equal(['draft-1.0.0'])
      await refused(['pull', `oci:${dir}:draft-1.0.0`, '--key', path.join(KEYS_DIR, 'bob.pub'), '-o', p('draft-out')], 5, 'DRAFT_NOT_RELEASE', /is a draft/)
      expect(fs.existsSync(p('draft-out'))).to.equal(false)
      const v = await ok(['verify', `oci:${dir}:draft-1.0.0`, '--key', path.join(KEYS_DIR, 'bob.pub')])
      expect(v.stderr).to.contain('is a draft: pull and start refuse it')
      await refused(['push', TEAM_ALPHA, `oci:${dir}:stable`, '--key', KEY('bob'), '--against', ORG_BASELINE, '--draft'], 1, 'DRAFT_TAGS')
      const events = fs.readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
      expect(events.find((e) => e.event === 'policy.pushed' && e.digest === r.json.digest)).to.include({draft: true, gate: 'failed'})
    })

    it('checks against a published org baseline given by reference, verified with --trust', async () => {
      const org = `${reg.host}/policies/gate-org:stable`
      await ok(['push', ORG_BASELINE, org, '--key', KEY('alice')])
      await ok(['approve', org, '--key', KEY('carol'), '--role', 'approver', '--note', 'ok'])
      const r = await ok(['push', TEAM_ALPHA, `${reg.host}/policies/teams/gate`, '--key', KEY('bob'), '--against', org, '--trust', TRUST, '--json'])
      expect(r.json.gate.tightenOnly.against[0]).to.include({spec: org, tier: 'org'})
      expect(r.json.gate.tightenOnly.against[0].reference).to.match(/@sha256:[0-9a-f]{64}$/)
      await refused(['push', LOOSE_TEAM, `${reg.host}/policies/teams/gate`, '--key', KEY('bob'), '--against', org, '--trust', TRUST], 5, 'SUBMIT_GATE_FAILED')
      await refused(['push', TEAM_ALPHA, `${reg.host}/policies/teams/gate`, '--key', KEY('bob'), '--against', org], 1, 'AGAINST_NEEDS_TRUST')
    })
  })

  describe('emergency changes', () => {
    it('accepts a security key alone, lists the change until another key approves it, and logs it', async () => {
      const ref = `${reg.host}/policies/org-em`
      await refused(['push', orgVersion('1.4.1'), ref, '--key', KEY('bob'), '--emergency', '--incident', 'INC-77', '--trust', TRUST], 5, 'EMERGENCY_NOT_ALLOWED', /signed by key 'bob' alone would not be accepted/)
      await refused(['push', orgVersion('1.4.1'), ref, '--key', KEY('alice'), '--emergency', '--trust', TRUST], 1, 'incident')
      const push = await ok(['push', orgVersion('1.4.1'), ref, '--key', KEY('alice'), '--emergency', '--incident', 'INC-77', '--reason', 'block exfiltration host', '--trust', TRUST, '--json'])
      expectOutputSchema('push', push.json)
      expect(push.json.emergency).to.deep.equal({incident: 'INC-77', reason: 'block exfiltration host'})
      const pulled = await ok(['pull', `${ref}:1.4.1`, '--trust', TRUST, '-o', p('em-out')])
      expect(pulled.stdout).to.contain('emergency change for incident INC-77: accepted on its emergency path, retroactive approval pending')
      expect(pulled.stdout).to.contain("trust scope 'org-baseline' (emergency path): signatures security 1/1")

      const pending = await ok(['audit', 'emergencies', '--json'])
      expectOutputSchema('audit-emergencies', pending.json)
      expect(pending.json.pending).to.equal(1)
      expect(pending.json.emergencies[0]).to.include({status: 'pending', incident: 'INC-77', digest: push.json.digest, reason: 'block exfiltration host'})
      const human = await ok(['audit', 'emergencies'])
      expect(human.stdout).to.match(/^PENDING +seq \d+ .* incident INC-77/m)
      await refused(['audit', 'emergencies', '--fail-pending'], 5, 'EMERGENCY_PENDING')
      const d = await ok(['discover', `${ref}:1.4.1`, '--trust', TRUST, '--json'])
      expect(d.json.governance).to.deep.include({emergency: {incident: 'INC-77', pendingApproval: true}})
      expect(d.json.governance.quorum.status).to.equal('met-emergency')

      const since = await ok(['audit', 'log', '--event', 'policy.emergency', '--since', '1h', '--json'])
      expectOutputSchema('audit-log', since.json)
      expect(since.json.map((e: {incident: string}) => e.incident)).to.deep.equal(['INC-77'])
      const pushed = await ok(['audit', 'log', '--event', 'policy.pushed', '--ref', `${ref}:1.4.1`, '--json'])
      expect(pushed.json).to.have.length(1)
      expect(pushed.json[0]).to.include({emergency: true, incident: 'INC-77', gate: 'passed', digest: push.json.digest})

      await ok(['approve', `${ref}:1.4.1`, '--key', KEY('carol'), '--role', 'approver', '--note', 'retroactive review', '--incident', 'INC-77', '--trust', TRUST])
      const after = await ok(['audit', 'emergencies', '--all', '--json'])
      expect(after.json.pending).to.equal(0)
      expect(after.json.emergencies[0].status).to.equal('approved')
      await ok(['audit', 'emergencies', '--fail-pending'])
      const again = await ok(['pull', `${ref}:1.4.1`, '--trust', TRUST, '-o', p('em-out')])
      expect(again.stdout).to.contain('emergency change for incident INC-77: retroactively approved')
    })

    it('detects an edited emergency line in the audit log', async () => {
      const copy = p('audit-copy.jsonl')
      fs.copyFileSync(audit, copy)
      fs.copyFileSync(`${audit}.head`, `${copy}.head`)
      const lines = fs.readFileSync(copy, 'utf8').split('\n')
      const i = lines.findIndex((l) => l.includes('"policy.emergency"'))
      expect(i).to.be.greaterThan(-1)
      lines[i] = lines[i]!.replace('INC-77', 'INC-78')
      fs.writeFileSync(copy, lines.join('\n'))
      await refused(['audit', 'verify', '--log', copy], 2, 'AUDIT_LOG_BROKEN', new RegExp(`line ${i + 1} \\(seq ${i + 1}\\): edited`))
      const r = await ok(['audit', 'emergencies', '--log', copy, '--all'])
      expect(r.stderr).to.match(/warning: the audit log does not verify \(line \d+: edited/)
    })
  })
})

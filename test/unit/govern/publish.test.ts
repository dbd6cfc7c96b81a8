/**
 * governedPush / governedApprove / listEmergencies / governanceOf on real OCI layout directories
 * (the same code paths as the CLI), with the testdata/trust keys and testdata/govern/trust.yaml.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {readAuditLog} from '../../../src/audit/index.js'
import {verifyPolicyArtifact} from '../../../src/distribute/index.js'
import {GovernanceError, InputError} from '../../../src/errors.js'
import {governanceByVersion, governanceOf, governedApprove, governedPush, listEmergencies} from '../../../src/govern/index.js'
import {ANNOTATION, LayoutDirStore} from '../../../src/oci/index.js'
import {KeylessSigner} from '../../../src/sign/index.js'
import {type TrustPolicy, loadTrustPolicy} from '../../../src/trust/index.js'
import {TESTDATA} from '../../helpers/cli.js'
import {expectCode} from '../../helpers/expect-error.js'
import {ORG_BASELINE, TEAM_ALPHA, privateKey} from '../../helpers/policy-fixtures.js'
import {MOCK_ISSUER, type MockSigstore, startMockSigstore} from '../../helpers/sigstore-mock.js'
import {tmpdir} from '../../helpers/tmp.js'

const TRUST = path.join(TESTDATA, 'govern', 'trust.yaml')
const LOOSE_TEAM = path.join(TESTDATA, 'bundles', 'loosen', 'teams', 'alpha', 'policy.yaml')
const TEAM_TESTS = path.join(TESTDATA, 'govern', 'team-alpha.tests.yaml')

describe('govern (push, approve, emergencies, report)', function () {
  this.timeout(30_000)
  const trust = loadTrustPolicy(TRUST)
  let dir: string
  let log: string
  beforeEach(() => {
    dir = tmpdir()
    log = path.join(dir, 'audit.jsonl')
  })
  const tags = async (layout: string) => (await LayoutDirStore.open(layout)).tags()

  describe('#governedPush', () => {
    describe('when the gate passes', () => {
      it('publishes with the version tag and logs the gate outcome', async () => {
        const r = await governedPush({bundle: TEAM_ALPHA, reference: `oci:${dir}/team:stable`, key: await privateKey('bob'), against: [ORG_BASELINE], tests: [TEAM_TESTS], audit: {log}})
        expect(r.gate.ok).to.equal(true)
        expect(r.draft).to.equal(false)
        expect(r.tags).to.deep.equal(['2.1.0', 'stable'])
        const pushed = (await readAuditLog(log)).entries.find((e) => e.event === 'policy.pushed')!
        expect(pushed).to.include({gate: 'passed'})
        expect(pushed).to.not.have.property('draft')
      })
    })
    describe('when the gate fails', () => {
      it('refuses with SUBMIT_GATE_FAILED (exit 5) and pushes nothing', async () => {
        const e = await expectCode(governedPush({bundle: LOOSE_TEAM, reference: `oci:${dir}/team`, key: await privateKey('bob'), against: [ORG_BASELINE], audit: {log}}), GovernanceError, 'SUBMIT_GATE_FAILED', /adds "pastebin\.com"/)
        expect(e.exit).to.equal(5)
        expect(fs.existsSync(path.join(dir, 'team'))).to.equal(false)
        expect(fs.existsSync(log)).to.equal(false)
      })
      it('pushes a draft anyway, tagged draft-<version> only, which verification refuses by tag', async () => {
        const r = await governedPush({bundle: LOOSE_TEAM, reference: `oci:${dir}/team`, key: await privateKey('bob'), against: [ORG_BASELINE], draft: true, audit: {log}})
        expect(r.gate.ok).to.equal(false)
        expect(r.draft).to.equal(true)
        expect(r.tags).to.deep.equal(['draft-1.0.0'])
        expect(await tags(path.join(dir, 'team'))).to.deep.equal(['draft-1.0.0'])
        expect((await readAuditLog(log)).entries[0]).to.include({event: 'policy.pushed', draft: true, gate: 'failed'})
        const store = await LayoutDirStore.open(path.join(dir, 'team'))
        await expectCode(verifyPolicyArtifact(store, 'draft-1.0.0', {trust}), GovernanceError, 'DRAFT_NOT_RELEASE', /is a draft/)
        const v = await verifyPolicyArtifact(store, 'draft-1.0.0', {trust, allowDraft: true})
        expect(v.version).to.equal('1.0.0')
      })
      it('refuses release tags on a draft and draft- tags on a release', async () => {
        await expectCode(governedPush({bundle: TEAM_ALPHA, reference: `oci:${dir}/t:stable`, key: await privateKey('bob'), against: [ORG_BASELINE], draft: true}), InputError, 'DRAFT_TAGS', /"stable"/)
        await expectCode(governedPush({bundle: TEAM_ALPHA, reference: `oci:${dir}/t:draft-x`, key: await privateKey('bob'), against: [ORG_BASELINE]}), InputError, 'RESERVED_TAG')
      })
    })
    describe('when a draft is published as a release later', () => {
      it('gets the same digest, so approvals given to the draft carry over', async () => {
        const draft = await governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org`, key: await privateKey('alice'), draft: true})
        await governedApprove({reference: `oci:${dir}/org:draft-1.4.0`, key: await privateKey('carol'), role: 'approver', note: 'reviewed the draft', trust})
        const release = await governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org:stable`, key: await privateKey('alice')})
        expect(release.digest).to.equal(draft.digest)
        const v = await verifyPolicyArtifact(await LayoutDirStore.open(path.join(dir, 'org')), 'stable', {trust})
        expect(v.trust!.scopes[0]!.requirements.map((r) => [r.role, r.keys])).to.deep.equal([
          ['security', ['alice']],
          ['approver', ['carol']],
        ])
      })
    })
    describe('when the change is an emergency', () => {
      it('marks the signed manifest, logs policy.emergency, and verification accepts it with the pending flag', async () => {
        const r = await governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org`, key: await privateKey('alice'), trust, emergency: {incident: 'INC-9', reason: 'block exfil', ticket: 'SEC-2'}, audit: {log}})
        expect(r.emergency).to.deep.equal({incident: 'INC-9', reason: 'block exfil'})
        const store = await LayoutDirStore.open(path.join(dir, 'org'))
        const v = await verifyPolicyArtifact(store, '1.4.0', {trust})
        expect(v.annotations[ANNOTATION.emergency]).to.equal('INC-9')
        expect(v.emergency).to.deep.equal({incident: 'INC-9', pendingApproval: true, scopes: ['org-baseline']})
        const entries = (await readAuditLog(log)).entries
        expect(entries.map((e) => e.event)).to.deep.equal(['policy.pushed', 'policy.signed', 'policy.emergency'])
        expect(entries[0]).to.include({emergency: true, incident: 'INC-9'})
        expect(entries[2]).to.include({incident: 'INC-9', reason: 'block exfil', ticket: 'SEC-2', keyId: (await privateKey('alice')).public.keyId, digest: r.digest})
      })
      it('is refused for a key the emergency path does not name, and where there is no emergency path', async () => {
        const e = await expectCode(governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org`, key: await privateKey('bob'), trust, emergency: {incident: 'INC-9'}}), GovernanceError, 'EMERGENCY_NOT_ALLOWED', /signed by key 'bob' alone would not be accepted/)
        expect(e.message).to.contain("scope 'org-baseline' (emergency path, incident INC-9): needs 1 distinct 'security' signature")
        await expectCode(governedPush({bundle: TEAM_ALPHA, reference: `oci:${dir}/team`, key: await privateKey('alice'), trust, against: [ORG_BASELINE], emergency: {incident: 'INC-9'}}), 'EMERGENCY_NOT_ALLOWED', /scope 'team-policies' has no emergency path/)
        expect(fs.existsSync(path.join(dir, 'org'))).to.equal(false)
      })
      it('needs a trust policy and cannot be a draft', async () => {
        await expectCode(governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org`, key: await privateKey('alice'), emergency: {incident: 'INC-9'}}), InputError, 'EMERGENCY_NEEDS_TRUST')
        await expectCode(governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org`, key: await privateKey('alice'), trust, draft: true, emergency: {incident: 'INC-9'}}), InputError, 'DRAFT_EMERGENCY')
        await expectCode(governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org`, key: await privateKey('alice'), trust, emergency: {incident: 'bad\nid'}}), InputError, 'INVALID_INCIDENT')
      })
    })

    describe('when signing keyless (identities of the trust policy)', () => {
      let mock: MockSigstore
      let keylessTrust: TrustPolicy
      before(async () => {
        mock = await startMockSigstore()
        const tdir = tmpdir('aibox-govern-keyless-')
        mock.writeTrustFiles(path.join(tdir, 'sigstore'))
        const file = path.join(tdir, 'trust.yaml')
        fs.writeFileSync(
          file,
          `apiVersion: aibox.dev/v1\nkind: TrustPolicy\nidentities:\n  release:\n    issuer: ${MOCK_ISSUER}\n    subject: https://ci.example.test/release\n    roles: [security]\n  carol:\n    issuer: ${MOCK_ISSUER}\n    subject: carol@example.test\n    roles: [approver]\nkeyless:\n  trustedRoot: sigstore/trusted_root.json\nscopes:\n  - name: org-baseline\n    match: {tiers: [org]}\n    require:\n      signatures: {security: 1}\n      approvals: {approver: 1}\n    emergency:\n      signatures: {security: 1}\n`,
        )
        keylessTrust = loadTrustPolicy(file)
      })
      after(async () => {
        await mock.close()
      })
      const signer = (sub: string) => KeylessSigner.fromEnvironment({fulcioUrl: mock.url, rekorUrl: mock.url}, {SIGSTORE_ID_TOKEN: mock.token({sub})})

      it('pushes an emergency change the signing identity alone may make, and reports it by identity', async () => {
        const r = await governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org`, keyless: signer('https://ci.example.test/release'), trust: keylessTrust, emergency: {incident: 'INC-7'}, audit: {log}})
        expect(r.signature.keyless?.identity).to.deep.equal({issuer: MOCK_ISSUER, subject: 'https://ci.example.test/release'})
        const store = await LayoutDirStore.open(path.join(dir, 'org'))
        const v = await verifyPolicyArtifact(store, '1.4.0', {trust: keylessTrust})
        expect(v.emergency).to.deep.equal({incident: 'INC-7', pendingApproval: true, scopes: ['org-baseline']})
        const g = await governanceOf(store, '1.4.0', {trust: keylessTrust})
        expect(g.quorum.status).to.equal('met-emergency')
        expect(g.signers.map((x) => [x.key, x.identity?.subject, x.countedAs])).to.deep.equal([['release', 'https://ci.example.test/release', ['security']]])
        const entries = (await readAuditLog(log)).entries
        expect(entries.map((e) => e.event)).to.deep.equal(['policy.pushed', 'policy.signed', 'policy.emergency'])
        expect(entries[1]).to.include({identity: 'https://ci.example.test/release', issuer: MOCK_ISSUER})
      })
      it('refuses an emergency change by an identity the emergency path does not name, before anything is signed or written', async () => {
        const before = mock.requests.length
        const e = await expectCode(
          governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org`, keyless: signer('carol@example.test'), trust: keylessTrust, emergency: {incident: 'INC-7'}}),
          GovernanceError,
          'EMERGENCY_NOT_ALLOWED',
          /signed by identity 'carol' alone would not be accepted/,
        )
        expect(e.message).to.contain("needs 1 distinct 'security' signature")
        expect(mock.requests.length).to.equal(before)
        expect(fs.existsSync(path.join(dir, 'org'))).to.equal(false)
      })
      it('notes an identity the trust policy does not name, and what is still needed', async () => {
        const r = await governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org`, keyless: signer('mallory@example.test'), trust: keylessTrust})
        expect(r.notes).to.include(`the keyless identity mallory@example.test is not in '${keylessTrust.file}': its signature will not count there`)
        const ok = await governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org2`, keyless: signer('https://ci.example.test/release'), trust: keylessTrust})
        expect(ok.notes.join('\n')).to.match(/pull and start refuse this version until: scope 'org-baseline': needs 1 distinct 'approver' approval/)
      })
    })
  })

  describe('#governedApprove', () => {
    let ref: string
    beforeEach(async () => {
      await governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org:stable`, key: await privateKey('alice')})
      ref = `oci:${dir}/org:stable`
    })
    const referrers = async () => (await LayoutDirStore.open(path.join(dir, 'org'))).predecessors(await (await LayoutDirStore.open(path.join(dir, 'org'))).resolve('stable'))

    it('refuses the author of the digest (separation of duties) and attaches nothing', async () => {
      const before = (await referrers()).length
      const e = await expectCode(governedApprove({reference: ref, key: await privateKey('alice'), role: 'security', note: 'mine'}), GovernanceError, 'SELF_APPROVAL', /signed .*: the author of a digest cannot approve it/)
      expect(e.exit).to.equal(5)
      expect((await referrers()).length).to.equal(before)
    })
    it('refuses a role the key does not hold, and a key not in the trust policy', async () => {
      await expectCode(governedApprove({reference: ref, key: await privateKey('carol'), role: 'security', note: 'x', trust}), GovernanceError, 'ROLE_NOT_HELD', /key 'carol' .* does not hold the role 'security' .*\(its roles: approver\)/)
      await expectCode(governedApprove({reference: ref, key: await privateKey('mallory'), role: 'approver', note: 'x', trust}), GovernanceError, 'KEY_NOT_TRUSTED')
    })
    it('approves once per key, logs it, and the quorum is then met', async () => {
      const r = await governedApprove({reference: ref, key: await privateKey('carol'), role: 'approver', note: 'ok', ticket: 'SEC-1', trust, audit: {log}})
      expect(r.keyName).to.equal('carol')
      expect(r.notes).to.deep.equal([])
      await expectCode(governedApprove({reference: ref, key: await privateKey('carol'), role: 'approver', note: 'again', trust}), GovernanceError, 'ALREADY_APPROVED', /already approved .* as 'approver'/)
      expect((await readAuditLog(log)).entries.map((e) => e.event)).to.deep.equal(['policy.approved'])
      const v = await verifyPolicyArtifact(await LayoutDirStore.open(path.join(dir, 'org')), 'stable', {trust})
      expect(v.approvalSummary).to.have.length(1)
      expect(v.approvalSummary![0]).to.include({key: 'carol', role: 'approver', ticket: 'SEC-1', eligible: true})
    })
    it('notes an approval in a role no applicable scope requires', async () => {
      const r = await governedApprove({reference: ref, key: await privateKey('bob'), role: 'team-lead', note: 'fyi', trust})
      expect(r.notes[0]).to.match(/requires 'team-lead' approvals: this approval is recorded but does not change the verdict/)
    })
  })

  describe('#listEmergencies', () => {
    it('lists an emergency until another key approves its digest', async () => {
      const r = await governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org`, key: await privateKey('alice'), trust, emergency: {incident: 'INC-1'}, audit: {log}})
      let report = await listEmergencies(log)
      expect(report).to.deep.include({exists: true, intact: true, pending: 1, total: 1})
      expect(report.emergencies[0]).to.include({status: 'pending', incident: 'INC-1', digest: r.digest, ref: `oci:${dir}/org:1.4.0`})
      // An approval of another digest does not clear it.
      await governedPush({bundle: TEAM_ALPHA, reference: `oci:${dir}/team`, key: await privateKey('bob'), against: [ORG_BASELINE], audit: {log}})
      await governedApprove({reference: `oci:${dir}/team:2.1.0`, key: await privateKey('carol'), role: 'approver', note: 'other', audit: {log}})
      expect((await listEmergencies(log)).pending).to.equal(1)
      await governedApprove({reference: `oci:${dir}/org:1.4.0`, key: await privateKey('carol'), role: 'approver', note: 'retroactive', incident: 'INC-1', trust, audit: {log}})
      report = await listEmergencies(log)
      expect(report).to.deep.include({pending: 0, total: 1, emergencies: []})
      const all = await listEmergencies(log, {all: true})
      expect(all.emergencies[0]!.status).to.equal('approved')
      expect(all.emergencies[0]!.approvals[0]).to.include({source: 'audit-log', role: 'approver', keyId: (await privateKey('carol')).public.keyId, incident: 'INC-1'})
      expect((await listEmergencies(log, {since: '2000-01-01', all: true})).total).to.equal(1)
      expect((await listEmergencies(log, {since: '2999-01-01', all: true})).total).to.equal(0)
    })
    it('never lets the emergency key clear its own change', async () => {
      const r = await governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org`, key: await privateKey('alice'), trust, emergency: {incident: 'INC-2'}, audit: {log}})
      // Forge the log line an approval by alice's key would write (aibox approve refuses it).
      const {appendAudit} = await import('../../../src/audit/index.js')
      await appendAudit('policy.approved', {ref: `oci:${dir}/org:1.4.0`, digest: r.digest, version: '1.4.0', keyId: r.signature.keyId, role: 'security'}, {log})
      expect((await listEmergencies(log)).pending).to.equal(1)
    })
    it('with a trust policy, clears an emergency approved elsewhere (in the registry), and reports what it checked', async () => {
      await governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org`, key: await privateKey('alice'), trust, emergency: {incident: 'INC-3'}, audit: {log}})
      let report = await listEmergencies(log, {trust})
      expect(report.emergencies[0]!.registryCheck).to.deep.include({status: 'pending'})
      // Approved on another machine: the approval is in the layout, not in this log.
      await governedApprove({reference: `oci:${dir}/org:1.4.0`, key: await privateKey('carol'), role: 'approver', note: 'retro', trust})
      expect((await listEmergencies(log)).pending).to.equal(1)
      report = await listEmergencies(log, {trust, all: true})
      expect(report.pending).to.equal(0)
      expect(report.emergencies[0]!.registryCheck!.status).to.equal('approved')
      expect(report.emergencies[0]!.approvals[0]).to.include({source: 'registry', key: 'carol', role: 'approver'})
    })
    it('reads a missing log as empty and flags a broken chain', async () => {
      expect(await listEmergencies(path.join(dir, 'none.jsonl'))).to.deep.include({exists: false, pending: 0, total: 0})
      await governedPush({bundle: ORG_BASELINE, reference: `oci:${dir}/org`, key: await privateKey('alice'), trust, emergency: {incident: 'INC-4'}, audit: {log}})
      const lines = fs.readFileSync(log, 'utf8').split('\n')
      lines[2] = lines[2]!.replace('INC-4', 'INC-5')
      fs.writeFileSync(log, lines.join('\n'))
      const r = await listEmergencies(log)
      expect(r.intact).to.equal(false)
      expect(r.brokenAt).to.match(/edited/)
    })
  })

  describe('#governanceOf / #governanceByVersion', () => {
    it('reports signers, approvals and the quorum status of every version', async () => {
      const layout = `oci:${dir}/org`
      await governedPush({bundle: ORG_BASELINE, reference: `${layout}:stable`, key: await privateKey('alice')})
      await governedPush({bundle: TEAM_ALPHA, reference: `oci:${dir}/team`, key: await privateKey('bob'), against: [ORG_BASELINE]})
      const store = await LayoutDirStore.open(path.join(dir, 'org'))
      let g = await governanceOf(store, 'stable', {trust})
      expect(g.quorum.status).to.equal('approvals-missing')
      expect(g.quorum.code).to.equal('APPROVALS_NOT_SATISFIED')
      expect(g.signers).to.deep.equal([{key: 'alice', keyId: (await privateKey('alice')).public.keyId, roles: ['security'], countedAs: ['security'], referrer: g.signers[0]!.referrer, format: 'sigstore-bundle', created: g.signers[0]!.created}])
      await governedApprove({reference: `${layout}:stable`, key: await privateKey('carol'), role: 'approver', note: 'ok', ticket: 'T-1', trust})
      g = await governanceOf(store, 'stable', {trust})
      expect(g.quorum.status).to.equal('met')
      expect(g.approvals[0]).to.include({key: 'carol', role: 'approver', note: 'ok', ticket: 'T-1', eligible: true})
      const versions = await governanceByVersion(store, {trust})
      expect(versions.map((v) => [v.version, v.tags, v.quorum.status])).to.deep.equal([['1.4.0', ['stable', '1.4.0'], 'met']])
      const unchecked = await governanceOf(store, 'stable', {keys: [{...(await privateKey('alice')).public, name: 'alice.pub'}]})
      expect(unchecked.quorum.status).to.equal('unchecked')
      expect(unchecked.approvals).to.deep.equal([])
      await expectCode(governanceOf(store, 'stable', {}), InputError, 'KEYS_OR_TRUST')
    })
  })
})

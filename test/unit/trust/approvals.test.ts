import {expect} from 'chai'
import {createHash} from 'node:crypto'

import {AiboxError, GovernanceError, ValidationError, VerificationError} from '../../../src/errors.js'
import {type PrivateKeyInfo, generateKeyPair, signStatement, signSubjects} from '../../../src/sign/index.js'
import {APPROVAL_PREDICATE_TYPE, type TrustPolicy, evaluateTrust, onlyApprovalsMissing, parseTrustPolicy, verifyWithTrust} from '../../../src/trust/index.js'

const data = Buffer.from('apiVersion: aibox.dev/v1\nkind: PolicyBundle\n')
const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
const otherDigest = `sha256:${'e'.repeat(64)}`
const indent = (pem: string) => pem.trim().split('\n').map((l) => `      ${l}`).join('\n')

type Sig = {bytes: Buffer; source: string}

async function thrown(fn: () => unknown): Promise<AiboxError> {
  try {
    await fn()
  } catch (err) {
    expect(err).to.be.instanceOf(AiboxError)
    return err as AiboxError
  }
  expect.fail('expected an error')
}

describe('trust/evaluate (approvals, separation of duties, emergency)', () => {
  const keys: Record<string, PrivateKeyInfo> = {}
  for (const name of ['sec', 'sec2', 'ann', 'ben', 'both', 'gone']) keys[name] = generateKeyPair('ecdsa-p256')
  const key = (name: string, roles: string, extra = '') => `  ${name}:\n    roles: [${roles}]\n${extra}    publicKey: |\n${indent(keys[name]!.public.pem)}\n`
  const keysBlock = [
    key('sec', 'security, approver'),
    key('sec2', 'security'),
    key('ann', 'approver'),
    key('ben', 'approver'),
    key('both', 'approver, security'),
    key('gone', 'approver'),
  ].join('')
  const org = {registry: 'registry.example.com', repository: 'policies/org', tier: 'org' as const}
  const team = {registry: 'registry.example.com', repository: 'policies/teams/a', tier: 'team' as const}
  let policy: TrustPolicy

  before(() => {
    policy = parseTrustPolicy(
      `apiVersion: aibox.dev/v1
kind: TrustPolicy
keys:
${keysBlock}revoked:
  - {key: gone, reason: left, revokedAt: 2024-01-01T00:00:00Z}
scopes:
  - name: org
    match: {tiers: [org]}
    require:
      signatures: {security: 1}
      approvals: {approver: 1}
    emergency:
      signatures: {security: 1}
  - name: teams
    match: {tiers: [team]}
    require:
      signatures: {security: 1}
      approvals: {approver: 2}
`,
      'gov.yaml',
    )
  })

  const sig = async (name: string): Promise<Sig> => ({bytes: Buffer.from(JSON.stringify(await signSubjects([{digest}], keys[name]!))), source: `${name}.sig`})
  const approval = async (name: string, role: string | undefined, subject = digest): Promise<Sig> => ({
    bytes: Buffer.from(JSON.stringify(await signStatement({subjects: [{digest: subject}], predicateType: APPROVAL_PREDICATE_TYPE, predicate: role === undefined ? {note: 'x'} : {role, note: 'ok', approvedAt: '2026-01-01T00:00:00Z'}}, keys[name]!))),
    source: `${name}-${role}.approval`,
  })
  const verify = (sigs: Sig[], target: Parameters<typeof evaluateTrust>[1] = org) => verifyWithTrust(sigs, policy, {artifact: data, target})

  describe('when a security signature and an approval by another key are present', () => {
    it('is satisfied, naming who counted for which role', async () => {
      const r = verify([await sig('sec2'), await approval('ann', 'approver')])
      expect(r.decision.satisfied).to.equal(true)
      expect(r.decision.scopes[0]!.requirements).to.deep.equal([
        {kind: 'signatures', role: 'security', threshold: 1, keys: ['sec2'], satisfied: true},
        {kind: 'approvals', role: 'approver', threshold: 1, keys: ['ann'], satisfied: true},
      ])
      expect(r.decision.approvals).to.deep.equal([{key: 'ann', keyId: keys.ann!.public.keyId, role: 'approver', source: 'ann-approver.approval', eligible: true}])
    })
  })

  describe('when the author approves their own digest', () => {
    it('does not count it and refuses with APPROVALS_NOT_SATISFIED (exit 5), naming separation of duties', async () => {
      const e = await thrown(async () => verify([await sig('sec'), await approval('sec', 'approver')]))
      expect(e).to.be.instanceOf(GovernanceError)
      expect(e.code).to.equal('APPROVALS_NOT_SATISFIED')
      expect(e.exit).to.equal(5)
      expect(e.message).to.contain("scope 'org': needs 1 distinct 'approver' approval for registry.example.com/policies/org (tier org), got none")
      expect(e.message).to.contain(`approval not counted: key 'sec' (${keys.sec!.public.keyId}) signed this digest (its author) and cannot also approve it: separation of duties`)
      const d = (e.details as {decision: {approvals: Array<{reason: string; eligible: boolean}>}}).decision
      expect(d.approvals).to.have.length(1)
      expect(d.approvals[0]).to.include({eligible: false, reason: 'self-approval'})
    })
  })

  describe('when fewer distinct approvers than the quorum approved', () => {
    it('refuses, counting the same approver once', async () => {
      const ann = await approval('ann', 'approver')
      const e = await thrown(async () => verify([await sig('sec2'), ann, {...ann, source: 'again'}], team))
      expect(e.code).to.equal('APPROVALS_NOT_SATISFIED')
      expect(e.message.split('\n')[0]).to.equal("scope 'teams': needs 2 distinct 'approver' approvals for registry.example.com/policies/teams/a (tier team), got 1: key 'ann'")
      expect(verify([await sig('sec2'), ann, await approval('ben', 'approver')], team).decision.satisfied).to.equal(true)
    })
  })

  describe('when an approval claims a role its key does not hold', () => {
    it('refuses it as role-not-held', async () => {
      const e = await thrown(async () => verify([await sig('sec'), await approval('ann', 'security')]))
      expect(e.message).to.contain(`approval not counted: key 'ann' (${keys.ann!.public.keyId}) approved as 'security', a role the trust policy does not give it (its roles: approver)`)
    })
    it('refuses an approval that names no role', async () => {
      const d = evaluateTrust(policy, org, [
        {kind: 'signatures', signer: {...keys.sec2!.public}, source: 's'},
        {kind: 'approvals', signer: {...keys.ann!.public}, source: 'a'},
      ])
      expect(d.satisfied).to.equal(false)
      expect(d.approvals[0]).to.include({eligible: false, reason: 'no-role'})
    })
  })

  describe('when one key approves a digest in two roles', () => {
    it('counts only the first: one key fills one role per digest', async () => {
      const d = evaluateTrust(policy, org, [
        {kind: 'signatures', signer: {...keys.sec2!.public}, source: 's'},
        {kind: 'approvals', signer: {...keys.both!.public}, source: 'a1', role: 'security'},
        {kind: 'approvals', signer: {...keys.both!.public}, source: 'a2', role: 'approver'},
      ])
      expect(d.approvals.map((a) => [a.source, a.eligible, a.reason])).to.deep.equal([
        ['a1', true, undefined],
        ['a2', false, 'duplicate'],
      ])
      expect(d.satisfied).to.equal(false)
    })
  })

  describe('when the approver key is revoked', () => {
    it('refuses the approval and names the revocation', async () => {
      const e = await thrown(async () => verify([await sig('sec2'), await approval('gone', 'approver')]))
      expect(e.message).to.match(/refused: key 'gone' .* was revoked at 2024-01-01T00:00:00.000Z: left/)
      expect((e.details as {decision: {approvals: Array<{reason: string}>}}).decision.approvals[0]!.reason).to.equal('revoked')
    })
  })

  describe('when the approval is for another digest', () => {
    it('rejects it: an approval binds to the exact digest', async () => {
      const e = await thrown(async () => verify([await sig('sec2'), await approval('ann', 'approver', otherDigest)]))
      expect(e.code).to.equal('APPROVALS_NOT_SATISFIED')
      expect(e.message).to.match(/rejected: ann-approver\.approval: the signature is valid, but the statement's subjects \(sha256:e{64}\) do not include/)
    })
  })

  describe('when the signature requirement is not met', () => {
    it('refuses with TRUST_NOT_SATISFIED (exit 2) even when approvals are there', async () => {
      const e = await thrown(async () => verify([await approval('ann', 'approver')]))
      expect(e).to.be.instanceOf(VerificationError)
      expect(e.code).to.equal('TRUST_NOT_SATISFIED')
      expect(e.exit).to.equal(2)
    })
  })

  describe('when the change is an emergency', () => {
    const emergency = {...org, emergency: 'INC-42'}
    it('accepts a security signature alone through the emergency path, flagged pending', async () => {
      const r = verify([await sig('sec2')], emergency)
      expect(r.decision.satisfied).to.equal(true)
      expect(r.decision.scopes[0]).to.deep.include({via: 'emergency', satisfied: true})
      expect(r.decision.scopes[0]!.emergency!.requirements).to.deep.equal([{kind: 'signatures', role: 'security', threshold: 1, keys: ['sec2'], satisfied: true}])
      expect(r.decision.emergency).to.deep.equal({incident: 'INC-42', scopes: ['org'], pendingApproval: true})
    })
    it('is no longer pending once the normal requirements are met by a retroactive approval', async () => {
      const r = verify([await sig('sec2'), await approval('ann', 'approver')], emergency)
      expect(r.decision.scopes[0]!.via).to.equal('require')
      expect(r.decision.emergency).to.deep.equal({incident: 'INC-42', scopes: [], pendingApproval: false})
    })
    it('still needs the security key on the emergency path', async () => {
      const e = await thrown(async () => verify([await sig('ann')], emergency))
      expect(e.message).to.contain("scope 'org' (emergency path, incident INC-42): needs 1 distinct 'security' signature")
    })
    it('is refused where the scope has no emergency path', async () => {
      const e = await thrown(async () => verify([await sig('sec2')], {...team, emergency: 'INC-42'}))
      expect(e.message).to.contain("scope 'teams' has no emergency path: the emergency change (incident INC-42) needs its normal requirements")
    })
    it('is never used for a change that is not marked as an emergency', async () => {
      const e = await thrown(async () => verify([await sig('sec2')]))
      expect(e.code).to.equal('APPROVALS_NOT_SATISFIED')
    })
  })

  describe('#onlyApprovalsMissing', () => {
    it('is false for a satisfied decision and for a decision without scopes', async () => {
      expect(onlyApprovalsMissing(verify([await sig('sec2'), await approval('ann', 'approver')]).decision)).to.equal(false)
      expect(onlyApprovalsMissing(evaluateTrust(policy, {display: 'x'}, []))).to.equal(false)
    })
  })

  describe('#parseTrustPolicy', () => {
    it('reads approvals, emergency and protected', () => {
      const s = policy.scopes[0]!
      expect(s.require).to.deep.equal({signatures: {security: 1}, approvals: {approver: 1}})
      expect(s.emergency).to.deep.equal({signatures: {security: 1}})
      const p = parseTrustPolicy(`apiVersion: aibox.dev/v1\nkind: TrustPolicy\nkeys:\n${key('ann', 'approver')}scopes:\n  - name: s\n    protected: false\n    require: {signatures: {approver: 1}}\n`, 'p.yaml')
      expect(p.scopes[0]!.protected).to.equal(false)
    })
    it('refuses requirements that need the same key as signer and approver', async () => {
      const text = `apiVersion: aibox.dev/v1\nkind: TrustPolicy\nkeys:\n${key('both', 'approver, security')}scopes:\n  - name: s\n    require:\n      signatures: {security: 1}\n      approvals: {approver: 1}\n`
      const e = await thrown(async () => parseTrustPolicy(text, 'p.yaml'))
      expect(e).to.be.instanceOf(ValidationError)
      expect(e.message).to.contain('/scopes/0/require: can never be satisfied: signatures and approvals together need 2 distinct keys')
    })
    it('checks the roles and satisfiability of the emergency block', async () => {
      const text = `apiVersion: aibox.dev/v1\nkind: TrustPolicy\nkeys:\n${key('ann', 'approver')}scopes:\n  - name: s\n    require: {signatures: {approver: 1}}\n    emergency: {signatures: {securty: 1}}\n`
      const e = await thrown(async () => parseTrustPolicy(text, 'p.yaml'))
      expect(e.message).to.contain("/scopes/0/emergency/signatures/securty: unknown role 'securty'")
    })
  })
})

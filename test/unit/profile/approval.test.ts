import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {GovernanceError} from '../../../src/errors.js'
import {createProfileApproval, verifyProfileApprovals} from '../../../src/profile/approval.js'
import {parseTrustPolicy} from '../../../src/trust/policy.js'
import {PUB, privateKey} from '../../helpers/policy-fixtures.js'
import {rejection} from '../../helpers/expect-error.js'
import {tmpdir} from '../../helpers/tmp.js'

const STACK = `sha256:${'a'.repeat(64)}`
const NOW = new Date('2026-03-01T12:00:00Z')

function trust(extra = '') {
  return parseTrustPolicy(
    `apiVersion: aibox.dev/v1
kind: TrustPolicy
keys:
  carol: {path: ${PUB('carol')}, roles: [org-admin]${extra}}
  ci: {path: ${PUB('ci')}, roles: [org-admin]}
  bob: {path: ${PUB('bob')}, roles: [approver]}
scopes:
  - name: all
    match: {}
    require: {signatures: {org-admin: 1}}
`,
    'trust.yaml',
  )
}

async function approvalFile(dir: string, name: string, signer: string, o: {from?: string; to?: string; now?: Date; ttlMs?: number; actor?: string; stack?: string} = {}): Promise<string> {
  const {envelope} = createProfileApproval({
    stack: o.stack ?? STACK,
    refs: {org: 'registry.example.com/policies/org:stable'},
    from: o.from ?? 'audit-strict',
    to: o.to ?? 'dev-fast',
    ticket: 'CHG-1',
    reason: 'profiling',
    key: await privateKey(signer),
    actor: o.actor ?? `${signer}@ws`,
    keyName: signer,
    now: o.now ?? NOW,
    ...(o.ttlMs !== undefined ? {ttlMs: o.ttlMs} : {}),
  })
  const file = path.join(dir, name)
  fs.writeFileSync(file, JSON.stringify(envelope))
  return file
}

describe('profile approvals', () => {
  const check = (files: string[], t = trust(), actor = 'dev@ws', now = NOW) => verifyProfileApprovals(files, {trust: t, stack: STACK, from: 'audit-strict', to: 'dev-fast', actor, now})
  const refused = async (files: string[], code: string, message: RegExp, t = trust(), actor = 'dev@ws') => {
    const e = await rejection(() => check(files, t, actor), GovernanceError)
    expect(e.code).to.equal(code)
    expect(e.message).to.match(message)
  }

  describe('#verifyProfileApprovals', () => {
    it('accepts an org admin\'s approval of exactly this change, and counts one key once', async () => {
      const dir = tmpdir()
      const a = await approvalFile(dir, 'a.json', 'carol')
      const b = await approvalFile(dir, 'b.json', 'carol')
      const c = await approvalFile(dir, 'c.json', 'ci')
      const ok = check([a, b, c])
      expect(ok.map((x) => x.key)).to.deep.equal(['carol', 'ci'])
      expect(ok[0]!.sha256).to.match(/^sha256:[0-9a-f]{64}$/)
    })

    it('refuses a key without org-admin, an expired key, and an unknown signer', async () => {
      const dir = tmpdir()
      await refused([await approvalFile(dir, 'bob.json', 'bob')], 'ROLE_NOT_HELD', /key 'bob' .* does not hold the role 'org-admin'/)
      await refused([await approvalFile(dir, 'carol.json', 'carol')], 'KEY_NOT_VALID', /expired/, trust(', notAfter: "2026-02-01T00:00:00Z"'))
      await refused([await approvalFile(dir, 'mallory.json', 'mallory')], 'APPROVAL_SIGNATURE_INVALID', /does not verify with any key of the trust policy/)
    })

    it('refuses another stack or change, an expired one and one issued in the future', async () => {
      const dir = tmpdir()
      await refused([await approvalFile(dir, 's.json', 'carol', {stack: `sha256:${'b'.repeat(64)}`})], 'APPROVAL_MISMATCH', /another stack/)
      await refused([await approvalFile(dir, 'm.json', 'carol', {from: 'lab-default'})], 'APPROVAL_MISMATCH', /approves 'lab-default' → 'dev-fast'/)
      await refused([await approvalFile(dir, 'e.json', 'carol', {now: new Date(NOW.getTime() - 25 * 3_600_000)})], 'APPROVAL_EXPIRED', /expired at 2026-03-01T11:00:00.000Z/)
      await refused([await approvalFile(dir, 'f.json', 'carol', {now: new Date(NOW.getTime() + 3_600_000)})], 'APPROVAL_NOT_YET_VALID', /issued in the future/)
    })

    it('refuses the approval of the one asking (separation of duties), by actor or by key name', async () => {
      const dir = tmpdir()
      await refused([await approvalFile(dir, 'a.json', 'carol', {actor: 'dev@ws'})], 'SELF_APPROVAL', /separation of duties/)
      await refused([await approvalFile(dir, 'b.json', 'carol', {actor: 'someone@ws'})], 'SELF_APPROVAL', /separation of duties/, trust(), 'carol@laptop')
    })

    it('refuses files that are no approval', async () => {
      const dir = tmpdir()
      const junk = path.join(dir, 'junk.json')
      fs.writeFileSync(junk, '{"payloadType": "text/plain", "payload": "aGk=", "signatures": [{"sig": "aGk="}]}')
      await refused([junk, path.join(dir, 'missing.json')], 'APPROVAL_INVALID', /junk\.json: payload type "text\/plain"[\s\S]*missing\.json/)
    })
  })
})

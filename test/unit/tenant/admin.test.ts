import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {GovernanceError, InputError} from '../../../src/errors.js'
import {authorizeRead, checkAdminScope, isCrossTenant, signCrossRead, verifyCrossRead} from '../../../src/tenant/index.js'
import {loadTrustPolicy} from '../../../src/trust/index.js'
import {expectCode, expectCodeSync} from '../../helpers/expect-error.js'
import {KEY, PUB, privateKey} from '../../helpers/policy-fixtures.js'
import {tmpdir} from '../../helpers/tmp.js'

function trust(tenant?: string) {
  const dir = tmpdir()
  const file = path.join(dir, 'trust.yaml')
  fs.writeFileSync(
    file,
    `apiVersion: aibox.dev/v1
kind: TrustPolicy
${tenant ? `tenant: ${tenant}\n` : ''}keys:
  alice: {path: ${PUB('alice')}, roles: [security]}
  ci: {path: ${PUB('ci')}, roles: [tenant-admin]}
  carol: {path: ${PUB('carol')}, roles: [tenant-admin], notAfter: "2020-01-01T00:00:00Z"}
scopes:
  - name: all
    require: {signatures: {security: 1}}
`,
  )
  return {file, policy: loadTrustPolicy(file), dir}
}

const statement = {actor: 'dana', fromTenant: 'acme', toTenant: 'beta', reference: 'oci:/p:stable', reason: 'SEC-1', time: '2026-01-01T00:00:00.000Z', operation: 'pull' as const}

describe('tenant admin', function () {
  this.timeout(30_000)

  describe('#isCrossTenant', () => {
    it('is a read of another tenant\'s policy with a tenant configured; never tenant-global, an untagged policy or no tenant', () => {
      expect(isCrossTenant('acme', 'beta')).to.equal(true)
      expect(isCrossTenant('acme', 'acme')).to.equal(false)
      expect(isCrossTenant('acme', 'tenant-global')).to.equal(false)
      expect(isCrossTenant('acme', undefined)).to.equal(false)
      expect(isCrossTenant(undefined, 'beta')).to.equal(false)
    })
  })

  describe('#checkAdminScope', () => {
    it('needs a reason, a tenant and a trust policy of the same tenant', () => {
      const t = trust('acme')
      expect(checkAdminScope({}, 'acme')).to.equal(undefined)
      expectCodeSync(() => checkAdminScope({reason: 'x'}, 'acme'), InputError, 'REASON_WITHOUT_ADMIN_KEY')
      expectCodeSync(() => checkAdminScope({keyFile: KEY('ci'), reason: '  ', trust: t.policy}, 'acme'), InputError, 'REASON_REQUIRED')
      expectCodeSync(() => checkAdminScope({keyFile: KEY('ci'), reason: 'x', trust: t.policy}, undefined), InputError, 'NO_TENANT')
      expectCodeSync(() => checkAdminScope({keyFile: KEY('ci'), reason: 'x'}, 'acme'), InputError, 'TENANT_ADMIN_NEEDS_TRUST')
      expectCodeSync(() => checkAdminScope({keyFile: KEY('ci'), reason: 'x', trust: t.policy}, 'beta'), InputError, 'TRUST_TENANT_MISMATCH')
      expect(checkAdminScope({keyFile: KEY('ci'), reason: ' x ', trust: t.policy}, 'acme')).to.deep.include({keyFile: KEY('ci'), reason: 'x'})
    })
  })

  describe('#signCrossRead / #verifyCrossRead', () => {
    it('accepts a statement signed by a valid key holding tenant-admin', async () => {
      const signed = signCrossRead(statement, await privateKey('ci'))
      expect(verifyCrossRead(signed.envelope, trust().policy, new Date()).name).to.equal('ci')
      expect(signed.digest).to.match(/^sha256:[0-9a-f]{64}$/)
    })
    it('refuses a key without the role, an expired one, one the trust policy does not know, and a changed statement (exit 5)', async () => {
      const t = trust().policy
      const [alice, carol, mallory, ci] = [await privateKey('alice'), await privateKey('carol'), await privateKey('mallory'), await privateKey('ci')]
      expectCodeSync(() => verifyCrossRead(signCrossRead(statement, alice).envelope, t, new Date()), GovernanceError, 'TENANT_ADMIN_ROLE_NOT_HELD', /key 'alice'/)
      expectCodeSync(() => verifyCrossRead(signCrossRead(statement, carol).envelope, t, new Date()), GovernanceError, 'TENANT_ADMIN_KEY_NOT_VALID', /expired/)
      expectCodeSync(() => verifyCrossRead(signCrossRead(statement, mallory).envelope, t, new Date()), GovernanceError, 'TENANT_ADMIN_KEY_NOT_TRUSTED')
      const env = JSON.parse(signCrossRead(statement, ci).envelope)
      env.payload = Buffer.from(JSON.stringify({...statement, toTenant: 'gamma'})).toString('base64')
      expectCodeSync(() => verifyCrossRead(JSON.stringify(env), t, new Date()), GovernanceError, 'TENANT_ADMIN_KEY_NOT_TRUSTED')
    })
  })

  describe('#authorizeRead', () => {
    it('passes reads within the tenant, and refuses a cross-tenant read without an admin scope (exit 5 CROSS_TENANT)', async () => {
      const check = {reference: 'oci:/p:stable', digest: null, version: null, operation: 'pull' as const}
      expect(await authorizeRead({...check, tenant: 'acme', policyTenant: 'acme'})).to.equal(undefined)
      expect(await authorizeRead({...check, tenant: 'acme', policyTenant: 'tenant-global'})).to.equal(undefined)
      const e = await expectCode(authorizeRead({...check, tenant: 'acme', policyTenant: 'beta'}), GovernanceError, 'CROSS_TENANT', /belongs to tenant beta, not to the configured tenant acme/)
      expect(e.exit).to.equal(5)
    })
    it('allows it with a tenant-admin key and logs policy.tenant.cross-read with the signed statement', async () => {
      const t = trust('acme')
      const log = path.join(t.dir, 'audit.jsonl')
      const r = await authorizeRead({
        reference: 'oci:/p:stable',
        digest: `sha256:${'a'.repeat(64)}`,
        version: '1.0.0',
        operation: 'inspect',
        tenant: 'acme',
        policyTenant: 'beta',
        admin: {keyFile: KEY('ci'), reason: 'SEC-1', trust: t.policy, password: 'test'},
        audit: {log, actor: 'dana'},
        now: new Date('2026-01-01T00:00:00Z'),
      })
      expect(r).to.deep.equal({actor: 'dana', fromTenant: 'acme', toTenant: 'beta', reference: 'oci:/p:stable', reason: 'SEC-1', time: '2026-01-01T00:00:00.000Z', operation: 'inspect', keyId: t.policy.keys.find((k) => k.name === 'ci')!.keyId, key: 'ci'})
      const [entry] = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
      expect(entry).to.include({event: 'policy.tenant.cross-read', actor: 'dana', tenant: 'acme', fromTenant: 'acme', toTenant: 'beta', operation: 'inspect', key: 'ci', reason: 'SEC-1', ref: 'oci:/p:stable'})
      expect(verifyCrossRead(entry.proof, t.policy, new Date()).name).to.equal('ci')
    })
  })
})

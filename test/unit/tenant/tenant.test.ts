import path from 'node:path'

import {expect} from 'chai'

import {InputError, VerificationError} from '../../../src/errors.js'
import {GLOBAL_TENANT, assertTenantPolicy, assertTrustTenant, resolveTenant, tenantCacheDir, tenantOwns, validateTenant} from '../../../src/tenant/index.js'
import {expectCodeSync} from '../../helpers/expect-error.js'

describe('tenant', () => {
  describe('#validateTenant / #resolveTenant', () => {
    it('takes --tenant over AIBOX_TENANT over the configuration, and undefined when none is set', () => {
      expect(resolveTenant({flag: 'acme', env: {AIBOX_TENANT: 'beta'}, config: 'gamma'})).to.equal('acme')
      expect(resolveTenant({env: {AIBOX_TENANT: 'beta'}, config: 'gamma'})).to.equal('beta')
      expect(resolveTenant({env: {AIBOX_TENANT: ''}, config: 'gamma'})).to.equal('gamma')
      expect(resolveTenant({env: {}})).to.equal(undefined)
    })
    it('refuses a name that is not a DNS label, naming where it came from', () => {
      expectCodeSync(() => validateTenant('../etc', '--tenant'), InputError, 'INVALID_TENANT', /--tenant: "\.\.\/etc" is not a tenant name/)
      expectCodeSync(() => resolveTenant({env: {AIBOX_TENANT: 'Acme'}}), InputError, 'INVALID_TENANT', /AIBOX_TENANT/)
      expect(validateTenant(GLOBAL_TENANT, 'x')).to.equal('tenant-global')
    })
  })

  describe('#tenantCacheDir', () => {
    it('is <root>/tenants/<tenant>, or the root itself without a tenant (unchanged)', () => {
      expect(tenantCacheDir('/c', 'acme')).to.equal(path.join('/c', 'tenants', 'acme'))
      expect(tenantCacheDir('/c', undefined)).to.equal('/c')
    })
  })

  describe('#assertTenantPolicy', () => {
    it('accepts the tenant\'s own and tenant-global policies, and anything without a configured tenant', () => {
      expect(tenantOwns('acme', 'acme')).to.equal(true)
      expect(tenantOwns('acme', GLOBAL_TENANT)).to.equal(true)
      expect(tenantOwns('acme', 'beta')).to.equal(false)
      expect(tenantOwns('acme', undefined)).to.equal(false)
      for (const t of ['acme', GLOBAL_TENANT]) assertTenantPolicy('acme', t, 'r', 'start')
      for (const t of ['beta', undefined]) assertTenantPolicy(undefined, t, 'r', 'start')
    })
    it('refuses another tenant\'s policy (exit 2 TENANT_MISMATCH) naming the reference and both tenants', () => {
      const e = expectCodeSync(() => assertTenantPolicy('acme', 'beta', 'oci:/p:stable', 'start'), VerificationError, 'TENANT_MISMATCH', /oci:\/p:stable belongs to tenant beta .*not to the configured tenant acme/)
      expect(e.exit).to.equal(2)
      expect(e.details).to.deep.equal({reference: 'oci:/p:stable', tenant: 'acme', policyTenant: 'beta'})
      expectCodeSync(() => assertTenantPolicy('acme', 'beta', 'policy x', 'import'), VerificationError, 'TENANT_MISMATCH', /the whole import is refused and nothing is stored/)
    })
    it('refuses a policy without a tenant (TENANT_MISSING), suggesting metadata.tenant or tenant-global', () => {
      const e = expectCodeSync(() => assertTenantPolicy('acme', undefined, 'r', 'start'), VerificationError, 'TENANT_MISSING', /names no tenant/)
      expect(e.suggestions?.join(' ')).to.contain('metadata.tenant: acme').and.contain('tenant-global')
    })
  })

  describe('#assertTrustTenant', () => {
    it('refuses a trust policy of another tenant (exit 1), accepts its own, one without a tenant, and anything without a configured tenant', () => {
      expectCodeSync(() => assertTrustTenant('acme', {file: 't.yaml', tenant: 'beta'}), InputError, 'TRUST_TENANT_MISMATCH', /'t\.yaml' is tenant beta's, but the configured tenant is acme/)
      assertTrustTenant('acme', {file: 't.yaml', tenant: 'acme'})
      assertTrustTenant('acme', {file: 't.yaml'})
      assertTrustTenant(undefined, {file: 't.yaml', tenant: 'beta'})
      assertTrustTenant('acme', undefined)
    })
  })
})

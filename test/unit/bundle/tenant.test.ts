import fs from 'node:fs'

import {expect} from 'chai'

import {canonicalJson, loadBundleText} from '../../../src/bundle/index.js'
import {packPolicy} from '../../../src/distribute/index.js'
import {ValidationError} from '../../../src/errors.js'
import {ANNOTATION} from '../../../src/oci/index.js'
import {expectCode} from '../../helpers/expect-error.js'
import {ORG_BASELINE} from '../../helpers/policy-fixtures.js'

const withTenant = (tenant: string) => fs.readFileSync(ORG_BASELINE, 'utf8').replace(/^ {2}tier: org$/m, `  tier: org\n  tenant: ${tenant}`)

describe('metadata.tenant (README "Tenants")', () => {
  describe('#loadBundleText', () => {
    it('reads the tenant of an aibox bundle, and leaves it out when the bundle names none', () => {
      expect(loadBundleText(withTenant('acme'), 'acme.yaml').tenant).to.equal('acme')
      expect(loadBundleText(withTenant('tenant-global'), 'g.yaml').tenant).to.equal('tenant-global')
      expect(loadBundleText(fs.readFileSync(ORG_BASELINE, 'utf8'), 'none.yaml')).to.not.have.property('tenant')
    })
    it('makes the tenant part of the signed content: another tenant is another content digest', () => {
      const a = loadBundleText(withTenant('acme'), 'a.yaml')
      const b = loadBundleText(withTenant('beta'), 'b.yaml')
      const none = loadBundleText(fs.readFileSync(ORG_BASELINE, 'utf8'), 'n.yaml')
      expect(new Set([a.digest, b.digest, none.digest]).size).to.equal(3)
      expect(canonicalJson(a.document)).to.contain('"tenant":"acme"')
    })
    for (const bad of ['Acme', 'acme_corp', '-acme', 'a'.repeat(64), '""']) {
      it(`refuses ${bad.length > 20 ? 'a 64-character name' : JSON.stringify(bad)} with the field's location`, async () => {
        const e = await expectCode(Promise.resolve().then(() => loadBundleText(withTenant(bad), 'bad.yaml')), ValidationError, 'INVALID_BUNDLE')
        expect(e.problems.map((x) => x.pointer)).to.include('/metadata/tenant')
      })
    }
  })

  describe('#packPolicy', () => {
    it('annotates the tenant (informational) only when the bundle names one', async () => {
      const p = await packPolicy(loadBundleText(withTenant('acme'), 'acme.yaml'), {env: {}})
      expect(p.annotations[ANNOTATION.tenant]).to.equal('acme')
      expect(p.tenant).to.equal('acme')
      const n = await packPolicy(loadBundleText(fs.readFileSync(ORG_BASELINE, 'utf8'), 'n.yaml'), {env: {}})
      expect(n.annotations).to.not.have.property(ANNOTATION.tenant)
    })
  })
})

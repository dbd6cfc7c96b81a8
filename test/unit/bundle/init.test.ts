import {expect} from 'chai'

import {scaffoldBundle} from '../../../src/bundle/init.js'
import {loadBundleText} from '../../../src/bundle/load.js'
import {checkStack} from '../../../src/bundle/tighten.js'

describe('init', () => {
  describe('#scaffoldBundle', () => {
    for (const tier of ['org', 'team', 'project'] as const) {
      for (const format of ['yaml', 'json'] as const) {
        it(`writes a valid ${tier} bundle as ${format}`, () => {
          const s = scaffoldBundle({name: `my-${tier}`, tier, format})
          const b = loadBundleText(s.text, `x.${format}`)
          expect(b).to.include({kind: 'aibox-bundle', tier, name: `my-${tier}`, version: '0.1.0'})
        })
      }
    }
    it('gives the same content in YAML and JSON', () => {
      const y = loadBundleText(scaffoldBundle({name: 'a', tier: 'org'}).text, 'a.yaml')
      const j = loadBundleText(scaffoldBundle({name: 'a', tier: 'org', format: 'json'}).text, 'a.json')
      expect(y.digest).to.equal(j.digest)
    })
    it('scaffolds a team and a project that pass the tighten-only check under the org scaffold', () => {
      const stack = (['org', 'team', 'project'] as const).map((tier) => loadBundleText(scaffoldBundle({name: tier, tier}).text, `${tier}.yaml`))
      expect(checkStack(stack).violations).to.deep.equal([])
    })
  })
})

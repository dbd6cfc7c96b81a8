import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {SCHEMA_IDS, schemaDirectory, validateValue, validator} from '../../../src/bundle/schema.js'
import {ROOT} from '../../helpers/cli.js'

describe('schema', () => {
  describe('#schemaDirectory', () => {
    it('finds the package schemas/', () => {
      expect(schemaDirectory()).to.equal(path.join(ROOT, 'schemas'))
      expect(fs.existsSync(path.join(schemaDirectory(), 'policy-bundle.schema.json'))).to.equal(true)
    })
  })

  describe('#validator', () => {
    it('compiles every schema the loader uses', () => {
      for (const id of Object.values(SCHEMA_IDS)) expect(validator(id)).to.be.a('function')
      expect(validator('https://aibox.dev/schemas/effective-policy.schema.json')).to.be.a('function')
    })
  })

  describe('#validateValue', () => {
    it('accepts a minimal bundle', () => {
      expect(validateValue({apiVersion: 'aibox.dev/v1', kind: 'PolicyBundle', metadata: {name: 'x', version: '1.0.0', tier: 'org'}}, SCHEMA_IDS.bundle)).to.deep.equal([])
    })
    it('maps ajv errors to readable messages with pointers', () => {
      const p = validateValue(
        {apiVersion: 'aibox.dev/v1', kind: 'PolicyBundle', metadata: {name: 'x', version: '1.0', tier: 'org', extra: 1}, rules: [{id: 'r', match: {toolName: 'x'}, verdict: 'deny'}], defaultVerdict: 'maybe'},
        SCHEMA_IDS.bundle,
        'b.json',
      )
      expect(p.map((x) => `${x.pointer}: ${x.message}`)).to.deep.equal([
        '/metadata/extra: unknown key "extra"; allowed here: name, version, tier, tenant, description',
        '/metadata/version: "1.0" is not valid: expected a semantic version such as 1.4.0 (quote it in YAML)',
        '/rules/0: missing required key "reason"',
        '/defaultVerdict: must be one of "allow", "deny" (got "maybe")',
      ])
      expect(p[0].file).to.equal('b.json')
    })
    it('validates hosts, quantities, durations and paths by pattern', () => {
      const policy = (p: object) => validateValue({version: 1, ...p}, SCHEMA_IDS.aiboxPolicy).map((x) => x.pointer)
      expect(policy({network: {allow: [{id: 'a', hosts: ['*', 'A.com', '*.ok.com', 'x.*.com', 'ok.com'], ports: [1, 65535]}]}})).to.deep.equal(['/network/allow/0/hosts/0', '/network/allow/0/hosts/1', '/network/allow/0/hosts/3'])
      expect(policy({resources: {cpu: '500m', memory: '8Gi', disk: 'lots'}})).to.deep.equal(['/resources/disk'])
      expect(policy({credentials: {git_token_ttl: '1h30m', llm_api_key_ttl: '1d'}})).to.deep.equal(['/credentials/llm_api_key_ttl'])
      expect(policy({filesystem: {workspace_root: '/a/./b', deny: ['/ok', 'rel', '/x/..']}})).to.deep.equal(['/filesystem/workspace_root', '/filesystem/deny/1', '/filesystem/deny/2'])
    })
  })
})

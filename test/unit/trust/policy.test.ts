import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {ValidationError} from '../../../src/errors.js'
import {generateKeyPair} from '../../../src/sign/index.js'
import {BUILTIN_ROLES, loadTrustPolicy, parseTrustPolicy} from '../../../src/trust/index.js'
import {ROOT, TESTDATA} from '../../helpers/cli.js'
import {tmpdir} from '../../helpers/tmp.js'

const indent = (pem: string, n = 6) => pem.trim().split('\n').map((l) => `${' '.repeat(n)}${l}`).join('\n')
const k1 = generateKeyPair().public
const k2 = generateKeyPair('ed25519').public

function policy(body: string): string {
  return `apiVersion: aibox.dev/v1\nkind: TrustPolicy\n${body}`
}

function problems(text: string, file = 'trust.yaml'): string[] {
  try {
    parseTrustPolicy(text, file)
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError)
    expect((err as ValidationError).code).to.equal('TRUST_POLICY_INVALID')
    expect((err as ValidationError).exit).to.equal(1)
    return (err as ValidationError).message.split('\n').slice(1).map((l) => l.trim())
  }
  expect.fail('expected TRUST_POLICY_INVALID')
}

const twoKeys = `keys:
  alice:
    publicKey: |
${indent(k1.pem)}
    roles: [security, approver]
  bob:
    publicKey: |
${indent(k2.pem)}
    roles: [approver]
`

describe('trust/policy', () => {
  describe('#loadTrustPolicy', () => {
    describe('when the file is the README example', () => {
      it('loads, and README.md shows it byte for byte', () => {
        const file = path.join(TESTDATA, 'trust', 'example.yaml')
        const p = loadTrustPolicy(file)
        expect(p.keys.map((k) => k.name)).to.deep.equal(['alice', 'bob', 'carol', 'ci', 'mallory'])
        expect(p.keys.find((k) => k.name === 'mallory')!.revoked).to.deep.equal({reason: 'laptop stolen', revokedAt: new Date('2025-06-01T00:00:00Z')})
        expect(p.scopes.map((s) => s.name)).to.deep.equal(['org-baseline', 'team-policies', 'everything'])
        expect(p.scopes[1].match).to.deep.equal({registry: ['registry.example.com'], repository: ['policies/teams/*'], tiers: ['team']})
        expect(p.roles).to.deep.equal([...BUILTIN_ROLES, 'release-bot'])
        const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
        expect(readme).to.contain(fs.readFileSync(file, 'utf8'))
      })
    })
    describe('when the file does not exist', () => {
      it('throws TRUST_POLICY_NOT_FOUND (exit 3)', () => {
        expect(() => loadTrustPolicy('/nonexistent/trust.yaml')).to.throw(/trust policy '\/nonexistent\/trust.yaml' does not exist/).with.property('exit', 3)
      })
    })
  })

  describe('#parseTrustPolicy', () => {
    describe('when the policy is valid', () => {
      it('resolves key paths relative to the policy file', () => {
        const dir = tmpdir()
        fs.mkdirSync(path.join(dir, 'keys'))
        fs.writeFileSync(path.join(dir, 'keys', 'a.pub'), k1.pem)
        const file = path.join(dir, 'trust.yaml')
        fs.writeFileSync(file, policy(`keys:\n  a:\n    path: keys/a.pub\n    roles: [author]\nscopes:\n  - name: all\n    require: {signatures: {author: 1}}\n`))
        const p = loadTrustPolicy(file)
        expect(p.keys[0].keyId).to.equal(k1.keyId)
        expect(p.scopes[0]).to.deep.equal({name: 'all', match: {}, require: {signatures: {author: 1}}})
      })
    })

    describe('when the YAML itself is bad', () => {
      it('reports duplicate keys, anchors, aliases and tags with line and column', () => {
        const text = policy(`keys: &k\n  a:\n    publicKey: x\n    roles: [author]\n  a:\n    publicKey: y\n    roles: [author]\nscopes: *k\nextra: !!binary aGk=\n`)
        const p = problems(text)
        expect(p).to.deep.equal([
          'trust.yaml:4:3 /keys: anchors (&name) are not allowed',
          'trust.yaml:7:3 /keys/a: duplicate key "a" (first defined at line 4)',
          'trust.yaml:10:9 /scopes: aliases (*name) are not allowed',
          'trust.yaml:11:17 /extra: YAML tag !!binary is not allowed: only JSON-compatible values (strings, numbers, booleans, null)',
        ])
      })
      it('reports a syntax error with its line', () => {
        expect(problems('apiVersion: [\n')[0]).to.match(/^trust\.yaml:\d+:\d+: /)
      })
      it('refuses an empty file and several documents, with their lines', () => {
        expect(problems('')).to.deep.equal(['trust.yaml:1:1: empty document: expected a YAML mapping'])
        expect(problems('a: 1\n---\nb: 2\n')).to.deep.equal(["trust.yaml:3:1: expected a single YAML document, found 2 (remove the extra '---' sections)"])
      })
    })

    describe('when the schema is violated', () => {
      it('reports every problem once, with line and pointer', () => {
        const text = `apiVersion: aibox.dev/v2
kind: TrustPolicy
keys:
  Alice:
    publicKey: x
    roles: [author]
  bob:
    publicKey: y
    roles: []
    color: blue
scopes:
  - name: s
    match: {tiers: [galaxy]}
    require: {signatures: {author: 0}, approvals: {approver: 1}}
`
        expect(problems(text)).to.deep.equal([
          'trust.yaml:1:13 /apiVersion: must be "aibox.dev/v1"',
          "trust.yaml:4:3 /keys/Alice: invalid name 'Alice' (lower-case letters, digits, '.', '_', '-')",
          "trust.yaml:10:5 /keys/bob/color: unknown field 'color'",
          'trust.yaml:9:12 /keys/bob/roles: must NOT have fewer than 1 items',
          'trust.yaml:13:21 /scopes/0/match/tiers/0: must be "org" or "team" or "project"',
          "trust.yaml:14:40 /scopes/0/require/approvals: unknown field 'approvals'",
          'trust.yaml:14:36 /scopes/0/require/signatures/author: must be >= 1',
        ])
      })
      it('refuses a date that is not RFC 3339', () => {
        const text = policy(`keys:\n  a:\n    publicKey: |\n${indent(k1.pem)}\n    roles: [author]\n    notAfter: next tuesday\nscopes:\n  - name: s\n    require: {signatures: {author: 1}}\n`)
        expect(problems(text)).to.deep.equal(['trust.yaml:11:15 /keys/a/notAfter: must match format "date-time"'])
      })
    })

    describe('when the policy does not make sense', () => {
      it('reports bad keys, unknown roles, duplicates, impossible thresholds and unknown revocations', () => {
        const text = policy(`roles: [security]
keys:
  alice:
    publicKey: |
${indent(k1.pem)}
    roles: [securty]
    notBefore: 2026-01-01T00:00:00Z
    notAfter: 2025-01-01T00:00:00Z
  alias:
    publicKey: |
${indent(k1.pem)}
    roles: [author]
  both:
    publicKey: x
    path: y
    roles: [author]
  broken:
    publicKey: |
      -----BEGIN PUBLIC KEY-----
      MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
      -----END PUBLIC KEY-----
    roles: [author]
  missing:
    path: nope.pub
    roles: [author]
revoked:
  - {key: zed, reason: gone}
scopes:
  - name: s
    require: {signatures: {approver: 2, auditor: 1}}
  - name: s
    require: {signatures: {author: 1}}
`)
        const p = problems(text, '/tmp/x/trust.yaml')
        const joined = p.join('\n')
        expect(joined).to.contain("/roles/0: 'security' is a built-in role; do not declare it")
        expect(joined).to.contain("/keys/alice/roles/0: unknown role 'securty'")
        expect(joined).to.contain('/keys/alice/notAfter: notAfter (2025-01-01T00:00:00Z) must be after notBefore (2026-01-01T00:00:00Z)')
        expect(joined).to.contain(`/keys/alias: is the same public key as 'alice' (${k1.keyId})`)
        expect(joined).to.contain("/keys/both: needs exactly one of 'publicKey' (inline PEM) or 'path'")
        expect(joined).to.match(/\/keys\/broken\/publicKey: key 'broken': cannot parse the public key/)
        expect(joined).to.contain("/keys/missing/path: public key of 'missing' '/tmp/x/nope.pub' does not exist")
        expect(joined).to.contain("/revoked/0/key: unknown key 'zed'")
        expect(joined).to.contain("/scopes/0/require/signatures/auditor: unknown role 'auditor'")
        expect(joined).to.contain("/scopes/0/require/signatures: can never be satisfied: 'approver' needs 2 distinct key(s), 0 non-revoked key(s) hold it")
        expect(joined).to.contain("/scopes/1/name: duplicate scope name 's'")
        for (const line of p) expect(line).to.match(/^\/tmp\/x\/trust\.yaml:\d+:\d+ \//)
      })
      it('counts a key once across roles when checking satisfiability, and ignores revoked keys', () => {
        const oneKeyTwoRoles = policy(`${twoKeys.replace('roles: [approver]', 'roles: [author]')}scopes:\n  - name: s\n    require: {signatures: {security: 1, approver: 1}}\n`)
        expect(problems(oneKeyTwoRoles).join()).to.contain('(2 distinct keys in total, each counted once)')
        const revoked = policy(`${twoKeys}revoked:\n  - {key: bob, reason: left}\nscopes:\n  - name: s\n    require: {signatures: {approver: 2}}\n`)
        expect(problems(revoked).join()).to.contain("'approver' needs 2 distinct key(s), 1 non-revoked key(s) hold it")
      })
      it('accepts revocations by key id, hint or SSH fingerprint, even of keys it does not list', () => {
        const other = generateKeyPair().public
        const text = policy(`${twoKeys}revoked:\n  - {key: ${k2.fingerprint}, reason: a}\n  - {key: ${other.keyId}, reason: b}\nscopes:\n  - name: s\n    require: {signatures: {approver: 1}}\n`)
        const p = parseTrustPolicy(text, 't.yaml')
        expect(p.keys.find((k) => k.name === 'bob')!.revoked).to.deep.equal({reason: 'a'})
      })
    })
  })
})

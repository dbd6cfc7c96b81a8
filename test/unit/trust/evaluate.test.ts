import {expect} from 'chai'
import {createHash} from 'node:crypto'
import path from 'node:path'

import {AiboxError, VerificationError} from '../../../src/errors.js'
import {type PrivateKeyInfo, generateKeyPair, loadPrivateKey, signMessageBundle, signStatement, signSubjects} from '../../../src/sign/index.js'
import {
  APPROVAL_PREDICATE_TYPE,
  type TrustPolicy,
  evaluateTrust,
  globMatch,
  loadTrustPolicy,
  maxAssignment,
  parseTrustPolicy,
  statementKind,
  targetFromReference,
  verifyWithTrust,
} from '../../../src/trust/index.js'
import {TESTDATA} from '../../helpers/cli.js'

const data = Buffer.from('apiVersion: aibox.dev/v1\n')
const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
const indent = (pem: string) => pem.trim().split('\n').map((l) => `      ${l}`).join('\n')

function failure(fn: () => unknown): VerificationError {
  try {
    fn()
  } catch (err) {
    expect(err).to.be.instanceOf(VerificationError)
    expect((err as AiboxError).exit).to.equal(2)
    return err as VerificationError
  }
  expect.fail('expected a VerificationError')
}

async function sig(key: PrivateKeyInfo, source = key.public.keyId): Promise<{bytes: Buffer; source: string}> {
  return {bytes: Buffer.from(JSON.stringify(await signSubjects([{digest}], key))), source}
}

describe('trust/evaluate', () => {
  const keys: Record<string, PrivateKeyInfo> = {}
  for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) keys[name] = generateKeyPair(name === 'bob' ? 'ed25519' : 'ecdsa-p256')
  const org = {registry: 'registry.example.com', repository: 'policies/org', tier: 'org' as const}
  let policy: TrustPolicy
  before(() => {
    policy = parseTrustPolicy(
      `apiVersion: aibox.dev/v1
kind: TrustPolicy
keys:
  alice:
    roles: [security, approver]
    publicKey: |
${indent(keys.alice.public.pem)}
  bob:
    roles: [approver]
    publicKey: |
${indent(keys.bob.public.pem)}
  carol:
    roles: [approver]
    notAfter: 2020-01-01T00:00:00Z
    publicKey: |
${indent(keys.carol.public.pem)}
  dave:
    roles: [approver]
    notBefore: 2999-01-01T00:00:00Z
    publicKey: |
${indent(keys.dave.public.pem)}
  erin:
    roles: [approver, author]
    publicKey: |
${indent(keys.erin.public.pem)}
revoked:
  - {key: erin, reason: left the company, revokedAt: 2024-01-01T00:00:00Z}
scopes:
  - name: org-baseline
    match: {registry: registry.example.com, repository: "policies/org", tiers: [org]}
    require:
      signatures: {security: 1, approver: 1}
  - name: teams
    match: {registry: "*.example.com", repository: "policies/teams/**", tiers: [team]}
    require:
      signatures: {approver: 2}
`,
      'trust.yaml',
    )
  })

  describe('#verifyWithTrust', () => {
    describe('when the thresholds are met by distinct keys', () => {
      it('returns which keys satisfied which roles', async () => {
        const r = verifyWithTrust([await sig(keys.alice, 'a.json'), await sig(keys.bob, 'b.json')], policy, {artifact: data, target: org})
        expect(r.decision.satisfied).to.equal(true)
        expect(r.decision.target).to.equal('registry.example.com/policies/org (tier org)')
        expect(r.decision.scopes).to.deep.equal([
          {
            scope: 'org-baseline',
            satisfied: true,
            requirements: [
              {kind: 'signatures', role: 'security', threshold: 1, keys: ['alice'], satisfied: true},
              {kind: 'signatures', role: 'approver', threshold: 1, keys: ['bob'], satisfied: true},
            ],
            via: 'require',
          },
        ])
        expect(r.decision.accepted.map((a) => a.key).sort()).to.deep.equal(['alice', 'bob'])
      })
    })

    describe('when one key holds two required roles', () => {
      it('refuses alice alone for security + approver, and says why', async () => {
        const err = failure(() => verifyWithTrust([aliceSig!], policy, {artifact: data, target: org}))
        expect(err.message).to.equal(
          "scope 'org-baseline': needs 1 distinct 'approver' signature for registry.example.com/policies/org (tier org), got none ('alice' also holds 'approver' but was counted for another role: a key counts once)",
        )
      })
    })

    describe('when the same key signs twice', () => {
      it('counts it once (k-of-n distinct keys)', async () => {
        const teams = {registry: 'registry.example.com', repository: 'policies/teams/alpha', tier: 'team' as const}
        const err = failure(() => verifyWithTrust([bobSig!, {...bobSig!, source: 'again.json'}], policy, {artifact: data, target: teams}))
        expect(err.message.split('\n')[0]).to.equal(
          "scope 'teams': needs 2 distinct 'approver' signatures for registry.example.com/policies/teams/alpha (tier team), got 1: key 'bob'",
        )
        const ok = verifyWithTrust([bobSig!, aliceSig!], policy, {artifact: data, target: teams})
        expect(ok.decision.scopes[0].requirements[0].keys).to.deep.equal(['alice', 'bob'])
      })
    })

    describe('when a key is expired, not yet valid or revoked', () => {
      it('refuses each by name, with the date and reason', async () => {
        const sigs = [aliceSig!, await sig(keys.carol, 'carol.json'), await sig(keys.dave, 'dave.json'), await sig(keys.erin, 'erin.json')]
        const err = failure(() => verifyWithTrust(sigs, policy, {artifact: data, target: org}))
        const lines = err.message.split('\n')
        expect(lines[0]).to.match(/^scope 'org-baseline': needs 1 distinct 'approver' signature .* got none/)
        expect(lines.slice(1)).to.deep.equal([
          `refused: key 'carol' (${keys.carol.public.keyId}) expired at 2020-01-01T00:00:00.000Z (carol.json)`,
          `refused: key 'dave' (${keys.dave.public.keyId}) is not valid before 2999-01-01T00:00:00.000Z (dave.json)`,
          `refused: key 'erin' (${keys.erin.public.keyId}) was revoked at 2024-01-01T00:00:00.000Z: left the company (erin.json)`,
        ])
        const decision = (err.details as {decision: {refused: Array<{reason: string}>}}).decision
        expect(decision.refused.map((r) => r.reason)).to.deep.equal(['expired', 'not-yet-valid', 'revoked'])
      })
      it('evaluates validity at the given time', async () => {
        const sigs = [aliceSig!, await sig(keys.carol, 'carol.json')]
        expect(verifyWithTrust(sigs, policy, {artifact: data, target: org, now: new Date('2019-06-01T00:00:00Z')}).decision.satisfied).to.equal(true)
        // Revocation applies from revokedAt on: before it, erin still counted.
        expect(verifyWithTrust([aliceSig!, await sig(keys.erin)], policy, {artifact: data, target: org, now: new Date('2023-01-01T00:00:00Z')}).decision.satisfied).to.equal(true)
      })
    })

    describe('when a signature is invalid or by an unknown key', () => {
      it('rejects it, counts nothing for it, and lists it', async () => {
        const stranger = await sig(generateKeyPair(), 'stranger.json')
        const other = Buffer.from(JSON.stringify(await signSubjects([{digest: `sha256:${'f'.repeat(64)}`}], keys.bob)))
        const err = failure(() => verifyWithTrust([aliceSig!, stranger, {bytes: other, source: 'other-file.json'}], policy, {artifact: data, target: org}))
        expect(err.message).to.match(/rejected: stranger\.json: the DSSE signature does not verify with any of the keys/)
        expect(err.message).to.match(/rejected: other-file\.json: the signature is valid, but the statement's subjects/)
      })
    })

    describe('when no scope applies', () => {
      it('fails with TRUST_NO_SCOPE naming the scopes', async () => {
        const err = failure(() => verifyWithTrust([aliceSig!], policy, {artifact: data, target: {display: 'policy.yaml'}}))
        expect(err.code).to.equal('TRUST_NO_SCOPE')
        expect(err.message.split('\n')[0]).to.equal(
          "no scope of the trust policy applies to policy.yaml; scopes: 'org-baseline' (registry registry.example.com, repository policies/org, tiers org), 'teams' (registry *.example.com, repository policies/teams/**, tiers team)",
        )
        expect(err.suggestions!.join()).to.match(/--ref.*--tier/)
      })
    })

    describe('when a statement is not a plain signature', () => {
      it('does not count an attestation or approval as a signature', async () => {
        const slsa = Buffer.from(JSON.stringify(await signStatement({subjects: [{digest}], predicateType: 'https://slsa.dev/provenance/v1'}, keys.bob)))
        const approval = Buffer.from(JSON.stringify(await signStatement({subjects: [{digest}], predicateType: APPROVAL_PREDICATE_TYPE, predicate: {role: 'approver'}}, keys.bob)))
        const err = failure(() => verifyWithTrust([aliceSig!, {bytes: slsa, source: 's'}, {bytes: approval, source: 'a'}], policy, {artifact: data, target: org}))
        expect(err.message).to.match(/needs 1 distinct 'approver' signature/)
        const accepted = (err.details as {decision: {accepted: Array<{key: string; kinds: string[]}>}}).decision.accepted
        expect(accepted.find((a) => a.key === 'bob')!.kinds).to.deep.equal(['approvals', 'https://slsa.dev/provenance/v1'])
        // A message-signature bundle is a plain signature.
        const msg = Buffer.from(JSON.stringify(await signMessageBundle(data, keys.bob)))
        expect(verifyWithTrust([aliceSig!, {bytes: msg, source: 'm'}], policy, {artifact: data, target: org}).decision.satisfied).to.equal(true)
      })
    })
  })

  let aliceSig: {bytes: Buffer; source: string} | undefined
  let bobSig: {bytes: Buffer; source: string} | undefined
  before(async () => {
    aliceSig = await sig(keys.alice, 'alice.json')
    bobSig = await sig(keys.bob, 'bob.json')
  })

  describe('#evaluateTrust', () => {
    it('treats an unknown signer as refused', () => {
      const d = evaluateTrust(policy, org, [{kind: 'signatures', signer: {keyId: 'ffffffffffffffff', algorithm: 'ecdsa-p256', hint: 'h', fingerprint: 'f'}, source: 's'}])
      expect(d.refused[0]).to.deep.include({reason: 'unknown', keyId: 'ffffffffffffffff'})
      expect(d.satisfied).to.equal(false)
    })
  })

  describe('with the README example policy', () => {
    it('needs security + another approver + an author for the org tier', async function () {
      this.timeout(20_000)
      const p = loadTrustPolicy(path.join(TESTDATA, 'trust', 'example.yaml'))
      const load = (n: string) => loadPrivateKey(path.join(TESTDATA, 'trust', 'keys', `${n}.key`), {password: 'test'})
      const [alice, bob, ci, mallory] = await Promise.all(['alice', 'bob', 'ci', 'mallory'].map(load))
      const target = targetFromReference('registry.example.com/policies/org:1.4.0', 'org')
      const s = async (k: PrivateKeyInfo, n: string) => ({bytes: Buffer.from(JSON.stringify(await signSubjects([{digest}], k))), source: n})
      const ok = verifyWithTrust([await s(alice, 'a'), await s(bob, 'b'), await s(ci, 'c')], p, {artifact: data, target})
      expect(ok.decision.scopes.map((x) => [x.scope, x.satisfied])).to.deep.equal([['org-baseline', true], ['everything', true]])
      // mallory's key is revoked: her approval does not count.
      const sigs = [await s(alice, 'a'), await s(mallory, 'm'), await s(ci, 'c')]
      const e = failure(() => verifyWithTrust(sigs, p, {artifact: data, target}))
      expect(e.message).to.contain("scope 'org-baseline': needs 1 distinct 'approver' signature for registry.example.com/policies/org (tier org), got none")
      expect(e.message).to.contain("refused: key 'mallory'")
      expect(e.message).to.contain('laptop stolen')
    })
  })
})

describe('trust/match', () => {
  describe('#maxAssignment', () => {
    it('finds an assignment of distinct keys when a greedy one would fail', () => {
      // a holds both roles; b only security. Greedy a→security would leave approver empty.
      const r = maxAssignment({security: 1, approver: 1}, [{id: 'a', roles: ['security', 'approver']}, {id: 'b', roles: ['security']}])
      expect(r.total).to.equal(2)
      expect(Object.fromEntries(r.assigned)).to.deep.equal({security: ['b'], approver: ['a']})
    })
  })
})

describe('trust/scopes', () => {
  describe('#globMatch', () => {
    it('matches * within a segment, ** across, ? one character, the rest literally', () => {
      expect(globMatch('policies/*', 'policies/org')).to.equal(true)
      expect(globMatch('policies/*', 'policies/teams/a')).to.equal(false)
      expect(globMatch('policies/**', 'policies/teams/a')).to.equal(true)
      expect(globMatch('team-?', 'team-a')).to.equal(true)
      expect(globMatch('registry.example.com', 'registryXexample.com')).to.equal(false)
      expect(globMatch('*.example.com', 'registry.example.com')).to.equal(true)
      expect(globMatch('a/*/c', 'a/b/c')).to.equal(true)
      expect(globMatch('a/*/c', 'a/b/x/c')).to.equal(false)
      expect(globMatch('a/**/c', 'a/b/x/c')).to.equal(true)
      expect(globMatch('a/***', 'a/b/c')).to.equal(true)
      expect(globMatch('*', '')).to.equal(true)
      expect(globMatch('?', '')).to.equal(false)
      expect(globMatch('p(x)+[y]', 'p(x)+[y]')).to.equal(true)
    })
    describe('when the glob is built to make a backtracking matcher explode', () => {
      it('answers at once (a RegExp took over a minute for 12 wildcards and 60 characters)', () => {
        // testdata/hostile/trust/redos-glob.yaml uses the same shape in a trust policy.
        expect(globMatch(`${'**a'.repeat(40)}b`, 'a'.repeat(255))).to.equal(false)
        expect(globMatch(`${'*a'.repeat(40)}`, 'a'.repeat(255))).to.equal(true)
      })
    })
  })
  describe('#targetFromReference', () => {
    it('splits registry and repository with the OCI reference parser', () => {
      expect(targetFromReference('registry.example.com/policies/org:stable')).to.deep.equal({registry: 'registry.example.com', repository: 'policies/org'})
      expect(targetFromReference(`localhost:5000/p/q@sha256:${'a'.repeat(64)}`, 'team')).to.deep.equal({registry: 'localhost:5000', repository: 'p/q', tier: 'team'})
      expect(targetFromReference('docker.io/alpine')).to.deep.equal({registry: 'docker.io', repository: 'library/alpine'})
      expect(targetFromReference('Registry.Example.com/policies/org:1.0')).to.deep.equal({registry: 'registry.example.com', repository: 'policies/org'})
    })
    it('names a local layout by its reference, with no registry or repository', () => {
      expect(targetFromReference('oci:./layout:v1', 'org')).to.deep.equal({display: 'oci:./layout:v1', tier: 'org'})
      expect(targetFromReference('oci-archive:/tmp/p.tar')).to.deep.equal({display: 'oci-archive:/tmp/p.tar'})
    })
    it('refuses a malformed or registry-less reference with INVALID_REFERENCE (exit 1)', () => {
      for (const bad of ['alpine', 'registry.example.com/Policies/org', 'registry.example.com/p:bad tag']) {
        expect(() => targetFromReference(bad), bad).to.throw(AiboxError).that.satisfies((e: AiboxError) => e.code === 'INVALID_REFERENCE' && e.exit === 1 && e.message.includes(bad))
      }
    })
  })
  describe('#statementKind', () => {
    it('maps predicate types to statement kinds', () => {
      expect(statementKind(undefined)).to.equal('signatures')
      expect(statementKind('https://sigstore.dev/cosign/sign/v1')).to.equal('signatures')
      expect(statementKind(APPROVAL_PREDICATE_TYPE)).to.equal('approvals')
      expect(statementKind('https://slsa.dev/provenance/v1')).to.equal('https://slsa.dev/provenance/v1')
    })
  })
})

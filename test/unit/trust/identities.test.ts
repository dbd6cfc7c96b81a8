import {expect} from 'chai'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {ValidationError, VerificationError} from '../../../src/errors.js'
import {KeylessSigner, type SignerInfo, generateKeyPair} from '../../../src/sign/index.js'
import {type TrustPolicy, evaluateTrust, explainNoIdentity, findIdentity, loadTrustPolicy, onlyApprovalsMissing, parseTrustPolicy, verifyWithTrust} from '../../../src/trust/index.js'
import {ROOT, TESTDATA} from '../../helpers/cli.js'
import {MOCK_ISSUER, type MockSigstore, type TrustFiles, startMockSigstore} from '../../helpers/sigstore-mock.js'
import {tmpdir} from '../../helpers/tmp.js'

const indent = (pem: string, n = 6) => pem.trim().split('\n').map((l) => `${' '.repeat(n)}${l}`).join('\n')
const ISSUER = MOCK_ISSUER
const RELEASE = 'https://ci.example.test/policies/org/release'
const target = {registry: 'registry.example.com', repository: 'policies/org', tier: 'org' as const}

/** A keyless signer as verification reports it (the key fields describe a throwaway key). */
function keylessSigner(subject: string, issuer = ISSUER): SignerInfo {
  const k = generateKeyPair().public
  return {keyId: k.keyId, algorithm: k.algorithm, hint: k.hint, fingerprint: k.fingerprint, identity: {issuer, subject}}
}

describe('trust/identities', () => {
  let mock: MockSigstore
  let dir: string
  let files: TrustFiles
  before(async () => {
    mock = await startMockSigstore()
    dir = tmpdir('aibox-identities-')
    files = mock.writeTrustFiles(path.join(dir, 'sigstore'))
  })
  after(async () => {
    await mock.close()
  })

  /** Writes a policy next to sigstore/ and parses it; `body` follows apiVersion/kind. */
  const load = (body: string): TrustPolicy => {
    const file = path.join(dir, `trust-${Math.random().toString(36).slice(2)}.yaml`)
    fs.writeFileSync(file, `apiVersion: aibox.dev/v1\nkind: TrustPolicy\n${body}`)
    return loadTrustPolicy(file)
  }
  const problems = (body: string): string[] => {
    try {
      load(body)
    } catch (err) {
      expect(err).to.be.instanceOf(ValidationError)
      expect((err as ValidationError).code).to.equal('TRUST_POLICY_INVALID')
      return (err as ValidationError).problems.map((p) => `${p.pointer}: ${p.message}`)
    }
    expect.fail('expected TRUST_POLICY_INVALID')
  }
  const keyless = 'keyless:\n  trustedRoot: sigstore/trusted_root.json\n'
  const allScope = (role = 'author', n = 1) => `scopes:\n  - name: all\n    require: {signatures: {${role}: ${n}}}\n`

  describe('#parseTrustPolicy', () => {
    describe('when the file is the README keyless example', () => {
      it('loads next to its sigstore/ directory, and README.md shows it byte for byte', () => {
        const example = path.join(TESTDATA, 'trust', 'keyless.yaml')
        const copy = path.join(dir, 'keyless.yaml')
        fs.copyFileSync(example, copy)
        fs.mkdirSync(path.join(dir, 'keys'), {recursive: true})
        fs.copyFileSync(path.join(TESTDATA, 'trust', 'keys', 'ci.pub'), path.join(dir, 'keys', 'ci.pub'))
        const p = loadTrustPolicy(copy)
        expect(p.identities!.map((i) => [i.name, i.keyId, i.roles])).to.deep.equal([
          ['release-pipeline', 'identity:release-pipeline', ['author', 'security']],
          ['alice', 'identity:alice', ['approver']],
        ])
        expect(p.identities![0]!.issuer).to.deep.equal({exact: ISSUER})
        expect(p.keyless!.thresholds).to.deep.equal({tlog: 1, timestamps: 1, sct: 0})
        expect(p.keyless!.counts).to.deep.equal({certificateAuthorities: 1, tlogs: 1, timestampAuthorities: 1, ctlogs: 1})
        expect(p.keyless!.sources).to.deep.equal({trustedRoot: path.join(dir, 'sigstore', 'trusted_root.json')})
        expect(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')).to.contain(fs.readFileSync(example, 'utf8'))
      })
    })

    describe('when the material is PEM files', () => {
      it('takes a file or a list of files for each of fulcio, rekor, tsa and ctlog', () => {
        const p = load(
          `identities:\n  ci:\n    issuer: ${ISSUER}\n    subject: ${RELEASE}\n    roles: [author]\nkeyless:\n  fulcio: sigstore/fulcio-root.pem\n  rekor: [sigstore/rekor.pub]\n  tsa: [sigstore/tsa-chain.pem]\n  ctlog: sigstore/ctfe.pub\n  sct: 1\n${allScope()}`,
        )
        expect(p.keys).to.deep.equal([])
        expect(p.keyless!.counts).to.deep.equal({certificateAuthorities: 1, tlogs: 1, timestampAuthorities: 1, ctlogs: 1})
        expect(p.keyless!.sources.rekor).to.deep.equal([files.rekor])
      })
    })

    describe('when identities are malformed', () => {
      it('collects every problem with its location', () => {
        const k = generateKeyPair().public
        const got = problems(
          `keys:\n  dup:\n    roles: [author]\n    publicKey: |\n${indent(k.pem)}\nidentities:\n  both:\n    issuer: ${ISSUER}\n    issuerRegExp: https://.*\n    subject: a\n    roles: [author]\n  none:\n    issuer: ${ISSUER}\n    roles: [author]\n  badre:\n    issuer: ${ISSUER}\n    subjectRegExp: "(unclosed"\n    roles: [author]\n  dup:\n    issuer: ${ISSUER}\n    subject: x\n    roles: [wizard]\n  again:\n    issuer: ${ISSUER}\n    subject: x\n    roles: [author]\n${keyless}${allScope()}`,
        )
        expect(got).to.deep.equal([
          "/identities/both: needs exactly one of 'issuer' (exact) or 'issuerRegExp' (a regular expression the whole issuer must match)",
          "/identities/none: needs exactly one of 'subject' (exact) or 'subjectRegExp' (a regular expression the whole subject must match)",
          '/identities/badre/subjectRegExp: is not a valid regular expression: Invalid regular expression: /^(?:(unclosed)$/: Unterminated group',
          "/identities/dup/roles/0: unknown role 'wizard'; built-in roles: org-admin, security, team-lead, project-owner, author, approver, operator, tenant-admin; declare others under 'roles:'",
          "/identities/again: names the same issuer and subject as identity 'dup'; an identity may appear once, or distinct-signer thresholds could be met by one signer",
          "/identities/dup: 'dup' is also the name of a key; keys and identities share one namespace",
        ])
      })
    })

    describe('when identities and trust material do not go together', () => {
      it('needs keyless material for identities, identities for keyless material, and keys or identities', () => {
        expect(problems(`identities:\n  ci:\n    issuer: ${ISSUER}\n    subject: x\n    roles: [author]\n${allScope()}`)).to.deep.equal([
          "/identities: keyless identities need trust material: add 'keyless:' with your Fulcio CA (and Rekor key / TSA chain), or a trustedRoot",
        ])
        const k = generateKeyPair().public
        expect(problems(`keys:\n  a:\n    roles: [author]\n    publicKey: |\n${indent(k.pem)}\n${keyless}${allScope()}`)).to.deep.equal([
          "/keyless: is useless without 'identities:': name who may sign keyless",
        ])
        expect(problems(allScope())).to.deep.equal([
          ": needs 'keys', 'identities' (keyless signers), or both",
          "/scopes/0/require/signatures: can never be satisfied: 'author' needs 1 distinct key(s), 0 non-revoked key(s) hold it",
        ])
      })
    })

    describe('when the trust material is missing or cannot meet a threshold', () => {
      it('names the file, and every threshold no material could ever satisfy', () => {
        const id = `identities:\n  ci:\n    issuer: ${ISSUER}\n    subject: x\n    roles: [author]\n`
        const missing = problems(`${id}keyless:\n  trustedRoot: sigstore/nope.json\n${allScope()}`)
        expect(missing).to.have.length(1)
        expect(missing[0]).to.match(/^\/keyless\/trustedRoot: .*sigstore\/nope\.json/)
        expect(problems(`${id}keyless:\n  fulcio: sigstore/fulcio-root.pem\n  timestamps: 2\n  sct: 1\n${allScope()}`)).to.deep.equal([
          "/keyless/tlog: requires 1 but the trust material has no Rekor key (keyless.rekor or the trusted root's tlogs; set tlog: 0 if your Sigstore has no transparency log): no keyless signature could ever be accepted",
          "/keyless/timestamps: requires 2 but the trust material has no timestamp authority (keyless.tsa or the trusted root's timestampAuthorities): no keyless signature could ever be accepted",
          "/keyless/sct: requires 1 but the trust material has no CT log key (keyless.ctlog or the trusted root's ctlogs): no keyless signature could ever be accepted",
          '/keyless: has neither a Rekor key nor a timestamp authority: a short-lived Fulcio certificate can only be checked at a verified signing time',
        ])
        expect(problems(`${id}keyless:\n  rekor: sigstore/rekor.pub\n${allScope()}`)).to.deep.equal([
          '/keyless: has no certificate authority: add your Fulcio CA certificates (fulcio: FILE.pem) or a trustedRoot with certificateAuthorities',
        ])
        expect(problems(`${id}keyless:\n  fulcio: [sigstore/fulcio-root.pem, sigstore/missing.pem]\n  rekor: sigstore/rekor.pub\n${allScope()}`)[0]).to.match(/^\/keyless\/fulcio\/1: .*missing\.pem/)
      })
    })

    describe('when thresholds count identities', () => {
      it('lets identities meet a threshold, and still reports one no principal can meet', () => {
        const two = `identities:\n  a:\n    issuer: ${ISSUER}\n    subject: a\n    roles: [security]\n  b:\n    issuer: ${ISSUER}\n    subject: b\n    roles: [security]\n${keyless}`
        expect(load(`${two}${allScope('security', 2)}`).scopes[0]!.require).to.deep.equal({signatures: {security: 2}})
        expect(problems(`${two}${allScope('security', 3)}`)[0]).to.match(/^\/scopes\/0\/require\/signatures: can never be satisfied: 'security' needs 3 distinct key\(s\), 2 non-revoked/)
      })
    })

    describe('when an identity is revoked', () => {
      it('accepts its name under revoked:, and refuses a second revocation', () => {
        const body = `identities:\n  ci:\n    issuer: ${ISSUER}\n    subject: x\n    roles: [author]\n  ci2:\n    issuer: ${ISSUER}\n    subject: y\n    roles: [author]\n${keyless}revoked:\n  - key: ci\n    reason: pipeline compromised\n    revokedAt: 2025-01-01T00:00:00Z\n${allScope()}`
        expect(load(body).identities![0]!.revoked).to.deep.equal({reason: 'pipeline compromised', revokedAt: new Date('2025-01-01T00:00:00Z')})
        expect(problems(`${body.replace(/scopes:[\s\S]*$/, '')}  - key: ci\n    reason: again\n${allScope()}`)).to.deep.equal(["/revoked/1/key: identity 'ci' is already revoked above"])
      })
    })
  })

  describe('#findIdentity / #explainNoIdentity', () => {
    let policy: TrustPolicy
    before(() => {
      policy = load(
        `identities:\n  release:\n    issuer: ${ISSUER}\n    subjectRegExp: https://ci\\.example\\.test/policies/[^/]+/release\n    roles: [author]\n  anyone:\n    issuerRegExp: https://oidc\\.example\\.(test|org)\n    subjectRegExp: ".+@example\\\\.test"\n    roles: [approver]\n${keyless}${allScope()}`,
      )
    })
    it('matches exact and whole-value regular expressions, the first identity in file order winning', () => {
      expect(findIdentity(policy.identities!, {issuer: ISSUER, subject: RELEASE})?.name).to.equal('release')
      expect(findIdentity(policy.identities!, {issuer: 'https://oidc.example.org', subject: 'bob@example.test'})?.name).to.equal('anyone')
      // Anchored: a prefix or suffix around a matching part does not match.
      expect(findIdentity(policy.identities!, {issuer: ISSUER, subject: `${RELEASE}/extra`})).to.equal(undefined)
      expect(findIdentity(policy.identities!, {issuer: `${ISSUER}.evil`, subject: RELEASE})).to.equal(undefined)
      expect(findIdentity(policy.identities!, {issuer: ISSUER, subject: 'bob@example.test.evil.com'})).to.equal(undefined)
    })
    it('explains, per identity, whether the issuer or the subject is wrong', () => {
      expect(explainNoIdentity(policy.identities!, {issuer: 'https://accounts.example.com', subject: RELEASE})).to.equal(
        `certificate identity '${RELEASE}' (issuer 'https://accounts.example.com') is not a trusted identity: identity 'release' (wrong issuer: wants '${ISSUER}'), identity 'anyone' (wrong issuer: wants matching /https://oidc\\.example\\.(test|org)/; wrong subject: wants matching /.+@example\\.test/)`,
      )
    })
  })

  describe('#evaluateTrust with keyless signers', () => {
    let policy: TrustPolicy
    const key = generateKeyPair()
    before(() => {
      policy = load(
        `keys:\n  lead:\n    roles: [approver]\n    publicKey: |\n${indent(key.public.pem)}\nidentities:\n  release:\n    issuer: ${ISSUER}\n    subject: ${RELEASE}\n    roles: [security, approver]\n  alice:\n    issuer: ${ISSUER}\n    subjectRegExp: "alice@example\\\\.test"\n    roles: [security]\n    notAfter: 2020-01-01T00:00:00Z\n  bob:\n    issuer: ${ISSUER}\n    subject: bob@example.test\n    roles: [security]\n${keyless}revoked:\n  - key: bob\n    reason: left\nscopes:\n  - name: org\n    require: {signatures: {security: 1, approver: 1}}\n`,
      )
    })
    const ev = (signer: SignerInfo, source = 's.json') => ({kind: 'signatures', signer, source})
    const lead = {keyId: key.public.keyId, algorithm: key.public.algorithm, hint: key.public.hint, fingerprint: key.public.fingerprint}

    it('counts an identity once however many certificates it got, next to a key', () => {
      const d = evaluateTrust(policy, target, [ev(keylessSigner(RELEASE)), ev(keylessSigner(RELEASE)), ev(lead)])
      expect(d.satisfied).to.equal(true)
      expect(d.accepted).to.deep.equal([
        {key: 'release', keyId: 'identity:release', roles: ['security', 'approver'], kinds: ['signatures']},
        {key: 'lead', keyId: key.public.keyId, roles: ['approver'], kinds: ['signatures']},
      ])
      expect(d.scopes[0]!.requirements.map((r) => [r.role, r.keys])).to.deep.equal([
        ['security', ['release']],
        ['approver', ['lead']],
      ])
    })
    it('never lets one identity fill two roles of the same kind', () => {
      const d = evaluateTrust(policy, target, [ev(keylessSigner(RELEASE))])
      expect(d.satisfied).to.equal(false)
      expect(d.missing).to.deep.equal([
        "scope 'org': needs 1 distinct 'approver' signature for registry.example.com/policies/org (tier org), got none ('release' also holds 'approver' but was counted for another role: a key counts once)",
      ])
    })
    it('refuses a wrong issuer, a wrong subject, an expired and a revoked identity, each with its reason', () => {
      const d = evaluateTrust(
        policy,
        target,
        [ev(keylessSigner(RELEASE, 'https://accounts.google.com'), 'a.json'), ev(keylessSigner('mallory@example.test'), 'b.json'), ev(keylessSigner('alice@example.test'), 'c.json'), ev(keylessSigner('bob@example.test'), 'd.json')],
        {now: new Date('2026-01-01T00:00:00Z')},
      )
      expect(d.satisfied).to.equal(false)
      expect(d.refused.map((r) => [r.key, r.reason, r.source])).to.deep.equal([
        [RELEASE, 'unknown', 'a.json'],
        ['mallory@example.test', 'unknown', 'b.json'],
        ['alice', 'expired', 'c.json'],
        ['bob', 'revoked', 'd.json'],
      ])
      expect(d.refused[0]!.message).to.contain(`identity 'release' (wrong issuer: wants '${ISSUER}')`)
      expect(d.refused[1]!.message).to.contain("identity 'release' (wrong subject: wants")
      expect(d.refused[2]!.message).to.equal("identity 'alice' expired at 2020-01-01T00:00:00.000Z")
      expect(d.refused[3]!.message).to.equal("identity 'bob' was revoked: left")
    })
    it('does not take a keyless signer for a key with the same key id', () => {
      const d = evaluateTrust(policy, target, [ev({...lead, identity: {issuer: ISSUER, subject: 'nobody'}})])
      expect(d.accepted).to.deep.equal([])
      expect(d.refused[0]!.reason).to.equal('unknown')
    })
  })

  describe('#evaluateTrust with keyless signers and approvals (governance)', () => {
    let policy: TrustPolicy
    const key = generateKeyPair()
    const lead = {keyId: key.public.keyId, algorithm: key.public.algorithm, hint: key.public.hint, fingerprint: key.public.fingerprint}
    before(() => {
      policy = load(
        `keys:\n  lead:\n    roles: [approver]\n    publicKey: |\n${indent(key.public.pem)}\nidentities:\n  release:\n    issuer: ${ISSUER}\n    subject: ${RELEASE}\n    roles: [security, approver]\n  carol:\n    issuer: ${ISSUER}\n    subject: carol@example.test\n    roles: [approver]\n${keyless}scopes:\n  - name: org\n    require:\n      signatures: {security: 1}\n      approvals: {approver: 2}\n`,
      )
    })
    const sig = (signer: SignerInfo, source: string) => ({kind: 'signatures', signer, source})
    const approval = (signer: SignerInfo, source: string, role = 'approver') => ({kind: 'approvals', signer, source, role})

    it('counts a keyless identity once per role per digest, however many certificates approved', () => {
      const d = evaluateTrust(policy, target, [sig(keylessSigner(RELEASE), 's.json'), approval(keylessSigner('carol@example.test'), 'c1.json'), approval(keylessSigner('carol@example.test'), 'c2.json')])
      expect(d.satisfied).to.equal(false)
      expect(onlyApprovalsMissing(d)).to.equal(true)
      expect(d.scopes[0]!.requirements.map((r) => [r.kind, r.role, r.keys])).to.deep.equal([
        ['signatures', 'security', ['release']],
        ['approvals', 'approver', ['carol']],
      ])
      expect(d.approvals.map((a) => [a.key, a.keyId, a.eligible])).to.deep.equal([
        ['carol', 'identity:carol', true],
        ['carol', 'identity:carol', true],
      ])
      expect(d.missing[0]).to.equal("scope 'org': needs 2 distinct 'approver' approvals for registry.example.com/policies/org (tier org), got 1: identity 'carol'")
    })
    it('lets identities and keys approve together', () => {
      const d = evaluateTrust(policy, target, [sig(keylessSigner(RELEASE), 's.json'), approval(keylessSigner('carol@example.test'), 'c.json'), approval(lead, 'l.json')])
      expect(d.satisfied).to.equal(true)
      expect(d.scopes[0]!.requirements[1]!.keys).to.have.members(['carol', 'lead'])
    })
    it('never counts the keyless signer of a digest as its approver, even with another certificate', () => {
      const d = evaluateTrust(policy, target, [sig(keylessSigner(RELEASE), 's.json'), approval(keylessSigner(RELEASE), 'r.json'), approval(lead, 'l.json')])
      expect(d.satisfied).to.equal(false)
      const self = d.approvals.find((a) => a.source === 'r.json')!
      expect([self.key, self.eligible, self.reason]).to.deep.equal(['release', false, 'self-approval'])
      expect(self.message).to.equal("identity 'release' signed this digest (its author) and cannot also approve it: separation of duties (approval r.json)")
      expect(d.missing).to.include(`approval not counted: ${self.message}`)
    })
    it('refuses an approval by an unknown identity, naming why', () => {
      const d = evaluateTrust(policy, target, [sig(keylessSigner(RELEASE), 's.json'), approval(keylessSigner('mallory@example.test'), 'm.json')])
      const a = d.approvals[0]!
      expect([a.key, a.eligible, a.reason]).to.deep.equal(['mallory@example.test', false, 'unknown'])
      expect(a.message).to.match(/^certificate identity 'mallory@example\.test'.*\(approval m\.json\)$/)
    })
    it('refuses at load time a scope only one identity could fill as both signer and approver', () => {
      expect(
        problems(`identities:\n  release:\n    issuer: ${ISSUER}\n    subject: ${RELEASE}\n    roles: [security, approver]\n${keyless}scopes:\n  - name: org\n    require:\n      signatures: {security: 1}\n      approvals: {approver: 1}\n`),
      ).to.deep.equal([
        '/scopes/0/require: can never be satisfied: signatures and approvals together need 2 distinct keys (a key that signs a digest never counts as its approver, and one key fills one role), but the non-revoked keys can fill only 1',
      ])
    })
  })

  describe('#verifyWithTrust', () => {
    it('verifies a keyless bundle file against the policy’s identities, offline', async () => {
      const policy = load(`identities:\n  release:\n    issuer: ${ISSUER}\n    subject: ${RELEASE}\n    roles: [author]\n${keyless}${allScope()}`)
      const data = Buffer.from('policy bytes')
      const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
      const sign = (sub: string) => KeylessSigner.fromEnvironment({fulcioUrl: mock.url, rekorUrl: mock.url}, {SIGSTORE_ID_TOKEN: mock.token({sub})}).signSubjects([{digest}])
      const good = await sign(RELEASE)
      const r = verifyWithTrust([{bytes: Buffer.from(JSON.stringify(good.bundle)), source: 'good.json'}], policy, {artifact: data, target: {display: 'f'}})
      expect(r.decision.accepted.map((a) => a.key)).to.deep.equal(['release'])
      expect(r.signatures[0]!.signers[0]!.identity).to.deep.equal({issuer: ISSUER, subject: RELEASE})

      const other = await sign('https://ci.example.test/policies/org/debug')
      let caught: unknown
      try {
        verifyWithTrust([{bytes: Buffer.from(JSON.stringify(other.bundle)), source: 'other.json'}], policy, {artifact: data, target: {display: 'f'}})
      } catch (err) {
        caught = err
      }
      expect(caught).to.be.instanceOf(VerificationError)
      expect((caught as VerificationError).code).to.equal('TRUST_NOT_SATISFIED')
      expect((caught as VerificationError).message).to.contain(
        "refused: certificate identity 'https://ci.example.test/policies/org/debug' (issuer 'https://oidc.example.test') is not a trusted identity: identity 'release' (wrong subject: wants 'https://ci.example.test/policies/org/release') (other.json)",
      )
    })
  })
})

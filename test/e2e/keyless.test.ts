/**
 * e2e: keyless signing with an organisation's own Sigstore (README "Keyless signing (your own
 * Sigstore)") through the real binary: `@sigstore/mock`'s Fulcio, Rekor and TSA served on
 * 127.0.0.1 with a fixed clock (test/helpers/sigstore-mock.ts), `aibox sign/push --keyless`, then
 * `aibox verify/pull --trust` with identities, offline. Refusals are checked for exit code and
 * message: bad tokens and settings (1), service refusals (1) and outages (4), and every
 * verification failure (2): wrong issuer, wrong subject, no tlog entry, another CA, altered payload.
 */
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {TESTDATA, ROOT, aibox as run, type CliOptions, type CliResult} from '../helpers/cli.js'
import {ORG_BASELINE} from '../helpers/policy-fixtures.js'
import {type RegistryHandle, startRegistry} from '../helpers/registry.js'
import {expectOutputSchema} from '../helpers/schemas.js'
import {MOCK_ISSUER, MOCK_ROUTES, type MockSigstore, startMockSigstore} from '../helpers/sigstore-mock.js'
import {listFiles, tmpdir} from '../helpers/tmp.js'

const RELEASE = 'https://ci.example.test/policies/org/release'
const ALICE = 'alice@example.test'
const NO_NETWORK = `--import=${path.join(ROOT, 'test', 'helpers', 'no-network.mjs')}`

describe('keyless signing with your own Sigstore (e2e)', function () {
  this.timeout(180_000)
  let mock: MockSigstore
  let other: MockSigstore
  const work = tmpdir('aibox-keyless-e2e-')
  const p = (...f: string[]) => path.join(work, ...f)
  const policy = p('baseline.yaml')
  const trust = p('trust.yaml')
  const audit = p('audit.jsonl')
  let urls: string[]

  function aibox(args: string[], options: CliOptions = {}): Promise<CliResult> {
    return run(args, {
      ...options,
      env: {
        OCLIF_COLUMNS: '10000',
        CI: '1',
        AIBOX_AUDIT_LOG: audit,
        SIGSTORE_ID_TOKEN: undefined,
        AIBOX_OIDC_TOKEN: undefined,
        AIBOX_FULCIO_URL: undefined,
        AIBOX_REKOR_URL: undefined,
        AIBOX_TSA_URL: undefined,
        AIBOX_SIGSTORE_ALLOW_HTTP: undefined,
        COSIGN_PASSWORD: undefined,
        ...options.env,
      },
    })
  }
  const as = (sub: string, m: MockSigstore = mock, claims: Record<string, unknown> = {}) => ({env: {SIGSTORE_ID_TOKEN: m.token({sub, ...claims})}})
  async function ok(args: string[], options: CliOptions = {}): Promise<CliResult> {
    const r = await aibox(args, options)
    expect(r.code, `aibox ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).to.equal(0)
    return r
  }
  async function refused(args: string[], options: CliOptions, exit: number, code: string, message?: RegExp | string): Promise<CliResult> {
    const r = await aibox(args, options)
    expect(r.code, `aibox ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).to.equal(exit)
    expect(r.stderr).to.contain(code)
    if (typeof message === 'string') expect(r.stderr).to.contain(message)
    else if (message) expect(r.stderr).to.match(message)
    return r
  }
  /** `aibox verify` with sockets, DNS and fetch fatal: keyless verification is offline. */
  const offline = {env: {NODE_OPTIONS: NO_NETWORK}}

  before(async () => {
    mock = await startMockSigstore()
    other = await startMockSigstore({ctlog: false})
    urls = ['--fulcio-url', mock.url, '--rekor-url', mock.url, '--tsa-url', mock.url]
    mock.writeTrustFiles(p('sigstore'))
    fs.copyFileSync(ORG_BASELINE, policy)
    fs.writeFileSync(
      trust,
      `apiVersion: aibox.dev/v1
kind: TrustPolicy
identities:
  release:
    issuer: ${MOCK_ISSUER}
    subject: ${RELEASE}
    roles: [author, security]
  alice:
    issuer: ${MOCK_ISSUER}
    subjectRegExp: "alice@example\\\\.test"
    roles: [approver]
keyless:
  trustedRoot: sigstore/trusted_root.json
scopes:
  - name: everything
    require: {signatures: {author: 1}}
`,
    )
  })
  after(async () => {
    await mock?.close()
    await other?.close()
  })

  describe('aibox sign FILE --keyless + aibox verify --trust', () => {
    it('signs with a certificate, a tlog entry and a timestamp, and verifies offline against the identity; --json matches the schemas', async () => {
      const s = await ok(['sign', policy, '--keyless', ...urls, '--output', p('release.sigstore.json'), '--json'], as(RELEASE))
      expectOutputSchema('sign', s.json)
      expect(s.json.keyless.identity).to.deep.equal({issuer: MOCK_ISSUER, subject: RELEASE})
      expect(s.json.keyless).to.include({tlogEntries: 1, timestamps: 1})
      const bundle = JSON.parse(fs.readFileSync(p('release.sigstore.json'), 'utf8'))
      expect(Object.keys(bundle.verificationMaterial)).to.deep.equal(['certificate', 'tlogEntries', 'timestampVerificationData'])

      const v = await ok(['verify', policy, '--signature', p('release.sigstore.json'), '--trust', trust, '--json'], offline)
      expect(v.stderr).to.not.contain('NETWORK ACCESS')
      expectOutputSchema('verify', v.json)
      const sig = v.json.signatures[0]
      expect(sig.signers[0].identity).to.deep.equal({issuer: MOCK_ISSUER, subject: RELEASE})
      expect(sig.bundle.keyless).to.deep.equal({tlogEntries: 1, timestamps: 1, scts: 1})
      expect(v.json.trust.accepted).to.deep.equal([{key: 'release', keyId: 'identity:release', roles: ['author', 'security'], kinds: ['signatures']}])

      const human = await ok(['verify', policy, '--signature', p('release.sigstore.json'), '--trust', trust])
      expect(human.stdout).to.contain(`signed by ${RELEASE} (issuer ${MOCK_ISSUER}, keyless)`)
      expect(human.stdout).to.contain("trust scope 'everything': author 1/1 (release)")
    })
    it('takes the URLs from AIBOX_*_URL and the token from AIBOX_OIDC_TOKEN; a message signature verifies too', async () => {
      const env = {AIBOX_FULCIO_URL: mock.url, AIBOX_TSA_URL: mock.url, AIBOX_REKOR_URL: mock.url, AIBOX_OIDC_TOKEN: mock.token({sub: RELEASE})}
      const s = await ok(['sign', policy, '--keyless', '--format', 'message', '--output', p('message.sigstore.json')], {env})
      expect(s.stdout).to.match(new RegExp(`Signed .*baseline\\.yaml \\(sha256:[0-9a-f]{64}\\) as ${RELEASE} \\(issuer ${MOCK_ISSUER}, keyless\\): .*message\\.sigstore\\.json`))
      await ok(['verify', policy, '--signature', p('message.sigstore.json'), '--trust', trust], offline)
    })
    it('writes the bundle to stdout without --output', async () => {
      const s = await ok(['sign', policy, '--keyless', ...urls], as(RELEASE))
      expect(JSON.parse(s.stdout).verificationMaterial).to.have.property('certificate')
    })
  })

  describe('when signing cannot start (exit 1, nothing sent)', () => {
    it('refuses a missing, expired or malformed token, a key-less format, mixed flags and plain HTTP', async () => {
      const before = mock.requests.length
      await refused(['sign', policy, '--keyless', ...urls], {}, 1, 'OIDC_TOKEN_MISSING', 'set SIGSTORE_ID_TOKEN or AIBOX_OIDC_TOKEN')
      await refused(['sign', policy, '--keyless', ...urls], as(RELEASE, mock, {exp: Math.floor(Date.now() / 1000) - 60}), 1, 'OIDC_TOKEN_EXPIRED', `the OIDC token in SIGSTORE_ID_TOKEN (${RELEASE} from ${MOCK_ISSUER}) expired at`)
      const garbage = await refused(['sign', policy, '--keyless', ...urls], {env: {SIGSTORE_ID_TOKEN: 'hunter2-not-a-jwt'}}, 1, 'OIDC_TOKEN_INVALID', 'is not a JWT')
      expect(garbage.stderr).to.not.contain('hunter2')
      await refused(['sign', policy, '--keyless', ...urls, '--format', 'raw'], as(RELEASE), 1, 'KEYLESS_FORMAT', '--format raw cannot carry a certificate')
      await refused(['sign', policy, '--keyless', '--key', p('x.key'), ...urls], as(RELEASE), 1, 'KEY_OR_KEYLESS', '--key and --keyless exclude each other')
      await refused(['sign', policy], {}, 1, 'KEY_OR_KEYLESS', 'pass --key KEY (a cosign private key) or --keyless')
      await refused(['sign', policy, '--key', p('x.key'), '--fulcio-url', mock.url], {}, 1, 'KEYLESS_FLAG_WITHOUT_KEYLESS', '--fulcio-url applies to keyless signing')
      await refused(['sign', policy, '--keyless', '--tsa-url', mock.url], as(RELEASE), 1, 'FULCIO_URL_MISSING')
      await refused(['sign', policy, '--keyless', '--fulcio-url', mock.url], as(RELEASE), 1, 'KEYLESS_WITNESS_MISSING')
      await refused(['sign', policy, '--keyless', '--fulcio-url', 'http://fulcio.example.com', '--tsa-url', mock.url], as(RELEASE), 1, 'SIGSTORE_URL_INSECURE', 'uses plain HTTP to a non-loopback host')
      expect(mock.requests.length, 'no request reached the Sigstore').to.equal(before)
    })
  })

  describe('when a Sigstore service refuses or fails', () => {
    it('exits 1 when Fulcio refuses the token and 4 when the TSA is down, writing no signature', async () => {
      mock.failNext(MOCK_ROUTES.fulcio, 403, 'issuer not trusted')
      const r = await refused(['sign', policy, '--keyless', ...urls, '--output', p('refused.json')], as(RELEASE), 1, 'FULCIO_REFUSED', /Fulcio at http:\/\/127\.0\.0\.1:\d+ refused the request: \(403\) issuer not trusted/)
      expect(r.stderr).to.contain(`check that your Fulcio trusts the issuer ${MOCK_ISSUER}`)
      // The first try and both retries fail.
      mock.failNext(MOCK_ROUTES.tsa, 503, 'maintenance', 3)
      try {
        await refused(['sign', policy, '--keyless', ...urls, '--output', p('down.json')], as(RELEASE), 4, 'TSA_UNAVAILABLE', 'maintenance')
      } finally {
        mock.clearFailures()
      }
      expect(fs.existsSync(p('refused.json'))).to.equal(false)
      expect(fs.existsSync(p('down.json'))).to.equal(false)
    })
  })

  describe('aibox verify --trust refusals (exit 2)', () => {
    before(async () => {
      await ok(['sign', policy, '--keyless', ...urls, '--output', p('wrong-issuer.json')], as(RELEASE, mock, {iss: 'https://accounts.example.com'}))
      await ok(['sign', policy, '--keyless', ...urls, '--output', p('wrong-subject.json')], as('https://ci.example.test/policies/org/debug'))
      await ok(['sign', policy, '--keyless', '--fulcio-url', mock.url, '--tsa-url', mock.url, '--output', p('no-tlog.json')], as(RELEASE))
      await ok(['sign', policy, '--keyless', '--fulcio-url', other.url, '--rekor-url', other.url, '--tsa-url', other.url, '--output', p('other-ca.json')], as(RELEASE, other))
      await ok(['sign', policy, '--keyless', ...urls, '--output', p('good.json')], as(RELEASE))
      const good = JSON.parse(fs.readFileSync(p('good.json'), 'utf8'))
      const st = JSON.parse(Buffer.from(good.dsseEnvelope.payload, 'base64').toString())
      st.predicate = {note: 'added after signing'}
      good.dsseEnvelope.payload = Buffer.from(JSON.stringify(st)).toString('base64')
      fs.writeFileSync(p('tampered.json'), JSON.stringify(good))
    })
    const verify = (sig: string) => ['verify', policy, '--signature', p(sig), '--trust', trust]
    it('refuses a wrong issuer, naming it', async () => {
      const r = await refused(verify('wrong-issuer.json'), offline, 2, 'TRUST_NOT_SATISFIED', `refused: certificate identity '${RELEASE}' (issuer 'https://accounts.example.com') is not a trusted identity: identity 'release' (wrong issuer: wants '${MOCK_ISSUER}')`)
      expect(r.stderr).to.contain("needs 1 distinct 'author' signature for")
    })
    it('refuses a wrong subject, naming it', async () => {
      await refused(verify('wrong-subject.json'), offline, 2, 'TRUST_NOT_SATISFIED', `identity 'release' (wrong subject: wants '${RELEASE}')`)
    })
    it('refuses a bundle without the required tlog entry', async () => {
      await refused(verify('no-tlog.json'), offline, 2, 'TRUST_NOT_SATISFIED', 'the trust policy requires 1 transparency-log entry (keyless.tlog), the bundle has 0')
      // …which a policy with tlog: 0 and timestamps: 1 accepts.
      const lax = p('trust-tsa.yaml')
      fs.writeFileSync(lax, fs.readFileSync(trust, 'utf8').replace('  trustedRoot: sigstore/trusted_root.json\n', '  trustedRoot: sigstore/trusted_root.json\n  tlog: 0\n  timestamps: 1\n'))
      await ok(['verify', policy, '--signature', p('no-tlog.json'), '--trust', lax], offline)
    })
    it('refuses a certificate from another Sigstore', async () => {
      await refused(verify('other-ca.json'), offline, 2, 'TRUST_NOT_SATISFIED', `the certificate of ${RELEASE} (issued by "CN=sigstore, O=sigstore.mock") does not chain to a certificate authority of the trust policy`)
    })
    it('refuses an altered payload', async () => {
      await refused(verify('tampered.json'), offline, 2, 'TRUST_NOT_SATISFIED', `the signature does not verify with the key of its certificate (${RELEASE}): the signed content or the signature was altered`)
    })
    it('refuses a keyless bundle when verifying with --key only', async () => {
      fs.copyFileSync(path.join(TESTDATA, 'trust', 'keys', 'ci.pub'), p('ci.pub'))
      await refused(['verify', policy, '--signature', p('good.json'), '--key', p('ci.pub')], {}, 2, 'KEY_MISMATCH', `certificate "${RELEASE}", which is not one of the trusted keys`)
    })
  })

  describe('aibox push --keyless, sign REF --keyless, then pull / verify REF --trust', () => {
    it('publishes to an oci: layout signed keyless; pull verifies it and writes the policy; --json matches the schemas', async () => {
      const layout = p('layout')
      const r = await ok(['push', policy, `oci:${layout}:stable`, '--keyless', ...urls, '--json'], as(RELEASE))
      expectOutputSchema('push', r.json)
      expect(r.json.signature.keyless).to.deep.equal({identity: {issuer: MOCK_ISSUER, subject: RELEASE}, tlogEntries: 1, timestamps: 1})
      const pulled = await ok(['pull', `oci:${layout}:stable`, '--trust', trust, '-o', p('out'), '--json'], offline)
      expectOutputSchema('pull', pulled.json)
      expect(pulled.json.signatures[0].signer.identity).to.deep.equal({issuer: MOCK_ISSUER, subject: RELEASE})
      expect(listFiles(p('out'))).to.deep.equal(['org-baseline.json', 'org-baseline.yaml'])
      const human = await ok(['push', policy, `oci:${layout}:again`, '--keyless', ...urls], as(RELEASE))
      expect(human.stdout).to.contain(`signed by: ${RELEASE} (issuer ${MOCK_ISSUER}, keyless: 1 tlog entry, 1 timestamp(s))`)
    })
    it('adds a second identity with sign REF --keyless, which a two-role scope needs', async () => {
      const layout = p('layout2')
      await ok(['push', policy, `oci:${layout}:1`, '--keyless', ...urls], as(RELEASE))
      const strict = p('trust-two.yaml')
      fs.writeFileSync(strict, fs.readFileSync(trust, 'utf8').replace('require: {signatures: {author: 1}}', 'require: {signatures: {author: 1, approver: 1}}'))
      await refused(['pull', `oci:${layout}:1`, '--trust', strict, '-o', p('out2')], offline, 2, 'TRUST_NOT_SATISFIED', "needs 1 distinct 'approver' signature")
      expect(listFiles(p('out2'))).to.deep.equal([])
      const s = await ok(['sign', `oci:${layout}:1`, '--keyless', ...urls, '--json'], as(ALICE))
      expectOutputSchema('sign', s.json)
      expect(s.json.signature.keyless.identity.subject).to.equal(ALICE)
      const v = await ok(['verify', `oci:${layout}:1`, '--trust', strict, '--json'], offline)
      expectOutputSchema('verify', v.json)
      expect(v.json.trust.scopes[0].requirements.map((q: {role: string; keys: string[]}) => [q.role, q.keys])).to.deep.equal([
        ['author', ['release']],
        ['approver', ['alice']],
      ])
      // discover shows who signed; a keyless signer the policy does not name is NOT VERIFIED, with why.
      const onlyRelease = p('trust-release.yaml')
      fs.writeFileSync(onlyRelease, fs.readFileSync(trust, 'utf8').replace(/  alice:\n(    .*\n)+/, ''))
      const d = await ok(['discover', `oci:${layout}:1`, '--trust', onlyRelease, '--json'], offline)
      expectOutputSchema('discover', d.json)
      const nodes = d.json.referrers.map((n: {verified: boolean; signer?: {identity?: {subject: string}}; problem?: string}) => [n.signer?.identity?.subject, n.verified, n.problem ?? null])
      expect(nodes).to.have.deep.members([
        [RELEASE, true, null],
        [ALICE, false, `certificate identity '${ALICE}' (issuer '${MOCK_ISSUER}') is not a trusted identity: identity 'release' (wrong subject: wants '${RELEASE}')`],
      ])
      const tree = await ok(['discover', `oci:${layout}:1`, '--trust', trust])
      expect(tree.stdout).to.contain(`by ${ALICE} (issuer ${MOCK_ISSUER}, keyless) [verified]`)
    })
    it('records the certified identity in the audit log', async () => {
      const events = fs.readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.event === 'policy.signed')
      expect(events.some((e) => e.identity === ALICE && e.issuer === MOCK_ISSUER && /^[0-9a-f]{16}$/.test(e.keyId))).to.equal(true)
    })
    it('refuses --cosign-legacy and --key-password-stdin with --keyless before anything is written', async () => {
      await refused(['push', policy, `oci:${p('layout3')}:1`, '--keyless', ...urls, '--cosign-legacy'], as(RELEASE), 1, 'LEGACY_WITH_KEYLESS')
      await refused(['sign', `oci:${p('layout2')}:1`, '--keyless', ...urls, '--cosign-legacy'], as(RELEASE), 1, 'LEGACY_WITH_KEYLESS')
      await refused(['push', policy, `oci:${p('layout3')}:1`, '--keyless', ...urls, '--key-password-stdin'], as(RELEASE), 1, 'PASSWORD_WITH_KEYLESS', 'keyless signing has no key file')
      expect(fs.existsSync(p('layout3'))).to.equal(false)
    })
    it('leaves the destination untouched when Fulcio refuses', async () => {
      mock.failNext(MOCK_ROUTES.fulcio, 401, 'expired token')
      await refused(['push', policy, `oci:${p('layout4')}:1`, '--keyless', ...urls], as(RELEASE), 1, 'FULCIO_REFUSED')
      expect(listFiles(p('layout4')).filter((f) => f.startsWith('blobs/'))).to.deep.equal([])
    })
  })

  describe('aibox push --keyless to a registry', () => {
    let reg: RegistryHandle
    before(async () => {
      reg = await startRegistry()
    })
    after(async () => {
      await reg?.stop()
    })
    it('publishes with a keyless signature referrer that pull verifies against the identity', async () => {
      const ref = `${reg.host}/policies/org:stable`
      await ok(['push', policy, ref, '--keyless', ...urls], as(RELEASE))
      const pulled = await ok(['pull', ref, '--trust', trust, '-o', p('from-registry'), '--json'])
      expect(pulled.json.signatures.map((s: {signer: {identity?: unknown}}) => s.signer.identity)).to.deep.equal([{issuer: MOCK_ISSUER, subject: RELEASE}])
    })
  })
})

import {expect} from 'chai'
import {X509Certificate, createHash} from 'node:crypto'
import http from 'node:http'
import type {AddressInfo} from 'node:net'

import {bundleFromJSON} from '@sigstore/bundle'

import {InputError, TransientError} from '../../../src/errors.js'
import {
  BUNDLE_V03_MEDIA_TYPE,
  COSIGN_SIGN_PREDICATE_TYPE,
  KeylessSigner,
  cosignCompatibilityProblems,
  parseIdentityToken,
  readIdentityToken,
  resolveKeylessConfig,
} from '../../../src/sign/index.js'
import {expectCode, expectCodeSync} from '../../helpers/expect-error.js'
import {MOCK_ISSUER, MOCK_ROUTES, type MockSigstore, startMockSigstore} from '../../helpers/sigstore-mock.js'

const SUBJECT = 'https://ci.example.test/workflows/release'
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
const jwt = (claims: Record<string, unknown>, header: Record<string, unknown> = {alg: 'RS256'}) => `${b64url(header)}.${b64url(claims)}.c2ln`
const future = () => Math.floor(Date.now() / 1000) + 600

describe('sign/keyless', () => {
  describe('#resolveKeylessConfig', () => {
    describe('when every URL is given', () => {
      it('keeps loopback http, drops trailing slashes and applies the defaults', () => {
        const c = resolveKeylessConfig({fulcioUrl: 'http://127.0.0.1:8080/', rekorUrl: 'https://rekor.example.com/', tsaUrl: 'http://[::1]:9/tsa/'}, {})
        expect(c).to.deep.equal({
          fulcioUrl: 'http://127.0.0.1:8080',
          rekorUrl: 'https://rekor.example.com',
          tsaUrl: 'http://[::1]:9/tsa',
          timeoutMs: 30_000,
          retries: 2,
          rekorEntryType: 'intoto',
        })
      })
    })
    describe('when a URL comes from the environment', () => {
      it('reads AIBOX_FULCIO_URL / AIBOX_REKOR_URL / AIBOX_TSA_URL, and settings win over them', () => {
        const env = {AIBOX_FULCIO_URL: 'https://fulcio.env', AIBOX_REKOR_URL: 'https://rekor.env', AIBOX_TSA_URL: 'https://tsa.env'}
        expect(resolveKeylessConfig({}, env)).to.include({fulcioUrl: 'https://fulcio.env', rekorUrl: 'https://rekor.env', tsaUrl: 'https://tsa.env'})
        expect(resolveKeylessConfig({fulcioUrl: 'https://fulcio.flag'}, env).fulcioUrl).to.equal('https://fulcio.flag')
      })
    })
    describe('when Fulcio is not named', () => {
      it('throws FULCIO_URL_MISSING: there is no default Sigstore', () => {
        const e = expectCodeSync(() => resolveKeylessConfig({rekorUrl: 'https://rekor.example.com'}, {}), InputError, 'FULCIO_URL_MISSING', /--fulcio-url URL or AIBOX_FULCIO_URL/)
        expect(e.exit).to.equal(1)
      })
    })
    describe('when neither Rekor nor a TSA is named', () => {
      it('throws KEYLESS_WITNESS_MISSING', () => {
        expectCodeSync(() => resolveKeylessConfig({fulcioUrl: 'https://fulcio.example.com'}, {}), InputError, 'KEYLESS_WITNESS_MISSING', /transparency log .* or a timestamp authority/)
      })
    })
    describe('when a non-loopback URL is plain http', () => {
      it('refuses it (naming where it came from) unless explicitly allowed', () => {
        expectCodeSync(() => resolveKeylessConfig({fulcioUrl: 'https://f.example', rekorUrl: 'http://rekor.example.com'}, {}), InputError, 'SIGSTORE_URL_INSECURE', /Rekor URL http:\/\/rekor\.example\.com \(from --rekor-url\)/)
        expectCodeSync(() => resolveKeylessConfig({}, {AIBOX_FULCIO_URL: 'http://10.0.0.1', AIBOX_TSA_URL: 'https://t.example'}), InputError, 'SIGSTORE_URL_INSECURE', /from AIBOX_FULCIO_URL/)
        expect(resolveKeylessConfig({fulcioUrl: 'http://10.0.0.1', tsaUrl: 'https://t.example', allowInsecureHttp: true}, {}).fulcioUrl).to.equal('http://10.0.0.1')
        expect(resolveKeylessConfig({fulcioUrl: 'http://10.0.0.1', tsaUrl: 'https://t.example'}, {AIBOX_SIGSTORE_ALLOW_HTTP: '1'}).fulcioUrl).to.equal('http://10.0.0.1')
      })
    })
    describe('when a URL is malformed', () => {
      it('refuses non-URLs, other schemes, credentials and queries', () => {
        const base = {tsaUrl: 'https://t.example'}
        expectCodeSync(() => resolveKeylessConfig({...base, fulcioUrl: 'fulcio.example.com'}, {}), 'SIGSTORE_URL_INVALID', /is not a URL/)
        expectCodeSync(() => resolveKeylessConfig({...base, fulcioUrl: 'ftp://f.example'}, {}), 'SIGSTORE_URL_INVALID', /must be http\(s\)/)
        const e = expectCodeSync(() => resolveKeylessConfig({...base, fulcioUrl: 'https://user:s3cret@f.example'}, {}), 'SIGSTORE_URL_INVALID', /credentials/)
        expect(e.message).to.not.contain('s3cret')
        expectCodeSync(() => resolveKeylessConfig({...base, fulcioUrl: 'https://f.example/?x=1'}, {}), 'SIGSTORE_URL_INVALID', /base URL/)
      })
    })
  })

  describe('#readIdentityToken', () => {
    describe('when no token is set', () => {
      it('throws OIDC_TOKEN_MISSING naming both variables', () => {
        expectCodeSync(() => readIdentityToken({SIGSTORE_ID_TOKEN: '  '}), InputError, 'OIDC_TOKEN_MISSING', /SIGSTORE_ID_TOKEN or AIBOX_OIDC_TOKEN/)
      })
    })
    describe('when both are set', () => {
      it('prefers SIGSTORE_ID_TOKEN and reports issuer, subject and expiry', () => {
        const exp = future()
        const t = readIdentityToken({SIGSTORE_ID_TOKEN: `${jwt({iss: 'https://a', sub: 'one', exp})}\n`, AIBOX_OIDC_TOKEN: jwt({iss: 'https://b', sub: 'two', exp})})
        expect(t).to.include({source: 'SIGSTORE_ID_TOKEN', issuer: 'https://a', subject: 'one'})
        expect(t.expiresAt!.getTime()).to.equal(exp * 1000)
        expect(readIdentityToken({AIBOX_OIDC_TOKEN: jwt({iss: 'https://b', sub: 'two'})})).to.include({source: 'AIBOX_OIDC_TOKEN', subject: 'two'})
      })
    })
  })

  describe('#parseIdentityToken', () => {
    describe('when the token is not a JWT', () => {
      it('throws OIDC_TOKEN_INVALID without echoing the token', () => {
        const secret = 'not-a-jwt-but-maybe-a-secret'
        const e = expectCodeSync(() => parseIdentityToken(secret, 'SIGSTORE_ID_TOKEN'), InputError, 'OIDC_TOKEN_INVALID', /is not a JWT \(expected header\.payload\.signature, found 1 part\)/)
        expect(e.message).to.not.contain(secret)
        expectCodeSync(() => parseIdentityToken('a.b.c', 'X'), 'OIDC_TOKEN_INVALID', /header is not base64url JSON/)
        expectCodeSync(() => parseIdentityToken(`${b64url({alg: 'none'})}.%%%.x`, 'X'), 'OIDC_TOKEN_INVALID', /payload is not base64url JSON/)
      })
    })
    describe('when claims are missing', () => {
      it('names the missing claim', () => {
        expectCodeSync(() => parseIdentityToken(jwt({sub: 'x'}), 'X'), 'OIDC_TOKEN_INVALID', /no "iss"/)
        expectCodeSync(() => parseIdentityToken(jwt({iss: 'https://i'}), 'X'), 'OIDC_TOKEN_INVALID', /neither an "email" nor a "sub"/)
        expectCodeSync(() => parseIdentityToken(jwt({iss: 'https://i', email: 'a@example.com'}), 'X'), 'OIDC_TOKEN_INVALID', /not "email_verified": true/)
        expectCodeSync(() => parseIdentityToken(jwt({iss: 'https://i', sub: 's', exp: 'soon'}), 'X'), 'OIDC_TOKEN_INVALID', /"exp" claim that is not a number/)
      })
      it('takes a verified email over sub (what Fulcio certifies)', () => {
        expect(parseIdentityToken(jwt({iss: 'https://i', sub: 's', email: 'a@example.com', email_verified: true}), 'X').subject).to.equal('a@example.com')
      })
    })
    describe('when the token has expired', () => {
      it('throws OIDC_TOKEN_EXPIRED with the time', () => {
        const now = new Date('2030-01-01T00:10:00Z')
        const exp = Date.parse('2030-01-01T00:05:00Z') / 1000
        const e = expectCodeSync(() => parseIdentityToken(jwt({iss: 'https://i', sub: 'ci', exp}), 'AIBOX_OIDC_TOKEN', now), InputError, 'OIDC_TOKEN_EXPIRED', /AIBOX_OIDC_TOKEN \(ci from https:\/\/i\) expired at 2030-01-01T00:05:00\.000Z/)
        expect(e.exit).to.equal(1)
      })
    })
    describe('when the token is not valid yet', () => {
      it('throws OIDC_TOKEN_NOT_YET_VALID beyond a minute of skew', () => {
        const now = new Date('2030-01-01T00:00:00Z')
        expectCodeSync(() => parseIdentityToken(jwt({iss: 'https://i', sub: 's', nbf: now.getTime() / 1000 + 3600}), 'X', now), 'OIDC_TOKEN_NOT_YET_VALID', /not valid before 2030-01-01T01:00:00/)
        expect(parseIdentityToken(jwt({iss: 'https://i', sub: 's', nbf: now.getTime() / 1000 + 30}), 'X', now).subject).to.equal('s')
      })
    })
  })

  describe('KeylessSigner', () => {
    let mock: MockSigstore
    before(async () => {
      mock = await startMockSigstore()
    })
    after(async () => {
      await mock.close()
    })
    const signer = (settings: {rekor?: boolean; tsa?: boolean; retries?: number} = {}) =>
      KeylessSigner.fromEnvironment(
        {
          fulcioUrl: mock.url,
          ...(settings.rekor === false ? {} : {rekorUrl: mock.url}),
          ...(settings.tsa === false ? {} : {tsaUrl: mock.url}),
          ...(settings.retries === undefined ? {} : {retries: settings.retries}),
        },
        {SIGSTORE_ID_TOKEN: mock.token({sub: SUBJECT})},
      )
    const digest = `sha256:${createHash('sha256').update('policy').digest('hex')}`

    describe('#signSubjects', () => {
      it('writes a cosign-compatible v0.3 DSSE bundle with the Fulcio certificate, one tlog entry and one timestamp', async () => {
        const r = await signer().signSubjects([{digest}])
        expect(r.bundle.mediaType).to.equal(BUNDLE_V03_MEDIA_TYPE)
        expect(Object.keys(r.bundle.verificationMaterial)).to.deep.equal(['certificate', 'tlogEntries', 'timestampVerificationData'])
        expect(cosignCompatibilityProblems(r.bundle)).to.deep.equal([])
        expect(Object.keys(r.bundle.dsseEnvelope!.signatures[0]!)).to.deep.equal(['sig'])
        const st = JSON.parse(Buffer.from(r.bundle.dsseEnvelope!.payload, 'base64').toString())
        expect(st.predicateType).to.equal(COSIGN_SIGN_PREDICATE_TYPE)
        expect(st.subject).to.deep.equal([{digest: {sha256: digest.slice(7)}}])
        expect(r.signer.identity).to.deep.equal({issuer: MOCK_ISSUER, subject: SUBJECT})
        expect(r).to.include({tlogEntries: 1, timestamps: 1})
        const cert = new X509Certificate(Buffer.from((r.bundle.verificationMaterial as {certificate: {rawBytes: string}}).certificate.rawBytes, 'base64'))
        expect(r.signer.keyId).to.equal(createHash('sha256').update(cert.publicKey.export({type: 'spki', format: 'der'})).digest('hex').slice(0, 16))
        expect(Date.parse(r.certificate.notAfter) - Date.parse(r.certificate.notBefore)).to.equal(10 * 60 * 1000)
        const calls = mock.requests.slice(-3).map((q) => q.path)
        expect(calls).to.deep.equal([MOCK_ROUTES.fulcio, MOCK_ROUTES.rekor, MOCK_ROUTES.tsa])
        expect(() => bundleFromJSON(r.bundle)).to.not.throw()
      })
      it('uses only the witnesses that are configured', async () => {
        const before = mock.requests.length
        const r = await signer({rekor: false}).signSubjects([{digest}])
        expect(r).to.include({tlogEntries: 0, timestamps: 1})
        expect(r.bundle.verificationMaterial).to.not.have.property('tlogEntries')
        expect(mock.requests.slice(before).map((q) => q.path)).to.deep.equal([MOCK_ROUTES.fulcio, MOCK_ROUTES.tsa])
        const t = await signer({tsa: false}).signSubjects([{digest}])
        expect(t).to.include({tlogEntries: 1, timestamps: 0})
        expect(t.bundle.verificationMaterial).to.not.have.property('timestampVerificationData')
      })
    })

    describe('#signMessage', () => {
      it('relabels the builder v0.2 chain bundle as v0.3 with the leaf certificate', async () => {
        const r = await signer().signMessage(Buffer.from('hello'))
        expect(r.bundle.mediaType).to.equal(BUNDLE_V03_MEDIA_TYPE)
        expect(r.bundle.verificationMaterial).to.have.property('certificate')
        expect(r.bundle.verificationMaterial).to.not.have.property('x509CertificateChain')
        expect(r.bundle.messageSignature!.messageDigest!.digest).to.equal(createHash('sha256').update('hello').digest('base64'))
        expect(() => bundleFromJSON(r.bundle)).to.not.throw()
      })
    })

    describe('when Fulcio refuses the token', () => {
      it('throws FULCIO_REFUSED (exit 1) with Fulcio’s message and never the token', async () => {
        const s = signer()
        mock.failNext(MOCK_ROUTES.fulcio, 401, 'token audience not allowed')
        const e = await expectCode(s.signSubjects([{digest}]), InputError, 'FULCIO_REFUSED', /Fulcio at http:\/\/127\.0\.0\.1:\d+ refused the request: \(401\) token audience not allowed/)
        expect(e.exit).to.equal(1)
        expect(JSON.stringify(e.toJSON())).to.not.contain(s.token.token)
        expect(e.suggestions!.join(' ')).to.contain(MOCK_ISSUER)
      })
    })
    describe('when a witness fails once', () => {
      it('retries and succeeds', async () => {
        mock.failNext(MOCK_ROUTES.rekor, 503, 'busy')
        const before = mock.requests.length
        const r = await signer().signSubjects([{digest}])
        expect(r.tlogEntries).to.equal(1)
        expect(mock.requests.slice(before).filter((q) => q.path === MOCK_ROUTES.rekor).map((q) => q.status)).to.deep.equal([503, 201])
      })
    })
    describe('when a witness keeps failing', () => {
      it('throws TSA_UNAVAILABLE (exit 4, transient)', async () => {
        mock.failNext(MOCK_ROUTES.tsa, 503, 'down')
        const e = await expectCode(signer({retries: 0}).signSubjects([{digest}]), TransientError, 'TSA_UNAVAILABLE', /the timestamp authority at http:\/\/127\.0\.0\.1:\d+ could not be reached or failed: \(503\) down/)
        expect(e.exit).to.equal(4)
      })
    })
    describe('when Fulcio is unreachable', () => {
      it('throws FULCIO_UNAVAILABLE (exit 4)', async () => {
        const server = http.createServer()
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
        const port = (server.address() as AddressInfo).port
        await new Promise<void>((resolve) => server.close(() => resolve()))
        const s = KeylessSigner.fromEnvironment({fulcioUrl: `http://127.0.0.1:${port}`, tsaUrl: mock.url, retries: 0}, {SIGSTORE_ID_TOKEN: mock.token({sub: SUBJECT})})
        await expectCode(s.signSubjects([{digest}]), TransientError, 'FULCIO_UNAVAILABLE', /ECONNREFUSED/)
      })
    })
  })
})

import {expect} from 'chai'
import {Readable} from 'node:stream'

import {parseErrorBody, responseError} from '../../../src/oci/client.js'
import {OciError} from '../../../src/oci/errors.js'
import {type HttpResponse, classifyNetworkError} from '../../../src/oci/http.js'
import {registerSecret} from '../../../src/oci/redact.js'

function res(status: number, body: string, headers: Record<string, string> = {}, attempts = 1): HttpResponse {
  return {status, headers, body: Readable.from([Buffer.from(body)]), url: new URL('http://reg.example:5000/v2/x/manifests/v1'), attempts}
}

const errors = (...e: Array<{code: string; message?: string; detail?: unknown}>) => JSON.stringify({errors: e})

describe('client', () => {
  describe('#responseError', () => {
    describe('when the registry answers 404', () => {
      it('uses the caller’s not-found message and the registry’s error code (exit 3)', async () => {
        const e = await responseError(res(404, errors({code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: {Tag: 'v1'}})), {
          what: 'resolve tag "v1" in reg.example:5000/x',
          notFound: 'tag "v1" not found in reg.example:5000/x',
        })
        expect(e).to.be.instanceOf(OciError)
        expect(e.code).to.equal('NOT_FOUND')
        expect(e.exit).to.equal(3)
        expect(e.message).to.equal('tag "v1" not found in reg.example:5000/x (reg.example:5000 answered 404: MANIFEST_UNKNOWN: manifest unknown ({"Tag":"v1"}))')
        expect(e.details).to.deep.include({status: 404, registryErrors: ['MANIFEST_UNKNOWN']})
      })

      it('tells a router miss (plain-text 404) from a missing manifest', async () => {
        const e = await responseError(res(404, '404 page not found\n'), {what: 'list referrers'})
        expect(e.code).to.equal('NOT_FOUND')
        expect(e.suggestions!.join(' ')).to.contain('did not recognise the request path')
      })
    })

    describe('when the registry refuses the content (400)', () => {
      it('maps DIGEST_INVALID to DIGEST_MISMATCH (exit 2)', async () => {
        const e = await responseError(res(400, errors({code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content'})), {what: 'push blob'})
        expect(e.code).to.equal('DIGEST_MISMATCH')
        expect(e.exit).to.equal(2)
      })

      it('maps MANIFEST_BLOB_UNKNOWN to INVALID_MANIFEST (exit 1) with the order to push in', async () => {
        const e = await responseError(res(400, errors({code: 'MANIFEST_BLOB_UNKNOWN', detail: 'sha256:abc'})), {what: 'push manifest'})
        expect(e.code).to.equal('INVALID_MANIFEST')
        expect(e.exit).to.equal(1)
        expect(e.suggestions!.join(' ')).to.contain('pushed to the same repository first')
      })

      it('treats an expired upload session as transient (exit 4)', async () => {
        const e = await responseError(res(400, errors({code: 'BLOB_UPLOAD_UNKNOWN'})), {what: 'push blob'})
        expect(e.code).to.equal('REGISTRY_ERROR')
        expect(e.exit).to.equal(4)
      })

      it('recognises a plain-HTTP request to an HTTPS port', async () => {
        const e = await responseError(res(400, 'Client sent an HTTP request to an HTTPS server.\n'), {what: 'ping'})
        expect(e.code).to.equal('TLS')
        expect(e.suggestions!.join(' ')).to.contain('--plain-http')
      })
    })

    describe('when the registry fails or throttles', () => {
      it('says 5xx is transient (exit 4) and how many attempts were made', async () => {
        const e = await responseError(res(503, 'upstream down', {}, 4), {what: 'fetch blob'})
        expect(e.code).to.equal('REGISTRY_ERROR')
        expect(e.exit).to.equal(4)
        expect(e.message).to.contain('failed with 503 after 4 attempts: upstream down')
      })

      it('reports Retry-After on 429', async () => {
        const e = await responseError(res(429, errors({code: 'TOOMANYREQUESTS'}), {'retry-after': '30'}), {what: 'pull'})
        expect(e.exit).to.equal(4)
        expect(e.message).to.contain('Retry-After 30')
      })

      it('says 413 is a request-size limit, not transient', async () => {
        const e = await responseError(res(413, '<html>Request Entity Too Large</html>'), {what: 'push blob'})
        expect(e.exit).to.equal(1)
        expect(e.suggestions!.join(' ')).to.contain('chunk size')
      })
    })

    it('masks secrets a registry echoes back, and truncates huge bodies', async () => {
      registerSecret('echoed-secret-value-77')
      const e = await responseError(res(400, `bad request for password echoed-secret-value-77 ${'x'.repeat(100_000)}`), {what: 'push'})
      expect(e.message).to.not.contain('echoed-secret-value-77')
      expect(e.message.length).to.be.lessThan(1000)
    })
  })

  describe('#parseErrorBody', () => {
    it('reads distribution error bodies and nothing else', () => {
      expect(parseErrorBody(errors({code: 'DENIED', message: 'no'}))).to.deep.equal([{code: 'DENIED', message: 'no', detail: undefined}])
      expect(parseErrorBody('404 page not found')).to.equal(undefined)
      expect(parseErrorBody('{"message":"x"}')).to.equal(undefined)
    })
  })

  describe('#classifyNetworkError', () => {
    const url = new URL('https://reg.example/v2/')
    const err = (code: string, message = code) => Object.assign(new Error(message), {code})

    it('maps certificate failures to TLS with --ca-file advice, not retryable', () => {
      const c = classifyNetworkError(err('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'), url)
      expect(c.retryable).to.equal(false)
      expect(c.error.code).to.equal('TLS')
      expect(c.error.suggestions!.join(' ')).to.contain('--ca-file')
    })

    it('retries resets, broken pipes and timeouts', () => {
      for (const code of ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']) {
        expect(classifyNetworkError(err(code), url).retryable, code).to.equal(true)
      }
      expect(classifyNetworkError(err('UND_ERR_CONNECT_TIMEOUT'), url).error.code).to.equal('TIMEOUT')
      expect(classifyNetworkError(new Error('socket hang up'), url).retryable).to.equal(true)
    })

    it('does not retry refused connections or unknown hosts, and says what to check', () => {
      const refused = classifyNetworkError(err('ECONNREFUSED'), url)
      expect(refused.retryable).to.equal(false)
      expect(refused.error.exit).to.equal(4)
      expect(classifyNetworkError(err('ENOTFOUND'), url).error.message).to.contain('cannot resolve host reg.example')
    })

    it('finds the code in the cause chain', () => {
      const wrapped = Object.assign(new Error('fetch failed'), {cause: err('ECONNRESET')})
      expect(classifyNetworkError(wrapped, url).retryable).to.equal(true)
    })
  })
})

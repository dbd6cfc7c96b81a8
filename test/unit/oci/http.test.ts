import {expect} from 'chai'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type {AddressInfo} from 'node:net'
import path from 'node:path'

import {staticCredentials} from '../../../src/oci/auth/credentials.js'
import {readAll} from '../../../src/oci/content.js'
import {OciError} from '../../../src/oci/errors.js'
import {DEFAULT_RETRY, HttpTransport, backoffDelay, parseRetryAfter, resetWarnings} from '../../../src/oci/http.js'
import {artifact, pushArtifact, randomBlob, streamOf} from '../../helpers/artifacts.js'
import {runTs} from '../../helpers/children.js'
import {ROOT} from '../../helpers/cli.js'
import {expectCode} from '../../helpers/expect-error.js'
import {type FaultProxy, startFaultProxy} from '../../helpers/fault-proxy.js'
import {type RegistryHandle, repositoryFactory, startRegistry} from '../../helpers/registry.js'
import {tmpdir} from '../../helpers/tmp.js'

const MiB = 1024 * 1024

describe('HttpTransport', function () {
  this.timeout(120_000)
  const repo = repositoryFactory({onWarning: () => {}, retry: {baseDelayMs: 5, maxDelayMs: 20}})

  describe('retries', () => {
    let reg: RegistryHandle
    let proxy: FaultProxy
    let n = 0
    const name = () => `${proxy.host}/retry/r${++n}`
    const outcomes = (method: string, re: RegExp) => proxy.requests.filter((q) => q.method === method && re.test(q.url)).map((q) => q.outcome)

    before(async () => {
      reg = await startRegistry()
      proxy = await startFaultProxy(reg.url)
    })
    after(async () => {
      await proxy?.close()
      await reg?.stop()
    })
    beforeEach(() => {
      proxy.requests.length = 0
      proxy.clearRules()
    })

    describe('when the registry fails transiently', () => {
      it('retries 5xx with backoff until it answers', async () => {
        const r = repo(name())
        const a = artifact(['retry 5xx'])
        await pushArtifact(r, a, 'v1')
        proxy.requests.length = 0
        proxy.addRule({method: 'HEAD', path: /\/manifests\/v1$/, times: 1, action: {status: 503}})
        proxy.addRule({method: 'HEAD', path: /\/manifests\/v1$/, times: 1, action: {status: 502}})
        expect((await r.resolve('v1')).digest).to.equal(a.manifest.desc.digest)
        expect(outcomes('HEAD', /\/manifests\/v1$/)).to.deep.equal([503, 502, 200])
      })

      it('waits for Retry-After on 429', async () => {
        const r = repo(name())
        await pushArtifact(r, artifact(['429']), 'v1')
        proxy.addRule({method: 'GET', path: /\/tags\/list/, action: {status: 429, retryAfter: '1'}})
        const t = Date.now()
        expect(await r.tags()).to.deep.equal(['v1'])
        expect(Date.now() - t).to.be.at.least(950)
        expect(outcomes('GET', /\/tags\/list/)).to.deep.equal([429, 200])
      })

      it('retries a reset connection', async () => {
        const r = repo(name())
        await pushArtifact(r, artifact(['reset']), 'v1')
        proxy.addRule({method: 'GET', path: /\/tags\/list/, action: {reset: true}})
        expect(await r.tags()).to.deep.equal(['v1'])
        expect(outcomes('GET', /\/tags\/list/)).to.deep.equal(['reset', 200])
      })

      it('gives up after the configured attempts with a transient error (exit 4)', async () => {
        const r = repo(name(), {retry: {attempts: 3}})
        proxy.addRule({method: 'GET', path: /\/tags\/list/, times: 99, action: {status: 500}})
        const e = await expectCode(r.tags(), OciError, 'REGISTRY_ERROR')
        expect(e.exit).to.equal(4)
        expect(e.message).to.contain('failed with 500 after 3 attempts')
        expect(outcomes('GET', /\/tags\/list/)).to.deep.equal([500, 500, 500])
      })

      it('does not wait for a Retry-After longer than the limit, and says when to retry', async () => {
        const r = repo(name(), {retry: {maxRetryAfterMs: 2000}})
        proxy.addRule({method: 'GET', path: /\/tags\/list/, action: {status: 429, retryAfter: '3600'}})
        const e = await expectCode(r.tags(), OciError, 'REGISTRY_ERROR')
        expect(e.exit).to.equal(4)
        expect(e.message).to.contain('rate limiting').and.contain('Retry-After 3600')
        expect(outcomes('GET', /\/tags\/list/)).to.deep.equal([429])
      })

      it('times out waiting for headers, retries, then fails with TIMEOUT (exit 4)', async () => {
        const r = repo(name(), {timeouts: {headersMs: 300}, retry: {attempts: 2}})
        proxy.addRule({method: 'GET', path: /\/tags\/list/, times: 2, action: {delayMs: 1500}})
        const e = await expectCode(r.tags(), OciError, 'TIMEOUT')
        expect(e.exit).to.equal(4)
        expect(e.message).to.contain('timed out waiting for the response').and.contain('after 2 attempts')
        expect(proxy.requests.filter((q) => /\/tags\/list/.test(q.url))).to.have.length(2)
      })
    })

    describe('when the registry refuses the request (4xx)', () => {
      for (const [status, code] of [
        [400, 'REGISTRY_ERROR'],
        [403, 'DENIED'],
        [404, 'NOT_FOUND'],
        [405, 'UNSUPPORTED'],
      ] as const) {
        it(`does not retry ${status} (${code})`, async () => {
          const r = repo(name())
          proxy.addRule({method: 'GET', path: /\/tags\/list/, times: 5, action: {status}})
          const e = await expectCode(r.tags(), OciError, code)
          expect(e.exit).to.not.equal(4)
          expect(outcomes('GET', /\/tags\/list/)).to.deep.equal([status])
        })
      }
    })

    describe('when an upload fails midway', () => {
      it('restarts a monolithic upload with a new session', async () => {
        const r = repo(name())
        const b = randomBlob(1000)
        proxy.addRule({method: 'PUT', path: /\/blobs\/uploads\//, action: {reset: true}})
        await r.push(b.desc, b.data)
        expect(outcomes('POST', /\/blobs\/uploads\//)).to.have.length(2)
        expect(await r.exists(b.desc)).to.equal(true)
      })

      it('resends a failed chunk from the offset the registry reports (upload status GET)', async () => {
        const r = repo(name(), {chunkSize: 2 * MiB})
        const b = randomBlob(6 * MiB)
        proxy.addRule({method: 'PATCH', path: /\/blobs\/uploads\//, times: 1, action: {status: 503}})
        proxy.addRule({method: 'PATCH', path: /\/blobs\/uploads\//, times: 1, action: {reset: true}})
        await r.push(b.desc, streamOf(b.data))
        expect(outcomes('PATCH', /\/blobs\/uploads\//)).to.deep.equal([503, 'reset', 202, 202, 202])
        expect(outcomes('GET', /\/blobs\/uploads\//)).to.deep.equal([204, 204])
        expect(outcomes('POST', /\/blobs\/uploads\//)).to.have.length(1)
        expect((await readAll(await r.fetch(b.desc), 7 * MiB)).equals(b.data)).to.equal(true)
      })

      it('never re-sends a streamed body: fails as transient and says to run again', async () => {
        const r = repo(name())
        const b = randomBlob(5 * MiB)
        proxy.addRule({method: 'PATCH', path: /\/blobs\/uploads\//, action: {reset: true}})
        const e = await expectCode(r.push(b.desc, streamOf(b.data)), OciError, 'NETWORK')
        expect(e.exit).to.equal(4)
        expect(e.message).to.contain('cannot be re-sent').and.contain('run the command again')
        expect(outcomes('PATCH', /\/blobs\/uploads\//)).to.deep.equal(['reset'])
        expect(await r.exists(b.desc)).to.equal(false)
      })

      it('restarts a streamed upload from a fresh stream when it can reopen the source', async () => {
        const r = repo(name())
        const b = randomBlob(5 * MiB)
        proxy.addRule({method: 'PATCH', path: /\/blobs\/uploads\//, action: {reset: true}})
        let reopened = 0
        await r.push(b.desc, streamOf(b.data), {reopen: async () => (reopened++, streamOf(b.data))})
        expect(reopened).to.equal(1)
        expect(outcomes('POST', /\/blobs\/uploads\//)).to.have.length(2)
        expect(await r.exists(b.desc)).to.equal(true)
      })
    })
  })

  describe('redirects', () => {
    let reg: RegistryHandle
    let proxy: FaultProxy
    let storage: http.Server
    const storageSaw: http.IncomingHttpHeaders[] = []
    const blob = randomBlob(64 * 1024)

    before(async () => {
      reg = await startRegistry({auth: 'basic', username: 'u', password: 'redirect-pw-5'})
      proxy = await startFaultProxy(reg.url)
      // Stands for object storage a registry redirects blob downloads to: another origin.
      storage = http.createServer((req, res) => {
        storageSaw.push(req.headers)
        res.writeHead(200, {'content-type': 'application/octet-stream', 'content-length': String(blob.data.length)})
        res.end(blob.data)
      })
      await new Promise<void>((resolve) => storage.listen(0, '127.0.0.1', resolve))
    })
    after(async () => {
      await new Promise((resolve) => storage?.close(resolve))
      await proxy?.close()
      await reg?.stop()
    })

    it('follows a blob redirect to another origin without sending it the credentials', async () => {
      const r = repo(`${proxy.host}/redir/x`, {credentials: staticCredentials({username: 'u', password: 'redirect-pw-5'})})
      await r.push(blob.desc, blob.data)
      const port = (storage.address() as AddressInfo).port
      proxy.addRule({method: 'GET', path: /\/blobs\/sha256:/, action: {redirectTo: `http://127.0.0.1:${port}/bucket/object?sig=abc`}})
      const got = await readAll(await r.fetch(blob.desc), 1 * MiB)
      expect(got.equals(blob.data)).to.equal(true)
      const redirected = proxy.requests.find((q) => q.outcome === 307)!
      expect(redirected.headers.authorization).to.match(/^Basic /)
      expect(storageSaw).to.have.length(1)
      expect(storageSaw[0]!.authorization).to.equal(undefined)
    })
  })

  describe('TLS', () => {
    let reg: RegistryHandle
    let plain: RegistryHandle
    before(async () => {
      ;[reg, plain] = await Promise.all([startRegistry({tls: true}), startRegistry()])
      const seed = repo(`${reg.host}/tls/x`, {caFile: reg.caFile})
      await pushArtifact(seed, artifact(['over tls']), 'v1')
    })
    after(async () => {
      await reg?.stop()
      await plain?.stop()
    })

    it('uses HTTPS and trusts the CA given with --ca-file', async () => {
      const r = repo(`${reg.host}/tls/x`, {caFile: reg.caFile})
      expect(r.client.baseUrl).to.equal(`https://${reg.host}`)
      expect(await r.tags()).to.deep.equal(['v1'])
    })

    it('refuses an untrusted certificate with TLS (exit 4), suggesting --ca-file', async () => {
      const r = repo(`${reg.host}/tls/x`, {plainHttp: false})
      const e = await expectCode(r.tags(), OciError, 'TLS')
      expect(e.exit).to.equal(4)
      expect(e.message).to.contain(`TLS certificate of ${reg.host} is not trusted`)
      expect(e.suggestions!.join('\n')).to.contain('--ca-file').and.contain('NODE_EXTRA_CA_CERTS')
    })

    it('trusts NODE_EXTRA_CA_CERTS (read by Node at start-up)', async () => {
      const script = path.join(tmpdir(), 'extra-ca.mts')
      fs.writeFileSync(
        script,
        [
          `import {RemoteRepository} from ${JSON.stringify(path.join(ROOT, 'src/oci/stores/remote.ts'))}`,
          `const r = new RemoteRepository(${JSON.stringify(`${reg.host}/tls/x`)}, {plainHttp: false, retry: {attempts: 1}})`,
          'try { console.log(JSON.stringify(await r.tags())) } catch (e) { console.log(e.code) } finally { await r.close() }',
        ].join('\n'),
      )
      const run = async (extra: string | undefined) => (await runTs(script, [], {NODE_EXTRA_CA_CERTS: extra})).stdout.trim()
      expect(await run(reg.caFile)).to.equal('["v1"]')
      expect(await run(undefined)).to.equal('TLS')
    })

    it('skips verification with --insecure, and warns loudly', async () => {
      resetWarnings()
      const warnings: string[] = []
      const r = repo(`${reg.host}/tls/x`, {plainHttp: false, insecure: true, onWarning: (m) => warnings.push(m)})
      expect(await r.tags()).to.deep.equal(['v1'])
      expect(warnings.join('\n')).to.contain(`TLS certificate verification is DISABLED for ${reg.host}`)
    })

    it('explains a plain-HTTP request to an HTTPS registry', async () => {
      const e = await expectCode(repo(`${reg.host}/tls/x`, {plainHttp: true}).tags(), OciError, 'TLS')
      expect(e.message).to.contain('serves HTTPS, but the request was sent over plain HTTP')
    })

    it('explains an HTTPS request to a plain-HTTP registry', async () => {
      const e = await expectCode(repo(`${plain.host}/tls/x`, {plainHttp: false, retry: {attempts: 1}}).tags(), OciError, 'TLS')
      expect(e.message).to.contain('probably serves plain HTTP')
      expect(e.suggestions!.join(' ')).to.contain('--plain-http')
    })

    it('refuses to follow a redirect from HTTPS to plain HTTP', async () => {
      // A stand-in registry on the test certificate that sends every blob download to plain HTTP.
      const server = https.createServer({cert: fs.readFileSync(path.join(reg.dir, 'cert.pem')), key: fs.readFileSync(path.join(reg.dir, 'key.pem'))}, (_req, res) => {
        res.writeHead(307, {location: 'http://127.0.0.1:9/bucket/blob'})
        res.end()
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      try {
        const port = (server.address() as AddressInfo).port
        const b = randomBlob(10)
        const e = await expectCode(repo(`127.0.0.1:${port}/tls/x`, {caFile: reg.caFile}).fetch(b.desc), OciError, 'TLS')
        expect(e.message).to.contain('redirected to plain HTTP').and.contain('refusing to leave HTTPS')
      } finally {
        await new Promise((resolve) => server.close(resolve))
      }
    })

    it('refuses a CA file it cannot read (exit 1)', () => {
      let caught: unknown
      try {
        repo(`${reg.host}/tls/x`, {caFile: '/nonexistent/ca.pem'})
      } catch (err) {
        caught = err
      }
      expect(caught).to.be.instanceOf(OciError)
      expect((caught as OciError).code).to.equal('TLS')
      expect((caught as OciError).exit).to.equal(1)
      expect((caught as OciError).message).to.contain('cannot read CA file /nonexistent/ca.pem')
    })
  })

  describe('#scheme', () => {
    it('uses plain HTTP for loopback hosts by default and HTTPS elsewhere', () => {
      const t = new HttpTransport()
      expect(t.scheme('127.0.0.1:5000')).to.equal('http')
      expect(t.scheme('localhost:5000')).to.equal('http')
      expect(t.scheme('[::1]:5000')).to.equal('http')
      expect(t.scheme('registry.example.com')).to.equal('https')
      expect(t.scheme('10.0.0.5:5000')).to.equal('https')
    })

    it('follows --plain-http either way, and HTTPS once TLS options are given', () => {
      expect(new HttpTransport({plainHttp: true}).scheme('registry.example.com')).to.equal('http')
      expect(new HttpTransport({plainHttp: false}).scheme('127.0.0.1:5000')).to.equal('https')
      expect(new HttpTransport({insecure: true}).scheme('127.0.0.1:5000')).to.equal('https')
    })
  })

  describe('#backoffDelay and #parseRetryAfter', () => {
    it('grows exponentially with full jitter and a cap', () => {
      const p = {...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000}
      expect(backoffDelay(1, p, () => 0.999)).to.equal(99)
      expect(backoffDelay(3, p, () => 0.999)).to.equal(399)
      expect(backoffDelay(10, p, () => 0.999)).to.equal(999)
      expect(backoffDelay(2, p, () => 0)).to.equal(1)
    })

    it('reads seconds and HTTP dates', () => {
      expect(parseRetryAfter('3')).to.equal(3000)
      expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).to.equal(10_000)
      expect(parseRetryAfter('soon')).to.equal(undefined)
      expect(parseRetryAfter(undefined)).to.equal(undefined)
    })
  })
})

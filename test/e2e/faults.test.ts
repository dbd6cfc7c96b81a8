/**
 * e2e: `aibox push` and `aibox pull` (and `copy` into an oci: layout) through a fault-injecting
 * proxy (test/helpers/fault-proxy.ts) in front of a real registry (distribution 2.8): resets,
 * 500/502/503/429 with Retry-After, stalls, truncated bodies, wrong bytes for a digest, a lying
 * Docker-Content-Digest, redirects and oversized manifests. Each either recovers (retry) and
 * succeeds, or fails with exit 4 (transient, a clear message) or exit 2 (wrong bytes), and a
 * failure leaves nothing partial: no files in `pull -o DIR`, no tag in the layout or the registry.
 */
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {type CliOptions, type CliResult, aibox as run} from '../helpers/cli.js'
import {type FaultProxy, type FaultRule, startFaultProxy} from '../helpers/fault-proxy.js'
import {KEYS_DIR, ORG_BASELINE} from '../helpers/policy-fixtures.js'
import {type RegistryHandle, startRegistry} from '../helpers/registry.js'
import {listFiles, tmpdir} from '../helpers/tmp.js'

const KEY = path.join(KEYS_DIR, 'alice.key')
const PUB = path.join(KEYS_DIR, 'alice.pub')
const BLOB = /\/blobs\/sha256:/
const MANIFEST_TAG = /\/manifests\/1\.4\.0$/

describe('aibox push / pull under registry faults (e2e)', function () {
  this.timeout(300_000)
  let reg: RegistryHandle
  let proxy: FaultProxy
  const work = tmpdir('aibox-faults-')
  const audit = path.join(work, 'audit.jsonl')
  let n = 0

  function aibox(args: string[], options: CliOptions = {}): Promise<CliResult> {
    return run(args, {
      ...options,
      // Short backoff is not configurable from the CLI; timeouts and attempts are (README "HTTP or HTTPS").
      env: {COSIGN_PASSWORD: 'test', AIBOX_AUDIT_LOG: audit, AIBOX_REGISTRY_TIMEOUT: '3', CI: '1', ...options.env},
      timeoutMs: 120_000,
    })
  }
  /** A fault rule for this test only. */
  function fault(rule: FaultRule): void {
    proxy.addRule(rule)
  }
  const out = () => path.join(work, `out-${++n}`)
  const pullArgs = (dir: string, ref = `${proxy.host}/policies/org:1.4.0`) => ['pull', ref, '--key', PUB, '-o', dir]
  function expectPulled(r: CliResult, dir: string): void {
    expect(r.code, r.stderr).to.equal(0)
    expect(listFiles(dir)).to.deep.equal(['org-baseline.json', 'org-baseline.yaml'])
  }
  function expectFailed(r: CliResult, exit: number, code: string, message: RegExp, dir?: string): void {
    expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(exit)
    expect(r.stderr).to.match(new RegExp(`Code: ${code}\\b`))
    expect(r.stderr).to.match(message)
    expect(r.stderr).to.not.match(/INTERNAL|TypeError|\n\s+at /)
    if (dir) expect(fs.existsSync(dir) ? listFiles(dir) : [], 'nothing written').to.deep.equal([])
  }
  const seen = (method: string, re: RegExp) => proxy.requests.filter((r) => r.method === method && re.test(r.url))

  before(async () => {
    reg = await startRegistry()
    proxy = await startFaultProxy(reg.url)
    const r = await aibox(['push', ORG_BASELINE, `${reg.host}/policies/org`, '--key', KEY])
    expect(r.code, r.stderr).to.equal(0)
  })
  beforeEach(() => {
    proxy.clearRules()
    proxy.requests.length = 0
  })
  after(async () => {
    await proxy?.close()
    await reg?.stop()
  })

  describe('aibox pull', () => {
    describe('when the registry fails for a while', () => {
      it('retries 503 with Retry-After and 500/502 on the manifest, 429 on a blob, and succeeds', async () => {
        fault({method: 'GET', path: /\/manifests\/sha256:/, times: 1, action: {status: 503, retryAfter: '1'}})
        fault({method: 'HEAD', path: MANIFEST_TAG, times: 1, action: {status: 500}})
        fault({method: 'HEAD', path: MANIFEST_TAG, times: 1, action: {status: 502}})
        fault({method: 'GET', path: BLOB, times: 1, action: {status: 429, retryAfter: '1'}})
        const dir = out()
        const r = await aibox(pullArgs(dir))
        expectPulled(r, dir)
        expect(proxy.requests.filter((x) => x.outcome === 503 || x.outcome === 500 || x.outcome === 502 || x.outcome === 429)).to.have.length(4)
      })
      it('retries connection resets and a body cut in the middle, and succeeds', async () => {
        fault({method: 'HEAD', path: MANIFEST_TAG, times: 1, action: {reset: true}})
        fault({method: 'GET', path: BLOB, times: 1, action: {reset: true}})
        fault({method: 'GET', path: BLOB, times: 1, action: {cutResponseAfter: 100}})
        const dir = out()
        expectPulled(await aibox(pullArgs(dir)), dir)
        expect(proxy.requests.filter((x) => x.outcome === 'reset' || x.outcome === 'cut')).to.have.length(3)
      })
      it('gives up on a stalled body after AIBOX_REGISTRY_TIMEOUT and retries it, and succeeds', async () => {
        fault({method: 'GET', path: BLOB, times: 1, action: {stallAfterBytes: 10}})
        const dir = out()
        const started = Date.now()
        expectPulled(await aibox(pullArgs(dir), {env: {AIBOX_REGISTRY_TIMEOUT: '1'}}), dir)
        expect(proxy.requests.some((x) => x.outcome === 'stalled')).to.equal(true)
        expect(Date.now() - started).to.be.below(60_000)
      })
      it('follows a redirect of a blob download (as to object storage), and succeeds', async () => {
        // The redirect target is the same blob on the registry itself, another origin.
        const blob = await firstBlob()
        fault({method: 'GET', path: new RegExp(`/blobs/${blob}$`), times: 1, action: {redirectTo: `${reg.url}/v2/policies/org/blobs/${blob}`}})
        const dir = out()
        expectPulled(await aibox(pullArgs(dir)), dir)
        expect(proxy.requests.filter((x) => x.outcome === 307)).to.have.length(1)
      })
    })

    describe('when the registry keeps failing', () => {
      it('exits 4 after its attempts on 503, naming the status and the URL, and writes nothing', async () => {
        fault({method: 'HEAD', path: MANIFEST_TAG, times: 100, action: {status: 503}})
        const dir = out()
        const r = await aibox(pullArgs(dir), {env: {AIBOX_REGISTRY_ATTEMPTS: '2'}})
        expectFailed(r, 4, 'REGISTRY_ERROR', /503/, dir)
        expect(seen('HEAD', MANIFEST_TAG)).to.have.length(2)
      })
      it('exits 4 at once on 429 with a Retry-After longer than it waits, saying when to retry', async () => {
        fault({method: 'HEAD', path: MANIFEST_TAG, times: 100, action: {status: 429, retryAfter: '3600'}})
        const dir = out()
        expectFailed(await aibox(pullArgs(dir)), 4, 'REGISTRY_ERROR', /rate limiting.*Retry-After 3600/, dir)
        expect(seen('HEAD', MANIFEST_TAG)).to.have.length(1)
      })
      it('exits 4 when every connection is reset', async () => {
        fault({path: /\/v2\//, times: 1000, action: {reset: true}})
        const dir = out()
        expectFailed(await aibox(pullArgs(dir), {env: {AIBOX_REGISTRY_ATTEMPTS: '2'}}), 4, 'NETWORK', /network error|socket|reset|closed/i, dir)
      })
      it('exits 4 when a body stalls on every attempt', async () => {
        fault({method: 'GET', path: BLOB, times: 100, action: {stallAfterBytes: 10}})
        const dir = out()
        expectFailed(await aibox(pullArgs(dir), {env: {AIBOX_REGISTRY_TIMEOUT: '1', AIBOX_REGISTRY_ATTEMPTS: '2'}}), 4, 'TIMEOUT', /timed out reading the response body/, dir)
      })
      it('exits 4 on a redirect loop', async () => {
        const blob = await firstBlob()
        fault({method: 'GET', path: new RegExp(`/blobs/${blob}$`), times: 100, action: {redirectTo: `${proxy.url}/v2/policies/org/blobs/${blob}`}})
        const dir = out()
        expectFailed(await aibox(pullArgs(dir)), 4, 'REGISTRY_ERROR', /too many redirects/, dir)
      })
    })

    describe('when the registry serves wrong bytes', () => {
      it('exits 2 when a blob does not match its digest, and writes nothing', async () => {
        fault({method: 'GET', path: BLOB, times: 100, action: {rewriteBody: (b) => Buffer.from(b.toString('latin1').replace(/deny/, 'allo'), 'latin1')}})
        const dir = out()
        expectFailed(await aibox(pullArgs(dir)), 2, 'DIGEST_MISMATCH', /does not match|digest/, dir)
      })
      it('exits 2 when the manifest under the tag is not the signed one (same size, one byte changed)', async () => {
        // HEAD still names the original digest: the GET by digest returns other bytes of the same length.
        fault({method: 'GET', path: /\/manifests\//, times: 100, action: {rewriteBody: (b) => Buffer.from(b.toString('latin1').replace('1.4.0', '1.4.1'), 'latin1')}})
        const dir = out()
        expectFailed(await aibox(pullArgs(dir)), 2, 'DIGEST_MISMATCH', /does not match its digest/, dir)
      })
      it('exits 2 when Docker-Content-Digest lies about the manifest it serves', async () => {
        fault({method: 'GET', path: /\/manifests\//, times: 100, action: {setHeaders: {'docker-content-digest': `sha256:${'0'.repeat(64)}`}}})
        fault({method: 'HEAD', path: /\/manifests\//, times: 100, action: {setHeaders: {'docker-content-digest': `sha256:${'0'.repeat(64)}`}}})
        const dir = out()
        const r = await aibox(pullArgs(dir, `${proxy.host}/policies/org@${await manifestDigest()}`))
        expectFailed(r, 2, 'DIGEST_MISMATCH', /answered sha256:0{64}|says manifest/, dir)
      })
      it('exits 2 when the tag is made to point at a manifest that is no policy (the signature)', async () => {
        const sig = await signatureDigest()
        fault({method: 'HEAD', path: MANIFEST_TAG, times: 100, action: {setHeaders: {'docker-content-digest': sig}}})
        const dir = out()
        const r = await aibox(pullArgs(dir))
        expect(r.code, r.stderr).to.equal(2)
        expect(r.stderr).to.not.match(/INTERNAL/)
        expect(fs.existsSync(dir) ? listFiles(dir) : []).to.deep.equal([])
      })
      it('exits 2 on a manifest over 4 MiB, reading no more than the limit', async () => {
        const big = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', annotations: {pad: 'x'.repeat(5 * 1024 * 1024)}}))
        fault({method: 'HEAD', path: MANIFEST_TAG, times: 100, action: {status: 200, body: '', headers: {'content-type': 'application/vnd.oci.image.manifest.v1+json'}}})
        fault({method: 'GET', path: MANIFEST_TAG, times: 100, action: {status: 200, body: big, headers: {'content-type': 'application/vnd.oci.image.manifest.v1+json'}}})
        const dir = out()
        expectFailed(await aibox(pullArgs(dir)), 2, 'MANIFEST_TOO_LARGE', /over the 4194304-byte limit/, dir)
      })
    })
  })

  describe('aibox copy into an oci: layout', () => {
    it('leaves no tag in the layout when the copy fails half-way, and the next copy succeeds', async () => {
      const layout = path.join(work, 'layout-copy')
      fault({method: 'GET', path: BLOB, times: 100, action: {status: 503}})
      const r = await aibox(['copy', `${proxy.host}/policies/org:1.4.0`, `oci:${layout}:1.4.0`], {env: {AIBOX_REGISTRY_ATTEMPTS: '2'}})
      expect(r.code, r.stderr).to.equal(4)
      expect(r.stderr).to.match(/Code: REGISTRY_ERROR/)
      const index = fs.existsSync(path.join(layout, 'index.json')) ? JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) : {manifests: []}
      expect(index.manifests.map((m: {annotations?: Record<string, string>}) => m.annotations?.['org.opencontainers.image.ref.name'])).to.not.include('1.4.0')
      expect(listFiles(layout).filter((f) => !f.startsWith('blobs/') && !['oci-layout', 'index.json'].includes(f)), 'no temporary files left').to.deep.equal([])
      proxy.clearRules()
      const again = await aibox(['copy', `${proxy.host}/policies/org:1.4.0`, `oci:${layout}:1.4.0`])
      expect(again.code, again.stderr).to.equal(0)
      const dir = out()
      expectPulled(await aibox(['pull', `oci:${layout}:1.4.0`, '--key', PUB, '-o', dir]), dir)
    })
  })

  describe('aibox push', () => {
    const pushTo = (repo: string) => ['push', ORG_BASELINE, `${proxy.host}/policies/${repo}:stable`, '--key', KEY]
    it('retries a 503 on the upload, a reset on the manifest PUT and a 429 on the tag, and the result verifies', async () => {
      fault({method: 'POST', path: /\/blobs\/uploads\/$/, times: 1, action: {status: 503, retryAfter: '1'}})
      fault({method: 'PUT', path: /\/manifests\/sha256:/, times: 1, action: {reset: true}})
      fault({method: 'PUT', path: /\/manifests\/stable$/, times: 1, action: {status: 429, retryAfter: '1'}})
      const r = await aibox(pushTo('push-retry'))
      expect(r.code, r.stderr).to.equal(0)
      expect(proxy.requests.filter((x) => x.outcome === 503 || x.outcome === 'reset' || x.outcome === 429)).to.have.length(3)
      const dir = out()
      expectPulled(await aibox(pullArgs(dir, `${reg.host}/policies/push-retry:stable`)), dir)
    })
    it('exits 4 when the signature cannot be stored, and tags nothing (an unsigned policy is never published under a tag)', async () => {
      // The signature is a manifest with a subject; on distribution 2.8 its tag-fallback index is a PUT of sha256-<hex>.
      fault({method: 'PUT', path: /\/manifests\/sha256-[0-9a-f]{64}$/, times: 100, action: {status: 500}})
      const r = await aibox(pushTo('push-nosig'), {env: {AIBOX_REGISTRY_ATTEMPTS: '2'}})
      expect(r.code, r.stderr).to.equal(4)
      expect(r.stderr).to.match(/Code: REGISTRY_ERROR/)
      const tags = await aibox(['tags', `${reg.host}/policies/push-nosig`, '--json'])
      expect(tags.json?.tags ?? [], tags.stderr).to.deep.equal([])
      proxy.clearRules()
      expect((await aibox(pushTo('push-nosig'))).code).to.equal(0)
      const dir = out()
      expectPulled(await aibox(pullArgs(dir, `${reg.host}/policies/push-nosig:stable`)), dir)
    })
    it('exits 4 when the manifest PUT keeps failing, and the repository has no tag', async () => {
      fault({method: 'PUT', path: /\/manifests\//, times: 100, action: {status: 502}})
      const r = await aibox(pushTo('push-fail'), {env: {AIBOX_REGISTRY_ATTEMPTS: '2'}})
      expect(r.code, r.stderr).to.equal(4)
      expect(r.stderr).to.match(/502/)
      const tags = await aibox(['tags', `${reg.host}/policies/push-fail`, '--json'])
      expect(tags.json?.tags ?? []).to.deep.equal([])
    })
  })

  // ---- facts about the pushed policy, asked of the registry directly (not through the proxy), once

  let inspected: CliResult | undefined
  async function inspectOnce(): Promise<CliResult> {
    inspected ??= await aibox(['inspect', `${reg.host}/policies/org:1.4.0`, '--json'])
    expect(inspected.code, inspected.stderr).to.equal(0)
    return inspected
  }
  const manifestDigest = async () => (await inspectOnce()).json.digest as string
  const firstBlob = async () => (await inspectOnce()).json.layers[0].digest as string
  async function signatureDigest(): Promise<string> {
    const r = await aibox(['discover', `${reg.host}/policies/org:1.4.0`, '--json'])
    expect(r.code, r.stderr).to.equal(0)
    return r.json.referrers[0].id as string
  }
})

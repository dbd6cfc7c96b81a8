/**
 * e2e: `aibox start` through the fault proxy (test/helpers/fault-proxy.ts) in front of a real
 * registry (distribution 2.8), with each fault aimed at the request it is meant to hit: on the warm
 * path start makes one HEAD per tier (src/start/probe.ts), so faults on that HEAD test the
 * freshness check; with the tag moved to a new version, faults on the GETs of the manifest and its
 * blobs test the fetch. Expected (architecture.md `start/`, seed 002):
 *
 * - a transient failure (reset, 500/502/503, 429 with Retry-After, a stall, a truncated body) with
 *   a warm verified cache: the cache is used, with a warning giving its age (exit 0);
 * - the same with no cache: exit 4 with a clear message (NO_VERIFIED_CACHE or the failure's code);
 * - wrong bytes for a digest, a lying Docker-Content-Digest, a tag made to point at a manifest that
 *   is no policy, an oversized manifest: exit 2, never a fallback, and the cache is untouched
 *   (state.json and every file of the cache compared byte for byte before and after).
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {RemoteRepository} from '../../src/oci/index.js'
import {type CliOptions, type CliResult, aibox as run} from '../helpers/cli.js'
import {type FaultProxy, type FaultRule, startFaultProxy} from '../helpers/fault-proxy.js'
import {PUB, privateKey, publish} from '../helpers/policy-fixtures.js'
import {type RegistryHandle, startRegistry} from '../helpers/registry.js'
import {bundleOf, orgYaml, writeFile} from '../helpers/start-fixtures.js'
import {listFiles, tmpdir} from '../helpers/tmp.js'

describe('aibox start under registry faults (e2e)', function () {
  this.timeout(240_000)
  let reg: RegistryHandle
  let proxy: FaultProxy
  let repo: RemoteRepository
  const work = tmpdir('aibox-start-faults-')
  const p = (...f: string[]) => path.join(work, ...f)
  const warmCache = p('warm-cache')
  const warmAudit = p('warm-audit.jsonl')
  let n = 0
  /** The manifest digests of 1.4.0 (cached, under `stable` and first under `moving`) and of 1.5.0 (under `moving` after the cache was filled). */
  let v14 = ''
  let v15 = ''
  let v15Signature = ''

  // `stable` stays on 1.4.0: a start only makes its HEAD. `moving` went to 1.5.0 after the cache
  // was filled: a start fetches 1.5.0 (manifest, blobs, referrers) and has 1.4.0 to fall back on.
  const config = (tag: 'stable' | 'moving') => p(`aibox-${tag}.yaml`)

  function aibox(args: string[], o: {cache: string; audit: string; config?: string} & CliOptions): Promise<CliResult> {
    return run(args, {
      cwd: work,
      timeoutMs: 180_000,
      env: {AIBOX_CACHE: o.cache, AIBOX_AUDIT_LOG: o.audit, AIBOX_CONFIG: o.config, AIBOX_POLICY_LOCK: undefined, XDG_CACHE_HOME: p('xdg'), CI: '1', ...o.env},
    })
  }
  /** A copy of the warm cache (1.4.0 under both tags) and its audit log, for one start. */
  function warm(): {cache: string; audit: string} {
    const dir = p(`run-${++n}`)
    fs.mkdirSync(dir)
    const o = {cache: path.join(dir, 'cache'), audit: path.join(dir, 'audit.jsonl')}
    fs.cpSync(warmCache, o.cache, {recursive: true})
    for (const suffix of ['', '.head']) if (fs.existsSync(warmAudit + suffix)) fs.copyFileSync(warmAudit + suffix, o.audit + suffix)
    return o
  }
  function cold(): {cache: string; audit: string} {
    const dir = p(`run-${++n}`)
    fs.mkdirSync(dir)
    return {cache: path.join(dir, 'cache'), audit: path.join(dir, 'audit.jsonl')}
  }
  function fault(rule: FaultRule): void {
    proxy.addRule(rule)
  }
  const HEAD_TAG = (tag: string) => new RegExp(`/v2/policies/org/manifests/${tag}$`)
  const MANIFEST_BY_DIGEST = /\/v2\/policies\/org\/manifests\/sha256:/
  const BLOB = /\/v2\/policies\/org\/blobs\/sha256:/

  /** Every file of a cache with the sha256 of its bytes (the configuration memo aside: it memoises the aibox.yaml, not the policy). */
  function snapshot(cache: string): Record<string, string> {
    const out: Record<string, string> = {}
    for (const f of listFiles(cache)) if (!f.startsWith('config-memo')) out[f] = createHash('sha256').update(fs.readFileSync(path.join(cache, f))).digest('hex')
    return out
  }
  function expectNoInternalError(r: CliResult): void {
    expect(r.stderr).to.not.match(/INTERNAL|TypeError|\n\s+at /)
  }
  /** exit 0 from the cache of 1.4.0, with the age warning naming the failure. */
  function expectCacheUsed(r: CliResult, warning: RegExp): void {
    expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(0)
    expect(r.json.source).to.equal('cache')
    expect(r.json.tiers[0].digest).to.equal(v14)
    expect(r.stderr).to.match(/warning: .*using the verified cache from \d+s ago \(1\.4\.0[;,].*maxStaleness 7d\)/)
    expect(r.stderr).to.match(warning)
    expectNoInternalError(r)
  }
  function expectExit(r: CliResult, exit: number, code: RegExp, message: RegExp): void {
    expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(exit)
    expect(r.stderr).to.match(new RegExp(`Code: (${code.source})\\b`))
    expect(r.stderr).to.match(message)
    expectNoInternalError(r)
  }
  /** A start refused with exit 2 whose cache is byte for byte what it was, and whose log says policy.refused. */
  async function expectRefusedUntouched(tag: 'stable' | 'moving', code: RegExp, message: RegExp): Promise<CliResult> {
    const o = warm()
    const before = {state: fs.readFileSync(path.join(o.cache, 'state.json')), files: snapshot(o.cache)}
    const r = await aibox(['start', '--json'], {...o, config: config(tag)})
    expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(2)
    expect(r.json?.error?.code, r.stdout).to.match(new RegExp(`^(${code.source})$`))
    expect(r.json.error.message, JSON.stringify(r.json.error)).to.match(message)
    expect(r.stderr).to.not.match(/using the verified cache/)
    expectNoInternalError(r)
    expect(fs.readFileSync(path.join(o.cache, 'state.json')).equals(before.state), 'state.json unchanged').to.equal(true)
    expect(snapshot(o.cache), 'the cache layout and effective policies unchanged').to.deep.equal(before.files)
    const events = fs.readFileSync(o.audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as {event: string})
    expect(events.at(-1)?.event).to.equal('policy.refused')
    const verify = await aibox(['audit', 'verify'], o)
    expect(verify.code, verify.stderr).to.equal(0)
    return r
  }

  before(async () => {
    reg = await startRegistry()
    proxy = await startFaultProxy(reg.url)
    repo = new RemoteRepository(`${reg.host}/policies/org`)
    v14 = (await publish(repo, bundleOf(orgYaml('1.4.0')), [await privateKey('alice')], ['stable', 'moving'])).manifest.digest
    for (const tag of ['stable', 'moving'] as const) {
      writeFile(work, path.basename(config(tag)), `policy:\n  org: ${proxy.host}/policies/org:${tag}\nkeys: [${PUB('alice')}]\nmaxStaleness: 7d\nregistry: {timeout: 1s}\n`)
      const r = await aibox(['start'], {cache: warmCache, audit: warmAudit, config: config(tag)})
      expect(r.code, r.stderr).to.equal(0)
    }
    const v15Packed = await publish(repo, bundleOf(orgYaml('1.5.0')), [await privateKey('alice')], ['moving'])
    v15 = v15Packed.manifest.digest
    v15Signature = (await repo.predecessors(v15Packed.manifest))[0]!.digest
    expect(v15).to.not.equal(v14)
  })
  beforeEach(() => {
    proxy.clearRules()
    proxy.requests.length = 0
  })
  after(async () => {
    await repo?.close()
    await proxy?.close()
    await reg?.stop()
  })

  describe('when the freshness check (the one HEAD of the warm path) fails transiently, with a warm verified cache', () => {
    it('uses the cache after a connection reset, with one request and the age warning', async () => {
      fault({method: 'HEAD', path: HEAD_TAG('stable'), times: 1, action: {reset: true}})
      const r = await aibox(['start', '--json'], {...warm(), config: config('stable')})
      expectCacheUsed(r, /reset|closed the connection/)
      expect(proxy.requests.map((q) => `${q.method} ${q.outcome}`)).to.deep.equal(['HEAD reset'])
    })
    it('uses the cache on 500, 502, 503 and 429 with Retry-After, never retrying the HEAD', async () => {
      for (const [status, retryAfter] of [[500], [502], [503, '1'], [429, '30']] as Array<[number, string?]>) {
        proxy.requests.length = 0
        fault({method: 'HEAD', path: HEAD_TAG('stable'), times: 1, action: {status, ...(retryAfter ? {retryAfter} : {})}})
        const r = await aibox(['start', '--json'], {...warm(), config: config('stable')})
        expectCacheUsed(r, new RegExp(`answered ${status}`))
        expect(proxy.requests, `status ${status}`).to.have.length(1)
      }
    })
    it('uses the cache when the HEAD stalls past registry.timeout (1s)', async () => {
      fault({method: 'HEAD', path: HEAD_TAG('stable'), times: 1, action: {delayMs: 5000}})
      const started = Date.now()
      const r = await aibox(['start', '--json'], {...warm(), config: config('stable')})
      expectCacheUsed(r, /did not answer the freshness check of stable within 1000 ms/)
      expect(Date.now() - started).to.be.below(4500)
    })
  })

  describe('when fetching a moved tag fails transiently, with a warm verified cache of the old version', () => {
    it('uses the cached 1.4.0 when every blob download answers 503 (after the retries)', async () => {
      fault({method: 'GET', path: BLOB, times: 100, action: {status: 503}})
      const r = await aibox(['start', '--json'], {...warm(), config: config('moving')})
      expectCacheUsed(r, new RegExp(`fetching ${v15} failed \\(.*503`))
      expect(proxy.requests.filter((q) => q.outcome === 503).length).to.be.above(1)
    })
    it('uses the cached 1.4.0 when every body of the new manifest is truncated', async () => {
      // The manifest, not a blob: blob downloads resume with Range and back off for half a minute.
      fault({method: 'GET', path: MANIFEST_BY_DIGEST, times: 100, action: {cutResponseAfter: 20}})
      const r = await aibox(['start', '--json'], {...warm(), config: config('moving')})
      expectCacheUsed(r, new RegExp(`fetching ${v15} failed`))
      expect(proxy.requests.some((q) => q.outcome === 'cut')).to.equal(true)
    })
  })

  describe('when the registry fails and there is no cache', () => {
    it('exits 4 when every connection is reset, naming the reference and saying the cache holds no copy', async () => {
      fault({path: /\/v2\//, times: 1000, action: {reset: true}})
      const r = await aibox(['start'], {...cold(), config: config('stable')})
      expectExit(r, 4, /NO_VERIFIED_CACHE/, /policies\/org:stable: .*reset|closed.*holds no verified copy of it/)
    })
    it('exits 4 on 503 that lasts, and at once on 429 with a Retry-After longer than it waits', async () => {
      fault({path: /\/v2\/policies\/org\/manifests\//, times: 1000, action: {status: 503}})
      const r = await aibox(['start'], {...cold(), config: config('stable')})
      expectExit(r, 4, /NO_VERIFIED_CACHE/, /answered 503.*holds no verified copy of it/s)
      proxy.clearRules()
      proxy.requests.length = 0
      fault({path: /\/v2\/policies\/org\/manifests\//, times: 1000, action: {status: 429, retryAfter: '3600'}})
      const limited = await aibox(['start'], {...cold(), config: config('stable')})
      expectExit(limited, 4, /NO_VERIFIED_CACHE/, /Retry-After 3600/)
      expect(proxy.requests.length, 'no retry of a 429 asking to wait an hour').to.be.at.most(2)
    })
    it('exits 4 when every body of the manifest is truncated, and leaves no entry in the new cache', async () => {
      fault({method: 'GET', path: MANIFEST_BY_DIGEST, times: 1000, action: {cutResponseAfter: 20}})
      const o = cold()
      const r = await aibox(['start'], {...o, config: config('stable')})
      expect(r.code, r.stderr).to.equal(4)
      // Was INTERNAL (exit 1) with undici's raw "other side closed" before remote.ts read manifest bodies with retries.
      expect(r.stderr).to.match(/Code: NETWORK\b/)
      expect(r.stderr).to.match(/network error for .*manifests\/sha256:[0-9a-f]{64}: other side closed \(after \d attempts\)/)
      expectNoInternalError(r)
      const state = fs.existsSync(path.join(o.cache, 'state.json')) ? JSON.parse(fs.readFileSync(path.join(o.cache, 'state.json'), 'utf8')) : {entries: {}}
      expect(state.entries).to.deep.equal({})
    })
  })

  describe('when the registry serves wrong bytes (exit 2, no fallback, the cache untouched)', () => {
    it('a blob that does not match its digest', async () => {
      fault({method: 'GET', path: BLOB, times: 100, action: {rewriteBody: (b) => Buffer.from(b.toString('latin1').replace(/deny/, 'allo'), 'latin1')}})
      await expectRefusedUntouched('moving', /DIGEST_MISMATCH/, /does not match|digest/)
    })
    it('a manifest that is not the one its digest names (same size, one byte changed)', async () => {
      fault({method: 'GET', path: MANIFEST_BY_DIGEST, times: 100, action: {rewriteBody: (b) => Buffer.from(b.toString('latin1').replace('1.5.0', '1.5.1'), 'latin1')}})
      await expectRefusedUntouched('moving', /DIGEST_MISMATCH/, /does not match its digest/)
    })
    it('a Docker-Content-Digest that lies about the manifest served', async () => {
      fault({method: 'GET', path: MANIFEST_BY_DIGEST, times: 100, action: {setHeaders: {'docker-content-digest': `sha256:${'0'.repeat(64)}`}}})
      await expectRefusedUntouched('moving', /DIGEST_MISMATCH/, /sha256:0{64}/)
    })
    it('a HEAD whose Docker-Content-Digest makes the tag point at a manifest that is no policy (its signature)', async () => {
      fault({method: 'HEAD', path: HEAD_TAG('stable'), times: 100, action: {setHeaders: {'docker-content-digest': v15Signature}}})
      const r = await expectRefusedUntouched('stable', /[A-Z_]+/, /./)
      expect(r.json.error.message).to.contain(v15Signature)
    })
    it('a manifest over 4 MiB (declared by the HEAD), refused before it is read', async () => {
      const big = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', annotations: {pad: 'x'.repeat(5 * 1024 * 1024)}}))
      const digest = `sha256:${createHash('sha256').update(big).digest('hex')}`
      fault({method: 'HEAD', path: HEAD_TAG('moving'), times: 100, action: {setHeaders: {'docker-content-digest': digest, 'content-length': String(big.length)}}})
      fault({method: 'GET', path: MANIFEST_BY_DIGEST, times: 100, action: {status: 200, body: big, headers: {'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': digest}}})
      await expectRefusedUntouched('moving', /MANIFEST_TOO_LARGE/, /declares \d+ bytes, more than the 4194304-byte limit/)
      const served = proxy.requests.filter((q) => q.method === 'GET' && MANIFEST_BY_DIGEST.test(q.url))
      expect(served, 'not even requested: the declared size is refused').to.have.length(0)
    })
  })
})

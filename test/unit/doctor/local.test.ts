import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {appendAuditEvents} from '../../../src/audit/index.js'
import {checkAudit, checkCache, checkLayoutReference, checkTrust, runDoctor} from '../../../src/doctor/index.js'
import {LayoutDirStore} from '../../../src/oci/index.js'
import {SAMPLE_EVENTS, readLines, steppingClock, writeLines} from '../../helpers/audit-fixtures.js'
import {TESTDATA} from '../../helpers/cli.js'
import {KEYS_DIR, ORG_BASELINE, privateKey, publish} from '../../helpers/policy-fixtures.js'
import {tmpdir} from '../../helpers/tmp.js'

const NOW = new Date('2026-03-01T12:00:00Z')
const DAY = 86_400_000
const EXAMPLE_TRUST = path.join(TESTDATA, 'trust', 'example.yaml')

/** A trust policy with alice (security) and bob (approver), bob's validity window as given. */
function trustFile(bob: {notBefore?: string; notAfter?: string}, scopeMatch = 'registry: registry.example.com'): string {
  const file = path.join(tmpdir('aibox-doctor-trust-'), 'trust.yaml')
  const window = [bob.notBefore ? `    notBefore: ${bob.notBefore}` : '', bob.notAfter ? `    notAfter: ${bob.notAfter}` : ''].filter(Boolean).join('\n')
  fs.writeFileSync(
    file,
    `apiVersion: aibox.dev/v1
kind: TrustPolicy
keys:
  alice:
    path: ${path.join(KEYS_DIR, 'alice.pub')}
    roles: [security]
  bob:
    path: ${path.join(KEYS_DIR, 'bob.pub')}
    roles: [approver]
${window}
scopes:
  - name: org
    match:
      ${scopeMatch}
    require:
      signatures:
        security: 1
        approver: 1
`,
  )
  return file
}

describe('doctor local checks', () => {
  describe('checkTrust', () => {
    describe('when nothing is given', () => {
      it('skips, saying verify and start need --trust or --key', () => {
        const c = checkTrust({now: NOW})
        expect(c.status).to.equal('skip')
        expect(c.reason).to.contain('no --trust or --key given')
      })
    })

    describe('with a valid trust policy', () => {
      it('passes, counting keys, revoked keys and scopes (testdata/trust/example.yaml)', () => {
        const c = checkTrust({trustFile: EXAMPLE_TRUST, now: NOW, reference: 'registry.example.com/policies/org:stable'})
        expect(c.status).to.equal('pass')
        expect(c.reason).to.equal(`trust policy '${EXAMPLE_TRUST}': 5 keys (4 valid now, 1 revoked), 3 scopes, all loadable and every threshold can be met`)
        expect(c.details!.applyingScopes).to.deep.equal(['org-baseline', 'everything'])
      })

      it('warns about a key that expires within the window, with its date', () => {
        const c = checkTrust({trustFile: trustFile({notAfter: '2026-03-11T00:00:00Z'}), now: NOW})
        expect(c).to.include({status: 'warn', code: 'TRUST_KEYS_EXPIRING'})
        expect(c.reason).to.match(/key 'bob' \(\w+\) expires in 10 days \(2026-03-11T00:00:00.000Z\)/)
      })

      it('passes when the expiry is beyond the window', () => {
        expect(checkTrust({trustFile: trustFile({notAfter: '2026-03-11T00:00:00Z'}), now: NOW, expiryWarnMs: 5 * DAY}).status).to.equal('pass')
      })
    })

    describe('when keys are no longer (or not yet) valid', () => {
      it('fails when an expired key leaves a threshold unmeetable today (exit 2)', () => {
        const c = checkTrust({trustFile: trustFile({notAfter: '2026-02-01T00:00:00Z'}), now: NOW})
        expect(c).to.include({status: 'fail', code: 'TRUST_POLICY_UNUSABLE', exit: 2})
        expect(c.reason).to.contain("scope 'org' needs 1 'approver' signatures but only 0 key(s) holding that role are valid now")
        expect(c.reason).to.match(/key 'bob' \(\w+\) expired at 2026-02-01T00:00:00.000Z/)
      })

      it('fails for a key not valid yet in the same way', () => {
        const c = checkTrust({trustFile: trustFile({notBefore: '2026-06-01T00:00:00Z'}), now: NOW})
        expect(c.status).to.equal('fail')
        expect(c.reason).to.contain('is not valid before 2026-06-01T00:00:00.000Z')
      })
    })

    describe('when no scope applies to REF', () => {
      it('fails: verify and start would refuse every policy there', () => {
        const c = checkTrust({trustFile: trustFile({}), now: NOW, reference: 'other.example.com/policies/org:stable'})
        expect(c.status).to.equal('fail')
        expect(c.reason).to.contain('no scope applies to other.example.com/policies/org:stable')
      })
    })

    describe('when the trust policy is invalid', () => {
      it('fails with the validation problems, located', () => {
        const file = path.join(tmpdir('aibox-doctor-trust-'), 'bad.yaml')
        fs.writeFileSync(file, 'apiVersion: aibox.dev/v1\nkind: TrustPolicy\nkeys: {}\nscopes: []\nsurprise: 1\n')
        const c = checkTrust({trustFile: file, now: NOW})
        expect(c).to.include({status: 'fail', code: 'TRUST_POLICY_INVALID', exit: 1})
        expect(c.reason).to.contain(`${file}:5:1 /surprise: unknown field 'surprise'`)
      })

      it('fails with TRUST_POLICY_NOT_FOUND (exit 3) for a missing file', () => {
        const c = checkTrust({trustFile: '/nonexistent/trust.yaml', now: NOW})
        expect(c).to.include({status: 'fail', code: 'TRUST_POLICY_NOT_FOUND', exit: 3})
      })
    })

    describe('with --key files', () => {
      it('passes when every key loads, naming algorithm and key id', () => {
        const c = checkTrust({keyFiles: [path.join(KEYS_DIR, 'alice.pub'), path.join(KEYS_DIR, 'bob.pub')], now: NOW})
        expect(c.status).to.equal('pass')
        expect(c.reason).to.match(/^2 public keys load: alice\.pub \([\w-]+, \w+\), bob\.pub/)
      })

      it('fails for a file that is not a public key', () => {
        const bad = path.join(tmpdir('aibox-doctor-key-'), 'not-a-key.pub')
        fs.writeFileSync(bad, 'hello\n')
        const c = checkTrust({keyFiles: [bad], now: NOW})
        expect(c.status).to.equal('fail')
        expect(c.reason).to.contain(bad)
      })
    })
  })

  describe('checkCache', () => {
    /** A cache as src/cache writes it: oci/ layout with a verified policy, and state.json naming it. */
    async function makeCache(opts: {checkedAt: Date; taint?: boolean; state?: unknown}): Promise<{dir: string; store: LayoutDirStore; digest: string; layer: string}> {
      const dir = path.join(tmpdir('aibox-doctor-cache-'), 'cache')
      const store = await LayoutDirStore.open(path.join(dir, 'oci'), {create: true})
      const packed = await publish(store, ORG_BASELINE, [await privateKey('alice')])
      const ref = 'registry.example.com/policies/org:stable'
      const state = opts.state ?? {
        version: 1,
        entries: {
          [ref]: {
            reference: ref,
            tier: 'org',
            digest: packed.manifest.digest,
            mediaType: packed.manifest.mediaType,
            size: packed.manifest.size,
            contentDigest: packed.contentDigest,
            blobs: packed.layers.map((l) => ({digest: l.digest, size: l.size})),
            name: packed.name,
            version: packed.version,
            origin: 'registry',
            verifiedAt: opts.checkedAt.toISOString(),
            checkedAt: opts.checkedAt.toISOString(),
            signers: ['alice'],
          },
        },
        stacks: {},
        profiles: opts.taint
          ? {p: {refs: {org: ref}, taint: {taint: 'policy_override', override: 'verification', reason: 'registry down during incident', actor: 'ops@host', since: '2026-02-28T10:00:00Z', effective: packed.contentDigest}}}
          : {},
      }
      fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state))
      return {dir, store, digest: packed.manifest.digest, layer: packed.layers[0]!.digest}
    }

    describe('when there is no cache', () => {
      it('skips with "no cache yet" naming the directory', async () => {
        const dir = path.join(tmpdir('aibox-doctor-cache-'), 'none')
        const c = await checkCache({dir, now: NOW})
        expect(c.status).to.equal('skip')
        expect(c.reason).to.contain(`no cache yet at ${dir}`)
      })

      it('skips for a directory that holds neither state.json nor a layout (e.g. only shell completion files)', async () => {
        const dir = tmpdir('aibox-doctor-cache-')
        fs.mkdirSync(path.join(dir, 'autocomplete'))
        expect((await checkCache({dir, now: NOW})).status).to.equal('skip')
      })
    })

    describe('with a healthy cache', () => {
      it('passes, re-hashing every manifest and blob and reporting how long ago the source was checked', async () => {
        const {dir, digest} = await makeCache({checkedAt: new Date(NOW.getTime() - 3 * 3_600_000)})
        const c = await checkCache({dir, now: NOW})
        expect(c.status, c.reason).to.equal('pass')
        expect(c.reason).to.match(/^cache .+: 1 verified policy, 2 manifests and 4 blobs intact, sources last checked 3 h ago$/)
        expect(c.details).to.deep.include({manifests: 2, blobs: 4, newestCheckMs: 3 * 3_600_000})
        expect((c.details!.entries as Array<{digest: string}>)[0]!.digest).to.equal(digest)
      })

      it('warns when the source was last checked longer ago than the limit', async () => {
        const {dir} = await makeCache({checkedAt: new Date(NOW.getTime() - 9 * DAY)})
        const c = await checkCache({dir, now: NOW})
        expect(c).to.include({status: 'warn', code: 'CACHE_STALE'})
        expect(c.reason).to.contain('registry.example.com/policies/org:stable was last checked against its source 9 days ago (over 7 days')
      })

      it('warns while runs are tainted by an override', async () => {
        const {dir} = await makeCache({checkedAt: NOW, taint: true})
        const c = await checkCache({dir, now: NOW})
        expect(c.status).to.equal('warn')
        expect(c.reason).to.contain('runs are tainted (policy_override) since 2026-02-28T10:00:00Z by ops@host: registry down during incident')
      })

      it('reports the age from file times when state.json has a shape it does not know', async () => {
        const {dir} = await makeCache({checkedAt: NOW, state: {format: 'something-else'}})
        const c = await checkCache({dir, now: new Date(Date.now() + 2 * 3_600_000)})
        expect(c.status).to.equal('warn')
        expect(c.reason).to.contain('last written 2 h ago')
        expect(c.reason).to.contain('has a shape this version does not know')
      })
    })

    describe('with a damaged cache', () => {
      it('fails (exit 2) when a blob no longer matches its digest', async () => {
        const {dir, store, layer} = await makeCache({checkedAt: NOW})
        const blob = store.blobPath(layer)
        fs.chmodSync(blob, 0o644)
        fs.writeFileSync(blob, fs.readFileSync(blob, 'utf8').replace('org-baseline', 'org-baselinX'))
        const c = await checkCache({dir, now: NOW})
        expect(c).to.include({status: 'fail', code: 'CACHE_UNHEALTHY', exit: 2})
        expect(c.reason).to.contain(`blob ${layer}`)
        expect(c.reason).to.match(/digest|does not match/)
        expect(c.suggestions[0]).to.contain(`move ${dir} aside`)
      })

      it('fails when state.json names a manifest the layout does not hold', async () => {
        const {dir, store, digest} = await makeCache({checkedAt: NOW})
        fs.rmSync(store.blobPath(digest), {force: true})
        const c = await checkCache({dir, now: NOW})
        expect(c.status).to.equal('fail')
        expect(c.reason).to.contain(`state entry registry.example.com/policies/org:stable names manifest ${digest}, which the layout does not hold intact`)
      })

      it('fails when state.json is not JSON', async () => {
        const {dir} = await makeCache({checkedAt: NOW})
        fs.writeFileSync(path.join(dir, 'state.json'), '{"version": 1, "entr')
        const c = await checkCache({dir, now: NOW})
        expect(c.status).to.equal('fail')
        expect(c.reason).to.contain('state.json is unreadable')
      })

      it('fails when the cache path is a file', async () => {
        const file = path.join(tmpdir('aibox-doctor-cache-'), 'file')
        fs.writeFileSync(file, 'x')
        const c = await checkCache({dir: file, now: NOW})
        expect(c).to.include({status: 'fail', code: 'CACHE_NOT_A_DIRECTORY'})
      })
    })
  })

  describe('checkAudit', () => {
    async function makeLog(): Promise<string> {
      const log = path.join(tmpdir('aibox-doctor-audit-'), 'audit.jsonl')
      await appendAuditEvents(SAMPLE_EVENTS.slice(0, 4), {log, now: steppingClock(), actor: 'alice@ws1'})
      return log
    }

    it('skips when there is no log yet', async () => {
      const c = await checkAudit(path.join(tmpdir('aibox-doctor-audit-'), 'audit.jsonl'))
      expect(c.status).to.equal('skip')
      expect(c.reason).to.contain('no audit log yet')
    })

    it('passes for an intact, anchored log', async () => {
      const log = await makeLog()
      const c = await checkAudit(log)
      expect(c.status).to.equal('pass')
      expect(c.reason).to.equal(`audit log ${log}: 4 entries, chain intact, anchored at seq 4 (${log}.head)`)
    })

    it('fails (exit 2) for an edited line, naming it', async () => {
      const log = await makeLog()
      const lines = readLines(log)
      lines[1] = lines[1]!.replace('SHA256:sec-team-key', 'SHA256:mallory')
      writeLines(log, lines)
      const c = await checkAudit(log)
      expect(c).to.include({status: 'fail', code: 'AUDIT_LOG_BROKEN', exit: 2})
      expect(c.reason).to.contain('is broken at line 2 (seq 2): edited')
    })
  })

  describe('checkLayoutReference', () => {
    it('passes when the tag resolves in an OCI layout, and fails (exit 3) for a missing tag', async () => {
      const dir = tmpdir('aibox-doctor-layout-')
      const store = await LayoutDirStore.open(dir, {create: true})
      const packed = await publish(store, ORG_BASELINE, [], ['stable'])
      const ok = await checkLayoutReference(`oci:${dir}:stable`)
      expect(ok.status).to.equal('pass')
      expect(ok.reason).to.contain(packed.manifest.digest)
      const missing = await checkLayoutReference(`oci:${dir}:nope`)
      expect(missing).to.include({status: 'fail', code: 'NOT_FOUND', exit: 3})
    })

    it('fails for a directory that is not a layout', async () => {
      const c = await checkLayoutReference(`oci:${tmpdir('aibox-doctor-layout-')}:stable`)
      expect(c).to.include({status: 'fail', code: 'INVALID_LAYOUT'})
    })
  })

  describe('runDoctor', () => {
    it('refuses an unknown --skip value, listing the check ids', async () => {
      try {
        await runDoctor({skip: ['registy']})
        expect.fail('no error')
      } catch (err) {
        expect((err as Error).message).to.equal('unknown check "registy" in --skip')
        expect((err as {suggestions: string[]}).suggestions[0]).to.contain('registry.reachable')
      }
    })

    it('without REF runs only the local checks and exits 0 when none fails', async () => {
      const home = tmpdir('aibox-doctor-home-')
      const r = await runDoctor({env: {HOME: home}, trustFile: EXAMPLE_TRUST})
      expect(r.checks.filter((c) => c.id.startsWith('registry') || c.id.startsWith('repository')).every((c) => c.status === 'skip')).to.equal(true)
      expect(r.checks.find((c) => c.id === 'trust.policy')!.status).to.equal('pass')
      expect(r.checks.find((c) => c.id === 'cache')!.reason).to.contain(path.join(home, '.cache', 'aibox'))
      expect(r.checks.find((c) => c.id === 'audit.log')!.reason).to.contain(path.join(home, '.local', 'state', 'aibox', 'audit.jsonl'))
      expect(r).to.include({ok: true, exit: 0, reference: null})
    })

    it('--skip registry sends no request at all, even with a reference to a registry that is not there', async () => {
      const r = await runDoctor({reference: '127.0.0.1:1/policies/org:stable', skip: ['registry'], env: {HOME: tmpdir('aibox-doctor-home-')}})
      const remote = r.checks.filter((c) => c.id.startsWith('registry.') || c.id.startsWith('repository.'))
      expect(remote).to.have.length(7)
      for (const c of remote) expect(c, c.id).to.include({status: 'skip', reason: 'skipped with --skip'})
      expect(r.ok).to.equal(true)
    })

    it('reports a reference that does not parse as a failed layout.reference', async () => {
      const r = await runDoctor({reference: 'Not A Reference', env: {HOME: tmpdir('aibox-doctor-home-')}})
      const c = r.checks.find((x) => x.id === 'layout.reference')!
      expect(c).to.include({status: 'fail', code: 'INVALID_REFERENCE', exit: 1})
      expect(r.exit).to.equal(1)
    })
  })
})

/**
 * e2e: `aibox push | pull | copy | sign REF | approve | verify REF | discover | inspect | tags`
 * through the real binary, against a real registry (distribution 2.8, no referrers API: the
 * `sha256-<hex>` tag fallback) and `oci:` layouts: exit codes, messages, nothing written on
 * refusal, `--json` validated against schemas/output, and interop with skopeo.
 */
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {attachSignature, packSigstoreReferrer} from '../../src/distribute/index.js'
import {ANNOTATION, LayoutDirStore, MT, parseManifest} from '../../src/oci/index.js'
import {COSIGN_SIGN_PREDICATE_TYPE, cosignCompatibilityProblems, signSubjects} from '../../src/sign/index.js'
import {TESTDATA, aibox as run, type CliOptions, type CliResult} from '../helpers/cli.js'
import {forge, KEY, ORG_BASELINE, privateKey, PUB, TEAM_ALPHA} from '../helpers/policy-fixtures.js'
import {type RegistryHandle, freePort, startRegistry} from '../helpers/registry.js'
import {expectOutputSchema} from '../helpers/schemas.js'
import {skopeo} from '../helpers/skopeo.js'
import {listFiles, tmpdir} from '../helpers/tmp.js'

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`


describe('aibox push / pull / copy / discover / tags (e2e)', function () {
  this.timeout(180_000)
  let reg: RegistryHandle
  const work = tmpdir('aibox-dist-')
  const audit = path.join(work, 'audit.jsonl')
  const p = (...f: string[]) => path.join(work, ...f)
  let trustFile: string

  function aibox(args: string[], options: CliOptions = {}): Promise<CliResult> {
    return run(args, {...options, env: {OCLIF_COLUMNS: '10000', COSIGN_PASSWORD: 'test', AIBOX_PASSWORD: undefined, AIBOX_AUDIT_LOG: audit, SOURCE_DATE_EPOCH: undefined, CI: '1', ...options.env}})
  }
  async function ok(args: string[], options: CliOptions = {}): Promise<CliResult> {
    const r = await aibox(args, options)
    expect(r.code, `aibox ${args.join(' ')}\n${r.stderr}`).to.equal(0)
    return r
  }
  /** A refusal: the exit code, the error code and message on stderr. */
  async function refused(args: string[], exit: number, code: string, message?: RegExp): Promise<CliResult> {
    const r = await aibox(args)
    expect(r.code, `aibox ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).to.equal(exit)
    expect(r.stderr).to.contain(code)
    if (message) expect(r.stderr).to.match(message)
    return r
  }

  before(async () => {
    reg = await startRegistry()
    trustFile = p('trust.yaml')
    fs.writeFileSync(
      trustFile,
      `apiVersion: aibox.dev/v1
kind: TrustPolicy
metadata: {name: e2e}
keys:
  alice: {path: ${PUB('alice')}, roles: [security]}
  bob: {path: ${PUB('bob')}, roles: [team-lead, approver]}
  carol: {path: ${PUB('carol')}, roles: [approver]}
scopes:
  - name: org
    match: {registry: "127.0.0.1:*", repository: policies/org, tiers: [org]}
    require: {signatures: {security: 1}}
  - name: teams
    match: {registry: "127.0.0.1:*", repository: "policies/teams/*", tiers: [team]}
    require: {signatures: {team-lead: 1}}
`,
    )
  })
  after(async () => {
    await reg?.stop()
  })

  describe('aibox push', () => {
    it('publishes to a registry: digest, content digest, tags, refs; --json matches its schema; audit events written', async () => {
      const r = await ok(['push', ORG_BASELINE, `${reg.host}/policies/org:stable`, '--key', KEY('alice'), '--tag', 'lts', '--json'])
      expectOutputSchema('push', r.json)
      expect(r.json).to.include({name: 'org-baseline', version: '1.4.0', tier: 'org', repository: `${reg.host}/policies/org`})
      expect(r.json.tags).to.deep.equal(['1.4.0', 'stable', 'lts'])
      expect(r.json.refs).to.deep.equal([
        `${reg.host}/policies/org:1.4.0`,
        `${reg.host}/policies/org:stable`,
        `${reg.host}/policies/org:lts`,
        `${reg.host}/policies/org@${r.json.digest}`,
      ])
      const bundleHash = await ok(['bundle', 'hash', ORG_BASELINE, '--json'])
      expect(r.json.contentDigest).to.equal(bundleHash.json.digest)
      const events = fs.readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
      const pushed = events.find((e) => e.event === 'policy.pushed' && e.digest === r.json.digest)
      expect(pushed).to.include({version: '1.4.0', tier: 'org', contentDigest: r.json.contentDigest})
      expect(events.find((e) => e.event === 'policy.signed' && e.digest === r.json.digest)).to.include({signature: r.json.signature.digest})
    })
    it('prints the digest and every reference for humans', async () => {
      const r = await ok(['push', TEAM_ALPHA, `${reg.host}/policies/teams/alpha`, '--key', KEY('bob'), '--against', ORG_BASELINE])
      expect(r.stdout).to.match(/^Pushed team-alpha .* \(tier team\) to 127\.0\.0\.1:\d+\/policies\/teams\/alpha\n/)
      expect(r.stdout).to.match(/digest: +sha256:[0-9a-f]{64}/)
      expect(r.stdout).to.contain(`${reg.host}/policies/teams/alpha@sha256:`)
    })
    it('is deterministic: the same bundle gives the same manifest digest in another repository and in a layout', async () => {
      const a = await ok(['push', ORG_BASELINE, `${reg.host}/policies/org-copy`, '--key', KEY('alice'), '--json'])
      const b = await ok(['push', ORG_BASELINE, `oci:${p('det')}`, '--key', KEY('bob'), '--json'])
      const c = await ok(['push', ORG_BASELINE, `${reg.host}/policies/org`, '--key', KEY('alice'), '--json'])
      expect(a.json.digest).to.equal(b.json.digest)
      expect(c.json.digest).to.equal(a.json.digest)
      const epoch = await ok(['push', ORG_BASELINE, `oci:${p('det-epoch')}`, '--key', KEY('alice'), '--json'], {env: {SOURCE_DATE_EPOCH: '1700000000'}})
      expect(epoch.json.digest).to.not.equal(a.json.digest)
      const again = await ok(['push', ORG_BASELINE, `oci:${p('det-epoch2')}`, '--key', KEY('alice'), '--json'], {env: {SOURCE_DATE_EPOCH: '1700000000'}})
      expect(again.json.digest).to.equal(epoch.json.digest)
    })
    it('writes a signature referrer cosign accepts, and with --cosign-legacy the sha256-<hex>.sig manifest', async () => {
      const r = await ok(['push', ORG_BASELINE, `oci:${p('legacy')}:stable`, '--key', KEY('alice'), '--cosign-legacy', '--json'])
      expect(r.json.legacySignature.tag).to.equal(`sha256-${r.json.digest.slice(7)}.sig`)
      const store = await LayoutDirStore.open(p('legacy'))
      const [ref] = await store.predecessors(await store.resolve(r.json.digest))
      expect(ref!.artifactType).to.equal(MT.sigstoreBundleV03)
      const m = parseManifest(fs.readFileSync(store.blobPath(ref!.digest)), ref)
      if (m.kind !== 'manifest') throw new Error('not a manifest')
      expect(m.manifest.subject?.digest).to.equal(r.json.digest)
      expect(m.manifest.annotations?.[ANNOTATION.bundlePredicateType]).to.equal(COSIGN_SIGN_PREDICATE_TYPE)
      const bundle = JSON.parse(fs.readFileSync(store.blobPath(m.manifest.layers[0]!.digest), 'utf8'))
      expect(cosignCompatibilityProblems(bundle)).to.deep.equal([])
      const tags = await ok(['tags', `oci:${p('legacy')}`, '--json'])
      expect(tags.json.tags).to.deep.equal(['stable', '1.4.0'])
    })
    describe('when the bundle is invalid or cannot be published', () => {
      it('refuses with exit 1 and pushes nothing', async () => {
        await refused(['push', path.join(TESTDATA, 'bundles', 'bad', 'schema-violations.yaml'), `oci:${p('bad1')}`, '--key', KEY('alice')], 1, 'INVALID_BUNDLE')
        await refused(['push', path.join(TESTDATA, 'bundles', 'bare', 'org-policy.yaml'), `oci:${p('bad2')}`, '--key', KEY('alice')], 1, 'NOT_PUBLISHABLE', /only those can be published/)
        expect(fs.existsSync(p('bad1'))).to.equal(false)
        expect(fs.existsSync(p('bad2'))).to.equal(false)
      })
    })
    describe('when the reference or key is wrong', () => {
      it('says so: bad reference (1), a digest as destination (1), missing key (3), wrong key password (1)', async () => {
        await refused(['push', ORG_BASELINE, 'policies/org', '--key', KEY('alice')], 1, 'INVALID_REFERENCE', /is not a registry host|no registry host/)
        await refused(['push', ORG_BASELINE, `oci:${p('dig')}@sha256:${'a'.repeat(64)}`, '--key', KEY('alice')], 1, 'DIGEST_DESTINATION')
        await refused(['push', ORG_BASELINE, `oci:${p('nokey')}`, '--key', p('missing.key')], 3, 'KEY_NOT_FOUND')
        const r = await aibox(['push', ORG_BASELINE, `oci:${p('badpw')}`, '--key', KEY('alice')], {env: {COSIGN_PASSWORD: 'wrong'}})
        expect(r.code).to.equal(1)
        expect(r.stderr).to.match(/wrong password/)
        expect(fs.existsSync(p('nokey'))).to.equal(false)
        expect(fs.existsSync(p('badpw'))).to.equal(false)
      })
    })
    describe('when the registry is not there', () => {
      it('fails with exit 4 (transient)', async () => {
        const port = await freePort()
        const r = await aibox(['push', ORG_BASELINE, `127.0.0.1:${port}/policies/org`, '--key', KEY('alice')])
        expect(r.code, r.stderr).to.equal(4)
        expect(r.stderr).to.match(/connection refused/)
      })
    })
  })

  describe('aibox pull', () => {
    it('verifies with --key and writes the canonical JSON and the YAML source; --json matches its schema', async () => {
      const out = p('pulled')
      const r = await ok(['pull', `${reg.host}/policies/org:stable`, '--key', PUB('alice'), '-o', out, '--json'])
      expectOutputSchema('pull', r.json)
      expect(r.json.files).to.deep.equal([path.join(out, 'org-baseline.json'), path.join(out, 'org-baseline.yaml')])
      expect(sha256(fs.readFileSync(path.join(out, 'org-baseline.json')))).to.equal(r.json.contentDigest)
      expect(fs.readFileSync(path.join(out, 'org-baseline.yaml'), 'utf8')).to.equal(fs.readFileSync(ORG_BASELINE, 'utf8'))
      expect(r.json.signatures[0].signer.name).to.equal('alice.pub')
      expect(listFiles(out)).to.deep.equal(['org-baseline.json', 'org-baseline.yaml'])
    })
    it('verifies with --trust: scope by registry/repository and the signed tier', async () => {
      const r = await ok(['pull', `${reg.host}/policies/org:1.4.0`, '--trust', trustFile, '-o', p('pulled-trust'), '--json'])
      expect(r.json.trust.satisfied).to.equal(true)
      expect(r.json.trust.scopes.map((s: {scope: string}) => s.scope)).to.deep.equal(['org'])
      const t = await ok(['pull', `${reg.host}/policies/teams/alpha:2.1.0`, '--trust', trustFile, '-o', p('pulled-team')])
      expect(t.stdout).to.match(/trust scope 'teams'/)
    })
    describe('when verification fails', () => {
      it('refuses with exit 2 and writes nothing: wrong key', async () => {
        const out = p('refused-key')
        await refused(['pull', `${reg.host}/policies/org:stable`, '--key', PUB('carol'), '-o', out], 2, 'SIGNATURE_INVALID', /does not verify with key 'carol\.pub'/)
        expect(fs.existsSync(out)).to.equal(false)
      })
      it('refuses with exit 2 and writes nothing: trust scope does not cover the repository', async () => {
        const out = p('refused-scope')
        await refused(['pull', `${reg.host}/policies/org-copy:1.4.0`, '--trust', trustFile, '-o', out], 2, 'TRUST_NO_SCOPE', /no scope of the trust policy applies to 127\.0\.0\.1:\d+\/policies\/org-copy \(tier org\)/)
        expect(fs.existsSync(out)).to.equal(false)
      })
      it('refuses with exit 2: a signer without the role the scope requires', async () => {
        await ok(['push', ORG_BASELINE, `${reg.host}/policies/teams/sneaky`, '--key', KEY('bob')])
        // bob (team-lead) signs an org-tier bundle under the teams path: the signed tier is org, so the teams scope does not apply.
        await refused(['pull', `${reg.host}/policies/teams/sneaky:1.4.0`, '--trust', trustFile, '-o', p('refused-tier')], 2, 'TRUST_NO_SCOPE', /\(tier org\)/)
        expect(fs.existsSync(p('refused-tier'))).to.equal(false)
      })
      it('prints the refusal as JSON matching the error schema with --json', async () => {
        const r = await aibox(['pull', `${reg.host}/policies/org:stable`, '--key', PUB('carol'), '-o', p('refused-json'), '--json'])
        expect(r.code).to.equal(2)
        expectOutputSchema('error', r.json)
        expect(r.json.error).to.include({code: 'SIGNATURE_INVALID', exit: 2})
      })
    })
    describe('when the reference does not exist or input is missing', () => {
      it('exits 3 for an unknown tag and 1 without --key or --trust', async () => {
        await refused(['pull', `${reg.host}/policies/org:no-such-tag`, '--key', PUB('alice'), '-o', p('nf')], 3, 'NOT_FOUND', /tag "no-such-tag" not found/)
        await refused(['pull', `${reg.host}/policies/org:stable`, '-o', p('nokeys')], 1, 'KEYS_OR_TRUST')
        await refused(['pull', `oci:${p('no-layout')}:1.0.0`, '--key', PUB('alice')], 3, 'NOT_FOUND')
        expect(fs.existsSync(p('nf'))).to.equal(false)
      })
    })
  })

  describe('aibox copy', () => {
    it('copies a policy with its signatures from a registry to a layout; the copy pulls and verifies; --json matches its schema', async () => {
      const r = await ok(['copy', `${reg.host}/policies/org:stable`, `oci:${p('mirror')}`, '--json'])
      expectOutputSchema('copy', r.json)
      expect(r.json).to.include({tag: 'stable', referrers: true})
      expect(r.json.copied).to.be.greaterThan(4)
      await ok(['pull', `oci:${p('mirror')}:stable`, '--key', PUB('alice'), '-o', p('from-mirror')])
      // With --trust-ref the layout copy is judged as the registry reference it came from.
      await ok(['pull', `oci:${p('mirror')}:stable`, '--trust', trustFile, '--trust-ref', `${reg.host}/policies/org`, '-o', p('from-mirror-trust')])
    })
    it('copies layout → registry (another repository) and the registry copy verifies', async () => {
      await ok(['copy', `oci:${p('mirror')}:stable`, `${reg.host}/mirror/org:stable`])
      await ok(['verify', `${reg.host}/mirror/org:stable`, '--key', PUB('alice')])
    })
    it('re-copies nothing the destination already has', async () => {
      const r = await ok(['copy', `${reg.host}/policies/org:stable`, `oci:${p('mirror')}`, '--json'])
      expect(r.json.copied).to.equal(0)
      expect(r.json.skipped).to.be.greaterThan(0)
    })
    describe('with --no-referrers', () => {
      it('copies only the artifact, which pull then refuses as unsigned (exit 2, nothing written)', async () => {
        await ok(['copy', `${reg.host}/policies/org:stable`, `oci:${p('bare')}`, '--no-referrers'])
        await refused(['pull', `oci:${p('bare')}:stable`, '--key', PUB('alice'), '-o', p('bare-out')], 2, 'NO_SIGNATURES', /has no signature/)
        expect(fs.existsSync(p('bare-out'))).to.equal(false)
      })
    })
    it('reads an oci-archive (tar) as a source', async () => {
      const tar = p('mirror.tar')
      const r = spawnSync('tar', ['-cf', tar, '-C', p('mirror'), 'oci-layout', 'index.json', 'blobs'])
      expect(r.status).to.equal(0)
      await ok(['copy', `oci-archive:${tar}:stable`, `oci:${p('from-tar')}`])
      await ok(['pull', `oci:${p('from-tar')}:stable`, '--key', PUB('alice'), '-o', p('from-tar-out')])
      await refused(['copy', `oci:${p('mirror')}:stable`, `oci-archive:${p('x.tar')}`], 1, 'READ_ONLY_DESTINATION')
    })
  })

  describe('tampering (layouts)', () => {
    async function freshLayout(name: string): Promise<{dir: string; digest: string}> {
      const dir = p(name)
      const r = await ok(['push', ORG_BASELINE, `oci:${dir}:stable`, '--key', KEY('alice'), '--json'])
      return {dir, digest: r.json.digest}
    }
    it('refuses a tampered layer (exit 2, DIGEST_MISMATCH) and writes nothing', async () => {
      const {dir} = await freshLayout('tamper-layer')
      const store = await LayoutDirStore.open(dir)
      const contentDigest = (await ok(['bundle', 'hash', ORG_BASELINE, '--json'])).json.digest
      const file = store.blobPath(contentDigest)
      fs.chmodSync(file, 0o644)
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('foundry.internal', 'foundry.internax'))
      await refused(['pull', `oci:${dir}:stable`, '--key', PUB('alice'), '-o', p('tl-out')], 2, 'DIGEST_MISMATCH')
      expect(fs.existsSync(p('tl-out'))).to.equal(false)
    })
    it('refuses a tampered manifest: its new digest has no signature (exit 2)', async () => {
      const {dir, digest} = await freshLayout('tamper-manifest')
      const store = await LayoutDirStore.open(dir)
      const bytes = fs.readFileSync(store.blobPath(digest), 'utf8').replace('"org.opencontainers.image.version":"1.4.0"', '"org.opencontainers.image.version":"1.4.1"')
      const desc = {mediaType: MT.ociManifest, digest: sha256(Buffer.from(bytes)), size: Buffer.byteLength(bytes)}
      await store.push(desc, Buffer.from(bytes))
      await store.tag(desc, 'stable')
      await refused(['pull', `oci:${dir}:stable`, '--key', PUB('alice'), '-o', p('tm-out')], 2, 'NO_SIGNATURES')
      expect(fs.existsSync(p('tm-out'))).to.equal(false)
    })
    it('refuses a signature made for another manifest and attached to this one (exit 2)', async () => {
      const {dir, digest} = await freshLayout('other-digest')
      const store = await LayoutDirStore.open(dir)
      const team = await ok(['push', TEAM_ALPHA, `oci:${dir}:team`, '--key', KEY('bob'), '--against', ORG_BASELINE, '--json'])
      // A valid signature by alice over the org manifest, re-attached as a referrer of the team manifest.
      const bundle = await signSubjects([{digest, annotations: {}}], await privateKey('alice'))
      const subject = await store.resolve('team')
      expect(subject.digest).to.equal(team.json.digest)
      const fixed = packSigstoreReferrer(bundle, subject, {predicateType: COSIGN_SIGN_PREDICATE_TYPE, created: new Date()})
      for (const b of fixed.blobs) await store.push(b.desc, b.bytes)
      await store.push(fixed.manifest.desc, fixed.manifest.bytes)
      await refused(['pull', `oci:${dir}:team`, '--key', PUB('alice'), '-o', p('od-out')], 2, 'SIGNATURE_INVALID', /do not include/)
      expect(fs.existsSync(p('od-out'))).to.equal(false)
    })
    it('refuses a tier annotation that lies even when the manifest is signed (exit 2, ANNOTATION_MISMATCH)', async () => {
      const dir = p('lying-tier')
      const store = await LayoutDirStore.open(dir, {create: true})
      const desc = await forge(store, {override: {[ANNOTATION.tier]: 'project'}})
      await attachSignature(store, desc, await privateKey('alice'))
      await store.tag(desc, 'stable')
      await refused(['pull', `oci:${dir}:stable`, '--key', PUB('alice'), '-o', p('lt-out')], 2, 'ANNOTATION_MISMATCH', /dev\.aibox\.policy\.tier is "project" but the signed content says "org"/)
      await refused(['verify', `oci:${dir}:stable`, '--key', PUB('alice')], 2, 'ANNOTATION_MISMATCH')
      expect(fs.existsSync(p('lt-out'))).to.equal(false)
    })
  })

  describe('aibox sign REF / aibox approve / aibox discover', () => {
    it('adds a second signature and an approval; discover shows the tree, verified with --trust; --json matches the schemas', async () => {
      const ref = `${reg.host}/policies/org:stable`
      const s = await ok(['sign', ref, '--key', KEY('bob'), '--json'])
      expectOutputSchema('sign', s.json)
      expect(s.json.reference).to.match(/@sha256:[0-9a-f]{64}$/)
      // bob signed, so he may not approve (separation of duties): carol does.
      await refused(['approve', ref, '--key', KEY('bob'), '--role', 'approver', '--note', 'mine'], 5, 'SELF_APPROVAL')
      const a = await ok(['approve', ref, '--key', KEY('carol'), '--role', 'approver', '--note', 'reviewed the egress list', '--ticket', 'SEC-1234', '--incident', 'INC-9', '--json'])
      expectOutputSchema('approve', a.json)
      expect(a.json.approval).to.include({role: 'approver', note: 'reviewed the egress list', ticket: 'SEC-1234', incident: 'INC-9'})
      const events = fs.readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
      expect(events.find((e) => e.event === 'policy.approved')).to.include({role: 'approver', ticket: 'SEC-1234', incident: 'INC-9', attestation: a.json.attestation.digest})
      const d = await ok(['discover', ref, '--trust', trustFile, '--json'])
      expectOutputSchema('discover', d.json)
      expect(d.json.verifiedWith).to.equal('trust')
      const sigs = d.json.referrers.filter((n: {kind: string}) => n.kind === 'signature')
      expect([...new Set(sigs.map((n: {signer: {name: string}}) => n.signer.name))].sort()).to.deep.equal(['alice', 'bob'])
      expect(sigs.every((n: {verified: boolean}) => n.verified)).to.equal(true)
      const approval = d.json.referrers.find((n: {kind: string}) => n.kind === 'approval')
      expect(approval.approval).to.include({role: 'approver', note: 'reviewed the egress list', ticket: 'SEC-1234'})
      expect(approval.signer.name).to.equal('carol')
      const human = await ok(['discover', ref])
      expect(human.stdout).to.match(/├── |└── /)
      expect(human.stdout).to.contain('approval')
      expect(human.stdout).to.contain('[unverified]')
      expect(human.stdout).to.contain('ticket SEC-1234')
    })
    it('discover with a key that signed nothing marks the signatures NOT VERIFIED', async () => {
      const d = await ok(['discover', `${reg.host}/policies/org:stable`, '--key', PUB('carol'), '--json'])
      expect(d.json.referrers.filter((n: {kind: string}) => n.kind === 'signature').every((n: {verified: boolean}) => n.verified === false)).to.equal(true)
    })
    it('signs and approves in an oci: layout too, and refuses a reference that is not a policy', async () => {
      await ok(['push', ORG_BASELINE, `oci:${p('signs')}:stable`, '--key', KEY('alice')])
      await ok(['sign', `oci:${p('signs')}:stable`, '--key', KEY('bob'), '--cosign-legacy'])
      await ok(['approve', `oci:${p('signs')}:stable`, '--key', KEY('carol'), '--role', 'approver', '--note', 'ok'])
      const d = await ok(['discover', `oci:${p('signs')}:stable`, '--key', PUB('alice'), '--key', PUB('bob'), '--json'])
      const kinds = d.json.referrers.map((n: {kind: string; format?: string}) => `${n.kind}:${n.format}`).sort()
      expect(kinds).to.deep.equal(['approval:sigstore-bundle', 'signature:cosign-legacy', 'signature:sigstore-bundle', 'signature:sigstore-bundle'])
      await refused(['sign', `oci:${p('signs')}:sha256-nope`, '--key', KEY('bob')], 3, 'NOT_FOUND')
      await refused(['approve', `oci:${p('signs')}:stable`, '--key', KEY('ci'), '--role', ' ', '--note', 'x'], 1, 'INVALID_APPROVAL')
    })
  })

  describe('aibox verify REF / aibox inspect / aibox bundle inspect REF / aibox tags', () => {
    it('verify REF --key and --trust; --json matches the verify schema', async () => {
      const r = await ok(['verify', `${reg.host}/policies/org:stable`, '--trust', trustFile, '--json'])
      expectOutputSchema('verify', r.json)
      expect(r.json).to.include({verified: true, name: 'org-baseline', tier: 'org'})
      const k = await ok(['verify', `oci:${p('mirror')}:stable`, '--key', PUB('alice')])
      expect(k.stdout).to.match(/^Verified org-baseline 1\.4\.0 \(tier org\) oci:/)
      await refused(['verify', `oci:${p('mirror')}:stable`, '--key', PUB('alice'), '--trust', trustFile], 1, '')
      await refused(['verify', ORG_BASELINE, '--key', PUB('alice')], 1, 'MISSING_SIGNATURE')
    })
    it('inspect and bundle inspect show manifest, annotations, policy and referrers without verifying; --json matches', async () => {
      const i = await ok(['inspect', `${reg.host}/policies/org:stable`, '--json'])
      expectOutputSchema('inspect', i.json)
      expect(i.json.policy).to.include({name: 'org-baseline', version: '1.4.0', tier: 'org'})
      expect(i.json.policy.problems).to.deep.equal([])
      expect(i.json.verified).to.equal(false)
      expect(i.json.referrers.length).to.be.greaterThan(0)
      const b = await ok(['bundle', 'inspect', `oci:${p('mirror')}:stable`, '--json'])
      expectOutputSchema('bundle-inspect', b.json)
      const human = await ok(['inspect', `oci:${p('lying-tier')}:stable`])
      expect(human.stdout).to.match(/problem +annotation dev\.aibox\.policy\.tier is "project" but the content says "org"/)
      const file = await ok(['bundle', 'inspect', ORG_BASELINE, '--json'])
      expectOutputSchema('bundle-inspect', file.json)
    })
    it('tags lists channels then versions in semver order, hiding referrer bookkeeping tags; --json matches', async () => {
      for (const v of ['1.10.0', '1.2.0', '1.10.0-rc.1']) {
        const src = p(`v${v}.yaml`)
        fs.writeFileSync(src, fs.readFileSync(ORG_BASELINE, 'utf8').replace('version: 1.4.0', `version: ${v}`))
        await ok(['push', src, `${reg.host}/policies/org`, '--key', KEY('alice'), '--cosign-legacy'])
      }
      const r = await ok(['tags', `${reg.host}/policies/org`, '--json'])
      expectOutputSchema('tags', r.json)
      expect(r.json.tags).to.deep.equal(['lts', 'stable', '1.2.0', '1.4.0', '1.10.0-rc.1', '1.10.0'])
      expect(r.json.latest).to.equal('1.10.0')
      const human = await ok(['tags', `${reg.host}/policies/org`])
      expect(human.stdout).to.equal('lts\nstable\n1.2.0\n1.4.0\n1.10.0-rc.1\n1.10.0\n')
      await refused(['tags', `oci:${p('nothing-here')}`], 3, 'NOT_FOUND')
    })
  })

  describe('interop with skopeo', () => {
    it('skopeo inspect --raw returns our manifest bytes, and skopeo copy accepts what we push', async () => {
      const pushed = await ok(['push', ORG_BASELINE, `${reg.host}/interop/org:1.4.0`, '--key', KEY('alice'), '--json'])
      const raw = skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/org:1.4.0`)
      expect(raw.code, raw.stderr).to.equal(0)
      expect(sha256(raw.stdout)).to.equal(pushed.json.digest)
      expect(raw.stdout.toString()).to.equal(fs.readFileSync(path.join(TESTDATA, 'golden', 'org-baseline.no-created.manifest.json'), 'utf8'))
      const dir = p('skopeo-copy')
      const c = skopeo('copy', '--insecure-policy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/interop/org:1.4.0`, `oci:${dir}:1.4.0`)
      expect(c.code, c.stderr).to.equal(0)
      expect(fs.readFileSync(path.join(dir, 'blobs', 'sha256', pushed.json.contentDigest.slice(7)))).to.satisfy((b: Buffer) => sha256(b) === pushed.json.contentDigest)
      // skopeo copies no referrers: the copy is unsigned and refused; aibox copy brings them along.
      await refused(['pull', `oci:${dir}:1.4.0`, '--key', PUB('alice'), '-o', p('sk-out')], 2, 'NO_SIGNATURES')
      await ok(['copy', `${reg.host}/interop/org:1.4.0`, `oci:${dir}:1.4.0`])
      await ok(['pull', `oci:${dir}:1.4.0`, '--key', PUB('alice'), '-o', p('sk-out')])
    })
    it('the legacy .sig manifest is a valid image manifest skopeo reads', async () => {
      const pushed = await ok(['push', ORG_BASELINE, `${reg.host}/interop/legacy`, '--key', KEY('alice'), '--cosign-legacy', '--json'])
      const raw = skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/legacy:${pushed.json.legacySignature.tag}`)
      expect(raw.code, raw.stderr).to.equal(0)
      const m = JSON.parse(raw.stdout.toString())
      expect(m.layers[0].mediaType).to.equal(MT.cosignSimpleSigning)
      expect(m.layers[0].annotations).to.have.property(ANNOTATION.cosignSignature)
    })
  })

  describe('registry flags', () => {
    it('pushes to a registry with Basic auth using --username and --password-stdin, and refuses without credentials', async () => {
      const authReg = await startRegistry({auth: 'basic'})
      try {
        const ref = `${authReg.host}/policies/org`
        const r = await aibox(['push', ORG_BASELINE, ref, '--key', KEY('alice'), '--username', authReg.username!, '--password-stdin', '--json'], {input: `${authReg.password}\n`, env: {DOCKER_CONFIG: p('no-docker')}})
        expect(r.code, r.stderr).to.equal(0)
        expect(r.stdout).to.not.contain(authReg.password!)
        expect(r.stderr).to.not.contain(authReg.password!)
        await refused(['tags', ref], 1, 'UNAUTHORIZED')
        const t = await aibox(['tags', ref, '--username', authReg.username!, '--password-stdin', '--json'], {input: authReg.password!})
        expect(t.code, t.stderr).to.equal(0)
        expect(t.json.tags).to.deep.equal(['1.4.0'])
        await refused(['tags', ref, '--username', authReg.username!], 1, '')
      } finally {
        await authReg.stop()
      }
    })
  })
})

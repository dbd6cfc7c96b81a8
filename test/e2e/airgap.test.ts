/**
 * e2e: `aibox export` / `aibox import` through the real binary, against a real registry
 * (distribution 2.8, referrers through the tag fallback) and OCI layouts, with skopeo as the peer:
 * skopeo reads our archives and we import layouts and tars skopeo wrote. Exit codes, messages,
 * nothing written on refusal, `--json` against schemas/output, the audit trail.
 */
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {aibox as run, type CliOptions, type CliResult} from '../helpers/cli.js'
import {readTar, writeTar} from '../helpers/airgap-fixtures.js'
import {KEY, ORG_BASELINE, PUB, TEAM_ALPHA} from '../helpers/policy-fixtures.js'
import {type RegistryHandle, startRegistry} from '../helpers/registry.js'
import {expectOutputSchema} from '../helpers/schemas.js'
import {skopeo} from '../helpers/skopeo.js'
import {tmpdir} from '../helpers/tmp.js'

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`


describe('aibox export / import (e2e)', function () {
  this.timeout(300_000)
  let reg: RegistryHandle
  const work = tmpdir('aibox-airgap-e2e-')
  const audit = path.join(work, 'audit.jsonl')
  const p = (...f: string[]) => path.join(work, ...f)
  const trustFile = p('trust.yaml')
  const archive = p('policies.tar')
  let exported: CliResult

  function aibox(args: string[], options: CliOptions = {}): Promise<CliResult> {
    return run(args, {...options, env: {OCLIF_COLUMNS: '10000', COSIGN_PASSWORD: 'test', AIBOX_PASSWORD: undefined, AIBOX_AUDIT_LOG: audit, XDG_CACHE_HOME: p('xdg-cache'), SOURCE_DATE_EPOCH: '1700000000', CI: '1', ...options.env}})
  }
  async function ok(args: string[], options: CliOptions = {}): Promise<CliResult> {
    const r = await aibox(args, options)
    expect(r.code, `aibox ${args.join(' ')}\n${r.stderr}`).to.equal(0)
    return r
  }
  async function refused(args: string[], exit: number, code: string, message?: RegExp): Promise<CliResult> {
    const r = await aibox(args)
    expect(r.code, `aibox ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).to.equal(exit)
    expect(r.stderr).to.contain(code)
    if (message) expect(r.stderr).to.match(message)
    return r
  }
  const verifyKeys = ['--key', PUB('carol'), '--key', PUB('alice'), '--key', PUB('bob')]

  before(async () => {
    reg = await startRegistry()
    fs.writeFileSync(
      trustFile,
      `apiVersion: aibox.dev/v1
kind: TrustPolicy
metadata: {name: airgap-e2e}
keys:
  alice: {path: ${PUB('alice')}, roles: [security]}
  bob: {path: ${PUB('bob')}, roles: [team-lead, approver]}
  carol: {path: ${PUB('carol')}, roles: [operator]}
scopes:
  - name: org
    match: {registry: "127.0.0.1:*", repository: policies/org, tiers: [org]}
    require: {signatures: {security: 1}}
  - name: teams
    match: {registry: "127.0.0.1:*", repository: "policies/teams/*", tiers: [team]}
    require: {signatures: {team-lead: 1}}
`,
    )
    await ok(['push', ORG_BASELINE, `${reg.host}/policies/org:stable`, '--key', KEY('alice'), '--cosign-legacy'])
    await ok(['approve', `${reg.host}/policies/org:stable`, '--key', KEY('bob'), '--role', 'approver', '--note', 'reviewed'])
    await ok(['push', TEAM_ALPHA, `${reg.host}/policies/teams/alpha:stable`, '--key', KEY('bob'), '--against', ORG_BASELINE])
    exported = await ok(['export', `${reg.host}/policies/org:stable`, `${reg.host}/policies/teams/alpha:stable`, '-o', archive, '--key', KEY('carol'), '--json'])
  })
  after(async () => {
    await reg?.stop()
  })

  describe('aibox export', () => {
    it('writes the sealed archive from a registry; --json matches its schema; policy.exported is audited', () => {
      expectOutputSchema('export', exported.json)
      expect(exported.json.file).to.equal(archive)
      expect(exported.json.digest).to.equal(sha256(fs.readFileSync(archive)))
      expect(exported.json.policies.map((x: {tags: string[]}) => x.tags)).to.deep.equal([
        ['org-stable', '1.4.0'],
        ['alpha-stable', '2.1.0'],
      ])
      expect(exported.json.policies[0].referrers).to.equal(2)
      expect(exported.json.policies[0].legacySignature).to.match(/^sha256-[a-f0-9]{64}\.sig$/)
      const events = fs.readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
      const e = events.find((x) => x.event === 'policy.exported')
      expect(e).to.include({digest: exported.json.seal.digest, file: archive, ref: `oci-archive:${archive}`})
      expect(e.artifacts).to.deep.equal(exported.json.policies.map((x: {source: string; digest: string}) => `${x.source.replace(/:stable$/, '')}@${x.digest}`))
    })

    it('is byte-identical when run again with the same SOURCE_DATE_EPOCH, and prints a summary for humans', async () => {
      const again = await ok(['export', `${reg.host}/policies/org:stable`, `${reg.host}/policies/teams/alpha:stable`, '-o', p('again.tar'), '--key', KEY('carol')])
      expect(fs.readFileSync(p('again.tar')).equals(fs.readFileSync(archive))).to.equal(true)
      expect(again.stdout).to.match(/^Exported 2 policies to .*again\.tar\n/)
      expect(again.stdout).to.match(/seal: +sha256:[a-f0-9]{64} \(tag aibox-seal\), signed by [0-9a-f]{16}, 2023-11-14T22:13:20Z/)
    })

    it('is read by skopeo: skopeo copy oci-archive:FILE:TAG docker://… keeps the manifest digest', () => {
      const dest = `${reg.host}/skopeo/org:org-stable`
      const c = skopeo('copy', '--dest-tls-verify=false', `oci-archive:${archive}:org-stable`, `docker://${dest}`)
      expect(c.code, c.stderr).to.equal(0)
      const raw = skopeo('inspect', '--raw', '--tls-verify=false', `docker://${dest}`)
      expect(raw.code, raw.stderr).to.equal(0)
      expect(sha256(raw.stdout)).to.equal(exported.json.policies[0].digest)
      const seal = skopeo('inspect', '--raw', `oci-archive:${archive}:aibox-seal`)
      expect(seal.code, seal.stderr).to.equal(0)
      expect(sha256(seal.stdout)).to.equal(exported.json.seal.digest)
    })

    describe('when the export cannot be made', () => {
      it('refuses an existing output (exit 1), a policy that is missing (3), an unsigned artifact (2), and leaves no file', async () => {
        await refused(['export', `${reg.host}/policies/org:stable`, '-o', archive, '--key', KEY('carol')], 1, 'FILE_EXISTS')
        await refused(['export', `${reg.host}/policies/org:nope`, '-o', p('missing.tar'), '--key', KEY('carol')], 3, 'NOT_FOUND')
        await ok(['copy', `${reg.host}/policies/teams/alpha:stable`, `oci:${p('unsigned')}:stable`, '--no-referrers'])
        await refused(['export', `oci:${p('unsigned')}:stable`, '-o', p('unsigned.tar'), '--key', KEY('carol')], 2, 'NO_SIGNATURES', /has no signature/)
        await refused(['export', '-o', p('none.tar'), '--key', KEY('carol')], 1, 'Missing 1 required arg')
        expect(fs.existsSync(p('missing.tar'))).to.equal(false)
        expect(fs.existsSync(p('unsigned.tar'))).to.equal(false)
      })
    })
  })

  describe('aibox import', () => {
    it('verifies against a trust policy, imports into a registry repository, and the site can pull with verification', async () => {
      const to = `${reg.host}/airgap/policies`
      const r = await ok(['import', archive, '--to', to, '--trust', trustFile, '--json'])
      expectOutputSchema('import', r.json)
      expect(r.json.destination).to.equal(to)
      expect(r.json.seal).to.include({digest: exported.json.seal.digest, signer: 'carol', exporter: exported.json.seal.exporter})
      expect(r.json.policies.map((x: {references: string[]}) => x.references[0])).to.deep.equal([`${to}:org-stable`, `${to}:alpha-stable`])
      const pulled = await ok(['pull', `${to}:org-stable`, '--key', PUB('alice'), '--key', PUB('bob'), '-o', p('site'), '--json'])
      expect(pulled.json.digest).to.equal(exported.json.policies[0].digest)
      expect(pulled.json.approvals).to.have.length(1)
      await ok(['pull', `${to}:2.1.0`, '--key', PUB('bob'), '-o', p('site')])
      const events = fs.readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
      expect(events.find((x) => x.event === 'policy.imported')).to.include({digest: exported.json.seal.digest, destination: to, ref: archive})
    })

    it('imports into an OCI layout and says what it verified', async () => {
      const r = await ok(['import', archive, '--to', `oci:${p('site-layout')}`, ...verifyKeys])
      expect(r.stdout).to.match(/^Verified .*policies\.tar: seal sha256:[a-f0-9]{64} by 'carol\.pub' \([0-9a-f]{16}\), exported 2023-11-14T22:13:20Z by /)
      expect(r.stdout).to.match(/org-baseline 1\.4\.0 \(tier org\) sha256:[a-f0-9]{64}, signed by 'alice\.pub' \([0-9a-f]{16}\), 1 approval\(s\)/)
      expect(r.stdout).to.match(/Imported into oci:.*site-layout: \d+ written, \d+ already there/)
      const tags = await ok(['tags', `oci:${p('site-layout')}`, '--json'])
      expect(tags.json.tags).to.include.members(['org-stable', 'alpha-stable', '1.4.0', '2.1.0'])
    })

    it('records the policies in the start cache with --cache (origin import, the seal, the published references)', async () => {
      const cacheDir = p('start-cache')
      const r = await ok(['import', archive, '--cache', '--cache-dir', cacheDir, '--trust', trustFile, '--json'])
      expectOutputSchema('import', r.json)
      expect(r.json.destination).to.equal(`cache:${cacheDir}`)
      expect(r.json.policies.map((x: {references: string[]}) => x.references)).to.deep.equal([[`${reg.host}/policies/org:stable`], [`${reg.host}/policies/teams/alpha:stable`]])
      const state = JSON.parse(fs.readFileSync(path.join(cacheDir, 'state.json'), 'utf8'))
      expect(state.entries[`${reg.host}/policies/org:stable`]).to.include({digest: exported.json.policies[0].digest, origin: 'import', sealDigest: exported.json.seal.digest, checkedAt: '2023-11-14T22:13:20.000Z'})
      const env = await ok(['import', archive, '--cache', '--trust', trustFile], {env: {AIBOX_CACHE: p('env-cache')}})
      expect(env.stdout).to.match(/Imported into cache:.*env-cache/)
      expect(fs.existsSync(path.join(p('env-cache'), 'state.json'))).to.equal(true)
      await refused(['import', archive, '--cache', '--to', `oci:${p('never')}`, '--trust', trustFile], 1, 'cannot also be provided when using --cache')
    })

    it('lets aibox start load the imported cache with no registry contact (airgap: true), logging source: import', async () => {
      const cacheDir = p('airgap-start-cache')
      await ok(['import', archive, '--cache', '--cache-dir', cacheDir, '--trust', trustFile])
      const site = p('airgap-site')
      fs.mkdirSync(site, {recursive: true})
      // The archive was sealed at SOURCE_DATE_EPOCH (2023): staleness counts from the seal, so the
      // window must cover it; a registry address that nothing listens on proves no request is made.
      const config = (org: string, team: string, staleness: string): string =>
        `policy:\n  org: ${org}\n  team: ${team}\ntrust: ${trustFile}\ncache: ${cacheDir}\nmaxStaleness: ${staleness}\nairgap: true\n`
      fs.writeFileSync(path.join(site, 'aibox.yaml'), config(`${reg.host}/policies/org:stable`, `${reg.host}/policies/teams/alpha:stable`, '5000d'))
      const siteAudit = path.join(site, 'audit.jsonl')
      const r = await aibox(['start', '--json'], {cwd: site, env: {AIBOX_CONFIG: path.join(site, 'aibox.yaml'), AIBOX_AUDIT_LOG: siteAudit}})
      expect(r.code, r.stderr).to.equal(0)
      expectOutputSchema('start', r.json)
      expect(r.json.source).to.equal('import')
      expect(r.json.tiers.map((t: {digest: string}) => t.digest)).to.deep.equal(exported.json.policies.map((x: {digest: string}) => x.digest))
      expect(r.stderr).to.match(/policy org-baseline 1\.4\.0 \(sha256:[a-f0-9]{64}\) loaded from import/)
      const loaded = fs.readFileSync(siteAudit, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.event === 'policy.loaded')
      expect(loaded).to.have.length(1)
      expect(JSON.stringify(loaded[0])).to.include('"import"')
      // Past maxStaleness (counted from the seal's time) the air-gapped site refuses to start.
      fs.writeFileSync(path.join(site, 'aibox.yaml'), config(`${reg.host}/policies/org:stable`, `${reg.host}/policies/teams/alpha:stable`, '7d'))
      const stale = await aibox(['start'], {cwd: site, env: {AIBOX_CONFIG: path.join(site, 'aibox.yaml'), AIBOX_AUDIT_LOG: siteAudit}})
      expect(stale.code, stale.stderr).to.equal(4)
      expect(stale.stderr).to.match(/air-gapped/)
    })

    it('imports what skopeo wrote from the archive: an oci: layout and a tar of it with ./ prefixes', async () => {
      const index = JSON.parse((await readTar(archive)).find((e) => e.header.name === 'index.json')!.data.toString('utf8'))
      const layout = p('skopeo-layout')
      for (const m of index.manifests) {
        const tag = m.annotations['org.opencontainers.image.ref.name']
        const c = skopeo('copy', `oci-archive:${archive}:${tag}`, `oci:${layout}:${tag}`)
        expect(c.code, c.stderr).to.equal(0)
      }
      const written = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'))
      expect(written.mediaType).to.equal(undefined)
      expect(written.manifests.every((m: {artifactType?: string}) => m.artifactType === undefined)).to.equal(true)
      const r = await ok(['import', `oci:${layout}`, '--to', `oci:${p('from-skopeo')}`, ...verifyKeys, '--json'])
      expect(r.json.policies).to.have.length(2)
      expect(spawnSync('tar', ['-cf', p('skopeo.tar'), '-C', layout, '.']).status).to.equal(0)
      const t = await ok(['import', p('skopeo.tar'), ...verifyKeys, '--json'])
      expect(t.json.destination).to.equal(null)
    })

    describe('when the archive is refused', () => {
      it('a tampered blob: exit 2, the registry repository is never created', async () => {
        const entries = await readTar(archive)
        const layer = entries.find((e) => e.header.name.startsWith('blobs/') && e.data.includes(Buffer.from('foundry.internal')))!
        layer.data = Buffer.from(layer.data.toString('utf8').replace('foundry.internal', 'foundry.attacker'))
        fs.writeFileSync(p('tampered.tar'), await writeTar(entries))
        await refused(['import', p('tampered.tar'), '--to', `${reg.host}/airgap/tampered`, '--trust', trustFile], 2, 'DIGEST_MISMATCH', /does not match its name/)
        const tags = await aibox(['tags', `${reg.host}/airgap/tampered`])
        expect(tags.code, tags.stderr).to.equal(3)
      })
      it('a path traversal entry: exit 2, nothing written; the error prints as JSON with --json', async () => {
        const entries = await readTar(archive)
        entries.push({header: {name: '../../escaped', type: 'file', mode: 0o644}, data: Buffer.from('x')})
        fs.writeFileSync(p('traversal.tar'), await writeTar(entries))
        const r = await aibox(['import', p('traversal.tar'), '--to', `oci:${p('never')}`, ...verifyKeys, '--json'])
        expect(r.code).to.equal(2)
        expectOutputSchema('error', r.json)
        expect(r.json.error.code).to.equal('UNSAFE_ARCHIVE')
        expect(r.json.error.message).to.match(/escapes the archive root \(path traversal\): refused/)
        expect(fs.existsSync(p('never'))).to.equal(false)
        expect(fs.existsSync(path.resolve(work, '..', 'escaped'))).to.equal(false)
      })
      it('a seal from a key the site does not trust: exit 2', async () => {
        await refused(['import', archive, '--to', `oci:${p('never')}`, '--key', PUB('alice'), '--key', PUB('bob')], 2, 'SEAL_SIGNATURE_INVALID')
        expect(fs.existsSync(p('never'))).to.equal(false)
      })
      it('usage errors: no key or trust (1), a tag on --to (1), a missing archive (3)', async () => {
        await refused(['import', archive, '--to', `oci:${p('never')}`], 1, 'KEYS_OR_TRUST')
        await refused(['import', archive, '--to', `oci:${p('never')}:v1`, ...verifyKeys], 1, 'DESTINATION_TAG')
        await refused(['import', p('nope.tar'), ...verifyKeys], 3, 'NOT_FOUND', /does not exist/)
        expect(fs.existsSync(p('never'))).to.equal(false)
      })
    })
  })
})

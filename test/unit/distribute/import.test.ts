import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'

import {expect} from 'chai'

import {readAuditLog} from '../../../src/audit/index.js'
import {
  SEAL_TAG,
  importPolicies,
  type ImportPoliciesOptions,
  legacySignatureTag,
  openVerifiedArchive,
  packSeal,
  type SealPredicate,
  verifyPolicyArtifact,
  verifySeal,
} from '../../../src/distribute/index.js'
import {AiboxError, VerificationError} from '../../../src/errors.js'
import {ANNOTATION, LayoutDirStore, LayoutTarStore, MT} from '../../../src/oci/index.js'
import {DeterministicKeySigner} from '../../../src/sign/index.js'
import {loadTrustPolicy} from '../../../src/trust/index.js'
import {type RawEntry, type SourceLayouts, blobName, entry, indexOf, readTar, sealedExport, setIndex, sourceLayouts, writeTar} from '../../helpers/airgap-fixtures.js'
import {artifact} from '../../helpers/artifacts.js'
import {expectCode, rejection} from '../../helpers/expect-error.js'
import {KEYS_DIR, privateKey, publicKey, publish} from '../../helpers/policy-fixtures.js'
import {bundleOf, orgYaml} from '../../helpers/start-fixtures.js'
import {openCache} from '../../../src/cache/index.js'
import {tmpdir} from '../../helpers/tmp.js'

const KEYS = () => [publicKey('carol'), publicKey('alice'), publicKey('bob')]
const hex = (d: string) => d.slice(7)

function trustFile(dir: string, extra = ''): string {
  const file = path.join(dir, 'trust.yaml')
  fs.writeFileSync(
    file,
    `apiVersion: aibox.dev/v1
kind: TrustPolicy
metadata: {name: airgap}
keys:
  alice: {path: ${path.join(KEYS_DIR, 'alice.pub')}, roles: [security]}
  bob: {path: ${path.join(KEYS_DIR, 'bob.pub')}, roles: [team-lead, approver]}
  carol: {path: ${path.join(KEYS_DIR, 'carol.pub')}, roles: [operator]}
${extra}scopes:
  - name: org
    match: {tiers: [org]}
    require: {signatures: {security: 1}}
  - name: teams
    match: {tiers: [team]}
    require: {signatures: {team-lead: 1}}
`,
  )
  return file
}

describe('importPolicies', function () {
  this.timeout(120_000)
  let src: SourceLayouts
  let good: string
  let goodEntries: RawEntry[]
  before(async () => {
    src = await sourceLayouts()
    good = path.join(tmpdir('aibox-import-'), 'policies.tar')
    await sealedExport(src, good)
    goodEntries = await readTar(good)
  })

  /** A fresh sandbox: where a hostile variant goes, an import destination that must stay absent, and a temp dir that must stay empty. */
  function sandbox() {
    const root = tmpdir('aibox-import-')
    const tmp = path.join(root, 'tmp')
    fs.mkdirSync(tmp)
    return {root, tmp, dst: path.join(root, 'dst'), file: path.join(root, 'policies.tar')}
  }

  /** Imports `file` into a fresh oci: destination expecting exit 2 with `code`; checks nothing was written and no temp file is left. */
  async function expectRefused(bytes: Buffer, code: string, message: RegExp, opts: Partial<ImportPoliciesOptions> = {}, name = 'policies.tar'): Promise<AiboxError> {
    const sb = sandbox()
    const file = path.join(sb.root, name)
    fs.writeFileSync(file, bytes)
    const err = await expectCode(importPolicies({archive: file, to: `oci:${sb.dst}`, keys: KEYS(), tmpDir: sb.tmp, ...opts}), code, message)
    expect(err.exit, `exit of ${code}: ${err.message}`).to.equal(2)
    expect(fs.existsSync(sb.dst), 'destination untouched').to.equal(false)
    expect(fs.readdirSync(sb.tmp), 'temporary files removed').to.deep.equal([])
    return err
  }

  const clone = (): RawEntry[] => goodEntries.map((e) => ({header: {...e.header}, data: Buffer.from(e.data)}))
  /** The predicate of the good archive's seal (verified). */
  async function goodPredicate(): Promise<SealPredicate> {
    const store = await LayoutTarStore.open(good)
    try {
      return (await verifySeal(store, await store.resolve(SEAL_TAG), {keys: KEYS()})).predicate
    } finally {
      await store.close()
    }
  }
  /** Replaces the seal of `entries` by `predicate` sealed with `signer`'s key; index.json is left to the caller to write back. */
  async function replaceSeal(entries: RawEntry[], predicate: SealPredicate, signer: string): Promise<{kept: RawEntry[]; index: ReturnType<typeof indexOf>}> {
    const sealed = await packSeal(predicate, new DeterministicKeySigner(await privateKey(signer)))
    const index = indexOf(entries)
    const old = index.manifests.find((m) => m.annotations?.[ANNOTATION.refName] === SEAL_TAG)!
    const oldManifest = JSON.parse(entry(entries, blobName(old.digest)).data.toString('utf8'))
    const drop = new Set([blobName(old.digest), blobName(oldManifest.layers[0].digest)])
    const kept = entries.filter((e) => !drop.has(e.header.name))
    for (const b of [sealed.blobs[1]!, sealed.manifest]) kept.push({header: {name: blobName(b.desc.digest), type: 'file', mode: 0o644}, data: b.bytes})
    Object.assign(old, {digest: sealed.manifest.desc.digest, size: sealed.manifest.desc.size})
    return {kept, index}
  }

  describe('when the archive is a genuine sealed export', () => {
    it('copies each policy with its signatures, approvals and legacy .sig into an OCI layout, tags last, and audits the seal', async () => {
      const sb = sandbox()
      const log = path.join(sb.root, 'audit.jsonl')
      const r = await importPolicies({archive: good, to: `oci:${sb.dst}`, keys: KEYS(), audit: {log, actor: 'importer@site'}})
      expect(r.destination).to.equal(`oci:${sb.dst}`)
      expect(r.seal.keyId).to.equal(publicKey('carol').keyId)
      expect(r.seal.exporter).to.equal('exporter@test')
      expect(r.policies.map((p) => [p.name, p.version, p.tier, p.tags])).to.deep.equal([
        ['org-baseline', '1.4.0', 'org', ['org-stable', '1.4.0']],
        ['team-alpha', '2.1.0', 'team', ['team-stable', '2.1.0']],
      ])
      expect(r.policies[0]!.signers).to.deep.equal([{keyId: publicKey('alice').keyId, name: 'alice'}])
      expect(r.policies[0]!.approvals).to.equal(1)
      expect(r.policies[0]!.references).to.deep.equal([`oci:${sb.dst}:org-stable`, `oci:${sb.dst}:1.4.0`, `oci:${sb.dst}@${src.orgDigest}`])
      const dst = await LayoutDirStore.open(sb.dst, {readOnly: true})
      const org = await verifyPolicyArtifact(dst, 'org-stable', {keys: KEYS()})
      expect(org.manifest.digest).to.equal(src.orgDigest)
      expect(org.signatures.map((s) => s.format).sort()).to.deep.equal(['cosign-legacy', 'sigstore-bundle'])
      expect(org.approvals.map((a) => a.role)).to.deep.equal(['approver'])
      expect((await verifyPolicyArtifact(dst, '2.1.0', {keys: KEYS()})).manifest.digest).to.equal(src.teamDigest)
      expect(await dst.tags()).to.not.include(SEAL_TAG)
      const {entries} = await readAuditLog(log)
      expect(entries).to.have.length(1)
      expect(entries[0]).to.include({event: 'policy.imported', digest: r.seal.digest, ref: good, actor: 'importer@site'})
      expect((entries[0] as unknown as {destination: string}).destination).to.equal(`oci:${sb.dst}`)
      // a second import skips everything it already has
      const again = await importPolicies({archive: good, to: `oci:${sb.dst}`, keys: KEYS()})
      expect(again.copied).to.equal(0)
      expect(again.skipped).to.be.greaterThan(0)
    })

    it('verifies against a trust policy: the seal key must be in it and valid; each policy meets its scopes', async () => {
      const sb = sandbox()
      const trust = loadTrustPolicy(trustFile(sb.root))
      const r = await importPolicies({archive: good, to: `oci:${sb.dst}`, trust})
      expect(r.seal.signer).to.equal('carol')
      expect(r.policies.map((p) => p.trust?.satisfied)).to.deep.equal([true, true])
      await expectCode(importPolicies({archive: good, to: `oci:${sb.root}/other`, trust, sealRoles: ['security']}), VerificationError, 'SEAL_ROLE', /signed by key 'carol' .* which holds operator, not security/)
      const revoked = loadTrustPolicy(trustFile(sb.root, `revoked:\n  - {key: carol, reason: left the company}\n`))
      await expectCode(importPolicies({archive: good, to: `oci:${sb.root}/other`, trust: revoked}), VerificationError, 'SEAL_KEY_REFUSED', /key 'carol' .* was revoked: left the company/)
      expect(fs.existsSync(`${sb.root}/other`)).to.equal(false)
    })

    it('verifies without writing anything when there is no destination', async () => {
      const before = fs.readdirSync(path.dirname(good)).sort()
      const r = await importPolicies({archive: good, keys: KEYS()})
      expect(r.destination).to.equal(null)
      expect(r.policies.map((p) => p.references)).to.deep.equal([[], []])
      expect(r.manifests).to.equal(7)
      expect(fs.readdirSync(path.dirname(good)).sort()).to.deep.equal(before)
    })

    it('reads the archive gzip-compressed (temporary files removed), as a layout directory, and as oci-archive:FILE', async () => {
      const sb = sandbox()
      const gz = path.join(sb.root, 'policies.tar.gz')
      fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(good)))
      expect((await importPolicies({archive: gz, keys: KEYS(), tmpDir: sb.tmp})).policies).to.have.length(2)
      expect(fs.readdirSync(sb.tmp)).to.deep.equal([])
      const dir = path.join(sb.root, 'layout')
      fs.mkdirSync(dir)
      expect(spawnSync('tar', ['-xf', good, '-C', dir]).status).to.equal(0)
      expect((await importPolicies({archive: `oci:${dir}`, keys: KEYS()})).policies).to.have.length(2)
      expect((await importPolicies({archive: dir, keys: KEYS()})).policies).to.have.length(2)
      expect((await importPolicies({archive: `oci-archive:${good}`, keys: KEYS()})).policies).to.have.length(2)
    })

    it('accepts skopeo-style quirks: no mediaType in index.json, no artifactType on entries, ./ prefixes, directory entries', async () => {
      const entries = clone()
      const index = indexOf(entries)
      delete index.mediaType
      for (const m of index.manifests) delete m.artifactType
      setIndex(entries, index)
      for (const e of entries) e.header.name = `./${e.header.name}`
      entries.unshift({header: {name: './', type: 'directory', mode: 0o755, size: 0}, data: Buffer.alloc(0)})
      const sb = sandbox()
      fs.writeFileSync(sb.file, await writeTar(entries))
      const r = await importPolicies({archive: sb.file, to: `oci:${sb.dst}`, keys: KEYS()})
      expect(r.policies).to.have.length(2)
    })
  })

  describe('when importing into the start cache', () => {
    it('records each policy under the reference it was exported from, origin import, with the seal and its time', async () => {
      const sb = sandbox()
      const log = path.join(sb.root, 'audit.jsonl')
      const cacheDir = path.join(sb.root, 'cache')
      const r = await importPolicies({archive: good, cache: cacheDir, keys: KEYS(), audit: {log}})
      expect(r.destination).to.equal(`cache:${cacheDir}`)
      expect(r.policies.map((x) => x.references)).to.deep.equal([[`oci:${src.org}:stable`], [`oci:${src.team}:stable`]])
      const cache = await openCache(cacheDir, {create: false})
      const entry = cache.readState().entries[`oci:${src.org}:stable`]!
      expect(entry).to.include({digest: src.orgDigest, origin: 'import', sealDigest: r.seal.digest, version: '1.4.0', tier: 'org', checkedAt: '2023-11-14T22:13:20.000Z'})
      expect(cache.entryProblem(entry)).to.equal(undefined)
      expect(cache.readState().entries[`oci:${src.team}:stable`]).to.include({digest: src.teamDigest, origin: 'import'})
      // the cached copy verifies on its own, offline, signatures included
      const layout = await LayoutDirStore.open(cache.layoutDir, {readOnly: true})
      expect((await verifyPolicyArtifact(layout, {mediaType: MT.ociManifest, digest: src.orgDigest, size: entry.size}, {keys: KEYS()})).approvals).to.have.length(1)
      const {entries} = await readAuditLog(log)
      expect(entries.map((e) => e.event)).to.deep.equal(['policy.imported'])
      expect(entries[0]).to.include({digest: r.seal.digest})
    })

    it('refuses an archive holding an older version than the cache has (a rollback), and records nothing', async () => {
      const own = await sourceLayouts()
      const first = path.join(own.root, 'first.tar')
      await sealedExport(own, first)
      const cacheDir = path.join(own.root, 'cache')
      await importPolicies({archive: first, cache: cacheDir, keys: KEYS()})
      const before = fs.readFileSync(path.join(cacheDir, 'state.json'))
      // the same reference (oci:ORG:stable) now names an older version, signed by alice as before
      const org = await LayoutDirStore.open(own.org)
      await publish(org, bundleOf(orgYaml('1.3.0')), [await privateKey('alice')], ['stable'])
      const older = path.join(own.root, 'older.tar')
      await sealedExport(own, older)
      const err = await expectCode(importPolicies({archive: older, cache: cacheDir, keys: KEYS()}), VerificationError, 'POLICY_ROLLBACK', /rollback refused for oci:.*org:stable: org-baseline 1\.3\.0 .* is older than the cached 1\.4\.0/)
      expect(err.exit).to.equal(2)
      expect(fs.readFileSync(path.join(cacheDir, 'state.json')).equals(before)).to.equal(true)
    })

    it('refuses --to together with --cache', async () => {
      await expectCode(importPolicies({archive: good, to: 'oci:/nowhere', cache: '/nowhere', keys: KEYS()}), 'ONE_DESTINATION')
    })
  })

  describe('when the archive cannot be trusted', () => {
    it('refuses a seal signed by a key that is not trusted', async () => {
      await expectRefused(fs.readFileSync(good), 'SEAL_SIGNATURE_INVALID', /seal sha256:[a-f0-9]{64} in .*DSSE signature/, {keys: [publicKey('alice'), publicKey('bob')]})
    })

    it('refuses a policy whose own signature does not verify, although the seal does', async () => {
      const err = await expectRefused(fs.readFileSync(good), 'SIGNATURE_INVALID', /^policy oci:.*\/org:stable \(sha256:[a-f0-9]{64}\) in .*no signature verifies/, {keys: [publicKey('carol'), publicKey('bob')]})
      expect(err).to.be.instanceOf(VerificationError)
    })

    it('refuses a blob whose content does not match its digest', async () => {
      const entries = clone()
      const layer = entries.find((e) => e.data.includes(Buffer.from('foundry.internal')) && e.header.name.startsWith('blobs/'))!
      layer.data = Buffer.from(layer.data.toString('utf8').replace('foundry.internal', 'foundry.attacker'))
      await expectRefused(await writeTar(entries), 'DIGEST_MISMATCH', /does not match its name: content hashes to sha256:/)
    })

    it('refuses a replaced seal signed by another key', async () => {
      const entries = clone()
      const predicate = await goodPredicate()
      const {kept, index} = await replaceSeal(entries, predicate, 'mallory')
      setIndex(kept, index)
      await expectRefused(await writeTar(kept), 'SEAL_SIGNATURE_INVALID', /no trusted key|DSSE signature/)
    })

    it('refuses a seal whose recorded tenant is not the signed content\'s, although a trusted key sealed it (README "Tenants")', async () => {
      const entries = clone()
      const predicate = await goodPredicate()
      const relabelled = {...predicate, artifacts: predicate.artifacts.map((a) => (a.kind === 'policy' ? {...a, tenant: 'beta'} : a))}
      const {kept, index} = await replaceSeal(entries, relabelled, 'carol')
      setIndex(kept, index)
      await expectRefused(await writeTar(kept), 'SEAL_MISMATCH', /the seal says tenant beta, its signed content says \(none\)/)
    })

    it('refuses, even under a genuine seal, a referrer whose subject is not in the archive', async () => {
      const entries = clone()
      const predicate = await goodPredicate()
      const ghost = {mediaType: MT.ociManifest, digest: `sha256:${'d'.repeat(64)}`, size: 123}
      const stray = artifact(['stray'], {subject: ghost})
      for (const b of [stray.layers[0]!, stray.manifest]) entries.push({header: {name: blobName(b.desc.digest), type: 'file', mode: 0o644}, data: b.data})
      const tag = `sha256-${hex(stray.manifest.desc.digest)}.ref`
      predicate.artifacts.push({digest: stray.manifest.desc.digest, mediaType: MT.ociManifest, size: stray.manifest.desc.size, kind: 'referrer', tags: [tag], subject: ghost.digest})
      const {kept, index} = await replaceSeal(entries, predicate, 'carol')
      index.manifests.push({...stray.manifest.desc, annotations: {[ANNOTATION.refName]: tag}})
      setIndex(kept, index)
      await expectRefused(await writeTar(kept), 'SEAL_MISMATCH', new RegExp(`referrer ${stray.manifest.desc.digest} refers to ${ghost.digest}, which the seal does not list`))
    })

    it('refuses an archive without a seal, and one with two', async () => {
      const entries = clone()
      const index = indexOf(entries)
      const sealEntry = index.manifests.find((m) => m.annotations?.[ANNOTATION.refName] === SEAL_TAG)!
      const sealManifest = JSON.parse(entry(entries, blobName(sealEntry.digest)).data.toString('utf8'))
      const unsealed = entries.filter((e) => e.header.name !== blobName(sealEntry.digest) && e.header.name !== blobName(sealManifest.layers[0].digest))
      setIndex(unsealed, {...index, manifests: index.manifests.filter((m) => m !== sealEntry)})
      await expectRefused(await writeTar(unsealed), 'SEAL_MISSING', /has no seal .* it is not a sealed export/)

      const predicate = await goodPredicate()
      const second = await packSeal({...predicate, exporter: 'someone-else'}, new DeterministicKeySigner(await privateKey('carol')))
      const twice = clone()
      for (const b of [second.blobs[1]!, second.manifest]) twice.push({header: {name: blobName(b.desc.digest), type: 'file', mode: 0o644}, data: b.bytes})
      const idx = indexOf(twice)
      idx.manifests.push({...second.manifest.desc, annotations: {[ANNOTATION.refName]: 'second-seal'}} as never)
      setIndex(twice, idx)
      await expectRefused(await writeTar(twice), 'SEAL_AMBIGUOUS', /holds 2 seals/)
    })

    it('refuses a manifest that the seal does not list (index.json naming an extra artifact)', async () => {
      const entries = clone()
      const extra = artifact(['smuggled'])
      for (const b of [extra.layers[0]!, extra.manifest]) entries.push({header: {name: blobName(b.desc.digest), type: 'file', mode: 0o644}, data: b.data})
      const index = indexOf(entries)
      index.manifests.push({...extra.manifest.desc, annotations: {[ANNOTATION.refName]: 'smuggled'}})
      setIndex(entries, index)
      await expectRefused(await writeTar(entries), 'SEAL_MISMATCH', new RegExp(`${extra.manifest.desc.digest} \\(application/vnd.aibox.test.artifact.v1\\) is in the archive but not listed in the seal`))
    })

    it('refuses an archive missing a manifest the seal lists', async () => {
      const entries = clone()
      const index = indexOf(entries)
      const legacy = index.manifests.find((m) => m.annotations?.[ANNOTATION.refName] === legacySignatureTag(src.orgDigest))!
      setIndex(entries, {...index, manifests: index.manifests.filter((m) => m.digest !== legacy.digest)})
      const manifest = JSON.parse(entry(entries, blobName(legacy.digest)).data.toString('utf8'))
      const drop = new Set([legacy.digest, manifest.config.digest, ...manifest.layers.map((l: {digest: string}) => l.digest)].map(blobName))
      await expectRefused(await writeTar(entries.filter((e) => !drop.has(e.header.name))), 'SEAL_MISMATCH', new RegExp(`${legacy.digest} \\(legacy-signature\\) is listed in the seal but not in the archive`))
    })

    it('refuses a blob that nothing references', async () => {
      const entries = clone()
      const junk = Buffer.from('unlisted content')
      entries.push({header: {name: blobName(`sha256:${createHash('sha256').update(junk).digest('hex')}`), type: 'file', mode: 0o644}, data: junk})
      await expectRefused(await writeTar(entries), 'UNLISTED_BLOB', /holds 1 blob\(s\) that nothing in index.json reaches/)
    })

    it('refuses index.json moving a tag to another policy (a rollback), and an index.json naming a missing blob', async () => {
      const entries = clone()
      const index = indexOf(entries)
      const stable = index.manifests.find((m) => m.annotations?.[ANNOTATION.refName] === 'team-stable')!
      const org = index.manifests.find((m) => m.digest === src.orgDigest)!
      Object.assign(stable, {digest: org.digest, size: org.size, artifactType: org.artifactType})
      setIndex(entries, index)
      await expectRefused(await writeTar(entries), 'SEAL_MISMATCH', new RegExp(`index.json tags ${src.orgDigest} as "team-stable", but the seal gives "team-stable" to ${src.teamDigest}`))

      const missing = clone()
      const idx = indexOf(missing)
      idx.manifests.push({mediaType: MT.ociManifest, digest: `sha256:${'e'.repeat(64)}`, size: 100, annotations: {[ANNOTATION.refName]: 'ghost'}})
      setIndex(missing, idx)
      await expectRefused(await writeTar(missing), 'INVALID_LAYOUT', /index.json names sha256:e{64} .* which is not in the archive/)
    })
  })

  describe('when the archive is hostile', () => {
    it('refuses path traversal and absolute paths', async () => {
      const evil = {header: {name: '../evil', type: 'file' as const, mode: 0o644}, data: Buffer.from('evil')}
      await expectRefused(await writeTar([...clone(), evil]), 'UNSAFE_ARCHIVE', /entry "\.\.\/evil" escapes the archive root \(path traversal\): refused/)
      const abs = {header: {name: '/tmp/aibox-evil', type: 'file' as const, mode: 0o644}, data: Buffer.from('evil')}
      await expectRefused(await writeTar([abs, ...clone()]), 'UNSAFE_ARCHIVE', /entry "\/tmp\/aibox-evil" has an absolute path: refused/)
      expect(fs.existsSync('/tmp/aibox-evil')).to.equal(false)
    })

    it('refuses symbolic links, hard links and device files', async () => {
      const name = blobName(`sha256:${'1'.repeat(64)}`)
      for (const [header, what] of [
        [{name, type: 'symlink', linkname: '/etc/passwd'}, 'is a symbolic link'],
        [{name, type: 'link', linkname: 'index.json'}, 'is a hard link'],
        [{name, type: 'character-device', devmajor: 1, devminor: 3}, 'is a device file'],
      ] as const) {
        await expectRefused(await writeTar([...clone(), {header: {...header, mode: 0o644, size: 0}, data: Buffer.alloc(0)}]), 'UNSAFE_ARCHIVE', new RegExp(`${what}: refused`))
      }
    })

    it('refuses duplicate entries', async () => {
      const entries = clone()
      entries.push({header: {name: 'index.json', type: 'file', mode: 0o644}, data: Buffer.from('{"schemaVersion":2,"manifests":[]}')})
      await expectRefused(await writeTar(entries), 'UNSAFE_ARCHIVE', /duplicate entry "index.json"/)
    })

    it('refuses a huge declared size and a truncated file', async () => {
      const bytes = await writeTar(clone())
      const at = bytes.indexOf(Buffer.from(blobName(src.orgDigest)))
      const forged = Buffer.from(bytes)
      forged.write(`${(2 ** 33 - 1).toString(8).padStart(11, '0')}\0`, at + 124, 12, 'latin1')
      forged.fill(0x20, at + 148, at + 156)
      let sum = 0
      for (const b of forged.subarray(at, at + 512)) sum += b
      forged.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 8, 'latin1')
      await expectRefused(forged, 'UNSAFE_ARCHIVE', /declares 8589934591 bytes but only \d+ remain in the archive/)
      await expectRefused(bytes.subarray(0, bytes.length - 3000), 'UNSAFE_ARCHIVE', /forged size or truncated file|truncated/)
    })

    it('refuses a gzip bomb', async () => {
      const entries = clone()
      const zeros = Buffer.alloc(40 * 1024 * 1024)
      entries.push({header: {name: blobName(`sha256:${createHash('sha256').update(zeros).digest('hex')}`), type: 'file', mode: 0o644}, data: zeros})
      await expectRefused(zlib.gzipSync(await writeTar(entries), {level: 9}), 'UNSAFE_ARCHIVE', /gzip bomb: \d+ compressed bytes expand to more than \d+/, {}, 'bomb.tar.gz')
    })

    it('refuses data that is not a tar, and a compression it does not read', async () => {
      await expectRefused(Buffer.from('this is not an archive at all'.repeat(40)), 'INVALID_LAYOUT', /not a valid tar archive/)
      await expectRefused(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]), 'UNSUPPORTED', /zstd-compressed archives are not supported/)
    })
  })

  describe('when the command line is wrong', () => {
    it('refuses a destination with a tag, an archive reference with a tag, a missing archive, and neither keys nor trust', async () => {
      const sb = sandbox()
      await expectCode(importPolicies({archive: good, to: `oci:${sb.dst}:v1`, keys: KEYS()}), 'DESTINATION_TAG')
      await expectCode(importPolicies({archive: `oci-archive:${good}:org-stable`, keys: KEYS()}), 'INVALID_ARCHIVE_REFERENCE')
      const missing = await rejection(importPolicies({archive: path.join(sb.root, 'nope.tar'), keys: KEYS()}))
      expect(missing.exit).to.equal(3)
      expect(missing.message).to.match(/nope.tar does not exist/)
      await expectCode(openVerifiedArchive(good, {}), 'KEYS_OR_TRUST')
      expect(fs.existsSync(sb.dst)).to.equal(false)
    })
  })
})

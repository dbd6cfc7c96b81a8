import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {readAuditLog} from '../../../src/audit/index.js'
import {SEAL_TAG, assignPolicyTags, exportPolicies, legacySignatureTag, verifySeal} from '../../../src/distribute/index.js'
import {VerificationError} from '../../../src/errors.js'
import {ANNOTATION, LayoutDirStore, LayoutTarStore, MT} from '../../../src/oci/index.js'
import {EPOCH, type SourceLayouts, sealedExport, sourceLayouts} from '../../helpers/airgap-fixtures.js'
import {expectCode} from '../../helpers/expect-error.js'
import {artifact, pushArtifact} from '../../helpers/artifacts.js'
import {forge, privateKey, publicKey} from '../../helpers/policy-fixtures.js'
import {listFiles, tmpdir} from '../../helpers/tmp.js'

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

describe('exportPolicies', function () {
  this.timeout(120_000)
  let src: SourceLayouts
  before(async () => {
    src = await sourceLayouts()
  })

  describe('when exporting two signed policies from OCI layouts', () => {
    let dir: string
    let file: string
    let result: Awaited<ReturnType<typeof sealedExport>>
    before(async () => {
      dir = tmpdir('aibox-export-')
      file = path.join(dir, 'policies.tar')
      result = await sealedExport(src, file)
    })

    it('writes a layout tar holding every policy, referrer, legacy signature and the seal, each tagged', async () => {
      const store = await LayoutTarStore.open(file)
      try {
        const tags = await store.tags()
        expect(tags).to.include.members(['org-stable', 'team-stable', '1.4.0', '2.1.0', SEAL_TAG, legacySignatureTag(src.orgDigest)])
        expect((await store.resolve('org-stable')).digest).to.equal(src.orgDigest)
        expect((await store.resolve('1.4.0')).digest).to.equal(src.orgDigest)
        expect((await store.resolve('team-stable')).digest).to.equal(src.teamDigest)
        // org: alice's signature + bob's approval; team: bob's signature
        expect(await store.predecessors({mediaType: MT.ociManifest, digest: src.orgDigest, size: 0})).to.have.length(2)
        expect(await store.predecessors({mediaType: MT.ociManifest, digest: src.teamDigest, size: 0})).to.have.length(1)
        const index = await store.readIndex()
        // every manifest is tagged: skopeo 1.9 cannot select an untagged entry (registry-notes.md §5)
        expect(index.manifests.every((d) => d.annotations?.[ANNOTATION.refName] !== undefined)).to.equal(true)
        expect(store.report.unreferenced).to.deep.equal([])
      } finally {
        await store.close()
      }
      expect(result.manifests).to.equal(7)
      expect(result.policies.map((p) => [p.name, p.version, p.tags, p.referrers])).to.deep.equal([
        ['org-baseline', '1.4.0', ['org-stable', '1.4.0'], 2],
        ['team-alpha', '2.1.0', ['team-stable', '2.1.0'], 1],
      ])
      expect(result.policies[0]!.legacySignature).to.equal(legacySignatureTag(src.orgDigest))
      expect(result.digest).to.equal(sha256(fs.readFileSync(file)))
      expect(result.size).to.equal(fs.statSync(file).size)
    })

    it('seals every manifest but the seal, with who, when, tags and sources, signed by the exporter', async () => {
      const store = await LayoutTarStore.open(file)
      try {
        const sealDesc = await store.resolve(SEAL_TAG)
        expect(sealDesc.digest).to.equal(result.seal.digest)
        expect(sealDesc.artifactType).to.equal(MT.seal)
        const seal = await verifySeal(store, sealDesc, {keys: [publicKey('carol')]})
        expect(seal.signer.keyId).to.equal(publicKey('carol').keyId)
        expect(seal.predicate.exportedAt).to.equal(new Date(Number(EPOCH) * 1000).toISOString().replace('.000Z', 'Z'))
        expect(seal.predicate.exporter).to.equal('exporter@test')
        expect(seal.predicate.tool).to.match(/^aibox-policy \d+\.\d+\.\d+/)
        const manifests = (await store.readIndex()).manifests.map((d) => d.digest).filter((d) => d !== sealDesc.digest)
        expect(seal.subjects).to.deep.equal([...new Set(manifests)].sort())
        const kinds = seal.predicate.artifacts.map((a) => a.kind).sort()
        expect(kinds).to.deep.equal(['legacy-signature', 'policy', 'policy', 'referrer', 'referrer', 'referrer'])
        const org = seal.predicate.artifacts.find((a) => a.digest === src.orgDigest)!
        expect(org).to.include({kind: 'policy', source: `oci:${src.org}:stable`, name: 'org-baseline', version: '1.4.0', tier: 'org'})
        for (const r of seal.predicate.artifacts.filter((a) => a.kind === 'referrer')) expect(r.tags).to.deep.equal([`sha256-${r.digest.slice(7)}.ref`])
        await expectCode(verifySeal(store, sealDesc, {keys: [publicKey('alice')]}), VerificationError, 'SEAL_SIGNATURE_INVALID')
      } finally {
        await store.close()
      }
    })

    it('writes a byte-identical archive for the same inputs (SOURCE_DATE_EPOCH pinned), with entry times from it', async () => {
      const again = path.join(dir, 'again.tar')
      const r2 = await sealedExport(src, again)
      expect(fs.readFileSync(again).equals(fs.readFileSync(file))).to.equal(true)
      expect(r2.digest).to.equal(result.digest)
      const listing = spawnSync('tar', ['--numeric-owner', '--full-time', '-tvf', file], {encoding: 'utf8'})
      expect(listing.status).to.equal(0)
      const lines = listing.stdout.trim().split('\n')
      expect(lines.slice(0, 4).map((l) => l.split(/\s+/).at(-1))).to.deep.equal(['oci-layout', 'index.json', 'blobs/', 'blobs/sha256/'])
      for (const l of lines) expect(l).to.match(/ 0\/0 .* 2023-11-14 22:13:20 /)
    })

    it('leaves no staging directory behind', async () => {
      const tmp = tmpdir('aibox-export-tmp-')
      await sealedExport(src, path.join(dir, 'third.tar'), {tmpDir: tmp})
      expect(fs.readdirSync(tmp)).to.deep.equal([])
    })
  })

  describe('when a policy is exported under its own tags only', () => {
    it('keeps the plain tags and records policy.exported with the seal digest', async () => {
      const dir = tmpdir('aibox-export-')
      const log = path.join(dir, 'audit.jsonl')
      const r = await exportPolicies({
        references: [`oci:${src.org}:stable`, `oci:${src.org}:1.4.0`],
        output: path.join(dir, 'org.tar'),
        key: await privateKey('carol'),
        env: {},
        audit: {log, actor: 'carol@test'},
      })
      expect(r.policies).to.have.length(1)
      expect(r.policies[0]!.tags).to.deep.equal(['stable', '1.4.0'])
      const {entries} = await readAuditLog(log)
      expect(entries).to.have.length(1)
      expect(entries[0]).to.include({event: 'policy.exported', digest: r.seal.digest, actor: 'carol@test', ref: `oci-archive:${r.file}`})
      expect((entries[0] as unknown as {artifacts: string[]}).artifacts).to.deep.equal([`oci:${src.org}@${src.orgDigest}`])
    })
  })

  describe('when something cannot be exported', () => {
    it('refuses a policy without any signature, and writes nothing', async () => {
      const dir = tmpdir('aibox-export-')
      const unsigned = await LayoutDirStore.open(path.join(dir, 'unsigned'), {create: true})
      const d = await forge(unsigned)
      await unsigned.tag(d, 'v1')
      await expectCode(
        exportPolicies({references: [`oci:${path.join(dir, 'unsigned')}:v1`], output: path.join(dir, 'x.tar'), key: await privateKey('carol'), env: {}}),
        VerificationError,
        'NO_SIGNATURES',
        /has no signature: an archive holding it could not be imported anywhere/,
      )
      expect(fs.existsSync(path.join(dir, 'x.tar'))).to.equal(false)
    })
    it('refuses an artifact that is not a policy', async () => {
      const dir = tmpdir('aibox-export-')
      const other = await LayoutDirStore.open(path.join(dir, 'other'), {create: true})
      await pushArtifact(other, artifact(['not a policy']), 'v1')
      await expectCode(exportPolicies({references: [`oci:${path.join(dir, 'other')}:v1`], output: path.join(dir, 'x.tar'), key: await privateKey('carol'), env: {}}), 'NOT_A_POLICY')
      expect(listFiles(dir).filter((f) => f.endsWith('.tar'))).to.deep.equal([])
    })
    it('refuses a reference without tag or digest, a missing tag, and an existing output file', async () => {
      const dir = tmpdir('aibox-export-')
      const key = await privateKey('carol')
      await expectCode(exportPolicies({references: [`oci:${src.org}`], output: path.join(dir, 'x.tar'), key, env: {}}), 'INVALID_REFERENCE', /names no tag or digest/)
      await expectCode(exportPolicies({references: [`oci:${src.org}:nope`], output: path.join(dir, 'x.tar'), key, env: {}}), 'NOT_FOUND', /tag not found/)
      fs.writeFileSync(path.join(dir, 'exists.tar'), 'keep me')
      await expectCode(exportPolicies({references: [`oci:${src.org}:stable`], output: path.join(dir, 'exists.tar'), key, env: {}}), 'FILE_EXISTS')
      expect(fs.readFileSync(path.join(dir, 'exists.tar'), 'utf8')).to.equal('keep me')
      await expectCode(exportPolicies({references: [], output: path.join(dir, 'x.tar'), key, env: {}}), 'NO_REFERENCES')
    })
  })
})

describe('assignPolicyTags', () => {
  describe('when two policies claim the same tag', () => {
    it('qualifies that tag with each one’s qualifier and keeps the others', () => {
      const tags = assignPolicyTags(
        [
          {digest: 'sha256:a', source: 'r/policies/org:stable', qualifier: 'org', wanted: ['stable', '1.4.0']},
          {digest: 'sha256:b', source: 'r/policies/teams/alpha:stable', qualifier: 'alpha', wanted: ['stable', '2.1.0']},
        ],
        new Set([SEAL_TAG]),
      )
      expect(Object.fromEntries(tags)).to.deep.equal({'sha256:a': ['org-stable', '1.4.0'], 'sha256:b': ['alpha-stable', '2.1.0']})
    })
  })
  describe('when qualifying still leaves a conflict', () => {
    it('refuses with TAG_CONFLICT', () => {
      expect(() =>
        assignPolicyTags(
          [
            {digest: 'sha256:a', source: 'r1/x/org:stable', qualifier: 'org', wanted: ['stable']},
            {digest: 'sha256:b', source: 'r2/y/org:stable', qualifier: 'org', wanted: ['stable']},
          ],
          new Set(),
        ),
      ).to.throw(/cannot give tag "stable" of r2\/y\/org:stable a unique name in the archive/)
    })
  })
  describe('when a policy tag is a reserved archive tag', () => {
    it('qualifies it', () => {
      const tags = assignPolicyTags([{digest: 'sha256:a', source: 'r/x/org:aibox-seal', qualifier: 'org', wanted: [SEAL_TAG]}], new Set([SEAL_TAG]))
      expect(tags.get('sha256:a')).to.deep.equal([`org-${SEAL_TAG}`])
    })
  })
})

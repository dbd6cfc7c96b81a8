import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {loadBundle, loadBundleText} from '../../../src/bundle/index.js'
import {createdFromEnv, packPolicy} from '../../../src/distribute/index.js'
import {ANNOTATION, EMPTY_DESCRIPTOR, MT, parseManifest, readAll, sha256Digest} from '../../../src/oci/index.js'
import {TESTDATA} from '../../helpers/cli.js'
import {expectCode, expectCodeSync} from '../../helpers/expect-error.js'
import {ORG_BASELINE} from '../../helpers/policy-fixtures.js'

const GOLDEN = path.join(TESTDATA, 'golden')

describe('packPolicy', () => {
  describe('when packing the golden bundle', () => {
    it('gives byte-for-byte the golden manifest with SOURCE_DATE_EPOCH, and without it (scripts/gen-golden.ts)', async () => {
      const bundle = loadBundle(path.join(GOLDEN, 'org-baseline.yaml'))
      const withDate = await packPolicy(bundle, {env: {SOURCE_DATE_EPOCH: '1700000000'}})
      expect(withDate.manifestBytes.toString()).to.equal(fs.readFileSync(path.join(GOLDEN, 'org-baseline.manifest.json'), 'utf8'))
      const without = await packPolicy(bundle, {env: {}})
      expect(without.manifestBytes.toString()).to.equal(fs.readFileSync(path.join(GOLDEN, 'org-baseline.no-created.manifest.json'), 'utf8'))
      expect(without.manifest.digest).to.equal(sha256Digest(fs.readFileSync(path.join(GOLDEN, 'org-baseline.no-created.manifest.json'))))
    })
  })

  describe('when packing a bundle', () => {
    it('lays out the artifact exactly as formats.md says', async () => {
      const bundle = loadBundle(ORG_BASELINE)
      const p = await packPolicy(bundle, {env: {}})
      const m = parseManifest(p.manifestBytes, p.manifest)
      if (m.kind !== 'manifest') throw new Error('not a manifest')
      expect(m.manifest.artifactType).to.equal(MT.policyBundle)
      expect(m.manifest.config).to.deep.equal(EMPTY_DESCRIPTOR)
      expect(m.manifest.layers.map((l) => l.mediaType)).to.deep.equal([MT.policyBundle, MT.policySource])
      expect(m.manifest.layers[0]!.annotations).to.deep.equal({[ANNOTATION.title]: 'org-baseline.json'})
      expect(m.manifest.layers[1]!.annotations).to.deep.equal({[ANNOTATION.title]: 'org-baseline.yaml'})
      expect(m.manifest.annotations).to.deep.equal({
        [ANNOTATION.title]: 'org-baseline',
        [ANNOTATION.version]: '1.4.0',
        [ANNOTATION.tier]: 'org',
        [ANNOTATION.policyDigest]: bundle.digest,
      })
      // The canonical layer IS the content: its digest is the bundle's content digest.
      expect(p.layers[0]!.digest).to.equal(bundle.digest)
      expect(p.contentDigest).to.equal(bundle.digest)
      const stored = await readAll(await p.store.fetch(p.layers[0]!), 1 << 20)
      expect(loadBundleText(stored, 'layer', {format: 'json'}).digest).to.equal(bundle.digest)
      expect((await readAll(await p.store.fetch(p.layers[1]!), 1 << 20)).toString()).to.equal(fs.readFileSync(ORG_BASELINE, 'utf8'))
    })
    it('gives the same layer digest for the YAML and the JSON rendering, and no source layer for JSON', async () => {
      const yaml = await packPolicy(loadBundle(ORG_BASELINE), {env: {}})
      const json = await packPolicy(loadBundle(path.join(TESTDATA, 'bundles', 'org', 'baseline.json')), {env: {}})
      expect(json.layers[0]!.digest).to.equal(yaml.layers[0]!.digest)
      expect(json.layers).to.have.length(1)
      expect(json.source).to.equal(undefined)
    })
    it('leaves the source out with includeSource: false', async () => {
      const p = await packPolicy(loadBundle(ORG_BASELINE), {env: {}, includeSource: false})
      expect(p.layers).to.have.length(1)
    })
    it('never reads the clock: packing twice a second apart gives the same digest', async () => {
      const a = await packPolicy(loadBundle(ORG_BASELINE), {env: {}})
      await new Promise((r) => setTimeout(r, 1100))
      const b = await packPolicy(loadBundle(ORG_BASELINE), {env: {}})
      expect(b.manifest.digest).to.equal(a.manifest.digest)
    })
  })

  describe('when the document cannot be published', () => {
    it('refuses a bare AI-Box policy (no name, version, tier) with NOT_PUBLISHABLE', async () => {
      await expectCode(packPolicy(loadBundle(path.join(TESTDATA, 'bundles', 'bare', 'org-policy.yaml'), {tier: 'org'})), 'NOT_PUBLISHABLE', /only those can be published/)
    })
    it('refuses a HELM policy file', async () => {
      await expectCode(packPolicy(loadBundle(path.join(TESTDATA, 'bundles', 'helm', 'policy.yaml'))), 'NOT_PUBLISHABLE')
    })
  })
})

describe('createdFromEnv', () => {
  it('turns SOURCE_DATE_EPOCH into RFC 3339 UTC seconds, and nothing when unset', () => {
    expect(createdFromEnv({SOURCE_DATE_EPOCH: '0'})).to.equal('1970-01-01T00:00:00Z')
    expect(createdFromEnv({SOURCE_DATE_EPOCH: '1700000000'})).to.equal('2023-11-14T22:13:20Z')
    expect(createdFromEnv({})).to.equal(undefined)
    expect(createdFromEnv({SOURCE_DATE_EPOCH: ''})).to.equal(undefined)
  })
  describe('when it is not a number of seconds', () => {
    it('throws INVALID_SOURCE_DATE_EPOCH instead of ignoring it', () => {
      for (const bad of ['yesterday', '-5', '1.5', '2024-01-01']) expectCodeSync(() => createdFromEnv({SOURCE_DATE_EPOCH: bad}), 'INVALID_SOURCE_DATE_EPOCH')
    })
  })
})

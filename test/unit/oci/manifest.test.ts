import {expect} from 'chai'

import {
  ANNOTATION,
  EMPTY_DESCRIPTOR,
  MAX_MANIFEST_BYTES,
  MT,
  packIndex,
  packManifest,
  parseManifest,
  referrerDescriptor,
  sha256Digest,
  sniffManifestMediaType,
  successors,
} from '../../../src/oci/index.js'
import {blob, buildGraph, CREATED} from '../../helpers/oci-fixtures.js'
import {expectCodeSync} from '../../helpers/expect-error.js'

const layer = blob(MT.policyBundle, Buffer.from('{"a":1}'), {annotations: {[ANNOTATION.title]: 'p.json'}})

function doc(o: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify(o))
}

describe('manifest', () => {
  describe('#packManifest', () => {
    it('gives the same bytes and digest for the same input, whatever the annotation order', () => {
      const a = packManifest({artifactType: MT.policyBundle, layers: [layer.desc], annotations: {b: '2', a: '1'}, created: CREATED})
      const b = packManifest({artifactType: MT.policyBundle, layers: [layer.desc], annotations: {a: '1', b: '2'}, created: CREATED})
      expect(a.bytes.equals(b.bytes)).to.equal(true)
      expect(a.descriptor).to.deep.equal(b.descriptor)
      expect(a.descriptor.digest).to.equal(sha256Digest(a.bytes))
    })
    it('writes keys in a fixed order, no whitespace, the empty config by default and created from the caller', () => {
      const p = packManifest({artifactType: MT.policyBundle, layers: [layer.desc], created: CREATED})
      expect(p.bytes.toString()).to.equal(
        `{"schemaVersion":2,"mediaType":"${MT.ociManifest}","artifactType":"${MT.policyBundle}",` +
          `"config":{"mediaType":"${MT.ociEmpty}","digest":"${EMPTY_DESCRIPTOR.digest}","size":2},` +
          `"layers":[{"mediaType":"${MT.policyBundle}","digest":"${layer.desc.digest}","size":7,"annotations":{"${ANNOTATION.title}":"p.json"}}],` +
          `"annotations":{"${ANNOTATION.created}":"${CREATED}"}}`,
      )
      expect(p.descriptor).to.deep.equal({
        mediaType: MT.ociManifest,
        digest: sha256Digest(p.bytes),
        size: p.bytes.length,
        artifactType: MT.policyBundle,
        annotations: {[ANNOTATION.created]: CREATED},
      })
    })
    it('never reads the clock: without created there is no created annotation', () => {
      const p = packManifest({artifactType: MT.policyBundle, layers: []})
      expect(p.bytes.toString()).to.not.contain(ANNOTATION.created)
    })
    it('writes the subject after the layers', () => {
      const subject = packManifest({artifactType: MT.policyBundle, layers: []}).descriptor
      const p = packManifest({artifactType: MT.sigstoreBundleV03, layers: [layer.desc], subject})
      const s = p.bytes.toString()
      expect(s.indexOf('"subject"')).to.be.greaterThan(s.indexOf('"layers"'))
    })
    describe('when the config is empty and no artifactType is given', () => {
      it('refuses (image-spec 1.1 requires artifactType then)', () => {
        expectCodeSync(() => packManifest({layers: [layer.desc]}), 'INVALID_MANIFEST', /artifactType is required/)
      })
    })
    describe('when created is not RFC 3339', () => {
      it('refuses it', () => {
        expectCodeSync(() => packManifest({artifactType: MT.policyBundle, layers: [], created: 'yesterday'}), 'INVALID_MANIFEST', /RFC 3339/)
      })
    })
    describe('when a layer descriptor is malformed', () => {
      it('refuses with the field at fault', () => {
        expectCodeSync(
          () => packManifest({artifactType: MT.policyBundle, layers: [{...layer.desc, digest: 'sha256:xyz'}]}),
          'INVALID_MANIFEST',
          /layer descriptor 0[\s\S]*\/digest: invalid digest/,
        )
      })
    })
  })

  describe('#packIndex', () => {
    it('packs an index deterministically, keeping the entry order', () => {
      const g = buildGraph()
      const a = packIndex({manifests: [g.manifest.desc, g.sig.desc], annotations: {x: 'y'}})
      const b = packIndex({manifests: [g.manifest.desc, g.sig.desc], annotations: {x: 'y'}})
      expect(a.bytes.equals(b.bytes)).to.equal(true)
      const parsed = parseManifest(a.bytes, a.descriptor)
      expect(parsed.kind).to.equal('index')
      if (parsed.kind === 'index') expect(parsed.index.manifests.map((d) => d.digest)).to.deep.equal([g.manifest.desc.digest, g.sig.desc.digest])
    })
  })

  describe('#parseManifest', () => {
    it('verifies the bytes against the descriptor before parsing', () => {
      const p = packManifest({artifactType: MT.policyBundle, layers: [layer.desc]})
      const tampered = Buffer.from(p.bytes.toString().replace('"size":7', '"size":8'))
      expectCodeSync(() => parseManifest(tampered, {...p.descriptor, size: tampered.length}), 'DIGEST_MISMATCH')
      expectCodeSync(() => parseManifest(p.bytes, {...p.descriptor, size: p.bytes.length + 1}), 'SIZE_MISMATCH')
    })
    it('refuses content over the 4 MiB manifest limit', () => {
      expectCodeSync(() => parseManifest(Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20)), 'MANIFEST_TOO_LARGE', /4194304-byte limit/)
    })
    it('collects every problem with its JSON pointer', () => {
      const bad = doc({
        schemaVersion: 1,
        config: {mediaType: 'nope', digest: `sha512:${'a'.repeat(128)}`, size: -1},
        layers: [{mediaType: MT.policyBundle, digest: layer.desc.digest, size: 1.5, annotations: {k: 3}}],
      })
      const err = expectCodeSync(() => parseManifest(bad), 'INVALID_MANIFEST')
      for (const expected of [
        '/schemaVersion: must be 2',
        '/config/mediaType: must be a media type',
        '/config/digest: unsupported digest algorithm',
        '/config/size: must be a non-negative integer',
        '/layers/0/size: must be a non-negative integer',
        '/layers/0/annotations/k: annotation values must be strings',
      ]) {
        expect(err.message).to.contain(expected)
      }
      expect((err.details?.problems as unknown[]).length).to.equal(6)
    })
    it('refuses a document that is both a manifest and an index', () => {
      const both = doc({schemaVersion: 2, config: EMPTY_DESCRIPTOR, layers: [], manifests: []})
      expectCodeSync(() => parseManifest(both), 'INVALID_MANIFEST', /ambiguous manifest refused/)
    })
    it('refuses a mediaType that contradicts the descriptor', () => {
      const m = doc({schemaVersion: 2, mediaType: MT.ociIndex, manifests: []})
      expectCodeSync(() => parseManifest(m, {mediaType: MT.ociManifest}), 'INVALID_MANIFEST', /descriptor says/)
    })
    it('refuses embedded data that does not match its digest', () => {
      const m = doc({schemaVersion: 2, mediaType: MT.ociManifest, config: {...EMPTY_DESCRIPTOR, data: 'W10='}, layers: []})
      expectCodeSync(() => parseManifest(m), 'INVALID_MANIFEST', /\/config\/data: does not match/)
      const ok = doc({schemaVersion: 2, mediaType: MT.ociManifest, config: {...EMPTY_DESCRIPTOR, data: 'e30='}, layers: []})
      expect(parseManifest(ok).kind).to.equal('manifest')
    })
    it('refuses JSON that is not an object', () => {
      expectCodeSync(() => parseManifest(Buffer.from('[1,2]')), 'INVALID_MANIFEST', /not a JSON object/)
      expectCodeSync(() => parseManifest(Buffer.from('{"schemaVersion":')), 'INVALID_MANIFEST', /not valid JSON/)
    })
    it('accepts an index without mediaType (an OCI layout index.json as skopeo writes it)', () => {
      const g = buildGraph()
      const p = parseManifest(doc({schemaVersion: 2, manifests: [g.manifest.desc]}), {mediaType: MT.ociIndex})
      expect(p.kind).to.equal('index')
    })
  })

  describe('#successors', () => {
    it('lists config and layers of a manifest but not its subject', () => {
      const g = buildGraph()
      expect(successors(g.sig.bytes, g.sig.desc).map((d) => d.mediaType)).to.deep.equal([MT.ociEmpty, MT.sigstoreBundleV03])
      expect(successors(g.sig.bytes, g.sig.desc).some((d) => d.digest === g.manifest.desc.digest)).to.equal(false)
    })
    it('lists the manifests of an index', () => {
      const g = buildGraph()
      expect(successors(g.index.bytes, g.index.desc).map((d) => d.digest)).to.deep.equal([g.manifest.desc.digest])
    })
    it('gives nothing for a plain blob', () => {
      expect(successors(layer.bytes, layer.desc)).to.deep.equal([])
    })
  })

  describe('#referrerDescriptor', () => {
    it('falls back to the config media type when the manifest has no artifactType', () => {
      const cfg = blob('application/vnd.example.config+json', Buffer.from('{}'))
      const bytes = doc({schemaVersion: 2, mediaType: MT.ociManifest, config: cfg.desc, layers: [], annotations: {a: 'b'}})
      const d = {mediaType: MT.ociManifest, digest: sha256Digest(bytes), size: bytes.length}
      expect(referrerDescriptor(d, parseManifest(bytes, d))).to.deep.equal({...d, artifactType: 'application/vnd.example.config+json', annotations: {a: 'b'}})
    })
  })

  describe('#sniffManifestMediaType', () => {
    it('recognises manifests and indexes, and nothing else', () => {
      const g = buildGraph()
      expect(sniffManifestMediaType(g.manifest.bytes)).to.equal(MT.ociManifest)
      expect(sniffManifestMediaType(g.index.bytes)).to.equal(MT.ociIndex)
      expect(sniffManifestMediaType(g.layerA.bytes)).to.equal(undefined)
      expect(sniffManifestMediaType(Buffer.from('{"architecture":"amd64","config":{}}'))).to.equal(undefined)
    })
  })
})

/**
 * Interop with skopeo 1.9 (containers/image), an independent OCI client: what we push it copies
 * to an OCI layout byte for byte; what it pushes from a layout built by hand, we pull and verify.
 */
import {expect} from 'chai'
import {execFile} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import {staticCredentials} from '../../../../src/oci/auth/credentials.js'
import {MAX_MANIFEST_BYTES, descriptorFor, readAll, sha256Digest} from '../../../../src/oci/content.js'
import {ANNOTATION, EMPTY_DESCRIPTOR, EMPTY_JSON, MT} from '../../../../src/oci/media.js'
import type {Descriptor} from '../../../../src/oci/target.js'
import {LAYER_TYPE, artifact, blob, manifestOf, pushArtifact, randomBlob} from '../../../helpers/artifacts.js'
import {type RegistryHandle, repositoryFactory, startRegistry} from '../../../helpers/registry.js'
import {tmpdir} from '../../../helpers/tmp.js'

const MiB = 1024 * 1024

function skopeo(args: string[]): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    // Own HOME: skopeo's blob-info cache must not let one run skip uploads another already did.
    const env = {...process.env, HOME: tmpdir('aibox-skopeo-home-')}
    execFile('skopeo', ['--insecure-policy', ...args], {env, timeout: 120_000, maxBuffer: 16 * MiB}, (err, stdout, stderr) => {
      resolve({code: err ? ((err as {code?: number}).code ?? 1) : 0, stdout, stderr})
    })
  })
}

function layoutBlob(dir: string, digest: string): Buffer {
  return fs.readFileSync(path.join(dir, 'blobs', 'sha256', digest.slice(7)))
}

/** Writes an OCI image layout by hand: oci-layout, blobs/sha256/<hex>, index.json with a tagged entry. */
function writeLayout(dir: string, blobs: Array<{desc: Descriptor; data: Buffer}>, manifest: {desc: Descriptor; data: Buffer}, tag: string): void {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), {recursive: true})
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  for (const b of [...blobs, manifest]) fs.writeFileSync(path.join(dir, 'blobs', 'sha256', b.desc.digest.slice(7)), b.data)
  const index = {schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{...manifest.desc, annotations: {[ANNOTATION.refName]: tag}}]}
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index))
}

describe('RemoteRepository interop with skopeo', function () {
  this.timeout(180_000)
  const repo = repositoryFactory()

  describe('with a plain-HTTP registry', () => {
    let reg: RegistryHandle
    before(async () => {
      reg = await startRegistry()
    })
    after(async () => {
      await reg?.stop()
    })

    it('skopeo copies what we pushed to an OCI layout, byte for byte', async () => {
      const r = repo(`${reg.host}/interop/ours`)
      const big = randomBlob(3 * MiB)
      const a = artifact(['{"policy":"deny all"}'], {annotations: {[ANNOTATION.version]: '1.0.0'}})
      a.layers.push(big)
      const m = manifestOf(a.layers, {annotations: {[ANNOTATION.version]: '1.0.0'}})
      await r.push(a.config.desc, a.config.data)
      for (const l of a.layers) await r.push(l.desc, l.data)
      await r.push(m.desc, m.data)
      await r.tag(m.desc, 'v1')
      const dir = path.join(tmpdir(), 'layout')
      const res = await skopeo(['copy', `docker://${reg.host}/interop/ours:v1`, `oci:${dir}:v1`, '--src-tls-verify=false'])
      expect(res.code, res.stderr).to.equal(0)
      const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'))
      expect(index.manifests.map((d: Descriptor) => d.digest)).to.deep.equal([m.desc.digest])
      expect(layoutBlob(dir, m.desc.digest).equals(m.data)).to.equal(true)
      expect(layoutBlob(dir, EMPTY_DESCRIPTOR.digest).equals(EMPTY_JSON)).to.equal(true)
      for (const l of a.layers) expect(layoutBlob(dir, l.desc.digest).equals(l.data)).to.equal(true)
      const raw = await skopeo(['inspect', '--raw', `docker://${reg.host}/interop/ours:v1`, '--tls-verify=false'])
      expect(raw.stdout).to.equal(m.data.toString())
    })

    it('skopeo reads the referrers index we maintain under sha256-<hex>', async () => {
      const r = repo(`${reg.host}/interop/refs`)
      const subject = artifact(['subject'])
      await pushArtifact(r, subject, 'v1')
      const layer = blob('{"bundle":true}', MT.sigstoreBundleV03)
      await r.push(layer.desc, layer.data)
      const sig = manifestOf([layer], {artifactType: MT.sigstoreBundleV03, subject: subject.manifest.desc, annotations: {a: 'b'}})
      await r.push(sig.desc, sig.data)
      const tag = `sha256-${subject.manifest.desc.digest.slice(7)}`
      const raw = await skopeo(['inspect', '--raw', `docker://${reg.host}/interop/refs:${tag}`, '--tls-verify=false'])
      expect(raw.code, raw.stderr).to.equal(0)
      expect(JSON.parse(raw.stdout).manifests).to.deep.equal([{...sig.desc, artifactType: MT.sigstoreBundleV03, annotations: {a: 'b'}}])
    })

    it('we pull and verify what skopeo pushed from a hand-built layout', async () => {
      const dir = path.join(tmpdir(), 'handmade')
      const layer = randomBlob(2 * MiB + 3, LAYER_TYPE)
      const config = {desc: {...EMPTY_DESCRIPTOR}, data: EMPTY_JSON}
      const m = manifestOf([layer], {annotations: {[ANNOTATION.title]: 'handmade'}})
      writeLayout(dir, [config, layer], m, 'v1')
      const res = await skopeo(['copy', `oci:${dir}:v1`, `docker://${reg.host}/interop/theirs:v1`, '--dest-tls-verify=false'])
      expect(res.code, res.stderr).to.equal(0)
      const r = repo(`${reg.host}/interop/theirs`)
      const desc = await r.resolve('v1')
      expect(desc).to.deep.equal(m.desc)
      const manifest = await readAll(await r.fetch(desc), MAX_MANIFEST_BYTES)
      expect(sha256Digest(manifest)).to.equal(m.desc.digest)
      const parsed = JSON.parse(manifest.toString())
      for (const d of [parsed.config, ...parsed.layers] as Descriptor[]) {
        const bytes = await readAll(await r.fetch(d), 4 * MiB)
        expect(sha256Digest(bytes)).to.equal(d.digest)
      }
      expect(await r.tags()).to.deep.equal(['v1'])
    })
  })

  describe('with a TLS registry that requires Basic auth', () => {
    let reg: RegistryHandle
    before(async () => {
      reg = await startRegistry({tls: true, auth: 'basic', username: 'skopeo', password: 'skopeo-tls-pw-8'})
    })
    after(async () => {
      await reg?.stop()
    })
    const creds = () => staticCredentials({username: 'skopeo', password: 'skopeo-tls-pw-8'})

    it('exchanges artifacts both ways over verified TLS with credentials', async () => {
      const ours = repo(`${reg.host}/interop/tls-ours`, {caFile: reg.caFile, credentials: creds()})
      const a = artifact(['tls one'])
      await pushArtifact(ours, a, 'v1')
      const out = path.join(tmpdir(), 'from-tls')
      const pulled = await skopeo(['copy', '--src-cert-dir', reg.certDir!, '--src-creds', 'skopeo:skopeo-tls-pw-8', `docker://${reg.host}/interop/tls-ours:v1`, `oci:${out}:v1`])
      expect(pulled.code, pulled.stderr).to.equal(0)
      expect(layoutBlob(out, a.manifest.desc.digest).equals(a.manifest.data)).to.equal(true)

      const pushed = await skopeo(['copy', '--dest-cert-dir', reg.certDir!, '--dest-creds', 'skopeo:skopeo-tls-pw-8', `oci:${out}:v1`, `docker://${reg.host}/interop/tls-theirs:v2`])
      expect(pushed.code, pushed.stderr).to.equal(0)
      const theirs = repo(`${reg.host}/interop/tls-theirs`, {caFile: reg.caFile, credentials: creds()})
      const d = await theirs.resolve('v2')
      expect(d.digest).to.equal(a.manifest.desc.digest)
      expect((await readAll(await theirs.fetch(a.layers[0]!.desc), 1000)).equals(a.layers[0]!.data)).to.equal(true)
      expect(descriptorFor(MT.ociManifest, a.manifest.data)).to.deep.equal(d)
    })
  })
})

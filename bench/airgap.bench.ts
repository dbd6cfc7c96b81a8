/**
 * Air gap: `aibox export` (registry → sealed layout tar) and `aibox import` (tar → verified →
 * registry) of a policy whose referrers carry a large attachment (an SBOM-like layer: policies
 * themselves are kilobytes, so the bulk of "1 GiB of artifacts" is what is attached to them),
 * against `skopeo copy` between the same endpoints (docker:// → oci-archive: and back) moving the
 * large artifact alone, in the same run, alternating order, a fresh destination registry per run.
 * Our side (bench/airgap-client.mjs, compiled dist/) also copies the policy, its signature and
 * the seal, and verifies everything (every blob hashed on open and again while copied, the seal
 * and the policy signatures); skopeo verifies each blob once. Prints median wall times, ratios and
 * our peak RSS (which must not grow with the size: target ≤ 150 MiB).
 *
 * Size: BENCH_AIRGAP_MIB (default 64, about a minute on a loaded 2-CPU machine); 1 GiB with
 * BENCH_AIRGAP_MIB=1024. Runs: BENCH_RUNS (default 3).
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {pushPolicy} from '../src/distribute/index.js'
import {LayoutDirStore, RemoteRepository, copy} from '../src/oci/index.js'
import {loadPrivateKey} from '../src/sign/index.js'
import {startRegistry} from '../test/helpers/registry.js'
import {cleanupTmp, tmpdir} from '../test/helpers/tmp.js'

import {MiB, median, run, writeRandomBlob} from './common.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CLIENT = path.join(ROOT, 'bench', 'airgap-client.mjs')
const KEYS = path.join(ROOT, 'testdata', 'trust', 'keys')



/** A layout holding one large artifact referring to `subject` (random layer of `size` bytes), tagged `attachment`. */
function attachmentLayout(dir: string, size: number, subject: {mediaType: string; digest: string; size: number}): void {
  const blobs = path.join(dir, 'blobs', 'sha256')
  fs.mkdirSync(blobs, {recursive: true})
  const layer = writeRandomBlob(blobs, size)
  fs.writeFileSync(path.join(blobs, '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'), '{}')
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.aibox.bench.sbom.v1',
      config: {mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2},
      layers: [{mediaType: 'application/vnd.aibox.bench.sbom.layer.v1', digest: layer, size}],
      subject,
    }),
  )
  const mhex = createHash('sha256').update(manifest).digest('hex')
  fs.writeFileSync(path.join(blobs, mhex), manifest)
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${mhex}`, size: manifest.length, annotations: {'org.opencontainers.image.ref.name': 'attachment'}}],
    }),
  )
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'index.js'))) {
    process.stderr.write('dist/ is missing: run "make build" (make bench does) first\n')
    process.exit(1)
  }
  const sizeMiB = Number(process.env.BENCH_AIRGAP_MIB ?? 64)
  const runs = Number(process.env.BENCH_RUNS ?? 3)
  const size = sizeMiB * MiB
  const label = sizeMiB >= 1024 ? `${sizeMiB / 1024}GiB` : `${sizeMiB}MiB`
  const work = tmpdir('aibox-bench-airgap-')
  const env = {...process.env, COSIGN_PASSWORD: 'test'}
  const source = await startRegistry()
  try {
    // The source: a signed policy, and a large attachment referring to it (tagged, so skopeo can address it).
    const ref = `${source.host}/bench/policy`
    const pushed = await pushPolicy({bundle: path.join(ROOT, 'testdata', 'bundles', 'org', 'baseline.yaml'), reference: `${ref}:stable`, key: await loadPrivateKey(path.join(KEYS, 'alice.key'), {password: 'test'})})
    const t = Date.now()
    attachmentLayout(path.join(work, 'attachment'), size, {mediaType: pushed.manifest.mediaType, digest: pushed.digest, size: pushed.manifest.size})
    const repo = new RemoteRepository(ref)
    const attachment = await copy(await LayoutDirStore.open(path.join(work, 'attachment')), 'attachment', repo, 'attachment')
    await repo.close()
    process.stdout.write(`${label}: source registry filled in ${((Date.now() - t) / 1000).toFixed(1)} s\n`)

    const times = {exportOurs: [] as number[], exportSkopeo: [] as number[], importOurs: [] as number[], importSkopeo: [] as number[]}
    let rss = 0
    for (let i = 0; i <= runs; i++) {
      const counted = i > 0 // run 0 warms the page cache and the registry
      const order: Array<'ours' | 'skopeo'> = i % 2 === 0 ? ['ours', 'skopeo'] : ['skopeo', 'ours']
      const dest = await startRegistry()
      try {
        for (const side of order) {
          const tar = path.join(work, `${side}-${i}.tar`)
          // Rootless skopeo keeps a blob-info cache under $HOME (and would mount instead of upload): a fresh HOME.
          const skopeoEnv = {...env, HOME: path.join(work, `home-${side}-${i}`)}
          const ex =
            side === 'ours'
              ? await run(process.execPath, [CLIENT, 'export', `${ref}:stable`, tar, path.join(KEYS, 'carol.key')], env)
              : await run('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', `docker://${ref}:attachment`, `oci-archive:${tar}:attachment`], skopeoEnv)
          const im =
            side === 'ours'
              ? await run(process.execPath, [CLIENT, 'import', tar, `${dest.host}/bench/imported-${i}`, path.join(KEYS, 'carol.pub'), path.join(KEYS, 'alice.pub')], env)
              : await run('skopeo', ['--insecure-policy', 'copy', '--dest-tls-verify=false', `oci-archive:${tar}:attachment`, `docker://${dest.host}/bench/skopeo-${i}:attachment`], skopeoEnv)
          fs.rmSync(tar, {force: true})
          if (side === 'ours') rss = Math.max(rss, ex.maxRssMiB ?? 0, im.maxRssMiB ?? 0)
          if (!counted) continue
          times[side === 'ours' ? 'exportOurs' : 'exportSkopeo'].push(ex.seconds)
          times[side === 'ours' ? 'importOurs' : 'importSkopeo'].push(im.seconds)
        }
      } finally {
        await dest.stop()
        fs.rmSync(dest.dir, {recursive: true, force: true})
      }
    }
    for (const op of ['export', 'import'] as const) {
      const ours = median(times[`${op}Ours`])
      const skopeo = median(times[`${op}Skopeo`])
      process.stdout.write(
        `${label} ${op}: ours ${ours.toFixed(3)} s (${(sizeMiB / ours).toFixed(0)} MiB/s), skopeo copy ${skopeo.toFixed(3)} s (${(sizeMiB / skopeo).toFixed(0)} MiB/s), ratio ${(ours / skopeo).toFixed(2)} [median of ${runs}]\n`,
      )
    }
    process.stdout.write(`${label} our peak RSS (export and import): ${rss.toFixed(0)} MiB (target ≤ 150 MiB${rss <= 150 ? ', met' : ', NOT met'})\n`)
    process.stdout.write(`(attachment digest ${attachment.digest})\n`)
  } finally {
    await source.stop()
    cleanupTmp()
  }
}

await main()

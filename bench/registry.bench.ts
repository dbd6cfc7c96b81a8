/**
 * Push and pull of a blob+manifest artifact: our client (bench/registry-client.mjs, its own
 * process, compiled dist/) against `skopeo copy` (oci: layout → docker:// and back), same registry
 * (loopback docker-registry), same run, alternating order. Prints median wall times, ratios
 * (target ≤ 1.0) and our peak RSS (target ≤ 150 MiB whatever the size).
 *
 * Sizes: 100 MiB always; 1 GiB with BENCH_LARGE=1, or by default when the 100 MiB timings predict
 * it fits in about two minutes (BENCH_LARGE=0 skips it). BENCH_RUNS sets the 100 MiB runs (default 3).
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {startRegistry} from '../test/helpers/registry.js'
import {cleanupTmp, tmpdir} from '../test/helpers/tmp.js'

import {MiB, median, run, writeRandomBlob} from './common.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CLIENT = path.join(ROOT, 'bench', 'registry-client.mjs')


/** An OCI layout holding one artifact: `{}` config, one random layer of `size` bytes, a manifest tagged `v1`. */
function makeLayout(dir: string, size: number): void {
  const blobs = path.join(dir, 'blobs', 'sha256')
  fs.mkdirSync(blobs, {recursive: true})
  const put = (data: Buffer) => {
    const hex = createHash('sha256').update(data).digest('hex')
    fs.writeFileSync(path.join(blobs, hex), data)
    return {digest: `sha256:${hex}`, size: data.length}
  }
  const layerHex = writeRandomBlob(blobs, size).slice('sha256:'.length)
  const config = put(Buffer.from('{}'))
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.aibox.bench.v1',
      config: {mediaType: 'application/vnd.oci.empty.v1+json', ...config},
      layers: [{mediaType: 'application/vnd.aibox.bench.layer.v1', digest: `sha256:${layerHex}`, size}],
    }),
  )
  const m = put(manifest)
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: {'org.opencontainers.image.ref.name': 'v1'}}],
    }),
  )
}


interface SizeResult {
  label: string
  push: {ours: number; skopeo: number}
  pull: {ours: number; skopeo: number}
  rssMiB: number
}

async function measure(size: number, label: string, runs: number, warmup: boolean): Promise<SizeResult> {
  const work = tmpdir(`aibox-bench-${label}-`)
  const layout = path.join(work, 'layout')
  const t = Date.now()
  makeLayout(layout, size)
  process.stdout.write(`${label}: layout written in ${((Date.now() - t) / 1000).toFixed(1)} s\n`)
  const times = {pushOurs: [] as number[], pushSkopeo: [] as number[], pullOurs: [] as number[], pullSkopeo: [] as number[]}
  let rss = 0
  const total = runs + (warmup ? 1 : 0)
  for (let i = 0; i < total; i++) {
    const counted = !warmup || i > 0
    // Alternate who goes first, so page cache and registry state favour neither side.
    const order: Array<'ours' | 'skopeo'> = i % 2 === 0 ? ['ours', 'skopeo'] : ['skopeo', 'ours']
    // A fresh registry per run: skopeo remembers where it saw a blob (root's blob-info cache in
    // /var/lib/containers) and would mount it from an earlier run's repository instead of uploading.
    const reg = await startRegistry()
    const host = reg.host
    try {
      for (const side of order) {
        const repo = `bench/${side}-${label.toLowerCase()}-${i}`
        const out = path.join(work, `out-${side}-${i}`)
        // Rootless skopeo keeps its blob-info cache under $HOME: a fresh HOME too.
        const skopeoEnv = {...process.env, HOME: path.join(work, `home-${side}-${i}`)}
        const push =
          side === 'ours'
            ? await run(process.execPath, [CLIENT, 'push', layout, 'v1', `${host}/${repo}`])
            : await run('skopeo', ['--insecure-policy', 'copy', `oci:${layout}:v1`, `docker://${host}/${repo}:v1`, '--dest-tls-verify=false'], skopeoEnv)
        const pull =
          side === 'ours'
            ? await run(process.execPath, [CLIENT, 'pull', `${host}/${repo}`, 'v1', out])
            : await run('skopeo', ['--insecure-policy', 'copy', `docker://${host}/${repo}:v1`, `oci:${out}:v1`, '--src-tls-verify=false'], skopeoEnv)
        fs.rmSync(out, {recursive: true, force: true})
        if (side === 'ours') rss = Math.max(rss, push.maxRssMiB ?? 0, pull.maxRssMiB ?? 0)
        if (!counted) continue
        if (side === 'ours') {
          times.pushOurs.push(push.seconds)
          times.pullOurs.push(pull.seconds)
        } else {
          times.pushSkopeo.push(push.seconds)
          times.pullSkopeo.push(pull.seconds)
        }
      }
    } finally {
      await reg.stop()
      fs.rmSync(reg.dir, {recursive: true, force: true})
    }
  }
  fs.rmSync(work, {recursive: true, force: true})
  return {
    label,
    push: {ours: median(times.pushOurs), skopeo: median(times.pushSkopeo)},
    pull: {ours: median(times.pullOurs), skopeo: median(times.pullSkopeo)},
    rssMiB: rss,
  }
}

function report(r: SizeResult, runs: number): void {
  const mibs = (s: number) => (Number.parseInt(r.label, 10) * (r.label.endsWith('GiB') ? 1024 : 1)) / s
  for (const op of ['push', 'pull'] as const) {
    const {ours, skopeo} = r[op]
    const ratio = ours / skopeo
    process.stdout.write(
      `${r.label} ${op}: ours ${ours.toFixed(3)} s (${mibs(ours).toFixed(0)} MiB/s), skopeo ${skopeo.toFixed(3)} s (${mibs(skopeo).toFixed(0)} MiB/s), ` +
        `ratio ${ratio.toFixed(2)} (target ≤ 1.0${ratio <= 1 ? ', met' : ', NOT met'}) [median of ${runs}]\n`,
    )
  }
  process.stdout.write(`${r.label} our peak RSS: ${r.rssMiB.toFixed(0)} MiB (target ≤ 150 MiB${r.rssMiB <= 150 ? ', met' : ', NOT met'})\n`)
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'index.js'))) {
    process.stderr.write('dist/ is missing: run "make build" (make bench does) first\n')
    process.exit(1)
  }
  try {
    const runs = Number(process.env.BENCH_RUNS ?? 3)
    const small = await measure(100 * MiB, '100MiB', runs, true)
    report(small, runs)
    const perByte = (small.push.ours + small.push.skopeo + small.pull.ours + small.pull.skopeo) / (100 * MiB)
    const predicted = perByte * 1024 * MiB + 15 // + writing the 1 GiB layout
    const large = process.env.BENCH_LARGE
    if (large === '1' || (large !== '0' && predicted <= 120)) {
      process.stdout.write(`1GiB: predicted ~${predicted.toFixed(0)} s${large === '1' ? ' (BENCH_LARGE=1)' : ''}\n`)
      report(await measure(1024 * MiB, '1GiB', 1, false), 1)
    } else {
      process.stdout.write(`1GiB: skipped (predicted ~${predicted.toFixed(0)} s > 120 s, or BENCH_LARGE=0); run with BENCH_LARGE=1\n`)
    }
  } finally {
    cleanupTmp()
  }
}

await main()

/**
 * OCI layout directory and layout tar: write and read back (verified) a large artifact
 * (BENCH_SIZE_MIB, default 1024 MiB, in layers of up to 256 MiB), against GNU tar on the same
 * files in the same run, with each side's peak RSS. Target: RSS independent of the artifact
 * size, ≤ 150 MiB for 1 GiB (architecture.md "Performance targets").
 *
 * Each of our steps runs in its own Node process (so its peak RSS is its own) and times only
 * the operation; GNU tar is timed as a whole process under /usr/bin/time. Our writes fsync
 * every blob (no partial state after a crash); GNU tar does not.
 *
 *   node --import tsx bench/layout.bench.ts            # BENCH_SIZE_MIB=128 for a quick run
 */
import {spawnSync} from 'node:child_process'
import {createHash, randomFillSync} from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {
  descriptorFor,
  type Descriptor,
  EMPTY_DESCRIPTOR,
  EMPTY_JSON,
  LayoutDirStore,
  LayoutTarStore,
  MT,
  packManifest,
  writeLayoutTar,
} from '../src/oci/index.js'

const MiB = 1024 * 1024
const RSS_TARGET_MIB = 150
const self = fileURLToPath(import.meta.url)

interface Plan {
  work: string
  layers: Array<{file: string; desc: Descriptor}>
}

interface StepResult {
  seconds: number
  bytes: number
  maxRssMiB: number
  /** tar-write: sha256 of the tar written */
  digest?: string
}

// ------------------------------------------------------------------ child steps

async function drainAll(target: {fetch(d: Descriptor): Promise<NodeJS.ReadableStream>}, descs: Descriptor[]): Promise<number> {
  let n = 0
  for (const d of descs) {
    for await (const chunk of await target.fetch(d)) n += (chunk as Buffer).length
  }
  return n
}

async function runStep(step: string, plan: Plan): Promise<StepResult> {
  const layoutDir = path.join(plan.work, 'layout')
  const tarFile = path.join(plan.work, 'layout.tar')
  const descs = plan.layers.map((l) => l.desc)
  const total = descs.reduce((a, d) => a + d.size, 0)
  const t0 = process.hrtime.bigint()
  let bytes = total
  let digest: string | undefined
  switch (step) {
    case 'dir-write': {
      const store = await LayoutDirStore.open(layoutDir, {create: true})
      await store.push(EMPTY_DESCRIPTOR, EMPTY_JSON)
      for (const l of plan.layers) await store.push(l.desc, fs.createReadStream(l.file, {highWaterMark: MiB}))
      const m = packManifest({artifactType: MT.policyBundle, layers: descs, created: '2024-01-01T00:00:00Z'})
      await store.push(m.descriptor, m.bytes)
      await store.tag(m.descriptor, 'bench')
      break
    }
    case 'dir-read': {
      const store = await LayoutDirStore.open(layoutDir, {readOnly: true})
      await store.resolve('bench')
      bytes = await drainAll(store, descs)
      break
    }
    case 'tar-write': {
      const r = await writeLayoutTar(layoutDir, tarFile)
      bytes = r.size
      break
    }
    case 'tar-digest': {
      const h = createHash('sha256')
      for await (const c of fs.createReadStream(tarFile, {highWaterMark: MiB})) h.update(c as Buffer)
      digest = `sha256:${h.digest('hex')}`
      break
    }
    case 'tar-read': {
      // open() scans and verifies every blob; fetches verify again, as an import would.
      const store = await LayoutTarStore.open(tarFile)
      try {
        await store.resolve('bench')
        bytes = await drainAll(store, descs)
      } finally {
        await store.close()
      }
      break
    }
    default:
      throw new Error(`unknown step ${step}`)
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  return {seconds, bytes, maxRssMiB: process.resourceUsage().maxRSS / 1024, digest}
}

// ------------------------------------------------------------------ parent

function child(step: string, planFile: string): StepResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--step', step, planFile], {encoding: 'utf8', maxBuffer: 16 * MiB})
  if (r.status !== 0) throw new Error(`step ${step} failed (${r.status}): ${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as StepResult
}

/** Runs a shell command under /usr/bin/time: wall seconds and peak RSS. */
function timed(cmd: string): StepResult {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', 'sh', '-c', cmd], {encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`)
  const [secs, rssKiB] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number)
  return {seconds: secs, bytes: 0, maxRssMiB: rssKiB / 1024}
}

function makeLayers(work: string, totalMiB: number): Plan['layers'] {
  const layers: Plan['layers'] = []
  const chunk = Buffer.alloc(MiB)
  let left = totalMiB
  for (let i = 0; left > 0; i++) {
    const mib = Math.min(256, left)
    left -= mib
    const file = path.join(work, `layer-${i}.bin`)
    const fd = fs.openSync(file, 'w')
    const hash = createHash('sha256')
    for (let j = 0; j < mib; j++) {
      randomFillSync(chunk)
      hash.update(chunk)
      fs.writeSync(fd, chunk)
    }
    fs.closeSync(fd)
    const digest = `sha256:${hash.digest('hex')}`
    layers.push({file, desc: {mediaType: 'application/octet-stream', digest, size: mib * MiB}})
  }
  return layers
}

function fmt(r: StepResult, bytes: number): string {
  return `${r.seconds.toFixed(2).padStart(6)} s ${((bytes / MiB) / r.seconds).toFixed(0).padStart(5)} MiB/s  peak RSS ${r.maxRssMiB.toFixed(0).padStart(4)} MiB`
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.env.BENCH_SIZE_MIB ?? 1024)
  if (!Number.isInteger(sizeMiB) || sizeMiB < 1) throw new Error(`BENCH_SIZE_MIB must be a positive integer, got ${process.env.BENCH_SIZE_MIB}`)
  const work = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'aibox-bench-layout-'))
  try {
    const plan: Plan = {work, layers: makeLayers(work, sizeMiB)}
    const planFile = path.join(work, 'plan.json')
    fs.writeFileSync(planFile, JSON.stringify(plan))
    const total = sizeMiB * MiB
    console.log(`layout bench: ${sizeMiB} MiB artifact in ${plan.layers.length} layer(s), work dir ${work}`)

    const dirWrite = child('dir-write', planFile)
    const dirRead = child('dir-read', planFile)
    const tarWrite = child('tar-write', planFile)
    const tarRead = child('tar-read', planFile)

    const layout = path.join(work, 'layout')
    const gnuTar = path.join(work, 'gnu.tar')
    const extract = path.join(work, 'gnu-extract')
    fs.mkdirSync(extract)
    const tarC = timed(`tar -cf ${gnuTar} -C ${layout} oci-layout index.json blobs`)
    const tarX = timed(`tar -xf ${gnuTar} -C ${extract}`)
    const sha = timed(`sha256sum ${layout}/blobs/sha256/* > /dev/null`)

    // We verify every digest; GNU tar does not. "+ sha256sum" is what a careful shell script would do.
    const plus = (a: StepResult, b: StepResult): StepResult => ({seconds: a.seconds + b.seconds, bytes: 0, maxRssMiB: Math.max(a.maxRssMiB, b.maxRssMiB)})
    const rows: Array<[string, StepResult, number, Array<[string, StepResult]>]> = [
      ['layout-dir write (verify+fsync)', dirWrite, total, [['GNU tar -xf (writes the same files)', tarX]]],
      ['layout-dir read (verified)', dirRead, total, [['sha256sum of the blobs', sha]]],
      ['layout-tar write (verified)', tarWrite, tarWrite.bytes, [['GNU tar -cf of the layout', tarC], ['sha256sum + GNU tar -cf', plus(sha, tarC)]]],
      ['layout-tar read (scan+verify, fetch+verify)', tarRead, total, [['GNU tar -xf of the layout', tarX], ['GNU tar -xf + sha256sum', plus(tarX, sha)]]],
    ]
    console.log('')
    for (const [name, r, bytes, bases] of rows) {
      console.log(`${name.padEnd(46)} ${fmt(r, bytes)}`)
      for (const [baseName, base] of bases) {
        console.log(`${('  vs ' + baseName).padEnd(46)} ${fmt(base, bytes)}   ratio ${(r.seconds / base.seconds).toFixed(2)}`)
      }
    }
    const worst = Math.max(...rows.map((r) => r[1].maxRssMiB))
    console.log('')
    console.log(`peak RSS of our steps: ${worst.toFixed(0)} MiB for ${sizeMiB} MiB (target ≤ ${RSS_TARGET_MIB} MiB, independent of size): ${worst <= RSS_TARGET_MIB ? 'OK' : 'EXCEEDED'}`)
    const first = child('tar-digest', planFile).digest
    child('tar-write', planFile)
    const second = child('tar-digest', planFile).digest
    console.log(`deterministic tar: ${first === second ? 'byte-identical on rewrite' : 'DIFFERENT on rewrite'} (${first})`)
  } finally {
    fs.rmSync(work, {recursive: true, force: true})
  }
}

const stepAt = process.argv.indexOf('--step')
if (stepAt >= 0) {
  const plan = JSON.parse(fs.readFileSync(process.argv[stepAt + 2], 'utf8')) as Plan
  const r = await runStep(process.argv[stepAt + 1], plan)
  console.log(JSON.stringify(r))
} else {
  await main()
}

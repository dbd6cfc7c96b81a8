// Our side of bench/registry.bench.ts, run as its own process (so its wall time includes start-up,
// like skopeo's, and its peak RSS is its own). Uses the compiled library (dist/), as the CLI does.
//   node bench/registry-client.mjs push LAYOUT_DIR TAG HOST/REPO   (layout → registry)
//   node bench/registry-client.mjs pull HOST/REPO TAG OUT_DIR       (registry → layout)
// Prints {"maxRssKiB": N} on stdout.
import fs from 'node:fs'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'

import {MAX_MANIFEST_BYTES, RemoteRepository, readAll, verifying} from '../dist/src/index.js'

const [, , op, a, tag, b] = process.argv
const blobPath = (dir, digest) => path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length))

if (op === 'push') {
  const layout = a
  const repo = new RemoteRepository(b)
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'))
  const desc = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag)
  const manifestBytes = fs.readFileSync(blobPath(layout, desc.digest))
  const manifest = JSON.parse(manifestBytes.toString('utf8'))
  // Children first, each read from the layout through a verifying stream (what a layout store's fetch returns).
  for (const d of [manifest.config, ...manifest.layers]) {
    const open = async () => verifying(fs.createReadStream(blobPath(layout, d.digest), {highWaterMark: 1 << 20}), d)
    await repo.push(d, await open(), {reopen: open})
  }
  await repo.pushReference(desc, manifestBytes, tag)
  await repo.close()
} else if (op === 'pull') {
  const out = b
  const repo = new RemoteRepository(a)
  const desc = await repo.resolve(tag)
  const manifestBytes = await readAll(await repo.fetch(desc), MAX_MANIFEST_BYTES)
  const manifest = JSON.parse(manifestBytes.toString('utf8'))
  fs.mkdirSync(path.join(out, 'blobs', 'sha256'), {recursive: true})
  for (const d of [manifest.config, ...manifest.layers]) {
    const dest = blobPath(out, d.digest)
    const tmp = `${dest}.tmp-${process.pid}`
    // A deep write queue lets the disk write while the next chunks are received and hashed.
    await pipeline(await repo.fetch(d), fs.createWriteStream(tmp, {highWaterMark: 8 << 20}))
    fs.renameSync(tmp, dest)
  }
  fs.writeFileSync(blobPath(out, desc.digest), manifestBytes)
  fs.writeFileSync(path.join(out, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  fs.writeFileSync(
    path.join(out, 'index.json'),
    JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{...desc, annotations: {'org.opencontainers.image.ref.name': tag}}]}),
  )
  await repo.close()
} else {
  process.stderr.write('usage: registry-client.mjs push LAYOUT TAG REF | pull REF TAG OUT\n')
  process.exit(1)
}
process.stdout.write(JSON.stringify({maxRssKiB: process.resourceUsage().maxRSS}) + '\n')

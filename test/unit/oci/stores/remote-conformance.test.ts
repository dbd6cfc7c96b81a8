/**
 * The shared Target conformance suite against RemoteRepository on a real registry (Debian's
 * docker-registry, distribution 2.8): a fresh repository per test, seeded through the same
 * RemoteRepository (so resolve knows the artifactType of what it pushed, as it does in real use),
 * and corruption done on the registry's own blob files, restored in cleanup (blobs are shared
 * between repositories in distribution's storage).
 */
import fs from 'node:fs'
import path from 'node:path'

import {RemoteRepository} from '../../../../src/oci/index.js'
import {pushAll} from '../../../helpers/oci-fixtures.js'
import {type RegistryHandle, startRegistry} from '../../../helpers/registry.js'
import {corrupted, describeTarget} from '../../../helpers/target-conformance.js'

let reg: RegistryHandle | undefined
let n = 0

function blobFile(dir: string, digest: string): string {
  const hex = digest.slice('sha256:'.length)
  return path.join(dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data')
}

describeTarget('RemoteRepository (distribution 2.8)', {
  writable: true,
  async before() {
    reg = await startRegistry()
  },
  async after() {
    await reg?.stop()
  },
  async make(seed) {
    const repo = new RemoteRepository(`${reg!.host}/conformance/repo${++n}`, {retry: {baseDelayMs: 5, maxDelayMs: 20}, onWarning: () => {}})
    await pushAll(repo, seed.blobs, seed.tags)
    const restore: Array<{file: string; bytes: Buffer}> = []
    for (const d of seed.corrupt ?? []) {
      const file = blobFile(reg!.dir, d)
      const bytes = fs.readFileSync(file)
      restore.push({file, bytes})
      fs.writeFileSync(file, corrupted(bytes))
    }
    return {
      target: repo,
      async cleanup() {
        for (const r of restore) fs.writeFileSync(r.file, r.bytes)
        await repo.close()
      },
    }
  },
})

/** skopeo, the interop oracle of the e2e tests (installed by `make sysdeps`), run synchronously. */
import {spawnSync} from 'node:child_process'

export function skopeo(...args: string[]): {code: number; stdout: Buffer; stderr: string} {
  const r = spawnSync('skopeo', args, {maxBuffer: 64 * 1024 * 1024})
  if (r.error) throw new Error(`skopeo is not installed (run make sysdeps): ${r.error.message}`)
  return {code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr.toString()}
}

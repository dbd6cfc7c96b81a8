/** Real temporary directories, removed after the test file finishes. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const made: string[] = []

export function tmpdir(prefix = 'aibox-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  made.push(dir)
  return dir
}

export function cleanupTmp(): void {
  while (made.length > 0) fs.rmSync(made.pop()!, {recursive: true, force: true})
}

/** Lists every file under `dir`, relative paths, sorted (to assert "nothing written"). */
export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return []
  const out: string[] = []
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, {withFileTypes: true})) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else out.push(path.relative(dir, p))
    }
  }
  walk(dir)
  return out.sort()
}

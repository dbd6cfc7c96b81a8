// Child for the lock tests: increments the number in `counter` `n` times, each time under the
// lock, with a read-yield-write window that loses updates without mutual exclusion.
import fs from 'node:fs'

import {withLock} from '../../../../src/util/lock.js'

const [counter, n, mode] = process.argv.slice(2) as [string, string, string | undefined]
for (let i = 0; i < Number(n); i++) {
  const bump = async () => {
    const v = Number(fs.readFileSync(counter, 'utf8'))
    await new Promise((r) => setTimeout(r, 1))
    fs.writeFileSync(counter, String(v + 1))
  }
  if (mode === 'nolock') await bump()
  else await withLock(counter, bump, {timeoutMs: 120_000, purpose: 'counter test'})
}

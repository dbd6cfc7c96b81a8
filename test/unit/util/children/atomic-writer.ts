// Child for the crash test: rewrites `target` forever, alternating two large contents, until killed.
import {writeFileAtomic} from '../../../../src/util/atomic.js'

const [target, a, b] = process.argv.slice(2) as [string, string, string]
const contents = [Buffer.alloc(Number(a), 'a'), Buffer.alloc(Number(b), 'b')]
let i = 0
process.stdout.write('ready\n')
for (;;) {
  await writeFileAtomic(target, contents[i++ % 2]!)
}

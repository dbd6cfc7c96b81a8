// Child for the stale-lock test: takes the lock, says so, then hangs until it is killed.
import {acquireLock} from '../../../../src/util/lock.js'

const [target] = process.argv.slice(2) as [string]
await acquireLock(target, {purpose: 'holder test'})
process.stdout.write('locked\n')
setInterval(() => {}, 1000)

// Preload (node --import) for bounded-resource runs of the real binary (test/helpers/limited.ts).
// At exit it writes, as JSON, to the file named by AIBOX_TEST_REPORT_FILE:
// - maxRSS: the peak resident set size in KiB (getrusage), so a test can assert memory stayed bounded;
// - cpuMs: user + system CPU time, a bound on work that does not depend on how loaded the machine is;
// - polluted: properties added to Object/Array/Function.prototype since start (prototype pollution
//   by `__proto__` / `constructor` / `prototype` keys in hostile input).
import fs from 'node:fs'

const out = process.env.AIBOX_TEST_REPORT_FILE
if (out) {
  const watched = {Object: Object.prototype, Array: Array.prototype, Function: Function.prototype}
  const before = Object.fromEntries(Object.entries(watched).map(([n, p]) => [n, new Set(Reflect.ownKeys(p))]))
  process.on('exit', () => {
    const polluted = []
    for (const [n, p] of Object.entries(watched)) {
      for (const k of Reflect.ownKeys(p)) if (!before[n].has(k)) polluted.push(`${n}.prototype.${String(k)}`)
    }
    // A polluted prototype may also show through a plain object.
    for (const k of ['isAdmin', 'polluted', 'allow', 'verdict']) if (k in {} && !polluted.includes(`Object.prototype.${k}`)) polluted.push(`({}).${k}`)
    try {
      const ru = process.resourceUsage()
      fs.writeFileSync(out, JSON.stringify({maxRSS: ru.maxRSS, cpuMs: Math.round((ru.userCPUTime + ru.systemCPUTime) / 1000), polluted}))
    } catch {
      // the test then fails on the missing report
    }
  })
}

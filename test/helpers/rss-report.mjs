// Preload (node --import) for bounded-resource runs of the real binary (test/helpers/limited.ts):
// at exit, writes the process's peak resident set size (KiB, getrusage maxrss) to the file named
// by AIBOX_TEST_RSS_FILE, so a test can assert memory stayed bounded.
import fs from 'node:fs'

const out = process.env.AIBOX_TEST_RSS_FILE
if (out) {
  process.on('exit', () => {
    try {
      fs.writeFileSync(out, String(process.resourceUsage().maxRSS))
    } catch {
      // the test then fails on the missing measurement
    }
  })
}

#!/usr/bin/env node
// The `aibox` entry point. Everything goes through oclif, except that the hot path
// (`aibox start`, run on every sandbox start) may be dispatched to a module that does not
// load oclif at all (toolchain.md §A: ~53 ms instead of ~120 ms). `start --help` still goes
// through oclif so that help comes from the real command class.
const argv = process.argv.slice(2)
// oclif hard-wraps error messages at 80 columns when stderr is not a terminal; a located
// problem or a loosening must stay on one line for CI logs and grep.
if (!process.stderr.isTTY && process.env.OCLIF_COLUMNS === undefined) process.env.OCLIF_COLUMNS = '10000'
// Only flags before `--` count: `aibox start -- ls -h` runs `ls -h` (on the fast path).
const ownArgs = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv
const wantsHelp = ownArgs.includes('--help') || ownArgs.includes('-h')
let fast
if (argv[0] === 'start' && !wantsHelp && process.env.AIBOX_NO_FAST_START === undefined) {
  try {
    fast = await import('../dist/src/start/fast.js')
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error
  }
}
if (fast) {
  process.exitCode = await fast.main(argv.slice(1))
} else {
  const {execute} = await import('@oclif/core')
  await execute({dir: import.meta.url})
}

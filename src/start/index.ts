/**
 * src/start: `aibox start`, the sandbox-start gate (architecture.md `start/`, issue 5). The library
 * entry point is `startPolicy(options)`; `runStart` / `execCommand` are the CLI around it.
 */
export * from './cli.js'
export * from './probe.js'
export * from './run.js'
export * from './types.js'
export * from './profile-gate.js'
export * from './manifest.js'

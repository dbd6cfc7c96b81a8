/**
 * src/distribute: publishing and fetching signed policy bundles over OCI (issue 4).
 *
 * - pack: a bundle → the policy artifact of formats.md (deterministic)
 * - referrers: cosign-compatible signature and approval referrers (and legacy `.sig`), read and verified on any target
 * - verify: `verifyPolicyArtifact`, the one verification pull/start/import/governance share
 * - push / pull / copy / discover / inspect / tags: the registry-side commands as library calls
 * - targets: open `registry/repo[:tag]`, `oci:DIR[:tag]`, `oci-archive:FILE[:tag]`
 */
export * from './copy.js'
export * from './discover.js'
export * from './inspect.js'
export * from './pack.js'
export * from './pull.js'
export * from './push.js'
export * from './referrers.js'
export * from './targets.js'
export * from './verify.js'

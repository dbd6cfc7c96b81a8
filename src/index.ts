/**
 * aibox-policy: the public library API. Everything the `aibox` CLI does is available here;
 * commands in `commands/` only parse flags, call these functions and print.
 */
export * from './errors.js'
export * from './oci/index.js'
export * from './util/index.js'
export * from './config/index.js'
export * from './audit/index.js'
export * from './sign/index.js'
export * from './trust/index.js'
export * from './bundle/index.js'
export * from './distribute/index.js'
export * from './cache/index.js'
export * from './start/index.js'
export * from './govern/index.js'
export * from './doctor/index.js'
export * from './report/index.js'
export * from './profile/index.js'
export * from './tenant/index.js'

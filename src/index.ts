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

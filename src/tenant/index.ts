/** Tenants (seed 002; README "Tenants"): scoping by tenant, and the logged cross-tenant admin read. */
export * from './tenant.js'
export * from './admin.js'

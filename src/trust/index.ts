/**
 * src/trust: the trust policy (schemas/trust-policy.schema.json) and verification against it.
 *
 * - policy: strict loading (YAML → schema → semantic checks, every problem located)
 * - evaluate: scope matching, key validity/revocation, distinct-key thresholds per role
 * - verify: verify signature files or bundles with the policy's keys, then decide
 * - identities: keyless identities (OIDC issuer + certificate subject) and their trust material
 */
export * from './evaluate.js'
export * from './identities.js'
export * from './match.js'
export * from './policy.js'
export * from './verify.js'
export * from './files.js'

/**
 * src/doctor: `aibox doctor`, which checks before anyone pushes or starts what will work and why
 * not — registry, TLS, clock, credentials, permissions, referrers, trust policy, cache, audit log.
 */
export * from './types.js'
export {DOCTOR_CHECKS, type DoctorCheckId, runDoctor, validateSkips} from './run.js'
export {type CertificateInfo, type InspectOptions, type TlsInspection, inspectTls} from './tls.js'
export {checkAudit, checkCache, checkLayoutReference, checkTrust, type CacheCheckOptions, type TrustCheckOptions} from './local.js'

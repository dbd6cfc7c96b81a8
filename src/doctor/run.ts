/**
 * `aibox doctor`: runs every check in a fixed order and collects a report. A check never throws:
 * an unexpected error becomes its `fail`. Registry checks that cannot run because one they depend
 * on failed are `skip`ped with that reason, so the first failure is the one to fix.
 *
 * Exit code: 0 when no check failed (warnings allowed: they describe things that work); otherwise
 * the exit code of the first failed check (src/errors.ts: 4 for an unreachable registry or a TLS
 * problem, 1 for credentials or clock, 2 for a broken audit log, cache or unusable trust policy).
 */
import {defaultAuditLogPath, defaultCacheDir} from '../config/paths.js'
import {EXIT, type ExitCode, InputError} from '../errors.js'
import {type Reference, parseReference} from '../oci/reference.js'
import {TENANT_RE, tenantCacheDir} from '../tenant/tenant.js'
import {checkAudit, checkCache, checkLayoutReference, checkTrust} from './local.js'
import {RegistryChecks} from './registry.js'
import {type CheckOutcome, type DoctorCheck, type DoctorOptions, type DoctorReport, failFrom, skip} from './types.js'

/** Every check id, in the order they run (README "Checking a setup: aibox doctor"). */
export const DOCTOR_CHECKS = [
  {id: 'registry.reachable', title: 'registry reachable'},
  {id: 'registry.tls', title: 'TLS certificate'},
  {id: 'registry.clock', title: 'clock skew'},
  {id: 'registry.auth', title: 'authentication'},
  {id: 'repository.pull', title: 'pull permission'},
  {id: 'repository.push', title: 'push permission'},
  {id: 'repository.referrers', title: 'referrers API or tag fallback'},
  {id: 'layout.reference', title: 'local layout'},
  {id: 'trust.policy', title: 'trust policy and keys'},
  {id: 'cache', title: 'verified-policy cache'},
  {id: 'audit.log', title: 'audit log'},
] as const

export type DoctorCheckId = (typeof DOCTOR_CHECKS)[number]['id']

const ID_PREFIXES = new Set(DOCTOR_CHECKS.flatMap((c) => [c.id, c.id.split('.')[0]!]))

/** Validates `--skip` values: an id or its first part (`repository`), else a usage error naming the ids. */
export function validateSkips(skips: string[]): void {
  const bad = skips.filter((s) => !ID_PREFIXES.has(s))
  if (bad.length > 0) {
    throw new InputError('UNKNOWN_CHECK', `unknown check ${bad.map((b) => `"${b}"`).join(', ')} in --skip`, {
      suggestions: [`checks: ${DOCTOR_CHECKS.map((c) => c.id).join(', ')} (or a first part such as "repository")`],
    })
  }
}

/** `--skip registry` means "do not talk to the registry": it covers the repository checks too. */
function skipped(id: string, skips: string[]): boolean {
  const group = id.split('.')[0]
  return skips.some((s) => s === id || s === group || (s === 'registry' && group === 'repository'))
}

export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const env = options.env ?? process.env
  const now = options.now ?? (() => new Date())
  const skips = options.skip ?? []
  validateSkips(skips)
  const checks: DoctorCheck[] = []
  const started = now()

  const run = async (id: DoctorCheckId, fn: () => Promise<CheckOutcome> | CheckOutcome): Promise<void> => {
    const title = DOCTOR_CHECKS.find((c) => c.id === id)!.title
    const t0 = performance.now()
    let out: CheckOutcome
    if (skipped(id, skips)) out = skip('skipped with --skip')
    else {
      try {
        out = await fn()
      } catch (err) {
        out = failFrom(err)
      }
    }
    const check: DoctorCheck = {id, title, ...out, durationMs: Math.round(performance.now() - t0)}
    checks.push(check)
    options.onCheck?.(check)
  }

  const reference = options.reference
  let parsed: Reference | undefined
  let refError: unknown
  if (reference !== undefined) {
    try {
      parsed = parseReference(reference)
    } catch (err) {
      refError = err
    }
  }
  const registryIds: DoctorCheckId[] = ['registry.reachable', 'registry.tls', 'registry.clock', 'registry.auth', 'repository.pull', 'repository.push', 'repository.referrers']
  if (parsed?.kind === 'registry') {
    const r = new RegistryChecks(parsed, options.registry ?? {}, {env, now, clockWarnMs: options.clockWarnMs, clockFailMs: options.clockFailMs, expiryWarnMs: options.expiryWarnMs})
    try {
      await run('registry.reachable', () => r.reachable())
      await run('registry.tls', () => r.tls())
      await run('registry.clock', () => r.clock())
      await run('registry.auth', () => r.auth())
      await run('repository.pull', () => r.pull())
      await run('repository.push', () => r.push())
      await run('repository.referrers', () => r.referrers())
    } finally {
      await r.close()
    }
    await run('layout.reference', () => skip(`${reference} is a registry reference`))
  } else {
    const why = refError
      ? 'the reference does not parse (see layout.reference)'
      : parsed
        ? `${reference} is a local layout: no registry involved`
        : 'no reference given: pass REF (host/repository[:tag]) to check a registry'
    for (const id of registryIds) await run(id, () => skip(why))
    await run('layout.reference', () => {
      if (refError) return failFrom(refError)
      if (!parsed) return skip('no reference given')
      return checkLayoutReference(reference!)
    })
  }
  await run('trust.policy', () => checkTrust({trustFile: options.trustFile, keyFiles: options.keyFiles, reference, now: now(), expiryWarnMs: options.expiryWarnMs}))
  // With AIBOX_TENANT, aibox start uses the tenant's own cache (README "Tenants"): check that one.
  const tenant = env.AIBOX_TENANT && TENANT_RE.test(env.AIBOX_TENANT) ? env.AIBOX_TENANT : undefined
  await run('cache', () => checkCache({dir: options.cacheDir ?? tenantCacheDir(defaultCacheDir(env), tenant), now: now(), maxAgeMs: options.cacheMaxAgeMs}))
  await run('audit.log', () => checkAudit(options.auditLog ?? defaultAuditLogPath(env)))

  const counts = {pass: 0, warn: 0, fail: 0, skip: 0}
  for (const c of checks) counts[c.status]++
  const firstFail = checks.find((c) => c.status === 'fail')
  const exit: ExitCode = firstFail ? (firstFail.exit ?? EXIT.USAGE) : EXIT.OK
  return {ok: !firstFail, reference: reference ?? null, checkedAt: started.toISOString(), counts, checks, exit}
}

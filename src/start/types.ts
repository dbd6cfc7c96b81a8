/** The options and the result of `aibox start` (the result is `--json`'s shape: schemas/output/start.json). */
import type {LoadSource} from '../audit/events.js'
import type {StackTier} from '../cache/state.js'

export interface StartOptions {
  /** `--config FILE` (else AIBOX_CONFIG, ./aibox.yaml, the user default). */
  config?: string
  /** `--key PUB` (repeatable): trust these keys for every tier instead of the configured trust. */
  keys?: string[]
  /** `--trust FILE`: this trust policy instead of the configured one. */
  trust?: string
  /** `--cache DIR` (over AIBOX_CACHE and the configuration). */
  cache?: string
  /** `--offline`: do not contact registries or layouts; use the verified cache (within maxStaleness). */
  offline?: boolean
  /** `--max-staleness DURATION` (over the configuration). */
  maxStaleness?: string
  /** `--output FILE`: also write the effective policy (canonical JSON) here. */
  output?: string
  /** `--override-verification`: on a verification failure, load the last loaded verified policy instead (logged, taints runs). */
  overrideVerification?: boolean
  /** `--override-lock`: load a policy weaker than the last one although AIBOX_POLICY_LOCK=1 (logged, taints runs). */
  overrideLock?: boolean
  /** `--reason TEXT`: why (required with an override). */
  reason?: string
  /** `--tenant NAME` (over AIBOX_TENANT and the configuration's `tenant:`); README "Tenants". */
  tenant?: string
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Clock, for tests. */
  now?: () => Date
  /** Called with each warning as it happens (stderr for humans); they are also in the result. */
  onWarning?: (message: string) => void
}

export type TierLoadSource = LoadSource | 'file'

export interface StartTierResult extends StackTier {
  source: TierLoadSource
  /** When its signatures were verified, and when its source last vouched for it. */
  verifiedAt?: string
  checkedAt?: string
  stalenessSeconds: number
  /** Set when this load accepted an older version with a signed incident approval. */
  rollback?: {from: string; incident: string; approvals: string[]}
  /** The tier's signed metadata.tenant (README "Tenants"). */
  tenant?: string
}

export interface StartTaint {
  taint: 'policy_override'
  override: 'verification' | 'lock' | 'profile'
  reason: string
  actor: string
  since: string
}

export interface StartResult {
  /** The tenant the sandbox runs as (README "Tenants"); absent when none is configured. */
  tenant?: string
  /** The configuration file used. */
  config: string
  cache: string
  /** `registry` when a tier was fetched now, else `import` when an imported tier was used, else `cache`. */
  source: LoadSource
  /** Largest staleness of a tier, in seconds (0 when the sources vouched for every tier now). */
  stalenessSeconds: number
  effective: {digest: string; file: string; output?: string}
  /** `name@version` of every tier, org first (AIBOX_POLICY_VERSION). */
  version: string
  /** The org policy profile loaded (README "Profiles"; AIBOX_POLICY_PROFILE), when the org defines profiles. */
  profile?: string
  tiers: StartTierResult[]
  /** The effective policy loaded before this one, when this load changed it. */
  previous?: string
  tainted: boolean
  taint?: StartTaint
  /** Freshness requests made (registry HEADs, layout index reads). */
  requests: number
  /** The run record written (--manifest, AIBOX_RUN_MANIFEST). */
  manifest?: string
  warnings: string[]
}

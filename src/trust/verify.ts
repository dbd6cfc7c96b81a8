/**
 * Verifying signatures against a trust policy: each signature is verified offline with every
 * key of the policy, or as a keyless signature with its Sigstore trust material (src/sign), the
 * signers become evidence, and the policy decides
 * (evaluate.ts). A signature that verifies with no policy key, or is malformed, is reported as
 * rejected and counts for nothing; the decision fails only if thresholds are not met.
 */
import {AiboxError, VerificationError} from '../errors.js'
import {verifyBundle} from '../sign/bundle.js'
import type {SerializedBundle} from '../sign/bundle.js'
import type {SignatureVerifyOptions, VerifiedSignature} from '../sign/types.js'
import {verifySignature} from '../sign/verify.js'
import {type TrustDecision, type TrustEvidence, type TrustTarget, assertTrusted, evaluateTrust, statementKind} from './evaluate.js'
import type {TrustPolicy} from './policy.js'

export interface TrustedVerification {
  decision: TrustDecision
  signatures: VerifiedSignature[]
  rejected: Array<{source: string; code: string; message: string}>
}

export interface TrustVerifyOptions extends Omit<SignatureVerifyOptions, 'keys' | 'source'> {
  target: TrustTarget
  now?: Date
}

/** Turns verified signatures into policy evidence (one per signer). */
export function evidenceOf(signatures: VerifiedSignature[]): TrustEvidence[] {
  return signatures.flatMap((s) => {
    const kind = statementKind(s.predicateType)
    const role = kind === 'approvals' ? (s.statement?.predicate as {role?: unknown} | undefined)?.role : undefined
    return s.signers.map((signer) => ({kind, signer, source: s.source, ...(typeof role === 'string' ? {role} : {})}))
  })
}

/**
 * Verifies detached signature files (any kind `verifySignature` reads) against the policy and
 * throws VerificationError (exit 2) unless every applicable scope is satisfied.
 */
export function verifyWithTrust(signatures: Array<{bytes: Uint8Array; source: string}>, policy: TrustPolicy, options: TrustVerifyOptions): TrustedVerification {
  return decide(policy, options, signatures.map((s) => ({source: s.source, run: () => verifySignature(s.bytes, {...options, keys: policy.keys, keyless: policy.keyless, source: s.source})})))
}

/** The same for Sigstore bundles (e.g. signature referrers fetched from a registry). */
export function verifyBundlesWithTrust(bundles: Array<{json: SerializedBundle | Record<string, unknown> | string; source: string}>, policy: TrustPolicy, options: TrustVerifyOptions): TrustedVerification {
  return decide(policy, options, bundles.map((b) => ({source: b.source, run: () => verifyBundle(b.json, {...options, keys: policy.keys, keyless: policy.keyless, source: b.source})})))
}

function decide(policy: TrustPolicy, options: TrustVerifyOptions, runs: Array<{source: string; run: () => VerifiedSignature}>): TrustedVerification {
  const verified: VerifiedSignature[] = []
  const rejected: TrustedVerification['rejected'] = []
  for (const r of runs) {
    try {
      verified.push(r.run())
    } catch (err) {
      // Only verification failures are "this signature does not count"; anything else is a real error.
      if (!(err instanceof VerificationError)) throw err
      rejected.push({source: r.source, code: (err as AiboxError).code, message: err.message})
    }
  }
  const decision = evaluateTrust(policy, options.target, evidenceOf(verified), {now: options.now})
  assertTrusted(decision, policy.file, rejected)
  return {decision, signatures: verified, rejected}
}

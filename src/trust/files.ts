/** `aibox verify FILE --signature S… --trust TRUST.yaml [--ref REF] [--tier T]`. */
import {readVerifyInputs} from '../sign/files.js'
import type {VerifiedSignature} from '../sign/types.js'
import {type TrustDecision, type TrustTarget, targetFromReference} from './evaluate.js'
import {type Tier, loadTrustPolicy} from './policy.js'
import {verifyWithTrust} from './verify.js'

export interface VerifyFileTrustResult {
  verified: true
  file: string
  digest: string
  signatures: VerifiedSignature[]
  trust: {policy: string} & TrustDecision
  rejected: Array<{source: string; code: string; message: string}>
}

export async function verifyFileWithTrust(options: {file: string; signatures: string[]; trustFile: string; ref?: string; tier?: Tier; now?: Date}): Promise<VerifyFileTrustResult> {
  const policy = loadTrustPolicy(options.trustFile)
  const inputs = await readVerifyInputs(options.file, options.signatures)
  const target: TrustTarget = options.ref ? targetFromReference(options.ref, options.tier) : {display: options.file, ...(options.tier ? {tier: options.tier} : {})}
  const r = verifyWithTrust(inputs.signatures, policy, {artifact: inputs.bytes, artifactName: options.file, subjectDigests: inputs.digests, target, now: options.now})
  return {verified: true, file: options.file, digest: inputs.digests[0], signatures: r.signatures, trust: {policy: options.trustFile, ...r.decision}, rejected: r.rejected}
}

/**
 * `aibox push` under governance (README "Governance"): the submit gate for protected tiers
 * (gate.ts), draft pushes, and emergency changes, around the plain publication of
 * src/distribute (pack → copy → sign → tag).
 *
 * An emergency change carries its incident in the signed manifest and is pushed with one key (or
 * one keyless identity); it is refused here (exit 5) unless the trust policy has an emergency path
 * for the destination's scopes that this signer alone satisfies, so that what is published is also
 * what verification accepts.
 */
import path from 'node:path'

import {loadBundle} from '../bundle/load.js'
import type {LoadedBundle} from '../bundle/model.js'
import {publishableFields} from '../distribute/pack.js'
import {type PushPolicyOptions, type PushPolicyResult, pushPolicy} from '../distribute/push.js'
import {GovernanceError, InputError} from '../errors.js'
import {type SignerInfo, signerInfo} from '../sign/types.js'
import {evaluateTrust, principalLabel, resolveSigner, targetFromReference} from '../trust/evaluate.js'
import type {Tier, TrustPolicy} from '../trust/policy.js'
import {type GateResult, type Protection, assertGate, conventionalTestsFile, protectionFor, resolveAgainst, runGate} from './gate.js'

export interface GovernedPushOptions extends Omit<PushPolicyOptions, 'bundle' | 'gate'> {
  /** The bundle file (its conventional `<stem>.tests.yaml` is found next to it). */
  bundle: string
  /** The tiers above (files or references), most general first, for the tighten-only check. */
  against?: string[]
  /** More tests files (besides the conventional one). */
  tests?: string[]
  /** Decides protection (scopes' `protected`), verifies `--against` references, and allows emergency changes. */
  trust?: TrustPolicy
}

export interface GovernedPushResult extends PushPolicyResult {
  gate: GateResult
  notes: string[]
}

/**
 * The signer a push will be, as the trust policy sees it, known before anything is signed: the key,
 * or for keyless signing the identity of the OIDC token (Fulcio certifies exactly its issuer and
 * subject, and verification checks the certificate, so a wrong guess here refuses nothing wrongly).
 */
export function prospectiveSigner(trust: TrustPolicy | undefined, options: Pick<PushPolicyOptions, 'key' | 'keyless'>): {signer: SignerInfo; label: string; known: boolean} {
  if ((options.key === undefined) === (options.keyless === undefined)) {
    throw new InputError('KEY_OR_KEYLESS', 'signing needs exactly one of a key (--key) or keyless signing (--keyless)')
  }
  let signer: SignerInfo
  if (options.keyless) {
    const {issuer, subject} = options.keyless.token
    // No key yet: Fulcio certifies a fresh one; the identity is what the trust policy counts.
    signer = {keyId: `keyless:${subject}`, algorithm: 'ecdsa-p256', hint: '', fingerprint: '', identity: {issuer, subject}}
  } else {
    signer = signerInfo(options.key!.public)
  }
  const principal = trust ? resolveSigner(trust, signer).principal : undefined
  if (principal && !options.keyless) signer = {...signer, name: principal.name}
  const label = principal ? (options.keyless ? principalLabel(principal) : `key '${principal.name}'`) : options.keyless ? `keyless identity ${signer.identity!.subject} (issuer ${signer.identity!.issuer})` : `key ${signer.keyId}`
  return {signer, label, known: principal !== undefined}
}

/** Refuses an emergency push the trust policy would not accept from this key (or keyless identity) alone (exit 5). */
export function assertEmergencyAllowed(trust: TrustPolicy, options: {reference: string; bundle: LoadedBundle; incident: string; signer: SignerInfo; label: string}): string[] {
  const {tier} = publishableFields(options.bundle)
  const target = {...targetFromReference(options.reference, tier), emergency: options.incident}
  const decision = evaluateTrust(trust, target, [{kind: 'signatures', signer: options.signer, source: 'this push'}])
  if (!decision.satisfied) {
    throw new GovernanceError('EMERGENCY_NOT_ALLOWED', `an emergency change of ${decision.target} signed by ${options.label} alone would not be accepted:\n${[...decision.missing, ...decision.refused.map((r) => `refused: ${r.message}`)].map((l) => `  ${l}`).join('\n')}`, {
      suggestions: ['sign with a key (or keyless identity) the scope\'s emergency path names (e.g. a security-team key)', "give the scope an emergency block in the trust policy (README \"Governance\")"],
      details: {decision},
    })
  }
  return decision.scopes.filter((s) => s.via === 'require').length === decision.scopes.length
    ? [`the signer alone already meets the normal requirements of ${decision.target}: the change is marked as an emergency anyway and listed until approved`]
    : []
}

/** Runs the gate (unless the tier is not protected), then publishes. See the module comment. */
export async function governedPush(options: GovernedPushOptions): Promise<GovernedPushResult> {
  const me = prospectiveSigner(options.trust, options)
  const bundle = loadBundle(options.bundle)
  const {tier} = publishableFields(bundle)
  const notes: string[] = []
  if (options.emergency) {
    if (!options.trust) {
      throw new InputError('EMERGENCY_NEEDS_TRUST', 'an emergency change needs --trust TRUST.yaml: it is accepted only where the trust policy has an emergency path', {
        suggestions: ['aibox push BUNDLE REF --key security.key --emergency --incident INC-123 --trust trust.yaml'],
      })
    }
    if (options.draft) throw new InputError('DRAFT_EMERGENCY', 'an emergency change is a release: it cannot be a draft')
    notes.push(...assertEmergencyAllowed(options.trust, {reference: options.reference, bundle, incident: options.emergency.incident, signer: me.signer, label: me.label}))
  }

  const explicit = (options.against?.length ?? 0) > 0 || (options.tests?.length ?? 0) > 0
  let protection: Protection = protectionFor(tier, targetFromReference(options.reference, tier), options.trust)
  if (!protection.protected && explicit) protection = {protected: true, by: `${protection.by}, but --against/--tests were given`}
  const tests = [...(options.tests ?? [])]
  const conventional = conventionalTestsFile(options.bundle)
  if (conventional && !tests.some((t) => path.resolve(t) === path.resolve(conventional))) tests.push(conventional)
  const against = []
  if (protection.protected) {
    for (const spec of options.against ?? []) against.push(await resolveAgainst(spec, {trust: options.trust, registry: options.registry, signal: options.signal}))
  }
  const gate = runGate({bundle, protection, against, tests: protection.protected ? tests : []})
  const what = `${bundle.name} ${bundle.version} (tier ${tier})`
  if (!options.draft) assertGate(gate, what)
  else if (!gate.ok) notes.push('the submit gate failed (see above): pushed as a draft only, which pull and start never use')
  if (gate.protected && gate.tests.status === 'none') notes.push(`no policy tests for ${what}: add ${path.basename(options.bundle).replace(/\.(ya?ml|json)$/i, '')}.tests.yaml next to it or pass --tests`)
  if (options.trust && !me.known) {
    notes.push(`the ${options.keyless ? 'keyless identity' : 'signing key'} ${options.keyless ? me.signer.identity!.subject : me.signer.keyId} is not in '${options.trust.file}': its signature will not count there`)
  }

  const r = await pushPolicy({
    ...options,
    bundle,
    gate: !gate.protected ? 'not-protected' : gate.ok ? 'passed' : 'failed',
  })
  if (options.trust && !options.draft && !options.emergency) notes.push(...stillNeeded(options.trust, options.reference, tier, me.signer))
  return {...r, gate, notes}
}

/** What the trust policy still needs beyond this push's signature, so the pusher knows whom to ask. */
function stillNeeded(trust: TrustPolicy, reference: string, tier: Tier, signer: SignerInfo): string[] {
  const decision = evaluateTrust(trust, targetFromReference(reference, tier), [{kind: 'signatures', signer, source: 'this push'}])
  if (decision.satisfied || decision.scopes.length === 0) return []
  return [`pull and start refuse this version until: ${decision.missing.filter((m) => !m.startsWith('approval not counted')).join('; ')}`]
}

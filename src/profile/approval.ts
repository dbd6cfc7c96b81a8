/**
 * Signed approvals of a change to a weaker profile (README "Profiles", seed 000: "switching to a
 * weaker profile must be executed via an admin-approved flow"): a DSSE envelope, payload type
 * `application/vnd.aibox.profile-change.v1+json`, signed by an org admin's key over the stack, the
 * change (from → to), the change ticket, the reason, the approver and a validity window.
 *
 * `aibox profile set` accepts an approval only when its signature verifies with a key of the
 * trust policy that holds the `org-admin` role and is valid now, it names this stack and exactly
 * this change, it has not expired, and its approver is not the one asking (separation of duties).
 */
import {createHash} from 'node:crypto'

import {GovernanceError, InputError, errorMessage} from '../errors.js'
import {envelopeToJSON, parseEnvelope, type SerializedEnvelope, signEnvelope, verifyEnvelopeSignature} from '../sign/dsse.js'
import {readFileBounded} from '../sign/fs.js'
import type {PrivateKeyInfo} from '../sign/keys.js'
import {roleRefusal} from '../trust/evaluate.js'
import type {TrustKey, TrustPolicy} from '../trust/policy.js'

export const PROFILE_CHANGE_PAYLOAD_TYPE = 'application/vnd.aibox.profile-change.v1+json'
export const PROFILE_CHANGE_TYPE = 'https://aibox.dev/profile-change/v1'
/** The trust-policy role whose keys may approve a change to a weaker profile (README "Roles"). */
export const PROFILE_ADMIN_ROLE = 'org-admin'
export const DEFAULT_APPROVAL_TTL_MS = 24 * 3_600_000
/** Clock skew tolerated on `issued` (an approval from a machine a little ahead). */
const SKEW_MS = 5 * 60_000
const MAX_APPROVAL_BYTES = 1024 * 1024

export interface ProfileChangePayload {
  _type: typeof PROFILE_CHANGE_TYPE
  /** The configured stack (cache/state.ts profileKey of its references) and the references themselves. */
  stack: string
  refs: {org?: string; team?: string; project?: string}
  from: string
  to: string
  ticket: string
  reason: string
  approver: {actor: string; keyId: string; name?: string}
  issued: string
  expires: string
}

export interface CreateApprovalOptions {
  stack: string
  refs: ProfileChangePayload['refs']
  from: string
  to: string
  ticket: string
  reason: string
  key: PrivateKeyInfo
  actor: string
  /** The approving key's name in the trust policy, when known. */
  keyName?: string
  now?: Date
  ttlMs?: number
}

/** Signs an approval; returns the envelope (JSON) and its payload. */
export function createProfileApproval(o: CreateApprovalOptions): {envelope: SerializedEnvelope; payload: ProfileChangePayload} {
  if (!o.ticket.trim()) throw new InputError('TICKET_REQUIRED', '--ticket must name the change ticket')
  if (!o.reason.trim()) throw new InputError('REASON_REQUIRED', '--reason must say why')
  if (o.from === o.to) throw new InputError('PROFILE_UNCHANGED', `--from and --to are both '${o.to}': there is no change to approve`)
  const now = o.now ?? new Date()
  const payload: ProfileChangePayload = {
    _type: PROFILE_CHANGE_TYPE,
    stack: o.stack,
    refs: o.refs,
    from: o.from,
    to: o.to,
    ticket: o.ticket,
    reason: o.reason,
    approver: {actor: o.actor, keyId: o.key.public.keyId, ...(o.keyName ? {name: o.keyName} : {})},
    issued: now.toISOString(),
    expires: new Date(now.getTime() + (o.ttlMs ?? DEFAULT_APPROVAL_TTL_MS)).toISOString(),
  }
  const env = signEnvelope(Buffer.from(JSON.stringify(payload), 'utf8'), PROFILE_CHANGE_PAYLOAD_TYPE, o.key)
  return {envelope: envelopeToJSON(env), payload}
}

export interface VerifyApprovalsOptions {
  trust: TrustPolicy
  stack: string
  from: string
  to: string
  /** Who asks for the change (AIBOX_ACTOR, else user@host): may not approve it. */
  actor: string
  now?: Date
}

export interface VerifiedProfileApproval {
  file: string
  /** sha256 of the approval file's bytes. */
  sha256: string
  key: string
  keyId: string
  payload: ProfileChangePayload
}

interface Refusal {
  file: string
  code: string
  message: string
}

function isStr(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0
}

function payloadOf(bytes: Buffer): ProfileChangePayload | undefined {
  let p: unknown
  try {
    p = JSON.parse(bytes.toString('utf8'))
  } catch {
    return undefined
  }
  const o = p as Record<string, unknown> | null
  if (!o || typeof o !== 'object' || o._type !== PROFILE_CHANGE_TYPE) return undefined
  const a = o.approver as Record<string, unknown> | undefined
  if (![o.stack, o.from, o.to, o.ticket, o.reason, o.issued, o.expires].every(isStr) || !a || !isStr(a.actor) || !isStr(a.keyId)) return undefined
  if (Number.isNaN(Date.parse(o.issued as string)) || Number.isNaN(Date.parse(o.expires as string))) return undefined
  return o as unknown as ProfileChangePayload
}

/** Checks one approval file; a refusal or the verified approval. */
function checkOne(file: string, o: VerifyApprovalsOptions, now: Date): VerifiedProfileApproval | Refusal {
  let bytes: Buffer
  try {
    bytes = readFileBounded(file, 'profile approval', MAX_APPROVAL_BYTES)
  } catch (err) {
    return {file, code: 'APPROVAL_UNREADABLE', message: errorMessage(err)}
  }
  let env
  try {
    env = parseEnvelope(JSON.parse(bytes.toString('utf8')), file)
  } catch (err) {
    return {file, code: 'APPROVAL_INVALID', message: err instanceof SyntaxError ? 'not JSON' : errorMessage(err)}
  }
  if (env.payloadType !== PROFILE_CHANGE_PAYLOAD_TYPE) return {file, code: 'APPROVAL_INVALID', message: `payload type ${JSON.stringify(env.payloadType)} is not ${PROFILE_CHANGE_PAYLOAD_TYPE}`}
  let key: TrustKey | undefined
  for (const s of env.signatures) {
    key = o.trust.keys.find((k) => verifyEnvelopeSignature(env, s.sig, k))
    if (key) break
  }
  if (!key) return {file, code: 'APPROVAL_SIGNATURE_INVALID', message: `its signature does not verify with any key of the trust policy '${o.trust.file}'`}
  const refusal = roleRefusal(o.trust, key, PROFILE_ADMIN_ROLE, now)
  if (refusal) return {file, ...refusal}
  const p = payloadOf(env.payload)
  if (!p) return {file, code: 'APPROVAL_INVALID', message: 'the signed payload is not a profile-change approval'}
  const mismatch: string[] = []
  if (p.stack !== o.stack) mismatch.push(`it is for another stack (${p.refs?.org ?? p.stack})`)
  if (p.from !== o.from || p.to !== o.to) mismatch.push(`it approves '${p.from}' → '${p.to}', not '${o.from}' → '${o.to}'`)
  if (mismatch.length > 0) return {file, code: 'APPROVAL_MISMATCH', message: mismatch.join('; ')}
  if (Date.parse(p.expires) < now.getTime()) return {file, code: 'APPROVAL_EXPIRED', message: `it expired at ${p.expires}`}
  if (Date.parse(p.issued) > now.getTime() + SKEW_MS) return {file, code: 'APPROVAL_NOT_YET_VALID', message: `it is issued in the future (${p.issued})`}
  // Separation of duties: the one who asks cannot approve (by actor, or by the approving key's name).
  const user = o.actor.split('@')[0]
  if (p.approver.actor === o.actor || key.name === o.actor || key.name === user) {
    return {file, code: 'SELF_APPROVAL', message: `it is approved by ${p.approver.actor} with key '${key.name}', who is the one asking for the change (${o.actor}): another admin must approve it (separation of duties)`}
  }
  return {file, sha256: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, key: key.name, keyId: key.keyId, payload: p}
}

/**
 * Verifies approval files for a change (see the module comment): returns the valid ones (one per
 * key), or throws GovernanceError (exit 5) naming each file's problem when none is valid.
 */
export function verifyProfileApprovals(files: readonly string[], o: VerifyApprovalsOptions): VerifiedProfileApproval[] {
  const now = o.now ?? new Date()
  const ok: VerifiedProfileApproval[] = []
  const refused: Refusal[] = []
  for (const f of files) {
    const r = checkOne(f, o, now)
    if ('code' in r) refused.push(r)
    else if (!ok.some((a) => a.keyId === r.keyId)) ok.push(r)
  }
  if (ok.length > 0) return ok
  const first = refused[0]
  throw new GovernanceError(
    first?.code ?? 'PROFILE_APPROVAL_REQUIRED',
    `no valid approval of the change '${o.from}' → '${o.to}':\n${refused.map((r) => `  ${r.file}: ${r.message}`).join('\n')}`,
    {
      suggestions: [
        `an org admin other than you (a key with the '${PROFILE_ADMIN_ROLE}' role in the trust policy) approves it: aibox profile approve --key ADMIN.key --from ${o.from} --to ${o.to} --ticket CHG-… --reason "…" -o approval.json`,
      ],
      details: {refused},
    },
  )
}

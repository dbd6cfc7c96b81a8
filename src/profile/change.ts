/**
 * The admin-approved profile change (README "Profiles", seed 000):
 *
 * - `approveProfileChange`: an org admin signs an approval of `from → to` for a configured stack;
 * - `setProfile`: records a change with its change ticket (always required) in the cache state, so
 *   that the next `aibox start` accepts it, rewrites `profile:` and `profileTicket:` in aibox.yaml
 *   (comments kept) and logs `policy.profile.set`. A weaker profile needs valid approvals (see
 *   approval.ts) and is refused outright with AIBOX_POLICY_LOCK=1. Reverting is setting a profile
 *   at least as strict as before, which needs no approval.
 */
import fs from 'node:fs'

import {parseDocument as parseYamlDocument} from 'yaml'

import {appendAuditEvents} from '../audit/append.js'
import {defaultActor} from '../audit/entry.js'
import {selectProfile} from '../bundle/profiles.js'
import {writeOutputFile} from '../bundle/write.js'
import type {ProfileChange} from '../cache/state.js'
import {expandHome} from '../config/paths.js'
import {GovernanceError, InputError, errorMessage} from '../errors.js'
import type {PrivateKeyInfo} from '../sign/keys.js'
import {policyLockEnabled} from '../start/run.js'
import {assertMayApprove} from '../govern/approve.js'
import {type TrustPolicy, loadTrustPolicy} from '../trust/policy.js'
import {writeFileAtomicSync} from '../util/atomic.js'
import {type ProfileChangePayload, PROFILE_ADMIN_ROLE, createProfileApproval, verifyProfileApprovals} from './approval.js'
import {type CatalogOptions, type StackContext, cachedOrgBundle, stackContext} from './catalog.js'

export interface ApproveProfileOptions extends CatalogOptions {
  key: PrivateKeyInfo
  from: string
  to: string
  ticket: string
  reason: string
  output: string
  force?: boolean
  /** `--trust FILE` (else the configuration's): the key must hold `org-admin` there. */
  trust?: string
  ttlMs?: number
  now?: Date
}

export interface ApproveProfileResult {
  file: string
  payloadType: string
  payload: ProfileChangePayload
  notes: string[]
}

function trustOf(ctx: StackContext, flag: string | undefined, env: NodeJS.ProcessEnv, cwd: string): TrustPolicy | undefined {
  const file = flag !== undefined ? expandHome(flag, env, cwd) : ctx.config.trust
  return file === undefined ? undefined : loadTrustPolicy(file)
}

/** The profile names of the stack's cached org bundle, or undefined when the cache does not hold it. */
function cachedNames(ctx: StackContext): {names: string[]; org: ReturnType<typeof cachedOrgBundle>} | undefined {
  try {
    const org = cachedOrgBundle(ctx, ctx.cache.readState())
    return {names: (org.profiles ?? []).map((p) => p.name), org}
  } catch (err) {
    if ((err as {code?: string}).code === 'PROFILE_CATALOG_UNAVAILABLE') return undefined
    throw err
  }
}

/** Signs an approval of `from → to` (see the module comment) and writes it to `output`. */
export async function approveProfileChange(o: ApproveProfileOptions): Promise<ApproveProfileResult> {
  const env = o.env ?? process.env
  const cwd = o.cwd ?? process.cwd()
  const now = o.now ?? new Date()
  const ctx = await stackContext(o)
  const notes: string[] = []
  const catalog = cachedNames(ctx)
  if (catalog) {
    for (const [flag, name] of [
      ['--from', o.from],
      ['--to', o.to],
    ] as const) {
      selectProfile(catalog.org, name, flag)
    }
    if (catalog.names.indexOf(o.to) > catalog.names.indexOf(o.from)) notes.push(`'${o.to}' is stricter than '${o.from}': such a change needs no approval`)
  } else {
    notes.push(`the cache holds no verified copy of ${ctx.orgRef}: --from and --to were not checked against the org's profiles`)
  }
  const trust = trustOf(ctx, o.trust, env, cwd)
  let keyName: string | undefined
  if (trust) {
    try {
      keyName = assertMayApprove(trust, o.key.public.keyId, PROFILE_ADMIN_ROLE, now).name
    } catch (err) {
      if ((err as {code?: string}).code === 'ROLE_NOT_HELD') (err as GovernanceError).suggestions = [`profile changes are approved by keys with the '${PROFILE_ADMIN_ROLE}' role: approve with such a key, or ask the trust policy's owners`]
      throw err
    }
  }
  else notes.push(`no trust policy: the key was not checked for the '${PROFILE_ADMIN_ROLE}' role (aibox profile set will check it)`)
  const {envelope, payload} = createProfileApproval({
    stack: ctx.stackId,
    refs: ctx.refs,
    from: o.from,
    to: o.to,
    ticket: o.ticket,
    reason: o.reason,
    key: o.key,
    actor: defaultActor(env),
    ...(keyName ? {keyName} : {}),
    now,
    ...(o.ttlMs !== undefined ? {ttlMs: o.ttlMs} : {}),
  })
  writeOutputFile(o.output, `${JSON.stringify(envelope, null, 2)}\n`, {overwrite: o.force, mode: 0o644})
  return {file: o.output, payloadType: envelope.payloadType, payload, notes}
}

export interface SetProfileOptions extends CatalogOptions {
  profile: string
  ticket: string
  reason: string
  approvals?: string[]
  /** `--trust FILE` (else the configuration's) to verify approvals with. */
  trust?: string
  now?: Date
}

export interface SetProfileResult {
  config: string
  profile: string
  from: string | null
  weaker: boolean
  ticket: string
  reason: string
  approvers: string[]
  approvals: string[]
  /** AIBOX_PROFILE is set and overrides aibox.yaml for aibox start. */
  notes: string[]
}

/** Rewrites `profile:` and `profileTicket:` in aibox.yaml, keeping comments and layout (yaml Document API). */
export function rewriteConfigProfile(file: string, profile: string, ticket: string): void {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    throw new InputError('CONFIG_UNREADABLE', `${file}: cannot read: ${errorMessage(err)}`, {cause: err})
  }
  const doc = parseYamlDocument(text)
  doc.set('profile', profile)
  doc.set('profileTicket', ticket)
  try {
    writeFileAtomicSync(file, doc.toString())
  } catch (err) {
    throw new InputError('CONFIG_UNWRITABLE', `cannot rewrite ${file}: ${errorMessage(err)}`, {cause: err, suggestions: ['check that aibox.yaml and its directory are writable']})
  }
}

/** Records a profile change (see the module comment); nothing is written when a check refuses. */
export async function setProfile(o: SetProfileOptions): Promise<SetProfileResult> {
  const env = o.env ?? process.env
  const cwd = o.cwd ?? process.cwd()
  const now = o.now ?? new Date()
  const ticket = o.ticket.trim()
  const reason = o.reason.trim()
  if (!ticket) throw new InputError('TICKET_REQUIRED', 'a profile change needs --ticket ID (the change ticket recorded with it)')
  if (!reason) throw new InputError('REASON_REQUIRED', 'a profile change needs --reason TEXT (why; recorded in the audit log)')
  const ctx = await stackContext(o)
  const state = ctx.cache.readState()
  const org = cachedOrgBundle(ctx, state)
  const names = (org.profiles ?? []).map((p) => p.name)
  selectProfile(org, o.profile, 'profile')
  const ps = state.profiles[ctx.stackId]
  const from = ps?.profile?.name ?? ctx.config.profile ?? org.defaultProfile ?? null
  const rank = (n: string | null) => (n === null ? -1 : names.indexOf(n))
  const weaker = from !== null && rank(o.profile) < rank(from)
  const actor = defaultActor(env)
  const notes: string[] = []
  let approvers: string[] = []
  let approvals: string[] = []
  if (weaker) {
    if (policyLockEnabled(env)) {
      throw new GovernanceError('PROFILE_LOCKED', `AIBOX_POLICY_LOCK=1: profile '${o.profile}' is weaker than '${from}' (${names.join(' < ')}); the policy lock refuses a weaker profile outright`, {
        suggestions: [`choose '${from}' or a stricter profile`],
      })
    }
    if (!o.approvals?.length) {
      throw new GovernanceError('PROFILE_APPROVAL_REQUIRED', `profile '${o.profile}' is weaker than '${from}' (${names.join(' < ')}): the change needs an org admin's signed approval (--approval FILE)`, {
        suggestions: [`an org admin other than you runs: aibox profile approve --key ADMIN.key --from ${from} --to ${o.profile} --ticket ${ticket} --reason "…" -o approval.json`, `then: aibox profile set ${o.profile} --ticket ${ticket} --reason "…" --approval approval.json`],
      })
    }
    const trust = trustOf(ctx, o.trust, env, cwd)
    if (!trust) {
      throw new InputError('PROFILE_APPROVAL_NEEDS_TRUST', `${ctx.config.file} names no trust policy: approvals are checked against the trust policy's '${PROFILE_ADMIN_ROLE}' keys`, {
        suggestions: ["add 'trust: trust.yaml' to aibox.yaml (keys with roles: [org-admin] approve profile changes), or pass --trust FILE"],
      })
    }
    const ok = verifyProfileApprovals(o.approvals, {trust, stack: ctx.stackId, from: from!, to: o.profile, actor, now})
    approvers = ok.map((a) => a.key)
    approvals = ok.map((a) => a.sha256)
  } else if (o.approvals?.length) {
    notes.push(`'${o.profile}' is not weaker than '${from}': no approval is needed, --approval was not used`)
  }
  const change: ProfileChange = {from, to: o.profile, ticket, reason, actor, at: now.toISOString(), weaker, approvers, approvals}
  // The same profile again only records the ticket (aibox.yaml, audit); a pending change to another one is withdrawn.
  await ctx.cache.update((s) => {
    const p = (s.profiles[ctx.stackId] ??= {refs: ctx.refs})
    if (o.profile !== from) p.change = change
    else if (p.change) delete p.change
    else return {result: undefined, changed: false}
    return {result: undefined, changed: true}
  })
  rewriteConfigProfile(ctx.config.file, o.profile, ticket)
  await appendAuditEvents(
    [
      {
        event: 'policy.profile.set',
        fields: {ref: ctx.orgRef, digest: state.entries[ctx.orgRef]?.digest ?? null, version: org.version ?? null, ...(from !== null ? {from} : {}), profile: o.profile, reason, ticket, weaker, ...(weaker ? {approvers, approvals} : {})},
      },
    ],
    {log: ctx.config.audit, env, now: () => now},
  )
  if (env.AIBOX_PROFILE?.trim() && env.AIBOX_PROFILE.trim() !== o.profile) notes.push(`AIBOX_PROFILE=${env.AIBOX_PROFILE} is set and overrides aibox.yaml for aibox start`)
  return {config: ctx.config.file, profile: o.profile, from, weaker, ticket, reason, approvers, approvals, notes}
}

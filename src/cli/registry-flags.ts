/**
 * Flag groups shared by every command that talks to a registry, signs, or verifies (style.md §3:
 * cosign's option structs): one definition, so `push`, `pull`, `copy`, `sign`, `approve`,
 * `verify`, `discover`, `inspect` and `tags` spell and document them the same way.
 */
import {Flags} from '@oclif/core'

import {InputError} from '../errors.js'
import {chainCredentials, dockerCredentials, staticCredentials} from '../oci/auth/credentials.js'
import {parseReference} from '../oci/reference.js'
import type {RemoteRepositoryOptions} from '../oci/stores/remote.js'
import {type PrivateKeyInfo, loadPrivateKey, loadPublicKey} from '../sign/keys.js'
import {PasswordSession, readPasswordStdin} from '../sign/password.js'
import type {VerificationKey} from '../sign/types.js'
import {type TrustPolicy, loadTrustPolicy} from '../trust/policy.js'
import path from 'node:path'

/** Connection flags (README "HTTP or HTTPS"), without credentials. */
export const connectionFlags = {
  'plain-http': Flags.boolean({
    summary: 'use plain HTTP (default: only for loopback hosts); --no-plain-http forces HTTPS',
    allowNo: true,
    helpGroup: 'REGISTRY',
  }),
  insecure: Flags.boolean({summary: 'HTTPS without certificate verification (test registries only; warned about)', helpGroup: 'REGISTRY'}),
  'ca-file': Flags.string({summary: 'PEM file of CA certificates to trust in addition to the system store', multiple: true, helpValue: 'FILE', helpGroup: 'REGISTRY'}),
}

/** Connection flags plus explicit credentials (`--username` + `--password-stdin`). */
export const registryFlags = {
  ...connectionFlags,
  username: Flags.string({summary: 'registry user name (the password comes from --password-stdin)', dependsOn: ['password-stdin'], helpGroup: 'REGISTRY'}),
  'password-stdin': Flags.boolean({summary: 'read the registry password or token from stdin', dependsOn: ['username'], helpGroup: 'REGISTRY'}),
}

export interface RegistryFlagValues {
  'plain-http'?: boolean
  insecure?: boolean
  'ca-file'?: string[]
  username?: string
  'password-stdin'?: boolean
}

/** The registries named by references (layouts name none): explicit credentials go to these only. */
export function registriesOf(...refs: string[]): string[] {
  const out = new Set<string>()
  for (const r of refs) {
    try {
      const parsed = parseReference(r)
      if (parsed.kind === 'registry') out.add(parsed.registry)
    } catch {
      // reported by the command when it opens the reference
    }
  }
  return [...out]
}

/**
 * RemoteRepository options from the flags: TLS choices, and credentials (explicit first, then
 * docker's config). Explicit `--username` credentials are only ever sent to `io.registries` (the
 * registries the command line names), never to another registry a reference might lead to.
 */
export async function registryOptions(
  flags: RegistryFlagValues,
  io: {stdin?: NodeJS.ReadableStream; warn?: (m: string) => void; registries?: string[]} = {},
): Promise<RemoteRepositoryOptions> {
  const opts: RemoteRepositoryOptions = {}
  if (flags['plain-http'] !== undefined) opts.plainHttp = flags['plain-http']
  if (flags.insecure) opts.insecure = true
  if (flags['ca-file']?.length) opts.caFile = flags['ca-file']
  if (io.warn) opts.onWarning = io.warn
  Object.assign(opts, networkTuning(process.env))
  if (flags.username !== undefined) {
    if (!flags['password-stdin']) throw new InputError('PASSWORD_REQUIRED', '--username needs --password-stdin (a password is never taken from the command line)')
    const candidates = await readPasswordStdin((io.stdin ?? process.stdin) as never, 'encrypt')
    const password = candidates[0] ?? ''
    if (password === '') throw new InputError('PASSWORD_REQUIRED', '--password-stdin read an empty password', {suggestions: ['echo "$TOKEN" | aibox … --username USER --password-stdin']})
    const explicit = (io.registries ?? []).map((registry) => staticCredentials({username: flags.username!, password}, {registry, source: `--username ${flags.username}`}))
    opts.credentials = chainCredentials(...explicit, dockerCredentials())
  }
  return opts
}

/**
 * Timeouts and retries from the environment, for slow links and proxies (README "HTTP or
 * HTTPS"): AIBOX_REGISTRY_TIMEOUT (seconds a registry may take to start answering, and may pause
 * within a response; default 60) and AIBOX_REGISTRY_ATTEMPTS (tries per request, the first
 * included; default 4). Bad values are usage errors, not silently ignored.
 */
export function networkTuning(env: NodeJS.ProcessEnv): Pick<RemoteRepositoryOptions, 'timeouts' | 'retry'> {
  const out: Pick<RemoteRepositoryOptions, 'timeouts' | 'retry'> = {}
  const number = (name: string, min: number, max: number): number | undefined => {
    const raw = env[name]
    if (raw === undefined || raw === '') return undefined
    const n = Number(raw)
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new InputError('INVALID_ENVIRONMENT', `${name}=${JSON.stringify(raw.slice(0, 40))} is not a number from ${min} to ${max}`)
    }
    return n
  }
  const timeout = number('AIBOX_REGISTRY_TIMEOUT', 0.1, 3600)
  if (timeout !== undefined) out.timeouts = {headersMs: timeout * 1000, bodyIdleMs: timeout * 1000}
  const attempts = number('AIBOX_REGISTRY_ATTEMPTS', 1, 20)
  if (attempts !== undefined) {
    if (!Number.isInteger(attempts)) throw new InputError('INVALID_ENVIRONMENT', `AIBOX_REGISTRY_ATTEMPTS=${attempts} is not a whole number`)
    out.retry = {attempts}
  }
  return out
}

/** The private key for signing: `--key FILE` (cosign format) and where its password comes from. */
export const signingKeyFlags = {
  key: Flags.string({summary: 'private key file (cosign format) to sign with', required: true, helpValue: 'FILE', helpGroup: 'KEY'}),
  'key-password-stdin': Flags.boolean({
    summary: "read the key's password from stdin (else COSIGN_PASSWORD / AIBOX_PASSWORD, else a prompt on a terminal)",
    exclusive: ['password-stdin'],
    helpGroup: 'KEY',
  }),
}

export async function loadSigningKey(flags: {key: string; 'key-password-stdin'?: boolean}): Promise<PrivateKeyInfo> {
  const passwords = new PasswordSession({passwordStdin: flags['key-password-stdin']})
  return loadPrivateKey(flags.key, {password: passwords.decrypt})
}

/** What to verify against: public keys (`--key`, repeatable) or a trust policy (`--trust`). */
export const verificationFlags = {
  key: Flags.string({summary: 'trusted public key (repeatable)', multiple: true, helpValue: 'PUB', exclusive: ['trust'], helpGroup: 'VERIFY'}),
  trust: Flags.string({summary: 'trust policy file (YAML): which keys may sign which references and tiers', helpValue: 'FILE', exclusive: ['key'], helpGroup: 'VERIFY'}),
}

export interface Verification {
  keys?: VerificationKey[]
  trust?: TrustPolicy
}

/** Loads `--key` files (named by their file name) or the `--trust` policy; `required` makes one of them mandatory. */
export function loadVerification(flags: {key?: string[]; trust?: string}, required: boolean): Verification {
  if (flags.trust) return {trust: loadTrustPolicy(flags.trust)}
  if (flags.key?.length) return {keys: flags.key.map((k) => ({...loadPublicKey(k), name: path.basename(k)}))}
  if (required) {
    throw new InputError('KEYS_OR_TRUST', 'nothing to verify against: pass --key PUB (repeatable) or --trust TRUST.yaml', {
      suggestions: ['aibox refuses unverified policies; the publisher gives you their public key or trust policy'],
    })
  }
  return {}
}

/**
 * The keyless signing flags shared by `aibox sign` and `aibox push` (README "Keyless signing (your
 * own Sigstore)"). Each URL falls back to its environment variable; the OIDC token only ever
 * comes from the environment (SIGSTORE_ID_TOKEN, else AIBOX_OIDC_TOKEN), never from a flag that
 * would show in `ps`.
 */
import {Flags} from '@oclif/core'

import {InputError} from '../errors.js'
import {IDENTITY_TOKEN_ENV, KEYLESS_ENV, KeylessSigner} from '../sign/keyless.js'

export const keylessFlags = {
  keyless: Flags.boolean({
    summary: `sign with your own Sigstore instead of a key: OIDC token from ${IDENTITY_TOKEN_ENV.join(' or ')}, a Fulcio certificate, a Rekor entry and/or an RFC 3161 timestamp`,
    helpGroup: 'KEYLESS',
  }),
  'fulcio-url': Flags.string({summary: `base URL of your Fulcio (else ${KEYLESS_ENV.fulcioUrl})`, helpValue: 'URL', helpGroup: 'KEYLESS'}),
  'rekor-url': Flags.string({summary: `base URL of your Rekor, v1 API (else ${KEYLESS_ENV.rekorUrl})`, helpValue: 'URL', helpGroup: 'KEYLESS'}),
  'tsa-url': Flags.string({summary: `base URL of your RFC 3161 timestamp authority (else ${KEYLESS_ENV.tsaUrl})`, helpValue: 'URL', helpGroup: 'KEYLESS'}),
  'sigstore-allow-http': Flags.boolean({summary: `allow plain http:// to non-loopback Sigstore services (labs only; else ${KEYLESS_ENV.allowInsecureHttp}=1)`, helpGroup: 'KEYLESS'}),
}

export interface KeylessFlagValues {
  key?: string
  keyless?: boolean
  'fulcio-url'?: string
  'rekor-url'?: string
  'tsa-url'?: string
  'sigstore-allow-http'?: boolean
}

/**
 * `--key` or `--keyless`, exactly one; the keyless signer is built (settings and token checked)
 * before any file or registry is touched. Returns undefined for key signing.
 */
export function keylessSignerFromFlags(flags: KeylessFlagValues, env: Record<string, string | undefined> = process.env): KeylessSigner | undefined {
  const urlFlags = (['fulcio-url', 'rekor-url', 'tsa-url', 'sigstore-allow-http'] as const).filter((f) => flags[f] !== undefined && flags[f] !== false)
  if (!flags.keyless) {
    if (flags.key === undefined) throw new InputError('KEY_OR_KEYLESS', 'pass --key KEY (a cosign private key) or --keyless (your own Sigstore)')
    if (urlFlags.length > 0) throw new InputError('KEYLESS_FLAG_WITHOUT_KEYLESS', `--${urlFlags[0]} applies to keyless signing: add --keyless (and drop --key)`)
    return undefined
  }
  if (flags.key !== undefined) throw new InputError('KEY_OR_KEYLESS', '--key and --keyless exclude each other: sign with a key, or keyless')
  return KeylessSigner.fromEnvironment(
    {
      ...(flags['fulcio-url'] === undefined ? {} : {fulcioUrl: flags['fulcio-url']}),
      ...(flags['rekor-url'] === undefined ? {} : {rekorUrl: flags['rekor-url']}),
      ...(flags['tsa-url'] === undefined ? {} : {tsaUrl: flags['tsa-url']}),
      ...(flags['sigstore-allow-http'] ? {allowInsecureHttp: true} : {}),
    },
    env,
  )
}

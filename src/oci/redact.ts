/**
 * Secret redaction for everything the OCI client puts into messages and logs.
 *
 * Two layers: every password, token and Basic credential the client loads is registered as a
 * known secret and replaced wherever it appears (like CI log masking: a registry that echoes a
 * token in an error body cannot leak it); and shapes that are always secret (Authorization
 * values, URL user-info, token query parameters, token-ish JSON fields) are masked even when
 * their value was never registered.
 */

export const REDACTED = '***'

const known = new Set<string>()
/** Secrets shorter than this are not masked by value (they would mask ordinary words); shape rules still apply. */
const MIN_SECRET_LENGTH = 4

/** Registers `value` (and its Basic/base64 forms when `username` is given) as a secret to mask in every message. */
export function registerSecret(value: string | undefined, username?: string): void {
  if (!value || value.length < MIN_SECRET_LENGTH) return
  known.add(value)
  known.add(encodeURIComponent(value))
  known.add(Buffer.from(value).toString('base64'))
  if (username !== undefined) known.add(Buffer.from(`${username}:${value}`).toString('base64'))
}

const SHAPES: Array<[RegExp, string]> = [
  // Authorization / Proxy-Authorization header lines and bare scheme values.
  [/\b((?:proxy-)?authorization)(["']?\s*[:=]\s*["']?)[^\r\n"',}]*/gi, `$1$2${REDACTED}`],
  // (not challenge parameters: `Bearer realm="…"` is no secret)
  [/\b(Basic|Bearer)\s+(?!(?:realm|service|scope|error|error_description|charset)\s*=)[A-Za-z0-9._~+/=-]{4,}/g, `$1 ${REDACTED}`],
  // user:password@ in URLs.
  [/([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]*:[^/\s@]*@/gi, `$1${REDACTED}@`],
  // Token-bearing query parameters and form fields.
  [/([?&](?:access_token|refresh_token|token|password|client_secret|code)=)[^&\s#"']*/gi, `$1${REDACTED}`],
  // Token-ish JSON fields (token server answers, docker config, credential helper output).
  [
    /("(?:token|access_token|refresh_token|id_token|password|secret|auth|identitytoken|registrytoken|identityToken|registryToken)"\s*:\s*")(?:[^"\\]|\\.)*"/gi,
    `$1${REDACTED}"`,
  ],
]

/** Returns `text` with every registered secret and every secret-shaped substring masked. */
export function redact(text: string): string {
  let out = text
  if (known.size > 0) {
    // Longest first, so that a secret containing another is masked whole.
    for (const s of [...known].sort((a, b) => b.length - a.length)) {
      if (out.includes(s)) out = out.split(s).join(REDACTED)
    }
  }
  for (const [re, rep] of SHAPES) out = out.replace(re, rep)
  return out
}

/** A URL for messages: user-info and token parameters masked, the upload `_state` shortened. */
export function redactUrl(url: string | URL): string {
  let u: URL
  try {
    u = new URL(String(url))
  } catch {
    return redact(String(url))
  }
  if (u.username || u.password) {
    u.username = REDACTED
    u.password = ''
  }
  for (const key of [...u.searchParams.keys()]) {
    if (/^(?:access_token|refresh_token|token|password|client_secret|code)$/i.test(key)) u.searchParams.set(key, REDACTED)
    // distribution's `_state` is an opaque HMAC-signed blob: not a credential, but long and useless in a message.
    if (key === '_state') u.searchParams.set(key, '...')
  }
  return redact(u.toString())
}

/** Header names whose values are secret. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie'])

/** A copy of `headers` safe to log: secret headers masked, other values redacted. */
export function redactHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue
    if (SECRET_HEADERS.has(k.toLowerCase())) out[k] = REDACTED
    else out[k] = Array.isArray(v) ? v.map(redact) : redact(v)
  }
  return out
}

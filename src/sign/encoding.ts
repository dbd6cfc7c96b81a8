/**
 * Byte encodings shared by the signature formats: strict base64 and PEM.
 *
 * Node's `Buffer.from(s, 'base64')` silently skips characters outside the alphabet, so a
 * corrupted signature file could decode to *something*. Every format we read (DSSE,
 * Sigstore bundles, cosign key files, sign-blob output) goes through `decodeBase64` instead,
 * which accepts only the standard or URL-safe alphabet (DSSE envelope.md: verifiers MUST
 * accept both), with or without padding.
 */
import {createHash} from 'node:crypto'

const STD = /^[A-Za-z0-9+/]*={0,2}$/
const URL_SAFE = /^[A-Za-z0-9_-]*={0,2}$/

/** Decodes standard or URL-safe base64 (padding optional); returns undefined for anything else. */
export function decodeBase64(text: string, options: {ignoreWhitespace?: boolean} = {}): Buffer | undefined {
  const s = options.ignoreWhitespace ? text.replace(/[\r\n\t ]+/g, '') : text
  if (!STD.test(s) && !URL_SAFE.test(s)) return undefined
  const unpadded = s.replace(/=+$/, '')
  // A single leftover character (length % 4 === 1) cannot encode a byte; padding must complete a quantum.
  if (unpadded.length % 4 === 1) return undefined
  if (s.length !== unpadded.length && s.length % 4 !== 0) return undefined
  return Buffer.from(unpadded, STD.test(s) ? 'base64' : 'base64url')
}

/** Padded standard base64 (what protojson, cosign and Go's StdEncoding write). */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

export function sha256(bytes: Uint8Array | string): Buffer {
  return createHash('sha256').update(bytes).digest()
}

/** `sha256:<hex>` of some bytes. */
export function sha256Digest(bytes: Uint8Array | string): string {
  return `sha256:${sha256(bytes).toString('hex')}`
}

export interface PemBlock {
  label: string
  /** RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED` (legacy encrypted PEM). */
  headers: Record<string, string>
  der: Buffer
}

/**
 * Parses every PEM block in `text` (RFC 7468). Text around the blocks is ignored, like Go's
 * `pem.Decode`, so `openssl ecparam -genkey` output (EC PARAMETERS + EC PRIVATE KEY) works.
 * A block whose body is not base64 is an error, never skipped.
 */
export function parsePem(text: string): PemBlock[] {
  const blocks: PemBlock[] = []
  // Linear: a regex with a lazy body re-scanned the rest of the text after every BEGIN line, so
  // 40,000 BEGIN lines without an END took 19 s (testdata/hostile/trust/pem-bomb.yaml).
  const begin = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n/g
  const end = /-----END ([A-Z0-9 ]+)-----/g
  for (let m = begin.exec(text); m; m = begin.exec(text)) {
    end.lastIndex = begin.lastIndex
    const e = end.exec(text)
    // No END after this BEGIN means none after any later BEGIN either.
    if (!e) break
    const label = m[1]!
    const body = text.slice(begin.lastIndex, e.index)
    const endLabel = e[1]!
    begin.lastIndex = end.lastIndex
    if (label !== endLabel) throw new Error(`PEM block "${label}" ends with "END ${endLabel}"`)
    const headers: Record<string, string> = Object.create(null)
    const lines = body.split(/\r?\n/)
    let i = 0
    for (; i < lines.length && lines[i].includes(':'); i++) {
      const [k, ...v] = lines[i].split(':')
      headers[k.trim()] = v.join(':').trim()
    }
    const der = decodeBase64(lines.slice(i).join(''), {ignoreWhitespace: true})
    if (!der || der.length === 0) throw new Error(`PEM block "${label}" has a body that is not base64`)
    blocks.push({label, headers, der})
  }
  return blocks
}

/** PEM with 64-column base64 lines and a trailing newline, byte-identical to Go's `pem.EncodeToMemory`. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = encodeBase64(der)
  const lines = b64.match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}

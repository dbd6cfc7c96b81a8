/**
 * Generates the part of the hostile-input corpus (testdata/hostile/README.md) that is too large
 * or too binary to commit: deep nesting, huge strings and numbers, invalid UTF-8, tar attacks,
 * gzip bombs, layout directories with symlinks and FIFOs. Everything is deterministic (no
 * randomness, no clock), so a generated item is the same bytes on every machine.
 *
 * test/e2e/hostile.test.ts calls `generated()` and writes the items its cases need into a
 * temporary directory; the fuzz targets (test/fuzz/targets.ts) reuse the tar and layout builders.
 * To look at them: `node --import tsx scripts/gen-hostile.ts OUTDIR [FILTER]`.
 */
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import zlib from 'node:zlib'

/** One corpus item: a file (bytes) or a directory (built in place), under a corpus-relative path. */
export type GeneratedItem = {path: string; why: string} & ({kind: 'file'; make: () => Buffer} | {kind: 'dir'; make: (dir: string) => void})

const MiB = 1024 * 1024

export function sha256(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`
}

// ------------------------------------------------------------------ tar (ustar, written by hand)

export interface TarHeaderSpec {
  name: string
  size?: number
  /** ustar typeflag: 0 file, 1 hard link, 2 symlink, 3 char device, 4 block device, 5 directory, 6 FIFO, x PAX, g PAX global, L GNU long name. */
  type?: string
  linkname?: string
  mode?: number
  /** Raw 12-byte size field (e.g. base-256), written instead of the octal size. */
  sizeField?: Buffer
  /** Write a wrong checksum. */
  badChecksum?: boolean
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0'
}

/** A 512-byte ustar header (name ≤ 100 bytes; longer names need PAX or GNU headers, as in real tars). */
export function tarHeader(h: TarHeaderSpec): Buffer {
  const b = Buffer.alloc(512)
  const name = Buffer.from(h.name, 'utf8')
  name.copy(b, 0, 0, Math.min(100, name.length))
  b.write(octal(h.mode ?? (h.type === '5' ? 0o755 : 0o644), 8), 100, 'latin1')
  b.write(octal(0, 8), 108, 'latin1')
  b.write(octal(0, 8), 116, 'latin1')
  if (h.sizeField) h.sizeField.copy(b, 124, 0, 12)
  else b.write(octal(h.size ?? 0, 12), 124, 'latin1')
  b.write(octal(0, 12), 136, 'latin1')
  b.write(h.type ?? '0', 156, 'latin1')
  if (h.linkname) Buffer.from(h.linkname, 'utf8').copy(b, 157, 0, 100)
  b.write('ustar\u000000', 257, 'latin1')
  b.fill(0x20, 148, 156)
  let sum = 0
  for (const x of b) sum += x
  if (h.badChecksum) sum += 1
  b.write(octal(sum, 7) + ' ', 148, 'latin1')
  return b
}

function pad(data: Buffer): Buffer {
  const rem = data.length % 512
  return rem === 0 ? data : Buffer.concat([data, Buffer.alloc(512 - rem)])
}

/** Header + data + padding. `declared` overrides the size written in the header (forged sizes). */
export function tarEntry(h: TarHeaderSpec, data: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([tarHeader({...h, size: h.size ?? data.length}), pad(data)])
}

/** A PAX extended header entry carrying `records` (key=value), for the entry that follows. */
export function paxEntry(records: Record<string, string>, global = false): Buffer {
  let body = ''
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`
    let len = Buffer.byteLength(rest) + 1
    while (String(len).length + Buffer.byteLength(rest) !== len) len = String(len).length + Buffer.byteLength(rest)
    body += `${len}${rest}`
  }
  return tarEntry({name: global ? 'pax_global_header' : 'PaxHeaders/x', type: global ? 'g' : 'x'}, Buffer.from(body, 'utf8'))
}

export const TAR_END = Buffer.alloc(1024)

/** The files of a small valid OCI layout: oci-layout, index.json (tag "v1"), a manifest, its config and one layer. */
export function layoutFiles(): {name: string; data: Buffer}[] {
  const config = Buffer.from('{}')
  const layer = Buffer.from('{"apiVersion":"aibox.dev/v1"}')
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.aibox.policy.bundle.v1+json',
      config: {mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(config), size: config.length},
      layers: [{mediaType: 'application/vnd.aibox.policy.bundle.v1+json', digest: sha256(layer), size: layer.length}],
    }),
  )
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length, annotations: {'org.opencontainers.image.ref.name': 'v1'}},
      ],
    }),
  )
  const blob = (b: Buffer) => ({name: `blobs/sha256/${sha256(b).slice(7)}`, data: b})
  return [{name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}')}, {name: 'index.json', data: index}, blob(manifest), blob(config), blob(layer)]
}

/** A valid layout tar, with `extra` entries (already encoded) inserted after the layout's own. */
export function layoutTar(extra: Buffer[] = [], opts: {before?: Buffer[]; skip?: string[]} = {}): Buffer {
  const own = layoutFiles()
    .filter((f) => !opts.skip?.includes(f.name))
    .map((f) => tarEntry({name: f.name}, f.data))
  return Buffer.concat([...(opts.before ?? []), ...own, ...extra, TAR_END])
}

// ------------------------------------------------------------------ sealed exports (aibox import)

/** A real sealed export (committed; scripts/gen-sealed-fixture.sh regenerates it): the hostile import archives are edits of it. */
export const SEALED_TAR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'testdata', 'hostile', 'import', 'sealed.tar')

interface SealedEntry {
  name: string
  type: string
  mode: number
  data: Buffer
}

/** The entries of a plain ustar file (what aibox export writes: no PAX or GNU headers). */
export function readUstar(tar: Buffer): SealedEntry[] {
  const out: SealedEntry[] = []
  for (let off = 0; off + 512 <= tar.length; ) {
    const h = tar.subarray(off, off + 512)
    if (h.every((x) => x === 0)) break
    const field = (a: number, b: number) => h.subarray(a, b).toString('latin1').replace(/\0.*$/s, '')
    const prefix = field(345, 500)
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100)
    const size = parseInt(field(124, 136).trim() || '0', 8)
    out.push({name, type: field(156, 157) || '0', mode: parseInt(field(100, 108).trim() || '644', 8), data: Buffer.from(tar.subarray(off + 512, off + 512 + size))})
    off += 512 + Math.ceil(size / 512) * 512
  }
  return out
}

/** The committed sealed export with its policy's facts: the manifest under "stable", its policy layer, the seal, the signature. */
function sealed(): {entries: SealedEntry[]; index: {manifests: Array<{digest: string; annotations?: Record<string, string>}>}; manifest: string; layer: string; signature: string} {
  const entries = readUstar(fs.readFileSync(SEALED_TAR))
  const index = JSON.parse(entries.find((e) => e.name === 'index.json')!.data.toString('utf8'))
  const tagged = (tag: string) => index.manifests.find((m: {annotations?: Record<string, string>}) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)?.digest as string
  const manifest = tagged('stable')
  const m = JSON.parse(entries.find((e) => e.name === `blobs/sha256/${manifest.slice(7)}`)!.data.toString('utf8'))
  const signature = index.manifests.find((x: {annotations?: Record<string, string>}) => x.annotations?.['org.opencontainers.image.ref.name']?.startsWith('sha256-'))!.digest as string
  return {entries, index, manifest, layer: m.layers[0].digest, signature}
}

/** The sealed export re-encoded after `edit` (entries may be replaced by pre-encoded buffers). */
function sealedTar(edit: (s: ReturnType<typeof sealed>) => Array<SealedEntry | Buffer>): Buffer {
  const parts = edit(sealed()).map((e) => (Buffer.isBuffer(e) ? e : tarEntry({name: e.name, type: e.type, mode: e.mode}, e.data)))
  return Buffer.concat([...parts, TAR_END])
}

const withIndex = (s: ReturnType<typeof sealed>, manifests: unknown[]): SealedEntry[] =>
  s.entries.map((e) => (e.name === 'index.json' ? {...e, data: Buffer.from(JSON.stringify({...s.index, manifests}))} : e))

/** An index chain: index_n lists index_{n-1} … index_1 lists the manifest. Returns the layout files. */
export function deepIndexLayout(depth: number): {name: string; data: Buffer}[] {
  const files = layoutFiles()
  const manifest = files[2]!.data
  let child = {mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length}
  const blobs: {name: string; data: Buffer}[] = []
  for (let i = 0; i < depth; i++) {
    const idx = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [child], annotations: {level: String(i)}}))
    blobs.push({name: `blobs/sha256/${sha256(idx).slice(7)}`, data: idx})
    child = {mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256(idx), size: idx.length}
  }
  const index = Buffer.from(JSON.stringify({schemaVersion: 2, manifests: [{...child, annotations: {'org.opencontainers.image.ref.name': 'deep'}}]}))
  return [files[0]!, {name: 'index.json', data: index}, files[2]!, files[3]!, files[4]!, ...blobs]
}

/** index.json tagging `manifest` as "v1" (descriptor fields overridable), plus oci-layout and the manifest blob. */
export function layoutWithManifest(manifest: Buffer, desc: Record<string, unknown> = {}): {name: string; data: Buffer}[] {
  const entry = {mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length, ...desc, annotations: {'org.opencontainers.image.ref.name': 'v1'}}
  const index = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [entry]}))
  return [layoutFiles()[0]!, {name: 'index.json', data: index}, {name: `blobs/sha256/${sha256(manifest).slice(7)}`, data: manifest}]
}

/** The policy manifest of layoutFiles() with its layer descriptor changed. */
function policyManifest(layer: Record<string, unknown>): Buffer {
  const m = JSON.parse(layoutFiles()[2]!.data.toString()) as {layers: Record<string, unknown>[]}
  m.layers[0] = {...m.layers[0], ...layer}
  return Buffer.from(JSON.stringify(m))
}

function pem(label: string, body: Buffer): Buffer {
  const b64 = body.toString('base64').replace(/.{64}/g, '$&\n')
  return Buffer.from(`-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`)
}

/**
 * A cosign-shaped encrypted key (formats: cosign-formats.md) with chosen scrypt parameters, salt
 * or nonce; `edit` rewrites the JSON text (for values JSON.stringify cannot produce). The
 * ciphertext is 48 fixed bytes: no password opens it.
 */
function encryptedKey(opts: {N?: unknown; r?: unknown; p?: unknown; salt?: Buffer; nonce?: Buffer}, edit: (json: string) => string = (j) => j): Buffer {
  const json = JSON.stringify({
    kdf: {name: 'scrypt', params: {N: opts.N ?? 65536, r: opts.r ?? 8, p: opts.p ?? 1}, salt: (opts.salt ?? Buffer.alloc(32, 7)).toString('base64')},
    cipher: {name: 'nacl/secretbox', nonce: (opts.nonce ?? Buffer.alloc(24, 1)).toString('base64')},
    ciphertext: Buffer.alloc(48, 9).toString('base64'),
  })
  return pem('ENCRYPTED SIGSTORE PRIVATE KEY', Buffer.from(edit(json)))
}

function writeLayoutDir(dir: string, files: {name: string; data: Buffer}[]): void {
  for (const f of files) {
    fs.mkdirSync(path.join(dir, path.dirname(f.name)), {recursive: true})
    fs.writeFileSync(path.join(dir, f.name), f.data)
  }
}

// ------------------------------------------------------------------ text builders

const nest = (open: string, close: string, depth: number, inner = '') => open.repeat(depth) + inner + close.repeat(depth)

const bundleHead = 'apiVersion: aibox.dev/v1\nkind: PolicyBundle\nmetadata: {name: hostile, version: 1.0.0, tier: org}\n'
const bundleJsonHead = '{"apiVersion":"aibox.dev/v1","kind":"PolicyBundle","metadata":{"name":"hostile","version":"1.0.0","tier":"org"},'

/** `width` copies of an alias per level, `levels` levels deep: width^levels nodes once expanded. */
function laughs(levels: number, width: number): string {
  const lines = [`l0: &l0 [${Array(width).fill('"lol"').join(', ')}]`]
  for (let i = 1; i < levels; i++) lines.push(`l${i}: &l${i} [${Array(width).fill(`*l${i - 1}`).join(', ')}]`)
  return `${lines.join('\n')}\n`
}

/** Block-style nesting `depth` deep (each level indented one more space): quadratic in size, so depth stays moderate. */
function blockNest(depth: number): string {
  const out: string[] = []
  for (let i = 0; i < depth; i++) out.push(`${' '.repeat(i)}a:`)
  return `${out.join('\n')} 1\n`
}

const b = (...parts: Array<string | number[] | Buffer>) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p as number[]))))

// ------------------------------------------------------------------ the generated corpus

export function generated(): GeneratedItem[] {
  const f = (p: string, why: string, make: () => Buffer): GeneratedItem => ({path: p, why, kind: 'file', make})
  const d = (p: string, why: string, make: (dir: string) => void): GeneratedItem => ({path: p, why, kind: 'dir', make})
  const items: GeneratedItem[] = [
    // --- policy bundles (loadBundle)
    f('bundle/deep-100k.json', 'JSON nested 100,000 levels', () => b(nest('[', ']', 100_000))),
    f('bundle/deep-object-100k.json', 'JSON objects nested 100,000 levels', () => b(nest('{"a":', '}', 100_000, '1'))),
    f('bundle/deep-flow-100k.yaml', 'YAML flow sequences nested 100,000 levels', () => b(nest('[', ']', 100_000))),
    f('bundle/deep-flow-map-100k.yaml', 'YAML flow mappings nested 100,000 levels', () => b(nest('{a: ', '}', 100_000, '1'))),
    f('bundle/deep-compact-seq-100k.yaml', 'YAML compact block sequences "- - - …" nested 100,000 levels', () => b(`${'- '.repeat(100_000)}1\n`)),
    f('bundle/deep-block-2000.yaml', 'YAML block mappings nested 2,000 levels (indentation grows by one each level)', () => b(blockNest(2000))),
    f('bundle/deep-just-over-limit.yaml', 'YAML nested 600 levels inside a bundle (just over the 512 limit)', () => b(`${bundleHead}policy: {x: ${nest('[', ']', 600)}}\n`)),
    f('bundle/billion-laughs-10x10.yaml', 'billion laughs: 10 levels of 10 aliases (10^10 nodes expanded)', () => b(laughs(10, 10))),
    f('bundle/alias-fanout-2x60.yaml', 'alias doubling 60 levels deep (2^60 nodes expanded)', () => b(laughs(60, 2))),
    f('bundle/huge-string-16m.json', 'a 16 MiB string value', () => b(`${bundleJsonHead}"description":"${'x'.repeat(16 * MiB)}"}`)),
    f('bundle/huge-string-15m.yaml', 'a 15 MiB plain scalar (under the 16 MiB YAML limit)', () => b(`${bundleHead}description: ${'x'.repeat(15 * MiB)}\n`)),
    f('bundle/huge-key-8m.json', 'an 8 MiB object key', () => b(`${bundleJsonHead}"${'k'.repeat(8 * MiB)}":1}`)),
    f('bundle/huge-key-8m.yaml', 'an 8 MiB mapping key', () => b(`${bundleHead}${'k'.repeat(8 * MiB)}: 1\n`)),
    f('bundle/huge-integer-1m.json', 'an integer of 1,000,000 digits', () => b(`${bundleJsonHead}"n":${'9'.repeat(1_000_000)}}`)),
    f('bundle/huge-integer-1m.yaml', 'an integer of 1,000,000 digits', () => b(`${bundleHead}n: ${'9'.repeat(1_000_000)}\n`)),
    f('bundle/huge-float-1m.yaml', 'a float of 1,000,000 digits that overflows to Infinity', () => b(`${bundleHead}n: 1${'0'.repeat(1_000_000)}.5\n`)),
    f('bundle/huge-exponent.json', 'a number with a 1,000,000-digit exponent', () => b(`${bundleJsonHead}"n":1e${'9'.repeat(1_000_000)}}`)),
    f('bundle/many-keys-50k.yaml', '50,000 distinct keys in one mapping (yaml\'s own duplicate check is quadratic: 1.25·10^9 comparisons)', () =>
      b(bundleHead, Array.from({length: 50_000}, (_, i) => `k${i}: ${i}`).join('\n'), '\n'),
    ),
    f('bundle/many-keys-200k.json', '200,000 distinct keys in one object', () => b(bundleJsonHead, Array.from({length: 200_000}, (_, i) => `"k${i}":${i}`).join(','), '}')),
    f('bundle/many-duplicates-50k.yaml', '50,000 copies of one key', () => b(bundleHead, 'rules: []\n'.repeat(50_000))),
    f('bundle/many-problems-30k.yaml', '30,000 unknown keys, each a schema problem', () => b(bundleHead, 'policy:\n', Array.from({length: 30_000}, (_, i) => `  bad${i}: 1`).join('\n'), '\n')),
    f('bundle/too-large.json', 'a file over the 256 MiB document limit (sparse)', () => Buffer.alloc(0)),
    // invalid UTF-8 (RFC 3629 §3; Unicode 15 §3.9 table 3-7)
    f('bundle/utf8-overlong-slash.json', 'overlong encoding of "/" (C0 AF)', () => b(bundleJsonHead, '"description":"', [0xc0, 0xaf], '"}')),
    f('bundle/utf8-overlong-nul.yaml', 'overlong 3-byte NUL (E0 80 80)', () => b(bundleHead, 'description: "', [0xe0, 0x80, 0x80], '"\n')),
    f('bundle/utf8-overlong-4byte.json', 'overlong 4-byte "A" (F0 80 81 81)', () => b(bundleJsonHead, '"description":"', [0xf0, 0x80, 0x81, 0x81], '"}')),
    f('bundle/utf8-lone-continuation.yaml', 'a lone continuation byte (80)', () => b(bundleHead, 'description: a', [0x80], 'b\n')),
    f('bundle/utf8-truncated-sequence.json', 'a 3-byte sequence cut after 2 bytes (E2 82) at the end of a string', () => b(bundleJsonHead, '"description":"', [0xe2, 0x82], '"}')),
    f('bundle/utf8-encoded-surrogate.yaml', 'a UTF-16 surrogate encoded as UTF-8 (ED A0 80, CESU-8)', () => b(bundleHead, 'description: "', [0xed, 0xa0, 0x80], '"\n')),
    f('bundle/utf8-above-10ffff.json', 'a code point above U+10FFFF (F4 90 80 80)', () => b(bundleJsonHead, '"description":"', [0xf4, 0x90, 0x80, 0x80], '"}')),
    f('bundle/utf8-ff-byte.yaml', 'bytes FE and FF, never valid in UTF-8', () => b(bundleHead, 'description: ', [0xfe, 0xff], '\n')),
    f('bundle/utf16le-bom.yaml', 'UTF-16LE with a byte-order mark', () => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(bundleHead, 'utf16le')])),
    f('bundle/utf16be-bom.json', 'UTF-16BE with a byte-order mark', () => Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(bundleJsonHead + '"x":1}', 'utf16le').swap16()])),
    f('bundle/utf32le-bom.json', 'UTF-32LE with a byte-order mark', () => Buffer.from([0xff, 0xfe, 0, 0, 0x7b, 0, 0, 0, 0x7d, 0, 0, 0])),
    f('bundle/nul-bytes.yaml', 'a NUL byte inside a YAML value', () => b('apiVersion: aibox.dev/v1\nkind: PolicyBundle\nmetadata: {name: nul, version: 1.0.0, tier: org, description: a', [0], 'b}\n')),
    f('bundle/esc-in-value.yaml', 'a raw ESC sequence inside a YAML value', () => b('apiVersion: aibox.dev/v1\nkind: PolicyBundle\nmetadata: {name: esc, version: 1.0.0, tier: org, description: "a\u001b[2Jb"}\n')),
    // --- trust policies (loadTrustPolicy)
    f('trust/deep-flow-100k.yaml', 'trust policy nested 100,000 levels', () => b(nest('[', ']', 100_000))),
    f('trust/deep-compact-seq-100k.yaml', 'trust policy "- - - …" nested 100,000 levels', () => b(`${'- '.repeat(100_000)}1\n`)),
    f('trust/many-keys-50k.yaml', '50,000 keys in one mapping (quadratic duplicate checks)', () =>
      b('apiVersion: aibox.dev/v1\nkind: TrustPolicy\n', Array.from({length: 50_000}, (_, i) => `k${i}: ${i}`).join('\n'), '\n'),
    ),
    f('trust/pem-bomb.yaml', 'an inline publicKey of 100,000 unterminated BEGIN lines (quadratic PEM scan)', () =>
      b('apiVersion: aibox.dev/v1\nkind: TrustPolicy\nkeys:\n  k:\n    roles: [author]\n    publicKey: "', '-----BEGIN PUBLIC KEY-----\\n'.repeat(100_000), '"\nscopes: [{name: s, require: {signatures: {author: 1}}}]\n'),
    ),
    f('trust/huge-integer.yaml', 'a 1,000,000-digit integer in a trust policy', () => b(`apiVersion: aibox.dev/v1\nkind: TrustPolicy\nn: ${'9'.repeat(1_000_000)}\n`)),
    f('trust/too-large.yaml', 'a trust policy over the 4 MiB limit', () => b('# ', 'x'.repeat(4 * MiB + 1), '\n')),
    // --- key files (loadPrivateKey / loadPublicKey)
    f('keys/many-begin-lines.key', '1,300 BEGIN lines without END (fits the 64 KiB key limit)', () => b('-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n'.repeat(1300))),
    f('keys/too-large.key', 'a key file over the 64 KiB limit', () => b('-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n', 'A'.repeat(70_000), '\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n')),
    f('keys/binary-garbage.pub', 'random-looking binary bytes as a public key', () => createHash('sha512').update('hostile').digest()),
    f('keys/der-huge-length.pub', 'DER SEQUENCE declaring a 4 GiB length', () => Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00])),
    // --- manifests and indexes, each the tagged ("v1") manifest of a layout (parseManifest, fetch checks)
    d('manifest/deep-1m', 'a manifest nested 1,000,000 levels (under the 4 MiB manifest limit)', (dir) => writeLayoutDir(dir, layoutWithManifest(b(nest('[', ']', 1_000_000))))),
    d('manifest/deep-annotation-100k', 'an annotation value nested 100,000 levels', (dir) =>
      writeLayoutDir(dir, layoutWithManifest(b('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a/b","digest":"', sha256('{}'), '","size":2},"layers":[],"annotations":{"a":', nest('[', ']', 100_000), '}}'))),
    ),
    d('manifest/too-large', 'a manifest blob of 5 MiB, declared with its true size (over the 4 MiB limit)', (dir) =>
      writeLayoutDir(dir, layoutWithManifest(b('{"schemaVersion":2,"annotations":{"a":"', 'x'.repeat(5 * MiB), '"}}'))),
    ),
    d('manifest/declared-huge', 'index.json declares the manifest as 2^50 bytes', (dir) => writeLayoutDir(dir, layoutWithManifest(layoutFiles()[2]!.data, {size: 2 ** 50}))),
    d('manifest/declared-smaller', 'index.json declares the manifest 10 bytes shorter than it is', (dir) => {
      const m = layoutFiles()[2]!.data
      writeLayoutDir(dir, layoutWithManifest(m, {size: m.length - 10}))
    }),
    d('manifest/declared-negative', 'index.json declares a size of -1', (dir) => writeLayoutDir(dir, layoutWithManifest(layoutFiles()[2]!.data, {size: -1}))),
    d('manifest/declared-float', 'index.json declares a size of 452.5', (dir) => writeLayoutDir(dir, layoutWithManifest(layoutFiles()[2]!.data, {size: 452.5}))),
    d('manifest/digest-of-other-blob', "index.json names the config blob's digest with the manifest's media type", (dir) => {
      const files = layoutFiles()
      writeLayoutDir(dir, [...layoutWithManifest(files[2]!.data, {digest: sha256(files[3]!.data), size: files[3]!.data.length}), files[3]!])
    }),
    d('manifest/digest-uppercase', 'index.json names the manifest with an upper-case hex digest', (dir) => {
      const m = layoutFiles()[2]!.data
      writeLayoutDir(dir, layoutWithManifest(m, {digest: `sha256:${sha256(m).slice(7).toUpperCase()}`}))
    }),
    d('manifest/digest-sha512', 'index.json names the manifest by a sha512 digest', (dir) => {
      const m = layoutFiles()[2]!.data
      writeLayoutDir(dir, layoutWithManifest(m, {digest: `sha512:${createHash('sha512').update(m).digest('hex')}`}))
    }),
    d('manifest/digest-traversal', 'index.json names the manifest "sha256:../../../etc/passwd"', (dir) => writeLayoutDir(dir, layoutWithManifest(layoutFiles()[2]!.data, {digest: 'sha256:../../../etc/passwd'}))),
    d('manifest/layer-size-lie', 'the policy layer descriptor says 1 byte more than the blob has', (dir) => {
      const files = layoutFiles()
      const layer = files[4]!.data
      writeLayoutDir(dir, [...layoutWithManifest(policyManifest({size: layer.length + 1})), files[3]!, files[4]!])
    }),
    d('manifest/layer-size-huge', 'the policy layer descriptor declares 2^40 bytes', (dir) => {
      const files = layoutFiles()
      writeLayoutDir(dir, [...layoutWithManifest(policyManifest({size: 2 ** 40})), files[3]!, files[4]!])
    }),
    d('manifest/layer-digest-lie', 'the policy layer descriptor names a digest the blob does not have (the blob file is stored under it)', (dir) => {
      const files = layoutFiles()
      const fake = sha256('another layer')
      writeLayoutDir(dir, [...layoutWithManifest(policyManifest({digest: fake})), files[3]!, {name: `blobs/sha256/${fake.slice(7)}`, data: files[4]!.data}])
    }),
    d('manifest/media-type-lie', 'index.json says image index, the blob is an image manifest', (dir) =>
      writeLayoutDir(dir, layoutWithManifest(layoutFiles()[2]!.data, {mediaType: 'application/vnd.oci.image.index.v1+json'})),
    ),
    d('manifest/many-bad-layers-100k', '100,000 invalid layer descriptors (problems must stay bounded)', (dir) =>
      writeLayoutDir(dir, layoutWithManifest(b('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a/b","digest":"', sha256('{}'), '","size":2},"layers":[', Array(100_000).fill('{"size":-1}').join(','), ']}'))),
    ),
    d('manifest/invalid-utf8', 'a manifest with an invalid UTF-8 byte in an annotation', (dir) =>
      writeLayoutDir(dir, layoutWithManifest(b('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a/b","digest":"', sha256('{}'), '","size":2},"layers":[],"annotations":{"a":"', [0xc0, 0xaf], '"}}'))),
    ),
    d('manifest/proto-keys', 'a manifest with __proto__, constructor and prototype members and annotations', (dir) => {
      const files = layoutFiles()
      const m = JSON.parse(files[2]!.data.toString()) as Record<string, unknown>
      const text = JSON.stringify(m).replace('{', '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"annotations":{"__proto__":"x","constructor":"y","prototype":"z"},')
      writeLayoutDir(dir, [...layoutWithManifest(b(text)), files[3]!, files[4]!])
    }),
    d('manifest/index-15k-entries', 'index.json with 15,000 entries (3 MiB, under the 4 MiB limit)', (dir) => {
      const files = layoutFiles()
      const entry = JSON.parse(files[1]!.data.toString()).manifests[0]
      const index = Buffer.from(JSON.stringify({schemaVersion: 2, manifests: Array.from({length: 15_000}, (_, i) => ({...entry, annotations: {'org.opencontainers.image.ref.name': i === 14_999 ? 'v1' : `t${i}`}}))}))
      writeLayoutDir(dir, [files[0]!, {name: 'index.json', data: index}, ...files.slice(2)])
    }),
    // --- OCI layout directories (LayoutDirStore.open / resolve / fetch)
    d('layout/blobs-symlink-outside', 'blobs/ is a symlink to a directory outside the layout', (dir) => {
      writeLayoutDir(dir, layoutFiles().filter((x) => !x.name.startsWith('blobs/')))
      fs.mkdirSync(`${dir}.outside/sha256`, {recursive: true})
      fs.symlinkSync(`${dir}.outside`, path.join(dir, 'blobs'))
    }),
    d('layout/index-symlink-passwd', 'index.json is a symlink to /etc/passwd', (dir) => {
      writeLayoutDir(dir, layoutFiles().filter((x) => x.name !== 'index.json'))
      fs.symlinkSync('/etc/passwd', path.join(dir, 'index.json'))
    }),
    d('layout/index-fifo', 'index.json is a FIFO (a read would block forever)', (dir) => {
      writeLayoutDir(dir, layoutFiles().filter((x) => x.name !== 'index.json'))
      mkfifo(path.join(dir, 'index.json'))
    }),
    d('layout/blob-fifo', 'the manifest blob is a FIFO', (dir) => {
      const files = layoutFiles()
      writeLayoutDir(dir, files.filter((x) => x !== files[2]))
      mkfifo(path.join(dir, files[2]!.name))
    }),
    d('layout/blob-symlink-devzero', 'the manifest blob is a symlink to /dev/zero (endless data)', (dir) => {
      const files = layoutFiles()
      writeLayoutDir(dir, files.filter((x) => x !== files[2]))
      fs.symlinkSync('/dev/zero', path.join(dir, files[2]!.name))
    }),
    d('layout/blob-wrong-content', 'the manifest blob does not hash to its name', (dir) => {
      const files = layoutFiles()
      writeLayoutDir(dir, files)
      fs.writeFileSync(path.join(dir, files[2]!.name), Buffer.from(files[2]!.data.toString().replace('"layers"', '"layers" ')))
    }),
    d('layout/index-too-large', 'index.json over the 4 MiB limit', (dir) => {
      writeLayoutDir(dir, layoutFiles().filter((x) => x.name !== 'index.json'))
      fs.writeFileSync(path.join(dir, 'index.json'), b('{"schemaVersion":2,"manifests":[],"annotations":{"a":"', 'x'.repeat(5 * MiB), '"}}'))
    }),
    d('layout/index-proto', 'index.json annotations and entries with __proto__ keys', (dir) => {
      const files = layoutFiles()
      writeLayoutDir(dir, files)
      const idx = files[1]!.data.toString().replace('"manifests":[{', '"annotations":{"__proto__":"x"},"manifests":[{"__proto__":{"size":1},')
      fs.writeFileSync(path.join(dir, 'index.json'), idx)
    }),
    d('layout/deep-index-chain-2000', 'index.json → an index chain 2,000 levels deep → a manifest', (dir) => writeLayoutDir(dir, deepIndexLayout(2000))),
    d('layout/oci-layout-version-2', 'oci-layout declares imageLayoutVersion 2.0.0', (dir) => {
      writeLayoutDir(dir, layoutFiles())
      fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}')
    }),
    // --- OCI layout tars (LayoutTarStore.open)
    f('tar/traversal.tar', 'an entry named ../../escape', () => layoutTar([tarEntry({name: '../../escape'}, Buffer.from('x'))])),
    f('tar/traversal-inside.tar', 'an entry named blobs/../../escape', () => layoutTar([tarEntry({name: 'blobs/../../escape'}, Buffer.from('x'))])),
    f('tar/absolute.tar', 'an entry named /etc/cron.d/x', () => layoutTar([tarEntry({name: '/etc/cron.d/x'}, Buffer.from('x'))])),
    f('tar/symlink.tar', 'blobs/sha256/<x> is a symlink to /etc/passwd', () => layoutTar([tarEntry({name: `blobs/sha256/${'a'.repeat(64)}`, type: '2', linkname: '/etc/passwd'})])),
    f('tar/hardlink.tar', 'a hard link to /etc/shadow', () => layoutTar([tarEntry({name: `blobs/sha256/${'b'.repeat(64)}`, type: '1', linkname: '/etc/shadow'})])),
    f('tar/char-device.tar', 'a character device entry', () => layoutTar([tarEntry({name: 'blobs/null', type: '3'})])),
    f('tar/block-device.tar', 'a block device entry', () => layoutTar([tarEntry({name: 'blobs/sda', type: '4'})])),
    f('tar/fifo.tar', 'a FIFO entry', () => layoutTar([tarEntry({name: 'blobs/fifo', type: '6'})])),
    f('tar/duplicate-index.tar', 'index.json twice (the second would silently win on extraction)', () =>
      layoutTar([tarEntry({name: 'index.json'}, Buffer.from('{"schemaVersion":2,"manifests":[]}'))]),
    ),
    f('tar/duplicate-blob-dotslash.tar', 'the same blob twice, once as ./blobs/…', () => {
      const m = layoutFiles()[2]!
      return layoutTar([tarEntry({name: `./${m.name}`}, m.data)])
    }),
    f('tar/pax-path-traversal.tar', 'a PAX header renames a harmless entry to ../../escape', () => layoutTar([paxEntry({path: '../../escape'}), tarEntry({name: 'harmless'}, Buffer.from('x'))])),
    f('tar/pax-global-path.tar', 'a PAX global header sets path=../x for every later entry', () => layoutTar([paxEntry({path: '../x'}, true), tarEntry({name: 'harmless'}, Buffer.from('x'))])),
    f('tar/pax-size-huge.tar', 'a PAX header claims a 10^15-byte size for a blob', () => {
      const m = layoutFiles()[3]!
      return layoutTar([paxEntry({size: '1000000000000000'}), tarEntry({name: `blobs/sha256/${'c'.repeat(64)}`}, m.data)])
    }),
    f('tar/pax-size-negative.tar', 'a PAX header with size=-1', () => layoutTar([paxEntry({size: '-1'}), tarEntry({name: `blobs/sha256/${'c'.repeat(64)}`}, Buffer.from('x'))])),
    f('tar/pax-nul-path.tar', 'a PAX path containing a NUL byte', () => layoutTar([paxEntry({path: 'blobs/sha256/a\u0000b'}), tarEntry({name: 'harmless'}, Buffer.from('x'))])),
    f('tar/gnu-longname-traversal.tar', 'a GNU long-name (L) header naming ../../' + 'x'.repeat(200), () =>
      layoutTar([tarEntry({name: '././@LongLink', type: 'L'}, Buffer.from(`../../${'x'.repeat(200)}\0`)), tarEntry({name: 'harmless'}, Buffer.from('x'))]),
    ),
    f('tar/base256-huge-size.tar', 'a blob whose base-256 size field says 2^62 bytes', () => {
      const size = Buffer.alloc(12)
      size[0] = 0x80
      size.writeBigUInt64BE(2n ** 62n, 4)
      return layoutTar([Buffer.concat([tarHeader({name: `blobs/sha256/${'d'.repeat(64)}`, sizeField: size}), Buffer.alloc(512)])])
    }),
    f('tar/base256-negative-size.tar', 'a blob whose base-256 size field is negative', () => {
      const size = Buffer.alloc(12, 0xff)
      return layoutTar([Buffer.concat([tarHeader({name: `blobs/sha256/${'d'.repeat(64)}`, sizeField: size}), Buffer.alloc(512)])])
    }),
    f('tar/declared-size-beyond-end.tar', 'a blob header declaring 1 GiB in a small file', () =>
      Buffer.concat([layoutTar([], {}).subarray(0, -1024), tarHeader({name: `blobs/sha256/${'e'.repeat(64)}`, size: 1024 * MiB}), Buffer.alloc(512)]),
    ),
    f('tar/truncated-in-data.tar', 'the archive ends in the middle of the manifest blob', () => {
      const full = layoutTar()
      const files = layoutFiles()
      // oci-layout and index.json entries, then the manifest header and half its data.
      const upTo = 512 + pad(files[0]!.data).length + 512 + pad(files[1]!.data).length + 512 + Math.floor(files[2]!.data.length / 2)
      return full.subarray(0, upTo)
    }),
    f('tar/truncated-in-header.tar', 'the archive ends in the middle of a header', () => layoutTar().subarray(0, 512 * 3 + 100)),
    f('tar/bad-checksum.tar', 'a header with a wrong checksum', () => layoutTar([tarEntry({name: 'x', badChecksum: true}, Buffer.from('x'))])),
    f('tar/not-a-tar.tar', 'random bytes', () => Buffer.concat(Array.from({length: 16}, (_, i) => createHash('sha512').update(String(i)).digest()))),
    f('tar/empty.tar', 'an empty file', () => Buffer.alloc(0)),
    f('tar/only-end-marker.tar', 'two zero blocks and nothing else', () => TAR_END),
    f('tar/directory-with-data.tar', 'a directory entry that declares 512 bytes of data hiding a second header (parser differential)', () => {
      const hidden = tarHeader({name: '../../hidden', size: 0})
      return layoutTar([Buffer.concat([tarHeader({name: 'blobs/', type: '5', size: 512}), hidden])])
    }),
    f('tar/entry-after-end-marker.tar', 'an entry hidden after the end-of-archive marker (GNU tar stops at the marker)', () => Buffer.concat([layoutTar(), tarEntry({name: 'hidden.sh'}, Buffer.from('x')), TAR_END])),
    f('tar/blob-wrong-content.tar', 'a blob whose content does not hash to its name', () => {
      const files = layoutFiles()
      return Buffer.concat([...files.map((x, i) => tarEntry({name: x.name}, i === 4 ? Buffer.from('{"apiVersion":"evil.example/v1"}') : x.data)), TAR_END])
    }),
    f('tar/index-names-missing-blob.tar', 'index.json names a manifest that is not in the archive', () => layoutTar([], {skip: [layoutFiles()[2]!.name]})),
    f('tar/unexpected-entry.tar', 'an entry outside the OCI layout (run.sh)', () => layoutTar([tarEntry({name: 'run.sh', mode: 0o755}, Buffer.from('#!/bin/sh\nrm -rf ~\n'))])),
    f('tar/oci-layout-huge.tar', 'oci-layout declaring 8 MiB', () => layoutTar([], {skip: ['oci-layout'], before: [tarEntry({name: 'oci-layout'}, Buffer.alloc(8 * MiB, 0x20))]})),
    f('tar/deep-index-chain-2000.tar', 'an index chain 2,000 levels deep', () => Buffer.concat([...deepIndexLayout(2000).map((x) => tarEntry({name: x.name}, x.data)), TAR_END])),
    f('tar/many-entries.tar', '2,001 directory entries (opened with maxEntries 2,000)', () =>
      layoutTar(Array.from({length: 2001}, () => tarEntry({name: 'blobs/sha256/', type: '5'}))),
    ),
    f('tar/zstd.tar.zst', 'zstd magic bytes (unsupported compression)', () => Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64)])),
    f('tar/gzip-bomb.tar.gz', 'gzip members expanding to a 256 MiB blob of zeros (about 1000:1)', () => {
      // gzip members may be concatenated (RFC 1952 §2.2): one member of 1 MiB of zeros, repeated.
      const zeros = zlib.gzipSync(Buffer.alloc(MiB), {level: 9})
      const head = zlib.gzipSync(Buffer.concat([layoutTar().subarray(0, -1024), tarHeader({name: `blobs/sha256/${'f'.repeat(64)}`, size: 256 * MiB})]))
      return Buffer.concat([head, ...Array<Buffer>(256).fill(zeros), zlib.gzipSync(TAR_END)])
    }),
    f('tar/gzip-truncated.tar.gz', 'a gzip stream cut in half', () => {
      const gz = zlib.gzipSync(layoutTar())
      return gz.subarray(0, Math.floor(gz.length / 2))
    }),
    f('tar/gzip-corrupt.tar.gz', 'a gzip stream with corrupted deflate data', () => {
      const gz = Buffer.from(zlib.gzipSync(layoutTar()))
      for (let i = 20; i < gz.length - 8; i += 7) gz[i] ^= 0x5a
      return gz
    }),
    // --- sealed exports for aibox import (edits of testdata/hostile/import/sealed.tar)
    f('import/symlink-layer.tar', 'the policy layer is a symlink to /etc/passwd', () =>
      sealedTar((s) => s.entries.map((e) => (e.name === `blobs/sha256/${s.layer.slice(7)}` ? tarEntry({name: e.name, type: '2', linkname: '/etc/passwd'}) : e))),
    ),
    f('import/hardlink-layer.tar', 'the policy layer is a hard link to index.json', () =>
      sealedTar((s) => s.entries.map((e) => (e.name === `blobs/sha256/${s.layer.slice(7)}` ? tarEntry({name: e.name, type: '1', linkname: 'index.json'}) : e))),
    ),
    f('import/duplicate-layer.tar', 'the policy layer twice, the second with other bytes (the last would win on extraction)', () =>
      sealedTar((s) => {
        const layer = s.entries.find((e) => e.name === `blobs/sha256/${s.layer.slice(7)}`)!
        return [...s.entries, {...layer, data: Buffer.from(layer.data.toString('utf8').replace('foundry.internal', 'foundry.attacker'))}]
      }),
    ),
    f('import/index-lists-absent-manifest.tar', 'index.json (and the seal) list the policy manifest, which is not in the archive', () =>
      sealedTar((s) => s.entries.filter((e) => e.name !== `blobs/sha256/${s.manifest.slice(7)}`)),
    ),
    f('import/oversized-entry.tar', 'an extra blob entry whose header declares 8 GiB', () =>
      sealedTar((s) => [...s.entries, tarEntry({name: `blobs/sha256/${'e'.repeat(64)}`, size: 8 * 1024 * MiB}, Buffer.from('x'))]),
    ),
    f('import/oversized-index.tar', 'index.json padded to 5 MiB', () =>
      sealedTar((s) => s.entries.map((e) => (e.name === 'index.json' ? {...e, data: Buffer.concat([e.data, Buffer.alloc(5 * MiB, 0x20)])} : e))),
    ),
    f('import/seal-extra-tag.tar', 'index.json tags the policy "latest", a tag the seal does not give it', () =>
      sealedTar((s) => withIndex(s, [...s.index.manifests, {...s.index.manifests.find((m) => m.digest === s.manifest)!, annotations: {'org.opencontainers.image.ref.name': 'latest'}}])),
    ),
    f('import/seal-moved-tag.tar', 'index.json moves "stable" to the signature manifest (the seal gives it the policy)', () =>
      sealedTar((s) =>
        withIndex(
          s,
          s.index.manifests.map((m) => (m.annotations?.['org.opencontainers.image.ref.name'] === 'stable' ? {...s.index.manifests.find((x) => x.digest === s.signature)!, annotations: {'org.opencontainers.image.ref.name': 'stable'}} : m)),
        ),
      ),
    ),
    // --- audit log lines (verifyChain, readAuditLog, exportAudit)
    f('audit/deep-field.jsonl', 'an entry with a field nested 20,000 levels (64 KiB line)', () => b(auditLine(`"x":${nest('[', ']', 20_000)}`), '\n')),
    f('audit/huge-line.jsonl', 'an entry of 8 MiB (aibox never writes more than 64 KiB)', () => b(auditLine(`"x":"${'x'.repeat(8 * MiB)}"`), '\n')),
    f('audit/invalid-utf8.jsonl', 'an entry with an invalid UTF-8 byte', () => b(auditLine('"x":"', false), [0xc0, 0xaf], '"}\n')),
    // --- docker config.json (loadDockerConfig), as a DOCKER_CONFIG directory
    d('docker-config/deep', 'config.json nested 100,000 levels under auths', (dir) => fs.writeFileSync(path.join(dir, 'config.json'), b('{"auths":', nest('{"a":', '}', 100_000, '{}'), '}'))),
    d('docker-config/huge', 'a 64 MiB config.json', (dir) => fs.writeFileSync(path.join(dir, 'config.json'), b('{"auths":{"x.example.com":{"auth":"', 'A'.repeat(64 * MiB), '"}}}'))),
    d('docker-config/devzero', 'config.json is a symlink to /dev/zero (endless data)', (dir) => fs.symlinkSync('/dev/zero', path.join(dir, 'config.json'))),
    d('docker-config/proto', 'auths keyed "__proto__" and "constructor"', (dir) =>
      fs.writeFileSync(path.join(dir, 'config.json'), '{"auths":{"__proto__":{"auth":"eDp5"},"constructor":{"auth":"eDp5"}},"credHelpers":{"__proto__":"x"}}'),
    ),
    d('docker-config/helper-traversal', 'credHelpers names a helper "../../bin/sh" for every registry', (dir) =>
      fs.writeFileSync(path.join(dir, 'config.json'), '{"credHelpers":{"127.0.0.1":"../../../bin/sh"},"credsStore":"../../../bin/sh"}'),
    ),
    // --- more policy documents: size and file-type limits
    f('bundle/too-large.yaml', 'YAML over the 16 MiB YAML limit (a comment)', () => b('# ', 'x'.repeat(16 * MiB), '\n')),
    d('bundle/link-to-devzero', 'policy.yaml is a symlink to /dev/zero (stat says 0 bytes; the data never ends)', (dir) => fs.symlinkSync('/dev/zero', path.join(dir, 'policy.yaml'))),
    // --- encrypted key files: absurd scrypt parameters must be refused before scrypt allocates (128·N·r bytes)
    f('keys/scrypt-N-2^30.key', 'scrypt N=2^30 (128 GiB of scrypt memory)', () => encryptedKey({N: 2 ** 30})),
    f('keys/scrypt-N-2^20.key', 'scrypt N=2^20 (1 GiB, above what cosign accepts)', () => encryptedKey({N: 2 ** 20})),
    f('keys/scrypt-r-2^20.key', 'scrypt r=2^20', () => encryptedKey({r: 2 ** 20})),
    f('keys/scrypt-p-2^30.key', 'scrypt p=2^30 (CPU for days)', () => encryptedKey({p: 2 ** 30})),
    f('keys/scrypt-N-not-power-of-2.key', 'scrypt N=65537', () => encryptedKey({N: 65537})),
    f('keys/scrypt-N-negative.key', 'scrypt N=-65536', () => encryptedKey({N: -65536})),
    f('keys/scrypt-N-float.key', 'scrypt N=65536.5', () => encryptedKey({N: 65536.5})),
    f('keys/scrypt-N-string.key', 'scrypt N="65536"', () => encryptedKey({N: '65536'})),
    f('keys/scrypt-N-huge-literal.key', 'scrypt N=1e400 (Infinity once parsed)', () => encryptedKey({}, (json) => json.replace('"N":65536', '"N":1e400'))),
    f('keys/scrypt-N-deep.key', 'scrypt N is a list nested 12,000 levels (printing it with JSON.stringify overflowed the stack)', () => encryptedKey({}, (json) => json.replace('"N":65536', `"N":${nest('[', ']', 12_000)}`))),
    f('keys/scrypt-params-missing.key', 'no kdf.params', () => encryptedKey({}, (json) => json.replace(/"params":\{[^}]*\},/, ''))),
    f('keys/kdf-argon2.key', 'kdf "argon2id"', () => encryptedKey({}, (json) => json.replace('"name":"scrypt"', '"name":"argon2id"'))),
    f('keys/cipher-unknown.key', 'cipher "aes-256-gcm"', () => encryptedKey({}, (json) => json.replace('"nacl/secretbox"', '"aes-256-gcm"'))),
    f('keys/nonce-short.key', 'a 12-byte nonce (nacl/secretbox needs 24)', () => encryptedKey({nonce: Buffer.alloc(12, 1)})),
    f('keys/salt-30k.key', 'a 30 KiB salt (scrypt is still run with cosign parameters; the password is wrong)', () => encryptedKey({salt: Buffer.alloc(30_000, 7)})),
    f('keys/proto-body.key', 'the key JSON has "__proto__" and "constructor" members', () => encryptedKey({}, (json) => json.replace('{', '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},'))),
    f('keys/body-not-json.key', 'the PEM body is not JSON', () => pem('ENCRYPTED SIGSTORE PRIVATE KEY', Buffer.from('\u0000\u0001 not json'))),
    f('keys/body-deep-json.key', 'the PEM body is JSON nested 20,000 levels (fits 64 KiB once base64-encoded)', () => pem('ENCRYPTED SIGSTORE PRIVATE KEY', b(nest('[', ']', 20_000)))),
    f('keys/begin-end-mismatch.key', 'BEGIN and END labels differ', () => b('-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END PUBLIC KEY-----\n')),
  ]
  return items
}

/** A well-formed first audit line (seq 1, genesis prev) with extra members appended. */
export function auditLine(extra: string, close = true): string {
  const base = `{"seq":1,"time":"2025-01-01T00:00:00.000Z","event":"policy.loaded","actor":"hostile","ref":null,"digest":null,"version":null,"prev":"sha256:${'0'.repeat(64)}"`
  return `${base},${extra}${close ? '}' : ''}`
}

function mkfifo(file: string): void {
  // node has no mkfifo(3); the coreutils program is everywhere the tests run (Debian).
  const {status} = spawnSync('mkfifo', [file])
  if (status !== 0) throw new Error(`mkfifo ${file} failed`)
}


/** Writes one generated item under `root` (files sparse-extended for "too-large" items). */
export function materialize(item: GeneratedItem, root: string): string {
  const target = path.join(root, item.path)
  fs.mkdirSync(path.dirname(target), {recursive: true})
  if (item.kind === 'dir') {
    fs.mkdirSync(target, {recursive: true})
    item.make(target)
    return target
  }
  const data = item.make()
  fs.writeFileSync(target, data)
  if (item.path === 'bundle/too-large.json') fs.truncateSync(target, 256 * MiB + 1)
  return target
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [out, filter] = process.argv.slice(2)
  if (!out) {
    console.error('usage: node --import tsx scripts/gen-hostile.ts OUTDIR [FILTER]')
    process.exit(1)
  }
  for (const item of generated()) {
    if (filter && !item.path.includes(filter)) continue
    const p = materialize(item, out)
    console.log(`${item.path}\t${item.why}\t${p}`)
  }
}

/**
 * Fuzz targets: the parsers that read untrusted bytes, each with a fast-check generator of
 * hostile inputs and the invariant every input must keep (README "Reliability and security
 * testing"):
 *
 * - only AiboxError subclasses are thrown (never TypeError, RangeError, a raw Node error or a
 *   library's own error): a user always gets a code and a message;
 * - bounded work: each input costs less than the target's CPU budget (CPU time, not wall time,
 *   so a loaded machine does not produce false alarms);
 * - Object.prototype, Array.prototype and Function.prototype are unchanged afterwards.
 *
 * Inputs are bytes (Buffer) for every target, so a failing input is saved as a plain file under
 * testdata/hostile/regressions/<target>/ and replayed by test/unit/fuzz/fuzz.test.ts.
 *
 * @jazzer.js/core was tried first (coverage-guided): 4.0.0's prebuilt binary needs glibc 2.38
 * (Debian 12 has 2.36) and 2.1.0 downloads its binary from GitHub at install time, so neither
 * runs here; fast-check generates structure-aware inputs and mutations of real seeds instead.
 */
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'

import fc from 'fast-check'

import {type TarHeaderSpec, layoutFiles, layoutTar, paxEntry, sha256, tarEntry, tarHeader, TAR_END} from '../../scripts/gen-hostile.js'
import {parseLine} from '../../src/audit/entry.js'
import {loadBundleText} from '../../src/bundle/load.js'
import {AiboxError} from '../../src/errors.js'
import {parseManifest} from '../../src/oci/manifest.js'
import {parseReference} from '../../src/oci/reference.js'
import {parseIndexJson} from '../../src/oci/stores/layout-dir.js'
import {LayoutTarStore} from '../../src/oci/stores/layout-tar.js'
import {parsePrivateKey, parsePublicKey} from '../../src/sign/keys.js'
import {parseTrustPolicy} from '../../src/trust/policy.js'
import {TESTDATA} from '../helpers/cli.js'
import {tmpdir} from '../helpers/tmp.js'

export interface FuzzTarget {
  name: string
  /** What it feeds and to which function. */
  about: string
  arbitrary: fc.Arbitrary<Buffer>
  run(input: Buffer): Promise<void> | void
  /** CPU budget per input in ms. */
  maxCpuMs: number
  /** Runs per target in the short deterministic run of `make test`. */
  quickRuns: number
}

// ------------------------------------------------------------------ mutation of real seeds

type Mutation =
  | {op: 'flip'; at: number; byte: number}
  | {op: 'insert'; at: number; token: string; times: number}
  | {op: 'delete'; at: number; len: number}
  | {op: 'duplicate'; at: number; len: number}

function mutationArb(dictionary: string[]): fc.Arbitrary<Mutation> {
  const at = fc.double({min: 0, max: 1, noNaN: true})
  return fc.oneof(
    fc.record({op: fc.constant('flip' as const), at, byte: fc.integer({min: 0, max: 255})}),
    fc.record({op: fc.constant('insert' as const), at, token: fc.constantFrom(...dictionary), times: fc.oneof(fc.constant(1), fc.integer({min: 1, max: 8}), fc.integer({min: 100, max: 3000}))}),
    fc.record({op: fc.constant('delete' as const), at, len: fc.integer({min: 1, max: 64})}),
    fc.record({op: fc.constant('duplicate' as const), at, len: fc.integer({min: 1, max: 200})}),
  )
}

function mutate(seed: Buffer, mutations: Mutation[]): Buffer {
  let b = seed
  for (const m of mutations) {
    const i = Math.min(b.length, Math.floor(m.at * (b.length + 1)))
    switch (m.op) {
      case 'flip':
        if (b.length > 0) {
          b = Buffer.from(b)
          b[Math.min(i, b.length - 1)] = m.byte
        }
        break
      case 'insert':
        b = Buffer.concat([b.subarray(0, i), Buffer.from(m.token.repeat(m.times), 'utf8'), b.subarray(i)])
        break
      case 'delete':
        b = Buffer.concat([b.subarray(0, i), b.subarray(i + m.len)])
        break
      case 'duplicate':
        b = Buffer.concat([b.subarray(0, i + m.len), b.subarray(i)])
        break
    }
  }
  return b
}

/** A seed file with up to `max` mutations applied. */
function mutated(seeds: Buffer[], dictionary: string[], max = 6): fc.Arbitrary<Buffer> {
  return fc.tuple(fc.constantFrom(...seeds), fc.array(mutationArb(dictionary), {minLength: 1, maxLength: max})).map(([s, ms]) => mutate(s, ms))
}

const readSeed = (...p: string[]) => fs.readFileSync(path.join(TESTDATA, ...p))

/** Random bytes, text and Unicode (lone surrogates included: fc's 'binary' units). */
const noise = fc.oneof(
  fc.uint8Array({maxLength: 2048}).map((a) => Buffer.from(a)),
  fc.string({unit: 'binary', maxLength: 512}).map((s) => Buffer.from(s, 'utf8')),
  fc.string({unit: fc.constantFrom('{', '}', '[', ']', ':', ',', '"', '-', ' ', '\n', '&a', '*a', '!', '#', "'", '0', 'a', '\\')
    , maxLength: 400}).map((s) => Buffer.from(s)),
)

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype']

/** JSON values with hostile keys and scalars, for structure-aware documents. */
const hostileJson = fc.letrec((tie) => ({
  value: fc.oneof(
    {depthSize: 'small', withCrossShrink: true},
    fc.constantFrom<unknown>(null, true, false, 0, -0, 1e308, 2 ** 53, -(2 ** 53) - 2, 0.1, '', '\ud800', '\u0000', '\u001b[2J', 'x'.repeat(300)),
    fc.string(),
    fc.integer(),
    fc.double(),
    fc.array(tie('value'), {maxLength: 4}),
    fc.dictionary(fc.oneof(fc.constantFrom(...PROTO_KEYS, 'apiVersion', 'kind', 'metadata', 'rules', 'policy', 'version', 'name', 'tier', '<<'), fc.string({maxLength: 8})), tie('value'), {maxKeys: 5}),
  ),
})).value

// ------------------------------------------------------------------ targets

/** Runs every parser on the input; rethrows the first error that is not an AiboxError (else the first error). */
async function each(...fns: Array<() => unknown>): Promise<void> {
  const errors: unknown[] = []
  for (const f of fns) {
    try {
      await f()
    } catch (err) {
      errors.push(err)
    }
  }
  const bad = errors.find((e) => !(e instanceof AiboxError)) ?? errors[0]
  if (bad !== undefined) throw bad
}

const BUNDLE_TOKENS = [
  '[', ']', '{', '}', '- ', ': ', ',', '"', "'", '\n', '  ', '\t', '&a ', '*a', '!!binary ', '!!python/object ', '<<: ', '? ', '|', '>', '%YAML 1.1\n', '---\n', '...\n',
  '"\\ud800"', '"\\udc00"', '\\u0000', '__proto__', 'constructor', 'prototype', '99999999999999999999999', '1e999', '-0', '.nan', '0x7f', '\u00e9', '\ufeff', '\u0000', '\u001b[2J', '#',
]

const bundleSeeds = [
  readSeed('bundles', 'org', 'baseline.yaml'),
  readSeed('bundles', 'org', 'baseline.json'),
  readSeed('bundles', 'teams', 'alpha', 'policy.yaml'),
  readSeed('bundles', 'bad', 'alias-bomb.yaml'),
  readSeed('bundles', 'bad', 'duplicate-keys.json'),
  readSeed('hostile', 'bundle', 'proto-pollution.yaml'),
]

function bundleTarget(format: 'yaml' | 'json'): FuzzTarget {
  return {
    name: `bundle-${format}`,
    about: `loadBundleText(bytes, {format: '${format}'}): strict ${format.toUpperCase()} parse, schema, semantic checks`,
    arbitrary: fc.oneof(
      {weight: 6, arbitrary: mutated(bundleSeeds, BUNDLE_TOKENS)},
      {weight: 2, arbitrary: hostileJson.map((v) => Buffer.from(JSON.stringify(v) ?? 'null'))},
      {weight: 2, arbitrary: noise},
    ),
    run(input) {
      loadBundleText(input, `fuzz.${format}`, {format})
    },
    maxCpuMs: 3000,
    quickRuns: format === 'yaml' ? 60 : 200,
  }
}

const KEY_TOKENS = ['-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n', '-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n', '-----BEGIN PUBLIC KEY-----\n', '-----END PUBLIC KEY-----\n', '\n', '=', 'A', '/', 'Proc-Type: 4,ENCRYPTED\n']

/** Encrypted-key JSON with arbitrary kdf/cipher fields, PEM-wrapped. */
const keyEnvelope = fc
  .record({
    N: fc.oneof(fc.constantFrom<unknown>(32768, 65536, 131072, 2 ** 30, 2 ** 53, -1, 0, 1.5, '65536', null, 1e400), fc.integer()),
    r: fc.oneof(fc.constantFrom<unknown>(8, 0, 2 ** 20, -8, '8'), fc.integer()),
    p: fc.oneof(fc.constantFrom<unknown>(1, 0, 2 ** 30, '1'), fc.integer()),
    salt: fc.oneof(fc.constant('AAAA'), fc.base64String({maxLength: 64}), fc.string({maxLength: 20})),
    nonce: fc.oneof(fc.constant(Buffer.alloc(24, 1).toString('base64')), fc.base64String({maxLength: 48}), fc.string({maxLength: 10})),
    ct: fc.oneof(fc.constant(Buffer.alloc(48, 9).toString('base64')), fc.base64String({maxLength: 200})),
    kdf: fc.constantFrom<unknown>('scrypt', 'argon2', '__proto__', null),
  })
  .map(({N, r, p, salt, nonce, ct, kdf}) => {
    // Only cosign's three parameter sets reach scrypt (N=32768 and 65536 are tens of milliseconds).
    const json = JSON.stringify({kdf: {name: kdf, params: {N, r, p}, salt}, cipher: {name: 'nacl/secretbox', nonce}, ciphertext: ct}).replace('1e+400', '1e400')
    return Buffer.from(`-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${Buffer.from(json).toString('base64').replace(/.{64}/g, '$&\n')}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`)
  })

const keySeeds = ['alice.key', 'alice.pub', 'bob.key', 'mallory.pub'].map((f) => readSeed('trust', 'keys', f))

const keyTarget: FuzzTarget = {
  name: 'key-file',
  about: 'parsePrivateKey (encrypted cosign keys, with a wrong password) and parsePublicKey (PEM, SPKI DER)',
  arbitrary: fc.oneof({weight: 4, arbitrary: mutated(keySeeds, KEY_TOKENS)}, {weight: 4, arbitrary: keyEnvelope}, {weight: 2, arbitrary: noise}),
  run: (input) =>
    each(
      () => parsePrivateKey(input.toString('utf8'), 'fuzz.key', {password: 'not-the-password', allowPlaintext: true}),
      () => parsePublicKey(input, 'fuzz.pub'),
    ),
  // A well-formed key with cosign's parameters runs scrypt (N=131072: ~0.3 s) once.
  maxCpuMs: 3000,
  quickRuns: 30,
}

const MANIFEST_TOKENS = ['{', '}', '[', ']', '"', ',', ':', '"mediaType":', '"digest":"sha256:', '"size":', '-1', '1e400', '9007199254740993', '"manifests":[', '"layers":[', '"config":', '"subject":', '"annotations":{', '"__proto__":', '"urls":["file:///etc/passwd"]', '\u0000', '\\ud800', 'null']

const manifestSeeds = [layoutFiles()[2]!.data, layoutFiles()[1]!.data]

/** Descriptors with arbitrary (often wrong) fields, inside manifests and indexes. */
const descriptor = fc.record(
  {
    mediaType: fc.oneof(fc.constantFrom('application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'a/b', '', 'not a type'), fc.string({maxLength: 20})),
    digest: fc.oneof(fc.constant(sha256('x')), fc.constant(`sha256:${'A'.repeat(64)}`), fc.constant('sha256:../../etc/passwd'), fc.constant(`sha512:${'a'.repeat(128)}`), fc.string({maxLength: 80})),
    size: fc.oneof(fc.integer({min: -2, max: 2 ** 31}), fc.constantFrom<unknown>(2 ** 53, 2 ** 60, 1.5, '1', null)),
    annotations: fc.dictionary(fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({maxLength: 10})), fc.oneof(fc.string({maxLength: 10}), hostileJson), {maxKeys: 3}),
    artifactType: fc.string({maxLength: 20}),
    urls: fc.array(fc.string({maxLength: 20}), {maxLength: 2}),
  },
  {requiredKeys: []},
)

const structuredManifest = fc
  .record(
    {
      schemaVersion: fc.constantFrom<unknown>(2, 1, '2', null),
      mediaType: fc.constantFrom<unknown>('application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', 7),
      config: descriptor,
      layers: fc.array(descriptor, {maxLength: 4}),
      manifests: fc.array(descriptor, {maxLength: 4}),
      subject: descriptor,
      annotations: fc.dictionary(fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({maxLength: 10})), fc.string({maxLength: 10}), {maxKeys: 3}),
    },
    {requiredKeys: []},
  )
  .map((m) => Buffer.from(JSON.stringify(m)))

const manifestTarget: FuzzTarget = {
  name: 'manifest',
  about: 'parseManifest (image manifests and indexes, no descriptor) and parseIndexJson (a layout index.json)',
  arbitrary: fc.oneof({weight: 4, arbitrary: structuredManifest}, {weight: 4, arbitrary: mutated(manifestSeeds, MANIFEST_TOKENS)}, {weight: 2, arbitrary: noise}),
  run: (input) =>
    each(
      () => parseManifest(input),
      () => parseIndexJson(input, 'fuzz index.json'),
    ),
  maxCpuMs: 1500,
  quickRuns: 250,
}

const REF_PIECES = ['127.0.0.1:5000', 'localhost', 'registry.example.com', '[::1]:5000', 'docker.io', '/', 'policies', 'org', ':', '@', 'sha256:', 'a'.repeat(64), '..', '.', '%2e', '-', '_', '__', 'oci:', 'oci-archive:', 'v1.0', '\u0000', '\u001b', '\r\n', ' ', 'A', '\u043e', '\ud800', 'x'.repeat(130)]

const referenceTarget: FuzzTarget = {
  name: 'reference',
  about: 'parseReference (registry, oci: and oci-archive: references)',
  arbitrary: fc.oneof(
    {weight: 6, arbitrary: fc.array(fc.constantFrom(...REF_PIECES), {maxLength: 12}).map((p) => Buffer.from(p.join(''), 'utf8'))},
    {weight: 2, arbitrary: fc.string({unit: 'binary', maxLength: 300}).map((s) => Buffer.from(s, 'utf8'))},
    {weight: 1, arbitrary: fc.integer({min: 200, max: 200_000}).map((n) => Buffer.from(`127.0.0.1:5000/${'a/'.repeat(n)}a`))},
  ),
  run(input) {
    parseReference(input.toString('utf8'))
  },
  maxCpuMs: 500,
  quickRuns: 400,
}

const trustSeeds = [readSeed('trust', 'example.yaml'), readSeed('hostile', 'trust', 'redos-glob.yaml'), readSeed('hostile', 'trust', 'proto-keys.yaml')]

const trustTarget: FuzzTarget = {
  name: 'trust-policy',
  about: 'parseTrustPolicy (strict YAML, schema, key references resolved next to testdata/trust/example.yaml)',
  arbitrary: fc.oneof({weight: 8, arbitrary: mutated(trustSeeds, [...BUNDLE_TOKENS, 'path: /dev/zero', 'path: ../../../etc/passwd', '**a', 'publicKey: "-----BEGIN PUBLIC KEY-----\\n"'])}, {weight: 2, arbitrary: noise}),
  run(input) {
    parseTrustPolicy(input.toString('utf8'), path.join(TESTDATA, 'trust', 'fuzz.yaml'))
  },
  maxCpuMs: 3000,
  quickRuns: 40,
}

const auditTarget: FuzzTarget = {
  name: 'audit-line',
  about: 'parseLine (one audit log line)',
  arbitrary: fc.oneof(mutated([Buffer.from(readSeed('hostile', 'audit', 'terminal-escapes.jsonl').toString().trim())], MANIFEST_TOKENS), noise),
  run(input) {
    parseLine(input)
  },
  maxCpuMs: 500,
  quickRuns: 200,
}

// ------------------------------------------------------------------ the layout tar reader

const TAR_NAMES = ['oci-layout', 'index.json', 'blobs/', 'blobs/sha256/', `blobs/sha256/${'a'.repeat(64)}`, `./blobs/sha256/${sha256('{}').slice(7)}`, '../x', '/etc/x', 'blobs/../x', 'blobs//x', 'x\\y', 'blobs/sha512/a', '', '.', 'ingest/']
const TAR_TYPES = ['0', '1', '2', '3', '4', '5', '6', '7', 'x', 'g', 'L', 'K', 'S', 'V', '\u0000', 'Z']

const tarSpec: fc.Arbitrary<Buffer> = fc
  .record({
    name: fc.oneof(fc.constantFrom(...TAR_NAMES), fc.string({maxLength: 40})),
    type: fc.constantFrom(...TAR_TYPES),
    linkname: fc.oneof(fc.constant(''), fc.constantFrom('/etc/passwd', '../x', 'index.json')),
    declared: fc.oneof(fc.constant(undefined), fc.integer({min: 0, max: 4096}), fc.constantFrom(2 ** 33, 2 ** 40)),
    data: fc.uint8Array({maxLength: 700}),
    pax: fc.option(fc.dictionary(fc.constantFrom('path', 'size', 'linkpath', 'mtime', 'uid'), fc.oneof(fc.constantFrom('../x', '-1', '1e15', 'blobs/sha256/a\u0000b', 'index.json'), fc.string({maxLength: 12})), {maxKeys: 2}), {nil: undefined}),
    badChecksum: fc.boolean(),
  })
  .map(({name, type, linkname, declared, data, pax, badChecksum}) => {
    const h: TarHeaderSpec = {name, type, linkname: linkname || undefined, badChecksum: badChecksum && name.length % 7 === 0}
    const body = Buffer.from(data)
    const entry =
      declared === undefined
        ? tarEntry(h, body)
        : Buffer.concat([tarHeader({...h, size: declared}), body, Buffer.alloc((512 - (body.length % 512)) % 512)])
    return pax ? Buffer.concat([paxEntry(pax), entry]) : entry
  })

const structuredTar = fc
  .record({extra: fc.array(tarSpec, {maxLength: 4}), skip: fc.subarray(['oci-layout', 'index.json', layoutFiles()[2]!.name]), before: fc.array(tarSpec, {maxLength: 2}), end: fc.boolean()})
  .map(({extra, skip, before, end}) => {
    const t = layoutTar(extra, {skip, before})
    return end ? t : t.subarray(0, t.length - TAR_END.length)
  })

const tarArbitrary = fc
  .tuple(fc.oneof({weight: 5, arbitrary: structuredTar}, {weight: 4, arbitrary: mutated([layoutTar()], ['\u0000', 'x', '0', '7', '../', '\u00ff'], 8)}, {weight: 1, arbitrary: noise}), fc.boolean(), fc.boolean())
  .map(([tar, gzip, cut]) => {
    const z = gzip ? zlib.gzipSync(tar) : tar
    return cut ? z.subarray(0, Math.floor(z.length * 0.7)) : z
  })

let tarDir: string | undefined
let tarCount = 0

const tarTarget: FuzzTarget = {
  name: 'layout-tar',
  about: 'LayoutTarStore.open on an archive file, then tags, resolve and fetch of every tag (plain and gzip)',
  arbitrary: tarArbitrary,
  async run(input) {
    tarDir ??= tmpdir('aibox-fuzz-tar-')
    const file = path.join(tarDir, `${process.pid}-${tarCount++}.tar`)
    fs.writeFileSync(file, input)
    let store: LayoutTarStore | undefined
    try {
      store = await LayoutTarStore.open(file, {tmpDir: tarDir, limits: {maxEntries: 64, maxTotalBytes: 64 * 1024 * 1024}})
      for (const tag of await store.tags()) {
        const d = await store.resolve(tag)
        const s = await store.fetch(d)
        for await (const _ of s) {
          // read it all: fetch verifies while streaming
        }
      }
    } finally {
      await store?.close()
      fs.rmSync(file, {force: true})
    }
  },
  maxCpuMs: 3000,
  quickRuns: 60,
}

export const TARGETS: FuzzTarget[] = [bundleTarget('yaml'), bundleTarget('json'), keyTarget, manifestTarget, referenceTarget, trustTarget, auditTarget, tarTarget]

// ------------------------------------------------------------------ the invariant

const WATCHED = {Object: Object.prototype, Array: Array.prototype, Function: Function.prototype}
const before = Object.fromEntries(Object.entries(WATCHED).map(([n, p]) => [n, new Set(Reflect.ownKeys(p))]))

/** Runs one input; returns what broke the invariant, or undefined. */
export async function violation(target: FuzzTarget, input: Buffer): Promise<string | undefined> {
  const cpu = process.cpuUsage()
  let problem: string | undefined
  try {
    await target.run(input)
  } catch (err) {
    if (!(err instanceof AiboxError)) {
      const e = err as Error
      problem = `threw ${e?.constructor?.name ?? typeof err} (not an AiboxError): ${e?.message ?? String(err)}\n${e?.stack?.split('\n').slice(1, 6).join('\n') ?? ''}`
    } else if (/\bundefined\b|\[object Object\]/.test(err.message) && !/undefined|object Object/.test(input.toString('latin1'))) {
      problem = `AiboxError ${err.code} with a broken message: ${err.message.slice(0, 300)}`
    }
  }
  const used = process.cpuUsage(cpu)
  const ms = (used.user + used.system) / 1000
  if (!problem && ms > target.maxCpuMs) problem = `took ${ms.toFixed(0)} ms of CPU (budget ${target.maxCpuMs} ms)`
  for (const [n, p] of Object.entries(WATCHED)) {
    for (const k of Reflect.ownKeys(p)) {
      if (!before[n]!.has(k)) {
        problem ??= `polluted ${n}.prototype.${String(k)}`
        delete (p as Record<PropertyKey, unknown>)[k]
      }
    }
  }
  return problem
}

/** The regression inputs saved for `target` (testdata/hostile/regressions/<name>/*). */
export function regressions(target: FuzzTarget): {file: string; input: Buffer}[] {
  const dir = path.join(TESTDATA, 'hostile', 'regressions', target.name)
  if (!fs.existsSync(dir)) return []
  return fs
    .readdirSync(dir)
    .filter((f) => !f.startsWith('.') && f !== 'README.md')
    .sort()
    .map((f) => ({file: path.join(dir, f), input: fs.readFileSync(path.join(dir, f))}))
}

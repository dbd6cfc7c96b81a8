/**
 * Signing and verification overhead of src/sign against node:crypto measured in the same run.
 *
 * What we watch is the library's overhead (statement building, DSSE PAE, @sigstore/sign
 * builder, bundle JSON, @sigstore/verify), not crypto speed: each line prints our ops/s, the raw
 * node:crypto sign/verify rate over the same PAE bytes with the same cached KeyObject, and the
 * ratio. Key loading (scrypt N=65536, then N=32768) is timed separately: it dominates a
 * one-shot `aibox sign` / `key public`.
 *
 * The four measurements of a key type are interleaved over ROUNDS rounds and each reports its
 * median, so that load on the machine hits baseline and library alike.
 *
 * Run: node --import tsx bench/sign.bench.ts   (BENCH_SECONDS=0.3 per measurement, BENCH_ROUNDS=7)
 */
import {createHash, sign as cryptoSign, verify as cryptoVerify} from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {
  type PrivateKeyInfo,
  encryptPrivateKey,
  generateKeyPair,
  loadPrivateKey,
  preAuthEncoding,
  signSubjects,
  signatureDigest,
  statementBytes,
  buildStatement,
  COSIGN_SIGN_PREDICATE_TYPE,
  IN_TOTO_PAYLOAD_TYPE,
  verifyBundle,
} from '../src/sign/index.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.3)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7)

async function rate(fn: () => unknown | Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await fn() // warm-up
  let n = 0
  const start = process.hrtime.bigint()
  const end = start + BigInt(Math.round(SECONDS * 1e9))
  let now = start
  while (now < end) {
    for (let i = 0; i < 50; i++) await fn()
    n += 50
    now = process.hrtime.bigint()
  }
  return n / (Number(now - start) / 1e9)
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

const fmt = (x: number) => x.toFixed(0).padStart(8)

async function main(): Promise<void> {
  const data = Buffer.from('apiVersion: aibox.dev/v1\nkind: PolicyBundle\n'.repeat(20))
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
  console.log(`sign/verify: median of ${ROUNDS} interleaved ${SECONDS}s measurements, Node ${process.version}`)
  console.log('key          op                 aibox ops/s   node:crypto ops/s   overhead (node/aibox)')
  for (const alg of ['ecdsa-p256', 'ed25519'] as const) {
    const key: PrivateKeyInfo = generateKeyPair(alg)
    const pae = preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, statementBytes(buildStatement({subjects: [{digest}], predicateType: COSIGN_SIGN_PREDICATE_TYPE})))
    const dgst = signatureDigest(key.public)
    const rawSig = cryptoSign(dgst, pae, key.keyObject)
    const bundle = await signSubjects([{digest}], key)
    const text = JSON.stringify(bundle)
    const ops: Record<string, () => unknown> = {
      rawSign: () => cryptoSign(dgst, pae, key.keyObject),
      rawVerify: () => cryptoVerify(dgst, pae, key.public.keyObject, rawSig),
      libSign: () => signSubjects([{digest}], key),
      libVerify: () => verifyBundle(text, {keys: [key.public], subjectDigests: [digest]}),
    }
    const samples: Record<string, number[]> = {rawSign: [], rawVerify: [], libSign: [], libVerify: []}
    for (let round = 0; round < ROUNDS; round++) for (const [name, fn] of Object.entries(ops)) samples[name].push(await rate(fn))
    const [rawSign, rawVerify, libSign, libVerify] = ['rawSign', 'rawVerify', 'libSign', 'libVerify'].map((n) => median(samples[n]))
    console.log(`${alg.padEnd(12)} DSSE bundle sign   ${fmt(libSign)}      ${fmt(rawSign)}            ${(rawSign / libSign).toFixed(2)}x`)
    console.log(`${alg.padEnd(12)} DSSE bundle verify ${fmt(libVerify)}      ${fmt(rawVerify)}            ${(rawVerify / libVerify).toFixed(2)}x`)
  }

  // Key loading: scrypt dominates; measured per file, median of 5.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aibox-bench-'))
  try {
    const file = path.join(dir, 'k.key')
    fs.writeFileSync(file, await encryptPrivateKey(generateKeyPair(), 'pw'))
    const times: number[] = []
    for (let i = 0; i < 5; i++) {
      const t = process.hrtime.bigint()
      await loadPrivateKey(file, {password: 'pw'})
      times.push(Number(process.hrtime.bigint() - t) / 1e6)
    }
    console.log(`key load (scrypt N=65536 r=8 p=1 + secretbox + PKCS#8): median ${median(times).toFixed(0)} ms`)
    const old = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'vectors', 'cosign', 'keys', 'pc-cosign.key')
    if (fs.existsSync(old)) {
      const t2: number[] = []
      for (let i = 0; i < 5; i++) {
        const t = process.hrtime.bigint()
        await loadPrivateKey(old, {password: ''})
        t2.push(Number(process.hrtime.bigint() - t) / 1e6)
      }
      console.log(`key load (scrypt N=32768, older cosign keys): median ${median(t2).toFixed(0)} ms`)
    }
  } finally {
    fs.rmSync(dir, {recursive: true, force: true})
  }
}

await main()

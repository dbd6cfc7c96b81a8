/**
 * Test content for the OCI stores and the copy engine: a small artifact graph built with the
 * real packers (deterministic bytes: pseudo-random layers derived from a seed, pinned `created`).
 *
 *   index I (tag "idx") ─▶ manifest M (tags "v1", "stable") ─▶ config {} , layer A (64 KiB), layer B (1 MiB)
 *   signature S1 ─subject▶ M      approval S2 ─subject▶ M      countersignature S3 ─subject▶ S1
 */
import {createHash} from 'node:crypto'
import {Readable} from 'node:stream'

import {descriptorFor, EMPTY_DESCRIPTOR, EMPTY_JSON, MT, packIndex, packManifest, type Descriptor, type Target} from '../../src/oci/index.js'

export const SIG_TYPE = MT.sigstoreBundleV03
export const APPROVAL_TYPE = 'application/vnd.aibox.approval.v1+json'
export const CREATED = '2024-05-01T12:00:00Z'

/** Deterministic pseudo-random bytes (sha256 in counter mode), so fixtures never change between runs. */
export function pseudoRandom(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size)
  let off = 0
  for (let i = 0; off < size; i++) {
    const block = createHash('sha256').update(`${seed}:${i}`).digest()
    off += block.copy(out, off)
  }
  return out
}

export interface SeedBlob {
  desc: Descriptor
  bytes: Buffer
}

export interface Graph {
  config: SeedBlob
  layerA: SeedBlob
  layerB: SeedBlob
  manifest: SeedBlob
  index: SeedBlob
  sig: SeedBlob
  approval: SeedBlob
  countersig: SeedBlob
  /** Every node, children before parents (a valid push order). */
  all: SeedBlob[]
  tags: Array<{tag: string; desc: Descriptor}>
}

export function blob(mediaType: string, bytes: Buffer, extra: Partial<Descriptor> = {}): SeedBlob {
  return {desc: descriptorFor(mediaType, bytes, extra), bytes}
}

function packed(p: {bytes: Buffer; descriptor: Descriptor}): SeedBlob {
  return {desc: p.descriptor, bytes: p.bytes}
}

/** The standard graph; `seed` changes every byte (so two graphs share only the empty config). */
export function buildGraph(seed = 'g1'): Graph {
  const config: SeedBlob = {desc: {...EMPTY_DESCRIPTOR}, bytes: Buffer.from(EMPTY_JSON)}
  const layerA = blob(MT.policyBundle, pseudoRandom(64 * 1024, `${seed}-A`), {annotations: {'org.opencontainers.image.title': 'a.json'}})
  const layerB = blob('application/octet-stream', pseudoRandom(1024 * 1024, `${seed}-B`), {annotations: {'org.opencontainers.image.title': 'b.bin'}})
  const manifest = packed(
    packManifest({artifactType: MT.policyBundle, layers: [layerA.desc, layerB.desc], annotations: {'org.opencontainers.image.version': '1.0.0', seed}, created: CREATED}),
  )
  const index = packed(packIndex({manifests: [manifest.desc], annotations: {seed}}))
  const sigPayload = blob(SIG_TYPE, Buffer.from(`{"signature":"${seed}"}`))
  const sig = packed(packManifest({artifactType: SIG_TYPE, layers: [sigPayload.desc], subject: manifest.desc, annotations: {kind: 'signature'}, created: CREATED}))
  const apPayload = blob(APPROVAL_TYPE, Buffer.from(`{"approval":"${seed}"}`))
  const approval = packed(packManifest({artifactType: APPROVAL_TYPE, layers: [apPayload.desc], subject: manifest.desc, created: CREATED}))
  const csPayload = blob(SIG_TYPE, Buffer.from(`{"countersignature":"${seed}"}`))
  const countersig = packed(packManifest({artifactType: SIG_TYPE, layers: [csPayload.desc], subject: sig.desc, created: CREATED}))
  const all = [config, layerA, layerB, manifest, index, sigPayload, sig, apPayload, approval, csPayload, countersig]
  return {
    config,
    layerA,
    layerB,
    manifest,
    index,
    sig,
    approval,
    countersig,
    all,
    tags: [
      {tag: 'v1', desc: manifest.desc},
      {tag: 'stable', desc: manifest.desc},
      {tag: 'idx', desc: index.desc},
    ],
  }
}

/** Pushes every blob (children first) and applies the tags. */
export async function pushAll(target: Target, blobs: SeedBlob[], tags: Array<{tag: string; desc: Descriptor}> = []): Promise<void> {
  for (const b of blobs) await target.push(b.desc, b.bytes)
  for (const t of tags) await target.tag(t.desc, t.tag)
}

export async function readStream(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of s) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** A body that yields `first` and then fails, like a connection dropped mid-transfer. */
export function failingBody(first: Buffer, message = 'connection reset by peer'): Readable {
  let sent = false
  return new Readable({
    read() {
      if (!sent) {
        sent = true
        this.push(first)
      } else {
        this.destroy(new Error(message))
      }
    },
  })
}


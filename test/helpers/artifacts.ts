/** Small OCI artifacts built in memory for registry tests (bytes and descriptors, nothing hidden). */
import crypto from 'node:crypto'
import {Readable} from 'node:stream'

import {descriptorFor} from '../../src/oci/content.js'
import {EMPTY_DESCRIPTOR, EMPTY_JSON, MT} from '../../src/oci/media.js'
import type {Descriptor, Target} from '../../src/oci/target.js'

export const LAYER_TYPE = 'application/vnd.aibox.test.layer.v1'
export const ARTIFACT_TYPE = 'application/vnd.aibox.test.artifact.v1'

export interface Artifact {
  config: {desc: Descriptor; data: Buffer}
  layers: Array<{desc: Descriptor; data: Buffer}>
  manifest: {desc: Descriptor; data: Buffer}
}

export function blob(data: Buffer | string, mediaType = LAYER_TYPE): {desc: Descriptor; data: Buffer} {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data)
  return {desc: descriptorFor(mediaType, b), data: b}
}

export function randomBlob(size: number, mediaType = LAYER_TYPE): {desc: Descriptor; data: Buffer} {
  return blob(crypto.randomBytes(size), mediaType)
}

export function manifestOf(
  layers: Array<{desc: Descriptor}>,
  extra: {artifactType?: string; subject?: Descriptor; annotations?: Record<string, string>} = {},
): {desc: Descriptor; data: Buffer} {
  const m: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType: extra.artifactType ?? ARTIFACT_TYPE,
    config: EMPTY_DESCRIPTOR,
    layers: layers.map((l) => l.desc),
  }
  if (extra.subject) m.subject = extra.subject
  if (extra.annotations) m.annotations = extra.annotations
  const data = Buffer.from(JSON.stringify(m))
  return {desc: descriptorFor(MT.ociManifest, data), data}
}

export function artifact(layerData: Array<Buffer | string>, extra: Parameters<typeof manifestOf>[1] = {}): Artifact {
  const config = {desc: {...EMPTY_DESCRIPTOR}, data: EMPTY_JSON}
  const layers = layerData.map((d) => blob(d))
  return {config, layers, manifest: manifestOf(layers, extra)}
}

/** Pushes blobs then the manifest (children before parents), optionally tagging it. */
export async function pushArtifact(target: Target, a: Artifact, tag?: string): Promise<Descriptor> {
  await target.push(a.config.desc, a.config.data)
  for (const l of a.layers) await target.push(l.desc, Readable.from([l.data]))
  await target.push(a.manifest.desc, a.manifest.data)
  if (tag) await target.tag(a.manifest.desc, tag)
  return a.manifest.desc
}

/** A stream yielding `data` in pieces of `piece` bytes (uploads see realistic chunking). */
export function streamOf(data: Buffer, piece = 256 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += piece) yield data.subarray(i, i + piece)
    })(),
  )
}

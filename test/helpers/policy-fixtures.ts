/**
 * Policy artifacts for the src/distribute tests: published with the real pack/sign code, or
 * forged on purpose (wrong annotations, non-canonical content, signatures over other digests) to
 * check that verification refuses them. Keys are the testdata/trust key pairs (password "test").
 */
import path from 'node:path'

import {canonicalBytes} from '../../src/bundle/canonical.js'
import {loadBundle} from '../../src/bundle/load.js'
import type {LoadedBundle} from '../../src/bundle/model.js'
import {attachSignature, packPolicy, type PackedPolicy} from '../../src/distribute/index.js'
import {copyGraph, descriptorFor, EMPTY_DESCRIPTOR, EMPTY_JSON, MT, ANNOTATION, packManifest, type Descriptor, type Target} from '../../src/oci/index.js'
import {loadPrivateKey, loadPublicKey, type PrivateKeyInfo} from '../../src/sign/keys.js'
import type {VerificationKey} from '../../src/sign/types.js'
import {TESTDATA} from './cli.js'

export const ORG_BASELINE = path.join(TESTDATA, 'bundles', 'org', 'baseline.yaml')
export const TEAM_ALPHA = path.join(TESTDATA, 'bundles', 'teams', 'alpha', 'policy.yaml')
export const KEYS_DIR = path.join(TESTDATA, 'trust', 'keys')

const keyCache = new Map<string, PrivateKeyInfo>()

/** A testdata/trust private key (alice, bob, carol, ci, mallory). */
export async function privateKey(name: string): Promise<PrivateKeyInfo> {
  let k = keyCache.get(name)
  if (!k) {
    k = await loadPrivateKey(path.join(KEYS_DIR, `${name}.key`), {password: 'test'})
    keyCache.set(name, k)
  }
  return k
}

export function publicKey(name: string): VerificationKey {
  return {...loadPublicKey(path.join(KEYS_DIR, `${name}.pub`)), name}
}

/** Packs, copies into `target`, signs with `signers` and tags: what `aibox push` does. */
export async function publish(target: Target, bundle: string | LoadedBundle, signers: PrivateKeyInfo[], tags: string[] = []): Promise<PackedPolicy> {
  const packed = await packPolicy(typeof bundle === 'string' ? loadBundle(bundle) : bundle, {env: {}})
  await copyGraph(packed.store, target, packed.manifest)
  for (const k of signers) await attachSignature(target, packed.manifest, k)
  for (const t of tags) await target.tag(packed.manifest, t)
  return packed
}

export interface ForgeOptions {
  /** The canonical layer bytes (default: the org baseline's canonical JSON). */
  content?: Buffer
  /** Manifest annotations (default: consistent with the content). */
  annotations?: Record<string, string>
  /** Replace (or drop with null) single annotations of the default set. */
  override?: Record<string, string | null>
  /** An extra source layer. */
  source?: Buffer
  artifactType?: string
  layerMediaType?: string
}

/** Pushes a hand-made policy artifact into `target` (unsigned) and returns its manifest descriptor. */
export async function forge(target: Target, options: ForgeOptions = {}): Promise<Descriptor> {
  const bundle = loadBundle(ORG_BASELINE)
  const content = options.content ?? canonicalBytes(bundle.document)
  const layer = descriptorFor(options.layerMediaType ?? MT.policyBundle, content, {annotations: {[ANNOTATION.title]: 'org-baseline.json'}})
  const layers = [layer]
  if (options.source) layers.push(descriptorFor(MT.policySource, options.source))
  const annotations: Record<string, string> = options.annotations ?? {
    [ANNOTATION.title]: 'org-baseline',
    [ANNOTATION.version]: '1.4.0',
    [ANNOTATION.tier]: 'org',
    [ANNOTATION.policyDigest]: layer.digest,
  }
  for (const [k, v] of Object.entries(options.override ?? {})) {
    if (v === null) delete annotations[k]
    else annotations[k] = v
  }
  const packed = packManifest({artifactType: options.artifactType ?? MT.policyBundle, layers, annotations})
  await target.push({...EMPTY_DESCRIPTOR}, EMPTY_JSON)
  await target.push(layer, content)
  if (options.source) await target.push(layers[1]!, options.source)
  await target.push(packed.descriptor, packed.bytes)
  return packed.descriptor
}

/** Path of the committed test private key `name` (testdata/trust/keys/NAME.key; password "test"). */
export const KEY = (name: string): string => path.join(KEYS_DIR, `${name}.key`)
/** Path of the committed test public key `name` (testdata/trust/keys/NAME.pub). */
export const PUB = (name: string): string => path.join(KEYS_DIR, `${name}.pub`)

/**
 * Sealed exports for the air-gap tests: a source layout with two signed policies (the org baseline
 * with an approval and a legacy cosign `.sig`, team alpha), exported with the real code, plus tools
 * to take an archive apart and rebuild it entry by entry so each hostile variant changes exactly
 * one thing.
 */
import path from 'node:path'
import {Readable} from 'node:stream'
import fs from 'node:fs'

import tar from 'tar-stream'

import {attachApproval, attachLegacySignature, exportPolicies, type ExportPoliciesOptions, type ExportPoliciesResult} from '../../src/distribute/index.js'
import {LayoutDirStore} from '../../src/oci/index.js'
import {ORG_BASELINE, TEAM_ALPHA, privateKey, publish} from './policy-fixtures.js'
import {readStream} from './oci-fixtures.js'
import {tmpdir} from './tmp.js'

export const EPOCH = '1700000000'

export interface SourceLayouts {
  root: string
  org: string
  team: string
  orgDigest: string
  teamDigest: string
}

/** oci:ROOT/org (org baseline: alice signs, bob approves, alice's legacy .sig) and oci:ROOT/team (team alpha: bob signs), both tagged stable. */
export async function sourceLayouts(root = tmpdir('aibox-airgap-src-')): Promise<SourceLayouts> {
  const org = path.join(root, 'org')
  const team = path.join(root, 'team')
  const orgStore = await LayoutDirStore.open(org, {create: true})
  const packedOrg = await publish(orgStore, ORG_BASELINE, [await privateKey('alice')], ['stable', '1.4.0'])
  await attachApproval(orgStore, packedOrg.manifest, await privateKey('bob'), {role: 'approver', note: 'reviewed', ticket: 'SEC-1'}, {now: new Date('2024-05-01T00:00:00Z')})
  await attachLegacySignature(orgStore, packedOrg.manifest, await privateKey('alice'), {dockerReference: 'oci:org'})
  const teamStore = await LayoutDirStore.open(team, {create: true})
  const packedTeam = await publish(teamStore, TEAM_ALPHA, [await privateKey('bob')], ['stable', '2.1.0'])
  return {root, org, team, orgDigest: packedOrg.manifest.digest, teamDigest: packedTeam.manifest.digest}
}

/** Exports both source policies (`oci:…:stable`) signed by carol, with SOURCE_DATE_EPOCH pinned. */
export async function sealedExport(src: SourceLayouts, output: string, extra: Partial<ExportPoliciesOptions> = {}): Promise<ExportPoliciesResult> {
  return exportPolicies({
    references: [`oci:${src.org}:stable`, `oci:${src.team}:stable`],
    output,
    key: await privateKey('carol'),
    env: {SOURCE_DATE_EPOCH: EPOCH, AIBOX_ACTOR: 'exporter@test'},
    ...extra,
  })
}

export interface RawEntry {
  header: Parameters<tar.Pack["entry"]>[0]
  data: Buffer
}

/** Every entry of a tar, headers and data (archives here are small). */
export async function readTar(file: string): Promise<RawEntry[]> {
  const extract = tar.extract()
  const out: RawEntry[] = []
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      readStream(stream as unknown as Readable).then((data) => {
        out.push({header, data})
        next()
      }, reject)
    })
    extract.on('finish', () => resolve())
    extract.on('error', reject)
  })
  fs.createReadStream(file).pipe(extract as unknown as NodeJS.WritableStream)
  await done
  return out
}

/** Packs entries into a tar (sizes from the data unless the header forces one). */
export async function writeTar(entries: RawEntry[]): Promise<Buffer> {
  const pack = tar.pack()
  const out = readStream(pack as unknown as Readable)
  for (const e of entries) {
    const header = {...e.header}
    if (header.type === 'file' || header.type === undefined) header.size = e.data.length
    await new Promise<void>((resolve, reject) => pack.entry(header, e.data, (err) => (err ? reject(err) : resolve())))
  }
  pack.finalize()
  return out
}

export const blobName = (digest: string) => `blobs/sha256/${digest.slice(7)}`

export function entry(entries: RawEntry[], name: string): RawEntry {
  const e = entries.find((x) => x.header.name === name)
  if (!e) throw new Error(`no entry ${name} in the archive`)
  return e
}

export function indexOf(entries: RawEntry[]): {schemaVersion: number; mediaType?: string; manifests: Array<{mediaType: string; digest: string; size: number; annotations?: Record<string, string>; artifactType?: string}>} {
  return JSON.parse(entry(entries, 'index.json').data.toString('utf8'))
}

export function setIndex(entries: RawEntry[], index: unknown): void {
  entry(entries, 'index.json').data = Buffer.from(JSON.stringify(index))
}

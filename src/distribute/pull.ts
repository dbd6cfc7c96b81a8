/**
 * `aibox pull REF [-o DIR] (--key PUB | --trust T)`: fetch, verify (verify.ts), and only then
 * write `<name>.json` (the canonical JSON, byte for byte the signed layer) and `<name>.yaml` (the
 * source, when the artifact has one). Refused content writes nothing; accepted content is staged
 * in temp files (fsynced) and renamed into place, so a failure leaves the old files as they were.
 */
import fs from 'node:fs'
import path from 'node:path'

import {InputError} from '../errors.js'
import {fsyncDirSync, removeQuietlySync, tempPathFor} from '../util/atomic.js'
import {fsError} from '../util/fs-errors.js'
import {type OpenOptions, openForRead, requireSelector, withDigest} from './targets.js'
import {type VerifiedPolicy, type VerifyPolicyOptions, verifyPolicyArtifact} from './verify.js'

export interface PullPolicyOptions extends OpenOptions, Omit<VerifyPolicyOptions, 'reference'> {
  reference: string
  /** Directory to write into (created when missing, after verification). Default: the current directory. */
  outputDir?: string
  /** The reference the policy is published under, for trust scopes, when `reference` is a layout copy. */
  trustReference?: string
  /** Called with the verified policy before anything is written; throwing refuses it (the cross-tenant check, src/tenant). */
  beforeWrite?: (verified: VerifiedPolicy, reference: string) => Promise<void>
}

export interface PullPolicyResult {
  reference: string
  verified: VerifiedPolicy
  /** Files written, in order. */
  files: string[]
}

/** Writes files as one step as far as a file system allows: every temp file first, then the renames. */
export function writeFilesAtomic(files: Array<{path: string; data: Uint8Array}>): void {
  const staged: Array<{tmp: string; path: string}> = []
  try {
    for (const f of files) {
      const tmp = tempPathFor(f.path)
      staged.push({tmp, path: f.path})
      const fd = fs.openSync(tmp, 'wx', 0o644)
      try {
        let off = 0
        while (off < f.data.byteLength) off += fs.writeSync(fd, f.data, off, f.data.byteLength - off)
        fs.fsyncSync(fd)
      } finally {
        fs.closeSync(fd)
      }
    }
    for (const s of staged) fs.renameSync(s.tmp, s.path)
    for (const dir of new Set(files.map((f) => path.dirname(f.path)))) fsyncDirSync(dir)
  } catch (err) {
    for (const s of staged) removeQuietlySync(s.tmp)
    throw fsError(err, 'write', staged.at(-1)?.path ?? files[0]?.path ?? '')
  }
}

/** Pulls and verifies a policy, then writes it (see the module comment). */
export async function pullPolicy(options: PullPolicyOptions): Promise<PullPolicyResult> {
  const opened = await openForRead(options.reference, options)
  let verified: VerifiedPolicy
  try {
    const sel = requireSelector(opened)
    verified = await verifyPolicyArtifact(opened.target, sel, {...options, reference: options.trustReference})
  } finally {
    await opened.close()
  }
  await options.beforeWrite?.(verified, withDigest(opened.reference, verified.manifest.digest))
  const dir = path.resolve(options.outputDir ?? '.')
  try {
    const st = fs.statSync(dir, {throwIfNoEntry: false})
    if (st && !st.isDirectory()) throw new InputError('NOT_A_DIRECTORY', `${dir} exists and is not a directory`)
    if (!st) fs.mkdirSync(dir, {recursive: true})
  } catch (err) {
    if (err instanceof InputError) throw err
    throw fsError(err, 'create directory', dir)
  }
  const files = [{path: path.join(dir, `${verified.name}.json`), data: verified.canonical}]
  if (verified.source) files.push({path: path.join(dir, `${verified.name}.yaml`), data: verified.source})
  writeFilesAtomic(files)
  return {reference: withDigest(opened.reference, verified.manifest.digest), verified, files: files.map((f) => f.path)}
}

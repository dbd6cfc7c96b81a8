/**
 * e2e load: concurrent `aibox push` to one repository of a real registry. Debian's distribution
 * 2.8 has no referrers API, so every signature is recorded by a read-modify-write of the
 * `sha256-<hex>` tag index, which registries cannot make atomic: concurrent signers of one
 * subject race. The test counts what came back and checks that no signature was lost.
 *
 * LOAD_PUSHES (default 20) concurrent pushes: half as many versions, each pushed at the same
 * moment by two signers (alice and bob), so each version's fallback index has two concurrent
 * writers; all of them also move the `stable` tag. `make stress` adds many signers of one digest
 * (test/stress/load.stress.ts).
 */
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {MT, RemoteRepository} from '../../src/oci/index.js'
import {aibox as run, type CliResult} from '../helpers/cli.js'
import {KEYS_DIR, ORG_BASELINE} from '../helpers/policy-fixtures.js'
import {type RegistryHandle, startRegistry} from '../helpers/registry.js'
import {tmpdir} from '../helpers/tmp.js'

const PUSHES = Number(process.env.LOAD_PUSHES ?? 20)

describe(`load: ${PUSHES} concurrent pushes to one repository (e2e)`, function () {
  this.timeout(Math.max(600_000, PUSHES * 20_000))
  let reg: RegistryHandle
  const work = tmpdir('aibox-load-')
  const audit = path.join(work, 'audit.jsonl')
  const aibox = (args: string[]): Promise<CliResult> => run(args, {env: {COSIGN_PASSWORD: 'test', AIBOX_AUDIT_LOG: audit, CI: '1'}, timeoutMs: 300_000})

  before(async () => {
    reg = await startRegistry()
  })
  after(async () => {
    await reg?.stop()
  })

  it('every push succeeds (or fails transiently and succeeds when run again), and every version keeps both signatures', async () => {
    const versions = Math.ceil(PUSHES / 2)
    const jobs: Array<{version: string; signer: string; file: string}> = []
    for (let v = 0; v < versions; v++) {
      const version = `3.${v}.0`
      const file = path.join(work, `policy-${version}.yaml`)
      fs.writeFileSync(file, fs.readFileSync(ORG_BASELINE, 'utf8').replace('version: 1.4.0', `version: ${version}`))
      for (const signer of ['alice', 'bob'].slice(0, PUSHES - jobs.length)) jobs.push({version, signer, file})
    }
    const repo = `${reg.host}/policies/load`
    const started = Date.now()
    const results = await Promise.all(jobs.map((j) => aibox(['push', j.file, `${repo}:stable`, '--key', path.join(KEYS_DIR, `${j.signer}.key`), '--json'])))
    const seconds = (Date.now() - started) / 1000
    const counts = {ok: 0, transient: 0, other: 0}
    for (const r of results) counts[r.code === 0 ? 'ok' : r.code === 4 ? 'transient' : 'other']++
    console.log(`      ${jobs.length} concurrent pushes in ${seconds.toFixed(1)} s: ${counts.ok} ok, ${counts.transient} transient failures (exit 4), ${counts.other} other`)
    expect(counts.other, results.filter((r) => r.code !== 0 && r.code !== 4).map((r) => r.stderr).join('\n')).to.equal(0)
    // A transient failure (e.g. the index kept being replaced) says "run the command again": do so.
    for (const [i, r] of results.entries()) {
      if (r.code !== 4) continue
      const again = await aibox(['push', jobs[i]!.file, `${repo}:stable`, '--key', path.join(KEYS_DIR, `${jobs[i]!.signer}.key`), '--json'])
      expect(again.code, again.stderr).to.equal(0)
      results[i] = again
    }
    // Count the signatures each version has, from the referrers the registry lists for it (the
    // fallback index, read as discover, pull and start read it); each push made exactly one.
    let lost = 0
    const remote = new RemoteRepository(repo, {onWarning: () => {}})
    try {
      for (let v = 0; v < versions; v++) {
        const version = `3.${v}.0`
        const subject = await remote.resolve(version)
        const signatures = await remote.predecessors(subject, {artifactType: MT.sigstoreBundleV03})
        const mine = results.filter((r, i) => jobs[i]!.version === version).map((r) => r.json.signature.digest as string)
        const missing = mine.filter((d) => !signatures.some((s) => s.digest === d))
        if (missing.length > 0) console.log(`      ${version}: ${missing.length} signature(s) missing`)
        lost += missing.length
      }
    } finally {
      await remote.close()
    }
    console.log(`      signatures lost: ${lost} of ${jobs.length}`)
    expect(lost).to.equal(0)
    // "stable" names one of the pushed versions, pull verifies it with either key alone, and the
    // audit log survived the concurrent appends.
    const inspect = await aibox(['inspect', `${repo}:stable`, '--json'])
    expect(results.map((r) => r.json?.digest)).to.include(inspect.json.digest)
    for (const signer of ['alice', 'bob']) {
      const pulled = await aibox(['pull', `${repo}@${inspect.json.digest}`, '--key', path.join(KEYS_DIR, `${signer}.pub`), '-o', path.join(work, `out-${signer}`)])
      expect(pulled.code, `stable signed by ${signer}: ${pulled.stderr}`).to.equal(0)
    }
    const verify = await aibox(['audit', 'verify', '--log', audit])
    expect(verify.code, verify.stderr).to.equal(0)
  })
})

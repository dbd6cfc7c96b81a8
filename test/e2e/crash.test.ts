/**
 * e2e crash safety: kill -9 at randomized points of `aibox push` to an oci: layout, of its audit
 * append (points drawn among the audit log's own mutations) and of `aibox pull -o DIR`, at the
 * granularity of single file-system mutations (test/helpers/crash-preload.mjs). After every kill:
 *
 * - the layout passes fsck (every blob hashes to its name, every tag names a complete graph);
 * - `aibox audit verify` passes, or reports only the torn last line an interrupted append leaves
 *   (which the next append repairs, audit/append.ts);
 * - the tag still names a policy that `aibox pull` verifies (the old one or the new one);
 * - a pull's destination holds, per file, the old bytes or the new bytes, never a partial file;
 * - the interrupted operation, run again, succeeds, and then everything verifies.
 *
 * `make test` runs CRASH_KILLS points (default 4: 2 in a push, 1 in its audit append, 1 in a pull,
 * each drawn from its own slice of the mutations); `make stress` runs STRESS_KILLS (default 100).
 * CRASH_SEED reproduces a run.
 */
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {isTempName} from '../../src/util/atomic.js'
import {aibox as run, type CliResult} from '../helpers/cli.js'
import {aiboxCrashing, fsckLayout, killPoints, mutationsOf, prng} from '../helpers/crash.js'
import {KEYS_DIR, ORG_BASELINE} from '../helpers/policy-fixtures.js'
import {tmpdir} from '../helpers/tmp.js'

const KILLS = Number(process.env.STRESS_KILLS ?? process.env.CRASH_KILLS ?? 4)
const SEED = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31))
const KEY = path.join(KEYS_DIR, 'alice.key')
const PUB = path.join(KEYS_DIR, 'alice.pub')

describe(`crash safety: kill -9 at ${KILLS} randomized points (seed ${SEED}, CRASH_SEED=${SEED} reproduces) (e2e)`, function () {
  this.timeout(Math.max(300_000, KILLS * 30_000))
  const work = tmpdir('aibox-crash-')
  const p = (...f: string[]) => path.join(work, ...f)
  const random = prng(SEED)
  // 1.5.0 of the org baseline, with a changed description: pushed over 1.4.0 under the same tag.
  const next = p('baseline-1.5.0.yaml')
  fs.writeFileSync(next, fs.readFileSync(ORG_BASELINE, 'utf8').replace('version: 1.4.0', 'version: 1.5.0'))

  const env = (audit: string) => ({COSIGN_PASSWORD: 'test', AIBOX_AUDIT_LOG: audit, CI: '1'})
  const aibox = (args: string[], audit: string): Promise<CliResult> => run(args, {env: env(audit), timeoutMs: 120_000})
  async function ok(args: string[], audit: string): Promise<CliResult> {
    const r = await aibox(args, audit)
    expect(r.code, `aibox ${args.join(' ')}\n${r.stderr}`).to.equal(0)
    return r
  }
  /** `aibox audit verify`: intact, or only an interrupted append's torn last line. */
  async function auditVerifies(audit: string, allowTorn: boolean): Promise<void> {
    const r = await aibox(['audit', 'verify', '--log', audit, '--json'], audit)
    if (r.code === 0) return
    expect(allowTorn && r.code === 2 && r.json?.firstBroken?.reason === 'torn', `audit verify after the crash:\n${r.stdout}\n${r.stderr}`).to.equal(true)
  }
  function copyDir(from: string, to: string): void {
    fs.cpSync(from, to, {recursive: true})
  }

  // The base state every round starts from: a layout with org-baseline 1.4.0 under "stable", its
  // audit log, and a directory holding the 1.4.0 files from a pull.
  const base = {layout: p('base', 'layout'), audit: p('base', 'audit.jsonl'), dir: p('base', 'pulled')}
  const newer = {layout: p('newer', 'layout'), audit: p('newer', 'audit.jsonl')}
  let pushTotal = 0
  let auditTotal = 0
  let pullTotal = 0
  const AUDIT_FILES = 'audit\\.jsonl'
  const files14: Record<string, Buffer> = {}
  const files15: Record<string, Buffer> = {}

  before(async () => {
    await ok(['push', ORG_BASELINE, `oci:${base.layout}:stable`, '--key', KEY], base.audit)
    await ok(['pull', `oci:${base.layout}:stable`, '--key', PUB, '-o', base.dir], base.audit)
    for (const f of fs.readdirSync(base.dir)) files14[f] = fs.readFileSync(path.join(base.dir, f))
    // Dry runs on copies: how many mutations a push of 1.5.0 and a pull of it make.
    copyDir(p('base'), p('dry'))
    pushTotal = await mutationsOf(['push', next, `oci:${p('dry', 'layout')}:stable`, '--key', KEY], p('dry', 'count'), env(p('dry', 'audit.jsonl')))
    copyDir(p('base'), p('dry-audit'))
    auditTotal = await mutationsOf(['push', next, `oci:${p('dry-audit', 'layout')}:stable`, '--key', KEY], p('dry-audit', 'count'), env(p('dry-audit', 'audit.jsonl')), AUDIT_FILES)
    copyDir(p('dry'), p('newer'))
    const dryPull = p('dry', 'pulled')
    pullTotal = await mutationsOf(['pull', `oci:${newer.layout}:stable`, '--key', PUB, '-o', dryPull], p('dry', 'count'), env(newer.audit))
    for (const f of fs.readdirSync(dryPull)) files15[f] = fs.readFileSync(path.join(dryPull, f))
    expect(Object.keys(files15).sort()).to.deep.equal(Object.keys(files14).sort())
    expect(pushTotal).to.be.above(10)
    expect(auditTotal).to.be.above(5)
    expect(pullTotal).to.be.above(2)
  })

  // Half the points anywhere in a push, a quarter in its audit append, a quarter in a pull.
  const auditKills = Math.max(1, Math.floor(KILLS / 4))
  const pullKills = Math.max(1, Math.floor(KILLS / 4))
  const pushKills = Math.max(1, KILLS - auditKills - pullKills)

  /** One push killed before mutation `at` (of all, or of the `match`ing paths), then every check and the push again. */
  async function killPush(label: string, i: number, at: number, total: number, match?: string): Promise<void> {
    const round = p(`${label.replace(/\W+/g, '-')}-${i}`)
    copyDir(p('base'), round)
    const layout = path.join(round, 'layout')
    const audit = path.join(round, 'audit.jsonl')
    const where = `${label} killed before mutation ${at} of ${total} (seed ${SEED})`
    const r = await aiboxCrashing(['push', next, `oci:${layout}:stable`, '--key', KEY], {crashAt: at, env: env(audit), match})
    expect(r.killed || r.code === 0, `${where}: ${r.stderr}`).to.equal(true)
    const fsck = fsckLayout(layout)
    expect(fsck.problems, where).to.deep.equal([])
    await auditVerifies(audit, true)
    const pulled = await aibox(['pull', `oci:${layout}:stable`, '--key', PUB, '-o', path.join(round, 'check'), '--json'], audit)
    expect(pulled.code, `${where}: the tag must still name a verified policy\n${pulled.stderr}`).to.equal(0)
    expect(['1.4.0', '1.5.0']).to.include(pulled.json.version)
    // The next operation: the same push, uninterrupted; then "stable" names 1.5.0 and all verifies.
    const again = await ok(['push', next, `oci:${layout}:stable`, '--key', KEY, '--json'], audit)
    expect(fsckLayout(layout).problems, `${where}, after the push again`).to.deep.equal([])
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as {manifests: Array<{digest: string; annotations?: Record<string, string>}>}
    expect(index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'stable')?.digest, where).to.equal(again.json.digest)
    await auditVerifies(audit, false)
  }

  it(`push to an oci: layout, killed at ${pushKills} points: layout and log verify, the tag names a verified policy, the push then succeeds`, async () => {
    for (const [i, at] of killPoints(pushKills, pushTotal, random).entries()) await killPush('push', i, at, pushTotal)
  })

  it(`the audit append of a push, killed at ${auditKills} of the audit log's own mutations: the log verifies (a torn line at most, repaired by the next append)`, async () => {
    for (const [i, at] of killPoints(auditKills, auditTotal, random).entries()) await killPush('audit append', i, at, auditTotal, AUDIT_FILES)
  })

  it(`pull -o DIR over older files, killed at ${pullKills} points: every file is the old or the new version, never partial; the pull then succeeds`, async () => {
    const points = killPoints(pullKills, pullTotal, random)
    for (const [i, at] of points.entries()) {
      const dir = p(`pull-${i}`)
      copyDir(base.dir, dir)
      const where = `pull killed before mutation ${at} of ${pullTotal} (seed ${SEED})`
      const r = await aiboxCrashing(['pull', `oci:${newer.layout}:stable`, '--key', PUB, '-o', dir], {crashAt: at, env: env(newer.audit)})
      expect(r.killed || r.code === 0, `${where}: ${r.stderr}`).to.equal(true)
      for (const name of fs.readdirSync(dir)) {
        if (isTempName(name)) continue // a staged temp file: no reader opens it
        const bytes = fs.readFileSync(path.join(dir, name))
        expect(files14[name]?.equals(bytes) || files15[name]?.equals(bytes), `${where}: ${name} is neither the old nor the new file`).to.equal(true)
      }
      await ok(['pull', `oci:${newer.layout}:stable`, '--key', PUB, '-o', dir], newer.audit)
      for (const [name, bytes] of Object.entries(files15)) expect(fs.readFileSync(path.join(dir, name)).equals(bytes), `${where}: ${name} after the pull again`).to.equal(true)
    }
    await auditVerifies(newer.audit, false)
  })
})

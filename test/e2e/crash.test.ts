/**
 * e2e crash safety: kill -9 at randomized points of `aibox push` to an oci: layout, of its audit
 * append (points drawn among the audit log's own mutations), of `aibox pull -o DIR`, of `aibox
 * start` (its cache fill: blobs, state.json, the effective policy, the audit event) and of `aibox
 * import` (into the start cache and into an oci: layout), at the granularity of single
 * file-system mutations (test/helpers/crash-preload.mjs). After every kill of a push or pull:
 *
 * - the layout passes fsck (every blob hashes to its name, every tag names a complete graph);
 * - `aibox audit verify` passes, or reports only the torn last line an interrupted append leaves
 *   (which the next append repairs, audit/append.ts);
 * - the tag still names a policy that `aibox pull` verifies (the old one or the new one);
 * - a pull's destination holds, per file, the old bytes or the new bytes, never a partial file;
 * - the interrupted operation, run again, succeeds, and then everything verifies.
 *
 * After every kill of a start or an import: the cache verifies (fsckCache: state.json parses, every
 * cached blob and effective policy hashes to its digest, nothing half-written is referenced), the
 * audit log verifies (a torn last line at most), and the next `aibox start` / `aibox import`
 * succeeds, loads the new version, and leaves a cache and a log that verify.
 *
 * `make test` runs CRASH_KILLS points (default 8: 2 in a push, 1 in its audit append, 1 in a pull,
 * 2 in a start, 2 in an import, each drawn from its own slice of the mutations); `make stress` runs
 * STRESS_KILLS (default 100: 30 push, 15 audit append, 10 pull, 25 start, 20 import).
 * CRASH_SEED reproduces a run.
 */
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {isTempName} from '../../src/util/atomic.js'
import {aibox as run, type CliResult} from '../helpers/cli.js'
import {aiboxCrashing, fsckCache, fsckLayout, killPoints, mutationsOf, prng} from '../helpers/crash.js'
import {KEYS_DIR, ORG_BASELINE} from '../helpers/policy-fixtures.js'
import {tmpdir} from '../helpers/tmp.js'

const KILLS = Number(process.env.STRESS_KILLS ?? process.env.CRASH_KILLS ?? 8)
const SEED = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31))
// The points per operation: a quarter in start, a fifth in import, the rest shared by push, its audit append and pull.
const startKills = Math.max(2, Math.round(KILLS * 0.25))
const importKills = Math.max(2, Math.round(KILLS * 0.2))
const auditKills = Math.max(1, Math.round(KILLS * 0.15))
const pullKills = Math.max(1, Math.round(KILLS * 0.1))
const pushKills = Math.max(1, KILLS - startKills - importKills - auditKills - pullKills)
const KEY = path.join(KEYS_DIR, 'alice.key')
const PUB = path.join(KEYS_DIR, 'alice.pub')

describe(`crash safety: kill -9 at ${pushKills + auditKills + pullKills} randomized points of push and pull (seed ${SEED}, CRASH_SEED=${SEED} reproduces) (e2e)`, function () {
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

describe(`crash safety: kill -9 at ${startKills + importKills} randomized points of start and import (seed ${SEED}, CRASH_SEED=${SEED} reproduces) (e2e)`, function () {
  this.timeout(Math.max(300_000, KILLS * 30_000))
  const work = tmpdir('aibox-crash-start-')
  const p = (...f: string[]) => path.join(work, ...f)
  // Its own sequence, so a seed reproduces these points whatever the push and pull suite drew.
  const random = prng(SEED + 1)
  const next = p('baseline-1.5.0.yaml')
  fs.writeFileSync(next, fs.readFileSync(ORG_BASELINE, 'utf8').replace('version: 1.4.0', 'version: 1.5.0'))
  const CAROL_PUB = path.join(KEYS_DIR, 'carol.pub')

  // A layout with 1.4.0 under "stable" (old) and a copy with 1.5.0 pushed over it (new); the
  // configuration names the new one, so a start with a cache of 1.4.0 fetches and caches 1.5.0.
  const old = p('old-layout')
  const fresh = p('new-layout')
  const archive = p('policies.tar')
  const configFile = p('aibox.yaml')
  const airgapConfig = p('aibox-airgap.yaml')
  const warmCache = p('warm-cache')
  const env = (o: {audit: string; cache?: string; config?: string}) => ({
    COSIGN_PASSWORD: 'test',
    AIBOX_AUDIT_LOG: o.audit,
    AIBOX_CACHE: o.cache,
    AIBOX_CONFIG: o.config,
    AIBOX_POLICY_LOCK: undefined,
    XDG_CACHE_HOME: p('xdg'),
    CI: '1',
  })
  const aibox = (args: string[], o: {audit: string; cache?: string; config?: string}): Promise<CliResult> => run(args, {cwd: work, env: env(o), timeoutMs: 120_000})
  async function ok(args: string[], o: {audit: string; cache?: string; config?: string}): Promise<CliResult> {
    const r = await aibox(args, o)
    expect(r.code, `aibox ${args.join(' ')}\n${r.stderr}`).to.equal(0)
    return r
  }
  async function auditVerifies(audit: string, allowTorn: boolean, where: string): Promise<void> {
    if (!fs.existsSync(audit)) return // killed before its first line: nothing to verify
    const r = await aibox(['audit', 'verify', '--log', audit, '--json'], {audit})
    if (r.code === 0) return
    expect(allowTorn && r.code === 2 && r.json?.firstBroken?.reason === 'torn', `${where}: audit verify:\n${r.stdout}\n${r.stderr}`).to.equal(true)
  }
  /** Copies an audit log with its anchor (`<log>.head`). */
  function copyAudit(from: string, to: string): void {
    for (const suffix of ['', '.head']) if (fs.existsSync(from + suffix)) fs.copyFileSync(from + suffix, to + suffix)
  }
  function expectCacheVerifies(cache: string, where: string): void {
    expect(fsckCache(cache).problems, `${where}: the cache must verify`).to.deep.equal([])
  }
  /** The start that must work after every kill: exit 0, 1.5.0 loaded with the effective digest of an uninterrupted run. */
  async function startSucceeds(o: {audit: string; cache: string; config: string}, source: string[], where: string): Promise<CliResult> {
    const r = await aibox(['start', '--json'], o)
    expect(r.code, `${where}: the next start\n${r.stderr}`).to.equal(0)
    expect(r.json.version, where).to.equal('org-baseline@1.5.0')
    expect(r.json.effective.digest, where).to.equal(effective15)
    expect(source, where).to.include(r.json.source)
    expectCacheVerifies(o.cache, `${where}, after the next start`)
    await auditVerifies(o.audit, false, `${where}, after the next start`)
    return r
  }

  let effective15 = ''
  const totals = {cold: 0, warm: 0, importCache: 0, importWarm: 0, importLayout: 0}

  before(async () => {
    const audit = p('setup-audit.jsonl')
    await ok(['push', ORG_BASELINE, `oci:${old}:stable`, '--key', KEY], {audit})
    fs.cpSync(old, fresh, {recursive: true})
    await ok(['push', next, `oci:${fresh}:stable`, '--key', KEY], {audit})
    fs.writeFileSync(configFile, `policy:\n  org: oci:${fresh}:stable\nkeys: [${PUB}]\nmaxStaleness: 7d\n`)
    fs.writeFileSync(airgapConfig, `policy:\n  org: oci:${fresh}:stable\nkeys: [${PUB}]\nmaxStaleness: 7d\nairgap: true\n`)
    // The warm cache: 1.4.0 verified and loaded (a configuration naming the old layout at the same key is not possible, so the cache is filled from a copy at the new path).
    fs.renameSync(fresh, p('new-layout.hold'))
    fs.cpSync(old, fresh, {recursive: true})
    await ok(['start'], {audit: p('warm-audit.jsonl'), cache: warmCache, config: configFile})
    fs.rmSync(fresh, {recursive: true})
    fs.renameSync(p('new-layout.hold'), fresh)
    await ok(['export', `oci:${fresh}:stable`, '-o', archive, '--key', path.join(KEYS_DIR, 'carol.key')], {audit})
    // Dry runs: the mutations of each operation, and the effective policy of 1.5.0.
    const dry = async (name: string, args: string[], o: {cache?: string; config?: string; warm?: boolean}) => {
      const dir = p('dry', name)
      fs.mkdirSync(dir, {recursive: true})
      const audit = path.join(dir, 'audit.jsonl')
      const cache = path.join(dir, 'cache')
      if (o.warm) {
        fs.cpSync(warmCache, cache, {recursive: true})
        copyAudit(p('warm-audit.jsonl'), audit)
      }
      return mutationsOf(args.map((a) => a.replace('{cache}', cache).replace('{dir}', dir)), path.join(dir, 'count'), env({audit, cache, config: o.config}))
    }
    totals.cold = await dry('cold', ['start'], {config: configFile})
    totals.warm = await dry('warm', ['start'], {config: configFile, warm: true})
    totals.importCache = await dry('import-cache', ['import', archive, '--cache', '--cache-dir', '{cache}', '--key', CAROL_PUB, '--key', PUB], {})
    totals.importWarm = await dry('import-warm', ['import', archive, '--cache', '--cache-dir', '{cache}', '--key', CAROL_PUB, '--key', PUB], {warm: true})
    totals.importLayout = await dry('import-layout', ['import', archive, '--to', 'oci:{dir}/dest', '--key', CAROL_PUB, '--key', PUB], {})
    const started = await ok(['start', '--json'], {audit: p('dry', 'cold', 'audit.jsonl'), cache: p('dry', 'cold', 'cache'), config: configFile})
    effective15 = started.json.effective.digest
    expect(started.json.version).to.equal('org-baseline@1.5.0')
    for (const [k, v] of Object.entries(totals)) expect(v, `mutations of ${k}`).to.be.above(5)
  })

  it(`start, killed at ${startKills} points of its cache fill (empty cache, or a cache of 1.4.0 to be updated to 1.5.0): the cache and the log verify, the next start loads 1.5.0`, async () => {
    const points = killPoints(startKills, 1000, random)
    for (const [i, point] of points.entries()) {
      const warm = i % 2 === 1
      const total = warm ? totals.warm : totals.cold
      // The slice drawn on [1, 1000] mapped onto this scenario's mutations.
      const at = Math.max(1, Math.ceil((point * total) / 1000))
      const round = p(`start-${i}`)
      fs.mkdirSync(round, {recursive: true})
      const o = {audit: path.join(round, 'audit.jsonl'), cache: path.join(round, 'cache'), config: configFile}
      if (warm) {
        fs.cpSync(warmCache, o.cache, {recursive: true})
        copyAudit(p('warm-audit.jsonl'), o.audit)
      }
      const where = `start (${warm ? 'warm cache of 1.4.0' : 'empty cache'}) killed before mutation ${at} of ${total} (seed ${SEED})`
      const r = await aiboxCrashing(['start'], {crashAt: at, env: env(o)})
      expect(r.killed || r.code === 0, `${where}: ${r.stderr}`).to.equal(true)
      expectCacheVerifies(o.cache, where)
      await auditVerifies(o.audit, true, where)
      await startSucceeds(o, ['registry', 'cache'], where)
    }
  })

  it(`import, killed at ${importKills} points (into an empty start cache, into a cache of 1.4.0, into an oci: layout): the destination verifies, the import then succeeds and start loads it`, async () => {
    const points = killPoints(importKills, 1000, random)
    for (const [i, point] of points.entries()) {
      const kind = (['cache', 'warm', 'layout'] as const)[i % 3]!
      const total = kind === 'cache' ? totals.importCache : kind === 'warm' ? totals.importWarm : totals.importLayout
      const at = Math.max(1, Math.ceil((point * total) / 1000))
      const round = p(`import-${i}`)
      fs.mkdirSync(round, {recursive: true})
      const audit = path.join(round, 'audit.jsonl')
      const cache = path.join(round, 'cache')
      const dest = path.join(round, 'dest')
      if (kind === 'warm') {
        fs.cpSync(warmCache, cache, {recursive: true})
        copyAudit(p('warm-audit.jsonl'), audit)
      }
      const args = ['import', archive, ...(kind === 'layout' ? ['--to', `oci:${dest}`] : ['--cache', '--cache-dir', cache]), '--key', CAROL_PUB, '--key', PUB]
      const where = `import (${kind === 'layout' ? 'into an oci: layout' : kind === 'warm' ? 'into a cache of 1.4.0' : 'into an empty cache'}) killed before mutation ${at} of ${total} (seed ${SEED})`
      const r = await aiboxCrashing(args, {crashAt: at, env: env({audit})})
      expect(r.killed || r.code === 0, `${where}: ${r.stderr}`).to.equal(true)
      if (kind === 'layout') {
        if (fs.existsSync(path.join(dest, 'index.json'))) expect(fsckLayout(dest).problems, where).to.deep.equal([])
      } else expectCacheVerifies(cache, where)
      await auditVerifies(audit, true, where)
      const again = await aibox([...args, '--json'], {audit})
      expect(again.code, `${where}: the import again\n${again.stderr}`).to.equal(0)
      await auditVerifies(audit, false, `${where}, after the import again`)
      if (kind === 'layout') {
        expect(fsckLayout(dest).problems, `${where}, after the import again`).to.deep.equal([])
        const pulled = await aibox(['pull', `oci:${dest}:stable`, '--key', PUB, '-o', path.join(round, 'pulled'), '--json'], {audit})
        expect(pulled.code, `${where}: pull from the imported layout\n${pulled.stderr}`).to.equal(0)
        expect(pulled.json.version).to.equal('1.5.0')
      } else {
        expectCacheVerifies(cache, `${where}, after the import again`)
        await startSucceeds({audit, cache, config: airgapConfig}, ['import'], where)
      }
    }
  })
})

/**
 * e2e: the hostile-input corpus (testdata/hostile/README.md) through the real binary. Every case
 * of testdata/hostile/cases.json runs `aibox` in its own process with a V8 heap cap, a time
 * limit and its peak RSS measured (test/helpers/limited.ts), and must end with the expected exit
 * code and error code, within bounded time and memory, without polluting Object.prototype,
 * without terminal control characters in its output, and without writing anything.
 *
 * Cases run a few at a time in `before` (each is a separate process; the machine is shared) and
 * each `it` asserts one result. `make test` runs the cases marked `quick`, `make stress` all
 * (HOSTILE_ALL=1). HOSTILE_REPORT=1 prints what every case actually did (for writing new cases);
 * HOSTILE_ONLY=substring runs the matching cases, quick or not.
 */
import fs from 'node:fs'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import path from 'node:path'

import {expect} from 'chai'

import {generated, materialize} from '../../scripts/gen-hostile.js'
import {TESTDATA, aibox} from '../helpers/cli.js'
import {type LimitedResult, aiboxLimited} from '../helpers/limited.js'
import {KEYS_DIR, ORG_BASELINE} from '../helpers/policy-fixtures.js'
import {listFiles, tmpdir} from '../helpers/tmp.js'

const CORPUS = path.join(TESTDATA, 'hostile')

interface Case {
  /** Corpus path: a file or directory under testdata/hostile, or a generated item (scripts/gen-hostile.ts). Absent for references. */
  path?: string
  /** A preset of `runs`. */
  run: string
  /** Part of the quick selection `make test` runs. */
  quick?: boolean
  /** For `reference`: the reference given to aibox. */
  ref?: string
  /** Tag for layout and archive presets (default v1). */
  tag?: string
  /** Arguments appended to the preset's. */
  extra?: string[]
  exit: number
  /** The error code printed as `Code: X` (absent when exit is 0). */
  code?: string
  /** A regular expression the output (stdout and stderr) must match. */
  message?: string
  /** Limits, when a case needs more than the defaults: CPU milliseconds (user + system), peak RSS. */
  maxCpuMs?: number
  maxRssMiB?: number
  why: string
}

interface Manifest {
  defaults: {maxCpuMs: number; maxRssMiB: number; heapMiB: number; timeoutMs: number; concurrency: number}
  /** Presets: `setup` runs first (must succeed), then `args` under the limits. */
  runs: Record<string, {setup?: string[]; args: string[]; env?: Record<string, string>}>
  cases: Case[]
}

const manifest = JSON.parse(fs.readFileSync(path.join(CORPUS, 'cases.json'), 'utf8')) as Manifest
const only = process.env.HOSTILE_ONLY
// `make test` runs the cases marked quick (one or more per attack class, and every bug found);
// `make stress` (HOSTILE_ALL=1) and HOSTILE_ONLY run all of them.
const all = Boolean(process.env.HOSTILE_ALL || only)
const cases = manifest.cases.filter((c) => (all || c.quick) && (!only || `${c.path ?? ''} ${c.ref ?? ''}`.includes(only)))
const label = (c: Case) => c.path ?? `reference ${JSON.stringify(c.ref)}`
// Raw terminal controls in output (tab and newline are fine): see src/util/text.ts.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/

/** A server that challenges every request for Basic credentials: makes aibox read docker's config.json. */
async function challengeServer(): Promise<{host: string; close(): Promise<void>}> {
  const server = http.createServer((req, res) => {
    req.resume()
    res.writeHead(401, {'www-authenticate': 'Basic realm="hostile"', 'content-type': 'application/json'})
    res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({length: Math.min(n, items.length)}, async () => {
    while (next < items.length) await fn(items[next++]!)
  }))
}

describe(`hostile input corpus: ${cases.length} of ${manifest.cases.length} cases${all ? '' : ' (the quick ones; make stress runs all)'} (e2e)`, function () {
  this.timeout(900_000)
  const results = new Map<Case, {r: LimitedResult; out: string}>()
  const generatedItems = new Map(generated().map((g) => [g.path, g]))

  before(async function () {
    const root = tmpdir('aibox-hostile-')
    const work = tmpdir('aibox-hostile-work-')
    const server = await challengeServer()
    try {
      // A signed policy in a layout, for presets that need something real to verify against.
      const signed = path.join(work, 'signed')
      const push = await aibox(['push', ORG_BASELINE, `oci:${signed}`, '--key', path.join(KEYS_DIR, 'alice.key')], {env: {COSIGN_PASSWORD: 'test', AIBOX_AUDIT_LOG: path.join(work, 'audit.jsonl')}})
      expect(push.code, push.stderr).to.equal(0)
      const where = new Map<string, string>()
      const made = new Map<string, string>()
      for (const c of cases) {
        if (!c.path || where.has(c.path)) continue
        // A generated item, or a file inside a generated directory (e.g. bundle/link-to-devzero/policy.yaml).
        const owner = [...generatedItems.keys()].find((g) => c.path === g || c.path!.startsWith(`${g}/`))
        if (owner) {
          const dir = made.get(owner) ?? materialize(generatedItems.get(owner)!, root)
          made.set(owner, dir)
          where.set(c.path, path.join(dir, c.path.slice(owner.length)))
        }
        else if (fs.existsSync(path.join(CORPUS, c.path))) where.set(c.path, path.join(CORPUS, c.path))
        else throw new Error(`cases.json names ${c.path}: neither in testdata/hostile nor generated by scripts/gen-hostile.ts`)
      }
      await pool(cases, Number(process.env.HOSTILE_CONCURRENCY ?? manifest.defaults.concurrency), async (c) => {
        const preset = manifest.runs[c.run]
        if (!preset) throw new Error(`cases.json: unknown run preset ${c.run}`)
        const out = tmpdir('aibox-hostile-out-')
        const vars: Record<string, string> = {
          path: c.path ? where.get(c.path)! : '',
          ref: c.ref ?? '',
          tag: c.tag ?? 'v1',
          out,
          signed,
          keys: KEYS_DIR,
          challenge: server.host,
        }
        const fill = (s: string) => s.replace(/\{(\w+)\}/g, (_, k: string) => vars[k] ?? `{${k}}`)
        const args = [...preset.args.map(fill), ...(c.extra ?? []).map(fill)]
        const env = {COSIGN_PASSWORD: 'test', AIBOX_AUDIT_LOG: path.join(work, 'audit.jsonl'), ...Object.fromEntries(Object.entries(preset.env ?? {}).map(([k, v]) => [k, fill(v)]))}
        if (preset.setup) {
          const s = await aibox(preset.setup.map(fill), {env, cwd: work})
          if (s.code !== 0) throw new Error(`setup of ${label(c)} failed: aibox ${preset.setup.join(' ')}\n${s.stderr}`)
        }
        const r = await aiboxLimited(args, {heapMiB: manifest.defaults.heapMiB, timeoutMs: manifest.defaults.timeoutMs}, {env, cwd: work})
        results.set(c, {r, out})
        if (process.env.HOSTILE_REPORT) {
          const code = /^\s*Code: (\S+)$/m.exec(r.stderr)?.[1] ?? ''
          const first = r.stderr.split('\n').find((l) => l.trim()) ?? ''
          console.log(`${label(c)}\t${c.run}\texit=${r.code}${r.timedOut ? ' TIMEOUT' : ''}\t${code}\t${r.cpuMs}ms CPU (${r.ms}ms)\t${r.rssMiB?.toFixed(0)}MiB\t${first.trim().slice(0, 200)}`)
        }
      })
    } finally {
      await server.close()
    }
  })

  for (const c of cases) {
    it(`${label(c)} (${c.run}): exit ${c.exit}${c.code ? ` ${c.code}` : ''} — ${c.why}`, () => {
      const got = results.get(c)
      if (!got) throw new Error('the case did not run (see the before hook)')
      const {r, out} = got
      const where = `aibox ${c.run} on ${label(c)}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`
      expect(r.timedOut, `killed after ${r.ms} ms: ${where}`).to.equal(false)
      expect(r.code, where).to.equal(c.exit)
      if (c.code) {
        expect(/^\s*Code: (\S+)$/m.exec(r.stderr)?.[1], where).to.equal(c.code)
        expect(r.stderr, where).to.not.match(/INTERNAL|TypeError|RangeError|Maximum call stack|at .*\.js:\d+:\d+/)
      }
      // inspect prints the problems it finds on stdout; errors go to stderr.
      if (c.message) expect(`${r.stdout}\n${r.stderr}`, where).to.match(new RegExp(c.message))
      expect(r.cpuMs, `no resource report: ${where}`).to.be.a('number')
      expect(r.cpuMs!, `CPU time: ${where}`).to.be.below(c.maxCpuMs ?? manifest.defaults.maxCpuMs)
      expect(r.rssMiB!, `peak RSS: ${where}`).to.be.below(c.maxRssMiB ?? manifest.defaults.maxRssMiB)
      expect(r.polluted, 'Object/Array/Function.prototype were modified').to.deep.equal([])
      expect(r.outputBytes, 'output is bounded').to.be.below(1024 * 1024)
      expect(CONTROL.test(r.stdout) || CONTROL.test(r.stderr), `terminal control characters in the output: ${JSON.stringify(r.stderr.slice(0, 500))}`).to.equal(false)
      if (c.exit !== 0) expect(listFiles(out), 'nothing written by a refused command').to.deep.equal([])
    })
  }
})

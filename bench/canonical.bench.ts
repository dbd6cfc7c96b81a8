/**
 * Canonical-digest throughput on a generated 50,000-rule bundle (architecture.md: "report
 * MB/s; JSON path ≥ 40 MB/s"), JSON and YAML renderings of the same data.
 *
 * Measured in this run, in-process, median of several runs after a warm-up:
 * - baseline: JSON.parse + canonicalize 4 + sha256 of the same bytes (no strictness at all);
 * - JSON path: `canonicalDocument` (strict scanner: grammar, duplicate keys, >2^53 integers,
 *   lone surrogates; canonical bytes straight from the scan) + sha256;
 * - full load: `loadBundleText` (strict parse, tree, schema validation, digest), for context;
 * - YAML path: `canonicalDocument` on the YAML rendering (the `yaml` package, ~2 MB/s).
 * Prints PASS/FAIL against the 40 MB/s target; never exits non-zero on a miss (timings
 * depend on the machine). BENCH_RULES=n changes the size, BENCH_RUNS=n the repetitions.
 */
import {createHash} from 'node:crypto'

import canonicalize from 'canonicalize'
import {stringify} from 'yaml'

import {canonicalDocument} from '../src/bundle/canonical.js'
import {loadBundleText} from '../src/bundle/load.js'

const RULES = Number(process.env.BENCH_RULES ?? 50_000)
const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const TARGET_MBS = 40

function bundle(n: number) {
  const rules = []
  for (let i = 0; i < n; i++) {
    // Keys in a natural, unsorted order (as people write them), a realistic mix of shapes.
    const rule: Record<string, unknown> = {
      id: `rule-${String(i).padStart(6, '0')}`,
      match: i % 3 === 0 ? {toolName: `tool_${i % 97}_*`, args: {path: {startsWith: `/workspace/team-${i % 13}/project-${i}/`}}} : {toolName: `get_${i % 211}_*`},
      verdict: i % 4 === 0 ? 'deny' : 'allow',
    }
    if (rule.verdict === 'deny') rule.reason = i % 8 === 0 ? 'destructive-action-blocked' : 'system-path-blocked'
    if (i % 10 === 0) rule.description = `Rule ${i}: keeps agents of project ${i} inside their workspace — “curly quotes”, accents (é) and emoji 🚀`
    rules.push(rule)
  }
  return {
    apiVersion: 'aibox.dev/v1',
    kind: 'PolicyBundle',
    metadata: {name: 'bench-bundle', version: '1.0.0', tier: 'org', description: `${n} generated rules`},
    policy: {version: 1, network: {mode: 'deny-by-default', allow: [{id: 'llm', hosts: ['llm.internal'], ports: [443]}]}, resources: {cpu: '4', memory: '8Gi'}},
    rules,
    defaultVerdict: 'deny',
  }
}

function time<T>(runs: number, fn: () => T): {ms: number; result: T} {
  let result = fn() // warm-up
  const ts: number[] = []
  for (let i = 0; i < runs; i++) {
    ;(globalThis as {gc?: () => void}).gc?.()
    const t = process.hrtime.bigint()
    result = fn()
    ts.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  ts.sort((a, b) => a - b)
  return {ms: ts[Math.floor(ts.length / 2)], result}
}

const mbs = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000)
const row = (name: string, bytes: number, ms: number, extra = '') => console.log(`${name.padEnd(44)} ${ms.toFixed(0).padStart(7)} ms ${mbs(bytes, ms).toFixed(1).padStart(8)} MB/s${extra}`)

const doc = bundle(RULES)
const json = Buffer.from(JSON.stringify(doc, null, 2))
const yaml = Buffer.from(stringify(doc, {lineWidth: 0}))
console.log(`canonical digest of a ${RULES}-rule bundle: JSON ${(json.length / 1e6).toFixed(1)} MB, YAML ${(yaml.length / 1e6).toFixed(1)} MB, median of ${RUNS} runs`)

const base = time(RUNS, () => `sha256:${createHash('sha256').update(canonicalize(JSON.parse(json.toString('utf8')))!).digest('hex')}`)
row('baseline: JSON.parse + canonicalize + sha256', json.length, base.ms)
const fast = time(RUNS, () => canonicalDocument(json, 'bench.json').digest)
if (fast.result !== base.result) throw new Error(`digest mismatch: ${fast.result} vs ${base.result}`)
const ratio = base.ms / fast.ms
const pass = mbs(json.length, fast.ms) >= TARGET_MBS
row('JSON path: strict scan + sha256', json.length, fast.ms, `   ${ratio.toFixed(2)}x baseline   ${pass ? 'PASS' : 'FAIL'} (target ≥ ${TARGET_MBS} MB/s)`)
const full = time(Math.max(1, Math.min(RUNS, 3)), () => loadBundleText(json, 'bench.json').digest)
row('JSON full load: + tree + schema validation', json.length, full.ms)
if (full.result !== base.result) throw new Error('digest mismatch (full load)')
const y = time(1, () => canonicalDocument(yaml, 'bench.yaml').digest)
if (y.result !== base.result) throw new Error(`YAML digest differs from JSON: ${y.result}`)
row('YAML path: yaml + strict walk + canonicalize', yaml.length, y.ms, '   (same digest as JSON)')

/**
 * Policy unit tests, like `opa test`: a YAML/JSON file of cases, each a tool call or a
 * command line with the verdict (and optionally the rule, reason, tier or risk) it must get.
 */
import {type Problem, ValidationError} from '../errors.js'
import {type Decision, evaluateCall, evaluateCommand, type EvalTarget} from './evaluate.js'
import {isObject, type JsonObject} from './json.js'
import {splitCommand} from './match.js'
import type {Risk, Tier, Verdict} from './model.js'
import {parseDocument, readSource, sortProblems} from './parse.js'
import {SCHEMA_IDS, validateDocument} from './schema.js'

export interface PolicyTestCase {
  name: string
  tool?: string
  args?: Record<string, unknown>
  /** argv, or a command line split like a shell would (quotes, no expansion). */
  command?: string | string[]
  expect: Verdict
  /** Expected deciding rule id (or tools match); null expects the default. */
  rule?: string | null
  reason?: string
  tier?: Tier
  risk?: Risk
}

export interface PolicyTestResult {
  name: string
  ok: boolean
  /** What was evaluated: "tool get_file" or "command git push". */
  subject: string
  expected: {verdict: Verdict; rule?: string | null; reason?: string; tier?: Tier; risk?: Risk}
  actual: Decision
  /** One line per mismatch. */
  failures: string[]
}

export interface PolicyTestReport {
  ok: boolean
  passed: number
  failed: number
  results: PolicyTestResult[]
}

/** Reads a tests file strictly (every problem reported at once). */
export function loadPolicyTests(file: string, input?: string | Uint8Array): PolicyTestCase[] {
  const doc = parseDocument(input ?? readSource(file), file)
  const problems: Problem[] = [...doc.problems, ...validateDocument(doc, SCHEMA_IDS.tests)]
  const tests = isObject(doc.value) && Array.isArray(doc.value.tests) ? doc.value.tests : []
  const names = new Map<string, number>()
  tests.forEach((t, i) => {
    if (!isObject(t)) return
    const at = (k: string) => ({file, ...doc.locate(`/tests/${i}${k}`, true), pointer: `/tests/${i}${k}`})
    const hasTool = t.tool !== undefined
    const hasCommand = t.command !== undefined
    if (hasTool === hasCommand) problems.push({...at(''), message: 'a test needs exactly one of tool (with args) or command'})
    if (t.args !== undefined && !hasTool) problems.push({...at('/args'), message: 'args belong to a tool test'})
    if (t.risk !== undefined && !hasCommand) problems.push({...at('/risk'), message: 'risk applies to command tests'})
    if (typeof t.command === 'string') {
      try {
        if (splitCommand(t.command).length === 0) problems.push({...at('/command'), message: 'command is empty'})
      } catch (err) {
        problems.push({...at('/command'), message: (err as Error).message})
      }
    }
    if (typeof t.name === 'string') {
      const first = names.get(t.name)
      if (first !== undefined) problems.push({...at('/name'), message: `duplicate test name ${JSON.stringify(t.name)} (first at tests[${first}])`})
      else names.set(t.name, i)
    }
  })
  if (problems.length > 0) {
    throw new ValidationError('INVALID_TESTS', `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, sortProblems(problems))
  }
  return tests as unknown as PolicyTestCase[]
}

/** Runs every case against a bundle, a stack or an effective policy. */
export function runPolicyTests(target: EvalTarget, cases: readonly PolicyTestCase[]): PolicyTestReport {
  const results = cases.map((c): PolicyTestResult => {
    const argv = c.command === undefined ? undefined : Array.isArray(c.command) ? c.command : splitCommand(c.command)
    const actual = argv ? evaluateCommand(target, argv) : evaluateCall(target, {tool: c.tool!, args: (c.args ?? {}) as JsonObject})
    const expected: PolicyTestResult['expected'] = {verdict: c.expect}
    const failures: string[] = []
    if (actual.verdict !== c.expect) failures.push(`verdict: expected ${c.expect}, got ${actual.verdict}`)
    if (c.rule !== undefined) {
      expected.rule = c.rule
      if (actual.rule !== c.rule) failures.push(`rule: expected ${c.rule === null ? 'the default' : JSON.stringify(c.rule)}, got ${actual.rule === null ? 'the default' : JSON.stringify(actual.rule)}`)
    }
    if (c.reason !== undefined) {
      expected.reason = c.reason
      if (actual.reason !== c.reason) failures.push(`reason: expected ${JSON.stringify(c.reason)}, got ${JSON.stringify(actual.reason)}`)
    }
    if (c.tier !== undefined) {
      expected.tier = c.tier
      if (actual.tier !== c.tier) failures.push(`tier: expected ${c.tier}, got ${actual.tier ?? 'none'}`)
    }
    if (c.risk !== undefined) {
      expected.risk = c.risk
      if (actual.risk !== c.risk) failures.push(`risk: expected ${c.risk}, got ${actual.risk ?? 'none'}`)
    }
    const subject = argv ? `command ${argv.join(' ')}` : `tool ${c.tool}`
    return {name: c.name, ok: failures.length === 0, subject, expected, actual, failures}
  })
  const failed = results.filter((r) => !r.ok).length
  return {ok: failed === 0, passed: results.length - failed, failed, results}
}

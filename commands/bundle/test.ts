import {Args} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {refuse} from '../../src/cli/outcome.js'
import {loadBundle, loadPolicyTests, type PolicyTestReport, runPolicyTests} from '../../src/bundle/index.js'
import {InputError, VerificationError} from '../../src/errors.js'

export default class Test extends BaseCommand<PolicyTestReport> {
  static override summary = 'Run policy unit tests: expected verdicts for tool calls and commands (like opa test).'
  static override description = `The last argument is the tests file; the others are the policy files, org first (a stack is checked tighten-only first). Each test is a tool call (tool, args) or a command (argv or a command line) with the verdict it must get, and optionally the rule, reason, tier or risk. Exit 2 when a test fails. Accepts aibox bundles, AI-Box v1 policy files and HELM policy files.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> helm/policy.yaml tests/helm-starter.tests.yaml',
    '<%= config.bin %> <%= command.id %> org/baseline.yaml teams/alpha/policy.yaml tests/stack.tests.yaml --json',
  ]
  static override strict = false
  static override args = {
    files: Args.string({description: 'policy files (org first), then the tests file', required: true}),
  }

  async run(): Promise<PolicyTestReport> {
    const {argv} = await this.parse(Test)
    const files = argv as string[]
    if (files.length < 2) throw new InputError('MISSING_TESTS', 'give the policy file(s) and then the tests file', {suggestions: ['aibox bundle test policy.yaml policy.tests.yaml']})
    const testsFile = files.at(-1)!
    const stack = files.slice(0, -1).map((f) => loadBundle(f, {accept: ['aibox-bundle', 'aibox-policy', 'helm-policy']}))
    const cases = loadPolicyTests(testsFile)
    const report = runPolicyTests(stack, cases)
    for (const r of report.results) {
      this.log(`${r.ok ? 'PASS' : 'FAIL'}  ${r.name}`)
      for (const f of r.failures) this.log(`        ${r.subject}: ${f}`)
    }
    this.log(`${report.passed} passed, ${report.failed} failed`)
    if (!report.ok) {
      return refuse(this, report, new VerificationError('TESTS_FAILED', `${report.failed} of ${report.results.length} policy test${report.results.length === 1 ? '' : 's'} failed`, {details: {failed: report.results.filter((r) => !r.ok).map((r) => r.name)}}))
    }
    return report
  }
}

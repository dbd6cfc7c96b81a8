import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {refuse} from '../../src/cli/outcome.js'
import {KIND_LABEL, loadBundle, type Tier} from '../../src/bundle/index.js'
import {type AiboxError, formatProblem, type Problem, ValidationError} from '../../src/errors.js'

export interface LintResult {
  ok: boolean
  files: Array<{file: string; ok: boolean; kind?: string; digest?: string; problems: Problem[]}>
  problems: Problem[]
}

export default class Lint extends BaseCommand<LintResult> {
  static override summary = 'Validate policy files and list every problem.'
  static override description = `Parses each file strictly (duplicate keys, non-JSON YAML values, integers above 2^53, alias bombs) and validates it against its schema (aibox bundle, AI-Box v1 policy, HELM PolicyBundle or HELM policy file). Every problem is listed with file:line:col and its JSON pointer; exit 1 when there is any.`
  static override examples = ['<%= config.bin %> <%= command.id %> org/baseline.yaml teams/alpha/policy.yaml', '<%= config.bin %> <%= command.id %> policy.yaml --json']
  static override strict = false
  static override args = {
    file: Args.string({description: 'policy files to check', required: true}),
  }
  static override flags = {
    tier: Flags.string({description: 'tier for files without an envelope (bare AI-Box v1 policies)', options: ['org', 'team', 'project']}),
  }

  async run(): Promise<LintResult> {
    const {argv, flags} = await this.parse(Lint)
    const files = argv as string[]
    const result: LintResult = {ok: true, files: [], problems: []}
    let fatal: AiboxError | undefined
    for (const file of files) {
      try {
        const b = loadBundle(file, {tier: flags.tier as Tier | undefined})
        result.files.push({file, ok: true, kind: b.kind, digest: b.digest, problems: []})
        this.log(`ok  ${file} (${KIND_LABEL[b.kind]}${b.tier ? `, ${b.tier}` : ''})`)
      } catch (err) {
        const e = err as AiboxError
        if (!(err instanceof ValidationError)) {
          if (!(e && typeof e.code === 'string')) throw err
          fatal ??= e
        }
        const message = e.message.startsWith(`${file}: `) ? e.message.slice(file.length + 2) : e.message
        const problems: Problem[] = err instanceof ValidationError && err.problems.length > 0 ? err.problems : [{file, message}]
        result.files.push({file, ok: false, problems})
        result.problems.push(...problems)
        result.ok = false
        this.log(`bad ${file}`)
      }
    }
    if (result.ok) return result
    const n = result.problems.length
    const err = fatal && files.length === 1 ? fatal : new ValidationError('LINT_FAILED', `${n} problem${n === 1 ? '' : 's'} in ${result.files.filter((f) => !f.ok).length} of ${files.length} file${files.length === 1 ? '' : 's'}`, result.problems, {
      suggestions: ['fix each problem at the position shown; README "Policy bundles" documents the format'],
    })
    if (!this.json && !(err instanceof ValidationError)) this.info(result.problems.map((p) => formatProblem(p)).join('\n'))
    return refuse(this, result, err)
  }
}

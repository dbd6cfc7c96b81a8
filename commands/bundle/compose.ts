import path from 'node:path'

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {type ComposeConflict, type ComposedRule, composeBundles, composedJson, loadBundle, toYaml, writeOutputFile} from '../../src/bundle/index.js'

export interface ComposeCommandResult {
  rules: ComposedRule[]
  conflicts: ComposeConflict[]
  warnings: string[]
  digest: string
  output: string | null
}

export default class Compose extends BaseCommand<ComposeCommandResult> {
  static override summary = 'Compose bundles: merge rules by id (first wins), report conflicts, print the composed digest.'
  static override description = `Rules are merged by id; the first bundle that defines an id wins, and every conflict (same id, different content) is reported. The result is sorted by id in code-point order, so the composed digest is deterministic. The policy section and defaultVerdict come from the first bundle that has them. Works on aibox PolicyBundles or HELM PolicyBundles (seed 001), not a mix. -o writes the composed bundle atomically (canonical JSON, or YAML for .yaml/.yml).`
  static override examples = [
    '<%= config.bin %> <%= command.id %> compose/base-rules.yaml compose/extra-rules.yaml',
    '<%= config.bin %> <%= command.id %> helm/production-policy.yaml helm/staging-policy.yaml -o composed.json --json',
  ]
  static override strict = false
  static override args = {
    files: Args.string({description: 'bundles, first wins', required: true}),
  }
  static override flags = {
    output: Flags.string({char: 'o', description: 'write the composed bundle to this file (atomically)'}),
    force: Flags.boolean({description: 'replace an existing output file', default: false}),
    name: Flags.string({description: 'metadata.name of the composed bundle (default: the first bundle\'s)'}),
    'bundle-version': Flags.string({description: 'metadata.version of the composed bundle (default: the first bundle\'s)'}),
  }

  async run(): Promise<ComposeCommandResult> {
    const {argv, flags} = await this.parse(Compose)
    const bundles = (argv as string[]).map((f) => loadBundle(f, {accept: ['aibox-bundle', 'helm-bundle']}))
    const r = composeBundles(bundles, {name: flags.name, version: flags['bundle-version']})
    let output: string | null = null
    if (flags.output) {
      const ext = path.extname(flags.output).toLowerCase()
      const text = ext === '.yaml' || ext === '.yml' ? `# composed by aibox bundle compose; content digest ${r.digest}\n${toYaml(r.document)}` : composedJson(r)
      writeOutputFile(flags.output, text, {overwrite: flags.force})
      output = flags.output
    }
    for (const rule of r.rules) this.log(`${rule.id.padEnd(32)} ${String(rule.verdict ?? '').padEnd(8)} ${rule.from}`)
    for (const c of r.conflicts) this.info(`conflict: ${c.field === 'rule' ? `rule "${c.id}"` : c.id} differs; kept ${c.kept}, dropped ${c.dropped}`)
    for (const w of r.warnings) this.info(`warning: ${w}`)
    this.log(`composed ${r.rules.length} rules from ${bundles.length} bundles, ${r.conflicts.length} conflict${r.conflicts.length === 1 ? '' : 's'}`)
    this.log(`digest ${r.digest}`)
    if (output) this.info(`wrote ${output}`)
    return {rules: r.rules, conflicts: r.conflicts, warnings: r.warnings, digest: r.digest, output}
  }
}

import path from 'node:path'

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {loadBundleText, scaffoldBundle, type Tier, writeOutputFile} from '../../src/bundle/index.js'

export interface InitResult {
  file: string
  name: string
  tier: Tier
  format: 'yaml' | 'json'
  digest: string
}

export default class Init extends BaseCommand<InitResult> {
  static override summary = 'Scaffold a valid policy bundle to start from.'
  static override description = `Writes a commented, valid aibox PolicyBundle for the tier: an org baseline with every section of the AI-Box v1 policy and a few tool-call rules, or a team/project bundle that tightens its parents. Never overwrites a file unless --force is given; the file is written atomically.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> org/baseline.yaml --name org-baseline',
    '<%= config.bin %> <%= command.id %> teams/alpha/policy.yaml --tier team --name team-alpha',
    '<%= config.bin %> <%= command.id %> policy.json --tier project --name webapp --json',
  ]
  static override args = {
    file: Args.string({description: 'file to create (.yaml, .yml or .json)', default: 'policy-bundle.yaml'}),
  }
  static override flags = {
    name: Flags.string({description: 'metadata.name (a DNS label); default: from the file or directory name'}),
    tier: Flags.string({description: 'tier of the bundle', options: ['org', 'team', 'project'], default: 'org'}),
    force: Flags.boolean({description: 'replace an existing file', default: false}),
  }

  async run(): Promise<InitResult> {
    const {args, flags} = await this.parse(Init)
    const file = args.file
    const format = path.extname(file).toLowerCase() === '.json' ? 'json' : 'yaml'
    const tier = flags.tier as Tier
    const name = flags.name ?? defaultName(file)
    const scaffold = scaffoldBundle({name, tier, format})
    // Validate before writing: a bad --name must not leave a file behind.
    const bundle = loadBundleText(scaffold.text, file)
    writeOutputFile(file, scaffold.text, {overwrite: flags.force})
    this.log(`created ${file}: ${tier} bundle "${name}" (${bundle.digest})`)
    this.info(`next: edit it, then run "aibox bundle lint ${file}"`)
    return {file, name, tier, format, digest: bundle.digest}
  }
}

function defaultName(file: string): string {
  const base = path.basename(file).replace(/\.(ya?ml|json)$/i, '')
  const from = ['policy', 'policy-bundle', 'bundle', 'baseline'].includes(base) ? path.basename(path.dirname(path.resolve(file))) : base
  const name = from
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '')
  return name || 'policy'
}

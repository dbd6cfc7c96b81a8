import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {refuse} from '../../src/cli/outcome.js'
import {type DiffResult, diffBundles, loadBundle} from '../../src/bundle/index.js'
import {VerificationError} from '../../src/errors.js'

export default class Diff extends BaseCommand<DiffResult> {
  static override summary = 'Show what got tighter and what got looser between two versions of a policy.'
  static override description = `A semantic diff: "looser" means exactly what "aibox bundle check" refuses (the same comparison), applied to the two files as written; a limit the new version drops is a loosening. Key order, comments and formatting are not changes. --fail-on-looser exits 2 when anything got looser (for CI on policy pull requests).`
  static override examples = ['<%= config.bin %> <%= command.id %> org/baseline.yaml org/baseline-next.yaml', '<%= config.bin %> <%= command.id %> old.yaml new.yaml --fail-on-looser --json']
  static override args = {
    old: Args.string({description: 'the previous version', required: true}),
    new: Args.string({description: 'the new version', required: true}),
  }
  static override flags = {
    'fail-on-looser': Flags.boolean({description: 'exit 2 when the new version is looser anywhere', default: false}),
  }

  async run(): Promise<DiffResult> {
    const {args, flags} = await this.parse(Diff)
    const r = diffBundles(loadBundle(args.old), loadBundle(args.new))
    if (r.identical) this.log('no change (same content digest)')
    else if (r.looser.length === 0 && r.tighter.length === 0) this.log('no change in what the policy allows (metadata or formatting only)')
    for (const i of r.tighter) this.log(`tighter  ${i.field}: ${i.detail}`)
    for (const i of r.looser) this.log(`LOOSER   ${i.field}: ${i.detail}`)
    this.info(`old ${r.old.digest}${r.old.version ? ` (${r.old.version})` : ''}\nnew ${r.new.digest}${r.new.version ? ` (${r.new.version})` : ''}`)
    if (flags['fail-on-looser'] && r.looser.length > 0) {
      const n = r.looser.length
      return refuse(
        this,
        r,
        new VerificationError('POLICY_LOOSENED', `${args.new} is looser than ${args.old} in ${n} place${n === 1 ? '' : 's'}:\n${r.looser.map((i) => `  ${i.field}: ${i.detail}`).join('\n')}`, {
          details: {looser: r.looser},
          suggestions: ['if the loosening is intended, have it approved by the owners of this tier'],
        }),
      )
    }
    return r
  }
}

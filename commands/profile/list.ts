import {Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {type ProfileCatalog, profileCatalog} from '../../src/profile/index.js'

export type ProfileListResult = ProfileCatalog

export default class ProfileList extends BaseCommand<ProfileListResult> {
  static override summary = 'List the org policy profiles of a stack, weakest first'
  static override description = `Reads the profiles the org admin defined in the org bundle (README "Profiles") from the verified copy aibox start cached for the configured stack (or from an org bundle file with --bundle), weakest first, and marks the org's default, the current selection (AIBOX_PROFILE, else aibox.yaml profile:, else the default) and the profile aibox start loaded last. A pending change recorded by aibox profile set is shown too.

Exit codes: 0 ok, 1 invalid configuration or bundle, 3 the cache holds no verified org policy yet (run aibox start once, or pass --bundle).`
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --config projects/webapp/aibox.yaml --json', '<%= config.bin %> <%= command.id %> --bundle org/baseline.yaml']
  static override flags = {
    config: Flags.string({char: 'c', summary: 'configuration file (default: AIBOX_CONFIG, ./aibox.yaml, then ~/.config/aibox/aibox.yaml)', helpValue: 'FILE'}),
    cache: Flags.string({summary: 'verified-policy cache directory (default: AIBOX_CACHE, the configuration, ~/.cache/aibox)', helpValue: 'DIR'}),
    bundle: Flags.string({summary: 'read the profiles of this org bundle file instead of the cache (for its authors)', helpValue: 'FILE'}),
  }

  async run(): Promise<ProfileListResult> {
    const {flags} = await this.parse(ProfileList)
    const c = await profileCatalog({...(flags.config ? {config: flags.config} : {}), ...(flags.cache ? {cache: flags.cache} : {}), ...(flags.bundle ? {bundle: flags.bundle} : {})})
    const org = `${c.org.name ?? c.org.ref}${c.org.version ? ` ${c.org.version}` : ''}`
    if (c.profiles.length === 0) {
      this.log(`${org} defines no profiles`)
      return c
    }
    this.log(`profiles of ${org} (${c.source === 'cache' ? `verified, ${c.org.ref}` : c.org.ref}), weakest first:`)
    for (const p of c.profiles) {
      const marks = [p.default ? 'default' : '', p.selected ? `selected${c.selectedBy && c.selectedBy !== 'default' ? ` by ${c.selectedBy}` : ''}` : '', p.lastLoaded ? 'last loaded' : ''].filter(Boolean)
      this.log(`  ${p.rank + 1}. ${p.name}${marks.length ? ` [${marks.join(', ')}]` : ''}${p.description ? ` - ${p.description}` : ''}`)
    }
    if (c.pending) this.log(`pending change: ${c.pending.from ?? '(none)'} -> ${c.pending.to} (ticket ${c.pending.ticket}), applied by the next aibox start`)
    return c
  }
}

import {Args} from '@oclif/core'

import {BaseCommand} from '../src/cli/base.js'
import {registryFlags, registriesOf, registryOptions} from '../src/cli/registry-flags.js'
import {type TagsResult, listTags, openForRead} from '../src/distribute/index.js'

export type TagsCommandResult = TagsResult & {repository: string}

export default class Tags extends BaseCommand<TagsCommandResult> {
  static override summary = 'List the tags of a policy repository or layout, versions in semver order'
  static override description = `REPO is registry/repo, oci:DIR or oci-archive:FILE (a tag or digest in it is ignored). Channel tags (stable, …) come first, then versions by semver precedence (1.2.0 < 1.10.0, 1.0.0-rc.1 < 1.0.0). The referrers bookkeeping tags (sha256-<hex>, cosign's sha256-<hex>.sig) are hidden.`
  static override examples = ['<%= config.bin %> tags registry.example.com/policies/org', '<%= config.bin %> tags oci:./policies --json']
  static override args = {
    repo: Args.string({description: 'repository or layout', required: true}),
  }
  static override flags = {...registryFlags}

  async run(): Promise<TagsCommandResult> {
    const {args, flags} = await this.parse(Tags)
    const registry = await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(args.repo)})
    const opened = await openForRead(args.repo, {registry})
    let r: TagsResult
    try {
      r = await listTags(opened.target)
    } finally {
      await opened.close()
    }
    for (const t of r.tags) this.log(t)
    if (r.tags.length === 0) this.info(`${r.location} has no tags`)
    return {repository: args.repo, ...r}
  }
}

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {canonicalDocument, canonicalJson, type DocFormat, KIND_LABEL, loadBundle, readSource} from '../../src/bundle/index.js'

export interface HashResult {
  digest: string
  file: string
  format: DocFormat
  /** The document kind (absent with --raw). */
  kind?: string
  /** Size of the RFC 8785 canonical JSON in bytes. */
  canonicalBytes: number
  /** metadata.tenant (README "Tenants"). */
  tenant?: string
}

export default class Hash extends BaseCommand<HashResult> {
  static override summary = 'Print the content digest of a policy file (sha256 of its RFC 8785 canonical JSON).'
  static override description = `The digest is sha256 over the RFC 8785 (JCS) canonical JSON of the parsed document, so comments, key order, quoting and YAML-vs-JSON do not change it. The file is validated first; --raw hashes any JSON or YAML document without schema validation (still parsed strictly). Use "-" to read standard input.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> org/baseline.yaml',
    '<%= config.bin %> <%= command.id %> --raw data.json --json',
    'cat policy.yaml | <%= config.bin %> <%= command.id %> - --format yaml',
  ]
  static override args = {
    file: Args.string({description: 'file to hash ("-" for stdin)', required: true}),
  }
  static override flags = {
    raw: Flags.boolean({description: 'hash any JSON/YAML document without schema validation', default: false}),
    format: Flags.string({description: 'input format (default: from the extension, else the content)', options: ['json', 'yaml']}),
  }

  async run(): Promise<HashResult> {
    const {args, flags} = await this.parse(Hash)
    const format = flags.format as DocFormat | undefined
    if (flags.raw) {
      const c = canonicalDocument(readSource(args.file), args.file, {format})
      this.log(`${c.digest}  ${args.file}`)
      return {digest: c.digest, file: args.file, format: c.format, canonicalBytes: c.canonical.length}
    }
    const b = loadBundle(args.file, {format})
    this.log(`${b.digest}  ${args.file}`)
    this.info(`${KIND_LABEL[b.kind]}${b.name ? ` ${b.name}` : ''}${b.version ? ` ${b.version}` : ''}${b.tenant ? ` (tenant ${b.tenant})` : ''}`)
    const size = b.source.canonical?.length ?? Buffer.byteLength(canonicalJson(b.document))
    return {digest: b.digest, file: args.file, format: b.format, kind: b.kind, canonicalBytes: size, ...(b.tenant !== undefined ? {tenant: b.tenant} : {})}
  }
}


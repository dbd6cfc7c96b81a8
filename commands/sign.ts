import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../src/cli/base.js'
import {PasswordSession, SIGN_FORMATS, type SignFileResult, type SignFormat, signFile} from '../src/sign/index.js'

export type SignResult = Omit<SignFileResult, 'text'>

export default class Sign extends BaseCommand<SignResult> {
  static override summary = 'Sign a file with a Cosign-compatible key'
  static override description = `Formats (--format):
  bundle   Sigstore bundle v0.3, DSSE envelope with an in-toto Statement v1 whose subject is the file's digest and predicateType https://sigstore.dev/cosign/sign/v1 (default; what cosign v3 writes and accepts)
  dsse     a bare DSSE envelope with the same statement (keyid = the key's SSH fingerprint)
  raw      base64 signature over the file's bytes (cosign sign-blob; no trailing newline in --output files)
  message  Sigstore bundle v0.3 with a message signature over the file (cosign sign-blob --bundle)

The signature goes to --output (written atomically) or to stdout. Signing is offline: no transparency log, no timestamp authority, no network.`

  static override examples = [
    'COSIGN_PASSWORD= <%= config.bin %> sign policy.yaml --key cosign.key --output policy.yaml.sigstore.json',
    '<%= config.bin %> sign policy.yaml --key cosign.key --format raw > policy.yaml.sig',
  ]

  static override args = {
    file: Args.string({description: 'the file to sign', required: true}),
  }

  static override flags = {
    key: Flags.string({description: 'the private key file (cosign format)', required: true}),
    format: Flags.string({description: 'signature format', options: [...SIGN_FORMATS], default: 'bundle'}),
    output: Flags.string({description: 'write the signature to this file instead of stdout'}),
    'password-stdin': Flags.boolean({description: 'read the key password from stdin (one trailing newline is dropped)'}),
  }

  async run(): Promise<SignResult> {
    const {args, flags} = await this.parse(Sign)
    const {text, ...result} = await signFile({
      file: args.file,
      keyFile: flags.key,
      format: flags.format as SignFormat,
      output: flags.output,
      passwords: new PasswordSession({passwordStdin: flags['password-stdin']}),
    })
    if (result.output) this.log(`Signed ${result.file} (${result.digest}) with key ${result.key.keyId}: ${result.output}`)
    else if (!this.json) process.stdout.write(text)
    return result
  }
}

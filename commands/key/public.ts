import {Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {PasswordSession, type PublicKeyResult, publicKeyOfFile} from '../../src/sign/index.js'

export default class KeyPublic extends BaseCommand<PublicKeyResult> {
  static override summary = 'Print the public key of a key file'
  static override description = `Prints the "PUBLIC KEY" PEM of an encrypted cosign key (needs its password), an unencrypted private key, a public key or a certificate. With --output it is written to a file instead (0644, not overwritten without --force).`

  static override examples = [
    'COSIGN_PASSWORD= <%= config.bin %> key public --key cosign.key > cosign.pub',
    '<%= config.bin %> key public --key cosign.pub --json',
  ]

  static override flags = {
    key: Flags.string({description: 'the key file', required: true}),
    output: Flags.string({description: 'write the public key to this file'}),
    force: Flags.boolean({description: 'overwrite --output if it exists'}),
    'password-stdin': Flags.boolean({description: 'read the password from stdin (one trailing newline is dropped)'}),
  }

  async run(): Promise<PublicKeyResult> {
    const {flags} = await this.parse(KeyPublic)
    const result = await publicKeyOfFile({
      keyFile: flags.key,
      output: flags.output,
      force: flags.force,
      passwords: new PasswordSession({passwordStdin: flags['password-stdin']}),
    })
    if (result.output) this.log(`Public key written to ${result.output}`)
    else process.stdout.write(this.json ? '' : result.publicKey)
    return result
  }
}

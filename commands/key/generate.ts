import {Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {keyFilesLines} from '../../src/cli/key-files.js'
import {type KeyFilesResult, PasswordSession, generateKeyFiles} from '../../src/sign/index.js'

export default class KeyGenerate extends BaseCommand<KeyFilesResult> {
  static override summary = 'Generate a Cosign-compatible key pair (NAME.key encrypted, NAME.pub)'
  static override description = `Writes NAME.key (mode 0600, PEM "ENCRYPTED SIGSTORE PRIVATE KEY": scrypt N=65536 r=8 p=1 + nacl/secretbox around PKCS#8, exactly as cosign generate-key-pair) and NAME.pub (mode 0644, PEM "PUBLIC KEY"). ECDSA P-256 by default (what cosign makes and verifies everywhere); Ed25519 on request.

The password comes from AIBOX_PASSWORD or COSIGN_PASSWORD (an empty value is a valid password), else from stdin with --password-stdin, else from a no-echo prompt (asked twice) when stdin is a terminal. Existing files are never overwritten without --force.`

  static override examples = [
    '<%= config.bin %> key generate',
    '<%= config.bin %> key generate --output-key-prefix keys/alice',
    'COSIGN_PASSWORD= <%= config.bin %> key generate --type ed25519 --output-key-prefix ci',
    "printf '%s' \"$PW\" | <%= config.bin %> key generate --password-stdin --output-key-prefix release",
  ]

  static override flags = {
    type: Flags.string({description: 'key algorithm', options: ['ecdsa-p256', 'ed25519'], default: 'ecdsa-p256'}),
    'output-key-prefix': Flags.string({description: 'write PREFIX.key and PREFIX.pub', default: 'cosign'}),
    force: Flags.boolean({description: 'overwrite existing key files'}),
    'password-stdin': Flags.boolean({description: 'read the password from stdin (one trailing newline is dropped)'}),
  }

  async run(): Promise<KeyFilesResult> {
    const {flags} = await this.parse(KeyGenerate)
    const result = await generateKeyFiles({
      algorithm: flags.type as 'ecdsa-p256' | 'ed25519',
      prefix: flags['output-key-prefix'],
      force: flags.force,
      passwords: new PasswordSession({passwordStdin: flags['password-stdin']}),
    })
    for (const line of keyFilesLines(result)) this.log(line)
    return result
  }
}

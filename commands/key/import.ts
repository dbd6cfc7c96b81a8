import {Flags} from '@oclif/core'

import {BaseCommand} from '../../src/cli/base.js'
import {keyFilesLines} from '../../src/cli/key-files.js'
import {type KeyFilesResult, PasswordSession, importKeyFiles} from '../../src/sign/index.js'

export default class KeyImport extends BaseCommand<KeyFilesResult & {source: string}> {
  static override summary = 'Wrap an existing private key in a Cosign-compatible encrypted key file'
  static override description = `Reads a PEM private key (PKCS#8 "PRIVATE KEY", SEC1 "EC PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY") or an older cosign key file (N=32768, "ENCRYPTED COSIGN PRIVATE KEY") and writes PREFIX.key / PREFIX.pub in cosign's current format, like cosign import-key-pair. Accepted: ECDSA P-256, Ed25519 (also PKCS#8 v2), RSA 2048-4096. An older cosign key is decrypted with the same password that encrypts the new file.`

  static override examples = [
    '<%= config.bin %> key import --key ec.pem --output-key-prefix imported',
    'COSIGN_PASSWORD=secret <%= config.bin %> key import --key old-cosign.key --output-key-prefix upgraded',
  ]

  static override flags = {
    key: Flags.string({description: 'the existing private key file', required: true}),
    'output-key-prefix': Flags.string({description: 'write PREFIX.key and PREFIX.pub', default: 'import-cosign'}),
    force: Flags.boolean({description: 'overwrite existing key files'}),
    'password-stdin': Flags.boolean({description: 'read the password from stdin (one trailing newline is dropped)'}),
  }

  async run(): Promise<KeyFilesResult & {source: string}> {
    const {flags} = await this.parse(KeyImport)
    const result = await importKeyFiles({
      keyFile: flags.key,
      prefix: flags['output-key-prefix'],
      force: flags.force,
      passwords: new PasswordSession({passwordStdin: flags['password-stdin']}),
    })
    for (const line of keyFilesLines(result)) this.log(line)
    return result
  }
}

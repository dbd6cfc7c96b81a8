import {Args, Flags} from '@oclif/core'

import {auditLogFlag} from '../src/cli/audit-flags.js'
import {BaseCommand} from '../src/cli/base.js'
import {isReferenceArgument} from '../src/cli/reference-arg.js'
import {connectionFlags, registriesOf, registryOptions} from '../src/cli/registry-flags.js'
import {type SignReferenceResult, signReference} from '../src/distribute/index.js'
import {InputError} from '../src/errors.js'
import {PasswordSession, SIGN_FORMATS, type SignFileResult, type SignFormat, loadPrivateKey, signFile} from '../src/sign/index.js'

export type SignResult = Omit<SignFileResult, 'text'> | SignReferenceResult

export default class Sign extends BaseCommand<SignResult> {
  static override summary = 'Sign a file, or a pushed policy reference, with a Cosign-compatible key'
  static override description = `TARGET is a file or a reference. It is a reference when it starts with oci: or oci-archive:, or when no such file exists and it reads as registry/repo:tag or registry/repo@sha256:…; otherwise it is a file.

A reference: the policy manifest it names is signed like cosign sign --key does (a Sigstore bundle v0.3 referrer whose in-toto statement names the manifest digest, predicateType https://sigstore.dev/cosign/sign/v1), and with --cosign-legacy also in cosign's legacy sha256-<hex>.sig layout. Registry credentials come from docker's config.json (docker login); --password-stdin is the key's password here.

A file — formats (--format):
  bundle   Sigstore bundle v0.3, DSSE envelope with an in-toto Statement v1 whose subject is the file's digest and predicateType https://sigstore.dev/cosign/sign/v1 (default; what cosign v3 writes and accepts). For a policy document the subject digest is its content digest (sha256 of the RFC 8785 canonical JSON, as aibox bundle hash prints), so reformatting the YAML keeps the signature valid.
  dsse     a bare DSSE envelope with the same statement (keyid = the key's SSH fingerprint)
  raw      base64 signature over the file's bytes (cosign sign-blob; no trailing newline in --output files)
  message  Sigstore bundle v0.3 with a message signature over the file (cosign sign-blob --bundle)

The signature goes to --output (written atomically) or to stdout. Signing is offline: no transparency log, no timestamp authority, no network (except to attach to a reference).`

  static override examples = [
    'COSIGN_PASSWORD= <%= config.bin %> sign policy.yaml --key cosign.key --output policy.yaml.sigstore.json',
    '<%= config.bin %> sign policy.yaml --key cosign.key --format raw > policy.yaml.sig',
    '<%= config.bin %> sign registry.example.com/policies/org:1.4.0 --key second-signer.key',
  ]

  static override args = {
    file: Args.string({description: 'the file to sign, or a pushed policy reference', required: true}),
  }

  static override flags = {
    key: Flags.string({description: 'the private key file (cosign format)', required: true}),
    format: Flags.string({description: 'signature format (files only)', options: [...SIGN_FORMATS], default: 'bundle'}),
    output: Flags.string({description: 'write the signature to this file instead of stdout (files only)'}),
    'password-stdin': Flags.boolean({description: 'read the key password from stdin (one trailing newline is dropped)', aliases: ['key-password-stdin']}),
    'cosign-legacy': Flags.boolean({description: "references only: also write cosign's legacy sha256-<hex>.sig signature"}),
    'audit-log': auditLogFlag,
    ...connectionFlags,
  }

  async run(): Promise<SignResult> {
    const {args, flags} = await this.parse(Sign)
    const passwords = new PasswordSession({passwordStdin: flags['password-stdin']})
    if (isReferenceArgument(args.file)) {
      if (flags.output) throw new InputError('OUTPUT_WITH_REFERENCE', '--output applies to files: a reference is signed in place (the signature is attached to it)')
      const key = await loadPrivateKey(flags.key, {password: passwords.decrypt})
      const r = await signReference({
        reference: args.file,
        key,
        cosignLegacy: flags['cosign-legacy'],
        registry: await registryOptions(flags, {warn: (m) => this.warn(m), registries: registriesOf(args.file)}),
        audit: {log: flags['audit-log']},
      })
      this.log(`Signed ${r.reference} with key ${r.signature.keyId}: signature ${r.signature.digest}${r.legacySignature ? ` (and ${r.legacySignature.tag})` : ''}`)
      return r
    }
    if (flags['cosign-legacy']) throw new InputError('LEGACY_WITH_FILE', '--cosign-legacy applies to references: a file signature has no .sig tag')
    const {text, ...result} = await signFile({
      file: args.file,
      keyFile: flags.key,
      format: flags.format as SignFormat,
      output: flags.output,
      passwords,
    })
    if (result.output) this.log(`Signed ${result.file} (${result.digest}) with key ${result.key.keyId}: ${result.output}`)
    else if (!this.json) process.stdout.write(text)
    return result
  }
}

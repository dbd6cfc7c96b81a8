import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../src/cli/base.js'
import {registryFlags, registriesOf, registryOptions, verificationFlags} from '../src/cli/registry-flags.js'
import {type DoctorCheck, type DoctorReport, DOCTOR_CHECKS, runDoctor, validateSkips} from '../src/doctor/index.js'
import {AiboxError} from '../src/errors.js'

const LABEL = {pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP'} as const
const COLOUR = {pass: 'green', warn: 'yellow', fail: 'red', skip: 'dim'} as const

export default class Doctor extends BaseCommand<DoctorReport> {
  static override summary = 'Check a setup before anyone pushes or starts: registry, TLS, credentials, permissions, trust, cache, audit log'
  static override description = `Runs every check and prints what will work and why not, each with a status (PASS, WARN, FAIL, SKIP), the reason and what to try:

${DOCTOR_CHECKS.map((c) => `  ${c.id.padEnd(22)} ${c.title}`).join('\n')}

With a registry REF: the registry answers GET /v2/ (no credentials sent), its TLS certificate is trusted (issuer, expiry, host name; --ca-file and NODE_EXTRA_CA_CERTS count), the local clock agrees with the registry's Date header (over 1 min warns, over 5 min fails), credentials are found (docker config auths, credHelpers, credsStore, --username) and accepted (a bearer token is obtained), pull works (REF's tag or digest resolves), push works (an upload session is opened and cancelled at once: nothing is written), and whether the registry offers the referrers API or aibox uses the sha256-<hex> tag fallback. With an oci:DIR REF the layout is read instead.

Always: the trust policy (--trust) validates, its keys load and every threshold can be met by keys valid now (keys expiring within 30 days warn), or the --key files load; the verified-policy cache (AIBOX_CACHE, else $XDG_CACHE_HOME/aibox) is intact (every manifest and blob re-hashed) and how long ago its sources were checked; the audit log's hash chain and anchor verify.

Exit 0 when no check failed (warnings allowed); otherwise the exit code of the first failed check: 4 registry unreachable or TLS, 3 no registry API at that address, 1 credentials, permissions or clock, 2 broken audit log, corrupt cache or an unusable trust policy. --json prints the whole report in every case.`
  static override examples = [
    '<%= config.bin %> doctor registry.example.com/policies/org:stable --trust trust.yaml',
    '<%= config.bin %> doctor 127.0.0.1:5000/policies/org --username ci --password-stdin < token.txt',
    '<%= config.bin %> doctor registry.internal/policies/org:stable --ca-file corp-ca.pem --skip repository.push --json',
    '<%= config.bin %> doctor oci:./policies:stable --key release.pub',
    '<%= config.bin %> doctor --skip registry',
  ]
  static override args = {
    ref: Args.string({description: 'policy reference to check: host/repository[:tag|@digest] or oci:DIR[:tag]; without it only local checks run'}),
  }
  static override flags = {
    ...verificationFlags,
    cache: Flags.string({summary: 'verified-policy cache directory (default: $AIBOX_CACHE, else $XDG_CACHE_HOME/aibox)', helpValue: 'DIR'}),
    log: Flags.string({summary: 'audit log (default: $AIBOX_AUDIT_LOG, else $XDG_STATE_HOME/aibox/audit.jsonl)', helpValue: 'FILE'}),
    skip: Flags.string({
      summary: 'do not run this check: an id (repository.push) or its first part (repository, cache; registry = no request to the registry at all); repeatable',
      multiple: true,
      helpValue: 'CHECK',
    }),
    ...registryFlags,
  }

  async run(): Promise<DoctorReport> {
    const {args, flags} = await this.parse(Doctor)
    validateSkips(flags.skip ?? [])
    const registry = await registryOptions(flags, {warn: (m) => this.warn(m), registries: args.ref ? registriesOf(args.ref) : []})
    if (args.ref) this.log(this.color('bold', `aibox doctor: ${args.ref}`))
    const report = await runDoctor({
      reference: args.ref,
      registry,
      trustFile: flags.trust,
      keyFiles: flags.key,
      cacheDir: flags.cache,
      auditLog: flags.log,
      skip: flags.skip,
      onCheck: (c) => this.printCheck(c),
    })
    this.printCheck(undefined)
    const {pass, warn, fail, skip} = report.counts
    this.log(`${pass} passed, ${warn} warning${warn === 1 ? '' : 's'}, ${fail} failed, ${skip} skipped`)
    if (report.ok) return report
    if (this.json) {
      process.exitCode = report.exit
      return report
    }
    const failed = report.checks.filter((c) => c.status === 'fail')
    throw new AiboxError('DOCTOR_FAILED', `${failed.length} check${failed.length === 1 ? '' : 's'} failed: ${failed.map((c) => c.id).join(', ')}`, {
      exit: report.exit,
      suggestions: [`fix ${failed[0]!.id} first: the checks after it often depend on it`],
    })
  }

  /** Skips that share a reason (e.g. everything after an unreachable registry) print as one line. */
  private pendingSkips: DoctorCheck[] = []

  private printCheck(c: DoctorCheck | undefined): void {
    const pending = this.pendingSkips
    if (c?.status === 'skip' && (pending.length === 0 || pending[0]!.reason === c.reason)) {
      pending.push(c)
      return
    }
    if (pending.length > 0) {
      this.log(`${this.color('dim', LABEL.skip)}  ${pending.map((p) => p.id).join(', ').padEnd(20)}  ${pending[0]!.reason}`)
      this.pendingSkips = []
    }
    if (!c) return
    if (c.status === 'skip') {
      this.pendingSkips = [c]
      return
    }
    this.log(`${this.color(COLOUR[c.status], LABEL[c.status])}  ${c.id.padEnd(20)}  ${c.reason}`)
    if (c.status === 'fail' || c.status === 'warn') for (const s of c.suggestions) this.log(`${' '.repeat(26)}try: ${s}`)
  }
}

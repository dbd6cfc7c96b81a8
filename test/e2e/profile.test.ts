/**
 * e2e: org policy profiles (README "Profiles", seed 000) through the real binary, with the org
 * bundle of testdata/bundles/profiles/org.yaml (dev-fast < lab-default < audit-strict) published
 * signed into an `oci:` layout: the catalog, selection, a stricter profile loading freely, a weaker
 * one refused (no approved change; policy lock), the approve/set flow with its refusals (role,
 * separation of duties, expiry, another change), the taint and its revert, an unknown profile,
 * the run record, and a team tier checked against org + profile.
 */
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {LayoutDirStore} from '../../src/oci/index.js'
import {type CliOptions, type CliResult, TESTDATA, aibox as run} from '../helpers/cli.js'
import {KEY, PUB, privateKey, publish} from '../helpers/policy-fixtures.js'
import {expectOutputSchema, expectSchema} from '../helpers/schemas.js'
import {tmpdir} from '../helpers/tmp.js'

const ORG = path.join(TESTDATA, 'bundles', 'profiles', 'org.yaml')
const TEAM = path.join(TESTDATA, 'bundles', 'teams', 'alpha', 'policy.yaml')

describe('aibox profile and start with profiles (e2e)', function () {
  this.timeout(240_000)

  /** A project with the org (and optionally team alpha) in its own layout, a trust policy with an org admin, and its own cache and audit log. */
  async function project(options: {team?: boolean} = {}) {
    const dir = tmpdir('aibox-profile-e2e-')
    const store = await LayoutDirStore.open(path.join(dir, 'layout'), {create: true})
    await publish(store, ORG, [await privateKey('alice')], ['org'])
    if (options.team) await publish(store, TEAM, [await privateKey('bob')], ['team'])
    fs.writeFileSync(
      path.join(dir, 'trust.yaml'),
      `apiVersion: aibox.dev/v1
kind: TrustPolicy
metadata: {name: profiles-e2e}
keys:
  alice: {path: ${PUB('alice')}, roles: [security]}
  bob: {path: ${PUB('bob')}, roles: [team-lead]}
  carol: {path: ${PUB('carol')}, roles: [org-admin]}
scopes:
  - name: org
    match: {tiers: [org]}
    require: {signatures: {security: 1}}
  - name: teams
    match: {tiers: [team]}
    require: {signatures: {team-lead: 1}}
`,
    )
    fs.writeFileSync(path.join(dir, 'aibox.yaml'), `# the webapp sandbox\npolicy:\n  org: oci:layout:org # signed by security\n${options.team ? '  team: oci:layout:team\n' : ''}trust: trust.yaml\n`)
    const env = {
      AIBOX_CACHE: path.join(dir, 'cache'),
      AIBOX_AUDIT_LOG: path.join(dir, 'audit.jsonl'),
      AIBOX_CONFIG: undefined,
      AIBOX_POLICY_LOCK: undefined,
      AIBOX_PROFILE: undefined,
      AIBOX_RUN_MANIFEST: undefined,
      AIBOX_ACTOR: 'dev@e2e',
      COSIGN_PASSWORD: 'test',
      CI: '1',
    }
    const cli = (args: string[], o: CliOptions = {}): Promise<CliResult> => run(args, {cwd: dir, ...o, env: {...env, ...o.env}})
    const events = () => fs.readFileSync(env.AIBOX_AUDIT_LOG, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    const approve = (from: string, to: string, as = 'carol', extra: string[] = [], output = `${as}-${from}-${to}.json`) =>
      cli(['profile', 'approve', '--key', KEY(as), '--from', from, '--to', to, '--ticket', 'CHG-1', '--reason', 'profiling the build', '-o', output, '--force', ...extra], {env: {AIBOX_ACTOR: `${as}@e2e`}})
    return {dir, env, cli, events, approve}
  }

  const ok = (r: CliResult, what = '') => expect(r.code, `${what}\n${r.stdout}\n${r.stderr}`).to.equal(0)
  const refused = (r: CliResult, exit: number, code: string) => {
    expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(exit)
    expect(r.stderr).to.contain(`Code: ${code}`)
  }

  it('lists the catalog weakest first from an org bundle file, and from the verified cache once start ran (schema profile-list)', async () => {
    const p = await project()
    const file = await p.cli(['profile', 'list', '--bundle', ORG, '--json'])
    ok(file)
    expectOutputSchema('profile-list', file.json)
    expect(file.json.profiles.map((x: any) => [x.name, x.rank, x.default])).to.deep.equal([
      ['dev-fast', 0, false],
      ['lab-default', 1, true],
      ['audit-strict', 2, false],
    ])
    refused(await p.cli(['profile', 'list']), 3, 'PROFILE_CATALOG_UNAVAILABLE')
    ok(await p.cli(['start', '-q']))
    const cached = await p.cli(['profile', 'list', '--json'], {env: {AIBOX_PROFILE: 'audit-strict'}})
    ok(cached)
    expectOutputSchema('profile-list', cached.json)
    expect(cached.json).to.include({source: 'cache', selected: 'audit-strict', selectedBy: 'AIBOX_PROFILE', lastLoaded: 'lab-default', defaultProfile: 'lab-default'})
    const human = await p.cli(['profile', 'list'])
    expect(human.stdout).to.match(/^ {2}2\. lab-default \[default, selected, last loaded\] - kata, 2 CPUs, shorter git tokens$/m)
  })

  it('loads the default profile and records it in --json, the environment, the audit log and the run record (schema run-manifest)', async () => {
    const p = await project()
    const r = await p.cli(['start', '--json'])
    ok(r)
    expectOutputSchema('start', r.json)
    expect(r.json.profile).to.equal('lab-default')
    expect(p.events().at(-1)).to.include({event: 'policy.loaded', profile: 'lab-default', digest: r.json.effective.digest})
    const effective = JSON.parse(fs.readFileSync(r.json.effective.file, 'utf8'))
    expect(effective.stack.map((s: any) => s.profile ?? s.tier)).to.deep.equal(['org', 'lab-default'])
    expect(effective.policy.runtime.engine).to.equal('kata')
    const script = 'const e=process.env; console.log(JSON.stringify([e.AIBOX_POLICY_PROFILE, e.AIBOX_RUN_ID, e.AIBOX_RUN_MANIFEST, require("fs").readFileSync(e.AIBOX_RUN_MANIFEST, "utf8")])); process.exit(4)'
    const cmd = await p.cli(['start', '-q', '--manifest', 'run.json', '--', process.execPath, '-e', script])
    expect(cmd.code, cmd.stderr).to.equal(4)
    const [profile, runId, file, during] = JSON.parse(cmd.stdout)
    expect([profile, file]).to.deep.equal(['lab-default', path.join(p.dir, 'run.json')])
    // Written before the command ran (status running), completed after it.
    expect(JSON.parse(during)).to.include({status: 'running', runId})
    const record = JSON.parse(fs.readFileSync(path.join(p.dir, 'run.json'), 'utf8'))
    expectSchema('run-manifest.schema.json', record)
    expect(record).to.include({runId, status: 'exited', exitCode: 4, tainted: false, actor: 'dev@e2e'})
    expect(record.policy).to.include({profile: 'lab-default', digest: r.json.effective.digest, version: 'org-profiles@1.4.0'})
    expect(record.command).to.deep.equal([process.execPath, '-e', script])
    // The oclif command and AIBOX_RUN_MANIFEST write the same record.
    const oclif = await p.cli(['start', '--json'], {env: {AIBOX_NO_FAST_START: '1', AIBOX_RUN_MANIFEST: 'run2.json'}})
    ok(oclif)
    expectOutputSchema('start', oclif.json)
    const r2 = JSON.parse(fs.readFileSync(path.join(p.dir, 'run2.json'), 'utf8'))
    expectSchema('run-manifest.schema.json', r2)
    expect(r2).to.include({status: 'loaded', exitCode: 0})
    expect(oclif.json.manifest).to.equal(path.join(p.dir, 'run2.json'))
  })

  it('loads a stricter profile freely; refuses a weaker one without an approved change (exit 5), and outright with AIBOX_POLICY_LOCK=1', async () => {
    const p = await project()
    ok(await p.cli(['start', '-q']))
    const strict = await p.cli(['start', '--json'], {env: {AIBOX_PROFILE: 'audit-strict'}})
    ok(strict)
    expect(strict.json).to.include({profile: 'audit-strict', tainted: false})
    expect(p.events().find((e) => e.event === 'policy.profile.changed')).to.include({from: 'lab-default', profile: 'audit-strict'})
    const weaker = await p.cli(['start'])
    refused(weaker, 5, 'PROFILE_CHANGE_UNAPPROVED')
    expect(weaker.stderr).to.contain("profile 'lab-default' is weaker than 'audit-strict', the profile this stack loaded last (dev-fast < lab-default < audit-strict)")
    expect(weaker.stderr).to.contain('aibox profile approve --key ADMIN.key --from audit-strict --to lab-default')
    expect(p.events().at(-1)).to.include({event: 'policy.profile.refused', code: 'PROFILE_CHANGE_UNAPPROVED', from: 'audit-strict', profile: 'lab-default'})
    const locked = await p.cli(['start', '--json'], {env: {AIBOX_POLICY_LOCK: '1', AIBOX_PROFILE: 'dev-fast'}})
    expect(locked.code).to.equal(5)
    expectOutputSchema('error', locked.json)
    expect(locked.json.error.code).to.equal('PROFILE_LOCKED')
    expect(p.events().at(-1)).to.include({event: 'policy.profile.refused', code: 'PROFILE_LOCKED'})
    await p.approve('audit-strict', 'dev-fast')
    refused(await p.cli(['profile', 'set', 'dev-fast', '--ticket', 'CHG-1', '--reason', 'x', '--approval', 'carol-audit-strict-dev-fast.json'], {env: {AIBOX_POLICY_LOCK: '1'}}), 5, 'PROFILE_LOCKED')
    // Still on audit-strict: the refusals changed nothing.
    ok(await p.cli(['start', '-q'], {env: {AIBOX_PROFILE: 'audit-strict'}}))
  })

  it('accepts a weaker profile through the approved change: taints runs until a profile as strict as before is loaded again', async () => {
    const p = await project()
    ok(await p.cli(['start', '-q'], {env: {AIBOX_PROFILE: 'audit-strict'}}))
    refused(await p.cli(['profile', 'set', 'dev-fast', '--ticket', 'CHG-1', '--reason', 'profiling the build']), 5, 'PROFILE_APPROVAL_REQUIRED')
    // Only org-admin keys approve.
    refused(await p.approve('audit-strict', 'dev-fast', 'bob'), 5, 'ROLE_NOT_HELD')
    const a = await p.approve('audit-strict', 'dev-fast', 'carol', ['--json'])
    ok(a)
    expectOutputSchema('profile-approve', a.json)
    expect(a.json.payload).to.deep.include({from: 'audit-strict', to: 'dev-fast', ticket: 'CHG-1', approver: {actor: 'carol@e2e', keyId: a.json.payload.approver.keyId, name: 'carol'}})
    const approval = 'carol-audit-strict-dev-fast.json'
    expect(JSON.parse(fs.readFileSync(path.join(p.dir, approval), 'utf8')).payloadType).to.equal('application/vnd.aibox.profile-change.v1+json')
    // Separation of duties: carol cannot use her own approval.
    const self = await p.cli(['profile', 'set', 'dev-fast', '--ticket', 'CHG-1', '--reason', 'x', '--approval', approval], {env: {AIBOX_ACTOR: 'carol@laptop'}})
    refused(self, 5, 'SELF_APPROVAL')
    expect(self.stderr).to.contain('separation of duties')
    // An expired approval, and one for another change.
    ok(await p.approve('audit-strict', 'dev-fast', 'carol', ['--expires', '1ms'], 'expired.json'))
    refused(await p.cli(['profile', 'set', 'dev-fast', '--ticket', 'CHG-1', '--reason', 'x', '--approval', 'expired.json']), 5, 'APPROVAL_EXPIRED')
    ok(await p.approve('lab-default', 'dev-fast'))
    const other = await p.cli(['profile', 'set', 'dev-fast', '--ticket', 'CHG-1', '--reason', 'x', '--approval', 'carol-lab-default-dev-fast.json'])
    refused(other, 5, 'APPROVAL_MISMATCH')
    expect(other.stderr).to.contain("it approves 'lab-default' → 'dev-fast', not 'audit-strict' → 'dev-fast'")
    // A tampered approval does not verify.
    const forged = JSON.parse(fs.readFileSync(path.join(p.dir, approval), 'utf8'))
    forged.payload = Buffer.from(Buffer.from(forged.payload, 'base64').toString('utf8').replace('"to":"dev-fast"', '"to":"dev-fast" ')).toString('base64')
    fs.writeFileSync(path.join(p.dir, 'forged.json'), JSON.stringify(forged))
    refused(await p.cli(['profile', 'set', 'dev-fast', '--ticket', 'CHG-1', '--reason', 'x', '--approval', 'forged.json']), 5, 'APPROVAL_SIGNATURE_INVALID')
    expect(p.events().filter((e) => e.event === 'policy.profile.set')).to.have.length(0)

    const set = await p.cli(['profile', 'set', 'dev-fast', '--ticket', 'CHG-1', '--reason', 'profiling the build', '--approval', approval, '--json'])
    ok(set)
    expectOutputSchema('profile-set', set.json)
    expect(set.json).to.include({profile: 'dev-fast', from: 'audit-strict', weaker: true, ticket: 'CHG-1'})
    expect(set.json.approvers).to.deep.equal(['carol'])
    // aibox.yaml keeps its comments and gains profile: and profileTicket:.
    expect(fs.readFileSync(path.join(p.dir, 'aibox.yaml'), 'utf8')).to.equal('# the webapp sandbox\npolicy:\n  org: oci:layout:org # signed by security\ntrust: trust.yaml\nprofile: dev-fast\nprofileTicket: CHG-1\n')
    expect(p.events().at(-1)).to.include({event: 'policy.profile.set', actor: 'dev@e2e', from: 'audit-strict', profile: 'dev-fast', ticket: 'CHG-1', weaker: true})

    const tainted = await p.cli(['start', '--json'])
    ok(tainted)
    expectOutputSchema('start', tainted.json)
    expect(tainted.json).to.include({profile: 'dev-fast', tainted: true})
    expect(tainted.json.taint).to.include({override: 'profile', reason: 'CHG-1: profiling the build', actor: 'dev@e2e'})
    const changed = p.events().filter((e) => e.event === 'policy.profile.changed').at(-1)
    expect(changed).to.include({from: 'audit-strict', profile: 'dev-fast', weaker: true, ticket: 'CHG-1', reason: 'profiling the build'})
    expect(changed.approvers).to.deep.equal(['carol'])
    expect(p.events().find((e) => e.event === 'policy.override')).to.include({override: 'profile', taint: 'policy_override'})
    // Still tainted on the next (warm) start, in the run record too.
    const again = await p.cli(['start', '-q', '--manifest', 'run.json', '--', 'true'])
    ok(again)
    expect(again.stderr).to.contain("runs are tainted policy_override: profile override by dev@e2e")
    const record = JSON.parse(fs.readFileSync(path.join(p.dir, 'run.json'), 'utf8'))
    expect([record.tainted, record.taint.override, record.policy.profile]).to.deep.equal([true, 'profile', 'dev-fast'])

    // Revert: a profile as strict as before needs no approval, and lifts the taint.
    ok(await p.cli(['profile', 'set', 'audit-strict', '--ticket', 'CHG-2', '--reason', 'profiling done']))
    const back = await p.cli(['start', '--json'])
    ok(back)
    expect(back.json).to.include({profile: 'audit-strict', tainted: false})
    expect(p.events().filter((e) => e.event === 'policy.override.reverted').at(-1).reason).to.contain("profile 'audit-strict' is at least as strict as 'audit-strict'")
  })

  it('bundle lint reports profile problems with file:line; bundle check --profile gives the effective policy start loads', async () => {
    const p = await project()
    const lint = await p.cli(['bundle', 'lint', path.join(TESTDATA, 'bundles', 'bad', 'profiles', 'misordered.yaml'), '--json'])
    expect(lint.code).to.equal(1)
    expectOutputSchema('bundle-lint', lint.json)
    expect(lint.json.problems.map((x: any) => `${x.line}:${x.col} ${x.message}`)).to.deep.equal([
      "85:5 profile 'audit-strict' is weaker than 'lab-default' listed before it: 'resources.cpu' raises cpu from 1 to 2 (list profiles weakest first)",
    ])
    const start = await p.cli(['start', '--json'], {env: {AIBOX_PROFILE: 'audit-strict'}})
    ok(start)
    const check = await p.cli(['bundle', 'check', '--base', ORG, '--profile', 'audit-strict', ORG.replace('profiles/org.yaml', 'projects/webapp/aibox/policy.yaml'), '--json'])
    // webapp tightens org + audit-strict; the profile is a layer of its own after the org bundle, as in start's effective policy.
    ok(check)
    expectOutputSchema('bundle-check', check.json)
    expect(check.json.stack.map((x: any) => x.file.split('/bundles/')[1])).to.deep.equal(['profiles/org.yaml', 'profiles/org.yaml#profiles/audit-strict', 'projects/webapp/aibox/policy.yaml'])
    expect(check.json.effective).to.equal(undefined)
    const eff = JSON.parse(fs.readFileSync(start.json.effective.file, 'utf8'))
    expect(eff.stack.map((x: any) => x.profile ?? x.tier)).to.deep.equal(['org', 'audit-strict'])
    refused(await p.cli(['bundle', 'check', '--base', ORG, '--profile', 'prod', TEAM]), 1, 'PROFILE_UNKNOWN')
  })

  it('refuses an unknown profile (exit 1, PROFILE_UNKNOWN) listing the allowed ones', async () => {
    const p = await project()
    const r = await p.cli(['start'], {env: {AIBOX_PROFILE: 'prod'}})
    refused(r, 1, 'PROFILE_UNKNOWN')
    expect(r.stderr).to.contain('AIBOX_PROFILE "prod" is not a profile of the org policy org-profiles 1.4.0 (allowed, weakest first: dev-fast, lab-default, audit-strict)')
    const config = fs.readFileSync(path.join(p.dir, 'aibox.yaml'), 'utf8')
    fs.appendFileSync(path.join(p.dir, 'aibox.yaml'), 'profile: Prod\n')
    const invalid = await p.cli(['start'])
    refused(invalid, 1, 'CONFIG_INVALID')
    expect(invalid.stderr).to.match(/aibox\.yaml:5:10 \/profile: "Prod" is not valid: expected a profile name of the org policy/)
    fs.writeFileSync(path.join(p.dir, 'aibox.yaml'), config)
    ok(await p.cli(['start', '-q'], {env: {AIBOX_PROFILE: 'lab-default'}}))
    refused(await p.cli(['profile', 'set', 'prod', '--ticket', 'CHG-3', '--reason', 'x'], {env: {AIBOX_PROFILE: 'lab-default'}}), 1, 'PROFILE_UNKNOWN')
  })

  it('checks the team tier against org + the selected profile', async () => {
    const p = await project({team: true})
    const lab = await p.cli(['start', '--json'])
    ok(lab)
    expect(lab.json.tiers.map((t: any) => t.tier)).to.deep.equal(['org', 'team'])
    const strict = await p.cli(['start'], {env: {AIBOX_PROFILE: 'audit-strict'}})
    refused(strict, 2, 'POLICY_LOOSENED')
    expect(strict.stderr).to.contain(`loosens org baseline rule 'network.allow': adds "npm.mirror.internal"`)
  })
})

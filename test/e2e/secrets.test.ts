/**
 * e2e: no secret ever shows up where it should not. A full flow — key generation with a
 * password, push / sign / approve / pull / discover / inspect / tags / copy against a registry
 * with Basic auth (password on stdin, and in docker's config.json) and against one with bearer
 * tokens (an OAuth2 refresh token in config.json), refusals with wrong credentials, and a run
 * with DEBUG request logging — then every stdout, stderr, the audit log (and its anchor) and every
 * file aibox wrote is searched for each secret, raw and in the encodings it travels in (base64 of
 * user:password, URL-encoded). Only the inputs the test itself wrote (docker config.json) hold them.
 */
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {ORG_BASELINE, TEAM_ALPHA} from '../helpers/policy-fixtures.js'
import {type CliOptions, type CliResult, aibox as run} from '../helpers/cli.js'
import {type RegistryHandle, startRegistry} from '../helpers/registry.js'
import {type TokenServer, startTokenServer} from '../helpers/token-server.js'
import {tmpdir} from '../helpers/tmp.js'

const unique = (what: string) => `${what}-${Math.random().toString(36).slice(2)}-S3cr3t!`

describe('secrets stay secret (e2e)', function () {
  this.timeout(600_000)
  const keyPassword = unique('keypw')
  const basicPassword = unique('basicpw')
  const tokenUserPassword = unique('tokenpw')
  const refreshToken = unique('refresh')
  let basic: RegistryHandle
  let tokenReg: RegistryHandle
  let tokens: TokenServer
  const work = tmpdir('aibox-secrets-')
  const written = tmpdir('aibox-secrets-out-')
  const dockerDir = tmpdir('aibox-secrets-docker-')
  const audit = path.join(written, 'audit.jsonl')
  const outputs: Array<{args: string[]; r: CliResult}> = []

  async function aibox(args: string[], options: CliOptions = {}, expectCode = 0): Promise<CliResult> {
    const r = await run(args, {
      cwd: work,
      ...options,
      env: {COSIGN_PASSWORD: keyPassword, AIBOX_AUDIT_LOG: audit, DOCKER_CONFIG: dockerDir, CI: '1', ...options.env},
      timeoutMs: 120_000,
    })
    outputs.push({args, r})
    expect(r.code, `aibox ${args.join(' ')}\n${r.stderr}`).to.equal(expectCode)
    return r
  }

  before(async () => {
    basic = await startRegistry({auth: 'basic', username: 'alice', password: basicPassword})
    tokens = await startTokenServer({users: {bob: tokenUserPassword}, refreshTokens: {[refreshToken]: 'bob'}})
    tokenReg = await startRegistry({auth: 'token', tokenServer: tokens})
    // docker login would write these: Basic credentials for one registry, an identity token for the other.
    fs.writeFileSync(
      path.join(dockerDir, 'config.json'),
      JSON.stringify({auths: {[basic.host]: {auth: Buffer.from(`alice:${basicPassword}`).toString('base64')}, [tokenReg.host]: {identitytoken: refreshToken}}}),
    )
  })
  after(async () => {
    await basic?.stop()
    await tokenReg?.stop()
    await tokens?.close()
  })

  it('runs the whole flow, and no secret appears in any output, log or written file', async () => {
    const key = path.join(written, 'release')
    await aibox(['key', 'generate', '--output-key-prefix', key])
    await aibox(['key', 'public', '--key', `${key}.key`, '--output', path.join(written, 'again.pub')])
    const noDocker = {env: {DOCKER_CONFIG: tmpdir('aibox-secrets-empty-')}}
    // Basic auth: the password on stdin (no docker config), then from docker's config.json.
    const pushed = await aibox(['push', ORG_BASELINE, `${basic.host}/policies/org:stable`, '--key', `${key}.key`, '--username', 'alice', '--password-stdin', '--json'], {...noDocker, input: `${basicPassword}\n`})
    await aibox(['sign', `${basic.host}/policies/org@${pushed.json.digest}`, '--key', `${key}.key`])
    // Separation of duties: the signer cannot approve its own digest, so a second key approves.
    const approver = path.join(written, 'approver')
    await aibox(['key', 'generate', '--output-key-prefix', approver])
    await aibox(['approve', `${basic.host}/policies/org@${pushed.json.digest}`, '--key', `${approver}.key`, '--role', 'approver', '--note', 'reviewed'])
    await aibox(['pull', `${basic.host}/policies/org:stable`, '--key', `${key}.pub`, '-o', path.join(written, 'pulled-basic')])
    await aibox(['discover', `${basic.host}/policies/org:stable`, '--key', `${key}.pub`, '--json'])
    await aibox(['inspect', `${basic.host}/policies/org:stable`])
    await aibox(['tags', `${basic.host}/policies/org`, '--json'])
    await aibox(['copy', `${basic.host}/policies/org:stable`, `oci:${path.join(written, 'layout')}:stable`])
    // Bearer tokens from an OAuth2 refresh token.
    await aibox(['push', TEAM_ALPHA, `${tokenReg.host}/policies/teams/alpha:stable`, '--key', `${key}.key`, '--against', ORG_BASELINE])
    await aibox(['pull', `${tokenReg.host}/policies/teams/alpha:stable`, '--key', `${key}.pub`, '-o', path.join(written, 'pulled-token'), '--json'])
    await aibox(['copy', `${basic.host}/policies/org:stable`, `${tokenReg.host}/policies/org:stable`])
    // Debug output on (DEBUG=*: oclif's and every library's debug logs).
    await aibox(['pull', `${tokenReg.host}/policies/org:stable`, '--key', `${key}.pub`, '-o', path.join(written, 'pulled-debug')], {env: {DEBUG: '*'}})
    // Refusals quote what was sent: a wrong password, a wrong key password, a password on the wrong registry.
    const wrongKey = await run(['sign', `${basic.host}/policies/org@${pushed.json.digest}`, '--key', `${key}.key`], {cwd: work, env: {COSIGN_PASSWORD: `${keyPassword}x`, AIBOX_AUDIT_LOG: audit, DOCKER_CONFIG: dockerDir}})
    outputs.push({args: ['sign (wrong key password)'], r: wrongKey})
    expect(wrongKey.code).to.equal(1)
    const wrongBasic = await run(['tags', `${basic.host}/policies/org`, '--username', 'alice', '--password-stdin'], {cwd: work, input: `${basicPassword}x\n`, env: {AIBOX_AUDIT_LOG: audit, DOCKER_CONFIG: noDocker.env.DOCKER_CONFIG, DEBUG: '*'}})
    outputs.push({args: ['tags (wrong password)'], r: wrongBasic})
    expect(wrongBasic.code, wrongBasic.stderr).to.not.equal(0)

    const issued = tokens.issued
    expect(issued.length, 'the token registry issued tokens').to.be.above(0)
    const secrets: Record<string, string> = {
      'key password': keyPassword,
      'Basic password': basicPassword,
      'Basic password (wrong one typed)': `${basicPassword}x`,
      'Basic user:password, base64': Buffer.from(`alice:${basicPassword}`).toString('base64'),
      'token user password': tokenUserPassword,
      'refresh token': refreshToken,
      'refresh token, URL-encoded': encodeURIComponent(refreshToken),
    }
    for (const [i, t] of issued.entries()) {
      secrets[`bearer token ${i + 1}`] = t
      secrets[`bearer token ${i + 1} signature`] = t.split('.')[2]!
    }
    const leaks: string[] = []
    const search = (where: string, text: string) => {
      for (const [name, secret] of Object.entries(secrets)) if (text.includes(secret)) leaks.push(`${name} in ${where}`)
    }
    // The search finds secrets where they are meant to be: docker's config.json holds two of them.
    search('config.json', fs.readFileSync(path.join(dockerDir, 'config.json'), 'utf8'))
    expect(leaks).to.deep.equal(['Basic user:password, base64 in config.json', 'refresh token in config.json', 'refresh token, URL-encoded in config.json'])
    leaks.length = 0
    for (const {args, r} of outputs) {
      search(`stdout of aibox ${args.join(' ')}`, r.stdout)
      search(`stderr of aibox ${args.join(' ')}`, r.stderr)
    }
    const walk = (dir: string): string[] => fs.readdirSync(dir, {withFileTypes: true}).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]))
    const files = [...walk(written), ...walk(work)]
    expect(files.some((f) => f.endsWith('audit.jsonl')) && files.some((f) => f.endsWith('audit.jsonl.head'))).to.equal(true)
    for (const f of files) search(path.relative(written, f), fs.readFileSync(f).toString('latin1'))
    expect(leaks).to.deep.equal([])
    // The flow really ran: the audit log has the events, the token registry was asked with the refresh token.
    expect(tokens.requests.some((t) => t.method === 'POST' && t.account === 'bob' && t.status === 200)).to.equal(true)
    const events = fs.readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l).event as string)
    expect(events).to.include.members(['policy.pushed', 'policy.signed', 'policy.approved'])
  })
})

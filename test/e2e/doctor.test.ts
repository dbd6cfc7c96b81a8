import {expect} from 'chai'
import path from 'node:path'

import {aibox} from '../helpers/cli.js'
import {KEYS_DIR, ORG_BASELINE, privateKey, publish} from '../helpers/policy-fixtures.js'
import {type RegistryHandle, repositoryFactory, startRegistry} from '../helpers/registry.js'
import {expectOutputSchema} from '../helpers/schemas.js'
import {tmpdir} from '../helpers/tmp.js'

/** A clean environment: no cache, no audit log, no docker config of the machine. */
function env(): Record<string, string> {
  const home = tmpdir('aibox-e2e-doctor-')
  return {HOME: home, AIBOX_CACHE: path.join(home, 'cache'), AIBOX_AUDIT_LOG: path.join(home, 'audit.jsonl'), DOCKER_CONFIG: path.join(home, 'docker'), XDG_CACHE_HOME: '', XDG_STATE_HOME: ''}
}

describe('aibox doctor', () => {
  const repo = repositoryFactory()
  let reg: RegistryHandle
  let digest: string
  before(async () => {
    reg = await startRegistry()
    digest = (await publish(repo(`${reg.host}/policies/org`), ORG_BASELINE, [await privateKey('alice')], ['stable'])).manifest.digest
  })
  after(async () => {
    await reg?.stop()
  })

  describe('when everything works', () => {
    it('prints one line per check and exits 0', async () => {
      const r = await aibox(['doctor', `${reg.host}/policies/org:stable`, '--key', path.join(KEYS_DIR, 'alice.pub')], {env: env()})
      expect(r.code, r.stderr).to.equal(0)
      expect(r.stdout).to.contain(`aibox doctor: ${reg.host}/policies/org:stable`)
      expect(r.stdout).to.match(/^PASS {2}registry\.reachable {4}http:\/\/127\.0\.0\.1:\d+\/v2\/ answers the OCI distribution API/m)
      expect(r.stdout).to.contain(`PASS  repository.pull       pull allowed: tag "stable" resolves to a policy artifact ${digest}`)
      expect(r.stdout).to.match(/^PASS {2}trust\.policy {10}1 public key load: alice\.pub/m)
      // Checks skipped for the same reason share one line.
      expect(r.stdout).to.match(/^SKIP {2}cache, audit\.log|^SKIP {2}cache {17}no cache yet/m)
      expect(r.stdout).to.match(/^7 passed, 0 warnings, 0 failed, 4 skipped$/m)
    })

    it('--json prints the report (schemas/output/doctor.json)', async () => {
      const r = await aibox(['doctor', `${reg.host}/policies/org:stable`, '--json'], {env: env()})
      expect(r.code, r.stderr).to.equal(0)
      expectOutputSchema('doctor', r.json)
      expect(r.json).to.include({ok: true, exit: 0, reference: `${reg.host}/policies/org:stable`})
      expect(r.json.checks.map((c: {id: string}) => c.id)).to.deep.equal([
        'registry.reachable',
        'registry.tls',
        'registry.clock',
        'registry.auth',
        'repository.pull',
        'repository.push',
        'repository.referrers',
        'layout.reference',
        'trust.policy',
        'cache',
        'audit.log',
      ])
    })
  })

  describe('when the registry is down', () => {
    it('exits 4 (transient), names the failed check, and --json still prints the report', async () => {
      const down = await startRegistry()
      await down.stop()
      const r = await aibox(['doctor', `${down.host}/policies/org:stable`], {env: env()})
      expect(r.code).to.equal(4)
      expect(r.stdout).to.contain(`FAIL  registry.reachable    connection refused by ${down.host}`)
      expect(r.stdout).to.contain('try: is the registry running and listening on this host and port?')
      expect(r.stdout).to.match(/^SKIP {2}registry\.auth, repository\.pull, repository\.push, repository\.referrers {2}not checked: the registry is not reachable/m)
      expect(r.stderr).to.contain('1 check failed: registry.reachable')
      const j = await aibox(['doctor', `${down.host}/policies/org:stable`, '--json'], {env: env()})
      expect(j.code).to.equal(4)
      expectOutputSchema('doctor', j.json)
      expect(j.json).to.include({ok: false, exit: 4})
      expect(j.json.checks[0]).to.include({id: 'registry.reachable', status: 'fail', code: 'NETWORK', exit: 4})
    })
  })

  describe('with an HTTPS registry and Basic auth', () => {
    let tls: RegistryHandle
    before(async () => {
      tls = await startRegistry({tls: true, auth: 'basic'})
    })
    after(async () => {
      await tls?.stop()
    })

    it('exits 1 for a wrong password read from stdin, and never prints it', async () => {
      const r = await aibox(['doctor', `${tls.host}/policies/org`, '--ca-file', tls.caFile!, '--username', tls.username!, '--password-stdin'], {env: env(), input: 'wrong-password-123\n'})
      expect(r.code).to.equal(1)
      expect(r.stdout).to.contain(`FAIL  registry.auth         ${tls.host} rejected the credentials (user "${tls.username}" from --username ${tls.username})`)
      expect(r.stdout + r.stderr).to.not.contain('wrong-password-123')
    })

    it('exits 4 without the CA, saying the certificate is not trusted and what to pass', async () => {
      const r = await aibox(['doctor', `${tls.host}/policies/org`, '--no-plain-http'], {env: env()})
      expect(r.code).to.equal(4)
      expect(r.stdout).to.contain('FAIL  registry.tls          the certificate "CN=127.0.0.1" issued by "CN=aibox test CA"')
      expect(r.stdout).to.contain('try: pass the CA certificate that signed it with --ca-file FILE (or set NODE_EXTRA_CA_CERTS=FILE)')
    })

    it('passes with the CA and the password; the 7-day test certificate warns but exits 0', async () => {
      const r = await aibox(['doctor', `${tls.host}/policies/org`, '--ca-file', tls.caFile!, '--username', tls.username!, '--password-stdin', '--json'], {env: env(), input: `${tls.password}\n`})
      expect(r.code, r.stderr).to.equal(0)
      expectOutputSchema('doctor', r.json)
      const byId = Object.fromEntries(r.json.checks.map((c: {id: string}) => [c.id, c]))
      expect(byId['registry.tls']).to.include({status: 'warn', code: 'TLS_CERT_EXPIRES_SOON'})
      expect(byId['registry.auth']).to.include({status: 'pass'})
      expect(byId['repository.push']).to.include({status: 'pass'})
    })
  })

  describe('with bad input', () => {
    it('exits 1 for an unknown --skip value, listing the checks', async () => {
      const r = await aibox(['doctor', '--skip', 'registy'], {env: env()})
      expect(r.code).to.equal(1)
      expect(r.stderr).to.contain('unknown check "registy" in --skip')
      expect(r.stderr).to.contain('registry.reachable')
    })

    it('exits 1 for --trust and --key together', async () => {
      const r = await aibox(['doctor', '--trust', 't.yaml', '--key', 'k.pub'], {env: env()})
      expect(r.code).to.equal(1)
      expect(r.stderr).to.match(/cannot also be provided when using/)
    })
  })
})

import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {type DoctorCheck, type DoctorOptions, type DoctorReport, runDoctor} from '../../../src/doctor/index.js'
import {RemoteRepository, staticCredentials} from '../../../src/oci/index.js'
import {basicAuth, dockerConfigDir, fakeCredentialHelper} from '../../helpers/cred-helper.js'
import {type Endpoint, makeCertificates, startEndpoint} from '../../helpers/endpoint.js'
import {ORG_BASELINE, privateKey, publish} from '../../helpers/policy-fixtures.js'
import {type RegistryHandle, repositoryFactory, startRegistry} from '../../helpers/registry.js'
import {listFiles, tmpdir} from '../../helpers/tmp.js'

const LOCAL = ['trust', 'cache', 'audit', 'layout']

/** Doctor with an empty docker config (the machine's own must not leak in) and only the registry checks. */
function doctor(reference: string, opts: DoctorOptions = {}): Promise<DoctorReport> {
  const home = tmpdir('aibox-doctor-home-')
  const env = {HOME: home, DOCKER_CONFIG: path.join(home, 'docker'), PATH: process.env.PATH, ...opts.env}
  return runDoctor({reference, skip: LOCAL, ...opts, env, registry: {env, ...opts.registry}})
}

function check(report: DoctorReport, id: string): DoctorCheck {
  const c = report.checks.find((x) => x.id === id)
  if (!c) throw new Error(`no check ${id} in ${report.checks.map((x) => x.id).join(', ')}`)
  return c
}

const REGISTRY_IDS = ['registry.reachable', 'registry.tls', 'registry.clock', 'registry.auth', 'repository.pull', 'repository.push', 'repository.referrers']

describe('runDoctor (registry checks)', () => {
  const repo = repositoryFactory()

  describe('with a plain-HTTP loopback registry', () => {
    let reg: RegistryHandle
    let digest: string
    before(async () => {
      reg = await startRegistry()
      const packed = await publish(repo(`${reg.host}/policies/org`), ORG_BASELINE, [await privateKey('alice')], ['stable'])
      digest = packed.manifest.digest
    })
    after(async () => {
      await reg?.stop()
    })

    it('passes every registry check for a published, signed reference and names its digest and referrer', async () => {
      const r = await doctor(`${reg.host}/policies/org:stable`)
      expect(r.ok).to.equal(true)
      expect(r.exit).to.equal(0)
      expect(r.checks.map((c) => c.id)).to.include.members(REGISTRY_IDS)
      expect(check(r, 'registry.reachable')).to.include({status: 'pass'})
      expect(check(r, 'registry.reachable').reason).to.contain(`http://${reg.host}/v2/ answers the OCI distribution API (registry/2.0)`)
      expect(check(r, 'registry.tls')).to.include({status: 'skip'})
      expect(check(r, 'registry.tls').reason).to.contain('plain HTTP')
      expect(check(r, 'registry.clock').status).to.equal('pass')
      expect(check(r, 'registry.auth').reason).to.equal(`${reg.host} needs no authentication for GET /v2/`)
      const pull = check(r, 'repository.pull')
      expect(pull.status).to.equal('pass')
      expect(pull.reason).to.contain(`tag "stable" resolves to a policy artifact ${digest}`)
      expect(pull.details).to.include({digest})
      expect(check(r, 'repository.push').status).to.equal('pass')
      const ref = check(r, 'repository.referrers')
      expect(ref.status).to.equal('pass')
      // distribution 2.8 has no referrers API: the signature is found through the tag fallback.
      expect(ref.details).to.deep.include({mode: 'tag-fallback', digest, referrers: 1})
      expect(ref.reason).to.contain('sha256-<hex> tag fallback')
    })

    it('checks push by opening an upload and cancelling it: nothing becomes visible in the repository', async () => {
      const before = fs.readFileSync(path.join(reg.dir, 'registry.log'), 'utf8')
      const r = await doctor(`${reg.host}/policies/never-pushed`)
      const push = check(r, 'repository.push')
      expect(push.status).to.equal('pass')
      expect(push.details).to.include({cancelStatus: 204})
      const log = fs.readFileSync(path.join(reg.dir, 'registry.log'), 'utf8').slice(before.length)
      expect(log).to.match(/"POST \/v2\/policies\/never-pushed\/blobs\/uploads\/ HTTP\/1.1" 202/)
      expect(log).to.match(/"DELETE \/v2\/policies\/never-pushed\/blobs\/uploads\/[^ ]+ HTTP\/1.1" 204/)
      const catalog = (await (await fetch(`${reg.url}/v2/_catalog`)).json()) as {repositories: string[]}
      expect(catalog.repositories).to.deep.equal(['policies/org'])
      const files = listFiles(path.join(reg.dir, 'data', 'docker', 'registry', 'v2', 'repositories', 'policies', 'never-pushed'))
      // distribution 2.8 keeps an empty hash state of the cancelled session until upload purging; no data, layer or manifest.
      expect(files.filter((f) => !/^_uploads\/[^/]+\/hashstates\//.test(f))).to.deep.equal([])
      expect(check(r, 'repository.pull').reason).to.contain('the repository holds nothing yet')
    })

    it('warns (and still exits 0) when the tag does not exist yet', async () => {
      const r = await doctor(`${reg.host}/policies/org:9.9.9`)
      const pull = check(r, 'repository.pull')
      expect(pull).to.include({status: 'warn', code: 'REFERENCE_NOT_FOUND'})
      expect(pull.reason).to.contain('tag "9.9.9" does not exist (yet)')
      expect(r.ok).to.equal(true)
      expect(r.exit).to.equal(0)
      expect(check(r, 'repository.referrers').details).to.include({referrers: 0})
    })

    it('--skip repository.push sends no upload request', async () => {
      const before = fs.readFileSync(path.join(reg.dir, 'registry.log'), 'utf8').length
      const r = await doctor(`${reg.host}/policies/skipped`, {skip: [...LOCAL, 'repository.push']})
      expect(check(r, 'repository.push')).to.include({status: 'skip', reason: 'skipped with --skip'})
      const log = fs.readFileSync(path.join(reg.dir, 'registry.log'), 'utf8').slice(before)
      expect(log).to.contain('GET /v2/policies/skipped/tags/list')
      expect(log).to.not.contain('POST')
    })
  })

  describe('when the registry is not running', () => {
    it('fails registry.reachable with the transient exit code 4 and skips what depends on it', async () => {
      const reg = await startRegistry()
      await reg.stop()
      const r = await doctor(`${reg.host}/policies/org:stable`)
      const reach = check(r, 'registry.reachable')
      expect(reach).to.include({status: 'fail', code: 'NETWORK', exit: 4})
      expect(reach.reason).to.contain(`connection refused by ${reg.host}`)
      expect(reach.suggestions.join(' ')).to.contain('is the registry running')
      for (const id of ['registry.auth', 'repository.pull', 'repository.push', 'repository.referrers']) {
        expect(check(r, id)).to.include({status: 'skip'})
        expect(check(r, id).reason).to.contain('not reachable')
      }
      expect(r.ok).to.equal(false)
      expect(r.exit).to.equal(4)
    })
  })

  describe('with an HTTPS registry (generated CA) and Basic auth', () => {
    let reg: RegistryHandle
    before(async () => {
      reg = await startRegistry({tls: true, auth: 'basic'})
    })
    after(async () => {
      await reg?.stop()
    })
    const creds = () => staticCredentials({username: reg.username!, password: reg.password!})

    it('fails registry.tls when the CA is not trusted, names the issuer, and checks nothing that needs the connection', async () => {
      const r = await doctor(`${reg.host}/policies/org`, {registry: {plainHttp: false, credentials: creds()}})
      const t = check(r, 'registry.tls')
      expect(t).to.include({status: 'fail', code: 'TLS_UNTRUSTED', exit: 4})
      expect(t.reason).to.contain('issued by "CN=aibox test CA"')
      expect(t.reason).to.contain('is not trusted')
      expect(t.suggestions[0]).to.contain('--ca-file')
      // The registry itself answered (no credentials were sent): reachability is not the problem.
      expect(check(r, 'registry.reachable').status).to.equal('pass')
      expect(check(r, 'registry.auth')).to.include({status: 'skip'})
      expect(check(r, 'registry.auth').reason).to.contain('not trusted')
      expect(r.exit).to.equal(4)
    })

    it('fails registry.tls with another CA than the one that signed the certificate, naming that --ca-file', async () => {
      const other = makeCertificates(tmpdir('aibox-other-ca-'), 'valid').ca!
      const r = await doctor(`${reg.host}/policies/org`, {registry: {caFile: other, credentials: creds()}})
      const t = check(r, 'registry.tls')
      expect(t).to.include({status: 'fail', code: 'TLS_UNTRUSTED'})
      expect(t.reason).to.contain(`--ca-file ${other}`)
    })

    it('passes with the right CA and password: Basic auth, pull and push', async () => {
      const r = await doctor(`${reg.host}/policies/org`, {registry: {caFile: reg.caFile, credentials: creds()}, expiryWarnMs: 3_600_000})
      const t = check(r, 'registry.tls')
      expect(t.status).to.equal('pass')
      expect(t.reason).to.contain(`trusted via --ca-file ${reg.caFile}`)
      expect((t.details!.certificate as {subject: string}).subject).to.equal('CN=127.0.0.1')
      const a = check(r, 'registry.auth')
      expect(a.status).to.equal('pass')
      expect(a.reason).to.equal(`Basic authentication accepted for user "${reg.username}" from --username ${reg.username}`)
      expect(a.details).to.include({method: 'basic'})
      expect(check(r, 'repository.pull').status).to.equal('pass')
      expect(check(r, 'repository.push').status).to.equal('pass')
      expect(r.ok).to.equal(true)
    })

    it('warns that the 7-day test certificate expires within the default 30-day window', async () => {
      const r = await doctor(`${reg.host}/policies/org`, {registry: {caFile: reg.caFile, credentials: creds()}})
      const t = check(r, 'registry.tls')
      expect(t).to.include({status: 'warn', code: 'TLS_CERT_EXPIRES_SOON'})
      expect(t.reason).to.match(/expires in (6|7) days/)
      expect(r.ok).to.equal(true)
    })

    it('fails registry.auth with a wrong password (exit 1) and skips pull and push', async () => {
      const r = await doctor(`${reg.host}/policies/org`, {registry: {caFile: reg.caFile, credentials: staticCredentials({username: reg.username!, password: 'not-the-password'})}})
      const a = check(r, 'registry.auth')
      expect(a).to.include({status: 'fail', code: 'UNAUTHORIZED', exit: 1})
      expect(a.reason).to.contain(`rejected the credentials (user "${reg.username}"`)
      expect(a.reason).to.not.contain('not-the-password')
      expect(check(r, 'repository.pull').reason).to.contain('authentication failed')
      expect(r.exit).to.equal(1)
    })

    it('fails registry.auth without credentials, naming the docker config it looked in', async () => {
      const r = await doctor(`${reg.host}/policies/org`, {registry: {caFile: reg.caFile}})
      const a = check(r, 'registry.auth')
      expect(a).to.include({status: 'fail', code: 'UNAUTHORIZED'})
      expect(a.reason).to.contain('no credentials were found')
      expect(a.details).to.include({dockerConfigExists: false, method: 'basic'})
    })

    it('finds credentials in docker config auths', async () => {
      const dir = dockerConfigDir({auths: {[reg.host]: {auth: basicAuth(reg.username!, reg.password!)}}})
      const r = await doctor(`${reg.host}/policies/org`, {env: {DOCKER_CONFIG: dir}, registry: {caFile: reg.caFile}})
      const a = check(r, 'registry.auth')
      expect(a.status).to.equal('pass')
      expect(a.reason).to.contain(`from auths["${reg.host}"] in ${path.join(dir, 'config.json')}`)
    })

    it('finds credentials through a credential helper (credHelpers), and fails clearly when the helper is missing', async () => {
      const helper = fakeCredentialHelper('doctortest')
      helper.set(reg.host, reg.username!, reg.password!)
      const dir = dockerConfigDir({credHelpers: {[reg.host]: 'doctortest'}})
      const env = {DOCKER_CONFIG: dir, PATH: `${helper.binDir}:${process.env.PATH}`}
      const ok = await doctor(`${reg.host}/policies/org`, {env, registry: {caFile: reg.caFile}})
      expect(check(ok, 'registry.auth').reason).to.contain('credential helper docker-credential-doctortest (credHelpers in')
      const missing = dockerConfigDir({credHelpers: {[reg.host]: 'not-installed'}})
      const bad = await doctor(`${reg.host}/policies/org`, {env: {DOCKER_CONFIG: missing}, registry: {caFile: reg.caFile}})
      const a = check(bad, 'registry.auth')
      expect(a).to.include({status: 'fail', code: 'UNAUTHORIZED'})
      expect(a.reason).to.contain('docker-credential-not-installed is not on PATH')
    })

    it('with --insecure warns that verification is off, says what would fail, and goes on', async () => {
      const r = await doctor(`${reg.host}/policies/org`, {registry: {insecure: true, onWarning: () => {}, credentials: creds()}})
      const t = check(r, 'registry.tls')
      expect(t).to.include({status: 'warn', code: 'TLS_INSECURE'})
      expect(t.reason).to.contain('without it: the certificate')
      expect(check(r, 'registry.auth').status).to.equal('pass')
    })
  })

  describe('with certificates a registry cannot be made to serve (stand-in endpoint)', () => {
    const endpoints: Endpoint[] = []
    after(async () => {
      for (const e of endpoints) await e.close()
    })
    const serve = async (tls: 'expired' | 'wrong-host' | 'self-signed') => {
      const e = await startEndpoint({tls})
      endpoints.push(e)
      return e
    }

    it('says when the certificate has expired', async () => {
      const e = await serve('expired')
      const r = await doctor(`${e.host}/policies/org`, {registry: {caFile: e.caFile}})
      const t = check(r, 'registry.tls')
      expect(t).to.include({status: 'fail', code: 'TLS_CERT_EXPIRED', exit: 4})
      expect(t.reason).to.contain('expired on 2020-02-01T00:00:00.000Z')
      expect(t.details).to.include({error: 'CERT_HAS_EXPIRED'})
    })

    it('says when the certificate names another host', async () => {
      const e = await serve('wrong-host')
      const r = await doctor(`${e.host}/policies/org`, {registry: {caFile: e.caFile}})
      const t = check(r, 'registry.tls')
      expect(t).to.include({status: 'fail', code: 'TLS_HOSTNAME_MISMATCH'})
      expect(t.reason).to.contain('does not name 127.0.0.1 (it names DNS:registry.other.example)')
    })

    it('says when the certificate is self-signed', async () => {
      const e = await serve('self-signed')
      const r = await doctor(`${e.host}/policies/org`, {registry: {plainHttp: false}})
      const t = check(r, 'registry.tls')
      expect(t).to.include({status: 'fail', code: 'TLS_UNTRUSTED'})
      expect(t.reason).to.contain('DEPTH_ZERO_SELF_SIGNED_CERT')
      expect((t.details!.certificate as {selfSigned: boolean}).selfSigned).to.equal(true)
    })

    it('says when HTTPS is asked of a port that serves plain HTTP', async () => {
      const e = await startEndpoint()
      endpoints.push(e)
      const r = await doctor(`${e.host}/policies/org`, {registry: {plainHttp: false}})
      expect(check(r, 'registry.reachable')).to.include({status: 'fail', code: 'TLS'})
      const t = check(r, 'registry.tls')
      expect(t).to.include({status: 'fail', code: 'TLS'})
      expect(t.reason).to.contain('does not speak TLS on this port')
      expect(t.suggestions[0]).to.contain('--plain-http')
    })
  })

  describe('clock skew against the registry Date header', () => {
    const endpoints: Endpoint[] = []
    after(async () => {
      for (const e of endpoints) await e.close()
    })
    const at = async (dateOffsetMs: number) => {
      const e = await startEndpoint({dateOffsetMs})
      endpoints.push(e)
      return check(await doctor(`${e.host}/policies/org`), 'registry.clock')
    }

    it('fails over 5 minutes, naming the direction', async () => {
      const c = await at(10 * 60_000)
      expect(c).to.include({status: 'fail', code: 'CLOCK_SKEW', exit: 1})
      expect(c.reason).to.match(/the local clock is 10 min behind 127\.0\.0\.1:\d+'s \(over 5 min\)/)
      expect(c.details!.skewMs as number).to.be.below(-9 * 60_000)
    })

    it('warns between 1 and 5 minutes', async () => {
      const c = await at(-3 * 60_000)
      expect(c).to.include({status: 'warn', code: 'CLOCK_SKEW'})
      expect(c.reason).to.contain('3 min ahead of')
    })

    it('passes within a few seconds', async () => {
      expect((await at(0)).status).to.equal('pass')
    })
  })

  describe('with bearer tokens and per-account permissions', () => {
    let reg: RegistryHandle
    before(async () => {
      reg = await startRegistry({
        auth: 'token',
        tokenServerOptions: {
          users: {writer: 'writer-pw-1', reader: 'reader-pw-2'},
          acl: (account) => (account === 'writer' ? ['pull', 'push'] : account === 'reader' ? ['pull'] : []),
        },
      })
      const w = new RemoteRepository(`${reg.host}/policies/org`, {credentials: staticCredentials({username: 'writer', password: 'writer-pw-1'})})
      await publish(w, ORG_BASELINE, [await privateKey('alice')], ['stable'])
      await w.close()
    })
    after(async () => {
      await reg?.stop()
    })
    const as = (username: string, password: string) => ({credentials: staticCredentials({username, password})})

    it('obtains a bearer token and passes pull and push for an account that may push', async () => {
      const r = await doctor(`${reg.host}/policies/org:stable`, {registry: as('writer', 'writer-pw-1')})
      const a = check(r, 'registry.auth')
      expect(a.status).to.equal('pass')
      expect(a.reason).to.equal(`bearer token obtained from ${reg.tokenServer!.realm} for user "writer" from --username writer`)
      expect(a.details).to.include({method: 'bearer', realm: reg.tokenServer!.realm})
      expect(check(r, 'repository.pull').status).to.equal('pass')
      expect(check(r, 'repository.push').status).to.equal('pass')
      expect(r.ok).to.equal(true)
    })

    it('fails push (DENIED) for a read-only account, and suggests --skip repository.push', async () => {
      const r = await doctor(`${reg.host}/policies/org:stable`, {registry: as('reader', 'reader-pw-2')})
      expect(check(r, 'repository.pull').status).to.equal('pass')
      const p = check(r, 'repository.push')
      expect(p).to.include({status: 'fail', code: 'DENIED', exit: 1})
      expect(p.reason).to.contain('push will fail')
      expect(p.reason).to.contain('user "reader" is not granted repository:policies/org:pull,push')
      expect(p.suggestions).to.include('on a host that only pulls (sandboxes), skip this check: --skip repository.push')
      expect(check(r, 'repository.referrers').status).to.equal('pass')
      expect(r.exit).to.equal(1)
    })

    it('with --skip repository.push, a read-only account passes', async () => {
      const r = await doctor(`${reg.host}/policies/org:stable`, {registry: as('reader', 'reader-pw-2'), skip: [...LOCAL, 'repository.push']})
      expect(r.ok).to.equal(true)
    })

    it('anonymous access gets a token but no pull permission', async () => {
      const r = await doctor(`${reg.host}/policies/org:stable`)
      const a = check(r, 'registry.auth')
      expect(a.status).to.equal('pass')
      expect(a.reason).to.contain('for anonymous access (no credentials found: anonymous)')
      const p = check(r, 'repository.pull')
      expect(p).to.include({status: 'fail', code: 'UNAUTHORIZED'})
      expect(p.reason).to.contain('requires authentication')
    })
  })
})

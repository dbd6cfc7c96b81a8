import {expect} from 'chai'
import path from 'node:path'

import {chainCredentials, dockerCredentials, staticCredentials} from '../../../../src/oci/auth/credentials.js'
import {RegistryClient} from '../../../../src/oci/client.js'
import {readAll} from '../../../../src/oci/content.js'
import {OciError} from '../../../../src/oci/errors.js'
import {discard} from '../../../../src/oci/http.js'
import {RemoteRepository} from '../../../../src/oci/stores/remote.js'
import {artifact, pushArtifact, randomBlob} from '../../../helpers/artifacts.js'
import {basicAuth, dockerConfigDir, fakeCredentialHelper} from '../../../helpers/cred-helper.js'
import {expectCode} from '../../../helpers/expect-error.js'
import {type FaultProxy, startFaultProxy} from '../../../helpers/fault-proxy.js'
import {type RegistryHandle, repositoryFactory, startRegistry} from '../../../helpers/registry.js'

function env(configDir: string, helperBin?: string): NodeJS.ProcessEnv {
  return {...process.env, DOCKER_CONFIG: configDir, PATH: helperBin ? `${helperBin}${path.delimiter}${process.env.PATH}` : process.env.PATH}
}

/** Every place a secret could surface from an error. */
function everythingAbout(err: unknown): string {
  const e = err as OciError
  return [e.message, e.stack, JSON.stringify(e), JSON.stringify(e.toJSON()), (e.suggestions ?? []).join('\n')].join('\n')
}

describe('Authorizer (against real registries)', function () {
  this.timeout(120_000)
  const repo = repositoryFactory({retry: {baseDelayMs: 5}})

  describe('when the registry uses Basic auth (htpasswd)', () => {
    let reg: RegistryHandle
    let proxy: FaultProxy
    before(async () => {
      reg = await startRegistry({auth: 'basic', username: 'alice', password: 'alice-basic-pw-9000'})
      proxy = await startFaultProxy(reg.url)
    })
    after(async () => {
      await proxy?.close()
      await reg?.stop()
    })
    beforeEach(() => {
      proxy.requests.length = 0
    })

    it('pushes and pulls with credentials from config.json "auths", paying the 401 round trip once', async () => {
      const dir = dockerConfigDir({auths: {[proxy.host]: {auth: basicAuth('alice', 'alice-basic-pw-9000')}}})
      const r = repo(`${proxy.host}/auth/basic-config`, {env: env(dir)})
      const a = artifact(['basic via config'])
      await pushArtifact(r, a, 'v1')
      expect((await readAll(await r.fetch(a.layers[0]!.desc), 1000)).equals(a.layers[0]!.data)).to.equal(true)
      expect(proxy.requests.filter((q) => q.outcome === 401)).to.have.length(1)
      expect(proxy.requests[0]!.headers.authorization).to.equal(undefined)
      for (const q of proxy.requests.slice(1)) expect(q.headers.authorization).to.match(/^Basic /)
    })

    it('gets credentials from a credHelpers helper (docker-credential-test on PATH)', async () => {
      const helper = fakeCredentialHelper('test')
      helper.set(proxy.host, 'alice', 'alice-basic-pw-9000')
      const dir = dockerConfigDir({credHelpers: {[proxy.host]: 'test'}})
      const r = repo(`${proxy.host}/auth/helper`, {env: env(dir, helper.binDir)})
      await pushArtifact(r, artifact(['via credHelpers']), 'v1')
      expect(await r.tags()).to.deep.equal(['v1'])
      expect(helper.calls()).to.deep.equal([proxy.host])
    })

    it('gets credentials from the credsStore helper (docker-credential-test on PATH)', async () => {
      const helper = fakeCredentialHelper('test')
      helper.set(proxy.host, 'alice', 'alice-basic-pw-9000')
      const dir = dockerConfigDir({credsStore: 'test', auths: {[proxy.host]: {}}})
      const r = repo(`${proxy.host}/auth/store`, {env: env(dir, helper.binDir)})
      await pushArtifact(r, artifact(['via credsStore']), 'v1')
      expect((await r.resolve('v1')).mediaType).to.contain('manifest')
    })

    it('uses explicit --username/--password-stdin credentials before config.json', async () => {
      const dir = dockerConfigDir({auths: {[proxy.host]: {auth: basicAuth('alice', 'stale-password')}}})
      const r = repo(`${proxy.host}/auth/explicit`, {
        credentials: chainCredentials(staticCredentials({username: 'alice', password: 'alice-basic-pw-9000'}), dockerCredentials({env: env(dir)})),
      })
      await pushArtifact(r, artifact(['explicit']), 'v1')
      expect(await r.tags()).to.deep.equal(['v1'])
    })

    it('says UNAUTHORIZED for a wrong password, naming user and source but never the password, and retries once only', async () => {
      const dir = dockerConfigDir({auths: {[proxy.host]: {auth: basicAuth('alice', 'wrong-password-1234')}}})
      const r = repo(`${proxy.host}/auth/wrong`, {env: env(dir)})
      const e = await expectCode(r.resolve('v1'), OciError, 'UNAUTHORIZED')
      expect(e.exit).to.equal(1)
      expect(e.message).to.contain('rejected the credentials').and.contain('user "alice"').and.contain(path.join(dir, 'config.json'))
      expect(everythingAbout(e)).to.not.contain('wrong-password-1234')
      expect(everythingAbout(e)).to.not.contain(basicAuth('alice', 'wrong-password-1234'))
      expect(proxy.requests.map((q) => q.outcome)).to.deep.equal([401, 401])
    })

    it('says UNAUTHORIZED with what to do when there are no credentials', async () => {
      const r = repo(`${proxy.host}/auth/none`, {env: env(dockerConfigDir({}))})
      const e = await expectCode(r.tags(), OciError, 'UNAUTHORIZED')
      expect(e.message).to.contain('requires authentication').and.contain('no credentials were found')
      expect(e.suggestions!.join('\n')).to.contain(`docker login ${proxy.host}`).and.contain('--password-stdin')
      expect(proxy.requests).to.have.length(1)
    })

    it('never logs a secret', async () => {
      const lines: string[] = []
      const dir = dockerConfigDir({auths: {[proxy.host]: {auth: basicAuth('alice', 'alice-basic-pw-9000')}}})
      const r = repo(`${proxy.host}/auth/logged`, {env: env(dir), logger: (l) => lines.push(l)})
      await pushArtifact(r, artifact(['logged']), 'v1')
      expect(lines.length).to.be.greaterThan(3)
      const all = lines.join('\n')
      expect(all).to.not.contain('alice-basic-pw-9000')
      expect(all).to.not.contain(basicAuth('alice', 'alice-basic-pw-9000'))
    })
  })

  describe('when the registry uses Bearer tokens', () => {
    let reg: RegistryHandle
    let proxy: FaultProxy
    before(async () => {
      reg = await startRegistry({
        auth: 'token',
        tokenServerOptions: {
          users: {alice: 'alice-token-pw-1', reader: 'reader-pw-2'},
          refreshTokens: {'alice-refresh-token-3': 'alice'},
          acl: (account, _type, name) => (account === 'alice' ? ['pull', 'push', 'delete'] : account === 'reader' ? ['pull'] : name.startsWith('public/') ? ['pull'] : []),
        },
      })
      proxy = await startFaultProxy(reg.url)
    })
    after(async () => {
      await proxy?.close()
      await reg?.stop()
    })
    beforeEach(() => {
      proxy.requests.length = 0
      reg.tokenServer!.requests.length = 0
    })
    const alice = () => staticCredentials({username: 'alice', password: 'alice-token-pw-1'})

    it('fetches one pull,push token for a whole push and reuses it for pulls', async () => {
      const r = repo(`${proxy.host}/tok/push`, {credentials: alice()})
      const a = artifact(['bearer'])
      await pushArtifact(r, a, 'v1')
      expect((await r.resolve('v1')).digest).to.equal(a.manifest.desc.digest)
      const ts = reg.tokenServer!.requests
      expect(ts).to.have.length(1)
      expect(ts[0]).to.deep.include({method: 'GET', account: 'alice', scopes: ['repository:tok/push:pull,push'], status: 200})
      expect(proxy.requests.filter((q) => q.outcome === 401)).to.have.length(1)
    })

    it('refuses a push by an account that may only pull with DENIED, naming the missing scope, without looping', async () => {
      const owner = repo(`${proxy.host}/tok/shared`, {credentials: alice()})
      const a = artifact(['shared'])
      await pushArtifact(owner, a, 'v1')
      const r = repo(`${proxy.host}/tok/shared`, {credentials: staticCredentials({username: 'reader', password: 'reader-pw-2'})})
      expect((await r.resolve('v1')).digest).to.equal(a.manifest.desc.digest)
      proxy.requests.length = 0
      const b = randomBlob(100)
      const e = await expectCode(r.push(b.desc, b.data), OciError, 'DENIED')
      expect(e.exit).to.equal(1)
      expect(e.message).to.contain('user "reader" is not granted repository:tok/shared:pull,push')
      expect(proxy.requests.length).to.be.at.most(2)
      expect(everythingAbout(e)).to.not.contain('reader-pw-2')
    })

    it('says UNAUTHORIZED to anonymous users, and lets them pull what the ACL makes public', async () => {
      const owner = repo(`${proxy.host}/public/x`, {credentials: alice()})
      await pushArtifact(owner, artifact(['public']), 'v1')
      const anon = repo(`${proxy.host}/public/x`, {credentials: null})
      expect(await anon.tags()).to.deep.equal(['v1'])
      const e = await expectCode(repo(`${proxy.host}/tok/private`, {credentials: null}).tags(), OciError, 'UNAUTHORIZED')
      expect(e.message).to.contain('requires authentication')
    })

    it('asks for both scopes a cross-repository mount needs', async () => {
      const src = repo(`${proxy.host}/tok/src`, {credentials: alice()})
      const b = randomBlob(1000)
      await src.push(b.desc, b.data)
      const dst = repo(`${proxy.host}/tok/dst`, {credentials: alice()})
      reg.tokenServer!.requests.length = 0
      expect(await dst.mount(b.desc, 'tok/src')).to.equal(true)
      expect(reg.tokenServer!.requests.map((q) => q.scopes)).to.deep.equal([['repository:tok/dst:pull,push', 'repository:tok/src:pull']])
    })

    it('widens the token once when the registry asks for a scope the request did not declare', async () => {
      const r = repo(`${proxy.host}/tok/widen`, {credentials: alice()})
      await pushArtifact(r, artifact(['widen']), 'v1')
      const client = r.client
      reg.tokenServer!.requests.length = 0
      proxy.requests.length = 0
      const res = await client.request({method: 'GET', url: '/v2/tok/widen/tags/list', scopes: ['repository:tok/other:pull'], what: 'list tags'})
      expect(res.status).to.equal(200)
      await discard(res)
      expect(proxy.requests.map((q) => q.outcome)).to.deep.equal([401, 200])
      expect(reg.tokenServer!.requests.at(-1)!.scopes).to.deep.equal(['repository:tok/other:pull', 'repository:tok/widen:pull'])
    })

    it('exchanges an identity token (config.json "identitytoken") with the OAuth2 refresh-token POST', async () => {
      const dir = dockerConfigDir({auths: {[proxy.host]: {identitytoken: 'alice-refresh-token-3'}}})
      const r = repo(`${proxy.host}/tok/oauth`, {env: env(dir)})
      await pushArtifact(r, artifact(['oauth']), 'v1')
      expect(reg.tokenServer!.requests.map((q) => [q.method, q.account])).to.deep.equal([['POST', 'alice']])
    })

    it('says UNAUTHORIZED when the token server rejects the password, without leaking it', async () => {
      const r = repo(`${proxy.host}/tok/badpw`, {credentials: staticCredentials({username: 'alice', password: 'not-alices-pw-42'})})
      const e = await expectCode(r.tags(), OciError, 'UNAUTHORIZED')
      expect(e.message).to.contain('rejected the credentials').and.contain('user "alice"')
      expect(everythingAbout(e)).to.not.contain('not-alices-pw-42')
    })

    it('never logs the bearer token', async () => {
      const lines: string[] = []
      const r = repo(`${proxy.host}/tok/log`, {credentials: alice(), logger: (l) => lines.push(l)})
      await pushArtifact(r, artifact(['log']), 'v1')
      const issued = (reg.tokenServer!.requests.length > 0 && proxy.requests.find((q) => q.headers.authorization)?.headers.authorization) as string
      expect(issued).to.match(/^Bearer /)
      expect(lines.join('\n')).to.not.contain(issued.slice(7))
    })
  })

  describe('when tokens expire', () => {
    let reg: RegistryHandle
    before(async () => {
      reg = await startRegistry({auth: 'token', tokenServerOptions: {expiresIn: 1}})
    })
    after(async () => {
      await reg?.stop()
    })

    it('fetches a new token after expires_in', async () => {
      const client = new RegistryClient(reg.host, {credentials: staticCredentials({username: 'testuser', password: 'testpass'})})
      try {
        const r = new RemoteRepository(`${reg.host}/exp/x`, {client})
        await pushArtifact(r, artifact(['expiry']), 'v1')
        const before = reg.tokenServer!.requests.length
        await r.tags()
        expect(reg.tokenServer!.requests.length).to.equal(before)
        await new Promise((res) => setTimeout(res, 1200))
        await r.tags()
        expect(reg.tokenServer!.requests.length).to.equal(before + 1)
      } finally {
        await client.close()
      }
    })
  })
})

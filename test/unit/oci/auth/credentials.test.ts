import {expect} from 'chai'
import path from 'node:path'

import {InputError} from '../../../../src/errors.js'
import {
  chainCredentials,
  dockerConfigPath,
  dockerCredentials,
  loadDockerConfig,
  normaliseRegistryKey,
  runCredentialHelper,
  staticCredentials,
} from '../../../../src/oci/auth/credentials.js'
import {OciError} from '../../../../src/oci/errors.js'
import {redact} from '../../../../src/oci/redact.js'
import {basicAuth, dockerConfigDir, fakeCredentialHelper} from '../../../helpers/cred-helper.js'
import {expectCode} from '../../../helpers/expect-error.js'
import {tmpdir} from '../../../helpers/tmp.js'

function envFor(dir: string, helperBin?: string): NodeJS.ProcessEnv {
  return {...process.env, DOCKER_CONFIG: dir, PATH: helperBin ? `${helperBin}${path.delimiter}${process.env.PATH}` : process.env.PATH}
}

describe('auth/credentials', () => {
  describe('#dockerCredentials', () => {
    describe('when config.json has auths entries', () => {
      it('decodes base64 "auth" into user and password, naming the source', async () => {
        const dir = dockerConfigDir({auths: {'127.0.0.1:5000': {auth: basicAuth('alice', 'pw-from-auth:with-colon')}}})
        const r = await dockerCredentials({env: envFor(dir)})('127.0.0.1:5000')
        expect(r!.credential).to.deep.equal({username: 'alice', password: 'pw-from-auth:with-colon'})
        expect(r!.source).to.equal(`auths["127.0.0.1:5000"] in ${path.join(dir, 'config.json')}`)
      })

      it('reads username/password fields and identity tokens', async () => {
        const dir = dockerConfigDir({auths: {'a.example': {username: 'bob', password: 'pw-fields'}, 'b.example': {identitytoken: 'refresh-tok-123'}}})
        const p = dockerCredentials({env: envFor(dir)})
        expect((await p('a.example'))!.credential).to.deep.equal({username: 'bob', password: 'pw-fields'})
        expect((await p('b.example'))!.credential).to.deep.equal({identityToken: 'refresh-tok-123'})
      })

      it('matches keys written with a scheme and path, and Docker Hub’s legacy key', async () => {
        const dir = dockerConfigDir({
          auths: {'https://127.0.0.1:5001/v1/': {auth: basicAuth('u', 'p-url-key')}, 'https://index.docker.io/v1/': {auth: basicAuth('hub', 'p-hub')}},
        })
        const p = dockerCredentials({env: envFor(dir)})
        expect((await p('127.0.0.1:5001'))!.credential.password).to.equal('p-url-key')
        expect((await p('docker.io'))!.credential.username).to.equal('hub')
        expect(await p('127.0.0.1:5002')).to.equal(undefined)
      })

      it('ignores entries without a secret (docker leaves {} behind with credsStore)', async () => {
        const dir = dockerConfigDir({auths: {'h.example': {}}})
        expect(await dockerCredentials({env: envFor(dir)})('h.example')).to.equal(undefined)
      })
    })

    describe('when credential helpers are configured', () => {
      it('asks the credHelpers helper for its registry first, with the server on stdin', async () => {
        const helper = fakeCredentialHelper('perreg')
        helper.set('127.0.0.1:5000', 'helper-user', 'helper-secret')
        const dir = dockerConfigDir({credHelpers: {'127.0.0.1:5000': 'perreg'}, auths: {'127.0.0.1:5000': {auth: basicAuth('file', 'file-pw')}}})
        const r = await dockerCredentials({env: envFor(dir, helper.binDir)})('127.0.0.1:5000')
        expect(r!.credential).to.deep.equal({username: 'helper-user', password: 'helper-secret'})
        expect(r!.source).to.contain('docker-credential-perreg (credHelpers in')
        expect(helper.calls()).to.deep.equal(['127.0.0.1:5000'])
      })

      it('uses credsStore for other registries and falls back to auths when the store has nothing', async () => {
        const helper = fakeCredentialHelper('store')
        helper.set('a.example', 'store-user', 'store-secret')
        const dir = dockerConfigDir({credsStore: 'store', auths: {'b.example': {auth: basicAuth('file', 'file-pw')}}})
        const p = dockerCredentials({env: envFor(dir, helper.binDir)})
        expect((await p('a.example'))!.source).to.contain('credsStore')
        expect((await p('b.example'))!.credential).to.deep.equal({username: 'file', password: 'file-pw'})
        expect(await p('c.example')).to.equal(undefined)
        expect(helper.calls()).to.deep.equal(['a.example', 'b.example', 'c.example'])
      })

      it('sends Docker Hub’s legacy server URL and reads "<token>" as an identity token', async () => {
        const helper = fakeCredentialHelper('hub')
        helper.set('https://index.docker.io/v1/', '<token>', 'hub-refresh-token')
        const dir = dockerConfigDir({credsStore: 'hub'})
        const r = await dockerCredentials({env: envFor(dir, helper.binDir)})('docker.io')
        expect(r!.credential).to.deep.equal({identityToken: 'hub-refresh-token'})
      })

      it('says which helper is missing from PATH and where it was configured', async () => {
        const dir = dockerConfigDir({credsStore: 'nonexistent-helper-xyz'})
        const e = await expectCode(dockerCredentials({env: envFor(dir)})('a.example'), OciError, 'UNAUTHORIZED')
        expect(e.exit).to.equal(1)
        expect(e.message).to.contain('docker-credential-nonexistent-helper-xyz is not on PATH').and.contain(path.join(dir, 'config.json'))
      })

      it('reports a failing helper without leaking what it printed', async () => {
        const helper = fakeCredentialHelper('broken', 'broken')
        const e = await expectCode(runCredentialHelper('broken', 'a.example', {env: envFor(tmpdir(), helper.binDir)}), OciError, 'UNAUTHORIZED')
        expect(e.message).to.contain('failed (exit 2)').and.contain('keychain is locked')
        expect(e.message).to.not.contain('hunter2-leak')
      })

      it('gives up on a helper that does not answer in time', async () => {
        const helper = fakeCredentialHelper('slow', 'slow')
        const e = await expectCode(runCredentialHelper('slow', 'a.example', {env: envFor(tmpdir(), helper.binDir), timeoutMs: 300}), OciError, 'UNAUTHORIZED')
        expect(e.message).to.contain('did not answer within 0.3 s')
      })

      it('refuses helper names that are paths', async () => {
        await expectCode(runCredentialHelper('../../bin/sh', 'a.example'), OciError, 'UNAUTHORIZED')
      })
    })

    describe('when config.json is broken', () => {
      it('says where, without quoting its content (it holds secrets)', async () => {
        const dir = dockerConfigDir('{"auths": {"h": {"auth": "c2VjcmV0LXNob3VsZC1ub3QtbGVhaw=="}},, }')
        const e = await expectCode(dockerCredentials({env: envFor(dir)})('h'), InputError, 'DOCKER_CONFIG_INVALID')
        expect(e.exit).to.equal(1)
        expect(e.message).to.contain(path.join(dir, 'config.json')).and.contain('not valid JSON')
        expect(e.message).to.not.contain('c2VjcmV0')
      })

      it('names the entry whose auth is not base64 of user:password', async () => {
        const dir = dockerConfigDir({auths: {'h.example': {auth: basicAuth('nocolon', '').replace(/=+$/, '') + '!!'}}})
        const e = await expectCode(dockerCredentials({env: envFor(dir)})('h.example'), InputError, 'DOCKER_CONFIG_INVALID')
        expect(e.message).to.contain('auths["h.example"].auth must be base64')
      })

      it('refuses wrong types', () => {
        expect(() => loadDockerConfig(path.join(dockerConfigDir({auths: []}), 'config.json'))).to.throw(InputError, /"auths" must be an object/)
        expect(() => loadDockerConfig(path.join(dockerConfigDir({credsStore: 3}), 'config.json'))).to.throw(InputError, /"credsStore" must be a string/)
      })
    })

    describe('when there is no config', () => {
      it('finds nothing', async () => {
        expect(await dockerCredentials({env: {...process.env, DOCKER_CONFIG: tmpdir()}})('h.example')).to.equal(undefined)
      })

      it('looks in $DOCKER_CONFIG, else ~/.docker', () => {
        expect(dockerConfigPath({DOCKER_CONFIG: '/x'})).to.equal('/x/config.json')
        expect(dockerConfigPath({HOME: '/home/u'})).to.equal('/home/u/.docker/config.json')
      })
    })

    it('registers every secret it loads for redaction', async () => {
      const dir = dockerConfigDir({auths: {'r.example': {auth: basicAuth('carol', 'carols-password-77')}}})
      await dockerCredentials({env: envFor(dir)})('r.example')
      expect(redact('oops carols-password-77')).to.equal('oops ***')
    })
  })

  describe('#chainCredentials and #staticCredentials', () => {
    it('lets explicit credentials win, and scopes them to one registry when asked', async () => {
      const dir = dockerConfigDir({auths: {'a.example': {auth: basicAuth('file', 'file-pw')}}})
      const p = chainCredentials(staticCredentials({username: 'cli', password: 'cli-pw-1234'}, {registry: 'a.example'}), dockerCredentials({env: envFor(dir)}))
      expect((await p('a.example'))!.source).to.equal('--username cli')
      expect(await p('b.example')).to.equal(undefined)
    })
  })

  describe('#normaliseRegistryKey', () => {
    it('strips scheme and path and folds Docker Hub aliases', () => {
      expect(normaliseRegistryKey('https://Registry.Example:443/v2/')).to.equal('registry.example:443')
      expect(normaliseRegistryKey('index.docker.io')).to.equal('docker.io')
      expect(normaliseRegistryKey('localhost:5000')).to.equal('localhost:5000')
    })
  })
})

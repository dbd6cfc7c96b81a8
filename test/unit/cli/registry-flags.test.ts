import {Readable} from 'node:stream'

import {expect} from 'chai'

import {registriesOf, registryOptions} from '../../../src/cli/registry-flags.js'
import {tmpdir} from '../../helpers/tmp.js'

describe('registryOptions', () => {
  describe('with --username and --password-stdin', () => {
    it('sends the explicit credentials only to the registries the command names', async () => {
      const prev = process.env.DOCKER_CONFIG
      process.env.DOCKER_CONFIG = tmpdir()
      try {
        const opts = await registryOptions({username: 'ci', 'password-stdin': true}, {stdin: Readable.from(['s3cret\n']), registries: registriesOf('127.0.0.1:5000/policies/org:stable', 'oci:./x')})
        const mine = await opts.credentials!('127.0.0.1:5000')
        expect(mine?.credential).to.deep.equal({username: 'ci', password: 's3cret'})
        expect(await opts.credentials!('registry.other.com')).to.equal(undefined)
      } finally {
        if (prev === undefined) delete process.env.DOCKER_CONFIG
        else process.env.DOCKER_CONFIG = prev
      }
    })
    it('refuses an empty password', async () => {
      let err: unknown
      await registryOptions({username: 'ci', 'password-stdin': true}, {stdin: Readable.from(['\n']), registries: ['r.example.com']}).catch((e) => (err = e))
      expect((err as {code?: string}).code).to.equal('PASSWORD_REQUIRED')
    })
  })
  describe('with the TLS flags', () => {
    it('maps --plain-http/--no-plain-http, --insecure and --ca-file', async () => {
      expect(await registryOptions({'plain-http': false, insecure: true, 'ca-file': ['ca.pem']})).to.include({plainHttp: false, insecure: true})
      expect((await registryOptions({'ca-file': ['a.pem', 'b.pem']})).caFile).to.deep.equal(['a.pem', 'b.pem'])
      expect(await registryOptions({})).to.deep.equal({})
    })
  })
})

describe('registriesOf', () => {
  it('lists the registries of registry references, ignoring layouts and bad input', () => {
    expect(registriesOf('127.0.0.1:5000/a:b', 'oci:./dir:t', 'docker.io/x/y', 'not a ref', '127.0.0.1:5000/c')).to.deep.equal(['127.0.0.1:5000', 'docker.io'])
  })
})

import {expect} from 'chai'

import {
  coversScopes,
  formatScopes,
  mergeScopes,
  parseScopes,
  parseWwwAuthenticate,
  repositoryScope,
} from '../../../../src/oci/auth/challenge.js'

describe('auth/challenge', () => {
  describe('#parseWwwAuthenticate', () => {
    describe('when distribution sends a Bearer challenge', () => {
      it('reads realm, service, several space-separated scopes and the error', () => {
        const [c] = parseWwwAuthenticate(
          'Bearer realm="http://127.0.0.1:5005/token",service="ocilab-registry",scope="repository:lab/tok:pull,push repository:lab/src:pull",error="insufficient_scope"',
        )
        expect(c).to.deep.equal({
          scheme: 'bearer',
          params: {
            realm: 'http://127.0.0.1:5005/token',
            service: 'ocilab-registry',
            scope: 'repository:lab/tok:pull,push repository:lab/src:pull',
            error: 'insufficient_scope',
          },
        })
      })
    })

    describe('when the header is unusual but valid', () => {
      it('handles escaped quotes and commas inside quoted values, spaces around "=" and scheme case', () => {
        const [c] = parseWwwAuthenticate('BEARER realm = "https://a/t?x=1,y=2" , service=reg, error_description="say \\"no\\""')
        expect(c!.scheme).to.equal('bearer')
        expect(c!.params).to.deep.equal({realm: 'https://a/t?x=1,y=2', service: 'reg', error_description: 'say "no"'})
      })

      it('splits several challenges in one header and across headers', () => {
        const cs = parseWwwAuthenticate(['Basic realm="r1", Bearer realm="r2",service="s"', 'Negotiate abc=='])
        expect(cs.map((c) => c.scheme)).to.deep.equal(['basic', 'bearer', 'negotiate'])
        expect(cs[0]!.params).to.deep.equal({realm: 'r1'})
        expect(cs[1]!.params).to.deep.equal({realm: 'r2', service: 's'})
        expect(cs[2]!.token68).to.equal('abc==')
      })

      it('reads a bare scheme', () => {
        expect(parseWwwAuthenticate('Basic')).to.deep.equal([{scheme: 'basic', params: {}}])
      })

      it('ignores garbage without throwing', () => {
        expect(() => parseWwwAuthenticate('"",,;;==Bearer realm="x')).to.not.throw()
        expect(parseWwwAuthenticate(undefined)).to.deep.equal([])
        expect(parseWwwAuthenticate('')).to.deep.equal([])
      })
    })
  })

  describe('scopes', () => {
    it('parses, merges and formats them sorted', () => {
      const a = parseScopes('repository:x:push,pull repository:y:pull')
      const b = parseScopes(['repository:x:pull', 'registry:catalog:*'])
      expect(formatScopes(mergeScopes(a, b))).to.deep.equal(['registry:catalog:*', 'repository:x:pull,push', 'repository:y:pull'])
    })

    it('keeps ports in resource names (the last ":" separates actions)', () => {
      expect(formatScopes(parseScopes('repository:localhost:5000/x:pull'))).to.deep.equal(['repository:localhost:5000/x:pull'])
    })

    it('decides coverage per resource and action, with "*" covering all', () => {
      const have = parseScopes('repository:x:pull,push registry:catalog:*')
      expect(coversScopes(have, parseScopes('repository:x:pull'))).to.equal(true)
      expect(coversScopes(have, parseScopes('registry:catalog:search'))).to.equal(true)
      expect(coversScopes(have, parseScopes('repository:x:delete'))).to.equal(false)
      expect(coversScopes(have, parseScopes('repository:y:pull'))).to.equal(false)
    })

    it('builds repository scopes', () => {
      expect(repositoryScope('a/b', 'pull', 'push')).to.equal('repository:a/b:pull,push')
    })
  })
})

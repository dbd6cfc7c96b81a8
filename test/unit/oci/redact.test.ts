import {expect} from 'chai'

import {REDACTED, redact, redactHeaders, redactUrl, registerSecret} from '../../../src/oci/redact.js'

describe('redact', () => {
  describe('#redact', () => {
    describe('when a secret was registered', () => {
      it('masks it, its base64 and its Basic form wherever they appear', () => {
        registerSecret('hunter2-pass-xyz', 'alice')
        const basic = Buffer.from('alice:hunter2-pass-xyz').toString('base64')
        const out = redact(`registry said: password hunter2-pass-xyz is wrong; header ${basic}; b64 ${Buffer.from('hunter2-pass-xyz').toString('base64')}`)
        expect(out).to.not.contain('hunter2-pass-xyz')
        expect(out).to.not.contain(basic)
        expect(out).to.contain(REDACTED)
        expect(out).to.contain('registry said')
      })

      it('masks a URL-encoded copy too', () => {
        registerSecret('p@ss w/rd!x')
        expect(redact(`?password=${encodeURIComponent('p@ss w/rd!x')}`)).to.not.contain(encodeURIComponent('p@ss w/rd!x'))
      })
    })

    describe('when nothing was registered', () => {
      it('masks Authorization headers and Basic/Bearer credentials by shape', () => {
        expect(redact('Authorization: Bearer abc.def.ghi')).to.equal(`Authorization: ${REDACTED}`)
        expect(redact('authorization=Basic dXNlcjpwYXNz')).to.equal(`authorization=${REDACTED}`)
        expect(redact('sent Bearer eyJhbGciOiJFUzI1NiJ9.x.y to it')).to.equal(`sent Bearer ${REDACTED} to it`)
      })

      it('keeps challenge parameters readable', () => {
        const c = 'Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"'
        expect(redact(c)).to.equal(c)
      })

      it('masks user-info in URLs and token query parameters', () => {
        expect(redact('https://bob:s3cret@registry.example/v2/')).to.equal(`https://${REDACTED}@registry.example/v2/`)
        expect(redact('https://t.example/token?service=r&access_token=abc123&scope=x')).to.equal(
          `https://t.example/token?service=r&access_token=${REDACTED}&scope=x`,
        )
        expect(redact('grant_type=refresh_token&refresh_token=zzz999')).to.contain(`refresh_token=${REDACTED}`)
      })

      it('masks token-ish JSON fields', () => {
        const out = redact('{"token":"t0k3n","access_token":"a\\"b","expires_in":60,"Secret":"s","auth":"dXNlcjpw","identitytoken":"idt"}')
        expect(out).to.equal(
          `{"token":"${REDACTED}","access_token":"${REDACTED}","expires_in":60,"Secret":"${REDACTED}","auth":"${REDACTED}","identitytoken":"${REDACTED}"}`,
        )
      })
    })
  })

  describe('#redactUrl', () => {
    it('masks credentials and shortens the upload _state', () => {
      const out = redactUrl('http://u:p@127.0.0.1:5000/v2/x/blobs/uploads/123?_state=LONGOPAQUE&digest=sha256%3Aab&token=t')
      expect(out).to.not.contain('LONGOPAQUE')
      expect(out).to.not.contain('u:p@')
      expect(out).to.contain(`token=${REDACTED}`)
      expect(out).to.contain('digest=sha256%3Aab')
    })
  })

  describe('#redactHeaders', () => {
    it('masks secret headers whatever their case', () => {
      expect(redactHeaders({Authorization: 'Basic x', 'content-type': 'a', Cookie: 'c=1'})).to.deep.equal({
        Authorization: REDACTED,
        'content-type': 'a',
        Cookie: REDACTED,
      })
    })
  })
})

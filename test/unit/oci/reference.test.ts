import {expect} from 'chai'

import {OciError} from '../../../src/oci/errors.js'
import {
  assertRepository,
  credentialKey,
  formatReference,
  isLoopbackHost,
  parseReference,
  parseRegistryReference,
} from '../../../src/oci/reference.js'

const D = `sha256:${'a'.repeat(64)}`

function refused(input: string, pattern: RegExp): void {
  let caught: unknown
  try {
    parseReference(input)
  } catch (err) {
    caught = err
  }
  expect(caught, `expected ${JSON.stringify(input)} to be refused`).to.be.instanceOf(OciError)
  const e = caught as OciError
  expect(e.code).to.equal('INVALID_REFERENCE')
  expect(e.exit).to.equal(1)
  expect(e.message).to.match(/^invalid reference "/)
  expect(e.message).to.match(pattern)
  expect(e.suggestions ?? []).to.not.be.empty
}

describe('reference', () => {
  describe('#parseRegistryReference', () => {
    describe('when the reference is well formed', () => {
      it('splits host, repository and tag', () => {
        expect(parseRegistryReference('registry.example.com/policies/org:stable')).to.deep.equal({
          kind: 'registry',
          registry: 'registry.example.com',
          host: 'registry.example.com',
          repository: 'policies/org',
          tag: 'stable',
        })
      })

      it('keeps a port and reads a digest', () => {
        expect(parseRegistryReference(`127.0.0.1:5000/a/b/c@${D}`)).to.deep.equal({
          kind: 'registry',
          registry: '127.0.0.1:5000',
          host: '127.0.0.1:5000',
          repository: 'a/b/c',
          digest: D,
        })
      })

      it('keeps both tag and digest', () => {
        const r = parseRegistryReference(`localhost:5000/x:v1@${D}`)
        expect(r.tag).to.equal('v1')
        expect(r.digest).to.equal(D)
      })

      it('accepts a bare repository (for listing tags)', () => {
        const r = parseRegistryReference('localhost/policies')
        expect(r.tag).to.equal(undefined)
        expect(r.digest).to.equal(undefined)
        expect(r.repository).to.equal('policies')
      })

      it('lower-cases the host and normalises the port', () => {
        expect(parseRegistryReference('Registry.Example.COM:0443/x').registry).to.equal('registry.example.com:443')
      })

      it('accepts IPv6 hosts in brackets', () => {
        const r = parseRegistryReference('[::1]:5000/policies/org:v1')
        expect(r.registry).to.equal('[::1]:5000')
        expect(r.repository).to.equal('policies/org')
        expect(r.tag).to.equal('v1')
      })

      it('accepts the separators distribution accepts (".", "_", "__", dashes)', () => {
        expect(parseRegistryReference('h.io/a.b_c__d--e-f/g').repository).to.equal('a.b_c__d--e-f/g')
      })

      it('accepts a 128-character tag', () => {
        expect(parseRegistryReference(`h.io/x:${'t'.repeat(128)}`).tag).to.have.length(128)
      })
    })

    describe('when the registry is Docker Hub', () => {
      it('connects to registry-1.docker.io and adds library/ for official images', () => {
        expect(parseRegistryReference('docker.io/alpine:3')).to.deep.equal({
          kind: 'registry',
          registry: 'docker.io',
          host: 'registry-1.docker.io',
          repository: 'library/alpine',
          tag: '3',
        })
      })

      it('treats index.docker.io and registry-1.docker.io as docker.io', () => {
        expect(parseRegistryReference('index.docker.io/org/x').registry).to.equal('docker.io')
        expect(parseRegistryReference('registry-1.docker.io/org/x').repository).to.equal('org/x')
      })

      it('uses docker’s credential key for it', () => {
        expect(credentialKey('docker.io')).to.equal('https://index.docker.io/v1/')
        expect(credentialKey('127.0.0.1:5000')).to.equal('127.0.0.1:5000')
      })
    })

    describe('when the reference is malformed', () => {
      it('refuses a reference without a registry host, suggesting docker.io/ and oci:', () => {
        refused('policies/org:stable', /"policies" is not a registry host/)
        refused('alpine', /no registry host/)
        try {
          parseReference('alpine')
        } catch (err) {
          expect((err as OciError).suggestions!.join('\n')).to.contain('docker.io/library/alpine')
        }
      })

      it('refuses a registry without a repository', () => {
        refused('127.0.0.1:5000', /names registry "127\.0\.0\.1:5000" but no repository/)
        refused('registry.example.com', /but no repository/)
      })

      it('refuses upper-case repository names, saying why', () => {
        refused('h.io/Policies', /must be lower-case/)
      })

      it('refuses empty parts', () => {
        refused('', /empty/)
        refused('h.io/', /repository name is empty/)
        refused('h.io//x', /empty path component/)
        refused('h.io/x/', /empty path component/)
        refused('h.io/x:', /tag after ":" is empty/)
        refused('h.io/x@', /digest after "@" is empty/)
      })

      it('refuses ".." and "." components', () => {
        refused('h.io/a/../b', /contains a "\.\." path component/)
        refused('h.io/./b', /contains a "\." path component/)
      })

      it('refuses control characters and whitespace, escaping them in the message', () => {
        refused('h.io/x\u0000y', /control characters/)
        refused('h.io/x\u001b[31m', /\\u001b/)
        refused('h.io/x y', /whitespace/)
      })

      it('refuses bad tags', () => {
        refused('h.io/x:.bad', /tag "\.bad" may only contain/)
        refused('h.io/x:-bad', /may only contain/)
        refused(`h.io/x:${'t'.repeat(129)}`, /129 characters long, the limit is 128/)
      })

      it('refuses digests that are not sha256 hex', () => {
        refused('h.io/x@sha512:abcd', /only sha256 is accepted/)
        refused('h.io/x@sha256:ABC', /not sha256:<64 lowercase hex>/)
        refused(`h.io/x@${D}@${D}`, /not sha256|more than one "@"/)
      })

      it('refuses a URL scheme, suggesting the reference without it', () => {
        refused('https://h.io/x:v1', /"https:\/\/" is not part of a reference/)
      })

      it('refuses bad hosts and ports', () => {
        refused('h.io:99999/x', /port "99999"/)
        refused('h.io:abc/x', /port "abc"/)
        refused('-h.io/x', /not a valid host name/)
        refused('[::1/x', /unterminated IPv6/)
      })

      it('refuses names longer than 255 characters', () => {
        refused(`h.io/${'a'.repeat(256)}`, /longer than 255/)
      })
    })
  })

  describe('#parseReference', () => {
    describe('when the reference is a layout', () => {
      it('reads oci:DIR, oci:DIR:tag and oci:DIR@digest', () => {
        expect(parseReference('oci:./layout')).to.deep.equal({kind: 'layout', format: 'dir', path: './layout'})
        expect(parseReference('oci:/tmp/l:v1.2')).to.deep.equal({kind: 'layout', format: 'dir', path: '/tmp/l', tag: 'v1.2'})
        expect(parseReference(`oci:/tmp/l@${D}`)).to.deep.equal({kind: 'layout', format: 'dir', path: '/tmp/l', digest: D})
        expect(parseReference(`oci:/tmp/l:v1@${D}`)).to.deep.equal({kind: 'layout', format: 'dir', path: '/tmp/l', tag: 'v1', digest: D})
      })

      it('reads oci-archive:FILE[:tag] as a layout tar', () => {
        expect(parseReference('oci-archive:/tmp/x.tar:v1')).to.deep.equal({kind: 'layout', format: 'tar', path: '/tmp/x.tar', tag: 'v1'})
      })

      it('keeps "@" inside a directory name when no digest follows', () => {
        expect(parseReference('oci:/tmp/a@b')).to.deep.equal({kind: 'layout', format: 'dir', path: '/tmp/a@b'})
      })

      it('ends the path at its first ":" like skopeo, refusing a path that would continue', () => {
        refused('oci:/tmp/a:b/c', /ends at its first ":"/)
      })

      it('refuses an empty directory or tag', () => {
        refused('oci:', /directory after "oci:" is empty/)
        refused('oci::v1', /directory after "oci:" is empty/)
        refused('oci:/tmp/l:', /tag after ":" is empty/)
        refused('oci-archive:', /file after "oci-archive:" is empty/)
      })

      it('validates the tag and digest', () => {
        refused('oci:/tmp/l:.x', /may only contain/)
        refused('oci:/tmp/l@sha256:zz', /not sha256/)
      })
    })
  })

  describe('#formatReference', () => {
    it('round-trips registry and layout references', () => {
      for (const s of ['127.0.0.1:5000/a/b:v1', `h.io/x@${D}`, `h.io/x:t@${D}`, 'oci:/tmp/l:v1', 'oci-archive:x.tar', 'docker.io/library/alpine:3']) {
        expect(formatReference(parseReference(s))).to.equal(s)
      }
    })
  })

  describe('#assertRepository', () => {
    it('accepts nested lower-case paths and refuses the rest', () => {
      expect(() => assertRepository('a/b-c/d.e')).to.not.throw()
      expect(() => assertRepository('a/B')).to.throw(OciError, /lower-case/)
    })
  })

  describe('#isLoopbackHost', () => {
    it('is true for localhost, 127.0.0.0/8 and ::1 (with or without port)', () => {
      for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.1.2.3:80', '[::1]:5000', '::1']) expect(isLoopbackHost(h), h).to.equal(true)
    })

    it('is false for everything else', () => {
      for (const h of ['10.0.0.1', 'example.com', '128.0.0.1:5000', 'localhost.example.com', '127.0.0.256', '[::2]:1']) {
        expect(isLoopbackHost(h), h).to.equal(false)
      }
    })
  })
})

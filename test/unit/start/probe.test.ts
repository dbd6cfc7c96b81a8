import fs from 'node:fs'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import path from 'node:path'

import {expect} from 'chai'

import {EXIT} from '../../../src/errors.js'
import {LayoutDirStore, parseRegistryReference} from '../../../src/oci/index.js'
import {parseResponseHead, probeLayout, probeRegistry} from '../../../src/start/probe.js'
import {ORG_BASELINE, privateKey, publish} from '../../helpers/policy-fixtures.js'
import {tmpdir} from '../../helpers/tmp.js'

const DIGEST = `sha256:${'a'.repeat(64)}`

/** A loopback server answering every request with `answer` and recording what it got. */
async function server(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{host: string; seen: http.IncomingMessage[]; close(): Promise<void>}> {
  const seen: http.IncomingMessage[] = []
  const s = http.createServer((req, res) => {
    seen.push(req)
    answer(req, res)
  })
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  return {host: `127.0.0.1:${(s.address() as AddressInfo).port}`, seen, close: () => new Promise<void>((r) => s.close(() => r()))}
}

describe('start: the freshness probe', () => {
  describe('parseResponseHead', () => {
    it('reads the status and lower-cased headers (first value wins)', () => {
      const h = parseResponseHead('HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:x\r\nContent-Length: 12\r\ncontent-length: 13')
      expect(h?.status).to.equal(200)
      expect(h?.headers.get('docker-content-digest')).to.equal('sha256:x')
      expect(h?.headers.get('content-length')).to.equal('12')
    })
    it('refuses what is not HTTP/1.x', () => {
      expect(parseResponseHead('SSH-2.0-OpenSSH')).to.equal(undefined)
      expect(parseResponseHead('HTTP/1.1 200 OK\r\nbroken header')).to.equal(undefined)
    })
  })

  describe('probeRegistry', () => {
    it('sends one HEAD with the manifest Accept types and returns the digest', async () => {
      const s = await server((_req, res) => {
        res.writeHead(200, {'docker-content-digest': DIGEST, 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': '712'})
        res.end()
      })
      try {
        const r = await probeRegistry(parseRegistryReference(`${s.host}/policies/org:stable`), {timeoutMs: 5000})
        expect(r).to.deep.equal({kind: 'found', desc: {mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: DIGEST, size: 712}, requests: 1})
        expect(s.seen).to.have.length(1)
        expect(s.seen[0]!.method).to.equal('HEAD')
        expect(s.seen[0]!.url).to.equal('/v2/policies/org/manifests/stable')
        expect(s.seen[0]!.headers.accept).to.contain('application/vnd.oci.image.manifest.v1+json')
      } finally {
        await s.close()
      }
    })
    it('reports 5xx and 429 as unreachable (transient), 404 as not found, 401 as a question for the full client', async () => {
      for (const [status, kind, exit] of [
        [503, 'unreachable', EXIT.TRANSIENT],
        [429, 'unreachable', EXIT.TRANSIENT],
        [404, 'not-found', EXIT.NOT_FOUND],
        [401, 'delegate', undefined],
      ] as const) {
        const s = await server((_req, res) => {
          res.writeHead(status)
          res.end()
        })
        try {
          const r = await probeRegistry(parseRegistryReference(`${s.host}/policies/org:stable`), {timeoutMs: 5000})
          expect(r.kind, String(status)).to.equal(kind)
          if (exit !== undefined && 'error' in r) expect(r.error.exit).to.equal(exit)
          expect(s.seen, 'never retried').to.have.length(1)
        } finally {
          await s.close()
        }
      }
    })
    it('hands a 200 without a digest to the full client', async () => {
      const s = await server((_req, res) => {
        res.writeHead(200, {'content-type': 'application/vnd.oci.image.manifest.v1+json'})
        res.end()
      })
      try {
        expect((await probeRegistry(parseRegistryReference(`${s.host}/p/o:stable`), {timeoutMs: 5000})).kind).to.equal('delegate')
      } finally {
        await s.close()
      }
    })
    it('is unreachable when the connection is refused or the answer takes too long', async () => {
      const s = await server(() => {
        // never answers
      })
      const host = s.host
      try {
        const slow = await probeRegistry(parseRegistryReference(`${host}/p/o:stable`), {timeoutMs: 200})
        expect(slow.kind).to.equal('unreachable')
        if (slow.kind === 'unreachable') expect(slow.error.code).to.equal('TIMEOUT')
      } finally {
        s.seen.forEach((r) => r.socket.destroy())
        await s.close()
      }
      const refused = await probeRegistry(parseRegistryReference(`${host}/p/o:stable`), {timeoutMs: 5000})
      expect(refused.kind).to.equal('unreachable')
      if (refused.kind === 'unreachable') expect(refused.error.exit).to.equal(EXIT.TRANSIENT)
    })
  })

  describe('probeLayout', () => {
    it('reads index.json once: found, not listed (full client), or unreachable when the directory is gone', async () => {
      const dir = path.join(tmpdir(), 'layout')
      const store = await LayoutDirStore.open(dir, {create: true})
      const p = await publish(store, ORG_BASELINE, [await privateKey('alice')], ['stable'])
      const found = probeLayout({kind: 'layout', format: 'dir', path: dir, tag: 'stable'})
      expect(found.kind === 'found' && found.desc.digest).to.equal(p.manifest.digest)
      expect(probeLayout({kind: 'layout', format: 'dir', path: dir, tag: 'nope'}).kind).to.equal('delegate')
      fs.rmSync(dir, {recursive: true, force: true})
      const gone = probeLayout({kind: 'layout', format: 'dir', path: dir, tag: 'stable'})
      expect(gone.kind).to.equal('unreachable')
    })
  })
})

/**
 * "Offline must mean offline" (user-demand.md W1 #1): signing and verifying, including bundles
 * that carry transparency-log entries and timestamps, must not open a single socket or resolve a
 * single name. Every way out of the process is replaced by a tripwire for the duration.
 */
import {expect} from 'chai'
import dns from 'node:dns'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import path from 'node:path'
import tls from 'node:tls'

import {encryptPrivateKey, generateKeyPair, loadPublicKey, parsePrivateKey, signMessageBundle, signSubjects, verifySignature} from '../../../src/sign/index.js'
import {parseTrustPolicy, verifyWithTrust} from '../../../src/trust/index.js'
import {VECTORS} from '../../helpers/cli.js'

type Patch = [object, string, unknown]

function withTripwires<T>(fn: () => Promise<T>): Promise<{result: T; attempts: string[]}> {
  const attempts: string[] = []
  const trip = (what: string) =>
    function () {
      attempts.push(what)
      throw new Error(`network access during offline verification: ${what}`)
    }
  const patches: Patch[] = [
    [net.Socket.prototype, 'connect', trip('net.Socket.connect')],
    [net, 'connect', trip('net.connect')],
    [net, 'createConnection', trip('net.createConnection')],
    [tls, 'connect', trip('tls.connect')],
    [http, 'request', trip('http.request')],
    [http, 'get', trip('http.get')],
    [https, 'request', trip('https.request')],
    [https, 'get', trip('https.get')],
    [dns, 'lookup', trip('dns.lookup')],
    [dns, 'resolve', trip('dns.resolve')],
    [dns.promises, 'lookup', trip('dns.promises.lookup')],
    [globalThis, 'fetch', trip('fetch')],
  ]
  const saved = patches.map(([obj, key]) => [obj, key, (obj as Record<string, unknown>)[key]] as Patch)
  for (const [obj, key, value] of patches) (obj as Record<string, unknown>)[key] = value
  return fn().then(
    (result) => {
      for (const [obj, key, value] of saved) (obj as Record<string, unknown>)[key] = value
      return {result, attempts}
    },
    (err) => {
      for (const [obj, key, value] of saved) (obj as Record<string, unknown>)[key] = value
      throw err
    },
  )
}

describe('sign + trust offline', () => {
  it('sign and verify (keys, bundles with tlog entries and timestamps, trust policy) without any network call', async function () {
    this.timeout(20_000)
    const dir = path.join(VECTORS, 'cosign', 'bundles', 'conformance-managed-key-happy-path')
    const {result, attempts} = await withTripwires(async () => {
      const key = await parsePrivateKey(await encryptPrivateKey(generateKeyPair(), 'pw'), 'k', {password: 'pw'})
      const data = Buffer.from('policy')
      const bundle = await signSubjects([{digest: `sha256:${(await import('node:crypto')).createHash('sha256').update(data).digest('hex')}`}], key)
      const message = await signMessageBundle(data, key)
      const own = verifySignature(Buffer.from(JSON.stringify(bundle)), {keys: [key.public], artifact: data})
      const msg = verifySignature(Buffer.from(JSON.stringify(message)), {keys: [key.public], artifact: data})
      // A real conformance bundle with a production Rekor entry and an RFC 3161 timestamp.
      const conformance = verifySignature(fs.readFileSync(path.join(dir, 'bundle.sigstore.json')), {
        keys: [loadPublicKey(path.join(dir, 'key.pub'))],
        artifact: fs.readFileSync(path.join(VECTORS, 'cosign', 'bundles', 'a.txt')),
      })
      const policy = parseTrustPolicy(
        `apiVersion: aibox.dev/v1\nkind: TrustPolicy\nkeys:\n  ci:\n    publicKey: |\n${key.public.pem.trim().split('\n').map((l) => `      ${l}`).join('\n')}\n    roles: [author]\nscopes:\n  - name: all\n    require: {signatures: {author: 1}}\n`,
        'trust.yaml',
      )
      const trusted = verifyWithTrust([{bytes: Buffer.from(JSON.stringify(bundle)), source: 'b.json'}], policy, {artifact: data, target: {display: 'policy'}})
      return [own, msg, conformance, trusted] as const
    })
    expect(attempts).to.deep.equal([])
    expect(result[0].binding.kind).to.equal('subject')
    expect(result[1].binding.kind).to.equal('message-digest')
    expect(result[2].bundle!.ignored).to.deep.equal({tlogEntries: 1, timestamps: 1})
    expect(result[3].decision.satisfied).to.equal(true)
  })

  it('the tripwires do fire (the test can fail)', async () => {
    let message = ''
    const {attempts} = await withTripwires(async () => {
      try {
        await fetch('https://example.com')
      } catch (err) {
        message = (err as Error).message
      }
      return null
    })
    expect(attempts).to.deep.equal(['fetch'])
    expect(message).to.match(/network access/)
  })
})

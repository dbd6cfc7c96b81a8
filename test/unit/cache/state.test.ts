import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {expect} from 'chai'

import {MAX_STACK_MEMOS, PolicyCache, cacheKey, emptyState, parseState, pruneStacks, stackKey} from '../../../src/cache/index.js'
import {finished, spawnTs} from '../../helpers/children.js'
import {tmpdir} from '../../helpers/tmp.js'

const CHILDREN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'children')
const D = (c: string) => `sha256:${c.repeat(64)}`

function entry(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    reference: 'r.example/p/org:stable',
    tier: 'org',
    digest: D('a'),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 10,
    contentDigest: D('b'),
    blobs: [{digest: D('b'), size: 3}],
    name: 'org-baseline',
    version: '1.4.0',
    origin: 'registry',
    verifiedAt: '2026-01-01T00:00:00.000Z',
    checkedAt: '2026-01-01T00:00:00.000Z',
    signers: ['k1'],
    ...over,
  }
}

describe('cache: state.json', () => {
  describe('parseState', () => {
    it('reads a well-formed state and drops malformed entries one by one, saying why', () => {
      const problems: string[] = []
      const s = parseState(JSON.stringify({version: 1, entries: {good: entry(), bad: entry({digest: 'sha256:nope'}), worse: 7}, stacks: {}, profiles: {}}), problems)
      expect(Object.keys(s.entries)).to.deep.equal(['good'])
      expect(problems).to.deep.equal(['entry bad: digest invalid', 'entry worse: not an object'])
    })
    it('reads a file that is not JSON, or of another version, as empty and says so', () => {
      const a: string[] = []
      expect(parseState('{"version":1,', a)).to.deep.equal(emptyState())
      expect(a[0]).to.match(/not JSON/)
      const b: string[] = []
      expect(parseState('{"version":2}', b)).to.deep.equal(emptyState())
      expect(b[0]).to.contain('not a version 1 cache state')
    })
  })

  describe('pruneStacks', () => {
    it('keeps the most recently used memos', () => {
      const s = emptyState()
      for (let i = 0; i < MAX_STACK_MEMOS + 5; i++) s.stacks[`k${i}`] = {effective: D('c'), tiers: [], usedAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString()}
      pruneStacks(s)
      expect(Object.keys(s.stacks)).to.have.length(MAX_STACK_MEMOS)
      expect(s.stacks.k0).to.equal(undefined)
      expect(s.stacks[`k${MAX_STACK_MEMOS + 4}`]).to.not.equal(undefined)
    })
    it('keys stacks by tier digests in order', () => {
      expect(stackKey([{tier: 'org', digest: D('a')}])).to.not.equal(stackKey([{tier: 'team', digest: D('a')}]))
    })
  })

  describe('cacheKey', () => {
    it('canonicalises references and makes layout paths absolute', () => {
      expect(cacheKey('oci:layouts/org:stable', '/repo')).to.equal('oci:/repo/layouts/org:stable')
      expect(cacheKey('Registry.Example.com/policies/org:stable')).to.equal('registry.example.com/policies/org:stable')
    })
  })

  describe('PolicyCache#update', () => {
    it('keeps every change of concurrent writers in several processes (no lost update), and leaves no temp file', async function () {
      this.timeout(180_000)
      const dir = path.join(tmpdir(), 'cache')
      const children = ['a', 'b', 'c', 'd'].map((tag) => spawnTs(path.join(CHILDREN, 'state-writer.ts'), [dir, tag, '10']))
      const results = await Promise.all(children.map((c) => finished(c)))
      expect(results.map((r) => r.code), results.map((r) => r.stderr).join('\n')).to.deep.equal([0, 0, 0, 0])
      const state = new PolicyCache(dir).readState()
      expect(Object.keys(state.profiles)).to.have.length(40)
      expect(fs.readdirSync(dir).sort()).to.deep.equal(['state.json'])
    })
    it('does not write when nothing changed', async () => {
      const dir = path.join(tmpdir(), 'cache')
      const cache = new PolicyCache(dir)
      await cache.update(() => ({result: 1, changed: false}))
      expect(fs.existsSync(path.join(dir, 'state.json'))).to.equal(false)
    })
  })

  describe('PolicyCache effective policies', () => {
    it('stores them read-only by digest, and refuses bytes that do not match', () => {
      const cache = new PolicyCache(path.join(tmpdir(), 'cache'))
      const bytes = Buffer.from('{"kind":"EffectivePolicy"}')
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
      const file = cache.putEffective(bytes, digest)
      expect(fs.statSync(file).mode & 0o777).to.equal(0o444)
      expect(cache.readEffective(digest)?.equals(bytes)).to.equal(true)
      expect(() => cache.putEffective(Buffer.from('x'), digest)).to.throw(/do not match/)
    })
  })
})

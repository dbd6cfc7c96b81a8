import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {eventMatcher, exportAudit, exportLine, parseSince, queryAudit, readAuditLog, unknownEventNames} from '../../../src/audit/index.js'
import {AiboxError} from '../../../src/errors.js'
import {tmpdir} from '../../helpers/tmp.js'
import {SAMPLE_EVENTS, buildLog, readLines} from '../../helpers/audit-fixtures.js'

const NOW = new Date('2025-01-01T00:30:00Z')

describe('audit/query', () => {
  describe('#parseSince', () => {
    it('reads durations back from now', () => {
      expect(parseSince('24h', NOW).toISOString()).to.equal('2024-12-31T00:30:00.000Z')
      expect(parseSince('7d', NOW).toISOString()).to.equal('2024-12-25T00:30:00.000Z')
      expect(parseSince('2w', NOW).toISOString()).to.equal('2024-12-18T00:30:00.000Z')
      expect(parseSince('1h30m', NOW).toISOString()).to.equal('2024-12-31T23:00:00.000Z')
      expect(parseSince('90s', NOW).toISOString()).to.equal('2025-01-01T00:28:30.000Z')
    })
    it('reads RFC 3339 dates and date-times', () => {
      expect(parseSince('2024-06-01', NOW).toISOString()).to.equal('2024-06-01T00:00:00.000Z')
      expect(parseSince('2024-06-01T12:00:00+02:00', NOW).toISOString()).to.equal('2024-06-01T10:00:00.000Z')
    })
    it('refuses anything else with INVALID_SINCE (exit 1) and examples', () => {
      for (const bad of ['yesterday', '7', '-7d', '7days', '2024-02-30', '2024-13-01', '2024-06-01 12:00', '']) {
        let err: unknown
        try {
          parseSince(bad, NOW)
        } catch (error) {
          err = error
        }
        expect(err, bad).to.be.instanceOf(AiboxError)
        expect((err as AiboxError).code).to.equal('INVALID_SINCE')
        expect((err as AiboxError).exit).to.equal(1)
        expect((err as AiboxError).suggestions?.join(' ')).to.contain('--since 7d')
      }
    })
  })

  describe('#eventMatcher', () => {
    it('matches exact names and .* prefixes', () => {
      const m = eventMatcher(['policy.loaded', 'audit.*'])
      expect(m('policy.loaded')).to.equal(true)
      expect(m('audit.repaired')).to.equal(true)
      expect(m('policy.signed')).to.equal(false)
      expect(m('policy.loaded.x')).to.equal(false)
    })
    it('lets policy.* match nested names such as policy.lock.refused', () => {
      expect(eventMatcher(['policy.*'])('policy.lock.refused')).to.equal(true)
      expect(eventMatcher(['policy.lock.*'])('policy.loaded')).to.equal(false)
    })
    it('matches everything without patterns or with *', () => {
      expect(eventMatcher([])('x.y')).to.equal(true)
      expect(eventMatcher(['*'])('x.y')).to.equal(true)
    })
    it('refuses malformed patterns', () => {
      expect(() => eventMatcher(['Policy.Loaded'])).to.throw(AiboxError, 'invalid --event "Policy.Loaded"')
      expect(() => eventMatcher(['policy*'])).to.throw(AiboxError, 'prefix ending in .*')
    })
    it('names exact patterns that are not known events (typos)', () => {
      expect(unknownEventNames(['policy.lodaed', 'policy.loaded', 'policy.*'])).to.deep.equal(['policy.lodaed'])
    })
  })

  describe('#queryAudit', () => {
    // 12 sample events, one minute apart from 2025-01-01T00:00Z.
    let log: string
    before(async () => {
      log = await buildLog(tmpdir(), SAMPLE_EVENTS.length)
    })

    it('returns every entry in file order without filters', async () => {
      const r = await queryAudit(log)
      expect(r.entries.map((e) => e.seq)).to.deep.equal(SAMPLE_EVENTS.map((_, i) => i + 1))
      expect(r).to.include({exists: true, skipped: 0, torn: false})
    })
    it('filters by event (repeatable, prefixes)', async () => {
      const r = await queryAudit(log, {events: ['policy.loaded', 'policy.lock.*']})
      expect(r.entries.map((e) => e.event)).to.deep.equal(['policy.loaded', 'policy.lock.refused'])
    })
    it('filters by since', async () => {
      const r = await queryAudit(log, {since: '5m', now: () => new Date('2025-01-01T00:11:00Z')})
      expect(r.entries.map((e) => e.seq)).to.deep.equal([7, 8, 9, 10, 11, 12])
      const d = await queryAudit(log, {since: '2025-01-01T00:10:00Z'})
      expect(d.entries.map((e) => e.seq)).to.deep.equal([11, 12])
    })
    it('filters by ref, including the refs of loaded tiers', async () => {
      const r = await queryAudit(log, {ref: 'aibox/policy.yaml'})
      expect(r.entries.map((e) => e.event)).to.deep.equal(['policy.loaded'])
      const o = await queryAudit(log, {ref: 'registry.example.com/policies/org:1.4.0'})
      expect(o.entries.map((e) => e.seq)).to.deep.equal([1, 2, 3])
    })
    it('keeps the newest N with limit, oldest first', async () => {
      const r = await queryAudit(log, {limit: 3})
      expect(r.entries.map((e) => e.seq)).to.deep.equal([10, 11, 12])
      const c = await queryAudit(log, {events: ['policy.*'], limit: 2, ref: 'registry.example.com/policies/org:stable'})
      expect(c.entries.map((e) => e.event)).to.deep.equal(['policy.override.reverted', 'policy.lock.refused'])
    })
    it('refuses a bad limit', async () => {
      let err: unknown
      try {
        await queryAudit(log, {limit: 0})
      } catch (error) {
        err = error
      }
      expect((err as AiboxError).code).to.equal('INVALID_LIMIT')
    })
    it('reads a missing log as empty', async () => {
      const r = await queryAudit(path.join(tmpdir(), 'none.jsonl'), {events: ['policy.*']})
      expect(r).to.include({exists: false})
      expect(r.entries).to.deep.equal([])
    })
    it('validates the filter even when the log is missing', async () => {
      let err: unknown
      try {
        await queryAudit(path.join(tmpdir(), 'none.jsonl'), {since: 'soon'})
      } catch (error) {
        err = error
      }
      expect((err as AiboxError).code).to.equal('INVALID_SINCE')
    })
  })

  describe('#readAuditLog', () => {
    it('skips malformed lines and ignores a torn tail, counting both', async () => {
      const log = await buildLog(tmpdir(), 3)
      const lines = readLines(log)
      lines[1] = 'not json'
      fs.writeFileSync(log, `${lines.join('\n')}\n{"seq":4`)
      const r = await readAuditLog(log)
      expect(r.entries.map((e) => e.seq)).to.deep.equal([1, 3])
      expect(r).to.include({skipped: 1, torn: true})
    })
  })

  describe('#exportAudit', () => {
    it('writes JSONL with a stable key order, one entry per line, atomically to a file', async () => {
      const dir = tmpdir()
      const log = await buildLog(dir, 4)
      const out = path.join(dir, 'siem', 'export.jsonl')
      fs.mkdirSync(path.dirname(out))
      const r = await exportAudit(log, {output: out, events: ['policy.loaded', 'policy.signed']})
      expect(r).to.include({output: out, entries: 2, chain: true})
      const lines = fs.readFileSync(out, 'utf8').split('\n')
      expect(lines.at(-1)).to.equal('')
      expect(lines.slice(0, -1).map((l) => JSON.parse(l).event)).to.deep.equal(['policy.signed', 'policy.loaded'])
      // The stored lines already use the canonical order, so an unfiltered export is the log's bytes.
      const all = await exportAudit(log)
      expect(all.text).to.equal(fs.readFileSync(log, 'utf8'))
      expect(fs.readdirSync(path.dirname(out))).to.deep.equal(['export.jsonl'])
    })
    it('strips prev (keeping seq as the event id) with chain false', async () => {
      const log = await buildLog(tmpdir(), 2)
      const r = await exportAudit(log, {chain: false})
      for (const l of r.text.trimEnd().split('\n')) {
        const e = JSON.parse(l)
        expect(e).to.not.have.property('prev')
        expect(e).to.have.property('seq')
      }
    })
    it('keeps a hostile "__proto__" key as data instead of dropping it', () => {
      const entry = JSON.parse('{"seq":1,"time":"t","event":"x.y","actor":"a","ref":null,"digest":null,"version":null,"prev":"p","__proto__":{"polluted":true}}')
      const line = exportLine(entry)
      expect(JSON.parse(line)).to.have.own.property('__proto__')
      expect(line).to.contain('"__proto__":{"polluted":true}')
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined)
    })
    it('orders keys of entries written by other tools the same way', () => {
      const line = exportLine({prev: 'p', zeta: {b: 1, a: 2}, alpha: 1, event: 'x.y', seq: 1, time: 't', actor: 'a', ref: null, digest: null, version: null} as never)
      expect(line).to.equal('{"seq":1,"time":"t","event":"x.y","actor":"a","ref":null,"digest":null,"version":null,"prev":"p","alpha":1,"zeta":{"a":2,"b":1}}')
    })
  })
})

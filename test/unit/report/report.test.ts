import {expect} from 'chai'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {readAuditLog} from '../../../src/audit/index.js'
import {NotFoundError} from '../../../src/errors.js'
import {buildAuditReport, escapeHtml, renderAuditReportHtml, repositoryOf, writeAuditReport} from '../../../src/report/index.js'
import {expectCode} from '../../helpers/expect-error.js'
import {ORG_3, UNKNOWN_EVENT, writeStoryLog} from '../../helpers/report-fixtures.js'
import {listFiles, tmpdir} from '../../helpers/tmp.js'

const CHAIN = {ok: true, message: 'intact'}

describe('audit report', () => {
  describe('escapeHtml', () => {
    it('escapes the five characters that matter in content and quoted attributes', () => {
      expect(escapeHtml(`<a href="x" title='y'>&amp;</a>`)).to.equal('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;')
      expect(escapeHtml(undefined)).to.equal('')
      expect(escapeHtml(42)).to.equal('42')
    })
  })

  describe('repositoryOf', () => {
    it('drops the tag and digest but keeps a registry port', () => {
      expect(repositoryOf('127.0.0.1:5000/policies/org:1.0.0')).to.equal('127.0.0.1:5000/policies/org')
      expect(repositoryOf(`127.0.0.1:5000/policies/org@sha256:${'a'.repeat(64)}`)).to.equal('127.0.0.1:5000/policies/org')
      expect(repositoryOf('127.0.0.1:5000/policies/org')).to.equal('127.0.0.1:5000/policies/org')
    })
  })

  describe('buildAuditReport', () => {
    let entries: Awaited<ReturnType<typeof readAuditLog>>['entries']
    before(async () => {
      entries = (await readAuditLog(await writeStoryLog(tmpdir('aibox-report-')))).entries
    })

    it('counts what an auditor asks about', () => {
      const m = buildAuditReport(entries, {log: 'audit.jsonl', chain: CHAIN})
      expect(m.totals).to.deep.equal({versions: 5, signatures: 3, approvals: 2, loads: 5, rollbacks: 1, emergencies: 1, overrides: 3, refusals: 1})
      expect(m).to.include({entries: 21, first: '2025-03-01T09:00:00.000Z', last: '2025-03-03T13:00:00.000Z'})
    })

    it('puts a version whose events carry no tier (an emergency change) in the tier of its repository', () => {
      const m = buildAuditReport(entries, {log: 'audit.jsonl', chain: CHAIN})
      expect(m.tiers.map((t) => t.tier)).to.deep.equal(['org', 'team'])
      const v = m.tiers[0]!.versions.find((x) => x.digest === ORG_3)!
      expect(v).to.deep.include({version: '1.1.1', flags: ['emergency'], loads: 0})
    })

    it('falls back to an "unknown" tier, listed after the known ones, when nothing tells the tier', () => {
      const lone = entries.filter((e) => e.event === 'policy.emergency')
      const m = buildAuditReport(lone, {log: 'audit.jsonl', chain: CHAIN})
      expect(m.tiers.map((t) => t.tier)).to.deep.equal(['unknown'])
    })

    it('counts event kinds it does not know and keeps them in the event list', () => {
      const m = buildAuditReport(entries, {log: 'audit.jsonl', chain: CHAIN})
      expect(m.eventCounts).to.deep.include({event: UNKNOWN_EVENT.event, count: 1})
      expect(m.events.at(-1)).to.include({event: UNKNOWN_EVENT.event, profile: 'dev-fast'})
    })

    it('treats an entry flagged emergency: true by a newer event kind as an emergency change', () => {
      const extra = {...entries[0]!, seq: 99, event: 'policy.promoted', emergency: true}
      const m = buildAuditReport([...entries, extra], {log: 'audit.jsonl', chain: CHAIN})
      expect(m.emergencies.map((e) => e.event)).to.deep.equal(['policy.emergency', 'policy.promoted'])
    })

    it('keeps only the newest maxEvents entries in the full list, and says how many it left out', () => {
      const m = buildAuditReport(entries, {log: 'audit.jsonl', chain: CHAIN, maxEvents: 5})
      expect(m.events.map((e) => e.seq)).to.deep.equal([17, 18, 19, 20, 21])
      expect(m.eventsOmitted).to.equal(16)
      expect(m.totals.loads).to.equal(5)
    })
  })

  describe('renderAuditReportHtml', () => {
    it('allows exactly its own inline style and script in the Content-Security-Policy, and nothing from the network', async () => {
      const entries = (await readAuditLog(await writeStoryLog(tmpdir('aibox-report-')))).entries
      const html = renderAuditReportHtml(buildAuditReport(entries, {log: 'a<b>.jsonl', chain: CHAIN}))
      const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`
      const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!
      const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!
      const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)![1]!.replaceAll('&#39;', "'")
      expect(csp).to.equal(`default-src 'none'; style-src ${hash(style)}; script-src ${hash(script)}; img-src data:; base-uri 'none'; form-action 'none'`)
      expect(html.match(/<script/g)).to.have.length(1)
      expect(html).to.not.match(/\b(?:src|href)="(?:https?:)?\/\//)
      expect(html).to.contain('<title>aibox audit report · a&lt;b&gt;.jsonl</title>')
    })
  })

  describe('writeAuditReport', () => {
    it('replaces an existing report atomically and leaves no temporary file', async () => {
      const dir = tmpdir('aibox-report-')
      const log = await writeStoryLog(dir)
      const out = path.join(dir, 'out', 'r.html')
      fs.mkdirSync(path.dirname(out))
      fs.writeFileSync(out, 'old report')
      const r = await writeAuditReport({log, output: out, now: () => new Date('2025-03-04T00:00:00Z')})
      expect(r).to.deep.include({output: out, entries: 21, verified: true, generatedAt: '2025-03-04T00:00:00.000Z', since: null})
      expect(fs.readFileSync(out, 'utf8')).to.match(/^<!DOCTYPE html>/)
      expect(r.bytes).to.equal(fs.statSync(out).size)
      expect(listFiles(path.dirname(out))).to.deep.equal(['r.html'])
    })

    it('applies a duration --since against the clock', async () => {
      const dir = tmpdir('aibox-report-')
      const log = await writeStoryLog(dir)
      const r = await writeAuditReport({log, output: path.join(dir, 'r.html'), since: '1d', now: () => new Date('2025-03-03T12:30:00Z')})
      // From 2025-03-02T12:30Z: the override, the tainted load, the emergency change and everything on day 3.
      expect(r.entries).to.equal(9)
    })

    it('refuses a missing log with AUDIT_LOG_NOT_FOUND and writes nothing', async () => {
      const dir = tmpdir('aibox-report-')
      await expectCode(writeAuditReport({log: path.join(dir, 'none.jsonl'), output: path.join(dir, 'r.html')}), NotFoundError, 'AUDIT_LOG_NOT_FOUND')
      expect(listFiles(dir)).to.deep.equal([])
    })
  })
})

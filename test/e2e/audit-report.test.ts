import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import type {Page} from 'playwright-core'

import {type Browser, launchChromium} from '../helpers/browser.js'
import {aibox} from '../helpers/cli.js'
import {HOSTILE_NOTE, ORG_1, UNKNOWN_EVENT, writeStoryLog} from '../helpers/report-fixtures.js'
import {readLines, writeLines} from '../helpers/audit-fixtures.js'
import {expectOutputSchema} from '../helpers/schemas.js'
import {listFiles, tmpdir} from '../helpers/tmp.js'

/** The parts of DOM rows the tests read (the test build has no DOM library types). */
interface Row {
  hidden: boolean
  cells: ArrayLike<{innerText: string}>
}

/** The visible text of each cell of each shown body row of a table. */
function rows(page: Page, selector: string): Promise<string[][]> {
  return page.$$eval(`${selector} tbody tr`, (trs) => (trs as unknown as Row[]).filter((tr) => !tr.hidden).map((tr) => Array.from(tr.cells).map((c) => c.innerText.trim())))
}

describe('aibox audit report --html', () => {
  let browser: Browser
  let dir: string
  let log: string
  let report: string
  let page: Page
  const requests: string[] = []
  const blocked: string[] = []

  before(async () => {
    dir = tmpdir('aibox-e2e-report-')
    log = await writeStoryLog(dir)
    report = path.join(dir, 'out', 'report.html')
    fs.mkdirSync(path.dirname(report))
    const r = await aibox(['audit', 'report', '--html', report, '--log', log, '--json'])
    expect(r.code, r.stderr).to.equal(0)
    expectOutputSchema('audit-report', r.json)
    expect(r.json).to.deep.include({output: report, verified: true, entries: 21, since: null})
    expect(r.json.totals).to.deep.equal({versions: 5, signatures: 3, approvals: 2, loads: 5, rollbacks: 1, emergencies: 1, overrides: 3, refusals: 1})
    // Fails the whole block, loudly, when chromium is missing or cannot start.
    browser = await launchChromium()
    await browser.context.route('**/*', (route) => {
      const url = route.request().url()
      if (url.startsWith('file:')) return route.continue()
      blocked.push(url)
      return route.abort()
    })
    page = await browser.context.newPage()
    page.on('request', (req) => requests.push(req.url()))
    await page.goto(pathToFileURL(report).href)
  })
  after(async () => {
    await browser?.close()
  })

  it('loads from a file without any network request', () => {
    expect(requests).to.deep.equal([pathToFileURL(report).href])
    expect(blocked).to.deep.equal([])
  })

  it('shows the chain as verified and the totals', async () => {
    expect(await page.title()).to.equal(`aibox audit report · ${log}`)
    expect(await page.locator('#chain').innerText()).to.equal('Hash chain verified: 21 entries, anchored at seq 21')
    const totals = await page.$$eval('#summary .card', (cards) => cards.map((c) => `${c.querySelector('.l')!.textContent}=${c.querySelector('.n')!.textContent}`))
    expect(totals).to.deep.equal(['versions=5', 'signatures=3', 'approvals=2', 'loads=5', 'rollbacks=1', 'emergency changes=1', 'overrides=3', 'refusals=1'])
  })

  it('lists the versions of each tier in order, with who pushed, signed and approved them and how often each was loaded', async () => {
    const org = await rows(page, '#tier-org')
    expect(org.map((r) => r[0])).to.deep.equal(['1.0.0 rollback', '1.1.0', '1.1.1 emergency'])
    const [v100, v110, v111] = org as [string[], string[], string[]]
    expect(v100[1]).to.equal('registry.example.com/policies/org:1.0.0')
    expect(v100[3]).to.match(/^alice@ws1 2025-03-01T09:00:00\.000Z\ntags: 1\.0\.0, stable$/)
    expect(v100[4]).to.equal('SHA256:alice-key — alice@ws1 2025-03-01T09:01:00.000Z')
    expect(v100[5]).to.contain('security: SHA256:bob-key — bob@ws2 2025-03-01T09:30:00.000Z · ticket SEC-1')
    expect(v100.slice(6)).to.deep.equal(['3', '2025-03-01T12:00:00.000Z'])
    expect(v110[5]).to.contain('approver: SHA256:dave-key — dave@ws4')
    expect(v110.slice(6)).to.deep.equal(['2', '2025-03-02T13:05:00.000Z'])
    expect(v111[3]).to.equal('not in this log')
    expect(v111[6]).to.equal('0')
    const digestTitle = await page.locator('#tier-org tbody tr').first().locator('.digest').getAttribute('title')
    expect(digestTitle).to.equal(ORG_1)
    const team = await rows(page, '#tier-team')
    expect(team.map((r) => [r[0], r[6]])).to.deep.equal([
      ['2.0.0', '2'],
      ['3.0.0 refused', '0'],
    ])
    expect(await page.locator('#versions h3').allInnerTexts()).to.deep.equal(['org tier · 3 versions', 'team tier · 2 versions'])
  })

  it('lists rollbacks, emergency changes, overrides and refusals', async () => {
    const [rollback] = await rows(page, '#rollbacks')
    expect(rollback!.slice(0, 5)).to.deep.equal(['2025-03-03T09:00:00.000Z', 'policy.rollback', 'alice@ws1', 'registry.example.com/policies/org:stable', '1.0.0'])
    expect(rollback![5]).to.contain('incident: INC-10')
    expect(rollback![5]).to.contain('from: 1.1.0')
    const emergencies = await rows(page, '#emergencies')
    expect(emergencies).to.have.length(1)
    expect(emergencies[0]![5]).to.contain('reason: block exfiltration host')
    expect((await rows(page, '#overrides')).map((r) => r[1])).to.deep.equal(['policy.override', 'policy.lock.refused', 'policy.override.reverted'])
    const [refusal] = await rows(page, '#refusals')
    expect(refusal![5]).to.contain('code: LOOSENING')
  })

  it('counts loads (by source, tainted), overrides, refusals, emergency changes and rollbacks per UTC day', async () => {
    const days = await rows(page, '#days')
    expect(days.map((d) => [d[0], d[1], d[3], d[4], d[5], d[6], d[7], d[8]])).to.deep.equal([
      ['2025-03-01', '3', 'cache 1, registry 2', '0', '0', '0', '0', '0'],
      ['2025-03-02', '2', 'cache 1, registry 1', '1', '1', '0', '1', '0'],
      ['2025-03-03', '0', '-', '0', '2', '1', '0', '1'],
    ])
    const widths = await page.$$eval('#days svg rect', (rects) => rects.map((r) => r.getAttribute('width')))
    expect(widths).to.deep.equal(['120', '80', '0'])
  })

  it('shows a note holding HTML as text: nothing in it runs or becomes an element', async () => {
    const approvals = await page.locator('#tier-org tbody tr').first().locator('td').nth(5).innerText()
    expect(approvals).to.contain(`“${HOSTILE_NOTE}”`)
    expect(await page.evaluate(() => (globalThis as unknown as {__pwned?: number}).__pwned)).to.equal(undefined)
    expect(await page.title()).to.not.equal('pwned')
    expect(await page.locator('script').count()).to.equal(1)
    expect(await page.locator('img').count()).to.equal(0)
    const allEvents = await page.locator('#events-table tbody').innerText()
    expect(allEvents).to.contain(`note: ${HOSTILE_NOTE}`)
  })

  it('lists an event kind it does not know like any other', async () => {
    const counts = await rows(page, '#event-counts')
    expect(counts).to.deep.include([UNKNOWN_EVENT.event, '1'])
    const [entry] = (await rows(page, '#events-table')).filter((r) => r[2] === UNKNOWN_EVENT.event)
    expect(entry!.slice(0, 4)).to.deep.equal(['21', '2025-03-03T13:00:00.000Z', UNKNOWN_EVENT.event, 'erin@ws6'])
    expect(entry![7]).to.contain('profile: dev-fast')
  })

  it('filters the table of all events with its inline script', async () => {
    const table = '#events-table'
    expect(await rows(page, table)).to.have.length(21)
    await page.fill('#filter-text', 'INC-9')
    expect(await page.locator('#events-shown').innerText()).to.equal('1')
    expect((await rows(page, table)).map((r) => r[2])).to.deep.equal(['policy.emergency'])
    await page.fill('#filter-text', '')
    await page.selectOption('#filter-event', 'policy.loaded')
    expect(await page.locator('#events-shown').innerText()).to.equal('5')
    await page.fill('#filter-text', 'host2')
    expect((await rows(page, table)).map((r) => r[3])).to.deep.equal(['sandbox@host2', 'sandbox@host2'])
    await page.selectOption('#filter-event', '')
    await page.fill('#filter-text', '')
    expect(await page.locator('#events-shown').innerText()).to.equal('21')
  })

  describe('when the log does not verify', () => {
    it('still writes the report, warns, and shows the break at the top in the browser', async () => {
      const copy = path.join(tmpdir('aibox-e2e-report-'), 'audit.jsonl')
      fs.copyFileSync(log, copy)
      fs.copyFileSync(`${log}.head`, `${copy}.head`)
      const lines = readLines(copy)
      lines[2] = lines[2]!.replace('SEC-1', 'SEC-2')
      writeLines(copy, lines)
      const out = path.join(path.dirname(copy), 'broken.html')
      const r = await aibox(['audit', 'report', '--html', out, '--log', copy])
      expect(r.code, r.stderr).to.equal(0)
      expect(r.stderr).to.contain('warning: the audit log does not verify (at line 3 (seq 3): edited')
      const p = await browser.context.newPage()
      await p.goto(pathToFileURL(out).href)
      const chain = p.locator('#chain')
      expect(await chain.getAttribute('class')).to.equal('banner bad')
      expect(await chain.innerText()).to.match(/^HASH CHAIN BROKEN: at line 3 \(seq 3\): edited: /)
      await p.close()
    })
  })

  describe('with --since', () => {
    it('keeps the entries from that time on', async () => {
      const out = path.join(tmpdir('aibox-e2e-report-'), 'since.html')
      const r = await aibox(['audit', 'report', '--html', out, '--log', log, '--since', '2025-03-03', '--json'])
      expect(r.code, r.stderr).to.equal(0)
      expect(r.json).to.deep.include({entries: 6, since: '2025-03-03', verified: true})
      expect(fs.readFileSync(out, 'utf8')).to.contain('· since 2025-03-03 ·')
    })
  })

  describe('with bad input', () => {
    it('exits 3 without a log, and writes nothing', async () => {
      const d = tmpdir('aibox-e2e-report-')
      const r = await aibox(['audit', 'report', '--html', path.join(d, 'r.html'), '--log', path.join(d, 'missing.jsonl')])
      expect(r.code).to.equal(3)
      expect(r.stderr).to.contain(`no audit log at ${path.join(d, 'missing.jsonl')}: nothing to report`)
      expect(listFiles(d)).to.deep.equal([])
    })

    it('exits 1 for a bad --since, and writes nothing', async () => {
      const d = tmpdir('aibox-e2e-report-')
      const r = await aibox(['audit', 'report', '--html', path.join(d, 'r.html'), '--log', log, '--since', 'last tuesday'])
      expect(r.code).to.equal(1)
      expect(r.stderr).to.contain('invalid --since "last tuesday"')
      expect(listFiles(d)).to.deep.equal([])
    })

    it('exits 1 without --html', async () => {
      const r = await aibox(['audit', 'report', '--log', log])
      expect(r.code).to.equal(1)
      expect(r.stderr).to.match(/Missing required flag[\s\S]*html/)
    })
  })
})

import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {headPathFor} from '../../src/audit/index.js'
import {ROOT, aibox} from '../helpers/cli.js'
import {tmpdir} from '../helpers/tmp.js'
import {expectOutputSchema} from '../helpers/schemas.js'
import {SAMPLE_EVENTS, buildLog, readLines, writeLines} from '../helpers/audit-fixtures.js'


/** oclif wraps long error lines at the terminal width: compare with whitespace collapsed. */
const flat = (s: string) => s.replace(/\s+/g, ' ')

const expectSchema = expectOutputSchema

describe('aibox audit', () => {
  describe('audit log', () => {
    it('lists every entry for people, one per line with its seq and event', async () => {
      const log = await buildLog(tmpdir(), 4)
      const r = await aibox(['audit', 'log', '--log', log])
      expect(r.code, r.stderr).to.equal(0)
      const lines = r.stdout.trimEnd().split('\n')
      expect(lines[0]).to.match(/^SEQ\s+TIME\s+EVENT\s+ACTOR/)
      expect(lines).to.have.length(5)
      expect(lines[4]).to.match(/^4\s+2025-01-01T00:03:00.000Z\s+policy.loaded\s+alice@ws1/)
      expect(lines[4]).to.contain('source=registry')
    })

    it('prints the matching entries as a JSON array with --json (schema audit-log)', async () => {
      const log = await buildLog(tmpdir(), SAMPLE_EVENTS.length)
      const r = await aibox(['audit', 'log', '--log', log, '--event', 'policy.lock.*', '--event', 'policy.loaded', '--json'])
      expect(r.code, r.stderr).to.equal(0)
      expectSchema('audit-log', r.json)
      expect(r.json.map((e: {event: string}) => e.event)).to.deep.equal(['policy.loaded', 'policy.lock.refused'])
      expect(r.json[0]).to.deep.equal(JSON.parse(readLines(log)[3]!))
    })

    it('filters by --since, --ref and --limit', async () => {
      const log = await buildLog(tmpdir(), SAMPLE_EVENTS.length)
      const since = await aibox(['audit', 'log', '--log', log, '--since', '2025-01-01T00:09:00Z', '--json'])
      expect(since.json.map((e: {seq: number}) => e.seq)).to.deep.equal([10, 11, 12])
      const ref = await aibox(['audit', 'log', '--log', log, '--ref', '/media/usb/policies.tar', '--json'])
      expect(ref.json.map((e: {event: string}) => e.event)).to.deep.equal(['policy.exported', 'policy.imported'])
      const limit = await aibox(['audit', 'log', '--log', log, '--limit', '2', '--json'])
      expect(limit.json.map((e: {seq: number}) => e.seq)).to.deep.equal([11, 12])
      const old = await aibox(['audit', 'log', '--log', log, '--since', '1h', '--json'])
      expect(old.json).to.deep.equal([])
    })

    it('takes the log from AIBOX_AUDIT_LOG, then XDG_STATE_HOME', async () => {
      const dir = tmpdir()
      const log = await buildLog(dir, 2)
      const env = await aibox(['audit', 'log', '--json'], {env: {AIBOX_AUDIT_LOG: log}})
      expect(env.json).to.have.length(2)
      const state = tmpdir()
      fs.mkdirSync(path.join(state, 'aibox'))
      await buildLog(path.join(state, 'aibox'), 3)
      const xdg = await aibox(['audit', 'log', '--json'], {env: {AIBOX_AUDIT_LOG: undefined, XDG_STATE_HOME: state}})
      expect(xdg.json).to.have.length(3)
    })

    describe('when there is no log yet', () => {
      it('exits 0 with no entries and says so on stderr', async () => {
        const log = path.join(tmpdir(), 'none.jsonl')
        const r = await aibox(['audit', 'log', '--log', log])
        expect(r.code).to.equal(0)
        expect(r.stdout).to.equal('')
        expect(flat(r.stderr)).to.contain(`no audit log at ${log}`)
        const j = await aibox(['audit', 'log', '--log', log, '--json'])
        expect(j.code).to.equal(0)
        expect(j.json).to.deep.equal([])
      })
    })

    describe('when the log does not verify', () => {
      it('still lists it but warns with the first broken line', async () => {
        const log = await buildLog(tmpdir(), 4)
        const lines = readLines(log)
        lines.splice(1, 1)
        writeLines(log, lines)
        const r = await aibox(['audit', 'log', '--log', log])
        expect(r.code).to.equal(0)
        expect(flat(r.stderr)).to.contain('warning: the audit log does not verify at line 2: deleted')
        expect(r.stdout.trimEnd().split('\n')).to.have.length(4)
      })
    })

    describe('when the input is bad', () => {
      it('refuses an unreadable --since with exit 1 and examples', async () => {
        const r = await aibox(['audit', 'log', '--log', path.join(tmpdir(), 'x'), '--since', 'last week'])
        expect(r.code).to.equal(1)
        expect(flat(r.stderr)).to.contain('invalid --since "last week"')
        expect(flat(r.stderr)).to.contain('INVALID_SINCE')
      })
      it('refuses a malformed --event with exit 1', async () => {
        const r = await aibox(['audit', 'log', '--event', 'Policy Loaded', '--log', path.join(tmpdir(), 'x')])
        expect(r.code).to.equal(1)
        expect(flat(r.stderr)).to.contain('invalid --event "Policy Loaded"')
      })
      it('notes an --event that aibox never writes (a likely typo)', async () => {
        const log = await buildLog(tmpdir(), 1)
        const r = await aibox(['audit', 'log', '--log', log, '--event', 'policy.lodaed'])
        expect(r.code).to.equal(0)
        expect(flat(r.stderr)).to.contain('"policy.lodaed" is not an event aibox writes')
      })
      it('refuses --limit 0 with exit 1', async () => {
        const r = await aibox(['audit', 'log', '--limit', '0', '--log', path.join(tmpdir(), 'x')])
        expect(r.code).to.equal(1)
        expect(r.stderr).to.match(/limit/i)
      })
      it('names the path when the log is a directory', async () => {
        const dir = tmpdir()
        const r = await aibox(['audit', 'log', '--log', dir])
        expect(r.code).to.equal(1)
        expect(flat(r.stderr)).to.contain(dir)
        expect(flat(r.stderr)).to.contain('IS_A_DIRECTORY')
      })
    })
  })

  describe('audit verify', () => {
    it('exits 0 for an intact log and reports it (schema audit-verify)', async () => {
      const log = await buildLog(tmpdir(), 5)
      const r = await aibox(['audit', 'verify', '--log', log])
      expect(r.code, r.stderr).to.equal(0)
      expect(r.stdout).to.contain('5 entries, chain intact, anchored at seq 5')
      const j = await aibox(['audit', 'verify', '--log', log, '--json'])
      expect(j.code).to.equal(0)
      expectSchema('audit-verify', j.json)
      expect(j.json).to.include({ok: true, entries: 5, anchoredSeq: 5})
    })

    it('exits 2 naming the first edited line, its seq and the reason', async () => {
      const log = await buildLog(tmpdir(), 5)
      const lines = readLines(log)
      lines[2] = lines[2]!.replace('"actor":"alice@ws1"', '"actor":"bob@ws1"')
      writeLines(log, lines)
      const r = await aibox(['audit', 'verify', '--log', log])
      expect(r.code).to.equal(2)
      expect(flat(r.stderr)).to.contain(`audit log ${log} is broken at line 3 (seq 3): edited`)
      expect(flat(r.stderr)).to.contain('AUDIT_LOG_BROKEN')
      const j = await aibox(['audit', 'verify', '--log', log, '--json'])
      expect(j.code).to.equal(2)
      expectSchema('audit-verify', j.json)
      expect(j.json.firstBroken).to.include({line: 3, seq: 3, reason: 'edited'})
    })

    it('exits 2 for deleted, reordered and tail-truncated logs', async () => {
      const cases: Array<[string, (l: string[]) => string[], {line: number; reason: string}]> = [
        ['deleted', (l) => [...l.slice(0, 1), ...l.slice(2)], {line: 2, reason: 'deleted'}],
        ['reordered', (l) => [l[0]!, l[2]!, l[1]!, ...l.slice(3)], {line: 2, reason: 'reordered'}],
        ['truncated', (l) => l.slice(0, 3), {line: 4, reason: 'truncated'}],
      ]
      for (const [name, edit, want] of cases) {
        const log = await buildLog(tmpdir(), 5)
        writeLines(log, edit(readLines(log)))
        const r = await aibox(['audit', 'verify', '--log', log, '--json'])
        expect(r.code, name).to.equal(2)
        expect(r.json.firstBroken, name).to.include(want)
        const h = await aibox(['audit', 'verify', '--log', log])
        expect(flat(h.stderr), name).to.contain(`at line ${want.line}`)
        expect(flat(h.stderr), name).to.contain(want.reason)
      }
    })

    it('reports a torn last line with the repair that the next append makes', async () => {
      const log = await buildLog(tmpdir(), 2)
      fs.appendFileSync(log, '{"seq":3,"ti')
      const r = await aibox(['audit', 'verify', '--log', log])
      expect(r.code).to.equal(2)
      expect(flat(r.stderr)).to.contain('torn')
      expect(flat(r.stderr)).to.contain(`${log}.quarantine`)
    })

    it('checks the chain only with --no-anchor', async () => {
      const log = await buildLog(tmpdir(), 4)
      writeLines(log, readLines(log).slice(0, 2))
      expect((await aibox(['audit', 'verify', '--log', log])).code).to.equal(2)
      const r = await aibox(['audit', 'verify', '--log', log, '--no-anchor', '--json'])
      expect(r.code).to.equal(0)
      expect(r.json).to.include({ok: true, head: null, entries: 2})
    })

    describe('when there is no log', () => {
      it('exits 3 with "no audit log" (distinct from a broken log)', async () => {
        const log = path.join(tmpdir(), 'none.jsonl')
        const r = await aibox(['audit', 'verify', '--log', log])
        expect(r.code).to.equal(3)
        expect(flat(r.stderr)).to.contain(`no audit log at ${log}`)
        const j = await aibox(['audit', 'verify', '--log', log, '--json'])
        expect(j.code).to.equal(3)
        expect(j.json.error.code).to.equal('AUDIT_LOG_NOT_FOUND')
      })
      it('exits 2 when the anchor says the log had entries (it was deleted)', async () => {
        const log = await buildLog(tmpdir(), 3)
        fs.rmSync(log)
        expect(fs.existsSync(headPathFor(log))).to.equal(true)
        const r = await aibox(['audit', 'verify', '--log', log])
        expect(r.code).to.equal(2)
        expect(flat(r.stderr)).to.contain('truncated')
      })
    })
  })

  describe('audit export', () => {
    it('writes JSONL to stdout, one entry per line, as stored', async () => {
      const log = await buildLog(tmpdir(), 3)
      const r = await aibox(['audit', 'export', '--log', log])
      expect(r.code, r.stderr).to.equal(0)
      expect(r.stdout).to.equal(fs.readFileSync(log, 'utf8'))
    })

    it('writes a filtered export to a file with -o and reports it with --json (schema audit-export)', async () => {
      const dir = tmpdir()
      const log = await buildLog(dir, SAMPLE_EVENTS.length)
      const out = path.join(dir, 'siem.jsonl')
      const r = await aibox(['audit', 'export', '--log', log, '--event', 'policy.override.*', '-o', out, '--no-chain', '--json'])
      expect(r.code, r.stderr).to.equal(0)
      expectSchema('audit-export', r.json)
      expect(r.json).to.include({output: out, entries: 1, chain: false, verified: true})
      const lines = fs.readFileSync(out, 'utf8').trimEnd().split('\n')
      expect(lines.map((l) => JSON.parse(l).event)).to.deep.equal(['policy.override.reverted'])
      expect(JSON.parse(lines[0]!)).to.not.have.property('prev')
    })

    it('exports a broken log with a warning and verified false', async () => {
      const dir = tmpdir()
      const log = await buildLog(dir, 3)
      writeLines(log, readLines(log).slice(1))
      const r = await aibox(['audit', 'export', '--log', log, '-o', path.join(dir, 'x.jsonl'), '--json'])
      expect(r.code).to.equal(0)
      expect(r.json).to.include({verified: false, entries: 2})
      const h = await aibox(['audit', 'export', '--log', log, '-o', path.join(dir, 'y.jsonl')])
      expect(flat(h.stderr)).to.contain('does not verify (deleted at line 1)')
    })

    it('writes an empty export for a missing log', async () => {
      const dir = tmpdir()
      const out = path.join(dir, 'empty.jsonl')
      const r = await aibox(['audit', 'export', '--log', path.join(dir, 'none.jsonl'), '-o', out, '--json'])
      expect(r.code).to.equal(0)
      expect(r.json).to.include({exists: false, entries: 0, verified: false})
      expect(fs.readFileSync(out, 'utf8')).to.equal('')
    })

    describe('when the input is bad', () => {
      it('refuses --json without -o (the JSONL would mix with the report)', async () => {
        const log = await buildLog(tmpdir(), 1)
        const r = await aibox(['audit', 'export', '--log', log, '--json'])
        expect(r.code).to.equal(1)
        expect(r.json.error.code).to.equal('EXPORT_NEEDS_OUTPUT')
      })
      it('fails with exit 3 and no partial file when the output directory does not exist', async () => {
        const dir = tmpdir()
        const log = await buildLog(dir, 2)
        const r = await aibox(['audit', 'export', '--log', log, '-o', path.join(dir, 'missing', 'out.jsonl')])
        expect(r.code).to.equal(3)
        expect(flat(r.stderr)).to.contain(path.join(dir, 'missing', 'out.jsonl'))
        expect(fs.existsSync(path.join(dir, 'missing'))).to.equal(false)
      })
    })
  })
})

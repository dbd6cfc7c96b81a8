import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {GENESIS_PREV, appendAudit, headPathFor, lineHash, serializeEntry, verifyChain} from '../../../src/audit/index.js'
import {tmpdir} from '../../helpers/tmp.js'
import {D1, buildLog, readLines, writeLines} from '../../helpers/audit-fixtures.js'

/** A forged entry with the given seq and prev, as an attacker who knows the format would write it. */
function forged(seq: number, prev: string): string {
  return serializeEntry({
    seq,
    time: '2025-01-01T12:00:00.000Z',
    event: 'policy.approved',
    actor: 'mallory@evil',
    ref: 'registry.example.com/policies/org:1.4.0',
    digest: D1,
    version: '1.4.0',
    prev,
    keyId: 'SHA256:mallory',
    role: 'approver',
  })
}

async function broken(log: string) {
  const r = await verifyChain(log)
  expect(r.ok, JSON.stringify(r)).to.equal(false)
  return r.firstBroken!
}

describe('audit/verify', () => {
  describe('#verifyChain', () => {
    describe('when the log is intact', () => {
      it('reports ok with the entry count and the anchored seq', async () => {
        const log = await buildLog(tmpdir(), 6)
        const r = await verifyChain(log)
        expect(r).to.include({ok: true, exists: true, entries: 6, verified: 6, lastSeq: 6, anchoredSeq: 6, unanchored: 0})
        expect(r.firstBroken).to.equal(undefined)
      })
      it('starts the chain at the documented genesis value', async () => {
        const log = await buildLog(tmpdir(), 2)
        const [l1, l2] = readLines(log)
        expect(JSON.parse(l1!).prev).to.equal(GENESIS_PREV)
        expect(GENESIS_PREV).to.equal(`sha256:${'0'.repeat(64)}`)
        expect(JSON.parse(l2!).prev).to.equal(lineHash(l1!))
      })
    })

    describe('when there is no log', () => {
      it('reports ok with exists false when there is no anchor either', async () => {
        const r = await verifyChain(path.join(tmpdir(), 'none.jsonl'))
        expect(r).to.include({ok: true, exists: false, entries: 0})
      })
      it('reports truncated when the anchor still records entries (the log was deleted)', async () => {
        const log = await buildLog(tmpdir(), 3)
        fs.rmSync(log)
        const b = await broken(log)
        expect(b).to.include({reason: 'truncated', line: 1, seq: 1})
        expect(b.message).to.contain('records 3 entries')
      })
    })

    describe('when a line was edited', () => {
      it('reports an edited field at that line', async () => {
        const log = await buildLog(tmpdir(), 6)
        const lines = readLines(log)
        lines[2] = lines[2]!.replace('"version":"1.4.0"', '"version":"9.9.9"')
        writeLines(log, lines)
        const b = await broken(log)
        expect(b).to.include({reason: 'edited', line: 3, seq: 3})
        expect(b.message).to.contain('line 3 (seq 3)')
      })
      it('reports edited whitespace (the hash covers the exact bytes)', async () => {
        const log = await buildLog(tmpdir(), 6)
        const lines = readLines(log)
        lines[1] = lines[1]!.replace(',"event"', ', "event"')
        expect(JSON.parse(lines[1]!)).to.deep.equal(JSON.parse(readLines(log)[1]!))
        writeLines(log, lines)
        expect(await broken(log)).to.include({reason: 'edited', line: 2, seq: 2})
      })
      it('reports an edited last line through the anchor', async () => {
        const log = await buildLog(tmpdir(), 6)
        const lines = readLines(log)
        lines[5] = lines[5]!.replace('"actor":"alice@ws1"', '"actor":"bob@ws1"')
        writeLines(log, lines)
        const b = await broken(log)
        expect(b).to.include({reason: 'edited', line: 6, seq: 6})
        expect(b.message).to.contain('anchor')
      })
      it('reports an edited first line', async () => {
        const log = await buildLog(tmpdir(), 4)
        const lines = readLines(log)
        lines[0] = lines[0]!.replace('alice', 'carol')
        writeLines(log, lines)
        expect(await broken(log)).to.include({reason: 'edited', line: 1, seq: 1})
      })
    })

    describe('when lines were deleted', () => {
      it('reports a deleted middle line with the missing seq', async () => {
        const log = await buildLog(tmpdir(), 6)
        const lines = readLines(log)
        lines.splice(2, 1)
        writeLines(log, lines)
        const b = await broken(log)
        expect(b).to.include({reason: 'deleted', line: 3, seq: 4})
        expect(b.message).to.contain('seq 3 missing')
      })
      it('reports a deleted first line', async () => {
        const log = await buildLog(tmpdir(), 4)
        writeLines(log, readLines(log).slice(1))
        expect(await broken(log)).to.include({reason: 'deleted', line: 1, seq: 2})
      })
      it('reports the last line deleted as a truncated tail', async () => {
        const log = await buildLog(tmpdir(), 6)
        writeLines(log, readLines(log).slice(0, 5))
        const b = await broken(log)
        expect(b).to.include({reason: 'truncated', line: 6, seq: 6})
        expect(b.message).to.contain('1 line(s) deleted from the end')
      })
      it('reports several deleted last lines', async () => {
        const log = await buildLog(tmpdir(), 6)
        writeLines(log, readLines(log).slice(0, 3))
        const b = await broken(log)
        expect(b).to.include({reason: 'truncated', line: 4, seq: 4})
        expect(b.message).to.contain('3 line(s)')
      })
      it('reports a last line cut short (its anchored bytes partly gone) as truncated, not as a benign torn append', async () => {
        const log = await buildLog(tmpdir(), 3)
        const size = fs.statSync(log).size
        fs.truncateSync(log, size - 20)
        const b = await broken(log)
        expect(b.reason).to.equal('truncated')
        expect(b.message).to.contain('cut short')
      })
      it('cannot see deleted tail lines without the anchor (head: false checks the chain only)', async () => {
        const log = await buildLog(tmpdir(), 6)
        writeLines(log, readLines(log).slice(0, 4))
        const r = await verifyChain(log, {head: false})
        expect(r).to.include({ok: true, head: null, entries: 4})
      })
    })

    describe('when lines were reordered', () => {
      it('reports the first out-of-order line', async () => {
        const log = await buildLog(tmpdir(), 6)
        const lines = readLines(log)
        ;[lines[2], lines[3]] = [lines[3]!, lines[2]!]
        writeLines(log, lines)
        const b = await broken(log)
        expect(b).to.include({reason: 'reordered', line: 3, seq: 4})
        expect(b.message).to.contain('seq 3 is at line 4')
      })
    })

    describe('when a line was duplicated', () => {
      it('reports the copy', async () => {
        const log = await buildLog(tmpdir(), 4)
        const lines = readLines(log)
        lines.splice(2, 0, lines[1]!)
        writeLines(log, lines)
        const b = await broken(log)
        expect(b).to.include({reason: 'duplicated', line: 3, seq: 2})
        expect(b.message).to.contain('copy of line 2')
      })
    })

    describe('when a forged line was inserted', () => {
      it('reports a correctly chained insertion in the middle as a fork', async () => {
        const log = await buildLog(tmpdir(), 6)
        const lines = readLines(log)
        lines.splice(3, 0, forged(4, lineHash(lines[2]!)))
        writeLines(log, lines)
        const b = await broken(log)
        expect(b).to.include({reason: 'inserted', line: 4, seq: 4})
        expect(b.message).to.contain('lines 4 and 5')
      })
      it('reports a line with a reused seq', async () => {
        const log = await buildLog(tmpdir(), 4)
        const lines = readLines(log)
        lines.push(forged(2, lineHash(lines[3]!).replace(/.$/, '0')))
        writeLines(log, lines)
        expect(await broken(log)).to.include({reason: 'inserted', line: 5, seq: 2})
      })
      it('reports a correctly chained line appended after the anchored end', async () => {
        const log = await buildLog(tmpdir(), 4)
        const lines = readLines(log)
        lines.push(forged(5, lineHash(lines[3]!)))
        writeLines(log, lines)
        const b = await broken(log)
        expect(b).to.include({reason: 'inserted', line: 5, seq: 5})
        expect(b.message).to.contain('after the anchored end')
      })
    })

    describe('when the whole file was replaced', () => {
      it('reports replaced for a self-consistent chain of the same length', async () => {
        const dir = tmpdir()
        const log = await buildLog(dir, 5)
        const other = await buildLog(dir, 5, 'other.jsonl', 'mallory@evil')
        fs.copyFileSync(other, log)
        expect((await verifyChain(log, {head: false})).ok).to.equal(true)
        const b = await broken(log)
        expect(b).to.include({reason: 'replaced', line: 1})
      })
      it('reports replaced for a longer forged chain', async () => {
        const dir = tmpdir()
        const log = await buildLog(dir, 3)
        fs.copyFileSync(await buildLog(dir, 8, 'other.jsonl', 'mallory@evil'), log)
        expect((await broken(log)).reason).to.equal('replaced')
      })
    })

    describe('when a line is not JSON', () => {
      it('reports malformed at that line', async () => {
        const log = await buildLog(tmpdir(), 5)
        const lines = readLines(log)
        lines[3] = '{"seq":4,"time":'
        writeLines(log, lines)
        const b = await broken(log)
        expect(b).to.include({reason: 'malformed', line: 4})
        expect(b.message).to.contain('not valid JSON')
      })
      it('reports a JSON line that is not an entry', async () => {
        const log = await buildLog(tmpdir(), 3)
        const lines = readLines(log)
        const e = JSON.parse(lines[1]!)
        e.seq = 'two'
        lines[1] = JSON.stringify(e)
        writeLines(log, lines)
        const b = await broken(log)
        expect(b).to.include({reason: 'malformed', line: 2, seq: null})
        expect(b.message).to.contain('"seq"')
      })
    })

    describe('when the last line is incomplete (an interrupted append)', () => {
      it('reports torn at the line after the last complete one', async () => {
        const log = await buildLog(tmpdir(), 3)
        fs.appendFileSync(log, '{"seq":4,"time":"2025-01-')
        const b = await broken(log)
        expect(b).to.include({reason: 'torn', line: 4})
        expect(b.message).to.contain('quarantine')
      })
    })

    describe('when an append was interrupted between its steps', () => {
      it('accepts the written lines an append had announced in its anchor (unanchored, ok)', async () => {
        const dir = tmpdir()
        const log = await buildLog(dir, 3)
        const head = JSON.parse(fs.readFileSync(headPathFor(log), 'utf8'))
        await appendAudit('policy.signed', {ref: 'r', digest: D1, version: '1', keyId: 'k'}, {log})
        const lines = readLines(log)
        // The state a kill -9 leaves after the write and before the anchor commit.
        head.pending = [{seq: 4, hash: lineHash(lines[3]!), size: fs.statSync(log).size}]
        fs.writeFileSync(headPathFor(log), JSON.stringify(head))
        const r = await verifyChain(log)
        expect(r).to.include({ok: true, entries: 4, anchoredSeq: 3, unanchored: 1})
      })
      it('accepts an announced append that never reached the log', async () => {
        const log = await buildLog(tmpdir(), 3)
        const head = JSON.parse(fs.readFileSync(headPathFor(log), 'utf8'))
        head.pending = [{seq: 4, hash: D1, size: head.size + 300}]
        fs.writeFileSync(headPathFor(log), JSON.stringify(head))
        expect(await verifyChain(log)).to.include({ok: true, unanchored: 0})
      })
    })

    describe('when the anchor is missing or damaged', () => {
      it('reports head-missing for a log with entries', async () => {
        const log = await buildLog(tmpdir(), 3)
        fs.rmSync(headPathFor(log))
        const b = await broken(log)
        expect(b).to.include({reason: 'head-missing', line: null, seq: null})
        expect(b.message).to.contain(headPathFor(log))
      })
      it('reports head-malformed', async () => {
        const log = await buildLog(tmpdir(), 3)
        fs.writeFileSync(headPathFor(log), '{"v":1,')
        expect((await broken(log)).reason).to.equal('head-malformed')
      })
      it('uses another anchor file when asked', async () => {
        const dir = tmpdir()
        const log = await buildLog(dir, 3)
        fs.renameSync(headPathFor(log), path.join(dir, 'anchor.json'))
        expect((await verifyChain(log, {head: path.join(dir, 'anchor.json')})).ok).to.equal(true)
      })
    })
  })
})

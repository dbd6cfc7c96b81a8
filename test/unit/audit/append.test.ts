import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {
  GENESIS_PREV,
  appendAudit,
  appendAuditEvents,
  headPathFor,
  lineHash,
  quarantinePathFor,
  validateAuditEvent,
  verifyChain,
} from '../../../src/audit/index.js'
import {AiboxError, ValidationError} from '../../../src/errors.js'
import {finished, runTs, sleep, spawnTs, waitForOutput} from '../../helpers/children.js'
import {tmpdir} from '../../helpers/tmp.js'
import {D1, D2, SAMPLE_EVENTS, buildLog, readLines, steppingClock, writeLines} from '../../helpers/audit-fixtures.js'
import {rejection} from '../../helpers/expect-error.js'

const CHILDREN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'children')

const signed = {ref: 'registry.example.com/policies/org:1.4.0', digest: D1, version: '1.4.0', keyId: 'SHA256:k'}

describe('audit/append', () => {
  describe('#appendAudit', () => {
    describe('when the log does not exist yet', () => {
      it('creates it (and its directory) with seq 1, the genesis prev, and an anchor', async () => {
        const dir = tmpdir()
        const log = path.join(dir, 'state', 'aibox', 'audit.jsonl')
        const r = await appendAudit('policy.signed', signed, {log, now: () => new Date('2025-03-01T10:00:00Z'), actor: 'alice@ws1'})
        expect(r.anchored).to.equal(true)
        expect(r.warnings).to.deep.equal([])
        expect(r.entry).to.deep.equal({
          seq: 1,
          time: '2025-03-01T10:00:00.000Z',
          event: 'policy.signed',
          actor: 'alice@ws1',
          ref: signed.ref,
          digest: D1,
          version: '1.4.0',
          prev: GENESIS_PREV,
          keyId: 'SHA256:k',
        })
        const text = fs.readFileSync(log, 'utf8')
        expect(text).to.equal(
          `{"seq":1,"time":"2025-03-01T10:00:00.000Z","event":"policy.signed","actor":"alice@ws1","ref":"${signed.ref}","digest":"${D1}","version":"1.4.0","prev":"${GENESIS_PREV}","keyId":"SHA256:k"}\n`,
        )
        expect(fs.statSync(log).mode & 0o777).to.equal(0o600)
        const head = JSON.parse(fs.readFileSync(headPathFor(log), 'utf8'))
        expect(head).to.include({v: 1, seq: 1, size: Buffer.byteLength(text), hash: lineHash(text.trimEnd()), first: lineHash(text.trimEnd())})
        expect(head.pending).to.deep.equal([])
        expect(fs.readdirSync(path.dirname(log)).sort()).to.deep.equal(['audit.jsonl', 'audit.jsonl.head'])
      })
    })

    describe('when the log has entries', () => {
      it('continues seq and chains prev to the exact bytes of the last line', async () => {
        const log = await buildLog(tmpdir(), 3)
        const r = await appendAudit('policy.signed', signed, {log})
        const lines = readLines(log)
        expect(r.entry.seq).to.equal(4)
        expect(r.entry.prev).to.equal(lineHash(lines[2]!))
        expect((await verifyChain(log)).ok).to.equal(true)
      })
      it('appends several events in one write under one lock', async () => {
        const log = await buildLog(tmpdir(), 1)
        const r = await appendAuditEvents(SAMPLE_EVENTS.slice(0, 3), {log})
        expect(r.entries.map((e) => e.seq)).to.deep.equal([2, 3, 4])
        expect((await verifyChain(log)).entries).to.equal(4)
      })
    })

    describe('the actor', () => {
      it('defaults to AIBOX_ACTOR, else user@host', async () => {
        const log = path.join(tmpdir(), 'a.jsonl')
        const a = await appendAudit('policy.signed', signed, {log, env: {AIBOX_ACTOR: 'ci-bot'}})
        expect(a.entry.actor).to.equal('ci-bot')
        const b = await appendAudit('policy.signed', signed, {log, env: {HOME: os.homedir()}})
        expect(b.entry.actor).to.equal(`${os.userInfo().username}@${os.hostname()}`)
      })
    })

    describe('the log location', () => {
      it('defaults to AIBOX_AUDIT_LOG from the environment', async () => {
        const log = path.join(tmpdir(), 'env.jsonl')
        const r = await appendAudit('policy.signed', signed, {env: {AIBOX_AUDIT_LOG: log, AIBOX_ACTOR: 'x'}})
        expect(r.log).to.equal(log)
        expect(fs.existsSync(log)).to.equal(true)
      })
    })

    describe('when the fields are wrong (JavaScript callers, outside data)', () => {
      it('collects every problem into one ValidationError and writes nothing', async () => {
        const dir = tmpdir()
        const log = path.join(dir, 'audit.jsonl')
        const bad = {ref: 'r', digest: 'md5:x', version: '1', source: 'disk', tiers: [{tier: 'org'}], stalenesSeconds: 3, seq: 9}
        const err = await rejection(appendAudit('policy.loaded', bad as never, {log}))
        expect(err).to.be.instanceOf(ValidationError)
        expect(err.code).to.equal('AUDIT_EVENT_INVALID')
        expect(err.exit).to.equal(1)
        for (const s of ['/digest: must be sha256', '/source: must be one of registry, cache, import', '/stalenessSeconds: is required', '/tiers: [0].ref', '/stalenesSeconds: is not a field of policy.loaded', '/seq: is set by the audit log itself']) {
          expect(err.message).to.contain(s)
        }
        expect(fs.readdirSync(dir)).to.deep.equal([])
      })
      it('refuses an unknown event with the list of known ones', () => {
        expect(() => validateAuditEvent('policy.lodaed', {ref: null, digest: null, version: null})).to.throw(AiboxError, 'unknown audit event "policy.lodaed"')
      })
      it('requires the subject fields, null when there is none', () => {
        expect(() => validateAuditEvent('policy.signed', {keyId: 'k'})).to.throw(ValidationError, '/ref: is required (null when there is none)')
      })
      it('refuses an event larger than the line limit', async () => {
        const log = path.join(tmpdir(), 'a.jsonl')
        const err = await rejection(appendAudit('policy.refused', {ref: 'r', digest: null, version: null, reason: 'x'.repeat(70_000), code: 'C'}, {log}))
        expect(err.code).to.equal('AUDIT_EVENT_TOO_LARGE')
        expect(fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '').to.equal('')
      })
    })

    describe('when the last line is incomplete (a crash or power loss mid-append)', () => {
      it('moves the torn bytes to the quarantine file, logs audit.repaired, and the log verifies again', async () => {
        const log = await buildLog(tmpdir(), 3)
        const before = fs.readFileSync(log)
        const torn = '{"seq":4,"time":"2025-01-01T00:03:00.000Z","event":"policy.'
        fs.appendFileSync(log, torn)
        expect((await verifyChain(log)).firstBroken?.reason).to.equal('torn')
        const r = await appendAudit('policy.signed', signed, {log})
        expect(r.repaired).to.include({action: 'quarantined', offset: before.length, bytes: torn.length, quarantine: quarantinePathFor(log)})
        expect(r.entries.map((e) => e.event)).to.deep.equal(['audit.repaired', 'policy.signed'])
        expect(r.entries[0]).to.include({seq: 4, reason: 'torn-tail', bytes: torn.length, sha256: lineHash(torn)})
        expect(r.warnings.join(' ')).to.contain('incomplete line')
        // Every complete line kept byte for byte.
        expect(fs.readFileSync(log).subarray(0, before.length).equals(before)).to.equal(true)
        const q = JSON.parse(fs.readFileSync(quarantinePathFor(log), 'utf8'))
        expect(Buffer.from(q.data, 'base64').toString('utf8')).to.equal(torn)
        expect(await verifyChain(log)).to.include({ok: true, entries: 5})
      })
      it('completes a whole entry that only lacks its newline instead of quarantining it', async () => {
        const dir = tmpdir()
        const log = await buildLog(dir, 3)
        // Write entry 4 normally, then cut its newline: the bytes of a write that lost only its last byte.
        const full = await buildLog(dir, 4, 'full.jsonl')
        const line4 = readLines(full)[3]!
        fs.appendFileSync(log, line4)
        const head = JSON.parse(fs.readFileSync(headPathFor(log), 'utf8'))
        head.pending = [{seq: 4, hash: lineHash(line4), size: fs.statSync(log).size + 1}]
        fs.writeFileSync(headPathFor(log), JSON.stringify(head))
        const r = await appendAudit('policy.signed', signed, {log})
        expect(r.repaired?.action).to.equal('completed')
        expect(r.anchored).to.equal(true)
        expect(r.entry.seq).to.equal(5)
        expect(readLines(log)[3]).to.equal(line4)
        expect(fs.existsSync(quarantinePathFor(log))).to.equal(false)
        expect((await verifyChain(log)).ok).to.equal(true)
      })
    })

    describe('when the first append of a new log was killed after recording its line in the anchor, before writing it', () => {
      it('anchors the line the next append writes as the first, and the log verifies (found by test/e2e/crash.test.ts, import)', async () => {
        const log = path.join(tmpdir(), 'audit.jsonl')
        // What the killed append left: an empty log and an anchor whose pending first line never reached it.
        const never = `sha256:${'a'.repeat(64)}`
        fs.writeFileSync(log, '')
        fs.writeFileSync(headPathFor(log), `${JSON.stringify({v: 1, seq: 0, hash: GENESIS_PREV, size: 0, first: never, pending: [{seq: 1, hash: never, size: 300}], time: '2025-03-01T10:00:00.000Z'})}\n`)
        const r = await appendAudit('policy.signed', signed, {log})
        expect(r.anchored, r.warnings.join('\n')).to.equal(true)
        const head = JSON.parse(fs.readFileSync(headPathFor(log), 'utf8'))
        expect(head.first).to.equal(lineHash(readLines(log)[0]!))
        const v = await verifyChain(log)
        expect(v.ok, JSON.stringify(v.firstBroken)).to.equal(true)
      })
    })

    describe('when the log does not match its anchor (tampering)', () => {
      it('still appends, but leaves the anchor as evidence and warns', async () => {
        const log = await buildLog(tmpdir(), 5)
        writeLines(log, readLines(log).slice(0, 3))
        const headBefore = fs.readFileSync(headPathFor(log), 'utf8')
        const r = await appendAudit('policy.signed', signed, {log})
        expect(r.anchored).to.equal(false)
        expect(r.entry.seq).to.equal(4)
        expect(r.warnings.join(' ')).to.contain('does not match its anchor')
        expect(fs.readFileSync(headPathFor(log), 'utf8')).to.equal(headBefore)
        const v = await verifyChain(log)
        expect(v.ok).to.equal(false)
        expect(v.firstBroken).to.include({reason: 'truncated', seq: 5})
      })
      it('does not recreate a deleted anchor', async () => {
        const log = await buildLog(tmpdir(), 2)
        fs.rmSync(headPathFor(log))
        const r = await appendAudit('policy.signed', signed, {log})
        expect(r.anchored).to.equal(false)
        expect(fs.existsSync(headPathFor(log))).to.equal(false)
        expect((await verifyChain(log)).firstBroken?.reason).to.equal('head-missing')
      })
      it('does not adopt a forged line appended after the anchored end', async () => {
        const log = await buildLog(tmpdir(), 2)
        const lines = readLines(log)
        const e = JSON.parse(lines[1]!)
        lines.push(JSON.stringify({...e, seq: 3, prev: lineHash(lines[1]!), actor: 'mallory'}))
        writeLines(log, lines)
        const r = await appendAudit('policy.signed', signed, {log})
        expect(r.anchored).to.equal(false)
        expect((await verifyChain(log)).firstBroken).to.include({reason: 'inserted', line: 3})
      })
    })

    describe('when an earlier append was killed after announcing its lines', () => {
      it('commits them on the next append', async () => {
        const log = await buildLog(tmpdir(), 2)
        const head = JSON.parse(fs.readFileSync(headPathFor(log), 'utf8'))
        await appendAudit('policy.signed', signed, {log})
        head.pending = [{seq: 3, hash: lineHash(readLines(log)[2]!), size: fs.statSync(log).size}]
        fs.writeFileSync(headPathFor(log), JSON.stringify(head))
        const r = await appendAudit('policy.signed', signed, {log})
        expect(r.anchored).to.equal(true)
        expect(await verifyChain(log)).to.include({ok: true, anchoredSeq: 4, unanchored: 0})
      })
    })

    describe('when 50 processes append at once', () => {
      it('keeps one unbroken chain with every entry', async function () {
        this.timeout(300_000)
        const log = path.join(tmpdir(), 'audit.jsonl')
        const procs = 50
        const each = 4
        const results = await Promise.all(
          Array.from({length: procs}, (_, i) => runTs(path.join(CHILDREN, 'appender.ts'), [log, String(each), `proc-${i}`], {}, 240_000)),
        )
        for (const r of results) expect(r.code, r.stderr).to.equal(0)
        const v = await verifyChain(log)
        expect(v).to.include({ok: true, entries: procs * each, lastSeq: procs * each, anchoredSeq: procs * each})
        const actors = new Map<string, number>()
        for (const l of readLines(log)) {
          const a = JSON.parse(l).actor as string
          actors.set(a, (actors.get(a) ?? 0) + 1)
        }
        expect(actors.size).to.equal(procs)
        for (const n of actors.values()) expect(n).to.equal(each)
        expect(fs.readdirSync(path.dirname(log)).sort()).to.deep.equal(['audit.jsonl', 'audit.jsonl.head'])
      })
    })

    describe('when appenders are killed with SIGKILL mid-loop', () => {
      it('leaves a log that verifies (or has a torn tail) and the next append makes it verify', async function () {
        this.timeout(300_000)
        const log = path.join(tmpdir(), 'audit.jsonl')
        const rounds = 15
        for (let round = 0; round < rounds; round++) {
          const child = spawnTs(path.join(CHILDREN, 'appender.ts'), [log, 'loop', `crash-${round}`])
          const done = finished(child)
          await waitForOutput(child, 'ready')
          await sleep(Math.floor(Math.random() * 40))
          child.kill('SIGKILL')
          const r = await done
          expect(r.signal, r.stderr).to.equal('SIGKILL')
          const v = await verifyChain(log)
          expect(v.ok || v.firstBroken?.reason === 'torn', `round ${round}: ${JSON.stringify(v.firstBroken)}`).to.equal(true)
        }
        const before = (await verifyChain(log)).entries
        const r = await appendAudit('policy.signed', signed, {log, actor: 'after'})
        expect(r.anchored).to.equal(true)
        const v = await verifyChain(log)
        expect(v.ok, JSON.stringify(v.firstBroken)).to.equal(true)
        expect(v.unanchored).to.equal(0)
        expect(v.entries).to.be.at.least(before + 1)
        expect(v.entries).to.be.at.least(rounds + 1)
      })
    })
  })

  describe('the written lines', () => {
    it('keep the documented key order: base fields, prev, then the event fields sorted', async () => {
      const log = path.join(tmpdir(), 'a.jsonl')
      await appendAudit('policy.approved', {ticket: 'T-1', role: 'approver', keyId: 'k', note: 'ok', version: '1', digest: D2, ref: 'r', reason: 'why'}, {log, now: steppingClock()})
      expect(Object.keys(JSON.parse(readLines(log)[0]!))).to.deep.equal([
        'seq', 'time', 'event', 'actor', 'ref', 'digest', 'version', 'reason', 'prev', 'keyId', 'note', 'role', 'ticket',
      ])
    })
  })
})

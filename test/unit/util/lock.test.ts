import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {EXIT, TransientError} from '../../../src/errors.js'
import {acquireLock, readLockOwner, withLock} from '../../../src/util/lock.js'
import {finished, runTs, spawnTs, waitForOutput} from '../../helpers/children.js'
import {tmpdir} from '../../helpers/tmp.js'
import {rejection} from '../../helpers/expect-error.js'

const CHILDREN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'children')

/** A lock file as another process would have written it. */
function fakeLock(lockfile: string, owner: Record<string, unknown>): void {
  fs.writeFileSync(lockfile, JSON.stringify({nonce: 'other', acquiredAt: new Date().toISOString(), ...owner}))
}

describe('util/lock', () => {
  describe('#withLock', () => {
    it('runs the function holding the lock and removes the lock file afterwards', async () => {
      const dir = tmpdir()
      const target = path.join(dir, 'audit.jsonl')
      const result = await withLock(target, (lock) => {
        expect(fs.existsSync(`${target}.lock`)).to.equal(true)
        expect(lock.stillHeld()).to.equal(true)
        expect(readLockOwner(target)?.pid).to.equal(process.pid)
        return 42
      })
      expect(result).to.equal(42)
      expect(fs.readdirSync(dir)).to.deep.equal([])
    })

    it('releases the lock when the function throws, and rethrows its error', async () => {
      const dir = tmpdir()
      const target = path.join(dir, 'x')
      let caught: unknown
      try {
        await withLock(target, () => {
          throw new Error('inner failure')
        })
      } catch (err) {
        caught = err
      }
      expect((caught as Error).message).to.equal('inner failure')
      expect(fs.existsSync(`${target}.lock`)).to.equal(false)
    })

    it('creates the parent directory of the lock when missing', async () => {
      const dir = tmpdir()
      const target = path.join(dir, 'state', 'aibox', 'audit.jsonl')
      await withLock(target, () => undefined)
      expect(fs.existsSync(path.dirname(target))).to.equal(true)
    })

    it('serialises concurrent holders inside one process', async () => {
      const dir = tmpdir()
      const target = path.join(dir, 'x')
      let inside = 0
      let maxInside = 0
      await Promise.all(
        Array.from({length: 20}, () =>
          withLock(target, async () => {
            inside++
            maxInside = Math.max(maxInside, inside)
            await new Promise((r) => setTimeout(r, 2))
            inside--
          }),
        ),
      )
      expect(maxInside).to.equal(1)
    })

    describe('when the lock is held by a live process', () => {
      it('times out with TransientError LOCK_TIMEOUT (exit 4) naming the lock and its holder', async () => {
        const dir = tmpdir()
        const target = path.join(dir, 'cache')
        const holder = await acquireLock(target, {purpose: 'cache write'})
        let waitedFor: unknown
        const err = await rejection(
          withLock(target, () => 'never', {
            timeoutMs: 200,
            onWait: (h) => {
              waitedFor = h?.pid
            },
          }),
        )
        holder.release()
        expect(err).to.be.instanceOf(TransientError)
        expect(err.code).to.equal('LOCK_TIMEOUT')
        expect(err.exit).to.equal(EXIT.TRANSIENT)
        expect(err.message).to.contain(`${target}.lock`)
        expect(err.message).to.contain(`pid ${process.pid}`)
        expect(err.message).to.contain('for cache write')
        expect(err.suggestions?.join(' ')).to.contain('remove')
        expect(waitedFor).to.equal(process.pid)
      })
    })

    describe('when the lock file was left by a process that no longer exists', () => {
      it('reclaims it at once (pid check on this host)', async () => {
        const dir = tmpdir()
        const target = path.join(dir, 'x')
        // A pid no process can have: above the kernel's pid_max.
        const dead = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8')) + 1
        const own = JSON.parse(await readOwnIdentity(dir)) as Record<string, unknown>
        fakeLock(`${target}.lock`, {...own, pid: dead, start: '1'})
        const t0 = Date.now()
        await withLock(target, () => undefined, {timeoutMs: 5000, staleMs: 60_000})
        expect(Date.now() - t0).to.be.lessThan(2000)
      })
    })

    describe('when the lock file belongs to another host', () => {
      it('waits while its mtime is fresh and reclaims it once older than staleMs', async () => {
        const dir = tmpdir()
        const target = path.join(dir, 'x')
        const lockfile = `${target}.lock`
        fakeLock(lockfile, {pid: 1, host: 'some-other-host.example'})
        const busy = await rejection(withLock(target, () => undefined, {timeoutMs: 150, staleMs: 60_000}))
        expect(busy.code).to.equal('LOCK_TIMEOUT')
        expect(busy.message).to.contain('some-other-host.example')
        const past = new Date(Date.now() - 120_000)
        fs.utimesSync(lockfile, past, past)
        expect(await withLock(target, () => 'got it', {timeoutMs: 2000, staleMs: 60_000})).to.equal('got it')
      })
      it('treats an unreadable (empty) lock file like a foreign one: stale only by age', async () => {
        const dir = tmpdir()
        const target = path.join(dir, 'x')
        fs.writeFileSync(`${target}.lock`, '')
        expect((await rejection(withLock(target, () => undefined, {timeoutMs: 100}))).code).to.equal('LOCK_TIMEOUT')
        const past = new Date(Date.now() - 120_000)
        fs.utimesSync(`${target}.lock`, past, past)
        await withLock(target, () => undefined, {timeoutMs: 2000})
      })
    })

    describe('when a holder process is killed with SIGKILL', () => {
      it('lets the next process take the lock without waiting for staleMs', async function () {
        this.timeout(60_000)
        const dir = tmpdir()
        const target = path.join(dir, 'cache')
        const child = spawnTs(path.join(CHILDREN, 'lock-holder.ts'), [target])
        const done = finished(child)
        await waitForOutput(child, 'locked')
        expect(readLockOwner(target)?.pid).to.equal(child.pid)
        const blocked = await rejection(withLock(target, () => undefined, {timeoutMs: 100}))
        expect(blocked.code).to.equal('LOCK_TIMEOUT')
        child.kill('SIGKILL')
        await done
        const t0 = Date.now()
        await withLock(target, () => undefined, {timeoutMs: 10_000, staleMs: 60_000})
        expect(Date.now() - t0).to.be.lessThan(2000)
      })
    })

    describe('when many processes increment one counter under the lock', () => {
      it('loses no update', async function () {
        this.timeout(180_000)
        const dir = tmpdir()
        const counter = path.join(dir, 'counter')
        fs.writeFileSync(counter, '0')
        const procs = 24
        const each = 10
        const results = await Promise.all(
          Array.from({length: procs}, () => runTs(path.join(CHILDREN, 'lock-counter.ts'), [counter, String(each)])),
        )
        for (const r of results) expect(r.code, r.stderr).to.equal(0)
        expect(Number(fs.readFileSync(counter, 'utf8'))).to.equal(procs * each)
        expect(fs.readdirSync(dir)).to.deep.equal(['counter'])
      })
      it('(control) does lose updates without the lock, so the test above can fail', async function () {
        this.timeout(180_000)
        const dir = tmpdir()
        const counter = path.join(dir, 'counter')
        fs.writeFileSync(counter, '0')
        const procs = 8
        const each = 20
        await Promise.all(Array.from({length: procs}, () => runTs(path.join(CHILDREN, 'lock-counter.ts'), [counter, String(each), 'nolock'])))
        expect(Number(fs.readFileSync(counter, 'utf8'))).to.be.lessThan(procs * each)
      })
    })
  })
})

/** Our own lock identity (host, boot, pidns), read from a lock we take: a fake dead holder must look local. */
async function readOwnIdentity(dir: string): Promise<string> {
  const target = path.join(dir, 'identity')
  const lock = await acquireLock(target)
  const text = fs.readFileSync(lock.lockfile, 'utf8')
  lock.release()
  expect(JSON.parse(text).host).to.equal(os.hostname())
  return text
}

import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {AiboxError} from '../../../src/errors.js'
import {
  TEMP_SUFFIX,
  appendDurable,
  appendDurableSync,
  removeQuietly,
  sweepTempFiles,
  writeFileAtomic,
  writeFileAtomicSync,
  writeJsonAtomic,
  writeJsonAtomicSync,
} from '../../../src/util/atomic.js'
import {finished, sleep, spawnTs, waitForOutput} from '../../helpers/children.js'
import {listFiles, tmpdir} from '../../helpers/tmp.js'

const CHILDREN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'children')

async function rejection(p: Promise<unknown>): Promise<AiboxError> {
  try {
    await p
  } catch (err) {
    expect(err).to.be.instanceOf(AiboxError)
    return err as AiboxError
  }
  throw new Error('expected a rejection')
}

describe('util/atomic', () => {
  describe('#writeFileAtomic', () => {
    describe('when the target does not exist', () => {
      it('creates it with exactly the data and leaves no temp file', async () => {
        const dir = tmpdir()
        const f = path.join(dir, 'state.json')
        await writeFileAtomic(f, 'hello\n')
        expect(fs.readFileSync(f, 'utf8')).to.equal('hello\n')
        expect(listFiles(dir)).to.deep.equal(['state.json'])
      })
      it('creates missing parent directories with mkdirs', async () => {
        const dir = tmpdir()
        const f = path.join(dir, 'a', 'b', 'c.bin')
        await writeFileAtomic(f, new Uint8Array([1, 2, 3]), {mkdirs: true})
        expect([...fs.readFileSync(f)]).to.deep.equal([1, 2, 3])
      })
      it('fails with NOT_FOUND naming the file when the directory is missing and mkdirs is off', async () => {
        const dir = tmpdir()
        const f = path.join(dir, 'missing', 'x')
        const err = await rejection(writeFileAtomic(f, 'x'))
        expect(err.code).to.equal('FILE_NOT_FOUND')
        expect(err.exit).to.equal(3)
        expect(err.message).to.contain(f)
      })
    })

    describe('when the target exists', () => {
      it('replaces the content and keeps the old mode', async () => {
        const dir = tmpdir()
        const f = path.join(dir, 'key')
        fs.writeFileSync(f, 'old')
        fs.chmodSync(f, 0o600)
        await writeFileAtomic(f, 'new')
        expect(fs.readFileSync(f, 'utf8')).to.equal('new')
        expect(fs.statSync(f).mode & 0o777).to.equal(0o600)
      })
      it('applies an explicit mode exactly, whatever the umask', async () => {
        const dir = tmpdir()
        const f = path.join(dir, 'x')
        await writeFileAtomic(f, 'x', {mode: 0o640})
        expect(fs.statSync(f).mode & 0o777).to.equal(0o640)
      })
    })

    describe('when the write fails midway', () => {
      it('leaves the old file untouched and no partial or temp file', async () => {
        const dir = tmpdir()
        const f = path.join(dir, 'state.json')
        fs.writeFileSync(f, 'old content')
        async function* failing() {
          yield 'first chunk of the new content, '
          throw new Error('source stream broke')
        }
        const err = await rejection(writeFileAtomic(f, failing()))
        expect(err.message).to.contain('source stream broke')
        expect(err.message).to.contain(f)
        expect(fs.readFileSync(f, 'utf8')).to.equal('old content')
        expect(listFiles(dir)).to.deep.equal(['state.json'])
      })
      it('leaves no new file at all when the target did not exist', async () => {
        const dir = tmpdir()
        const f = path.join(dir, 'new.json')
        function* failing() {
          yield 'partial'
          throw new Error('boom')
        }
        await rejection(writeFileAtomic(f, failing()))
        expect(listFiles(dir)).to.deep.equal([])
      })
      it('removes the temp file when the rename fails (target is a directory)', async () => {
        const dir = tmpdir()
        const f = path.join(dir, 'taken')
        fs.mkdirSync(f)
        fs.writeFileSync(path.join(f, 'inside'), 'x')
        const err = await rejection(writeFileAtomic(f, 'data'))
        expect(err.message).to.contain(f)
        expect(listFiles(dir)).to.deep.equal(['taken/inside'])
      })
    })

    describe('when writers are killed with SIGKILL mid-write', () => {
      it('always leaves either the old or the new content, never a torn file', async function () {
        this.timeout(120_000)
        const dir = tmpdir()
        const f = path.join(dir, 'target')
        const sizeA = 3 * 1024 * 1024
        const sizeB = 2 * 1024 * 1024 + 17
        fs.writeFileSync(f, Buffer.alloc(sizeA, 'a'))
        const rounds = 12
        for (let round = 0; round < rounds; round++) {
          const child = spawnTs(path.join(CHILDREN, 'atomic-writer.ts'), [f, String(sizeA), String(sizeB)])
          const done = finished(child)
          await waitForOutput(child, 'ready')
          await sleep(5 + Math.floor(Math.random() * 60))
          child.kill('SIGKILL')
          const r = await done
          expect(r.signal, r.stderr).to.equal('SIGKILL')
          const data = fs.readFileSync(f)
          const okA = data.length === sizeA && data.every((b) => b === 0x61)
          const okB = data.length === sizeB && data.every((b) => b === 0x62)
          expect(okA || okB, `round ${round}: ${data.length} bytes`).to.equal(true)
        }
        // Killed writers may leave temp files behind; the sweep removes them (and only them).
        const leftovers = fs.readdirSync(dir).filter((n) => n.endsWith(TEMP_SUFFIX))
        const removed = await sweepTempFiles(dir, {olderThanMs: 0})
        expect(removed).to.deep.equal(leftovers.sort())
        expect(fs.readdirSync(dir)).to.deep.equal(['target'])
      })
    })
  })

  describe('#writeFileAtomicSync', () => {
    it('writes and replaces like the async version', () => {
      const dir = tmpdir()
      const f = path.join(dir, 'head')
      writeFileAtomicSync(f, 'one')
      writeFileAtomicSync(f, 'two')
      expect(fs.readFileSync(f, 'utf8')).to.equal('two')
      expect(listFiles(dir)).to.deep.equal(['head'])
    })
    it('cleans up its temp file when the rename fails', () => {
      const dir = tmpdir()
      const f = path.join(dir, 'd')
      fs.mkdirSync(f)
      expect(() => writeFileAtomicSync(f, 'x')).to.throw(AiboxError, f)
      expect(fs.readdirSync(dir)).to.deep.equal(['d'])
    })
  })

  describe('#writeJsonAtomic', () => {
    it('writes indented JSON with a trailing newline', async () => {
      const dir = tmpdir()
      const f = path.join(dir, 'a.json')
      await writeJsonAtomic(f, {b: 1, a: [true]})
      expect(fs.readFileSync(f, 'utf8')).to.equal('{\n  "b": 1,\n  "a": [\n    true\n  ]\n}\n')
      writeJsonAtomicSync(f, {x: 1}, {space: 0})
      expect(fs.readFileSync(f, 'utf8')).to.equal('{"x":1}\n')
    })
  })

  describe('#appendDurable', () => {
    it('appends to a new or existing file', async () => {
      const dir = tmpdir()
      const f = path.join(dir, 'log')
      appendDurableSync(f, 'a\n', {mode: 0o600})
      await appendDurable(f, Buffer.from('b\n'))
      expect(fs.readFileSync(f, 'utf8')).to.equal('a\nb\n')
      expect(fs.statSync(f).mode & 0o777).to.equal(0o600)
    })
    it('names the file when it cannot append', async () => {
      const dir = tmpdir()
      const err = await rejection(appendDurable(dir, 'x'))
      expect(err.code).to.equal('IS_A_DIRECTORY')
      expect(err.message).to.contain(dir)
    })
  })

  describe('#sweepTempFiles', () => {
    it('removes only old aibox temp files', async () => {
      const dir = tmpdir()
      const old = path.join(dir, `.state.json.abc${TEMP_SUFFIX}`)
      const fresh = path.join(dir, `.state.json.def${TEMP_SUFFIX}`)
      fs.writeFileSync(old, 'x')
      fs.writeFileSync(fresh, 'x')
      fs.writeFileSync(path.join(dir, '.other.tmp'), 'x')
      fs.writeFileSync(path.join(dir, 'state.json'), 'x')
      const past = new Date(Date.now() - 3_600_000)
      fs.utimesSync(old, past, past)
      expect(await sweepTempFiles(dir, {olderThanMs: 60_000})).to.deep.equal([path.basename(old)])
      expect(fs.readdirSync(dir).sort()).to.deep.equal(['.other.tmp', path.basename(fresh), 'state.json'].sort())
    })
    it('returns nothing for a missing directory', async () => {
      expect(await sweepTempFiles(path.join(tmpdir(), 'nope'))).to.deep.equal([])
    })
  })

  describe('#removeQuietly', () => {
    it('removes trees and ignores missing paths', async () => {
      const dir = tmpdir()
      fs.mkdirSync(path.join(dir, 'a', 'b'), {recursive: true})
      await removeQuietly(path.join(dir, 'a'))
      await removeQuietly(path.join(dir, 'a'))
      expect(fs.readdirSync(dir)).to.deep.equal([])
    })
  })
})

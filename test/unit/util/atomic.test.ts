import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {AiboxError, InputError} from '../../../src/errors.js'
import {
  TEMP_SUFFIX,
  appendDurable,
  appendDurableSync,
  fileSink,
  removeQuietly,
  stageFileSync,
  sweepTempFiles,
  writeFileAtomic,
  writeFileAtomicSync,
  writeJsonAtomic,
  writeJsonAtomicSync,
} from '../../../src/util/atomic.js'
import {finished, sleep, spawnTs, waitForOutput} from '../../helpers/children.js'
import {listFiles, tmpdir} from '../../helpers/tmp.js'
import {rejection} from '../../helpers/expect-error.js'

const CHILDREN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'children')

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

    describe('when exclusive', () => {
      it('creates a missing file', async () => {
        const dir = tmpdir()
        await writeFileAtomic(path.join(dir, 'out.json'), '{}', {exclusive: true})
        expect(fs.readFileSync(path.join(dir, 'out.json'), 'utf8')).to.equal('{}')
        expect(listFiles(dir)).to.deep.equal(['out.json'])
      })
      it('refuses an existing file with FILE_EXISTS (exit 1), leaving it and no temp file', async () => {
        const dir = tmpdir()
        const f = path.join(dir, 'out.json')
        fs.writeFileSync(f, 'old')
        const err = await rejection(writeFileAtomic(f, 'new', {exclusive: true}))
        expect(err.code).to.equal('FILE_EXISTS')
        expect(err.exit).to.equal(1)
        expect(err.message).to.equal(`${f} already exists`)
        expect(fs.readFileSync(f, 'utf8')).to.equal('old')
        expect(listFiles(dir)).to.deep.equal(['out.json'])
      })
      it('lets exactly one of several concurrent writers create the file', async () => {
        const dir = tmpdir()
        const f = path.join(dir, 'once')
        const results = await Promise.allSettled(Array.from({length: 8}, (_, i) => writeFileAtomic(f, `writer ${i}`, {exclusive: true})))
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []))
        expect(won).to.have.length(1)
        for (const r of results) if (r.status === 'rejected') expect((r.reason as AiboxError).code).to.equal('FILE_EXISTS')
        expect(fs.readFileSync(f, 'utf8')).to.equal(`writer ${won[0]}`)
        expect(listFiles(dir)).to.deep.equal(['once'])
      })
    })

    describe('when data is a writer function', () => {
      it('streams into the temp file (in tmpDir when given) and moves it into place', async () => {
        const dir = tmpdir()
        const scratch = path.join(dir, 'scratch')
        fs.mkdirSync(scratch)
        const f = path.join(dir, 'blob')
        let during: string[] = []
        await writeFileAtomic(
          f,
          async (fh) => {
            await pipeline(Readable.from([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')]), fileSink(fh))
            during = fs.readdirSync(scratch)
          },
          {tmpDir: scratch, mode: 0o444},
        )
        expect(during).to.have.length(1)
        expect(during[0]).to.match(new RegExp(`^\\.blob\\..*${TEMP_SUFFIX.replace('.', '\\.')}$`))
        expect(fs.readFileSync(f, 'utf8')).to.equal('abc')
        expect(fs.statSync(f).mode & 0o777).to.equal(0o444)
        expect(listFiles(dir)).to.deep.equal(['blob'])
      })
      it('keeps an AiboxError the writer throws and leaves nothing behind', async () => {
        const dir = tmpdir()
        const f = path.join(dir, 'blob')
        const err = await rejection(
          writeFileAtomic(f, async (fh) => {
            await fh.write('partial')
            throw new InputError('DIGEST_MISMATCH', 'bytes do not match')
          }),
        )
        expect(err.code).to.equal('DIGEST_MISMATCH')
        expect(listFiles(dir)).to.deep.equal([])
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
    it('refuses to replace a file when exclusive, leaving it unchanged', () => {
      const dir = tmpdir()
      const f = path.join(dir, 'a.json')
      fs.writeFileSync(f, 'old')
      expect(() => writeFileAtomicSync(f, 'new', {exclusive: true})).to.throw(AiboxError).with.property('code', 'FILE_EXISTS')
      expect(fs.readFileSync(f, 'utf8')).to.equal('old')
      expect(listFiles(dir)).to.deep.equal(['a.json'])
    })
  })

  describe('#stageFileSync', () => {
    it('writes nothing visible until commit, and discard leaves nothing', () => {
      const dir = tmpdir()
      const a = stageFileSync(path.join(dir, 'a.key'), 'secret', {mode: 0o600})
      const b = stageFileSync(path.join(dir, 'a.pub'), 'public', {mode: 0o644})
      expect(fs.readdirSync(dir).filter((n) => !n.endsWith(TEMP_SUFFIX))).to.deep.equal([])
      a.commit()
      b.discard()
      b.discard()
      a.discard()
      expect(listFiles(dir)).to.deep.equal(['a.key'])
      expect(fs.statSync(path.join(dir, 'a.key')).mode & 0o777).to.equal(0o600)
    })
    it('fails an exclusive commit when the file appeared after staging, removing the temp file', () => {
      const dir = tmpdir()
      const f = path.join(dir, 'k')
      const staged = stageFileSync(f, 'mine', {exclusive: true})
      fs.writeFileSync(f, 'theirs')
      expect(() => staged.commit()).to.throw(AiboxError, `${f} already exists`).with.property('code', 'FILE_EXISTS')
      expect(fs.readFileSync(f, 'utf8')).to.equal('theirs')
      expect(listFiles(dir)).to.deep.equal(['k'])
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

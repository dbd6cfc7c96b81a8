import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {writeOutputFile} from '../../../src/bundle/write.js'
import {InputError, NotFoundError} from '../../../src/errors.js'
import {listFiles, tmpdir} from '../../helpers/tmp.js'
import {expectCodeSync} from '../../helpers/expect-error.js'

describe('write', () => {
  describe('#writeOutputFile', () => {
    it('writes a new file and leaves no temp file behind', () => {
      const dir = tmpdir()
      writeOutputFile(path.join(dir, 'a.json'), '{"a":1}')
      expect(fs.readFileSync(path.join(dir, 'a.json'), 'utf8')).to.equal('{"a":1}')
      expect(listFiles(dir)).to.deep.equal(['a.json'])
    })
    it('refuses to replace a file without overwrite, leaving it unchanged', () => {
      const dir = tmpdir()
      const f = path.join(dir, 'a.json')
      fs.writeFileSync(f, 'old')
      expectCodeSync(() => writeOutputFile(f, 'new'), InputError, 'FILE_EXISTS')
      expect(fs.readFileSync(f, 'utf8')).to.equal('old')
      expect(listFiles(dir)).to.deep.equal(['a.json'])
    })
    it('replaces a file with overwrite', () => {
      const dir = tmpdir()
      const f = path.join(dir, 'a.json')
      fs.writeFileSync(f, 'old')
      writeOutputFile(f, 'new', {overwrite: true})
      expect(fs.readFileSync(f, 'utf8')).to.equal('new')
      expect(listFiles(dir)).to.deep.equal(['a.json'])
    })
    it('reports a missing directory as NotFoundError', () => {
      expectCodeSync(() => writeOutputFile(path.join(tmpdir(), 'no', 'a.json'), 'x'), NotFoundError, 'DIRECTORY_NOT_FOUND')
    })
  })
})

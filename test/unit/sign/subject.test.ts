import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {loadBundle} from '../../../src/bundle/load.js'
import {artifactDigests, subjectDigestFor} from '../../../src/sign/index.js'
import {sha256Digest} from '../../../src/sign/encoding.js'
import {TESTDATA} from '../../helpers/cli.js'

const ORG = path.join(TESTDATA, 'bundles', 'org', 'baseline.yaml')

describe('subjectDigestFor', () => {
  describe('when the file is a valid policy document', () => {
    it('is the RFC 8785 content digest, the same for the YAML and the JSON rendering', async () => {
      const yaml = fs.readFileSync(ORG)
      const digest = await subjectDigestFor(ORG, yaml)
      expect(digest).to.equal(loadBundle(ORG).digest)
      expect(digest).to.not.equal(sha256Digest(yaml))
      const jsonFile = path.join(TESTDATA, 'bundles', 'org', 'baseline.json')
      expect(await subjectDigestFor(jsonFile, fs.readFileSync(jsonFile))).to.equal(digest)
    })
  })
  describe('when the file is anything else', () => {
    it('is the sha256 of its bytes (also for an invalid policy file)', async () => {
      const bytes = Buffer.from('just some text\n')
      expect(await subjectDigestFor('notes.txt', bytes)).to.equal(sha256Digest(bytes))
      const bad = path.join(TESTDATA, 'bundles', 'bad', 'schema-violations.yaml')
      expect(await subjectDigestFor(bad, fs.readFileSync(bad))).to.equal(sha256Digest(fs.readFileSync(bad)))
    })
  })
})

describe('artifactDigests', () => {
  it('accepts both the raw-bytes digest (older signatures) and the content digest', async () => {
    const yaml = fs.readFileSync(ORG)
    expect(await artifactDigests(ORG, yaml)).to.deep.equal([sha256Digest(yaml), loadBundle(ORG).digest])
  })
})

import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {rewriteConfigProfile} from '../../../src/profile/change.js'
import {tmpdir} from '../../helpers/tmp.js'

describe('profile change', () => {
  describe('#rewriteConfigProfile', () => {
    it('sets profile and profileTicket in place, keeping comments, order and the other fields', () => {
      const file = path.join(tmpdir(), 'aibox.yaml')
      fs.writeFileSync(file, '# webapp\npolicy:\n  org: oci:layout:org # signed\nprofile: audit-strict # CI pins it\nprofileTicket: CHG-1\ntrust: trust.yaml\n')
      rewriteConfigProfile(file, 'dev-fast', 'CHG-2')
      expect(fs.readFileSync(file, 'utf8')).to.equal('# webapp\npolicy:\n  org: oci:layout:org # signed\nprofile: dev-fast # CI pins it\nprofileTicket: CHG-2\ntrust: trust.yaml\n')
    })
    it('adds them at the end when absent', () => {
      const file = path.join(tmpdir(), 'aibox.yaml')
      fs.writeFileSync(file, 'policy:\n  org: oci:layout:org\n')
      rewriteConfigProfile(file, 'lab-default', 'CHG-3')
      expect(fs.readFileSync(file, 'utf8')).to.equal('policy:\n  org: oci:layout:org\nprofile: lab-default\nprofileTicket: CHG-3\n')
    })
  })
})

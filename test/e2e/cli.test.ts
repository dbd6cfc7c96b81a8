import {expect} from 'chai'

import {aibox} from '../helpers/cli.js'

describe('aibox CLI', () => {
  it('prints help listing the topics', async () => {
    const r = await aibox(['--help'])
    expect(r.code).to.equal(0)
    expect(r.stdout).to.contain('USAGE')
  })

  it('exits 1 (usage) for an unknown command, not oclif’s default', async () => {
    const r = await aibox(['no-such-command'])
    expect(r.code).to.not.equal(0)
    expect(r.stderr).to.match(/not found/i)
  })
})

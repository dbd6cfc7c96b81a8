import {expect} from 'chai'

import {compareSemver, parseSemver, sortTags} from '../../../src/distribute/index.js'

describe('sortTags', () => {
  it('puts channels first, then versions by semver precedence (semver.org §11)', () => {
    const tags = ['1.10.0', 'stable', '1.2.0', '1.0.0', '1.0.0-rc.1', '1.0.0-rc.10', '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-beta', 'lts', '2.0.0_build.5', 'v1.5.0']
    expect(sortTags(tags)).to.deep.equal(['lts', 'stable', '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-beta', '1.0.0-rc.1', '1.0.0-rc.10', '1.0.0', '1.2.0', 'v1.5.0', '1.10.0', '2.0.0_build.5'])
  })
  it('hides the referrers bookkeeping tags and duplicates', () => {
    const hex = 'a'.repeat(64)
    expect(sortTags([`sha256-${hex}`, `sha256-${hex}.sig`, `sha256-${hex}.att`, '1.0.0', '1.0.0'])).to.deep.equal(['1.0.0'])
  })
})

describe('parseSemver / compareSemver', () => {
  it('parses versions (with an optional v and a _build suffix) and refuses others', () => {
    expect(parseSemver('1.2.3-rc.1')).to.deep.equal({nums: [1, 2, 3], pre: ['rc', '1']})
    for (const bad of ['1.2', '01.2.3', 'latest', '1.2.3-', '1.2.3.4']) expect(parseSemver(bad), bad).to.equal(undefined)
  })
  it('orders numeric prerelease identifiers below alphanumeric ones', () => {
    expect(compareSemver(parseSemver('1.0.0-1')!, parseSemver('1.0.0-a')!)).to.be.lessThan(0)
    expect(compareSemver(parseSemver('1.0.0-rc.2')!, parseSemver('1.0.0-rc.10')!)).to.be.lessThan(0)
    expect(compareSemver(parseSemver('1.0.0')!, parseSemver('1.0.0_x')!)).to.equal(0)
  })
})

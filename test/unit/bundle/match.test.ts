import {expect} from 'chai'

import {argMatches, argvCovers, argvMatches, globIntersection, globMatches, hostCovers, joinCommand, normalizePath, pathCovers, splitCommand} from '../../../src/bundle/match.js'

describe('match', () => {
  describe('#hostCovers', () => {
    it('lets "*.x.com" cover subdomains at any depth and narrower wildcards', () => {
      expect(hostCovers('*.x.com', 'a.x.com')).to.equal(true)
      expect(hostCovers('*.x.com', 'b.a.x.com')).to.equal(true)
      expect(hostCovers('*.x.com', '*.a.x.com')).to.equal(true)
      expect(hostCovers('*.x.com', '*.x.com')).to.equal(true)
    })
    it('never lets "*.x.com" cover x.com itself or evilx.com', () => {
      expect(hostCovers('*.x.com', 'x.com')).to.equal(false)
      expect(hostCovers('*.x.com', 'evilx.com')).to.equal(false)
      expect(hostCovers('*.x.com', '*.com')).to.equal(false)
      expect(hostCovers('*.x.com', 'x.com.evil.org')).to.equal(false)
    })
    it('lets an exact name cover only itself', () => {
      expect(hostCovers('git.internal', 'git.internal')).to.equal(true)
      expect(hostCovers('git.internal', 'a.git.internal')).to.equal(false)
      expect(hostCovers('git.internal', '*.git.internal')).to.equal(false)
    })
  })

  describe('#pathCovers / #normalizePath', () => {
    it('compares whole segments', () => {
      expect(pathCovers('/home', '/home/u/x')).to.equal(true)
      expect(pathCovers('/home', '/home')).to.equal(true)
      expect(pathCovers('/home', '/homeevil')).to.equal(false)
      expect(pathCovers('/', '/anything')).to.equal(true)
      expect(pathCovers('/home/u', '/home')).to.equal(false)
    })
    it('normalises before comparing', () => {
      expect(normalizePath('/a//b/./c/../d/')).to.equal('/a/b/d')
      expect(normalizePath('/../../etc')).to.equal('/etc')
      expect(pathCovers('/workspace/', '/workspace/x/../y')).to.equal(true)
    })
  })

  describe('#argMatches', () => {
    it('never matches a missing or non-string argument (seed 003)', () => {
      for (const v of [undefined, null, 42, true, ['/home/a'], {p: '/home/a'}]) expect(argMatches({startsWith: '/home/'}, v)).to.equal(false)
    })
    it('normalises path arguments so ".." cannot escape an allowed prefix', () => {
      const m = {startsWith: '/home/'}
      expect(argMatches(m, '/home/alice/notes')).to.equal(true)
      expect(argMatches(m, '/home/alice/../../etc/passwd')).to.equal(false)
      expect(argMatches(m, '/home/../etc')).to.equal(false)
      expect(argMatches(m, '/home')).to.equal(false) // "/home/" asks for something below /home
      expect(argMatches(m, '/homeevil/x')).to.equal(false)
      expect(argMatches(m, 'home/alice')).to.equal(false) // relative: cannot be resolved
      expect(argMatches(m, '/home/a\u0000b')).to.equal(false)
    })
    it('lets a deny rule catch a path written around it', () => {
      expect(argMatches({startsWith: '/etc/'}, '/tmp/../etc/shadow')).to.equal(true)
      expect(argMatches({startsWith: '/etc'}, '//etc//passwd')).to.equal(true)
      expect(argMatches({equals: '/etc/passwd'}, '/etc/./passwd')).to.equal(true)
    })
    it('compares non-path values as plain strings', () => {
      expect(argMatches({startsWith: 'DROP'}, 'DROP TABLE x')).to.equal(true)
      expect(argMatches({startsWith: 'DROP'}, 'drop table x')).to.equal(false)
      expect(argMatches({equals: 'read'}, 'read')).to.equal(true)
      expect(argMatches({equals: 'read'}, 'reads')).to.equal(false)
    })
  })

  describe('#globMatches', () => {
    it('matches the whole name, "*" as the only wildcard, case-sensitively', () => {
      expect(globMatches('get_*', 'get_file')).to.equal(true)
      expect(globMatches('get_*', 'get_')).to.equal(true)
      expect(globMatches('get_*', 'xget_file')).to.equal(false)
      expect(globMatches('get_*', 'GET_file')).to.equal(false)
      expect(globMatches('*_file', 'read_file')).to.equal(true)
      expect(globMatches('a*b*c', 'aXXbYYc')).to.equal(true)
      expect(globMatches('a*b*c', 'aXXbYY')).to.equal(false)
      expect(globMatches('get?', 'get?')).to.equal(true)
      expect(globMatches('get?', 'gets')).to.equal(false)
      expect(globMatches('[a]', 'a')).to.equal(false)
    })
  })

  describe('#globIntersection', () => {
    it('finds a pattern in both languages, or undefined', () => {
      const fill = (p: string | undefined) => p?.replaceAll('*', '§')
      expect(fill(globIntersection('get_*', '*'))).to.equal('get_§')
      expect(fill(globIntersection('get_*', 'get_secret*'))).to.equal('get_secret§')
      expect(globIntersection('get_*', '*_file')).to.not.equal(undefined)
      expect(globMatches('get_*', fill(globIntersection('get_*', '*_file'))!)).to.equal(true)
      expect(globMatches('*_file', fill(globIntersection('get_*', '*_file'))!)).to.equal(true)
      expect(globIntersection('get_*', 'list_*')).to.equal(undefined)
      expect(globIntersection('a', 'a')).to.equal('a')
      expect(globIntersection('a', 'b')).to.equal(undefined)
    })
  })

  describe('#argvMatches / #argvCovers', () => {
    it('matches a token prefix, "*" being exactly one token', () => {
      expect(argvMatches(['git', 'push'], ['git', 'push', 'origin'])).to.equal(true)
      expect(argvMatches(['git', 'push'], ['git'])).to.equal(false)
      expect(argvMatches(['npm', '*'], ['npm', 'ci'])).to.equal(true)
      expect(argvMatches(['npm', '*'], ['npm'])).to.equal(false)
      expect(argvMatches(['git', '*', '--force'], ['git', 'push', '--force'])).to.equal(true)
    })
    it('knows when one pattern contains another', () => {
      expect(argvCovers(['git'], ['git', 'push'])).to.equal(true)
      expect(argvCovers(['git', '*'], ['git', 'push', '--force'])).to.equal(true)
      expect(argvCovers(['git', 'push'], ['git', '*'])).to.equal(false)
    })
  })

  describe('#splitCommand / #joinCommand', () => {
    it('splits like a shell without expansion', () => {
      expect(splitCommand(`git commit -m "fix: a b" 'it''s' x\\ y $HOME`)).to.deep.equal(['git', 'commit', '-m', 'fix: a b', 'its', 'x y', '$HOME'])
      expect(splitCommand('  ')).to.deep.equal([])
      expect(splitCommand('echo ""')).to.deep.equal(['echo', ''])
    })
    it('refuses an unterminated quote', () => {
      expect(() => splitCommand('echo "a')).to.throw('unterminated double quote')
    })
    it('round-trips through joinCommand', () => {
      const argv = ['git', 'commit', '-m', "it's a b", '']
      expect(splitCommand(joinCommand(argv))).to.deep.equal(argv)
    })
  })
})

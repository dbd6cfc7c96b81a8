import {expect} from 'chai'
import path from 'node:path'

import {AiboxError} from '../../../src/errors.js'
import {defaultAuditLogPath, defaultCacheDir, defaultUserConfigDir, expandHome} from '../../../src/config/paths.js'

const HOME = '/home/alice'

describe('config/paths', () => {
  describe('#defaultCacheDir', () => {
    it('prefers AIBOX_CACHE, expanding ~', () => {
      expect(defaultCacheDir({HOME, AIBOX_CACHE: '~/c', XDG_CACHE_HOME: '/x'})).to.equal('/home/alice/c')
    })
    it('uses $XDG_CACHE_HOME/aibox next', () => {
      expect(defaultCacheDir({HOME, XDG_CACHE_HOME: '/var/cache/u'})).to.equal('/var/cache/u/aibox')
    })
    it('falls back to ~/.cache/aibox', () => {
      expect(defaultCacheDir({HOME})).to.equal('/home/alice/.cache/aibox')
    })
    it('ignores empty and relative XDG values, as the XDG spec requires', () => {
      expect(defaultCacheDir({HOME, XDG_CACHE_HOME: ''})).to.equal('/home/alice/.cache/aibox')
      expect(defaultCacheDir({HOME, XDG_CACHE_HOME: 'rel/cache'})).to.equal('/home/alice/.cache/aibox')
    })
    it('resolves a relative AIBOX_CACHE against the working directory', () => {
      expect(defaultCacheDir({HOME, AIBOX_CACHE: 'cache'})).to.equal(path.resolve('cache'))
    })
  })

  describe('#defaultAuditLogPath', () => {
    it('prefers AIBOX_AUDIT_LOG', () => {
      expect(defaultAuditLogPath({HOME, AIBOX_AUDIT_LOG: '~/audit.jsonl', XDG_STATE_HOME: '/s'})).to.equal('/home/alice/audit.jsonl')
    })
    it('uses $XDG_STATE_HOME/aibox/audit.jsonl next', () => {
      expect(defaultAuditLogPath({HOME, XDG_STATE_HOME: '/s'})).to.equal('/s/aibox/audit.jsonl')
    })
    it('falls back to ~/.local/state/aibox/audit.jsonl', () => {
      expect(defaultAuditLogPath({HOME})).to.equal('/home/alice/.local/state/aibox/audit.jsonl')
    })
  })

  describe('#defaultUserConfigDir', () => {
    it('uses $XDG_CONFIG_HOME/aibox, else ~/.config/aibox', () => {
      expect(defaultUserConfigDir({HOME, XDG_CONFIG_HOME: '/etc/u'})).to.equal('/etc/u/aibox')
      expect(defaultUserConfigDir({HOME})).to.equal('/home/alice/.config/aibox')
    })
  })

  describe('#expandHome', () => {
    it('expands ~ and ~/ only', () => {
      expect(expandHome('~', {HOME})).to.equal(HOME)
      expect(expandHome('~/a/b', {HOME})).to.equal('/home/alice/a/b')
      expect(expandHome('/abs/~x', {HOME})).to.equal('/abs/~x')
      expect(expandHome('rel', {HOME}, '/work')).to.equal('/work/rel')
    })
    it('refuses ~user with a clear error', () => {
      expect(() => expandHome('~bob/x', {HOME})).to.throw(AiboxError, 'only "~" and "~/…" are supported')
    })
  })
})

import {expect} from 'chai'

import {InputError, TransientError, VerificationError} from '../../../src/errors.js'
import {bannerOf, errorJson, execCommand, formatError, splitAtDashDash, toStartOptions} from '../../../src/start/cli.js'
import {parseStartArgv} from '../../../src/start/fast.js'
import {expectCodeSync} from '../../helpers/expect-error.js'
import {expectOutputSchema} from '../../helpers/schemas.js'

describe('start: command line', () => {
  describe('parseStartArgv (the fast path)', () => {
    it('parses every flag of the shared table and keeps the command after --', () => {
      const r = parseStartArgv(['-c', 'a.yaml', '--key', 'a.pub', '--key', 'b.pub', '--offline', '--max-staleness', '2d', '-o', 'eff.json', '-q', '--json', '--', 'agent', '--key', 'x'])
      expect(r.flags).to.deep.include({config: 'a.yaml', key: ['a.pub', 'b.pub'], offline: true, 'max-staleness': '2d', output: 'eff.json', quiet: true, json: true})
      expect(r.command).to.deep.equal(['agent', '--key', 'x'])
      expect(toStartOptions(r.flags)).to.deep.equal({config: 'a.yaml', keys: ['a.pub', 'b.pub'], offline: true, maxStaleness: '2d', output: 'eff.json'})
    })
    it('refuses unknown flags, arguments before --, and --key with --trust (exit 1)', () => {
      expectCodeSync(() => parseStartArgv(['--nope']), InputError, 'INVALID_FLAGS')
      const e = expectCodeSync(() => parseStartArgv(['bash']), InputError, 'UNEXPECTED_ARGUMENTS')
      expect(e.message).to.contain('put the sandbox command after --')
      expectCodeSync(() => toStartOptions(parseStartArgv(['--key', 'k.pub', '--trust', 't.yaml']).flags), InputError, 'KEYS_OR_TRUST')
    })
    it('splits at the first -- only', () => {
      expect(splitAtDashDash(['-q', '--', 'a', '--', 'b'])).to.deep.equal({flags: ['-q'], command: ['a', '--', 'b']})
      expect(splitAtDashDash(['-q'])).to.deep.equal({flags: ['-q'], command: []})
    })
  })

  describe('errors', () => {
    it('prints like oclif (header, code, suggestions), and as {error} in JSON (schema error)', () => {
      const err = new VerificationError('POLICY_ROLLBACK', 'rollback refused', {suggestions: ['one', 'two']})
      expect(formatError(err)).to.equal('    VerificationError: rollback refused\n    Code: POLICY_ROLLBACK\n    Try this:\n      * one\n      * two\n')
      const json = errorJson(err)
      expectOutputSchema('error', json)
      expect(json.error).to.include({code: 'POLICY_ROLLBACK', exit: 2, exitCode: 2})
    })
    it('finds the sealed-mode banner in a refusal', () => {
      expect(bannerOf(new TransientError('CACHE_TOO_STALE', 'x', {details: {banner: 'SEALED'}}))).to.equal('SEALED')
      expect(bannerOf(new Error('x'))).to.equal(undefined)
    })
  })

  describe('execCommand', () => {
    it('returns the exit status, 127 for a missing command, and 128+n for a signal', async function () {
      this.timeout(30_000)
      const out: string[] = []
      const io = {stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t)}
      expect(await execCommand([process.execPath, '-e', 'process.exit(process.env.X === "1" ? 9 : 0)'], {...process.env, X: '1'}, io)).to.equal(9)
      expect(await execCommand(['aibox-no-such-command'], process.env, io)).to.equal(127)
      expect(out.join('')).to.contain('command not found')
      // The signal is raised on this process too (ignored here so mocha survives it).
      const ignore = () => {}
      process.on('SIGUSR2', ignore)
      try {
        expect(await execCommand([process.execPath, '-e', 'process.kill(process.pid, "SIGUSR2")'], process.env, io)).to.equal(128 + 12)
      } finally {
        process.off('SIGUSR2', ignore)
      }
    })
  })
})

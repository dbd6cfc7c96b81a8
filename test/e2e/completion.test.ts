import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import {aibox} from '../helpers/cli.js'
import {tmpdir} from '../helpers/tmp.js'

describe('shell completion (aibox autocomplete)', () => {
  let cache: string
  let setup: string
  before(async () => {
    cache = tmpdir('aibox-completion-')
    const r = await aibox(['autocomplete', 'bash'], {env: {XDG_CACHE_HOME: cache}})
    expect(r.code, r.stderr).to.equal(0)
    expect(r.stdout).to.contain('printf "$(aibox autocomplete script bash)" >> ~/.bashrc')
    setup = path.join(cache, 'aibox', 'autocomplete', 'bash_setup')
  })

  it('prints the line to add to ~/.bashrc, which sources the generated setup', async () => {
    const r = await aibox(['autocomplete', 'script', 'bash'], {env: {XDG_CACHE_HOME: cache}})
    expect(r.code).to.equal(0)
    expect(r.stdout.trim()).to.equal(`AIBOX_AC_BASH_SETUP_PATH=${setup} && test -f $AIBOX_AC_BASH_SETUP_PATH && source $AIBOX_AC_BASH_SETUP_PATH; # aibox autocomplete setup`)
    expect(fs.existsSync(setup)).to.equal(true)
  })

  /** What bash completes for the words typed so far (the last one being completed). */
  function complete(...words: string[]): string[] {
    const quoted = words.map((w) => `'${w}'`).join(' ')
    const out = execFileSync('bash', ['--norc', '--noprofile', '-c', `source '${setup}'; COMP_WORDS=(aibox ${quoted}); COMP_CWORD=${words.length}; _aibox_autocomplete; printf '%s\\n' "\${COMPREPLY[@]}"`], {encoding: 'utf8'})
    return [...new Set(out.split('\n').filter(Boolean))]
  }

  it('completes our commands and topics in a real bash', () => {
    expect(complete('doc')).to.deep.equal(['doctor'])
    expect(complete('audit', '')).to.deep.equal(['export', 'log', 'report', 'verify'])
    expect(complete('bundle', 'li')).to.deep.equal(['lint'])
  })

  it('completes the flags of a command', () => {
    expect(complete('doctor', '--sk')).to.deep.equal(['--skip'])
    expect(complete('audit', 'report', '--h')).to.deep.equal(['--html'])
  })

  it('writes a zsh completion that knows the commands too', () => {
    const zsh = fs.readFileSync(path.join(cache, 'aibox', 'autocomplete', 'functions', 'zsh', '_aibox'), 'utf8')
    expect(zsh).to.contain('doctor')
    expect(zsh).to.contain('report')
  })
})

import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {NotFoundError, ValidationError} from '../../../src/errors.js'
import {classifyTierSource, findConfig, formatAge, loadStartConfig, parseConfigText, parseDurationMs} from '../../../src/config/index.js'
import {expectCodeSync} from '../../helpers/expect-error.js'
import {tmpdir} from '../../helpers/tmp.js'

function write(dir: string, name: string, text: string): string {
  const f = path.join(dir, name)
  fs.mkdirSync(path.dirname(f), {recursive: true})
  fs.writeFileSync(f, text)
  return f
}

describe('config: aibox.yaml', () => {
  describe('parseDurationMs', () => {
    it('reads Go durations plus days and weeks', () => {
      expect(parseDurationMs('7d')).to.equal(7 * 86_400_000)
      expect(parseDurationMs('1h30m')).to.equal(5_400_000)
      expect(parseDurationMs('250ms')).to.equal(250)
      expect(parseDurationMs('2w')).to.equal(14 * 86_400_000)
      expect(parseDurationMs('1.5h')).to.equal(5_400_000)
    })
    it('refuses anything else', () => {
      for (const bad of ['', '7', 'd', '7 d', '-1h', '1y', '1h 30m']) expect(parseDurationMs(bad), bad).to.equal(undefined)
    })
    it('formats ages for humans', () => {
      expect([formatAge(5_000), formatAge(90_000), formatAge(26 * 3_600_000), formatAge(9 * 86_400_000 + 3_600_000)]).to.deep.equal(['5s', '1m', '26h', '9d 1h'])
    })
  })

  describe('classifyTierSource', () => {
    it('tells files from references', () => {
      expect(classifyTierSource('aibox/policy.yaml')).to.equal('file')
      expect(classifyTierSource('./policy')).to.equal('file')
      expect(classifyTierSource('~/p.json')).to.equal('file')
      expect(classifyTierSource('oci:./layout:stable')).to.equal('reference')
      expect(classifyTierSource('registry.example.com/policies/org:stable')).to.equal('reference')
    })
  })

  describe('parseConfigText', () => {
    it('accepts the issue example', () => {
      const raw = parseConfigText(
        'policy:\n  org: registry.example.com/policies/org:stable\n  team: registry.example.com/policies/teams/alpha:stable\n  project: aibox/policy.yaml\ntrust: trust.yaml\ncache: ~/.cache/aibox\nmaxStaleness: 7d\n',
        'aibox.yaml',
      )
      expect(raw.policy.project).to.equal('aibox/policy.yaml')
    })
    it('reports every problem at once, located, with a did-you-mean for an unknown key', () => {
      const err = expectCodeSync(
        () => parseConfigText('policy:\n  org: registry.example.com/policies/org\n  team: teams/alpha.yaml\ntrsut: trust.yaml\nmaxStaleness: 7 days\n', 'aibox.yaml'),
        ValidationError,
        'CONFIG_INVALID',
      )
      const text = err.problems.map((p) => `${p.line}:${p.col} ${p.pointer} ${p.message}`).join('\n')
      expect(text).to.contain('4:1 /trsut unknown key "trsut" (did you mean "trust"?)')
      expect(text).to.contain('5:15 /maxStaleness "7 days" is not valid: expected a duration')
    })
    it('refuses a file for a signed tier, a reference without tag, and trust with keys', () => {
      const err = expectCodeSync(
        () => parseConfigText('policy:\n  org: registry.example.com/policies/org\n  team: teams/alpha.yaml\ntrust: t.yaml\nkeys: [a.pub]\n', 'cfg.yaml'),
        ValidationError,
        'CONFIG_INVALID',
      )
      const text = err.problems.map((p) => `${p.line} ${p.pointer} ${p.message}`).join('\n')
      expect(text).to.contain('2 /policy/org registry.example.com/policies/org names no tag or digest')
      expect(text).to.contain('3 /policy/team the team tier must be a signed policy reference')
      expect(text).to.contain("5 /keys give either 'trust' (a trust policy) or 'keys' (public key files), not both")
    })
    it('reads profile and profileTicket (README "Profiles") and refuses a profile that is no DNS label', async () => {
      const dir = tmpdir()
      const file = write(dir, 'aibox.yaml', 'policy:\n  org: oci:x:stable\nkeys: [a.pub]\nprofile: audit-strict\nprofileTicket: CHG-1\n')
      const c = await loadStartConfig({file, env: {AIBOX_CACHE: path.join(dir, 'cache'), HOME: dir}, noMemo: true})
      expect([c.profile, c.profileTicket]).to.deep.equal(['audit-strict', 'CHG-1'])
      const err = expectCodeSync(() => parseConfigText('policy:\n  org: oci:x:stable\nprofile: Audit_Strict\n', 'cfg.yaml'), ValidationError, 'CONFIG_INVALID')
      expect(err.problems.map((p) => `${p.line}:${p.col} ${p.pointer}`)).to.deep.equal(['3:10 /profile'])
    })
    it('takes a tenant (a DNS label) and refuses an invalid one with its location (README "Tenants")', async () => {
      const dir = tmpdir()
      const file = write(dir, 'aibox.yaml', 'policy:\n  org: oci:x:stable\ntenant: acme\n')
      expect(parseConfigText(fs.readFileSync(file), file).tenant).to.equal('acme')
      expect((await loadStartConfig({file, env: {HOME: dir}, noMemo: true})).tenant).to.equal('acme')
      const err = expectCodeSync(() => parseConfigText('policy:\n  org: oci:x:stable\ntenant: Acme_Corp\n', 'cfg.yaml'), ValidationError, 'CONFIG_INVALID')
      expect(err.problems.map((p) => `${p.line} ${p.pointer}`)).to.include('3 /tenant')
    })
    it('refuses duplicate keys (strict parser)', () => {
      const err = expectCodeSync(() => parseConfigText('policy:\n  org: oci:x:stable\n  org: oci:y:stable\n', 'cfg.yaml'), ValidationError, 'CONFIG_INVALID')
      expect(err.message).to.match(/duplicate/i)
    })
  })

  describe('findConfig', () => {
    it('looks at --config, then AIBOX_CONFIG, then ./aibox.yaml, then the user default', () => {
      const dir = tmpdir()
      const home = path.join(dir, 'home')
      const cwd = path.join(dir, 'work')
      fs.mkdirSync(cwd, {recursive: true})
      const user = write(home, '.config/aibox/aibox.yaml', 'policy: {org: "oci:x:stable"}\n')
      const env = {HOME: home}
      expect(findConfig({env, cwd})).to.deep.equal({file: user, foundBy: 'user'})
      const local = write(cwd, 'aibox.yaml', 'x')
      expect(findConfig({env, cwd})).to.deep.equal({file: local, foundBy: 'cwd'})
      const viaEnv = write(dir, 'env.yaml', 'x')
      expect(findConfig({env: {...env, AIBOX_CONFIG: viaEnv}, cwd})).to.deep.equal({file: viaEnv, foundBy: 'env'})
      const flag = write(dir, 'flag.yaml', 'x')
      expect(findConfig({file: flag, env: {...env, AIBOX_CONFIG: viaEnv}, cwd})).to.deep.equal({file: flag, foundBy: 'flag'})
    })
    it('says where it looked when there is none (exit 3)', () => {
      const dir = tmpdir()
      const err = expectCodeSync(() => findConfig({env: {HOME: dir}, cwd: dir}), NotFoundError, 'CONFIG_NOT_FOUND')
      expect(err.message).to.contain(path.join(dir, 'aibox.yaml')).and.contain(path.join(dir, '.config', 'aibox', 'aibox.yaml'))
    })
  })

  describe('loadStartConfig', () => {
    it('resolves paths against the file, applies AIBOX_CACHE, and memoises the validated file by digest', async () => {
      const dir = tmpdir()
      const file = write(dir, 'proj/aibox.yaml', 'policy:\n  org: oci:../layouts/org:stable\n  project: aibox/policy.yaml\ntrust: ../trust.yaml\nmaxStaleness: 36h\nregistry: {timeout: 2s}\n')
      const env = {HOME: dir, AIBOX_CACHE: path.join(dir, 'cache')}
      const c = await loadStartConfig({file, env, cwd: dir})
      expect(c.tiers).to.deep.equal([
        {kind: 'reference', tier: 'org', ref: `oci:${path.join(dir, 'layouts', 'org')}:stable`, written: 'oci:../layouts/org:stable'},
        {kind: 'file', tier: 'project', path: path.join(dir, 'proj', 'aibox', 'policy.yaml'), written: 'aibox/policy.yaml'},
      ])
      expect(c.trust).to.equal(path.join(dir, 'trust.yaml'))
      expect(c.cache).to.equal(path.join(dir, 'cache'))
      expect([c.maxStalenessMs, c.registry.timeoutMs]).to.deep.equal([36 * 3_600_000, 2000])
      const memo = JSON.parse(fs.readFileSync(path.join(dir, 'cache', 'config-memo.json'), 'utf8'))
      expect(Object.keys(memo.entries)).to.deep.equal([file])
      // An edited file is validated again (the memo is keyed by the bytes' digest).
      fs.writeFileSync(file, 'policy:\n  org: oci:../layouts/org:stable\nmaxStaleness: soon\n')
      // Checked by code and exit: the validator is loaded with import(), which under the test runner
      // (CommonJS) is a second instance of the error classes.
      const err = await loadStartConfig({file, env, cwd: dir}).then(
        () => undefined,
        (e: {code?: string; exit?: number; message?: string}) => e,
      )
      expect(err?.code).to.equal('CONFIG_INVALID')
      expect(err?.exit).to.equal(1)
      expect(err?.message).to.contain('/maxStaleness')
    })
  })
})

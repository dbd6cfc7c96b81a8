import {expect} from 'chai'

import {diffBundles} from '../../../src/bundle/diff.js'
import {loadBundle, loadBundleText} from '../../../src/bundle/load.js'
import {InputError} from '../../../src/errors.js'
import {fixture} from './helpers.js'
import {expectCodeSync} from '../../helpers/expect-error.js'

const v1 = `apiVersion: aibox.dev/v1
kind: PolicyBundle
metadata: {name: org, version: 1.0.0, tier: org}
policy:
  version: 1
  network:
    allow:
      - {id: git, hosts: [git.internal], ports: [443, 22]}
  filesystem: {deny: [/home]}
  resources: {memory: 8Gi}
  credentials: {git_token_ttl: 4h}
rules:
  - {id: deny-etc, match: {toolName: "*", args: {path: {startsWith: /etc/}}}, verdict: deny, reason: system}
  - {id: reads, match: {toolName: "get_*"}, verdict: allow}
defaultVerdict: deny
`

function bundle(text: string, file: string) {
  return loadBundleText(text, file)
}

describe('diff', () => {
  describe('#diffBundles', () => {
    it('reports no change for the same content written differently', () => {
      const r = diffBundles(loadBundle(fixture('org', 'baseline.yaml')), loadBundle(fixture('org', 'baseline.json')))
      expect(r.identical).to.equal(true)
      expect(r.looser).to.deep.equal([])
      expect(r.tighter).to.deep.equal([])
    })
    it('separates what got looser from what got tighter', () => {
      const v2 = v1
        .replace('version: 1.0.0', 'version: 1.1.0')
        .replace('[git.internal]', '[git.internal, pastebin.com]')
        .replace('ports: [443, 22]', 'ports: [443]')
        .replace('memory: 8Gi', 'memory: 4Gi')
        .replace('git_token_ttl: 4h', 'git_token_ttl: 8h')
        .replace('deny: [/home]', 'deny: [/home, /root]')
      const r = diffBundles(bundle(v1, 'v1.yaml'), bundle(v2, 'v2.yaml'))
      expect(r.identical).to.equal(false)
      expect(r.looser.map((i) => `${i.field}: ${i.detail}`)).to.deep.equal(['network.allow[git].hosts: adds "pastebin.com"', 'credentials.git_token_ttl: lengthens git_token_ttl from 4h to 8h'])
      expect(r.tighter.map((i) => `${i.field}: ${i.detail}`)).to.deep.equal(['network.allow[git].ports: removes port 22', 'filesystem.deny: adds "/root"', 'resources.memory: lowers memory from 8Gi to 4Gi'])
      expect(r.new.version).to.equal('1.1.0')
    })
    it('treats a limit the new version drops as looser', () => {
      const r = diffBundles(bundle(v1, 'v1.yaml'), bundle(v1.replace('  credentials: {git_token_ttl: 4h}\n', ''), 'v2.yaml'))
      expect(r.looser.map((i) => i.code)).to.deep.equal(['TTL_REMOVED'])
    })
    it('reports rule changes in both directions', () => {
      const v2 = v1.replace('{id: deny-etc, match: {toolName: "*", args: {path: {startsWith: /etc/}}}, verdict: deny, reason: system}', '{id: deny-secrets, match: {toolName: "get_*", args: {path: {startsWith: /secrets/}}}, verdict: deny, reason: secret}')
      const r = diffBundles(bundle(v1, 'v1.yaml'), bundle(v2, 'v2.yaml'))
      expect(r.looser.map((i) => i.detail)).to.deep.equal(['allows get_…(path="/etc/…") (by rule "reads"; was denied by rule "deny-etc")'])
      expect(r.tighter.map((i) => i.detail)).to.deep.equal(['denies get_…(path="/secrets/…") (by rule "deny-secrets"; was allowed by rule "reads")'])
    })
    it('uses the check\'s definition of looser', () => {
      // the same change check refuses for a team is what diff calls looser
      const r = diffBundles(loadBundle(fixture('org', 'baseline.yaml')), loadBundle(fixture('loosen', 'teams', 'alpha', 'policy.yaml')))
      expect(r.looser.map((i) => i.detail)).to.include('adds "pastebin.com"')
    })
    it('refuses HELM PolicyBundles (CEL cannot be compared)', () => {
      expectCodeSync(() => diffBundles(loadBundle(fixture('helm', 'production-policy.yaml')), loadBundle(fixture('helm', 'staging-policy.yaml'))), InputError, 'UNSUPPORTED_KIND')
    })
  })
})

import {expect} from 'chai'

import {composeBundles, composedJson} from '../../../src/bundle/compose.js'
import {contentDigest} from '../../../src/bundle/canonical.js'
import {loadBundle, loadBundleText} from '../../../src/bundle/load.js'
import {InputError} from '../../../src/errors.js'
import {fixture} from './helpers.js'
import {expectCodeSync} from '../../helpers/expect-error.js'

const prod = () => loadBundle(fixture('helm', 'production-policy.yaml'))
const staging = () => loadBundle(fixture('helm', 'staging-policy.yaml'))
const unicode = () => loadBundle(fixture('helm', 'unicode-ids.yaml'))

describe('compose', () => {
  describe('#composeBundles', () => {
    describe('when given HELM PolicyBundles (seed 001)', () => {
      it('merges by id, first bundle wins, and reports the conflict', () => {
        const r = composeBundles([prod(), staging()])
        expect(r.rules.map((x) => [x.id, x.from.split('/').pop()])).to.deep.equal([
          ['budget-gate', 'production-policy.yaml'],
          ['escalate-deploys', 'staging-policy.yaml'],
          ['rate-limit', 'production-policy.yaml'],
          ['require-approval-for-write', 'production-policy.yaml'],
        ])
        expect(r.conflicts).to.deep.equal([{id: 'budget-gate', field: 'rule', kept: fixture('helm', 'production-policy.yaml'), dropped: fixture('helm', 'staging-policy.yaml')}])
        expect((r.rules[0] as {expression?: string}).expression).to.match(/> 10\.0/)
      })
      it('lets the other order win the other way', () => {
        const r = composeBundles([staging(), prod()])
        expect(r.conflicts[0].kept).to.equal(fixture('helm', 'staging-policy.yaml'))
        expect((r.rules.find((x) => x.id === 'budget-gate') as {expression?: string}).expression).to.match(/> 1\.0/)
      })
      it('sorts ids by code point, not UTF-16 code unit', () => {
        const ids = composeBundles([unicode()]).rules.map((x) => x.id)
        expect(ids).to.deep.equal(['a-plain', 'ﬁ-ligature', '😀-smile'])
        expect([...ids].sort()).to.deep.equal(['a-plain', '😀-smile', 'ﬁ-ligature']) // what a naive sort gives
      })
      it('gives a deterministic digest over the composed document', () => {
        const a = composeBundles([prod(), staging()])
        const b = composeBundles([prod(), staging()])
        expect(a.digest).to.equal(b.digest)
        expect(a.digest).to.equal(contentDigest(a.document))
        const written = loadBundleText(composedJson(a), 'composed.json')
        expect(written.kind).to.equal('helm-bundle')
        expect(written.digest).to.equal(a.digest)
      })
      it('does not count an identical rule as a conflict', () => {
        expect(composeBundles([prod(), prod()]).conflicts).to.deep.equal([])
      })
    })

    describe('when given aibox bundles', () => {
      const base = () => loadBundle(fixture('compose', 'base-rules.yaml'))
      const extra = () => loadBundle(fixture('compose', 'extra-rules.yaml'))
      it('composes rules, takes defaultVerdict from the first bundle and reports the conflicts', () => {
        const r = composeBundles([base(), extra()], {name: 'composed', version: '3.0.0'})
        expect(r.rules.map((x) => x.id)).to.deep.equal(['allow-list', 'allow-reads', 'deny-destructive', 'deny-system-files'])
        expect(r.conflicts.map((c) => [c.id, c.field])).to.deep.equal([
          ['allow-reads', 'rule'],
          ['defaultVerdict', 'defaultVerdict'],
        ])
        expect(r.document.defaultVerdict).to.equal('deny')
        expect((r.document.metadata as {name: string; version: string}).name).to.equal('composed')
        expect(loadBundleText(composedJson(r), 'c.json').digest).to.equal(r.digest)
      })
      it('warns where sorting by id changes a first-match decision', () => {
        const r = composeBundles([base(), extra()])
        expect(r.warnings).to.include('sorting by id changes get_…(path="/etc/…") from deny (rule "deny-system-files") to allow (rule "allow-reads")')
      })
    })

    describe('when the inputs cannot be composed', () => {
      it('refuses a mix of aibox and HELM bundles', () => {
        expectCodeSync(() => composeBundles([prod(), loadBundle(fixture('compose', 'base-rules.yaml'))]), InputError, 'MIXED_KINDS')
      })
      it('refuses policy files without rule ids', () => {
        expectCodeSync(() => composeBundles([loadBundle(fixture('bare', 'org-policy.yaml'))]), InputError, 'UNSUPPORTED_KIND')
      })
      it('refuses nothing', () => {
        expectCodeSync(() => composeBundles([]), InputError, 'NOTHING_TO_COMPOSE')
      })
    })
  })
})

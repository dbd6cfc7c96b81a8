import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {AUDIT_EVENTS, AUDIT_EVENT_NAMES, appendAuditEvents} from '../../../src/audit/index.js'
import {ROOT} from '../../helpers/cli.js'
import {tmpdir} from '../../helpers/tmp.js'
import {schemaAjv} from '../../helpers/schemas.js'
import {PROFILE_SAMPLE_EVENTS, SAMPLE_EVENTS, TENANT_SAMPLE_EVENTS, readLines, steppingClock} from '../../helpers/audit-fixtures.js'

const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'schemas', 'audit-entry.schema.json'), 'utf8'))

function validator() {
  return schemaAjv().getSchema('schemas/audit-entry.schema.json')!
}

describe('schemas/audit-entry.schema.json', () => {
  it('validates every line of a log holding every event kind (and a repair)', async () => {
    const log = path.join(tmpdir(), 'audit.jsonl')
    await appendAuditEvents([...SAMPLE_EVENTS, ...PROFILE_SAMPLE_EVENTS, ...TENANT_SAMPLE_EVENTS], {log, now: steppingClock(), actor: 'alice@ws1'})
    fs.appendFileSync(log, '{"seq":')
    await appendAuditEvents([SAMPLE_EVENTS[0]!], {log})
    const validate = validator()
    const lines = readLines(log)
    const events = new Set<string>()
    for (const line of lines) {
      const entry = JSON.parse(line)
      events.add(entry.event)
      expect(validate(entry), `${line}\n${JSON.stringify(validate.errors)}`).to.equal(true)
    }
    expect([...events].sort()).to.deep.equal([...AUDIT_EVENT_NAMES].sort())
  })

  it('requires, per event, exactly the fields AUDIT_EVENTS requires', () => {
    const byEvent = new Map<string, string[]>()
    for (const rule of schema.allOf as Array<{if: {properties: {event: {const: string}}}; then: {required: string[]}}>) {
      byEvent.set(rule.if.properties.event.const, [...rule.then.required].sort())
    }
    for (const name of AUDIT_EVENT_NAMES) {
      const required = Object.entries(AUDIT_EVENTS[name].fields)
        .filter(([, s]) => s.required)
        .map(([k]) => k)
        .sort()
      expect(byEvent.get(name) ?? [], name).to.deep.equal(required)
    }
  })

  it('declares every event field AUDIT_EVENTS knows', () => {
    for (const name of AUDIT_EVENT_NAMES) {
      for (const field of Object.keys(AUDIT_EVENTS[name].fields)) expect(schema.properties, `${name}.${field}`).to.have.property(field)
    }
  })

  it('rejects an entry with a missing required field or a bad digest', () => {
    const validate = validator()
    const good = {seq: 1, time: '2025-01-01T00:00:00.000Z', event: 'policy.signed', actor: 'a', ref: 'r', digest: null, version: null, prev: `sha256:${'0'.repeat(64)}`, keyId: 'k'}
    expect(validate(good)).to.equal(true)
    const {keyId: _k, ...noKey} = good
    expect(validate(noKey)).to.equal(false)
    expect(validate({...good, digest: 'sha256:xyz'})).to.equal(false)
    expect(validate({...good, seq: 0})).to.equal(false)
  })
})

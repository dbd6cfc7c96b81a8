/**
 * `make stress`: the worst case of the referrers tag fallback. STRESS_SIGNERS (default 30)
 * concurrent `aibox sign REF` of one digest, with the five test keys in turn, so every one of
 * them rewrites the same `sha256-<hex>` index on distribution 2.8 (no referrers API). Counts the
 * signatures that survive; none may be lost. Then the concurrent pushes of test/e2e/load.test.ts
 * with STRESS_PUSHES (default 40).
 */
import path from 'node:path'

import {expect} from 'chai'

import {aibox as run, type CliResult} from '../helpers/cli.js'
import {KEYS_DIR, ORG_BASELINE} from '../helpers/policy-fixtures.js'
import {type RegistryHandle, startRegistry} from '../helpers/registry.js'
import {tmpdir} from '../helpers/tmp.js'

const SIGNERS = Number(process.env.STRESS_SIGNERS ?? 30)
const KEYS = ['alice', 'bob', 'carol', 'ci', 'mallory']

describe(`stress: ${SIGNERS} concurrent signatures of one digest (referrers tag fallback)`, function () {
  this.timeout(Math.max(600_000, SIGNERS * 30_000))
  let reg: RegistryHandle
  const work = tmpdir('aibox-stress-sign-')
  const aibox = (args: string[]): Promise<CliResult> =>
    run(args, {env: {COSIGN_PASSWORD: 'test', AIBOX_AUDIT_LOG: path.join(work, 'audit.jsonl'), CI: '1'}, timeoutMs: 600_000})

  before(async () => {
    reg = await startRegistry()
  })
  after(async () => {
    await reg?.stop()
  })

  it('keeps every signature', async () => {
    const pushed = await aibox(['push', ORG_BASELINE, `${reg.host}/policies/stress`, '--key', path.join(KEYS_DIR, 'alice.key'), '--json'])
    expect(pushed.code, pushed.stderr).to.equal(0)
    const ref = `${reg.host}/policies/stress@${pushed.json.digest}`
    const results = await Promise.all(Array.from({length: SIGNERS}, (_, i) => aibox(['sign', ref, '--key', path.join(KEYS_DIR, `${KEYS[i % KEYS.length]}.key`), '--json'])))
    const codes = results.map((r) => r.code)
    console.log(`      ${SIGNERS} concurrent signs: ${codes.filter((c) => c === 0).length} ok, ${codes.filter((c) => c === 4).length} transient, ${codes.filter((c) => c !== 0 && c !== 4).length} other`)
    expect(codes.filter((c) => c !== 0 && c !== 4), results.map((r) => r.stderr).join('\n')).to.deep.equal([])
    const signed = results.filter((r) => r.code === 0).map((r) => r.json.signature.digest as string)
    const d = await aibox(['discover', ref, '--json'])
    expect(d.code, d.stderr).to.equal(0)
    const listed = new Set((d.json.referrers as Array<{id: string}>).map((n) => n.id))
    const lost = signed.filter((s) => !listed.has(s))
    console.log(`      signatures listed: ${listed.size}, lost: ${lost.length} of ${signed.length}`)
    expect(lost).to.deep.equal([])
  })
})

process.env.LOAD_PUSHES ??= process.env.STRESS_PUSHES ?? '40'
await import('../e2e/load.test.js')

/**
 * Data-driven conformance against shared/vectors/cosign: parses the tables of its README.md
 * (and the per-folder READMEs of bundles/) and runs every row, with the stated expectation,
 * through our library. A row this test cannot interpret, or a vector file no row exercised,
 * fails the suite: new vectors cannot be silently ignored.
 */
import {expect} from 'chai'
import {createHash, createPublicKey} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {AiboxError} from '../../../src/errors.js'
import {
  type VerificationKey,
  bundleCertificate,
  loadPrivateKey,
  loadPublicKey,
  parseBundle,
  preAuthEncoding,
  publicKeyInfo,
  simpleSigningClaim,
  verifyRekorSet,
  verifySignature,
} from '../../../src/sign/index.js'
import {VECTORS} from '../../helpers/cli.js'
import {rejection} from '../../helpers/expect-error.js'

const DIR = path.join(VECTORS, 'cosign')

interface Row {
  cells: string[]
  /** The first backticked token of the first cell (a file or directory). */
  item: string
  expected: string
}

/** Markdown tables per `## name/` section. */
function parseReadme(text: string): Map<string, {header: string[]; rows: Row[]}> {
  const sections = new Map<string, {header: string[]; rows: Row[]}>()
  for (const part of text.split(/^## /m).slice(1)) {
    const name = part.split(/[:\s]/)[0]
    const lines = part.split('\n').filter((l) => l.startsWith('|'))
    if (lines.length < 3) continue
    const split = (l: string) => l.slice(1, l.lastIndexOf('|')).split('|').map((c) => c.trim())
    const header = split(lines[0])
    const rows = lines.slice(2).map((l) => {
      const cells = split(l)
      const item = /`([^`]+)`/.exec(cells[0])?.[1] ?? cells[0]
      return {cells, item, expected: cells[header.findIndex((h) => /expected/i.test(h))] ?? cells[cells.length - 1]}
    })
    sections.set(name, {header, rows})
  }
  return sections
}

const readme = parseReadme(fs.readFileSync(path.join(DIR, 'README.md'), 'utf8'))
const used = new Set<string>()
const handled = new Set<Row>()

function file(rel: string): string {
  const p = path.join(DIR, rel)
  expect(fs.existsSync(p), `vector file ${rel} named by the README exists`).to.equal(true)
  used.add(path.relative(DIR, p))
  return p
}
function read(rel: string): Buffer {
  return fs.readFileSync(file(rel))
}
function pub(rel: string): VerificationKey {
  return {...loadPublicKey(file(rel)), name: path.basename(rel)}
}
function section(name: string) {
  const s = readme.get(name)
  expect(s, `README section ${name}`).to.not.equal(undefined)
  return s!
}
/** The first VALID/INVALID word of a cell. */
function outcome(text: string): 'VALID' | 'INVALID' | undefined {
  return /\b(INVALID|VALID)\b/.exec(text)?.[1] as 'VALID' | 'INVALID' | undefined
}
/** `VALID with \`a\`` / `INVALID with \`b\` and with \`c\`` phrases → key file → outcome. */
function keyOutcomes(text: string): Array<{key: string; outcome: 'VALID' | 'INVALID'}> {
  const out: Array<{key: string; outcome: 'VALID' | 'INVALID'}> = []
  for (const m of text.matchAll(/\b(VALID|INVALID) with ((?:`[^`]+`(?:,? (?:and )?(?:with )?)?)+)/g)) {
    for (const k of m[2].matchAll(/`([^`]+)`/g)) out.push({key: k[1], outcome: m[1] as 'VALID' | 'INVALID'})
  }
  return out
}
describe('cosign vectors (shared/vectors/cosign/README.md)', () => {
  describe('keys/', () => {
    const {header, rows} = section('keys/')
    const pwCol = header.findIndex((h) => /password/i.test(h))
    for (const row of rows) {
      const expected = outcome(row.expected)
      const pwCell = row.cells[pwCol]
      if (row.item.endsWith('.key')) {
        const pw = /^`""`/.test(pwCell) ? '' : /`([^`]*)`/.exec(pwCell)?.[1]
        it(`${row.cells[0]} with password ${JSON.stringify(pw)}: ${expected}`, async function () {
          this.timeout(20_000)
          expect(pw, 'password column').to.not.equal(undefined)
          expect(expected, 'expected column starts with VALID/INVALID').to.not.equal(undefined)
          const keyFile = file(`keys/${row.item}`)
          if (expected === 'VALID') {
            const key = await loadPrivateKey(keyFile, {password: pw!})
            if (/RSA-4096/.test(row.expected)) expect([key.public.algorithm, key.public.bits]).to.deep.equal(['rsa', 4096])
            if (/EC P-256/.test(row.expected)) expect(key.public.algorithm).to.equal('ecdsa-p256')
            // The matching public key: named in the row, or the sibling .pub / .pub.DERIVED.pem.
            const stem = row.item.replace(/\.key$/, '')
            const named = /`([^`]+\.pub[^`]*)`/.exec(row.expected)?.[1]
            const sibling = [named, `${stem}.pub`, `${stem}.pub.DERIVED.pem`].find((p) => p && fs.existsSync(path.join(DIR, 'keys', p)))
            expect(sibling, `public key for ${row.item}`).to.not.equal(undefined)
            expect(key.public.spki.equals(pub(`keys/${sibling}`).spki)).to.equal(true)
          } else {
            const err = await rejection(loadPrivateKey(keyFile, {password: pw!}))
            if (/authentication/.test(row.expected)) expect(err.code).to.equal('KEY_DECRYPT_FAILED')
            else if (/SEC1/.test(row.expected)) {
              expect(err.code).to.equal('KEY_INVALID')
              expect(err.message).to.match(/SEC1/)
            } else expect.fail(`no rule for the INVALID reason: ${row.expected}`)
          }
          handled.add(row)
        })
      } else if (/\.pub|\.pem$/.test(row.item)) {
        it(`${row.item}: parses as a public key`, () => {
          expect(pub(`keys/${row.item}`).algorithm).to.be.oneOf(['ecdsa-p256', 'rsa'])
          handled.add(row)
        })
      }
    }
  })

  describe('simplesigning/', () => {
    const {rows} = section('simplesigning/')
    const trusted = rows.filter((r) => /trusted public keys/.test(r.expected)).flatMap((r) => [...r.cells[0].matchAll(/`([^`]+\.pub)`/g)].map((m) => m[1]))
    for (const row of rows) {
      if (row.item.endsWith('.pub')) {
        it(`${row.cells[0]}: public key(s) parse`, () => {
          for (const m of row.cells[0].matchAll(/`([^`]+\.pub)`/g)) pub(`simplesigning/${m[1]}`)
          handled.add(row)
        })
        continue
      }
      const dir = row.item.split('/')[0]
      it(`${dir}/: ${row.expected.slice(0, 90)}…`, () => {
        const pairs = keyOutcomes(row.expected)
        const own = (f: string) => fs.existsSync(path.join(DIR, 'simplesigning', dir, f))
        // Which signature directory and which manifest this row is about.
        const sigDir = /the `([^`]+)\/` signature/.exec(row.expected)?.[1] ?? dir
        const against = /against `([^`]*manifest\.json)`/.exec(row.expected)?.[1]
        const manifest = against ?? (own('manifest.json') ? `${dir}/manifest.json` : undefined)
        const sigFiles = fs.readdirSync(path.join(DIR, 'simplesigning', sigDir)).filter((f) => /^signature-\d+$|\.signature$/.test(f))
        expect(sigFiles.length, `signature files in ${sigDir}/`).to.be.greaterThan(0)
        // No key named: the keys that verify the referenced signature directory's own row (the signature "itself verifies").
        const sigRow = rows.find((r) => r.item.split('/')[0] === sigDir && r !== row)
        const inherited = sigRow ? keyOutcomes(sigRow.expected).filter((p) => p.outcome === 'VALID').map((p) => ({key: p.key, outcome: outcome(row.expected)!})) : []
        const keys = pairs.length > 0 ? pairs : inherited.length > 0 ? inherited : trusted.map((k) => ({key: k, outcome: outcome(row.expected)!}))
        expect(keys.length).to.be.greaterThan(0)
        for (const {key, outcome: want} of keys) {
          const k = pub(`simplesigning/${key}`)
          const payload = read(`simplesigning/${sigDir}/payload.json`)
          const b64 = read(`simplesigning/${sigDir}/signature.b64`)
          const artifact = manifest ? read(`simplesigning/${manifest}`) : payload
          for (const sf of sigFiles) {
            const run = () => verifySignature(read(`simplesigning/${sigDir}/${sf}`), {keys: [k], artifact, artifactName: manifest, source: sf})
            if (want === 'VALID') expect(run().binding.kind).to.equal(manifest ? 'claim' : 'payload')
            else {
              let code: string | undefined
              try {
                run()
              } catch (err) {
                code = (err as AiboxError).code
              }
              expect(code, `${sf} with ${key}`).to.be.oneOf(/claim check fails|≠/.test(row.expected) ? ['CLAIM_MISMATCH'] : ['SIGNATURE_INVALID'])
            }
          }
          // The extracted payload + signature annotation: a raw signature over the payload bytes.
          const raw = () => verifySignature(b64, {keys: [k], artifact: payload})
          if (want === 'VALID' || /itself verifies/.test(row.expected)) expect(raw().format).to.equal('raw')
          else expect(raw).to.throw(AiboxError, /does not verify/)
          if (want === 'VALID' && manifest) {
            expect(simpleSigningClaim(payload, 'payload')).to.equal(`sha256:${createHash('sha256').update(artifact).digest('hex')}`)
          }
        }
        // The Rekor SET of the bundle annotation, when the row states one.
        const set = /SET in `([^`]+)` VALID against `([^`]+)`/.exec(row.expected)
        if (set) {
          const r = verifyRekorSet(read(`simplesigning/${dir}/${set[1]}`).toString(), [pub(`simplesigning/${set[2]}`)], {payload: read(`simplesigning/${dir}/payload.json`)})
          expect(r.logIndex).to.be.greaterThan(0)
          const tampered = JSON.parse(read(`simplesigning/${dir}/${set[1]}`).toString())
          tampered.Payload.integratedTime += 1
          expect(() => verifyRekorSet(tampered, [pub(`simplesigning/${set[2]}`)])).to.throw(AiboxError, /does not verify/)
        }
        handled.add(row)
      })
    }
  })

  describe('dsse/', () => {
    const {rows} = section('dsse/')
    const keyFiles = fs.readdirSync(path.join(DIR, 'dsse')).filter((f) => f.endsWith('.pub'))
    for (const row of rows) {
      const expected = outcome(row.expected)
      it(`${row.item}: ${row.expected.slice(0, 80)}…`, () => {
        if (row.item.endsWith('envelope.json')) {
          const dir = path.dirname(row.item)
          const base = dir.replace(/-TAMPERED$/, '')
          // The key: in the envelope's directory (or the untampered one's), else the .pub whose stem prefixes the directory.
          const keyRel =
            [`${dir}/pub.DERIVED.pem`, `${base}/pub.DERIVED.pem`].find((p) => fs.existsSync(path.join(DIR, 'dsse', p))) ??
            keyFiles.find((k) => dir.startsWith(k.replace(/\.pub$/, '')))
          expect(keyRel, `key for ${row.item}`).to.not.equal(undefined)
          const key = pub(`dsse/${keyRel}`)
          const artifactRel = fs.readdirSync(path.join(DIR, 'dsse')).find((f) => f.endsWith('-artifact.txt') && dir.startsWith(f.replace(/-artifact\.txt$/, '')))
          const envelope = read(`dsse/${row.item}`)
          const opts = artifactRel ? {keys: [key], artifact: read(`dsse/${artifactRel}`), artifactName: artifactRel} : {keys: [key]}
          const pae = /PAE = `([^`]+)`/.exec(row.expected)?.[1]
          if (pae) {
            const env = JSON.parse(envelope.toString())
            expect(preAuthEncoding(env.payloadType, Buffer.from(env.payload, 'base64')).toString()).to.equal(pae)
          }
          if (expected === 'VALID') {
            const r = verifySignature(envelope, opts)
            expect(r.format).to.equal('dsse')
            if (artifactRel) expect(r.binding.kind).to.equal('subject')
            const pt = /predicateType `([^`]+)`/.exec(row.expected)?.[1]
            if (pt) expect(r.predicateType).to.equal(pt)
            if (/Statement v0\.1/.test(row.expected)) expect(r.statement?._type).to.equal('https://in-toto.io/Statement/v0.1')
          } else if (/signature is OK but no subject matches/.test(row.expected)) {
            expect(() => verifySignature(envelope, opts)).to.throw(AiboxError, /do not include/).with.property('code', 'SUBJECT_MISMATCH')
            expect(verifySignature(envelope, {keys: [key]}).binding.kind).to.equal('none')
          } else {
            expect(() => verifySignature(envelope, opts)).to.throw(AiboxError).with.property('code', 'SIGNATURE_INVALID')
          }
        } else if (row.item.endsWith('key-params.json')) {
          // X, Y (and d) in decimal → the same public key as pub.DERIVED.pem.
          const params = JSON.parse(read(`dsse/${row.item}`).toString())
          const hex = (v: string) => BigInt(v).toString(16).padStart(64, '0')
          const get = (re: RegExp) => String(Object.entries(params).find(([k]) => re.test(k))?.[1])
          const jwk = {kty: 'EC', crv: 'P-256', x: Buffer.from(hex(get(/^x$/i)), 'hex').toString('base64url'), y: Buffer.from(hex(get(/^y$/i)), 'hex').toString('base64url')}
          const fromParams = publicKeyInfo(createPublicKey({key: jwk, format: 'jwk'}))
          expect(fromParams.spki.equals(pub(`dsse/${path.dirname(row.item)}/pub.DERIVED.pem`).spki)).to.equal(true)
        } else if (/\.pub$|\.pem$/.test(row.item)) {
          expect(pub(`dsse/${row.item}`).algorithm).to.equal('ecdsa-p256')
        } else if (row.item.endsWith('.txt')) {
          const bytes = /bytes `([^`]+)`/.exec(row.cells.join(' '))?.[1]
          expect(bytes, 'stated artifact bytes').to.not.equal(undefined)
          expect(read(`dsse/${row.item}`).toString()).to.equal(bytes)
        } else expect.fail(`no rule for dsse row ${row.item}`)
        handled.add(row)
      })
    }
  })

  describe('bundles/', () => {
    const {rows} = section('bundles/')
    for (const row of rows) {
      const expected = outcome(row.expected)
      it(`${row.item}: ${row.expected.slice(0, 80)}…`, () => {
        if (row.item.endsWith('.txt')) {
          const prefix = /sha256 `([0-9a-f]+)…`/.exec(row.cells[1] + row.expected)?.[1]
          expect(prefix, 'stated digest prefix').to.not.equal(undefined)
          expect(createHash('sha256').update(read(`bundles/${row.item}`)).digest('hex')).to.match(new RegExp(`^${prefix}`))
          handled.add(row)
          return
        }
        const dir = row.item.replace(/\/.*$/, '')
        const bundleRel = fs.readdirSync(path.join(DIR, 'bundles', dir)).find((f) => f.endsWith('.sigstore.json'))!
        const bundleBytes = read(`bundles/${dir}/${bundleRel}`)
        // The per-folder README (sigstore-conformance convention: a `_fail` suffix means the bundle must not verify).
        const folderReadme = path.join(DIR, 'bundles', dir, 'README')
        if (fs.existsSync(folderReadme)) {
          const note = read(`bundles/${dir}/README`).toString()
          expect(note.length).to.be.greaterThan(0)
          expect(dir.endsWith('_fail'), `'_fail' suffix of ${dir} agrees with the table`).to.equal(expected === 'INVALID')
        }
        const hasKey = fs.existsSync(path.join(DIR, 'bundles', dir, 'key.pub'))
        if (fs.existsSync(path.join(DIR, 'bundles', dir, 'trusted_root.json'))) {
          // Offline key verification never uses a trusted root (tlog and timestamps are not checked); it must still be one.
          expect(JSON.parse(read(`bundles/${dir}/trusted_root.json`).toString()).mediaType).to.match(/^application\/vnd\.dev\.sigstore\.trustedroot/)
        }
        if (/key fails to parse/.test(row.expected)) {
          expect(() => pub(`bundles/${dir}/key.pub`)).to.throw(AiboxError).with.property('code', 'KEY_INVALID')
          handled.add(row)
          return
        }
        // Key: the folder's key.pub, else the key of the bundle's own leaf certificate (pinned directly).
        const {bundle, version} = parseBundle(bundleBytes.toString(), bundleRel)
        const key = hasKey ? pub(`bundles/${dir}/key.pub`) : publicKeyInfo(bundleCertificate(bundle)!.publicKey)
        if (/`publicKey\.hint` = base64\(sha256\(SPKI DER of key\.pub\)\)/.test(row.expected)) {
          const vm = bundle.verificationMaterial.content
          expect(vm.$case === 'publicKey' && vm.publicKey.hint).to.equal(key.hint)
        }
        if (/v0\.3/.test(row.expected)) expect(version).to.equal('0.3')
        // The artifact: the row's `over \`x\``, else the file whose row says it is the artifact "for the <prefix> bundles".
        const artifactRow = rows.find((r) => new RegExp(`artifact for the (\\w+) bundles`).test(r.expected) && dir.startsWith(/artifact for the (\w+) bundles/.exec(r.expected)![1]))
        const artifactRel = /over `([^`]+)`/.exec(row.expected)?.[1] ?? artifactRow?.item
        const artifact = artifactRel ? read(`bundles/${artifactRel}`) : undefined
        const run = () => verifySignature(bundleBytes, {keys: [key], ...(artifact ? {artifact, artifactName: 'a.txt'} : {})})
        if (expected === 'VALID') {
          const r = run()
          expect(r.format).to.equal('sigstore-bundle')
          if (artifact && r.bundle?.content === 'message-signature') expect(r.binding.kind).to.equal('message-digest')
          const pt = /predicateType `([^`]+)`/.exec(row.expected)?.[1]
          if (pt) expect(r.predicateType).to.equal(pt)
          const subject = /subject `[^`]*@sha256:([0-9a-f]+)…`/.exec(row.expected)?.[1]
          if (subject) expect(r.statement?.subject.some((s) => s.digest.sha256?.startsWith(subject))).to.equal(true)
          if (/tlog|Rekor/.test(row.expected)) expect(r.bundle!.ignored.tlogEntries).to.be.greaterThan(0)
        } else {
          expect(run).to.throw(AiboxError).with.property('code', 'SIGNATURE_INVALID')
        }
        handled.add(row)
      })
    }
  })

  describe('signblob/', () => {
    const {rows} = section('signblob/')
    for (const row of rows) {
      it(`${row.cells[0]}: ${row.expected.slice(0, 60)}…`, () => {
        const dir = path.dirname(row.item)
        const items = [...row.cells[0].matchAll(/`([^`]+)`/g)].map((m) => m[1])
        if (items.some((i) => i.endsWith('signature.b64'))) {
          const sig = read(`signblob/${items.find((i) => i.endsWith('.b64'))!}`)
          const certRel = items.find((i) => i.endsWith('.pem'))!
          const key = pub(`signblob/${dir}/${path.basename(certRel)}`)
          expect(outcome(row.expected)).to.equal('VALID')
          expect(verifySignature(sig, {keys: [key], artifact: read(`signblob/${dir}/artifact.txt`)}).format).to.equal('raw')
          expect(verifySignature(Buffer.from(`${sig.toString()}\n`), {keys: [key], artifact: read(`signblob/${dir}/artifact.txt`)}).format).to.equal('raw')
          expect(verifySignature(Buffer.from(sig.toString(), 'base64'), {keys: [key], artifact: read(`signblob/${dir}/artifact.txt`)}).format).to.equal('raw')
        } else if (outcome(row.expected) === 'INVALID') {
          const key = pub(`signblob/${dir}/certificate.pem`)
          expect(() => verifySignature(read(`signblob/${dir}/signature.b64`), {keys: [key], artifact: read(`signblob/${row.item}`)}))
            .to.throw(AiboxError)
            .with.property('code', 'SIGNATURE_INVALID')
        } else {
          const bytes = /bytes `([^`]+)`/.exec(row.cells.join(' '))?.[1]?.replace(/\\n/g, '\n')
          expect(bytes, 'stated artifact bytes').to.not.equal(undefined)
          expect(read(`signblob/${row.item}`).toString()).to.equal(bytes)
        }
        handled.add(row)
      })
    }
  })

  describe('coverage', () => {
    it('handled every row of every table', () => {
      const all = [...readme.values()].flatMap((s) => s.rows)
      const missed = all.filter((r) => !handled.has(r)).map((r) => r.cells[0])
      expect(missed).to.deep.equal([])
      expect(all.length).to.be.greaterThan(30)
    })
    it('exercised every vector file', () => {
      const files: string[] = []
      const walk = (d: string) => {
        for (const e of fs.readdirSync(path.join(DIR, d), {withFileTypes: true})) {
          const rel = path.join(d, e.name)
          if (e.isDirectory()) walk(rel)
          else if (rel !== 'README.md') files.push(rel)
        }
      }
      walk('')
      expect(files.filter((f) => !used.has(f))).to.deep.equal([])
    })
  })
})

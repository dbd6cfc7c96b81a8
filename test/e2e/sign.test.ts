/**
 * e2e: `aibox key generate|import|public`, `aibox sign`, `aibox verify` through the real binary:
 * exit codes, messages, files and modes, `--json` output validated against schemas/output.
 */
import {expect} from 'chai'
import {execFileSync, spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import {expectOutputSchema} from '../helpers/schemas.js'

import {cosignCompatibilityProblems} from '../../src/sign/index.js'
import {BIN, ROOT, TESTDATA, VECTORS, aibox as run, type CliOptions, type CliResult} from '../helpers/cli.js'
import {listFiles, tmpdir} from '../helpers/tmp.js'

const validateOutput = expectOutputSchema

/** oclif wraps error messages at the terminal width; a wide screen keeps each message on one line for the assertions. */
function aibox(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return run(args, {...options, env: {OCLIF_COLUMNS: '10000', ...options.env}})
}

const withPw = (pw: string | undefined, extra: CliOptions = {}): CliOptions => ({...extra, env: {AIBOX_PASSWORD: undefined, COSIGN_PASSWORD: pw, ...extra.env}})
const COSIGN = path.join(VECTORS, 'cosign')

describe('aibox key / sign / verify (e2e)', function () {
  this.timeout(120_000)
  const dir = tmpdir()
  const p = (f: string) => path.join(dir, f)
  const policyFile = p('policy.yaml')

  before(() => {
    fs.writeFileSync(policyFile, 'apiVersion: aibox.dev/v1\nkind: PolicyBundle\nmetadata: {name: org-baseline, version: 1.0.0, tier: org}\n')
  })

  describe('aibox key generate', () => {
    it('writes a cosign key pair (0600 / 0644) and prints a result matching its schema', async () => {
      const r = await aibox(['key', 'generate', '--output-key-prefix', p('alice'), '--json'], withPw('pw'))
      expect(r.code, r.stderr).to.equal(0)
      validateOutput('key-generate', r.json)
      expect(r.json).to.include({privateKey: p('alice.key'), publicKey: p('alice.pub'), algorithm: 'ecdsa-p256'})
      expect(fs.statSync(p('alice.key')).mode & 0o777).to.equal(0o600)
      expect(fs.statSync(p('alice.pub')).mode & 0o777).to.equal(0o644)
      expect(fs.readFileSync(p('alice.key'), 'utf8')).to.match(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/)
      expect(fs.readFileSync(p('alice.pub'), 'utf8')).to.match(/^-----BEGIN PUBLIC KEY-----\n/)
    })
    it('refuses to overwrite without --force (exit 1) and leaves the key alone', async () => {
      const before = fs.readFileSync(p('alice.key'))
      const r = await aibox(['key', 'generate', '--output-key-prefix', p('alice')], withPw('pw'))
      expect(r.code).to.equal(1)
      expect(r.stderr).to.contain(`'${p('alice.key')}' already exists; refusing to overwrite a key file`)
      expect(r.stderr).to.contain('FILE_EXISTS')
      expect(fs.readFileSync(p('alice.key')).equals(before)).to.equal(true)
      const forced = await aibox(['key', 'generate', '--output-key-prefix', p('scratch'), '--force'], withPw('pw'))
      expect(forced.code).to.equal(0)
      const again = await aibox(['key', 'generate', '--output-key-prefix', p('scratch'), '--force'], withPw('pw'))
      expect(again.code).to.equal(0)
    })
    it('makes Ed25519 keys and accepts the empty password', async () => {
      const r = await aibox(['key', 'generate', '--type', 'ed25519', '--output-key-prefix', p('ed'), '--json'], withPw(undefined, {env: {AIBOX_PASSWORD: ''}}))
      expect(r.code, r.stderr).to.equal(0)
      expect(r.json.algorithm).to.equal('ed25519')
    })
    it('fails fast without a password and without a terminal (exit 1), writing nothing', async () => {
      const sub = tmpdir()
      const r = await aibox(['key', 'generate', '--output-key-prefix', path.join(sub, 'k')], withPw(undefined))
      expect(r.code).to.equal(1)
      expect(r.stderr).to.contain('PASSWORD_REQUIRED')
      expect(r.stderr).to.contain('set COSIGN_PASSWORD or AIBOX_PASSWORD')
      expect(listFiles(sub)).to.deep.equal([])
    })
    it('reads the password from stdin with --password-stdin', async () => {
      const r = await aibox(['key', 'generate', '--password-stdin', '--output-key-prefix', p('piped')], withPw(undefined, {input: 'from-stdin\n'}))
      expect(r.code, r.stderr).to.equal(0)
      const pub = await aibox(['key', 'public', '--key', p('piped.key')], withPw('from-stdin'))
      expect(pub.code, pub.stderr).to.equal(0)
      expect(pub.stdout).to.equal(fs.readFileSync(p('piped.pub'), 'utf8'))
    })
    it('prompts twice without echo on a terminal', async () => {
      execFileSync('script', ['--version'])
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn('script', ['-qec', `${process.execPath} ${BIN} key generate --output-key-prefix ${p('tty')}`, '/dev/null'], {
          env: {...process.env, AIBOX_PASSWORD: undefined, COSIGN_PASSWORD: undefined, NO_COLOR: '1'} as NodeJS.ProcessEnv,
        })
        let text = ''
        let answered = 0
        child.stdout.on('data', (b: Buffer) => {
          text += b.toString()
          const prompts = (text.match(/Enter password for private key/g) ?? []).length
          if (prompts > answered) {
            answered = prompts
            child.stdin.write('typed secret\r')
          }
        })
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
        child.on('error', reject)
        child.on('close', (code) => {
          clearTimeout(timer)
          if (code === 0) resolve(text)
          else reject(new Error(`script exited ${code}: ${text}`))
        })
      })
      expect(out).to.contain('Enter password for private key: ')
      expect(out).to.contain('Enter password for private key again: ')
      expect(out).to.not.contain('typed secret')
      const pub = await aibox(['key', 'public', '--key', p('tty.key')], withPw('typed secret'))
      expect(pub.code, pub.stderr).to.equal(0)
    })
  })

  describe('aibox key public', () => {
    it('prints the public key of an encrypted key, of a public key, with --json', async () => {
      const r = await aibox(['key', 'public', '--key', p('alice.key')], withPw('pw'))
      expect(r.code, r.stderr).to.equal(0)
      expect(r.stdout).to.equal(fs.readFileSync(p('alice.pub'), 'utf8'))
      const j = await aibox(['key', 'public', '--key', p('alice.pub'), '--json'], withPw(undefined))
      expect(j.code).to.equal(0)
      validateOutput('key-public', j.json)
      expect(j.json.publicKey).to.equal(r.stdout)
    })
    it('refuses a wrong password (exit 1) and a missing file (exit 3)', async () => {
      const wrong = await aibox(['key', 'public', '--key', p('alice.key')], withPw('nope'))
      expect(wrong.code).to.equal(1)
      expect(wrong.stderr).to.contain('cannot decrypt the private key: wrong password, or the key file is corrupted')
      expect(wrong.stderr).to.contain('KEY_DECRYPT_FAILED')
      const missing = await aibox(['key', 'public', '--key', p('nope.key'), '--json'], withPw('pw'))
      expect(missing.code).to.equal(3)
      expect(missing.json.error.code).to.equal('KEY_NOT_FOUND')
    })
  })

  describe('aibox key import', () => {
    it('wraps an openssl SEC1 EC key in cosign format', async () => {
      execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-out', p('openssl-ec.pem')])
      const r = await aibox(['key', 'import', '--key', p('openssl-ec.pem'), '--output-key-prefix', p('imported'), '--json'], withPw('pw'))
      expect(r.code, r.stderr).to.equal(0)
      validateOutput('key-import', r.json)
      const expected = execFileSync('openssl', ['ec', '-in', p('openssl-ec.pem'), '-pubout'], {stdio: ['ignore', 'pipe', 'ignore']}).toString()
      expect(fs.readFileSync(p('imported.pub'), 'utf8')).to.equal(expected)
    })
    it('upgrades an old cosign key (N=32768, ENCRYPTED COSIGN PRIVATE KEY) to the current format', async () => {
      const r = await aibox(['key', 'import', '--key', path.join(COSIGN, 'keys', 'pc-cosign.key'), '--output-key-prefix', p('upgraded')], withPw(''))
      expect(r.code, r.stderr).to.equal(0)
      const pem = fs.readFileSync(p('upgraded.key'), 'utf8')
      expect(pem).to.match(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----/)
      const json = JSON.parse(Buffer.from(pem.split('\n').slice(1, -2).join(''), 'base64').toString())
      expect(json.kdf.params).to.deep.equal({N: 65536, r: 8, p: 1})
      expect(fs.readFileSync(p('upgraded.pub'), 'utf8')).to.equal(fs.readFileSync(path.join(COSIGN, 'keys', 'pc-cosign.pub'), 'utf8'))
    })
    it('refuses RSA-1024 (exit 1) naming the size', async () => {
      execFileSync('openssl', ['genrsa', '-out', p('rsa1024.pem'), '1024'], {stdio: 'ignore'})
      const r = await aibox(['key', 'import', '--key', p('rsa1024.pem'), '--output-key-prefix', p('small')], withPw('pw'))
      expect(r.code).to.equal(1)
      expect(r.stderr).to.contain('RSA key of 1024 bits; cosign and aibox accept 2048 to 4096 bits')
      expect(fs.existsSync(p('small.key'))).to.equal(false)
    })
  })

  describe('aibox sign + aibox verify --key', () => {
    for (const [keyName, pw] of [['alice', 'pw'], ['ed', '']] as const) {
      for (const format of ['bundle', 'dsse', 'raw', 'message']) {
        it(`round-trips a ${format} signature made with ${keyName === 'ed' ? 'Ed25519' : 'ECDSA P-256'}`, async () => {
          const out = p(`policy.${keyName}.${format}.sig`)
          const s = await aibox(['sign', policyFile, '--key', p(`${keyName}.key`), '--format', format, '--output', out, '--json'], withPw(pw))
          expect(s.code, s.stderr).to.equal(0)
          validateOutput('sign', s.json)
          expect(s.json.output).to.equal(out)
          const v = await aibox(['verify', policyFile, '--signature', out, '--key', p(`${keyName}.pub`), '--json'])
          expect(v.code, v.stderr).to.equal(0)
          validateOutput('verify', v.json)
          expect(v.json.signatures[0].signers[0].keyId).to.equal(s.json.key.keyId)
          if (format === 'raw') expect(fs.readFileSync(out, 'utf8')).to.match(/^[A-Za-z0-9+/]+=*$/)
        })
      }
    }
    it('writes the bundle to stdout, or into the --json result, when there is no --output', async () => {
      const s = await aibox(['sign', policyFile, '--key', p('alice.key')], withPw('pw'))
      expect(s.code).to.equal(0)
      const bundle = JSON.parse(s.stdout)
      expect(bundle.mediaType).to.equal('application/vnd.dev.sigstore.bundle.v0.3+json')
      expect(bundle.dsseEnvelope.signatures).to.deep.equal([{sig: bundle.dsseEnvelope.signatures[0].sig}])
      expect(cosignCompatibilityProblems(bundle)).to.deep.equal([])
      const j = await aibox(['sign', policyFile, '--key', p('alice.key'), '--format', 'raw', '--json'], withPw('pw'))
      validateOutput('sign', j.json)
      expect(j.json.signature).to.match(/^[A-Za-z0-9+/]+=*$/)
    })
    it('prints what verified', async () => {
      const v = await aibox(['verify', policyFile, '--signature', p('policy.alice.bundle.sig'), '--key', p('alice.pub')])
      expect(v.code).to.equal(0)
      expect(v.stdout).to.match(/^Verified .*policy\.yaml \(sha256:[0-9a-f]{64}\)\n/)
      expect(v.stdout).to.contain("Sigstore bundle v0.3 (DSSE), https://sigstore.dev/cosign/sign/v1, signed by 'alice.pub'")
    })
    it('refuses a changed file, the wrong key and a corrupt signature with exit 2', async () => {
      // A comment changes the bytes but not the content digest (RFC 8785) the bundle signature names.
      const commented = p('policy-commented.yaml')
      fs.writeFileSync(commented, `${fs.readFileSync(policyFile, 'utf8')}# edited\n`)
      const same = await aibox(['verify', commented, '--signature', p('policy.alice.bundle.sig'), '--key', p('alice.pub')])
      expect(same.code, same.stderr).to.equal(0)
      const changed = p('policy-changed.yaml')
      fs.writeFileSync(changed, fs.readFileSync(policyFile, 'utf8').replace('version: 1.0.0', 'version: 1.0.1'))
      const a = await aibox(['verify', changed, '--signature', p('policy.alice.bundle.sig'), '--key', p('alice.pub')])
      expect(a.code).to.equal(2)
      expect(a.stderr).to.contain('SUBJECT_MISMATCH')
      expect(a.stderr).to.match(/the signature is valid, but the statement's subjects/)
      const b = await aibox(['verify', policyFile, '--signature', p('policy.alice.bundle.sig'), '--key', p('ed.pub'), '--json'])
      expect(b.code).to.equal(2)
      expect(b.json.error.code).to.equal('SIGNATURE_INVALID')
      expect(b.json.error.message).to.contain("does not verify with key 'ed.pub'")
      const raw = await aibox(['verify', changed, '--signature', p('policy.alice.raw.sig'), '--key', p('alice.pub')])
      expect(raw.code).to.equal(2)
      const corrupt = p('corrupt.sig')
      fs.writeFileSync(corrupt, fs.readFileSync(p('policy.alice.bundle.sig'), 'utf8').slice(0, 200))
      const c = await aibox(['verify', policyFile, '--signature', corrupt, '--key', p('alice.pub'), '--json'])
      expect(c.code).to.equal(2)
      expect(c.json.error.code).to.equal('SIGNATURE_MALFORMED')
    })
    it('exit 3 for a missing file or signature, exit 1 for bad usage', async () => {
      const f = await aibox(['verify', p('nope.yaml'), '--signature', p('policy.alice.bundle.sig'), '--key', p('alice.pub')])
      expect(f.code).to.equal(3)
      expect(f.stderr).to.contain(`file to verify '${p('nope.yaml')}' does not exist`)
      const s = await aibox(['verify', policyFile, '--signature', p('nope.sig'), '--key', p('alice.pub')])
      expect(s.code).to.equal(3)
      expect(s.stderr).to.contain(`signature '${p('nope.sig')}' does not exist`)
      const both = await aibox(['verify', policyFile, '--signature', p('policy.alice.bundle.sig'), '--key', p('alice.pub'), '--trust', p('t.yaml')])
      expect(both.code).to.equal(1)
      const neither = await aibox(['verify', policyFile, '--signature', p('policy.alice.bundle.sig')])
      expect(neither.code).to.equal(1)
      const pub = await aibox(['verify', policyFile, '--signature', p('policy.alice.bundle.sig'), '--key', p('alice.key')])
      expect(pub.code).to.equal(1)
      expect(pub.stderr).to.contain('is a private key; pass the public key')
    })
    it('refuses to sign with a wrong password, an unencrypted key or a missing file', async () => {
      const wrong = await aibox(['sign', policyFile, '--key', p('alice.key')], withPw('bad'))
      expect(wrong.code).to.equal(1)
      expect(wrong.stderr).to.contain('KEY_DECRYPT_FAILED')
      const plain = await aibox(['sign', policyFile, '--key', p('openssl-ec.pem')], withPw('pw'))
      expect(plain.code).to.equal(1)
      expect(plain.stderr).to.contain('is an unencrypted private key')
      const missing = await aibox(['sign', p('nope.yaml'), '--key', p('alice.key'), '--output', p('x.sig')], withPw('pw'))
      expect(missing.code).to.equal(3)
      expect(fs.existsSync(p('x.sig'))).to.equal(false)
    })
  })

  describe('aibox verify with cosign-made signatures', () => {
    it('accepts cosign attest-blob envelopes, conformance bundles and sign-blob signatures', async () => {
      const cases: Array<[string[], number]> = [
        [['dsse/cosign-attest-blob-artifact.txt', 'dsse/cosign-attest-blob-slsa02/envelope.json', 'dsse/cosign-attest-blob.pub'], 0],
        [['dsse/cosign-attest-blob-artifact.txt', 'dsse/cosign-attest-blob-wrong-subject/envelope.json', 'dsse/cosign-attest-blob.pub'], 2],
        [['bundles/a.txt', 'bundles/conformance-managed-key-happy-path/bundle.sigstore.json', 'bundles/conformance-managed-key-happy-path/key.pub'], 0],
        [['signblob/sigstore-rs-keyless/artifact.txt', 'signblob/sigstore-rs-keyless/signature.b64', 'signblob/sigstore-rs-keyless/certificate.pem'], 0],
        [['signblob/sigstore-rs-keyless/artifact-WRONG.txt', 'signblob/sigstore-rs-keyless/signature.b64', 'signblob/sigstore-rs-keyless/certificate.pem'], 2],
        [['simplesigning/valid/manifest.json', 'simplesigning/valid/signature-1', 'simplesigning/cosign.pub'], 0],
        [['simplesigning/modified-manifest/manifest.json', 'simplesigning/valid/signature-1', 'simplesigning/cosign.pub'], 2],
      ]
      for (const [[file, sig, key], code] of cases) {
        const r = await aibox(['verify', path.join(COSIGN, file), '--signature', path.join(COSIGN, sig), '--key', path.join(COSIGN, key), '--json'])
        expect(r.code, `${sig}: ${r.stdout}${r.stderr}`).to.equal(code)
        if (code === 0) validateOutput('verify', r.json)
      }
    })
    it('makes no network call (sockets, DNS and fetch are fatal under the preload)', async () => {
      const preload = `--import=${path.join(ROOT, 'test', 'helpers', 'no-network.mjs')}`
      const control = await new Promise<number>((resolve) => {
        const c = spawn(process.execPath, [preload, '-e', "fetch('http://127.0.0.1:9')"])
        c.on('close', (code) => resolve(code ?? -1))
      })
      expect(control, 'the preload trips').to.equal(99)
      const bundleDir = path.join(COSIGN, 'bundles', 'conformance-managed-key-happy-path')
      const r = await aibox(['verify', path.join(COSIGN, 'bundles', 'a.txt'), '--signature', path.join(bundleDir, 'bundle.sigstore.json'), '--key', path.join(bundleDir, 'key.pub')], {
        env: {NODE_OPTIONS: preload},
      })
      expect(r.stderr).to.not.contain('NETWORK ACCESS')
      expect(r.code, r.stderr).to.equal(0)
      expect(r.stderr).to.contain('not verified (offline key verification')
    })
  })

  describe('aibox verify --trust', () => {
    const trust = path.join(TESTDATA, 'trust', 'example.yaml')
    const keys = path.join(TESTDATA, 'trust', 'keys')
    before(async () => {
      for (const n of ['alice', 'bob', 'ci', 'mallory']) {
        const r = await aibox(['sign', policyFile, '--key', path.join(keys, `${n}.key`), '--output', p(`${n}.sigstore.json`)], withPw('test'))
        expect(r.code, r.stderr).to.equal(0)
      }
    })
    const sigs = (...names: string[]) => names.flatMap((n) => ['--signature', p(`${n}.sigstore.json`)])
    it('passes when every matching scope is satisfied, and reports who satisfied what', async () => {
      const r = await aibox(['verify', policyFile, ...sigs('alice', 'bob', 'ci'), '--trust', trust, '--ref', 'registry.example.com/policies/org:1.0.0', '--tier', 'org', '--json'])
      expect(r.code, r.stderr).to.equal(0)
      validateOutput('verify', r.json)
      expect(r.json.trust.scopes.map((s: {scope: string}) => s.scope)).to.deep.equal(['org-baseline', 'everything'])
      const human = await aibox(['verify', policyFile, ...sigs('alice', 'bob', 'ci'), '--trust', trust, '--ref', 'registry.example.com/policies/org', '--tier', 'org'])
      expect(human.stdout).to.contain("trust scope 'org-baseline': security 1/1 (alice); approver 1/1 (bob)")
    })
    it('fails with exit 2 naming what is missing and the refused revoked key', async () => {
      const r = await aibox(['verify', policyFile, ...sigs('alice', 'mallory', 'ci'), '--trust', trust, '--ref', 'registry.example.com/policies/org', '--tier', 'org'])
      expect(r.code).to.equal(2)
      expect(r.stderr).to.contain("scope 'org-baseline': needs 1 distinct 'approver' signature for registry.example.com/policies/org (tier org), got none")
      expect(r.stderr).to.contain("refused: key 'mallory'")
      expect(r.stderr).to.contain('TRUST_NOT_SATISFIED')
    })
    it('fails with exit 1 for an invalid trust policy, naming file and line', async () => {
      const bad = p('bad-trust.yaml')
      fs.writeFileSync(bad, 'apiVersion: aibox.dev/v1\nkind: TrustPolicy\nkeys: {}\nscopes: []\nextra: 1\n')
      const r = await aibox(['verify', policyFile, ...sigs('alice'), '--trust', bad, '--json'])
      expect(r.code).to.equal(1)
      expect(r.json.error.code).to.equal('TRUST_POLICY_INVALID')
      expect(r.json.error.message).to.contain(`${bad}:5:1 /extra: unknown field 'extra'`)
    })
  })
})

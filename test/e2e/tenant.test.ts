/**
 * e2e: tenants (seed 002 §1.5, §4; README "Tenants") through the real binary, with policies
 * published to OCI layouts by `aibox push`: the tenant in the signed bundle, start accepting its
 * own tenant and tenant-global and refusing another tenant's or an untagged policy with nothing
 * cached, one cache directory per tenant under one root (never used across), the trust policy's
 * tenant, import refusing another tenant's policy with nothing stored, the export/import round
 * trip, and cross-tenant reads refused (exit 5) unless a tenant-admin key proves an admin scope,
 * which is logged; `--json` against schemas/output.
 */
import fs from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {openVerifiedArchive} from '../../src/distribute/index.js'
import {loadTrustPolicy} from '../../src/trust/index.js'
import {verifyCrossRead} from '../../src/tenant/index.js'
import {type CliOptions, type CliResult, aibox as run} from '../helpers/cli.js'
import {KEY, ORG_BASELINE, PUB, publicKey} from '../helpers/policy-fixtures.js'
import {expectOutputSchema} from '../helpers/schemas.js'
import {writeFile} from '../helpers/start-fixtures.js'
import {listFiles, tmpdir} from '../helpers/tmp.js'

describe('aibox tenants (e2e)', function () {
  this.timeout(300_000)
  const work = tmpdir('aibox-tenant-e2e-')
  const p = (...f: string[]) => path.join(work, ...f)
  const audit = p('audit.jsonl')
  const cacheRoot = p('cache')
  const layout = (name: string) => `oci:${p('layouts', name)}:stable`

  function aibox(args: string[], options: CliOptions = {}): Promise<CliResult> {
    return run(args, {
      cwd: work,
      ...options,
      env: {
        OCLIF_COLUMNS: '10000',
        COSIGN_PASSWORD: 'test',
        AIBOX_PASSWORD: undefined,
        AIBOX_AUDIT_LOG: audit,
        AIBOX_CACHE: cacheRoot,
        AIBOX_TENANT: undefined,
        AIBOX_CONFIG: undefined,
        AIBOX_ACTOR: 'dana@e2e',
        XDG_CONFIG_HOME: p('xdg-config'),
        XDG_CACHE_HOME: p('xdg-cache'),
        CI: '1',
        ...options.env,
      },
    })
  }
  async function ok(args: string[], options: CliOptions = {}): Promise<CliResult> {
    const r = await aibox(args, options)
    expect(r.code, `aibox ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).to.equal(0)
    return r
  }
  async function refused(args: string[], exit: number, code: string, options: CliOptions = {}): Promise<CliResult> {
    const r = await aibox(args, options)
    expect(r.code, `aibox ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).to.equal(exit)
    expect(r.stderr).to.contain(code)
    return r
  }
  const events = () => (fs.existsSync(audit) ? fs.readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : [])
  const tenantYaml = (tenant: string | undefined) => {
    const text = fs.readFileSync(ORG_BASELINE, 'utf8')
    return tenant === undefined ? text : text.replace(/^ {2}tier: org$/m, `  tier: org\n  tenant: ${tenant}`)
  }
  const trustText = (tenant?: string) => `apiVersion: aibox.dev/v1
kind: TrustPolicy
${tenant ? `tenant: ${tenant}\n` : ''}keys:
  alice: {path: ${PUB('alice')}, roles: [security]}
  bob: {path: ${PUB('bob')}, roles: [team-lead]}
  ci: {path: ${PUB('ci')}, roles: [tenant-admin]}
scopes:
  - name: org
    match: {tiers: [org]}
    require: {signatures: {security: 1}}
`
  /** A project directory whose aibox.yaml names `org` (a layout) and optionally a tenant. */
  function project(org: string, options: {tenant?: string; trust?: string} = {}): string {
    const dir = fs.mkdtempSync(p('project-'))
    writeFile(dir, 'aibox.yaml', `${['policy:', `  org: ${org}`, `trust: ${options.trust ?? p('trust.yaml')}`, ...(options.tenant ? [`tenant: ${options.tenant}`] : [])].join('\n')}\n`)
    return dir
  }

  before(async () => {
    fs.writeFileSync(p('trust.yaml'), trustText('acme'))
    fs.writeFileSync(p('trust-beta.yaml'), trustText('beta'))
    fs.writeFileSync(p('trust-shared.yaml'), trustText())
    for (const [name, tenant] of [['acme', 'acme'], ['beta', 'beta'], ['global', 'tenant-global'], ['none', undefined]] as const) {
      const file = writeFile(work, `bundles/${name}.yaml`, tenantYaml(tenant))
      await ok(['push', file, layout(name), '--key', KEY('alice')])
    }
  })

  describe('the tenant in the signed bundle', () => {
    it('is annotated on push and shown by inspect (as read from the content)', async () => {
      const r = await ok(['inspect', layout('acme'), '--json'])
      expectOutputSchema('inspect', r.json)
      expect(r.json.policy.tenant).to.equal('acme')
      expect(r.json.annotations['dev.aibox.policy.tenant']).to.equal('acme')
      const none = await ok(['inspect', layout('none'), '--json'])
      expect(none.json.policy.tenant).to.equal(null)
      expect(none.json.annotations).to.not.have.property('dev.aibox.policy.tenant')
      const human = await ok(['inspect', layout('acme')])
      expect(human.stdout).to.match(/^tenant +acme$/m)
      const hash = await ok(['bundle', 'hash', p('bundles', 'acme.yaml'), '--json'])
      expectOutputSchema('bundle-hash', hash.json)
      expect(hash.json.tenant).to.equal('acme')
    })

    it('refuses an invalid tenant name in the bundle with its location', async () => {
      const file = writeFile(work, 'bundles/bad.yaml', tenantYaml('Not_A_Label'))
      const r = await refused(['bundle', 'check', file], 1, 'metadata/tenant')
      expect(r.stderr).to.contain('tenant-global')
    })
  })

  describe('aibox start', () => {
    it('loads its own tenant\'s policy from <cache>/tenants/<tenant>, shows the tenant first and gives AIBOX_TENANT to the sandbox', async () => {
      const dir = project(layout('acme'), {tenant: 'acme'})
      const r = await ok(['start', '--json'], {cwd: dir})
      expectOutputSchema('start', r.json)
      expect(r.json.tenant).to.equal('acme')
      expect(r.json.cache).to.equal(path.join(cacheRoot, 'tenants', 'acme'))
      expect(r.json.tiers[0]).to.include({tenant: 'acme', source: 'registry'})
      expect(fs.existsSync(path.join(cacheRoot, 'tenants', 'acme', 'state.json'))).to.equal(true)
      expect(fs.existsSync(path.join(cacheRoot, 'state.json'))).to.equal(false)
      const human = await ok(['start'], {cwd: dir})
      expect(human.stdout.split('\n')[0]).to.equal('tenant acme')
      // The oclif command (used for --help and with AIBOX_NO_FAST_START=1) takes the same flag and says the same.
      const oclif = await ok(['start', '--tenant', 'acme', '--json'], {cwd: project(layout('acme')), env: {AIBOX_NO_FAST_START: '1'}})
      expect(oclif.json).to.include({tenant: 'acme', cache: path.join(cacheRoot, 'tenants', 'acme')})
      const withCommand = await ok(['start', '--', 'sh', '-c', 'echo "tenant=$AIBOX_TENANT"'], {cwd: dir})
      expect(withCommand.stdout).to.equal('tenant=acme\n')
      expect(withCommand.stderr.split('\n')[0]).to.equal('tenant acme')
      const loaded = events().filter((e) => e.event === 'policy.loaded')
      expect(loaded.at(-1)).to.include({tenant: 'acme'})
      // aibox doctor checks the cache the tenant's starts use.
      const doctor = await aibox(['doctor', '--json'], {env: {AIBOX_TENANT: 'acme'}})
      const cacheCheck = doctor.json.checks.find((c: {id: string}) => c.id === 'cache')
      expect(cacheCheck.details.dir).to.equal(path.join(cacheRoot, 'tenants', 'acme'))
      expect(cacheCheck.status).to.equal('pass')
    })

    it('loads a tenant-global baseline for any tenant', async () => {
      const r = await ok(['start', '--json', '--tenant', 'acme'], {cwd: project(layout('global'))})
      expect(r.json).to.include({tenant: 'acme'})
      expect(r.json.tiers[0].tenant).to.equal('tenant-global')
    })

    it('refuses another tenant\'s policy (exit 2 TENANT_MISMATCH), caches nothing and logs policy.refused', async () => {
      const dir = project(layout('beta'), {tenant: 'acme'})
      const cacheDir = path.join(cacheRoot, 'tenants', 'acme')
      const before = listFiles(cacheDir).map((f) => [f, fs.readFileSync(path.join(cacheDir, f), 'utf8')])
      const r = await refused(['start'], 2, 'TENANT_MISMATCH', {cwd: dir})
      expect(r.stderr).to.contain(p('layouts', 'beta'))
      expect(r.stderr).to.contain('belongs to tenant beta')
      expect(r.stderr).to.contain('configured tenant acme')
      expect(listFiles(cacheDir).map((f) => [f, fs.readFileSync(path.join(cacheDir, f), 'utf8')])).to.deep.equal(before)
      const last = events().at(-1)
      expect(last).to.include({event: 'policy.refused', code: 'TENANT_MISMATCH', tenant: 'acme'})
      const j = await aibox(['start', '--json'], {cwd: dir})
      expect(j.code).to.equal(2)
      expectOutputSchema('error', j.json)
      expect(j.json.error.details).to.include({tenant: 'acme', policyTenant: 'beta'})
    })

    it('refuses a policy without a tenant when a tenant is configured (exit 2 TENANT_MISSING)', async () => {
      const r = await refused(['start'], 2, 'TENANT_MISSING', {cwd: project(layout('none')), env: {AIBOX_TENANT: 'acme'}})
      expect(r.stderr).to.contain('metadata.tenant: acme')
      expect(r.stderr).to.contain('tenant-global')
    })

    it('loads any policy as before when no tenant is configured', async () => {
      const r = await ok(['start', '--json'], {cwd: project(layout('beta'), {trust: p('trust-beta.yaml')})})
      expect(r.json).to.not.have.property('tenant')
      expect(r.json.cache).to.equal(cacheRoot)
    })

    it('keeps each tenant\'s cache apart under one cache root, and never uses another tenant\'s entry', async () => {
      const dir = project(layout('global'), {trust: p('trust-shared.yaml')})
      const a = await ok(['start', '--json'], {cwd: dir, env: {AIBOX_TENANT: 'acme'}})
      const b = await ok(['start', '--json'], {cwd: dir, env: {AIBOX_TENANT: 'gamma'}})
      expect(a.json.cache).to.equal(path.join(cacheRoot, 'tenants', 'acme'))
      expect(b.json.cache).to.equal(path.join(cacheRoot, 'tenants', 'gamma'))
      // gamma's first start fetched and verified for itself: acme's cache is not gamma's.
      expect(b.json.source).to.equal('registry')
      const warm = await ok(['start', '--json', '--offline'], {cwd: dir, env: {AIBOX_TENANT: 'gamma'}})
      expect(warm.json.source).to.equal('cache')
      // An entry of acme planted in delta's cache (same reference) is never used, not even offline.
      const acmeDir = project(layout('acme'), {tenant: 'acme', trust: p('trust-shared.yaml')})
      await ok(['start'], {cwd: acmeDir})
      fs.cpSync(path.join(cacheRoot, 'tenants', 'acme'), path.join(cacheRoot, 'tenants', 'delta'), {recursive: true})
      const r = await refused(['start', '--offline'], 4, 'NO_VERIFIED_CACHE', {cwd: acmeDir, env: {AIBOX_TENANT: 'delta'}})
      expect(r.stderr).to.contain('belongs to tenant acme, not to delta: it is not used')
      const fetched = await refused(['start'], 2, 'TENANT_MISMATCH', {cwd: acmeDir, env: {AIBOX_TENANT: 'delta'}})
      expect(fetched.stderr).to.contain('belongs to tenant acme')
    })

    it('warns when a cache root switches tenant and the active policy differs (seed 002 §4), not while one tenant keeps starting', async () => {
      const root = p('cache-switch')
      const env = {AIBOX_CACHE: root}
      const acme = project(layout('acme'), {tenant: 'acme', trust: p('trust-shared.yaml')})
      // beta's project tightens the org policy, so its effective policy differs from acme's.
      const beta = project(layout('beta'), {tenant: 'beta', trust: p('trust-shared.yaml')})
      writeFile(beta, 'project.yaml', 'version: 1\nresources: {cpu: "2"}\n')
      fs.writeFileSync(path.join(beta, 'aibox.yaml'), fs.readFileSync(path.join(beta, 'aibox.yaml'), 'utf8').replace('policy:\n', 'policy:\n  project: project.yaml\n'))
      const a = await ok(['start', '--json'], {cwd: acme, env})
      expect(a.json.warnings.join('\n')).to.not.contain('switching tenant')
      const again = await ok(['start', '--json'], {cwd: acme, env})
      expect(again.json.warnings.join('\n')).to.not.contain('switching tenant')
      const b = await ok(['start'], {cwd: beta, env})
      expect(b.stderr).to.match(new RegExp(`switching tenant: this cache last loaded tenant acme's policy \\(${a.json.effective.digest}, at [0-9T:.-]+Z\\); tenant beta's active policy differs`))
      const back = await ok(['start', '--json'], {cwd: acme, env})
      expect(back.json.warnings.join('\n')).to.contain("last loaded tenant beta's policy")
    })

    it('refuses a trust policy of another tenant (exit 1 TRUST_TENANT_MISMATCH)', async () => {
      const r = await refused(['start'], 1, 'TRUST_TENANT_MISMATCH', {cwd: project(layout('acme'), {tenant: 'acme', trust: p('trust-beta.yaml')}), env: {AIBOX_CACHE: p('cache-trust')}})
      expect(r.stderr).to.contain("tenant beta's")
      expect(listFiles(path.join(p('cache-trust'), 'tenants', 'acme')).filter((f) => f.startsWith('oci/'))).to.deep.equal([])
    })

    it('refuses an invalid tenant name (exit 1 INVALID_TENANT)', async () => {
      await refused(['start', '--tenant', '../etc'], 1, 'INVALID_TENANT', {cwd: project(layout('acme'))})
    })
  })

  describe('aibox export / import', () => {
    const archive = p('acme.tar')
    before(async () => {
      const r = await ok(['export', layout('acme'), layout('global'), '-o', archive, '--key', KEY('carol'), '--tenant', 'acme', '--json'])
      expectOutputSchema('export', r.json)
      expect(r.json.tenant).to.equal('acme')
      expect(r.json.policies.map((x: {tenant: string}) => x.tenant).sort()).to.deep.equal(['acme', 'tenant-global'])
    })

    it('records the tenants in the seal and imports them into the tenant\'s cache, where start finds them', async () => {
      const sealed = await openVerifiedArchive(archive, {keys: [publicKey('alice'), publicKey('carol')]})
      try {
        const policies = sealed.seal.predicate.artifacts.filter((a) => a.kind === 'policy')
        expect(policies.map((a) => a.tenant).sort()).to.deep.equal(['acme', 'tenant-global'])
      } finally {
        await sealed.close()
      }
      const keys = ['--key', PUB('alice'), '--key', PUB('carol')]
      const r = await ok(['import', archive, '--cache', '--cache-dir', p('site-cache'), ...keys, '--tenant', 'acme', '--json'])
      expectOutputSchema('import', r.json)
      expect(r.json).to.include({tenant: 'acme', destination: `cache:${path.join(p('site-cache'), 'tenants', 'acme')}`})
      expect(r.json.policies.map((x: {tenant: string}) => x.tenant).sort()).to.deep.equal(['acme', 'tenant-global'])
      const state = JSON.parse(fs.readFileSync(path.join(p('site-cache'), 'tenants', 'acme', 'state.json'), 'utf8'))
      expect(Object.values(state.entries).map((e) => (e as {tenant: string}).tenant).sort()).to.deep.equal(['acme', 'tenant-global'])
      const s = await ok(['start', '--json', '--offline', '--cache', p('site-cache')], {cwd: project(layout('acme'), {tenant: 'acme'})})
      expect(s.json).to.include({source: 'import', tenant: 'acme'})
      expect(events().filter((e) => e.event === 'policy.imported').at(-1)).to.include({tenant: 'acme'})
    })

    it('refuses the whole import when one policy belongs to another tenant (exit 2), storing nothing', async () => {
      const mixed = p('mixed.tar')
      await ok(['export', layout('global'), layout('beta'), '-o', mixed, '--key', KEY('carol')])
      const keys = ['--key', PUB('alice'), '--key', PUB('carol')]
      const r = await refused(['import', mixed, '--to', `oci:${p('never')}`, ...keys, '--tenant', 'acme'], 2, 'TENANT_MISMATCH')
      expect(r.stderr).to.contain(`policy oci:${p('layouts', 'beta')}:stable`)
      expect(r.stderr).to.contain('nothing is stored')
      expect(fs.existsSync(p('never'))).to.equal(false)
      await refused(['import', mixed, '--cache', '--cache-dir', p('never-cache'), ...keys], 2, 'TENANT_MISMATCH', {env: {AIBOX_TENANT: 'acme'}})
      expect(listFiles(path.join(p('never-cache'), 'tenants', 'acme')).filter((f) => f !== 'state.json.lock')).to.deep.equal([])
      // The same archive imports for beta, whose policy it is (tenant-global is everyone's).
      await ok(['import', mixed, '--to', `oci:${p('beta-site')}`, ...keys, '--tenant', 'beta'])
    })
  })

  describe('cross-tenant reads', () => {
    const admin = (key: string) => ['--tenant-admin-key', KEY(key), '--reason', 'SEC-42: audit of tenant beta']

    it('refuses pull, inspect, verify and export of another tenant\'s policy (exit 5 CROSS_TENANT), writing nothing', async () => {
      const out = p('pulled-refused')
      const r = await refused(['pull', layout('beta'), '--trust', p('trust.yaml'), '--tenant', 'acme', '-o', out], 5, 'CROSS_TENANT')
      expect(r.stderr).to.contain('belongs to tenant beta, not to the configured tenant acme')
      expect(r.stderr).to.contain('--tenant-admin-key')
      expect(fs.existsSync(out)).to.equal(false)
      await refused(['inspect', layout('beta'), '--tenant', 'acme'], 5, 'CROSS_TENANT')
      await refused(['verify', layout('beta'), '--key', PUB('alice')], 5, 'CROSS_TENANT', {env: {AIBOX_TENANT: 'acme'}})
      await refused(['export', layout('beta'), '-o', p('never.tar'), '--key', KEY('carol'), '--tenant', 'acme'], 5, 'CROSS_TENANT')
      expect(fs.existsSync(p('never.tar'))).to.equal(false)
      await refused(['bundle', 'inspect', layout('beta'), '--tenant', 'acme'], 5, 'CROSS_TENANT')
      await refused(['copy', layout('beta'), `oci:${p('never-copy')}:stable`, '--tenant', 'acme'], 5, 'CROSS_TENANT')
      expect(fs.existsSync(p('never-copy'))).to.equal(false)
      const j = await aibox(['pull', layout('beta'), '--trust', p('trust.yaml'), '--tenant', 'acme', '-o', out, '--json'])
      expect(j.code).to.equal(5)
      expectOutputSchema('error', j.json)
      expect(j.json.error.code).to.equal('CROSS_TENANT')
    })

    it('reads the tenant\'s own, tenant-global and (without a tenant) any policy as before', async () => {
      await ok(['pull', layout('acme'), '--trust', p('trust.yaml'), '--tenant', 'acme', '-o', p('own')])
      await ok(['pull', layout('global'), '--trust', p('trust.yaml'), '--tenant', 'acme', '-o', p('global')])
      const r = await ok(['pull', layout('beta'), '--key', PUB('alice'), '-o', p('untenanted'), '--json'])
      expect(r.json.tenant).to.equal('beta')
      expect(r.json).to.not.have.property('crossTenant')
    })

    it('allows a pull with a tenant-admin key and a reason, and logs who, which key, which tenants, what and why', async () => {
      const out = p('pulled-admin')
      const r = await ok(['pull', layout('beta'), '--trust', p('trust.yaml'), '--tenant', 'acme', '-o', out, ...admin('ci'), '--json'])
      expectOutputSchema('pull', r.json)
      expect(r.json.crossTenant).to.include({actor: 'dana@e2e', fromTenant: 'acme', toTenant: 'beta', reason: 'SEC-42: audit of tenant beta', key: 'ci', operation: 'pull'})
      expect(fs.readdirSync(out)).to.deep.equal(['org-baseline.json', 'org-baseline.yaml'])
      const e = events().at(-1)
      expect(e).to.include({event: 'policy.tenant.cross-read', actor: 'dana@e2e', tenant: 'acme', fromTenant: 'acme', toTenant: 'beta', operation: 'pull', key: 'ci', reason: 'SEC-42: audit of tenant beta'})
      expect(e.ref).to.contain(p('layouts', 'beta'))
      expect(e.keyId).to.equal(r.json.crossTenant.keyId)
      // The logged proof is a statement the tenant-admin key signed: it verifies against the trust policy.
      const key = verifyCrossRead(e.proof, loadTrustPolicy(p('trust.yaml')), new Date())
      expect(key.name).to.equal('ci')
      const statement = JSON.parse(Buffer.from(JSON.parse(e.proof).payload, 'base64').toString('utf8'))
      expect(statement).to.include({fromTenant: 'acme', toTenant: 'beta', reference: e.ref, reason: 'SEC-42: audit of tenant beta'})
      const audited = await ok(['audit', 'verify'])
      expect(audited.stdout).to.match(/ok|valid|intact/i)
    })

    it('allows inspect, verify, export and copy with the admin scope too, each logged', async () => {
      const before = events().length
      await ok(['inspect', layout('beta'), '--tenant', 'acme', ...admin('ci'), '--trust', p('trust.yaml')])
      const v = await ok(['verify', layout('beta'), '--trust', p('trust.yaml'), '--tenant', 'acme', ...admin('ci'), '--json'])
      expectOutputSchema('verify', v.json)
      const x = await ok(['export', layout('beta'), '-o', p('admin.tar'), '--key', KEY('carol'), '--tenant', 'acme', ...admin('ci'), '--trust', p('trust.yaml'), '--json'])
      expectOutputSchema('export', x.json)
      expect(x.json.crossTenant[0]).to.include({toTenant: 'beta', operation: 'export'})
      const c = await ok(['copy', layout('beta'), `oci:${p('admin-copy')}:stable`, '--tenant', 'acme', ...admin('ci'), '--trust', p('trust.yaml'), '--json'])
      expectOutputSchema('copy', c.json)
      expect(c.json.crossTenant).to.include({toTenant: 'beta', operation: 'copy'})
      const reads = events().slice(before).filter((e) => e.event === 'policy.tenant.cross-read')
      expect(reads.map((e) => e.operation)).to.deep.equal(['inspect', 'verify', 'export', 'copy'])
    })

    it('refuses a key without the tenant-admin role, an untrusted key, and a missing reason, logging nothing', async () => {
      const before = events().length
      const out = p('pulled-bob')
      const r = await refused(['pull', layout('beta'), '--trust', p('trust.yaml'), '--tenant', 'acme', '-o', out, ...admin('bob')], 5, 'TENANT_ADMIN_ROLE_NOT_HELD')
      expect(r.stderr).to.contain("key 'bob'")
      expect(fs.existsSync(out)).to.equal(false)
      await refused(['pull', layout('beta'), '--trust', p('trust.yaml'), '--tenant', 'acme', '-o', out, ...admin('mallory')], 5, 'TENANT_ADMIN_KEY_NOT_TRUSTED')
      await refused(['pull', layout('beta'), '--trust', p('trust.yaml'), '--tenant', 'acme', '-o', out, '--tenant-admin-key', KEY('ci')], 1, 'REASON_REQUIRED')
      await refused(['inspect', layout('beta'), '--tenant', 'acme', ...admin('ci')], 1, 'TENANT_ADMIN_NEEDS_TRUST')
      expect(fs.existsSync(out)).to.equal(false)
      expect(events().slice(before).filter((e) => e.event === 'policy.tenant.cross-read')).to.deep.equal([])
    })
  })
})

/**
 * Regenerates testdata/trust: five ECDSA P-256 key pairs in cosign format (password "test") and
 * example.yaml, the trust policy shown in README.md "Trust policy" (copy it there afterwards).
 * Run: node --import tsx scripts/gen-trust-testdata.ts
 */
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {generateKeyPair, writeKeyPair} from '../src/sign/keys.js'

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'testdata', 'trust')
fs.mkdirSync(path.join(dir, 'keys'), {recursive: true})
const names = ['alice', 'bob', 'carol', 'ci', 'mallory']
const pems: Record<string, string> = {}
for (const name of names) {
  const key = generateKeyPair()
  await writeKeyPair(path.join(dir, 'keys', name), key, 'test', {force: true})
  pems[name] = key.public.pem
}
const indent = (pem: string) => pem.trim().split('\n').map((l) => `      ${l}`).join('\n')
fs.writeFileSync(
  path.join(dir, 'example.yaml'),
  `# Who may sign aibox policy bundles, and how many of them must.
apiVersion: aibox.dev/v1
kind: TrustPolicy
metadata:
  name: example-org
  description: Signing rules for registry.example.com/policies
roles: [release-bot]            # custom roles, in addition to the built-in ones
keys:
  alice:
    path: keys/alice.pub        # relative to this file
    roles: [security, approver]
    description: Alice (security team)
  bob:
    path: keys/bob.pub
    roles: [team-lead, approver]
    notBefore: 2025-01-01T00:00:00Z
    notAfter: 2035-01-01T00:00:00Z
  carol:
    path: keys/carol.pub
    roles: [project-owner, author]
  ci:
    path: keys/ci.pub
    roles: [release-bot, author]
  mallory:
    publicKey: |                # or inline PEM
${indent(pems.mallory)}
    roles: [approver]
revoked:
  - key: mallory                # a name, key id, cosign hint or SSH fingerprint
    reason: laptop stolen
    revokedAt: 2025-06-01T00:00:00Z
scopes:
  - name: org-baseline
    description: the org tier needs the security team and a second approver
    match:
      registry: registry.example.com
      repository: policies/org
      tiers: [org]
    require:
      signatures:
        security: 1
        approver: 1             # a different key than the security one: a key counts once
  - name: team-policies
    match:
      registry: registry.example.com
      repository: policies/teams/*
      tiers: [team]
    require:
      signatures:
        team-lead: 1
  - name: everything
    description: every policy, anywhere, carries an author's signature
    require:
      signatures:
        author: 1
`,
)
console.log(`wrote ${dir}`)

/**
 * A fake `docker-credential-<name>` program for tests: a shell script in a temp bin dir that
 * answers `get` from files (one per server URL), logs what it was asked, and says "credentials not
 * found in native keychain" (exit 1) for unknown servers — the docker-credential-helpers protocol.
 */
import fs from 'node:fs'
import path from 'node:path'

import {tmpdir} from './tmp.js'

export interface FakeHelper {
  /** Directory to put first on PATH. */
  binDir: string
  name: string
  /** Server URLs the helper was asked about, in order. */
  calls(): string[]
  set(serverUrl: string, username: string, secret: string): void
}

function key(serverUrl: string): string {
  return serverUrl.replace(/[^A-Za-z0-9.]/g, '_')
}

export function fakeCredentialHelper(name = 'test', behaviour: 'store' | 'broken' | 'slow' = 'store'): FakeHelper {
  const binDir = tmpdir('aibox-credhelper-')
  const credsDir = path.join(binDir, 'creds')
  fs.mkdirSync(credsDir)
  const log = path.join(binDir, 'calls.log')
  const script = [
    '#!/bin/sh',
    '# Fake docker credential helper (test/helpers/cred-helper.ts).',
    '[ "$1" = get ] || { echo "unsupported action $1" >&2; exit 1; }',
    'server=$(cat)',
    `printf '%s\\n' "$server" >> '${log}'`,
    behaviour === 'broken' ? `echo 'keychain is locked; partial answer {"Username":"u","Secret":"hunter2-leak"}' >&2; exit 2` : '',
    behaviour === 'slow' ? 'sleep 5' : '',
    `f='${credsDir}'/$(printf %s "$server" | tr -c 'A-Za-z0-9.' '_')`,
    'if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi',
    '',
  ].join('\n')
  const program = path.join(binDir, `docker-credential-${name}`)
  fs.writeFileSync(program, script, {mode: 0o755})
  return {
    binDir,
    name,
    calls: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : []),
    set(serverUrl, username, secret) {
      fs.writeFileSync(path.join(credsDir, key(serverUrl)), JSON.stringify({ServerURL: serverUrl, Username: username, Secret: secret}))
    },
  }
}

/** Writes a docker config.json into a fresh DOCKER_CONFIG directory and returns that directory. */
export function dockerConfigDir(config: unknown): string {
  const dir = tmpdir('aibox-dockercfg-')
  fs.writeFileSync(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config, null, 2))
  return dir
}

export function basicAuth(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`).toString('base64')
}

/**
 * A real headless browser for tests: Debian's chromium (installed by scripts/install-sysdeps.sh,
 * never a browser Playwright downloads), driven by playwright-core, with a fresh profile and
 * everything that would reach the network turned off. If chromium is missing or cannot start the
 * test fails with the reason: a report nobody looked at in a browser is not tested.
 */
import fs from 'node:fs'
import path from 'node:path'

import {type BrowserContext, chromium} from 'playwright-core'

import {tmpdir} from './tmp.js'

export const CHROMIUM = '/usr/bin/chromium'

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export interface Browser {
  context: BrowserContext
  close(): Promise<void>
}

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (make sysdeps runs scripts/install-sysdeps.sh)`)
  }
  const profile = path.join(tmpdir('aibox-chromium-'), 'profile')
  let context: BrowserContext
  try {
    context = await chromium.launchPersistentContext(profile, {executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 45_000})
  } catch (err) {
    throw new Error(`cannot start ${CHROMIUM} headless: ${(err as Error).message}`)
  }
  return {context, close: () => context.close()}
}

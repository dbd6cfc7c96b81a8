// Root hooks: loaded by mocha via .mocharc.json `require`.
import {stopAllRegistries} from './registry.js'
import {cleanupTmp} from './tmp.js'

export const mochaHooks = {
  afterAll(): void {
    // Safety net: every test stops its registries by PID in `after`; nothing may outlive the run.
    stopAllRegistries()
    cleanupTmp()
  },
}

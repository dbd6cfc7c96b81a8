// Root hooks: loaded by mocha via .mocharc.json `require`.
import {cleanupTmp} from './tmp.js'

export const mochaHooks = {
  afterAll(): void {
    cleanupTmp()
  },
}

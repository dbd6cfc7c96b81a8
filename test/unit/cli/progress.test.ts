import {Writable} from 'node:stream'

import {expect} from 'chai'

import {TransferProgress, formatBytes} from '../../../src/cli/progress.js'

/** A terminal-like stream that records what is drawn on it. */
function fakeTerminal(isTTY: boolean): Writable & {isTTY: boolean; columns: number; text: () => string} {
  const chunks: string[] = []
  const w = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk))
      cb()
    },
  }) as Writable & {isTTY: boolean; columns: number; text: () => string; cursorTo: () => boolean; clearLine: () => boolean; moveCursor: () => boolean}
  w.isTTY = isTTY
  w.columns = 120
  w.text = () => chunks.join('')
  return w
}

const MiB = 1024 * 1024
const desc = (n: number, size: number) => ({mediaType: 'application/octet-stream', digest: `sha256:${String(n).repeat(64).slice(0, 64)}`, size})

describe('TransferProgress', () => {
  describe('when enabled and the transfer is larger than the threshold', () => {
    it('draws one bar on the stream with bytes done out of the total', () => {
      const term = fakeTerminal(true)
      const p = new TransferProgress({enabled: true, stream: term, label: 'push x', fps: 1000})
      p.onProgress(desc(1, 3 * MiB), MiB)
      p.onProgress(desc(2, 3 * MiB), 3 * MiB)
      p.onProgress(desc(1, 3 * MiB), 3 * MiB)
      p.stop()
      expect(p.shown).to.equal(true)
      expect(term.text()).to.contain('push x')
      expect(term.text()).to.contain('6.0 MiB/6.0 MiB')
      expect(term.text()).to.contain('100%')
    })
  })
  describe('when the transfer is small', () => {
    it('draws nothing (policy bundles are kilobytes)', () => {
      const term = fakeTerminal(true)
      const p = new TransferProgress({enabled: true, stream: term, label: 'push x'})
      p.onProgress(desc(1, 2000), 2000)
      p.stop()
      expect(p.shown).to.equal(false)
      expect(term.text()).to.equal('')
    })
  })
  describe('when disabled (not a TTY, --json, CI)', () => {
    it('draws nothing whatever the size', () => {
      const term = fakeTerminal(true)
      const p = new TransferProgress({enabled: false, stream: term, label: 'push x'})
      p.onProgress(desc(1, 100 * MiB), 100 * MiB)
      p.stop()
      expect(term.text()).to.equal('')
    })
  })
})

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect(formatBytes(512)).to.equal('512 B')
    expect(formatBytes(1536)).to.equal('1.5 KiB')
    expect(formatBytes(100 * MiB)).to.equal('100 MiB')
  })
})

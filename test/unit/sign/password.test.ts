import {expect} from 'chai'
import {PassThrough, Readable} from 'node:stream'

import {AiboxError} from '../../../src/errors.js'
import {HiddenPrompt, PasswordSession, readPassword} from '../../../src/sign/index.js'

/** A terminal stand-in: a stream with isTTY and setRawMode, recording the raw-mode switches. */
function fakeTty(): PassThrough & {isTTY: boolean; setRawMode: (m: boolean) => void; modes: boolean[]} {
  const s = new PassThrough() as PassThrough & {isTTY: boolean; setRawMode: (m: boolean) => void; modes: boolean[]}
  s.isTTY = true
  s.modes = []
  s.setRawMode = (m: boolean) => {
    s.modes.push(m)
  }
  return s
}

function sink(): PassThrough & {text: () => string} {
  const out = new PassThrough() as PassThrough & {text: () => string}
  const chunks: Buffer[] = []
  out.on('data', (c: Buffer) => chunks.push(c))
  out.text = () => Buffer.concat(chunks).toString()
  return out
}

describe('sign/password', () => {
  describe('#readPassword', () => {
    describe('when AIBOX_PASSWORD and COSIGN_PASSWORD are set', () => {
      it('prefers AIBOX_PASSWORD, and an empty value is a password', async () => {
        expect(await readPassword({purpose: 'decrypt', source: 'k', env: {AIBOX_PASSWORD: '', COSIGN_PASSWORD: 'x'}})).to.deep.equal({candidates: [''], origin: 'env:AIBOX_PASSWORD'})
        expect(await readPassword({purpose: 'decrypt', source: 'k', env: {COSIGN_PASSWORD: ''}})).to.deep.equal({candidates: [''], origin: 'env:COSIGN_PASSWORD'})
      })
    })
    describe('when nothing is set and stdin is not a terminal', () => {
      it('fails at once with PASSWORD_REQUIRED instead of reading stdin', async () => {
        const stdin = new PassThrough() // never ends: reading it would hang
        try {
          await readPassword({purpose: 'decrypt', source: 'cosign.key', env: {}, stdin})
          expect.fail('should throw')
        } catch (err) {
          expect((err as AiboxError).code).to.equal('PASSWORD_REQUIRED')
          expect((err as AiboxError).message).to.contain("private key 'cosign.key'")
          expect((err as AiboxError).suggestions!.join(' ')).to.contain('COSIGN_PASSWORD')
        }
      })
    })
    describe('when --password-stdin is given', () => {
      it('tries the value without the trailing newline first, then as is, when decrypting', async () => {
        const r = await readPassword({purpose: 'decrypt', source: 'k', env: {}, passwordStdin: true, stdin: Readable.from([Buffer.from('pw\n')])})
        expect(r).to.deep.equal({candidates: ['pw', 'pw\n'], origin: 'stdin'})
        const e = await readPassword({purpose: 'encrypt', source: 'k', env: {}, passwordStdin: true, stdin: Readable.from([Buffer.from('pw\r\n')])})
        expect(e.candidates).to.deep.equal(['pw'])
      })
    })
    describe('when stdin is a terminal', () => {
      it('prompts without echo and confirms a new password', async () => {
        const tty = fakeTty()
        const err = sink()
        const p = readPassword({purpose: 'encrypt', source: 'k', env: {}, stdin: tty, stderr: err, confirm: true})
        tty.write('s3cret\r')
        await new Promise((r) => setImmediate(r))
        tty.write('s3cret\r')
        expect(await p).to.deep.equal({candidates: ['s3cret'], origin: 'tty'})
        expect(err.text()).to.equal('Enter password for private key: \nEnter password for private key again: \n')
        expect(err.text()).to.not.contain('s3cret')
        expect(tty.modes).to.deep.equal([true, false])
      })
      it('refuses two different passwords', async () => {
        const tty = fakeTty()
        const p = readPassword({purpose: 'encrypt', source: 'k', env: {}, stdin: tty, stderr: sink(), confirm: true})
        tty.write('one\rtwo\r')
        try {
          await p
          expect.fail('should throw')
        } catch (e) {
          expect((e as AiboxError).code).to.equal('PASSWORD_MISMATCH')
        }
        expect(tty.modes).to.deep.equal([true, false])
      })
    })
  })

  describe('HiddenPrompt', () => {
    describe('#ask', () => {
      it('handles backspace, \\r\\n and typed-ahead input', async () => {
        const tty = fakeTty()
        const prompt = new HiddenPrompt(tty, sink())
        tty.write('pax\u007fss\r\nsecond\n')
        expect(await prompt.ask('a: ')).to.equal('pass')
        expect(await prompt.ask('b: ')).to.equal('second')
        prompt.close()
      })
      it('aborts on Ctrl-C and on end of input', async () => {
        const tty = fakeTty()
        const prompt = new HiddenPrompt(tty, sink())
        const p = prompt.ask('a: ')
        tty.write('ab\u0003')
        try {
          await p
          expect.fail('should throw')
        } catch (e) {
          expect((e as AiboxError).code).to.equal('PASSWORD_ABORTED')
        }
        const p2 = prompt.ask('b: ')
        tty.end()
        try {
          await p2
          expect.fail('should throw')
        } catch (e) {
          expect((e as AiboxError).message).to.match(/closed/)
        }
        prompt.close()
      })
    })
  })

  describe('PasswordSession', () => {
    it('reads stdin once for both decrypting and encrypting', async () => {
      const session = new PasswordSession({passwordStdin: true, env: {}, stdin: Readable.from([Buffer.from('pw\n')])})
      expect(await session.decrypt({source: 'a', purpose: 'decrypt'})).to.deep.equal(['pw', 'pw\n'])
      expect(await session.forNewKey('b')).to.equal('pw')
    })
  })
})

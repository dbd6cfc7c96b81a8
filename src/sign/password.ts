/**
 * Where key passwords come from, in cosign's order (cosign-formats.md §d): an environment
 * variable (`AIBOX_PASSWORD`, else `COSIGN_PASSWORD`; set to "" means the empty password),
 * else stdin when the user asked for it with `--password-stdin`, else a no-echo prompt when
 * stdin is a terminal (twice, to confirm, when creating a key), else a clear error. We never
 * read a non-terminal stdin unasked: a CI job without a password must fail, not hang.
 */
import type {Readable, Writable} from 'node:stream'

import {InputError} from '../errors.js'
import type {PasswordSource} from './keys.js'

export type PasswordOrigin = 'env:AIBOX_PASSWORD' | 'env:COSIGN_PASSWORD' | 'stdin' | 'tty'

export interface PasswordRequest {
  purpose: 'decrypt' | 'encrypt'
  /** The key file, for the prompt and the error. */
  source: string
  /** Ask twice on a terminal and require both to match (key generation and import). */
  confirm?: boolean
  /** Read the password from stdin (all of it; one trailing newline is optional, see below). */
  passwordStdin?: boolean
  env?: NodeJS.ProcessEnv
  stdin?: Readable & {isTTY?: boolean; setRawMode?: (mode: boolean) => unknown}
  stderr?: Writable
}

export interface PasswordResult {
  /** Candidates to try in order (see `readPasswordStdin`); encryption uses the first. */
  candidates: string[]
  origin: PasswordOrigin
}

/** Finds the password for a key file (see the module comment for the order). */
export async function readPassword(req: PasswordRequest): Promise<PasswordResult> {
  const env = req.env ?? process.env
  if (env.AIBOX_PASSWORD !== undefined) return {candidates: [env.AIBOX_PASSWORD], origin: 'env:AIBOX_PASSWORD'}
  if (env.COSIGN_PASSWORD !== undefined) return {candidates: [env.COSIGN_PASSWORD], origin: 'env:COSIGN_PASSWORD'}
  const stdin = req.stdin ?? process.stdin
  if (req.passwordStdin) return {candidates: await readPasswordStdin(stdin, req.purpose), origin: 'stdin'}
  if (stdin.isTTY && typeof stdin.setRawMode === 'function') {
    const stderr = req.stderr ?? process.stderr
    const prompter = new HiddenPrompt(stdin as Readable & {setRawMode: (mode: boolean) => unknown}, stderr)
    try {
      const verb = req.purpose === 'encrypt' ? 'Enter password for private key' : `Enter password for private key ${req.source}`
      const first = await prompter.ask(`${verb}: `)
      if (req.confirm) {
        const again = await prompter.ask('Enter password for private key again: ')
        if (again !== first) throw new InputError('PASSWORD_MISMATCH', 'the two passwords do not match', {suggestions: ['run the command again']})
      }
      return {candidates: [first], origin: 'tty'}
    } finally {
      prompter.close()
    }
  }
  throw new InputError('PASSWORD_REQUIRED', `a password is needed for ${req.purpose === 'encrypt' ? 'the new private key' : `private key '${req.source}'`} and there is no terminal to ask on`, {
    suggestions: [
      'set COSIGN_PASSWORD or AIBOX_PASSWORD (an empty value means the empty password)',
      'or pipe it in with --password-stdin',
    ],
  })
}

/**
 * Reads all of stdin as the password. `echo pw | …` adds a newline that cosign (which also reads
 * all of stdin) keeps as part of the password, while `printf pw | …` and docker-style tools do
 * not: so we try the value without one trailing newline first and the exact bytes second when
 * decrypting, and encrypt with the value without the newline.
 */
export async function readPasswordStdin(stdin: Readable, purpose: 'decrypt' | 'encrypt'): Promise<string[]> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stdin) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
    size += b.length
    if (size > 64 * 1024) throw new InputError('PASSWORD_INVALID', 'the password read from stdin is longer than 64 KiB')
    chunks.push(b)
  }
  const exact = Buffer.concat(chunks).toString('utf8')
  const trimmed = exact.replace(/\r?\n$/, '')
  if (purpose === 'encrypt' || trimmed === exact) return [trimmed]
  return [trimmed, exact]
}

/**
 * A no-echo prompt on a terminal in raw mode: Enter ends the line, Backspace deletes, Ctrl-C
 * aborts, Ctrl-D on an empty line aborts. Input typed ahead (e.g. both passwords pasted at
 * once) is kept for the next question.
 */
export class HiddenPrompt {
  private pending = ''
  private readonly input: Readable & {setRawMode: (mode: boolean) => unknown}
  private readonly output: Writable
  private raw = false

  constructor(input: Readable & {setRawMode: (mode: boolean) => unknown}, output: Writable) {
    this.input = input
    this.output = output
  }

  ask(prompt: string): Promise<string> {
    // Raw mode first, then the prompt: a fast typist's first keys must not be echoed by the terminal.
    if (!this.raw) {
      this.input.setRawMode(true)
      this.raw = true
    }
    this.output.write(prompt)
    return new Promise((resolve, reject) => {
      let line = ''
      const finish = (err?: Error) => {
        this.input.off('data', onData)
        this.input.off('end', onEnd)
        this.input.pause()
        this.output.write('\n')
        if (err) reject(err)
        else resolve(line)
      }
      const feed = (text: string): boolean => {
        const chars = [...text]
        for (let i = 0; i < chars.length; i++) {
          const ch = chars[i]
          if (ch === '\r' || ch === '\n') {
            // Swallow the \n of a \r\n pair so it does not end the next question.
            let rest = chars.slice(i + 1).join('')
            if (ch === '\r' && rest.startsWith('\n')) rest = rest.slice(1)
            this.pending = rest
            finish()
            return true
          }
          if (ch === '\u0003') {
            finish(new InputError('PASSWORD_ABORTED', 'password entry interrupted'))
            return true
          }
          if (ch === '\u0004' && line === '') {
            finish(new InputError('PASSWORD_ABORTED', 'password entry ended (Ctrl-D)'))
            return true
          }
          if (ch === '\u007f' || ch === '\b') line = [...line].slice(0, -1).join('')
          else if (ch >= ' ' || ch === '\t') line += ch
        }
        return false
      }
      const onData = (chunk: Buffer | string) => {
        feed(typeof chunk === 'string' ? chunk : chunk.toString('utf8'))
      }
      const onEnd = () => finish(new InputError('PASSWORD_ABORTED', 'the terminal closed before a password was entered'))
      const queued = this.pending
      this.pending = ''
      if (queued && feed(queued)) return
      this.input.on('data', onData)
      this.input.on('end', onEnd)
      this.input.resume()
    })
  }

  close(): void {
    if (this.raw) {
      this.input.setRawMode(false)
      this.raw = false
    }
    this.input.pause()
  }
}

/**
 * The passwords of one command run: stdin (with `--password-stdin`) is read once and reused, so
 * `aibox key import` can decrypt an existing cosign key and re-encrypt it with the same input.
 */
export class PasswordSession {
  private readonly options: Omit<PasswordRequest, 'purpose' | 'source' | 'confirm'>
  private stdinText?: Promise<string>

  constructor(options: Omit<PasswordRequest, 'purpose' | 'source' | 'confirm'> = {}) {
    this.options = options
  }

  private async request(purpose: 'decrypt' | 'encrypt', source: string, confirm: boolean): Promise<PasswordResult> {
    const env = this.options.env ?? process.env
    if (this.options.passwordStdin && env.AIBOX_PASSWORD === undefined && env.COSIGN_PASSWORD === undefined) {
      this.stdinText ??= readPasswordStdin(this.options.stdin ?? process.stdin, 'decrypt').then((c) => c[c.length - 1])
      const exact = await this.stdinText
      const trimmed = exact.replace(/\r?\n$/, '')
      return {candidates: purpose === 'encrypt' || trimmed === exact ? [trimmed] : [trimmed, exact], origin: 'stdin'}
    }
    return readPassword({...this.options, purpose, source, confirm})
  }

  /** A `PasswordSource` for loading keys: called only when the key is encrypted. */
  readonly decrypt: Exclude<PasswordSource, string> = async ({source}) => (await this.request('decrypt', source, false)).candidates

  /** The password for a new key file (asked twice on a terminal). */
  async forNewKey(source: string): Promise<string> {
    return (await this.request('encrypt', source, true)).candidates[0]
  }
}

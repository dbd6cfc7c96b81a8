/**
 * Reading policy documents: bytes → JSON data, strictly, with source positions.
 *
 * JSON goes through the byte scanner (strict-json.ts), YAML through the strict AST walk
 * (strict-yaml.ts). Both yield trees of null-prototype objects and located problems
 * (`file:line:col` + JSON pointer). Problems that prevent reading the document (syntax)
 * are thrown at once; the others (duplicate keys, unsafe integers, tags…) are returned so
 * that schema problems can be added and everything reported together (architecture.md).
 */
import {isUtf8} from 'node:buffer'
import fs from 'node:fs'
import path from 'node:path'

import {InputError, NotFoundError, type Problem, ValidationError} from '../errors.js'
import {type JsonValue, parsePointer, toNullProto} from './json.js'
import {firstInvalidUtf8, JsonSyntaxError, locateJson, scanJson} from './strict-json.js'
import {parseYamlStrict, type YamlParseOptions} from './strict-yaml.js'
import {readFdBounded} from '../util/read.js'

export type DocFormat = 'json' | 'yaml'

/** Largest policy document we read (bundles are kilobytes; the 50,000-rule benchmark is ~12 MB). */
export const MAX_DOCUMENT_BYTES = 256 * 1024 * 1024

/**
 * Largest YAML document: `yaml` needs about 70 bytes of memory and 0.5 µs per byte of input
 * (toolchain.md: 14 MB → 7 s, 1 GiB), so 256 MiB of hostile YAML would need ~18 GiB. 16 MiB
 * holds the 50,000-rule benchmark; bigger policies are published as JSON (the fast path).
 */
export const MAX_YAML_BYTES = 16 * 1024 * 1024

export interface SourcePosition {
  line: number
  col: number
}

export interface ParsedDocument {
  file: string
  format: DocFormat
  /** The decoded source text (without a byte-order mark). */
  text: string
  value: JsonValue
  /** RFC 8785 canonical bytes, when the JSON scanner produced them on the way. */
  canonical?: Buffer
  /** Problems that did not stop the parse (already located). */
  problems: Problem[]
  /**
   * Source position of the member or element at `ptr` (RFC 6901): the key's position when
   * `preferKey` and the pointer ends at an object member, else the value's.
   */
  locate(ptr: string, preferKey?: boolean): SourcePosition | undefined
}

/** Format from the file extension, else from the first non-blank character. */
export function detectFormat(file: string, text: string): DocFormat {
  const ext = path.extname(file).toLowerCase()
  if (ext === '.json') return 'json'
  if (ext === '.yaml' || ext === '.yml') return 'yaml'
  const m = /^\uFEFF?\s*(\S)/.exec(text)
  return m && (m[1] === '{' || m[1] === '[') ? 'json' : 'yaml'
}

/** Reads a file (or stdin for "-") with clear errors instead of raw Node ones. */
export function readSource(file: string): Buffer {
  try {
    const tooLarge = (size?: number) =>
      new InputError('TOO_LARGE', `${file} ${size === undefined ? 'has more than' : `is ${size} bytes, more than`} the ${MAX_DOCUMENT_BYTES}-byte limit for a policy document`)
    if (file === '-') {
      const data = readFdBounded(0, MAX_DOCUMENT_BYTES)
      if (!data) throw tooLarge()
      return data
    }
    const fd = fs.openSync(file, 'r')
    try {
      const st = fs.fstatSync(fd)
      if (st.isDirectory()) throw new InputError('IS_A_DIRECTORY', `${file} is a directory, not a policy file`, {suggestions: ['pass the path of a .yaml or .json file']})
      if (st.size > MAX_DOCUMENT_BYTES) throw tooLarge(st.size)
      // Bounded whatever stat says (a link to /dev/zero has size 0, a file may grow while read).
      const data = readFdBounded(fd, MAX_DOCUMENT_BYTES, st.size)
      if (!data) throw tooLarge()
      return data
    } finally {
      fs.closeSync(fd)
    }
  } catch (err) {
    if (err instanceof InputError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      throw new NotFoundError('FILE_NOT_FOUND', `${file}: no such file`, {suggestions: ['check the path (it is relative to the current directory)']})
    }
    if (code === 'EACCES' || code === 'EPERM') throw new InputError('FILE_UNREADABLE', `${file}: permission denied`, {cause: err})
    throw new InputError('FILE_UNREADABLE', `${file}: cannot read: ${(err as Error).message}`, {cause: err})
  }
}

/** Line and column (1-based, columns in code points) of UTF-16 offsets in a text. */
export class LineIndex {
  private starts?: number[]
  constructor(private readonly text: string) {}

  position(offset: number): SourcePosition {
    if (!this.starts) {
      const s = [0]
      for (let i = this.text.indexOf('\n'); i >= 0; i = this.text.indexOf('\n', i + 1)) s.push(i + 1)
      this.starts = s
    }
    const starts = this.starts
    let lo = 0
    let hi = starts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (starts[mid] <= offset) lo = mid
      else hi = mid - 1
    }
    const lineStart = starts[lo]
    let col = 1
    for (let i = lineStart; i < offset && i < this.text.length; i++) {
      const c = this.text.charCodeAt(i)
      if (!(c >= 0xdc00 && c <= 0xdfff && i > lineStart)) col++
    }
    return {line: lo + 1, col}
  }
}

export interface ParseOptions extends YamlParseOptions {
  /** Default: from the file extension, else the first non-blank character (`detectFormat`). */
  format?: DocFormat
}

/**
 * Parses a JSON or YAML document strictly. Throws ValidationError for syntax problems
 * (located); returns the others in `problems`. Parse only: no schema (trust policies use it too).
 */
export function parseDocument(input: Uint8Array | string, file: string, options: ParseOptions = {}): ParsedDocument {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength)
  if (typeof input !== 'string' && !isUtf8(bytes)) {
    const at = firstInvalidUtf8(bytes)
    const before = bytes.subarray(0, at).toString('utf8')
    const idx = new LineIndex(before)
    const pos = idx.position(before.length)
    throw new ValidationError('INVALID_UTF8', `${file} is not valid UTF-8`, [{file, ...pos, message: `invalid UTF-8 byte 0x${bytes[at].toString(16).padStart(2, '0')}`}], {
      suggestions: ['save the file as UTF-8'],
    })
  }
  const bom = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0
  const text = bytes.toString('utf8', bom)
  const format = options.format ?? detectFormat(file, text)
  if (format === 'yaml' && bytes.length > MAX_YAML_BYTES) {
    throw new InputError('TOO_LARGE', `${file} is ${bytes.length} bytes of YAML, more than the ${MAX_YAML_BYTES}-byte limit for a YAML document`, {
      suggestions: ['publish large policies as JSON (up to 256 MiB)'],
    })
  }
  return format === 'json' ? parseJsonDocument(bytes, bom, text, file) : parseYamlDocument(text, file, options)
}

function parseJsonDocument(bytes: Buffer, bom: number, text: string, file: string): ParsedDocument {
  const lines = new LineIndex(text)
  const charOffset = (byteOffset: number) => bytes.toString('utf8', bom, Math.max(bom, byteOffset)).length
  let scan
  try {
    scan = scanJson(bytes)
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err
    const pos = lines.position(charOffset(err.offset))
    throw new ValidationError('JSON_SYNTAX', `${file} is not valid JSON`, [{file, ...pos, message: err.message}], {
      suggestions: ['fix the syntax at the position shown (a JSON linter or `jq . FILE` shows the same spot)'],
    })
  }
  const problems: Problem[] = sortProblems(scan.problems.map((p) => {
    let message = p.message
    if (p.firstOffset !== undefined) message += ` (first defined at line ${lines.position(charOffset(p.firstOffset)).line})`
    return {file, ...lines.position(charOffset(p.offset)), pointer: p.pointer, message}
  }))
  const value = toNullProto(JSON.parse(text))
  return {
    file,
    format: 'json',
    text,
    value,
    canonical: problems.length === 0 ? scan.canonical : undefined,
    problems,
    locate(ptr, preferKey = false) {
      const at = locateJson(text, parsePointer(ptr))
      if (!at) return undefined
      return lines.position(preferKey && at.key !== undefined ? at.key : at.value)
    },
  }
}

/**
 * Characters YAML 1.2 does not allow in a stream (§5.1 c-printable: C0 controls other than tab,
 * LF and CR, DEL, C1 controls other than NEL, U+FFFE/U+FFFF). `yaml` accepts them silently, so a
 * NUL or an ESC could sit invisibly inside a value; escapes such as "\0" in quoted scalars are fine.
 */
const NON_PRINTABLE_YAML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u0084\u0086-\u009f\ufffe\uffff]/

function parseYamlDocument(text: string, file: string, options: YamlParseOptions): ParsedDocument {
  const lines = new LineIndex(text)
  const bad = NON_PRINTABLE_YAML.exec(text)
  if (bad) {
    const hex = bad[0].charCodeAt(0).toString(16).padStart(4, '0')
    const code = `U+${hex.toUpperCase()}`
    throw new ValidationError('YAML_SYNTAX', `${file} is not valid YAML`, [{file, ...lines.position(bad.index), message: `control character ${code} is not allowed in YAML (write it as an escape in a double-quoted string)`}], {
      suggestions: [`remove the character, or write it as "\\u${hex}" inside double quotes`],
    })
  }
  const r = parseYamlStrict(text, options)
  const located = r.problems.map((p) => {
    let message = p.message
    const first = (p as {firstOffset?: number}).firstOffset
    if (first !== undefined) message += ` (first defined at line ${lines.position(first).line})`
    const pr: Problem = {file, ...lines.position(p.offset), message}
    if (p.pointer !== '' || !p.fatal) pr.pointer = p.pointer
    return {problem: pr, fatal: p.fatal === true}
  })
  if (located.some((p) => p.fatal)) {
    throw new ValidationError(
      'YAML_SYNTAX',
      `${file} is not valid YAML`,
      located.map((p) => p.problem),
      {suggestions: ['fix the problems at the positions shown; check indentation and quoting']},
    )
  }
  return {
    file,
    format: 'yaml',
    text,
    value: r.value,
    problems: located.map((p) => p.problem),
    locate(ptr, preferKey = false) {
      const at = r.locate(parsePointer(ptr))
      if (!at) return undefined
      return lines.position(preferKey && at.key !== undefined ? at.key : at.value)
    },
  }
}

/** Parses and throws every problem at once: for callers that need clean data (e.g. `hash --raw`). */
export function parseStrict(input: Uint8Array | string, file: string, options: ParseOptions = {}): ParsedDocument {
  const doc = parseDocument(input, file, options)
  if (doc.problems.length > 0) {
    throw new ValidationError('INVALID_DOCUMENT', `${file}: ${doc.problems.length} problem${doc.problems.length === 1 ? '' : 's'}`, sortProblems(doc.problems))
  }
  return doc
}

export function sortProblems(problems: Problem[]): Problem[] {
  return [...problems].sort(
    (a, b) =>
      (a.file ?? '').localeCompare(b.file ?? '') ||
      (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER) ||
      (a.col ?? 0) - (b.col ?? 0) ||
      (a.pointer ?? '').localeCompare(b.pointer ?? ''),
  )
}

/**
 * Strict YAML: YAML 1.2 (core schema) read with the `yaml` package, then converted to plain
 * JSON data by our own walk over the document AST so that every value can be checked:
 * only JSON-compatible scalars (string, finite number, safe integer, boolean, null), string
 * keys only, no duplicate keys, no explicit tags beyond the JSON ones (`!!binary`,
 * `!!timestamp`, `!!set`, custom `!tags` are errors), no merge keys, and alias expansion
 * capped so that an "alias bomb" (billion laughs) is refused instead of expanded.
 *
 * Hostile input (testdata/hostile/README.md): `yaml`'s composer recurses once per nesting level
 * and overflows the stack at ~780 levels; near the edge V8 may even abort the process (a fatal
 * "RegExpCompiler Allocation failed"). So the token stream is checked while it is read and
 * refused as soon as the parser's stack is deeper than MAX_YAML_DEPTH, long before the composer
 * runs. Duplicate keys are found by the walk below in O(n) (yaml's own `uniqueKeys` check is
 * O(n²): 200,000 keys took minutes), and integers too long to be safe are never given to BigInt
 * (quadratic in the number of digits).
 *
 * `yaml` parses about 2 MB/s (toolchain.md table 3); bundles are small, and the JSON path
 * (strict-json.ts) is the fast one.
 */
import {Alias, Composer, type Document, type DocumentOptions, isAlias, isMap, isPair, isScalar, isSeq, Lexer, LineCounter, type Node, type ParseOptions, Parser, Scalar, type SchemaOptions, type Tags, YAMLMap, YAMLSeq} from 'yaml'

import {dict, isWellFormed, type JsonValue, pointer} from './json.js'

/** Maximum nesting depth (as for JSON, strict-json.ts). */
export const MAX_YAML_DEPTH = 512

/** Most nodes that alias expansion may add to a document before it is refused. */
export const MAX_ALIAS_NODES = 100_000

/**
 * Parser stack entries allowed while reading tokens: one per open collection plus a few for the
 * document and the scalar being read. Keeps the composer's recursion far from the stack limit.
 */
const MAX_PARSER_STACK = MAX_YAML_DEPTH + 8

/** Integers with more significant digits than this are refused without being converted. */
const MAX_INTEGER_DIGITS = 40

/** Nesting deeper than MAX_YAML_DEPTH, found while reading tokens; `offset` is where. */
export class YamlNestingError extends Error {
  constructor(readonly offset: number) {
    super(`nesting deeper than ${MAX_YAML_DEPTH} levels`)
    this.name = 'YamlNestingError'
  }
}

/** An integer literal too long to be a safe integer, kept unconverted (BigInt parsing is quadratic). */
export class OversizedInteger {
  constructor(readonly source: string) {}
}

/** The core schema's int tags, with oversized literals resolved to OversizedInteger instead of BigInt. */
export function guardIntegerTags(tags: Tags): Tags {
  return tags.map((t) => {
    if (typeof t !== 'object' || t.tag !== 'tag:yaml.org,2002:int' || typeof t.resolve !== 'function') return t
    const resolve = t.resolve.bind(t) as (...args: unknown[]) => unknown
    return {
      ...t,
      resolve: (str: string, ...rest: unknown[]) =>
        str.replace(/^[-+]?(0[xo])?0*/, '').length > MAX_INTEGER_DIGITS ? new OversizedInteger(str) : resolve(str, ...rest),
    }
  }) as Tags
}

/**
 * `yaml`'s parseAllDocuments, with the nesting check described above: throws YamlNestingError as
 * soon as the parser holds more than MAX_PARSER_STACK open nodes (before composing anything).
 */
export function composeYaml(
  text: string,
  options: ParseOptions & DocumentOptions & SchemaOptions & {lineCounter: LineCounter},
  forceDoc = false,
): Document.Parsed[] {
  const parser = new Parser(options.lineCounter.addNewLine)
  const composer = new Composer(options)
  function* tokens() {
    options.lineCounter.addNewLine(0)
    for (const lexeme of new Lexer().lex(text)) {
      yield* parser.next(lexeme)
      if (parser.stack.length > MAX_PARSER_STACK) throw new YamlNestingError(parser.offset)
    }
    yield* parser.end()
  }
  return Array.from(composer.compose(tokens(), forceDoc, text.length)) as Document.Parsed[]
}

export interface YamlProblem {
  /** UTF-16 offset into the text. */
  offset: number
  pointer: string
  message: string
  code: string
  /** A syntax problem: the document could not be read as written. */
  fatal?: boolean
}

export interface YamlParseResult {
  value: JsonValue
  problems: YamlProblem[]
  /** UTF-16 offsets of the key and value at a pointer, when they exist. */
  locate(ptr: string[]): {key?: number; value: number} | undefined
}

const JSON_SCALAR_TAGS = new Set([
  'tag:yaml.org,2002:str',
  'tag:yaml.org,2002:int',
  'tag:yaml.org,2002:float',
  'tag:yaml.org,2002:bool',
  'tag:yaml.org,2002:null',
  '!',
])

export interface YamlParseOptions {
  /** Allow anchors and aliases (expanded, capped at MAX_ALIAS_NODES). Default true; false makes each one a problem. */
  aliases?: boolean
}

export function parseYamlStrict(text: string, options: YamlParseOptions = {}): YamlParseResult {
  const lineCounter = new LineCounter()
  const problems: YamlProblem[] = []
  let list: Document.Parsed[]
  try {
    list = composeYaml(text, {
      lineCounter,
      schema: 'core',
      customTags: guardIntegerTags,
      version: '1.2',
      // Duplicate keys are reported by the walk (O(n)); yaml's check is O(n²).
      uniqueKeys: false,
      strict: true,
      intAsBigInt: true,
      merge: false,
      prettyErrors: false,
      keepSourceTokens: false,
    })
  } catch (err) {
    if (!(err instanceof YamlNestingError)) throw err
    problems.push({offset: err.offset, pointer: '', message: err.message, code: 'TOO_DEEP', fatal: true})
    return {value: null, problems, locate: () => undefined}
  }
  if (list.length === 0) {
    problems.push({offset: 0, pointer: '', message: 'empty document: expected a YAML mapping', code: 'EMPTY', fatal: true})
    return {value: null, problems, locate: () => undefined}
  }
  for (let i = 1; i < list.length; i++) {
    const r = list[i].contents?.range ?? list[i].range
    problems.push({offset: r?.[0] ?? 0, pointer: '', message: `expected a single YAML document, found ${list.length} (remove the extra '---' sections)`, code: 'MULTIPLE_DOCUMENTS', fatal: true})
  }
  const doc = list[0]
  for (const e of doc.errors) {
    problems.push({offset: e.pos[0], pointer: '', message: firstLine(e.message), code: `YAML_${e.code}`, fatal: true})
  }
  for (const w of doc.warnings) {
    // Unresolved tags are reported by the walk below, with the pointer.
    if (w.code === 'TAG_RESOLVE_FAILED') continue
    problems.push({offset: w.pos[0], pointer: '', message: firstLine(w.message), code: `YAML_${w.code}`})
  }
  const walker = new Walker(doc, problems, options.aliases ?? true)
  const value = doc.contents === null ? null : walker.walk(doc.contents as Node, [])
  if (doc.contents === null && problems.length === 0) {
    problems.push({offset: 0, pointer: '', message: 'empty document: expected a YAML mapping', code: 'EMPTY', fatal: true})
  }
  return {
    value,
    problems,
    locate: (segments) => locateYaml(doc, walker.anchors, segments),
  }
}

function firstLine(s: string): string {
  const i = s.indexOf('\n')
  return (i < 0 ? s : s.slice(0, i)).replace(/ at line \d+, column \d+:?$/, '')
}

class Walker {
  readonly anchors = new Map<string, Node>()
  private aliasDepth = 0
  private aliasRoot?: Alias
  private aliasNodes = 0
  private bombReported = false
  private deepReported = false
  private readonly active = new Set<Node>()

  constructor(
    private readonly doc: Document.Parsed,
    private readonly problems: YamlProblem[],
    private readonly allowAliases: boolean,
  ) {}

  private report(node: Node | undefined, path: Array<string | number>, code: string, message: string): void {
    if (this.aliasDepth > 0) return // reported once, at the anchor itself
    if (this.problems.length >= 1000) return
    this.problems.push({offset: node?.range?.[0] ?? 0, pointer: pointer(path), message, code})
  }

  walk(node: Node | null | undefined, path: Array<string | number>): JsonValue {
    if (node === null || node === undefined) return null
    if (path.length > MAX_YAML_DEPTH) {
      if (!this.deepReported) {
        this.deepReported = true
        this.problems.push({offset: node.range?.[0] ?? 0, pointer: pointer(path), message: `nesting deeper than ${MAX_YAML_DEPTH} levels`, code: 'TOO_DEEP', fatal: true})
      }
      return null
    }
    if (this.aliasDepth > 0 && ++this.aliasNodes > MAX_ALIAS_NODES) {
      if (!this.bombReported) {
        this.bombReported = true
        this.problems.push({
          offset: this.aliasRoot?.range?.[0] ?? 0,
          pointer: pointer(path),
          message: `alias expansion exceeds ${MAX_ALIAS_NODES} nodes (an "alias bomb"?); write the data out or use fewer aliases`,
          code: 'ALIAS_BOMB',
          fatal: true,
        })
      }
      return null
    }
    if (this.aliasDepth === 0 && node.anchor) {
      this.anchors.set(node.anchor, node)
      if (!this.allowAliases) this.report(node, path, 'ANCHOR', 'anchors (&name) are not allowed')
    }
    if (isAlias(node)) return this.alias(node, path)
    if (isScalar(node)) return this.scalar(node, path)
    if (isMap(node)) return this.map(node as YAMLMap, path)
    if (isSeq(node)) return this.seq(node as YAMLSeq, path)
    this.report(node, path, 'UNSUPPORTED_NODE', 'unsupported YAML node')
    return null
  }

  private alias(node: Alias, path: Array<string | number>): JsonValue {
    if (!this.allowAliases) {
      this.report(node, path, 'ALIAS', 'aliases (*name) are not allowed')
      return null
    }
    const target = this.anchors.get(node.source)
    if (!target) {
      this.report(node, path, 'UNKNOWN_ALIAS', `alias *${node.source} refers to no anchor defined before it`)
      return null
    }
    if (this.active.has(target)) {
      this.report(node, path, 'RECURSIVE_ALIAS', `alias *${node.source} refers to a node that contains it (recursive data is not JSON)`)
      return null
    }
    if (this.aliasDepth === 0) this.aliasRoot = node
    this.aliasDepth++
    this.active.add(target)
    try {
      return this.walk(target, path)
    } finally {
      this.active.delete(target)
      this.aliasDepth--
    }
  }

  private scalar(node: Scalar, path: Array<string | number>): JsonValue {
    if (node.tag !== undefined && !JSON_SCALAR_TAGS.has(node.tag)) {
      this.report(node, path, 'UNSUPPORTED_TAG', `YAML tag ${shortTag(node.tag)} is not allowed: only JSON-compatible values (strings, numbers, booleans, null)`)
      return null
    }
    const v = node.value as unknown
    switch (typeof v) {
      case 'string':
        if (!isWellFormed(v)) {
          this.report(node, path, 'LONE_SURROGATE', 'string contains a lone UTF-16 surrogate, which RFC 8785 cannot encode')
        }
        return v
      case 'boolean':
        return v
      case 'bigint':
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
          this.report(node, path, 'UNSAFE_INTEGER', `integer ${v} is outside ±(2^53-1) and would lose precision; quote it as a string`)
          return null
        }
        return Number(v)
      case 'number':
        if (!Number.isFinite(v)) {
          this.report(node, path, 'NUMBER_RANGE', `${abbreviate(String(node.source ?? v))} (${String(v)}) is not a JSON number`)
          return null
        }
        return v
      case 'object':
        if (v === null) return null
        if (v instanceof OversizedInteger) {
          this.report(node, path, 'UNSAFE_INTEGER', `integer ${abbreviate(v.source)} is outside ±(2^53-1) and would lose precision; quote it as a string`)
          return null
        }
        this.report(node, path, 'NOT_JSON', `value of type ${describe(v)} is not JSON data`)
        return null
      default:
        this.report(node, path, 'NOT_JSON', `value of type ${typeof v} is not JSON data`)
        return null
    }
  }

  private map(node: YAMLMap, path: Array<string | number>): JsonValue {
    if (node.tag !== undefined && node.tag !== 'tag:yaml.org,2002:map') {
      this.report(node, path, 'UNSUPPORTED_TAG', `YAML tag ${shortTag(node.tag)} is not allowed on a mapping: only plain mappings are JSON objects`)
      return null
    }
    this.active.add(node)
    const out = dict()
    const seen = new Map<string, Node>()
    for (const pair of node.items) {
      if (!isPair(pair)) continue
      const keyNode = pair.key as Node | null
      const key = this.key(keyNode, pair.value as Node | null, path)
      if (key === undefined) continue
      const first = seen.get(key)
      if (first) {
        const at = this.problems.length
        this.report(keyNode ?? undefined, [...path, key], 'DUPLICATE_KEY', `duplicate key ${JSON.stringify(key)}`)
        if (this.problems.length > at) (this.problems[at] as YamlProblem & {firstOffset?: number}).firstOffset = first.range?.[0]
        continue
      }
      seen.set(key, keyNode as Node)
      path.push(key)
      out[key] = this.walk(pair.value as Node | null, path)
      path.pop()
    }
    this.active.delete(node)
    return out
  }

  private key(keyNode: Node | null, valueNode: Node | null, path: Array<string | number>): string | undefined {
    if (keyNode === null || keyNode === undefined) {
      this.report(valueNode ?? undefined, path, 'EMPTY_KEY', 'mapping entry without a key')
      return undefined
    }
    if (!isScalar(keyNode)) {
      this.report(keyNode, path, 'NON_STRING_KEY', isAlias(keyNode) ? 'aliases cannot be used as keys' : 'keys must be strings, not mappings or sequences')
      return undefined
    }
    if (keyNode.tag !== undefined && !JSON_SCALAR_TAGS.has(keyNode.tag)) {
      this.report(keyNode, path, 'UNSUPPORTED_TAG', `YAML tag ${shortTag(keyNode.tag)} is not allowed on a key`)
      return undefined
    }
    const v = keyNode.value as unknown
    if (typeof v !== 'string') {
      const numeric = typeof v === 'bigint' || typeof v === 'number' || v instanceof OversizedInteger
      const shown = numeric || typeof v === 'boolean' || v === null ? abbreviate(String(keyNode.source ?? v)) : typeof v
      this.report(keyNode, path, 'NON_STRING_KEY', `key ${shown} is a ${v === null ? 'null' : numeric ? 'number' : typeof v}, not a string; quote it ("${shown}")`)
      return undefined
    }
    if (v === '<<' && keyNode.type === Scalar.PLAIN) {
      this.report(keyNode, path, 'MERGE_KEY', 'YAML merge keys (<<) are not supported; write the keys out (or quote "<<" if it is data)')
      return undefined
    }
    if (!isWellFormed(v)) {
      this.report(keyNode, path, 'LONE_SURROGATE', 'key contains a lone UTF-16 surrogate, which RFC 8785 cannot encode')
    }
    return v
  }

  private seq(node: YAMLSeq, path: Array<string | number>): JsonValue {
    if (node.tag !== undefined && node.tag !== 'tag:yaml.org,2002:seq') {
      this.report(node, path, 'UNSUPPORTED_TAG', `YAML tag ${shortTag(node.tag)} is not allowed on a sequence: only plain sequences are JSON arrays`)
      return null
    }
    this.active.add(node)
    const out: JsonValue[] = []
    for (let i = 0; i < node.items.length; i++) {
      path.push(i)
      out.push(this.walk(node.items[i] as Node, path))
      path.pop()
    }
    this.active.delete(node)
    return out
  }
}

/** A number literal for a message: long ones shortened to their start and their length. */
export function abbreviate(literal: string): string {
  return literal.length <= 40 ? literal : `${literal.slice(0, 24)}… (${literal.length} characters)`
}

function shortTag(tag: string): string {
  return tag.startsWith('tag:yaml.org,2002:') ? `!!${tag.slice('tag:yaml.org,2002:'.length)}` : tag
}

function describe(v: object): string {
  if (v instanceof Date) return 'timestamp'
  if (v instanceof Uint8Array) return 'binary'
  if (v instanceof Map) return 'map'
  if (v instanceof Set) return 'set'
  return v.constructor?.name ?? 'object'
}

function locateYaml(doc: Document.Parsed, anchors: Map<string, Node>, segments: string[]): {key?: number; value: number} | undefined {
  let node = doc.contents as Node | null
  let key: number | undefined
  for (const seg of segments) {
    if (node && isAlias(node)) node = anchors.get(node.source) ?? null
    if (!node) return undefined
    if (isMap(node)) {
      const pair = (node as YAMLMap).items.find((p) => isScalar(p.key) && (p.key as Scalar).value === seg)
      if (!pair) return undefined
      key = (pair.key as Node).range?.[0]
      node = (pair.value as Node | null) ?? null
      if (!node) return key === undefined ? undefined : {key, value: key}
    } else if (isSeq(node)) {
      const i = Number(seg)
      const items = (node as YAMLSeq).items
      if (!/^(0|[1-9]\d*)$/.test(seg) || i >= items.length) return undefined
      node = items[i] as Node
      key = undefined
    } else {
      return undefined
    }
  }
  if (node && isAlias(node) && node.range) return {key, value: node.range[0]}
  const start = node?.range?.[0]
  if (start === undefined) return key === undefined ? undefined : {key, value: key}
  return {key, value: start}
}

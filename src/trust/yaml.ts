/**
 * A small strict YAML loader for the trust policy: YAML 1.2 core schema, and every one of these
 * is an error with file:line:col: syntax errors, duplicate keys, anchors and aliases, tags,
 * non-string keys, several documents. Positions are kept per JSON pointer so schema and
 * semantic problems can be located too.
 *
 * Deliberately minimal and private to src/trust: `src/bundle` (written in parallel) will
 * provide the project's strict YAML parsing, and this file can then be replaced by it.
 *
 * Hostile input: documents are read through bundle's `composeYaml`, which refuses nesting deeper
 * than 512 levels before yaml's recursive composer runs (deep nesting overflowed the stack, and
 * could abort the process); duplicate keys are found here with a Set (yaml's check is O(n²)).
 */
import {LineCounter, type Node, isAlias, isMap, isPair, isScalar, isSeq} from 'yaml'

import {composeYaml, guardIntegerTags, OversizedInteger, YamlNestingError} from '../bundle/strict-yaml.js'
import type {Problem} from '../errors.js'

export interface Position {
  line: number
  col: number
}

export interface StrictYaml {
  value: unknown
  /** Position of the value at `pointer` (or of its key, with `key: true`), when known. */
  locate(pointer: string, options?: {key?: boolean}): Position | undefined
}

const MAX_PROBLEMS = 100

export function escapePointer(segment: string | number): string {
  return String(segment).replace(/~/g, '~0').replace(/\//g, '~1')
}

/** Parses `text`; returns the value and a locator, or the problems (never both). */
export function parseYamlStrict(text: string, file: string): {yaml?: StrictYaml; problems: Problem[]} {
  const lc = new LineCounter()
  const problems: Problem[] = []
  const at = (offset: number | undefined): Position | undefined => {
    if (offset === undefined) return undefined
    const p = lc.linePos(offset)
    return {line: p.line, col: p.col}
  }
  let docs
  try {
    docs = composeYaml(text, {lineCounter: lc, uniqueKeys: false, prettyErrors: false, schema: 'core', customTags: guardIntegerTags, merge: false, strict: true}, true)
  } catch (err) {
    if (!(err instanceof YamlNestingError)) throw err
    return {problems: [{file, ...at(err.offset), message: err.message}]}
  }
  const doc = docs[0]!
  if (docs.length > 1) {
    problems.push({file, ...at(docs[1]!.range[0]), message: 'Source contains multiple documents: a trust policy is one YAML document'})
  }
  for (const e of [...doc.errors, ...doc.warnings]) {
    const pos = at(e.pos?.[0])
    problems.push({file, ...(pos ? {line: pos.line, col: pos.col} : {}), message: e.message.split('\n')[0]})
  }
  const values = new Map<string, Position>()
  const keys = new Map<string, Position>()
  const walk = (node: unknown, pointer: string) => {
    if (!node) return
    const n = node as Node
    const pos = at(n.range?.[0])
    if (pos) values.set(pointer, pos)
    if (isAlias(node)) {
      problems.push({file, ...pos, pointer, message: 'aliases (*name) are not allowed'})
      return
    }
    if (isScalar(node) && node.value instanceof OversizedInteger) {
      problems.push({file, ...pos, pointer, message: `integer of ${node.value.source.length} digits is too large`})
      return
    }
    if ((n as {anchor?: string}).anchor) problems.push({file, ...pos, pointer, message: 'anchors (&name) are not allowed'})
    if (n.tag && !isMap(node) && !isSeq(node) && !['tag:yaml.org,2002:str', 'tag:yaml.org,2002:int', 'tag:yaml.org,2002:bool', 'tag:yaml.org,2002:null', 'tag:yaml.org,2002:float'].includes(n.tag)) {
      problems.push({file, ...pos, pointer, message: `tag ${n.tag} is not allowed`})
    }
    if (isMap(node)) {
      const seen = new Set<string>()
      for (const pair of node.items) {
        if (!isPair(pair)) continue
        const k = pair.key
        if (!isScalar(k) || typeof k.value !== 'string') {
          const kpos = at((k as Node | null)?.range?.[0])
          const shown = isScalar(k) ? (typeof k.source === 'string' && k.source.length > 40 ? `${k.source.slice(0, 24)}…` : JSON.stringify(k.value) ?? String(k.source)) : 'a collection'
          problems.push({file, ...kpos, pointer, message: `keys must be strings, got ${shown}`})
          continue
        }
        const child = `${pointer}/${escapePointer(k.value)}`
        const kpos = at(k.range?.[0])
        if (seen.has(k.value)) {
          problems.push({file, ...kpos, message: `Map keys must be unique: duplicate key ${JSON.stringify(k.value.length > 80 ? `${k.value.slice(0, 80)}…` : k.value)} at ${pointer || '/'}`})
          continue
        }
        seen.add(k.value)
        if (kpos) keys.set(child, kpos)
        walk(pair.value, child)
        if (pair.value === null && kpos) values.set(child, kpos)
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, `${pointer}/${i}`))
    }
  }
  walk(doc.contents, '')
  // A hostile file can have a problem per line: report the first ones, not a message of megabytes.
  if (problems.length > MAX_PROBLEMS) problems.splice(MAX_PROBLEMS, problems.length - MAX_PROBLEMS, {file, message: `… and ${problems.length - MAX_PROBLEMS} more problems`})
  if (problems.length > 0) return {problems}
  const value = doc.toJS({maxAliasCount: 0})
  return {
    yaml: {
      value,
      locate(pointer, options) {
        if (options?.key) return keys.get(pointer) ?? values.get(pointer)
        // Fall back to the nearest ancestor that has a position.
        for (let p = pointer; ; p = p.slice(0, p.lastIndexOf('/'))) {
          const hit = values.get(p)
          if (hit || p === '') return hit
        }
      },
    },
    problems: [],
  }
}

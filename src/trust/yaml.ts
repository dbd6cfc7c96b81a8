/**
 * A small strict YAML loader for the trust policy: YAML 1.2 core schema, and every one of these
 * is an error with file:line:col: syntax errors, duplicate keys, anchors and aliases, tags,
 * non-string keys, several documents. Positions are kept per JSON pointer so schema and
 * semantic problems can be located too.
 *
 * Deliberately minimal and private to src/trust: `src/bundle` (written in parallel) will
 * provide the project's strict YAML parsing, and this file can then be replaced by it.
 */
import {LineCounter, type Node, isAlias, isMap, isPair, isScalar, isSeq, parseDocument} from 'yaml'

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

export function escapePointer(segment: string | number): string {
  return String(segment).replace(/~/g, '~0').replace(/\//g, '~1')
}

/** Parses `text`; returns the value and a locator, or the problems (never both). */
export function parseYamlStrict(text: string, file: string): {yaml?: StrictYaml; problems: Problem[]} {
  const lc = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lc, uniqueKeys: true, prettyErrors: false, schema: 'core', merge: false, strict: true})
  const problems: Problem[] = []
  const at = (offset: number | undefined): Position | undefined => {
    if (offset === undefined) return undefined
    const p = lc.linePos(offset)
    return {line: p.line, col: p.col}
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
    if ((n as {anchor?: string}).anchor) problems.push({file, ...pos, pointer, message: 'anchors (&name) are not allowed'})
    if (n.tag && !isMap(node) && !isSeq(node) && !['tag:yaml.org,2002:str', 'tag:yaml.org,2002:int', 'tag:yaml.org,2002:bool', 'tag:yaml.org,2002:null', 'tag:yaml.org,2002:float'].includes(n.tag)) {
      problems.push({file, ...pos, pointer, message: `tag ${n.tag} is not allowed`})
    }
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue
        const k = pair.key
        if (!isScalar(k) || typeof k.value !== 'string') {
          const kpos = at((k as Node | null)?.range?.[0])
          problems.push({file, ...kpos, pointer, message: `keys must be strings, got ${isScalar(k) ? JSON.stringify(k.value) : 'a collection'}`})
          continue
        }
        const child = `${pointer}/${escapePointer(k.value)}`
        const kpos = at(k.range?.[0])
        if (kpos) keys.set(child, kpos)
        walk(pair.value, child)
        if (pair.value === null && kpos) values.set(child, kpos)
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, `${pointer}/${i}`))
    }
  }
  walk(doc.contents, '')
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

/**
 * in-toto Statements (in-toto/attestation spec v1 statement.md): what our DSSE payloads carry.
 *
 * We write Statement v1 with only the fields of the proto (`_type`, `subject`, `predicateType`,
 * `predicate`), because sigstore-go parses it with strict protojson and refuses unknown fields
 * (cosign-formats.md §b.3). We read v1 and v0.1 (what `cosign attest` writes).
 */
import {VerificationError} from '../errors.js'
import {shownValue} from '../util/text.js'

export const STATEMENT_V1 = 'https://in-toto.io/Statement/v1'
export const STATEMENT_V01 = 'https://in-toto.io/Statement/v0.1'
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json'
/** cosign's predicate type for plain signatures (cosign pkg/types/predicate.go:19). */
export const COSIGN_SIGN_PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1'

export interface Subject {
  name?: string
  /** algorithm → lowercase hex, e.g. `{sha256: "…"}`. */
  digest: Record<string, string>
  annotations?: Record<string, unknown>
}

export interface Statement {
  _type: string
  subject: Subject[]
  predicateType: string
  predicate?: Record<string, unknown>
}

export interface SubjectInput {
  /** `sha256:<hex>` (or `sha512:<hex>`). */
  digest: string
  name?: string
  annotations?: Record<string, unknown>
}

export interface StatementInput {
  subjects: SubjectInput[]
  predicateType: string
  /** A JSON object (sigstore-go requires an object); `{}` when absent. */
  predicate?: Record<string, unknown>
}

const HEX_LENGTH: Record<string, number> = {sha256: 64, sha384: 96, sha512: 128}

/** Splits `alg:hex`, validating the algorithm and hex length. */
export function parseDigest(digest: string): {algorithm: string; hex: string} {
  const m = /^([a-z0-9]+):([0-9a-f]+)$/.exec(digest)
  if (!m || HEX_LENGTH[m[1]] !== m[2].length) {
    throw new TypeError(`invalid digest ${JSON.stringify(digest)}: expected sha256:<64 lowercase hex> (or sha384/sha512)`)
  }
  return {algorithm: m[1], hex: m[2]}
}

/** Builds a Statement v1; subjects keep the given order, fields in proto order. */
export function buildStatement(input: StatementInput): Statement {
  if (input.subjects.length === 0) throw new TypeError('a statement needs at least one subject')
  if (!/^[a-z][a-z0-9+.-]*:\S+$/i.test(input.predicateType)) throw new TypeError(`predicateType must be a URI, got ${JSON.stringify(input.predicateType)}`)
  const predicate = input.predicate ?? {}
  if (typeof predicate !== 'object' || predicate === null || Array.isArray(predicate)) throw new TypeError('predicate must be a JSON object')
  return {
    _type: STATEMENT_V1,
    subject: input.subjects.map((s) => {
      const {algorithm, hex} = parseDigest(s.digest)
      return {
        ...(s.name === undefined ? {} : {name: s.name}),
        digest: {[algorithm]: hex},
        ...(s.annotations === undefined ? {} : {annotations: s.annotations}),
      }
    }),
    predicateType: input.predicateType,
    predicate,
  }
}

/** Serialises a statement compactly (the payload bytes that get signed). */
export function statementBytes(statement: Statement): Buffer {
  return Buffer.from(JSON.stringify(statement), 'utf8')
}

/** Parses a DSSE payload as an in-toto Statement v1 or v0.1, or throws STATEMENT_INVALID (exit 2). */
export function parseStatement(payload: Uint8Array, source: string): Statement {
  const bad = (msg: string) => new VerificationError('STATEMENT_INVALID', `${source}: the signed payload is not a valid in-toto statement: ${msg}`)
  let doc: unknown
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'))
  } catch {
    throw bad('not JSON')
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('not a JSON object')
  const s = doc as Record<string, unknown>
  if (s._type !== STATEMENT_V1 && s._type !== STATEMENT_V01) throw bad(`unsupported _type ${shownValue(s._type)}`)
  if (!Array.isArray(s.subject) || s.subject.length === 0) throw bad('"subject" must be a non-empty list')
  for (const [i, sub] of s.subject.entries()) {
    if (typeof sub !== 'object' || sub === null || Array.isArray(sub)) throw bad(`subject[${i}] is not an object`)
    const d = (sub as Record<string, unknown>).digest
    if (typeof d !== 'object' || d === null || Array.isArray(d) || Object.keys(d).length === 0) throw bad(`subject[${i}] has no digest`)
    for (const [alg, v] of Object.entries(d)) if (typeof v !== 'string') throw bad(`subject[${i}].digest.${alg} is not a string`)
  }
  if (typeof s.predicateType !== 'string' || s.predicateType === '') throw bad('"predicateType" is missing')
  if (s.predicate !== undefined && (typeof s.predicate !== 'object' || s.predicate === null || Array.isArray(s.predicate))) {
    throw bad('"predicate" is not an object')
  }
  return s as unknown as Statement
}

/** The `alg:hex` digests of a statement's subjects. */
export function subjectDigests(statement: Statement): string[] {
  return statement.subject.flatMap((s) => Object.entries(s.digest).map(([alg, hex]) => `${alg}:${hex.toLowerCase()}`))
}

/** The first of `wanted` (`alg:hex`) that some subject carries, or undefined. */
export function matchSubject(statement: Statement, wanted: string[]): string | undefined {
  const have = new Set(subjectDigests(statement))
  return wanted.find((w) => have.has(w.toLowerCase()))
}

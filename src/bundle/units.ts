/**
 * Kubernetes quantities and Go durations, parsed to exact rationals so that the tighten check
 * compares them by value (formats.md: `8Gi` = `8192Mi`, `500m` = `0.5`, `1h30m` = `90m`).
 * Floating point is not used: `0.1` CPU and `100m` must compare equal.
 */

/** A non-negative rational number num/den (den > 0). */
export interface Rational {
  num: bigint
  den: bigint
}

export function compareRational(a: Rational, b: Rational): number {
  const l = a.num * b.den
  const r = b.num * a.den
  return l < r ? -1 : l > r ? 1 : 0
}

const QUANTITY = /^(\d+(?:\.\d*)?|\.\d+)(?:([eE])([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/

const BINARY: Record<string, bigint> = {Ki: 1n << 10n, Mi: 1n << 20n, Gi: 1n << 30n, Ti: 1n << 40n, Pi: 1n << 50n, Ei: 1n << 60n}
const DECIMAL_EXP: Record<string, number> = {n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18}

function decimal(digits: string): Rational {
  const [int, frac = ''] = digits.split('.')
  return {num: BigInt((int || '0') + frac), den: 10n ** BigInt(frac.length)}
}

function scale(r: Rational, exp: number): Rational {
  return exp >= 0 ? {num: r.num * 10n ** BigInt(exp), den: r.den} : {num: r.num, den: r.den * 10n ** BigInt(-exp)}
}

/** Parses a Kubernetes quantity ("4", "500m", "8Gi", "1e3", or a plain number); undefined when invalid. */
export function parseQuantity(q: string | number): Rational | undefined {
  const s = typeof q === 'number' ? (Number.isFinite(q) && q >= 0 ? String(q) : '') : q
  const m = QUANTITY.exec(s)
  if (!m) return undefined
  const base = decimal(m[1])
  if (m[2]) {
    const exp = Number(m[3])
    if (!Number.isSafeInteger(exp) || Math.abs(exp) > 1000) return undefined
    return scale(base, exp)
  }
  const suffix = m[4]
  if (!suffix) return base
  if (suffix in BINARY) return {num: base.num * BINARY[suffix], den: base.den}
  return scale(base, DECIMAL_EXP[suffix])
}

const DURATION_UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n,
  'μs': 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
}

/** Parses a Go duration ("4h", "90m", "1h30m", "1.5h", "0") to nanoseconds; undefined when invalid. */
export function parseDuration(d: string): Rational | undefined {
  if (d === '0') return {num: 0n, den: 1n}
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y
  let total: Rational = {num: 0n, den: 1n}
  let pos = 0
  while (pos < d.length) {
    re.lastIndex = pos
    const m = re.exec(d)
    if (!m) return undefined
    const v = decimal(m[1])
    const unit = DURATION_UNITS[m[2]]
    const term = {num: v.num * unit, den: v.den}
    total = {num: total.num * term.den + term.num * total.den, den: total.den * term.den}
    pos = re.lastIndex
  }
  return pos === 0 ? undefined : total
}

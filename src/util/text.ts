/**
 * Text from hostile input on a terminal. A policy, a tar entry name, an audit line or a registry
 * error can carry ESC sequences that clear the screen, retitle the window or rewrite what the
 * user already read (CWE-150). Human output shows such characters escaped instead.
 */

// C0 controls except tab and newline, DEL, and C1 controls (U+0080–U+009F: 0x9B is a one-byte CSI).
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g

/** `s` with terminal control characters shown as `\u001b` etc.; tab and newline are kept. */
export function escapeControl(s: string): string {
  return s.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/**
 * A value from a hostile document, for a message: short and never recursive. JSON.stringify of a
 * value nested 20,000 levels deep throws RangeError (the stack), and of a 4 MiB string bloats
 * the message; this shows containers by kind and long scalars by their start.
 */
export function shownValue(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)'
  if (Array.isArray(v)) return 'a list'
  if (v !== null && typeof v === 'object') return 'an object'
  if (typeof v === 'bigint') return `${v}`.length > 40 ? `an integer of ${`${v}`.length} digits` : `${v}`
  const s = JSON.stringify(v) ?? String(v)
  return s.length > 80 ? `${s.slice(0, 60)}… (${s.length} characters)` : s
}

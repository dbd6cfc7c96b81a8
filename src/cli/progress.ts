/**
 * Transfer progress on stderr (architecture.md "cli/"): one bar for a whole transfer, shown only
 * when stderr is a terminal, not in `--json` mode, not in CI, and only once the transfer is bigger
 * than a few MiB (policy bundles are usually kilobytes: no flicker for them). Rendering is
 * cli-progress's (throttled redraws, terminal width, ETA); this file only feeds it totals.
 */
import type {Writable} from 'node:stream'

import cliProgress from 'cli-progress'

import type {Descriptor} from '../oci/target.js'

/** Transfers below this many bytes show no bar. */
export const PROGRESS_THRESHOLD_BYTES = 4 * 1024 * 1024

export interface TransferProgressOptions {
  /** Draw at all (the caller decides: TTY, not --json, not CI). */
  enabled: boolean
  /** Where to draw (default process.stderr). */
  stream?: Writable & {isTTY?: boolean; columns?: number}
  /** What is being transferred, e.g. `push 127.0.0.1:5000/policies/org`. */
  label: string
  thresholdBytes?: number
  /** Redraws per second (default 10). */
  fps?: number
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

export function formatBytes(n: number): string {
  let v = n
  let u = 0
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${UNITS[u]}`
}

/** Feeds per-blob progress callbacks (`onProgress(desc, bytesSoFar)`) into one bar. */
export class TransferProgress {
  private readonly sizes = new Map<string, number>()
  private readonly done = new Map<string, number>()
  private bar?: cliProgress.SingleBar
  private stopped = false

  constructor(private readonly options: TransferProgressOptions) {}

  /** True once a bar has been drawn. */
  get shown(): boolean {
    return this.bar !== undefined
  }

  readonly onProgress = (desc: Descriptor, bytes: number): void => {
    if (!this.options.enabled || this.stopped) return
    this.sizes.set(desc.digest, desc.size)
    this.done.set(desc.digest, Math.min(bytes, desc.size))
    let total = 0
    for (const s of this.sizes.values()) total += s
    let value = 0
    for (const d of this.done.values()) value += d
    const payload = {done: formatBytes(value), size: formatBytes(total)}
    if (!this.bar) {
      if (total < (this.options.thresholdBytes ?? PROGRESS_THRESHOLD_BYTES)) return
      this.bar = new cliProgress.SingleBar(
        {
          stream: this.options.stream ?? process.stderr,
          format: `${this.options.label} [{bar}] {percentage}% | {done}/{size} | ETA {eta_formatted}`,
          fps: this.options.fps ?? 10,
          hideCursor: null,
          clearOnComplete: false,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      )
      this.bar.start(total, value, payload)
      return
    }
    this.bar.setTotal(total)
    this.bar.update(value, payload)
  }

  /** Draws the final state and releases the terminal line (idempotent). */
  stop(): void {
    if (this.stopped) return
    this.stopped = true
    this.bar?.stop()
  }
}

/**
 * Default locations of aibox's files, after the XDG Base Directory spec: the verified-policy
 * cache (XDG_CACHE_HOME), the audit log (XDG_STATE_HOME: "actions history (logs, history…)
 * that should persist between restarts") and the user configuration (XDG_CONFIG_HOME).
 * Every function takes the environment as a parameter so tests and embedders can pass their own.
 */
import os from 'node:os'
import path from 'node:path'

import {InputError} from '../errors.js'

export type PathEnv = Record<string, string | undefined>

function home(env: PathEnv): string {
  const h = env.HOME || os.homedir()
  if (!h) {
    throw new InputError('NO_HOME', 'cannot find the home directory: HOME is not set', {
      suggestions: ['set HOME, or set AIBOX_CACHE / AIBOX_AUDIT_LOG / XDG_* to absolute paths'],
    })
  }
  return h
}

/**
 * Expands a leading `~` or `~/` to the home directory and makes the path absolute
 * (relative to `cwd`). `~user` forms are refused rather than guessed.
 */
export function expandHome(p: string, env: PathEnv = process.env, cwd = process.cwd()): string {
  if (p === '~' || p.startsWith('~/')) return path.join(home(env), p.slice(1))
  if (p.startsWith('~')) {
    throw new InputError('UNSUPPORTED_PATH', `cannot expand "${p}": only "~" and "~/…" are supported`, {
      suggestions: ['write the path out in full'],
    })
  }
  return path.resolve(cwd, p)
}

/** XDG base directory variable, or undefined when unset, empty or relative (the spec says to ignore relative values). */
function xdg(env: PathEnv, name: string): string | undefined {
  const v = env[name]
  return v && path.isAbsolute(v) ? v : undefined
}

/** An explicit AIBOX_* override: `~` expanded, relative paths resolved against the working directory. */
function override(env: PathEnv, name: string): string | undefined {
  const v = env[name]
  return v ? expandHome(v, env) : undefined
}

/** The verified-policy cache directory: `AIBOX_CACHE` > `$XDG_CACHE_HOME/aibox` > `~/.cache/aibox`. */
export function defaultCacheDir(env: PathEnv = process.env): string {
  return override(env, 'AIBOX_CACHE') ?? path.join(xdg(env, 'XDG_CACHE_HOME') ?? path.join(home(env), '.cache'), 'aibox')
}

/**
 * The audit log: `AIBOX_AUDIT_LOG` > `$XDG_STATE_HOME/aibox/audit.jsonl` >
 * `~/.local/state/aibox/audit.jsonl`. Its anchor (`.head`) and lock (`.lock`) live beside it.
 */
export function defaultAuditLogPath(env: PathEnv = process.env): string {
  return (
    override(env, 'AIBOX_AUDIT_LOG') ??
    path.join(xdg(env, 'XDG_STATE_HOME') ?? path.join(home(env), '.local', 'state'), 'aibox', 'audit.jsonl')
  )
}

/** The user configuration directory: `$XDG_CONFIG_HOME/aibox` > `~/.config/aibox`. */
export function defaultUserConfigDir(env: PathEnv = process.env): string {
  return path.join(xdg(env, 'XDG_CONFIG_HOME') ?? path.join(home(env), '.config'), 'aibox')
}

/**
 * References: where an artifact lives.
 *
 * - Registry: `host[:port]/repo/path[:tag][@sha256:<hex>]`. The first path component must be a
 *   host (contains `.` or `:`, is `localhost` or an `[IPv6]` literal): a bare `org/policy` is
 *   refused rather than silently sent to Docker Hub. `docker.io/x` means Docker Hub
 *   (`docker.io/library/x`, served by `registry-1.docker.io`).
 * - OCI layout directory: `oci:DIR[:tag][@sha256:<hex>]`; OCI layout tar: `oci-archive:FILE[:tag][@…]`.
 *   Like skopeo's `oci:` transport, the path ends at its first `:` (so it cannot contain `:`;
 *   use a symlink) and `@sha256:…` at the end is a digest.
 *
 * Names and tags are validated here (distribution-spec "pulling manifests" grammar): distribution
 * answers a bad name with a plain-text 404 that looks like "not found" (registry-notes.md §8.14).
 */
import {OciError} from './errors.js'

/** A manifest in a registry repository. */
export interface RegistryReference {
  kind: 'registry'
  /** Canonical registry name used for display and credential lookup: lower-case `host[:port]`, Docker Hub as `docker.io`. */
  registry: string
  /** Host the HTTP requests go to: `registry` except for Docker Hub (`registry-1.docker.io`). */
  host: string
  /** Repository path, e.g. `policies/org` (Docker Hub official images as `library/x`). */
  repository: string
  tag?: string
  /** `sha256:<64 hex>`; takes precedence over `tag` when both are given. */
  digest?: string
}

/** A manifest in a local OCI image layout (directory or tar). */
export interface LayoutReference {
  kind: 'layout'
  /** `dir` for `oci:`, `tar` for `oci-archive:`. */
  format: 'dir' | 'tar'
  /** Path as written (relative paths are relative to the working directory). */
  path: string
  tag?: string
  digest?: string
}

export type Reference = RegistryReference | LayoutReference

export const DOCKER_HUB = 'docker.io'
export const DOCKER_HUB_HOST = 'registry-1.docker.io'
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'])

/** One path component of a repository name (distribution reference grammar, as served by 2.8's routes). */
const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/
const DIGEST_SUFFIX_RE = /@([A-Za-z0-9+._-]+:[A-Za-z0-9=_-]+)$/
const SHA256_RE = /^sha256:[a-f0-9]{64}$/
const HOST_LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/
/** distribution's NameTotalLengthMax. */
const MAX_NAME_LENGTH = 255

function invalid(input: string, problem: string, suggestions?: string[]): OciError {
  return new OciError('INVALID_REFERENCE', `invalid reference "${printable(input)}": ${problem}`, {
    suggestions: suggestions ?? [
      'registry references look like registry.example.com/policies/org:stable or 127.0.0.1:5000/policies/org@sha256:<64 hex>',
      'local layouts look like oci:./policies:stable',
    ],
  })
}

/** Shows control characters escaped so the message itself cannot be used to forge terminal output. */
function printable(s: string): string {
  const shown = s.length > 200 ? `${s.slice(0, 200)}…` : s
  return shown.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function checkCharacters(input: string): void {
  if (input.length === 0) throw invalid(input, 'it is empty')
  if (/[\u0000-\u001f\u007f-\u009f]/.test(input)) throw invalid(input, 'it contains control characters')
  if (/\s/.test(input)) throw invalid(input, 'it contains whitespace')
}

function checkDigest(input: string, digest: string): void {
  if (!digest.startsWith('sha256:')) {
    throw invalid(input, `digest "${digest}" uses an unsupported algorithm: only sha256 is accepted`)
  }
  if (!SHA256_RE.test(digest)) throw invalid(input, `digest "${digest}" is not sha256:<64 lowercase hex>`)
}

/** Throws INVALID_REFERENCE unless `tag` is a valid tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`). */
export function assertTag(tag: string, input = tag): void {
  if (tag === '') throw invalid(input, 'the tag after ":" is empty')
  if (tag.length > 128) throw invalid(input, `tag is ${tag.length} characters long, the limit is 128`)
  if (!TAG_RE.test(tag)) {
    throw invalid(input, `tag "${printable(tag)}" may only contain letters, digits, "_", "." and "-", and must not start with "." or "-"`)
  }
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag)
}

/** Throws INVALID_REFERENCE unless `repository` is a valid repository path (lower-case components separated by `/`). */
export function assertRepository(repository: string, input = repository): void {
  if (repository === '') throw invalid(input, 'the repository name is empty')
  if (repository.length > MAX_NAME_LENGTH) throw invalid(input, `repository name is longer than ${MAX_NAME_LENGTH} characters`)
  for (const part of repository.split('/')) {
    if (part === '') throw invalid(input, `repository "${repository}" has an empty path component ("//" or a leading/trailing "/")`)
    if (part === '.' || part === '..') throw invalid(input, `repository "${repository}" contains a "${part}" path component`)
    if (!COMPONENT_RE.test(part)) {
      const hint = /[A-Z]/.test(part) ? ' (repository names must be lower-case)' : ''
      throw invalid(
        input,
        `repository path component "${part}" must be lower-case letters and digits separated by ".", "_", "__" or "-"${hint}`,
      )
    }
  }
}

function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component.startsWith('[')
}

/** Validates and normalises `host[:port]` (lower-cased; IPv6 in brackets). */
function normaliseHost(input: string, host: string): string {
  let name = host
  let port: string | undefined
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    if (end < 0) throw invalid(input, `registry host "${host}" has an unterminated IPv6 "["`)
    name = host.slice(1, end)
    const rest = host.slice(end + 1)
    if (rest !== '') {
      if (!rest.startsWith(':')) throw invalid(input, `unexpected "${rest}" after the IPv6 address in "${host}"`)
      port = rest.slice(1)
    }
    if (!/^[0-9a-fA-F:.]+$/.test(name) || !name.includes(':')) throw invalid(input, `"${name}" is not an IPv6 address`)
    name = `[${name.toLowerCase()}]`
  } else {
    const colon = host.indexOf(':')
    if (colon >= 0) {
      port = host.slice(colon + 1)
      name = host.slice(0, colon)
    }
    if (name === '') throw invalid(input, 'the registry host is empty')
    for (const label of name.split('.')) {
      if (!HOST_LABEL_RE.test(label)) throw invalid(input, `registry host "${name}" is not a valid host name`)
    }
    name = name.toLowerCase()
  }
  if (port !== undefined) {
    if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
      throw invalid(input, `port "${port}" of registry "${host}" must be a number from 1 to 65535`)
    }
    return `${name}:${Number(port)}`
  }
  return name
}

/** Parses a registry reference; tag and digest are optional (a bare repository is what `tags` lists). */
export function parseRegistryReference(input: string): RegistryReference {
  checkCharacters(input)
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) {
    const scheme = input.slice(0, input.indexOf(':'))
    throw invalid(input, `"${scheme}://" is not part of a reference`, [
      `write it without the scheme, e.g. ${input.slice(scheme.length + 3)}`,
      'use --plain-http / --no-plain-http to choose HTTP or HTTPS',
    ])
  }
  let rest = input
  let digest: string | undefined
  const at = rest.lastIndexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (digest === '') throw invalid(input, 'the digest after "@" is empty')
    checkDigest(input, digest)
    if (rest.includes('@')) throw invalid(input, 'it contains more than one "@"')
  }
  const slash = rest.indexOf('/')
  // `127.0.0.1:5000` or `registry.example.com` alone (but `alpine:3` is an image name without a registry).
  const hostPart0 = rest.split(':')[0]!
  if (slash < 0 && (hostPart0.includes('.') || hostPart0 === 'localhost' || rest.startsWith('['))) {
    throw invalid(input, `it names registry "${rest}" but no repository: write host[:port]/repository[:tag]`)
  }
  if (slash < 0) {
    throw invalid(input, 'it has no registry host: write host[:port]/repository[:tag]', [
      `for Docker Hub write docker.io/${rest.includes('/') ? rest : `library/${rest}`}`,
      `for a local registry write e.g. 127.0.0.1:5000/${rest}`,
      `for a local OCI layout write oci:${rest}`,
    ])
  }
  const hostPart = rest.slice(0, slash)
  let path = rest.slice(slash + 1)
  if (!looksLikeHost(hostPart)) {
    throw invalid(input, `"${hostPart}" is not a registry host (a host contains "." or ":" or is localhost)`, [
      `for Docker Hub write docker.io/${rest}`,
      `for a local registry write e.g. 127.0.0.1:5000/${rest}`,
      `for a local OCI layout write oci:${rest}`,
    ])
  }
  let tag: string | undefined
  const lastSlash = path.lastIndexOf('/')
  const colon = path.indexOf(':', lastSlash + 1)
  if (colon >= 0) {
    tag = path.slice(colon + 1)
    path = path.slice(0, colon)
    assertTag(tag, input)
  }
  if (path.includes(':')) throw invalid(input, 'a ":" may only separate the tag, after the last "/"')
  const registry0 = normaliseHost(input, hostPart)
  let registry = registry0
  let host = registry0
  if (DOCKER_HUB_ALIASES.has(registry0)) {
    registry = DOCKER_HUB
    host = DOCKER_HUB_HOST
    if (path !== '' && !path.includes('/')) path = `library/${path}`
  }
  assertRepository(path, input)
  if (registry.length + 1 + path.length > MAX_NAME_LENGTH) {
    throw invalid(input, `registry plus repository name is longer than ${MAX_NAME_LENGTH} characters`)
  }
  const ref: RegistryReference = {kind: 'registry', registry, host, repository: path}
  if (tag !== undefined) ref.tag = tag
  if (digest !== undefined) ref.digest = digest
  return ref
}

function parseLayoutReference(input: string, format: 'dir' | 'tar', body: string): LayoutReference {
  const scheme = format === 'dir' ? 'oci:' : 'oci-archive:'
  let rest = body
  let digest: string | undefined
  const m = DIGEST_SUFFIX_RE.exec(rest)
  if (m) {
    digest = m[1]
    rest = rest.slice(0, m.index)
    checkDigest(input, digest)
  }
  let tag: string | undefined
  const colon = rest.indexOf(':')
  if (colon >= 0) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (tag === '' && digest === undefined) throw invalid(input, 'the tag after ":" is empty')
    if (tag === '') tag = undefined
    else if (tag.includes('/')) {
      throw invalid(input, `the ${format === 'dir' ? 'directory' : 'file'} path ends at its first ":"; paths containing ":" are not supported (use a symlink)`)
    } else assertTag(tag, input)
  }
  if (rest === '') throw invalid(input, `the ${format === 'dir' ? 'directory' : 'file'} after "${scheme}" is empty`)
  const ref: LayoutReference = {kind: 'layout', format, path: rest}
  if (tag !== undefined) ref.tag = tag
  if (digest !== undefined) ref.digest = digest
  return ref
}

/** Parses any reference: `oci:DIR…`, `oci-archive:FILE…` or a registry reference. */
export function parseReference(input: string): Reference {
  checkCharacters(input)
  if (input.startsWith('oci:')) return parseLayoutReference(input, 'dir', input.slice(4))
  if (input.startsWith('oci-archive:')) return parseLayoutReference(input, 'tar', input.slice(12))
  return parseRegistryReference(input)
}

/** The tag or digest to resolve: digest first (it is immutable), else the tag, else `fallback`. */
export function referenceSelector(ref: Reference, fallback?: string): string | undefined {
  return ref.digest ?? ref.tag ?? fallback
}

/** Formats a reference back to its canonical string (Docker Hub as `docker.io/…`). */
export function formatReference(ref: Reference): string {
  const suffix = `${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`
  if (ref.kind === 'layout') return `${ref.format === 'dir' ? 'oci:' : 'oci-archive:'}${ref.path}${suffix}`
  return `${ref.registry}/${ref.repository}${suffix}`
}

/** The credential-store key docker uses for a registry (`https://index.docker.io/v1/` for Docker Hub). */
export function credentialKey(registry: string): string {
  return registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry
}

/** True for hosts that are this machine: `localhost`, 127.0.0.0/8 and ::1 (plain HTTP by default, like oras). */
export function isLoopbackHost(hostPort: string): boolean {
  let host = hostPort
  if (host.startsWith('[')) host = host.slice(1, host.indexOf(']'))
  else if (host.split(':').length === 2) host = host.slice(0, host.indexOf(':'))
  host = host.toLowerCase()
  if (host === 'localhost' || host === '::1' || host === '0:0:0:0:0:0:0:1') return true
  return /^127\.(?:\d{1,3})\.(?:\d{1,3})\.(?:\d{1,3})$/.test(host) && host.split('.').every((p) => Number(p) <= 255)
}

/**
 * The data model of policy bundles (formats.md "Policy bundle (source)"), as validated by
 * schemas/policy-bundle.schema.json. Field names follow the AI-Box v1 layout unchanged
 * (snake_case inside `policy:`), so existing AI-Box policy files drop in.
 */
import type {JsonObject} from './json.js'
import type {DocFormat, ParsedDocument} from './parse.js'

export type Tier = 'org' | 'team' | 'project'
/** Tiers from the most general to the most specific: a later tier may only tighten. */
export const TIERS: readonly Tier[] = ['org', 'team', 'project']

export type Verdict = 'allow' | 'deny'
export type Risk = 'safe' | 'review-required' | 'blocked-by-default'
/** Risk from the least to the most restrictive (formats.md tighten-only table). */
export const RISKS: readonly Risk[] = ['safe', 'review-required', 'blocked-by-default']
export type Engine = 'runc' | 'gvisor' | 'kata'
/** Sandbox engines from the weakest to the strongest isolation (formats.md). */
export const ENGINES: readonly Engine[] = ['runc', 'gvisor', 'kata']

export type Quantity = string | number

export interface RateLimit {
  requests_per_min?: number
  tokens_per_min?: number
}

export interface NetworkAllow {
  id: string
  hosts?: string[]
  ports?: number[]
  rate_limit?: RateLimit
}

export interface ToolRule {
  /** argv token prefix; "*" matches exactly one token. */
  match: string[]
  allow?: boolean
  risk?: Risk
}

export const RESOURCE_KEYS = ['cpu', 'memory', 'disk'] as const
export type ResourceKey = (typeof RESOURCE_KEYS)[number]
export const TTL_KEYS = ['git_token_ttl', 'llm_api_key_ttl', 'mirror_token_ttl'] as const
export type TtlKey = (typeof TTL_KEYS)[number]
export const CREDENTIAL_FLAGS = ['revoke_on_stop', 'no_persist_to_workspace'] as const
export type CredentialFlag = (typeof CREDENTIAL_FLAGS)[number]
export const RUNTIME_FLAGS = ['rootless', 'ephemeral'] as const
export type RuntimeFlag = (typeof RUNTIME_FLAGS)[number]

/** The AI-Box sandbox policy, v1 layout. */
export interface SandboxPolicy {
  version: 1
  network?: {mode?: 'deny-by-default'; allow?: NetworkAllow[]}
  filesystem?: {workspace_root?: string; deny?: string[]}
  tools?: {rules?: ToolRule[]}
  resources?: Partial<Record<ResourceKey, Quantity>>
  runtime?: {engine?: Engine; rootless?: boolean; ephemeral?: boolean}
  credentials?: Partial<Record<TtlKey, string>> & Partial<Record<CredentialFlag, boolean>>
}

export type ArgMatcher = {equals: string} | {startsWith: string}

/** A tool-call rule (HELM style): first match wins; `reason` is a machine-readable code. */
export interface CallRule {
  id: string
  description?: string
  match: {toolName: string; args?: Record<string, ArgMatcher>}
  verdict: Verdict
  reason?: string
}

/** A rule of a HELM PolicyBundle (seed 001): carried and composed, not evaluated (CEL). */
export interface HelmBundleRule {
  id: string
  action: string
  expression?: string
  verdict: 'ALLOW' | 'BLOCK' | 'ESCALATE'
  reason?: string
}

/** What a document is; formats.md "Peer formats accepted as input". */
export type DocumentKind = 'aibox-bundle' | 'aibox-policy' | 'helm-bundle' | 'helm-policy'

export const KIND_LABEL: Record<DocumentKind, string> = {
  'aibox-bundle': 'aibox PolicyBundle',
  'aibox-policy': 'AI-Box v1 policy file',
  'helm-bundle': 'HELM PolicyBundle',
  'helm-policy': 'HELM policy file',
}

/**
 * A named policy profile of the org bundle (README "Profiles"): an overlay on the org policy
 * that may only tighten it. The org bundle lists them weakest first.
 */
export interface ProfileDef {
  name: string
  description?: string
  /** Overlay in the v1 layout: omitted fields inherit the org policy. */
  policy?: SandboxPolicy
  rules: CallRule[]
}

/** A validated, normalised policy document. */
export interface LoadedBundle {
  /** The path as the user gave it (messages quote it unchanged). */
  file: string
  format: DocFormat
  kind: DocumentKind
  name?: string
  version?: string
  /** From metadata, or assigned by flag or position for envelope-less files. */
  tier?: Tier
  /** `metadata.tenant`: the tenant the policy belongs to (`tenant-global`: every tenant's shared baseline); README "Tenants". */
  tenant?: string
  description?: string
  /** The document as parsed (null-prototype objects). */
  document: JsonObject
  /** `sha256:<hex>` of the RFC 8785 canonical JSON of `document`. */
  digest: string
  /** The sandbox policy (aibox bundles with `policy:` and bare AI-Box files). */
  policy?: SandboxPolicy
  /** Tool-call rules (aibox bundles; HELM policy files with `name` as the id). */
  rules: CallRule[]
  /** Rules of a HELM PolicyBundle. */
  helmRules?: HelmBundleRule[]
  defaultVerdict?: Verdict
  /** Org tier only: the profiles it defines, weakest first. */
  profiles?: ProfileDef[]
  defaultProfile?: string
  /** Set on the overlay of a selected profile (a layer between org and team; profiles.ts). */
  profile?: string
  /** The parse, for source positions. */
  source: ParsedDocument
}

/**
 * Scaffolds for `aibox bundle init`: a valid, commented starting point per tier, modelled on
 * the AI-Box policy hierarchy (seed 004) and HELM's starter policy (seed 003).
 */
import {stringify} from 'yaml'

import {parseStrict} from './parse.js'
import type {Tier} from './model.js'

function orgTemplate(name: string): string {
  return `# aibox policy bundle: the org baseline, root of every stack (team and project
# bundles may only tighten it). Check it with: aibox bundle lint <this file>
apiVersion: aibox.dev/v1
kind: PolicyBundle
metadata:
  name: ${name}
  version: 0.1.0
  tier: org
  description: Organisation baseline for AI sandboxes

# The AI-Box sandbox policy, v1 layout (existing AI-Box policy files drop in unchanged).
policy:
  version: 1
  network:
    mode: deny-by-default              # the only valid mode
    allow:
      - id: llm-gateway
        hosts: [llm.internal]          # exact names or "*.suffix"
        ports: [443]
        rate_limit: {requests_per_min: 60, tokens_per_min: 100000}
      - id: git-server
        hosts: [git.internal]
        ports: [443, 22]
  filesystem:
    workspace_root: /workspace
    deny: [/home, /root, /.ssh, /var/run/docker.sock]
  tools:
    rules:                             # argv prefixes; "*" is one token; first match wins
      - {match: [git, push, --force], allow: false}
      - {match: [git, push], allow: true, risk: review-required}
      - {match: [git], allow: true, risk: safe}
      - {match: [rm, -rf], allow: false}
  resources: {cpu: "4", memory: 8Gi, disk: 40Gi}
  runtime: {engine: gvisor, rootless: true, ephemeral: false}
  credentials:
    git_token_ttl: 4h
    llm_api_key_ttl: 8h
    mirror_token_ttl: 8h
    revoke_on_stop: true
    no_persist_to_workspace: true

# Tool-call rules for agents: first match wins; a deny needs a machine-readable reason.
rules:
  - id: deny-system-files
    match: {toolName: "*", args: {path: {startsWith: /etc/}}}
    verdict: deny
    reason: system-path-blocked
  - id: allow-reads
    match: {toolName: "get_*"}
    verdict: allow
  - id: allow-workspace-writes
    match: {toolName: write_file, args: {path: {startsWith: /workspace/}}}
    verdict: allow
defaultVerdict: deny                   # fail closed
`
}

function childTemplate(name: string, tier: Tier): string {
  return `# aibox policy bundle: a ${tier} policy. It may only tighten the tiers above it
# (omitted fields inherit). Check it with:
#   aibox bundle check --base org.yaml${tier === 'project' ? ' --base team.yaml' : ''} <this file>
apiVersion: aibox.dev/v1
kind: PolicyBundle
metadata:
  name: ${name}
  version: 0.1.0
  tier: ${tier}
  description: ${tier === 'team' ? 'Team policy' : 'Project policy'}

policy:
  version: 1
  resources: {memory: 4Gi}             # lower than the parent: allowed
  credentials: {git_token_ttl: 2h}     # shorter than the parent: allowed

rules:
  - id: deny-deletes
    match: {toolName: "delete_*"}
    verdict: deny
    reason: destructive-action-blocked
`
}

export interface Scaffold {
  text: string
  format: 'yaml' | 'json'
}

/** A valid bundle to start from (YAML with comments, or JSON). */
export function scaffoldBundle(options: {name: string; tier: Tier; format?: 'yaml' | 'json'}): Scaffold {
  const yaml = options.tier === 'org' ? orgTemplate(options.name) : childTemplate(options.name, options.tier)
  if (options.format === 'json') {
    const value = parseStrict(yaml, 'template.yaml').value
    return {text: `${JSON.stringify(value, null, 2)}\n`, format: 'json'}
  }
  return {text: yaml, format: 'yaml'}
}

/** YAML rendering of a document (for `-o file.yaml` outputs). */
export function toYaml(value: unknown): string {
  return stringify(value, {lineWidth: 0, aliasDuplicateObjects: false})
}

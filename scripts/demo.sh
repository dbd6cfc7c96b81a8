#!/usr/bin/env bash
# `make demo`: the policy-bundle authoring workflow on the sample org / team / project set in
# testdata/bundles (modelled on the AI-Box policy hierarchy): lint, hash, compose, check a
# stack that only tightens, watch a loosening project policy be refused, evaluate decisions
# and run policy unit tests. Needs `make build` (make demo runs it). Later stages of the
# pipeline (keys, push, start) extend this script.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -f "$ROOT/dist/commands/bundle/check.js" ]; then
  echo "demo: the CLI is not built; run 'make build' first (make demo does it for you)" >&2
  exit 1
fi
aibox() { node "$ROOT/bin/run.js" "$@"; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/aibox-demo.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then B=$'\e[1m'; D=$'\e[2m'; G=$'\e[32m'; R=$'\e[0m'; else B=; D=; G=; R=; fi
step() { printf '\n%s== %s%s\n' "$B" "$*" "$R"; }
say() { printf '%s%s%s\n' "$D" "$*" "$R"; }
# Echo a command the way a user would type it (quoting arguments with spaces or JSON).
show() {
  local out=() a
  for a in "$@"; do
    if [[ "$a" =~ [^A-Za-z0-9_./:=@,+-] ]]; then out+=("'${a//\'/\'\\\'\'}'"); else out+=("$a"); fi
  done
  printf '%s' "${out[*]}"
}
run() { printf '%s$ aibox %s%s\n' "$G" "$(show "$@")" "$R"; aibox "$@"; }

cd "$ROOT/testdata/bundles"

step "1. Lint: strict parsing and schema validation of the three tiers"
say "Duplicate keys, non-JSON YAML values and unknown fields are errors, reported with file:line:col."
run bundle lint org/baseline.yaml teams/alpha/policy.yaml projects/webapp/aibox/policy.yaml

step "2. Hash: the content digest is sha256 of the RFC 8785 canonical JSON"
say "org/baseline.json is the same data as org/baseline.yaml, keys reordered and comments gone: same digest."
run bundle hash org/baseline.yaml
run bundle hash org/baseline.json
run bundle inspect org/baseline.yaml

step "3. Compose: merge rule sets by id, first bundle wins, conflicts reported (HELM bundles, seed 001)"
run bundle compose helm/production-policy.yaml helm/staging-policy.yaml -o "$WORK/composed.json"
say "The composed file hashes to the digest compose printed:"
run bundle hash "$WORK/composed.json"

step "4. Check: team alpha and project webapp only tighten the org baseline"
run bundle check --base org/baseline.yaml --base teams/alpha/policy.yaml projects/webapp/aibox/policy.yaml -o "$WORK/effective.json"
say "The effective policy (what 'aibox start' will hand to the sandbox) was written as canonical JSON:"
printf '  %s bytes, sha256:%s\n' "$(wc -c <"$WORK/effective.json" | tr -d ' ')" "$(sha256sum "$WORK/effective.json" | cut -d' ' -f1)"

step "5. Check a project policy that loosens its parents: refused, exit 2"
say "projects/leaky adds pastebin.com, raises memory, turns off rootless, shadows a deny and allows reads the org denies."
set +e
run bundle check --base org/baseline.yaml --base teams/alpha/policy.yaml projects/leaky/aibox/policy.yaml -o "$WORK/leaky-effective.json"
rc=$?
set -e
if [ "$rc" -ne 2 ]; then
  echo "demo: expected 'aibox bundle check' to refuse the loosening with exit 2, got $rc" >&2
  exit 1
fi
if [ -e "$WORK/leaky-effective.json" ]; then
  echo "demo: a refused check must not write its output" >&2
  exit 1
fi
say "-> exit 2 (verification failed) as expected: every loosening listed, nothing written."

step "6. Eval: decisions of the stack for a tool call and a command"
run bundle eval org/baseline.yaml teams/alpha/policy.yaml projects/webapp/aibox/policy.yaml --tool get_file --args '{"path": "/workspace/webapp/src/app.ts"}'
run bundle eval org/baseline.yaml teams/alpha/policy.yaml projects/webapp/aibox/policy.yaml --tool get_file --args '{"path": "/workspace/secrets/token"}'
run bundle eval org/baseline.yaml teams/alpha/policy.yaml projects/webapp/aibox/policy.yaml --tool write_file --args '{"path": "/workspace/../etc/passwd"}'
run bundle eval org/baseline.yaml teams/alpha/policy.yaml projects/webapp/aibox/policy.yaml --command "git push origin main"
run bundle eval org/baseline.yaml teams/alpha/policy.yaml projects/webapp/aibox/policy.yaml --command "git push --force"

step "7. Test: policy unit tests for the stack (like opa test)"
run bundle test org/baseline.yaml teams/alpha/policy.yaml projects/webapp/aibox/policy.yaml tests/stack.tests.yaml

printf '\n%sdemo complete.%s Next: README "Policy bundles" for the format and every command.\n' "$B" "$R"

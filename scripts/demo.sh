#!/usr/bin/env bash
# `make demo`: the policy-bundle authoring workflow on the sample org / team / project set in
# testdata/bundles (modelled on the AI-Box policy hierarchy): lint, hash, compose, check a
# stack that only tightens, watch a loosening project policy be refused, evaluate decisions
# and run policy unit tests; then publish: generate keys, push the org and team bundles to a
# local OCI layout (no server) through the submit gate, approve (separation of duties), discover,
# pull with verification (key and trust policy), watch the gate refuse a loosening team policy,
# and a tampered copy be refused; then start sandboxes: aibox start with the verified cache,
# propagation of a new version, a loosening project policy refused, a rollback refused then
# approved with an incident, the registry gone and the cache used; carry both policies across an
# air gap as a sealed export, import them, watch a tampered archive be refused; and the audit log.
# Needs `make build` (make demo runs it).
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

step "8. Keys: a release key, a team lead's key and the on-call approver's key (cosign format)"
say "COSIGN_PASSWORD is set by this script; in real use it comes from your secret store or a prompt."
export COSIGN_PASSWORD=demo-only-password AIBOX_AUDIT_LOG="$WORK/audit.jsonl"
unset AIBOX_PASSWORD SOURCE_DATE_EPOCH
run key generate --output-key-prefix "$WORK/release"
run key generate --output-key-prefix "$WORK/team-lead"
run key generate --output-key-prefix "$WORK/oncall"

step "9. Push: the org and team bundles, signed, to an OCI layout (oci:DIR needs no server)"
say "Same bundle, same manifest digest: nothing time-dependent is packed."
run push org/baseline.yaml "oci:$WORK/policies/org:stable" --key "$WORK/release.key"
say "A team policy goes through the submit gate: it must tighten the org baseline (--against)."
run push teams/alpha/policy.yaml "oci:$WORK/policies/team-alpha:stable" --key "$WORK/team-lead.key" --against org/baseline.yaml
run tags "oci:$WORK/policies/org"

step "10. Approve and discover: who signed, who approved (role, note, ticket)"
say "The team lead approves the org baseline; the release key signed it, so it could not approve it itself."
run approve "oci:$WORK/policies/org:1.4.0" --key "$WORK/team-lead.key" --role approver --note "egress list reviewed" --ticket SEC-1234
run discover "oci:$WORK/policies/org:stable" --key "$WORK/release.pub" --key "$WORK/team-lead.pub"

step "11. Pull with verification: a key, then a trust policy (scope by repository and signed tier)"
cat >"$WORK/trust.yaml" <<TRUST
apiVersion: aibox.dev/v1
kind: TrustPolicy
metadata: {name: demo}
keys:
  release: {path: $WORK/release.pub, roles: [security]}
  team-lead: {path: $WORK/team-lead.pub, roles: [team-lead, approver]}
  oncall: {path: $WORK/oncall.pub, roles: [approver]}
scopes:
  - name: org
    match: {tiers: [org]}
    require: {signatures: {security: 1}, approvals: {approver: 1}}
  - name: teams
    match: {tiers: [team]}
    require: {signatures: {team-lead: 1}}
TRUST
run pull "oci:$WORK/policies/org:stable" --key "$WORK/release.pub" -o "$WORK/pulled"
run pull "oci:$WORK/policies/org:stable" --trust "$WORK/trust.yaml" -o "$WORK/pulled"
run pull "oci:$WORK/policies/team-alpha:stable" --trust "$WORK/trust.yaml" -o "$WORK/pulled"
say "The pulled canonical JSON hashes to the published content digest:"
printf '  sha256:%s  org-baseline.json\n' "$(sha256sum "$WORK/pulled/org-baseline.json" | cut -d' ' -f1)"

step "12. The submit gate refuses a team policy that loosens the org baseline (exit 5)"
set +e
run push loosen/teams/alpha/policy.yaml "oci:$WORK/policies/team-beta" --key "$WORK/team-lead.key" --against org/baseline.yaml
rc=$?
set -e
if [ "$rc" -ne 5 ]; then
  echo "demo: expected the submit gate to refuse the loosening team policy with exit 5 (got $rc)" >&2
  exit 1
fi
say "-> exit 5 (governance). Pushed as a draft for review instead: tagged draft-<version> only, never pulled as a release."
run push loosen/teams/alpha/policy.yaml "oci:$WORK/policies/team-beta" --key "$WORK/team-lead.key" --against org/baseline.yaml --draft

step "13. A tampered copy is refused: exit 2, nothing written"
run copy "oci:$WORK/policies/org:stable" "oci:$WORK/tampered:stable"
layer="$WORK/tampered/blobs/sha256/$(sha256sum "$WORK/pulled/org-baseline.json" | cut -d' ' -f1)"
chmod u+w "$layer"
sed -i 's/foundry.internal/foundry.attacker/' "$layer"
say "Changed one host name in the copy's policy layer; pulling it:"
set +e
run pull "oci:$WORK/tampered:stable" --key "$WORK/release.pub" -o "$WORK/tampered-out"
rc=$?
set -e
if [ "$rc" -ne 2 ] || [ -e "$WORK/tampered-out" ]; then
  echo "demo: expected the tampered copy to be refused with exit 2 and nothing written (got $rc)" >&2
  exit 1
fi
say "-> exit 2 (verification failed): the layer no longer matches its signed digest; nothing was written."

step "14. Start a sandbox: aibox start loads org + team from the layout and the project's own policy"
say "aibox.yaml names the tiers (the project policy is a file in the repository), the trust policy and the cache."
unset AIBOX_CACHE AIBOX_CONFIG AIBOX_POLICY_LOCK
# aibox start memoises validated configurations in the default cache directory: keep it in $WORK.
export XDG_CACHE_HOME="$WORK/xdg-cache"
PROJECT="$WORK/project"
mkdir -p "$PROJECT/aibox"
cp projects/webapp/aibox/policy.yaml "$PROJECT/aibox/policy.yaml"
cat >"$PROJECT/aibox.yaml" <<CONFIG
policy:
  org: oci:$WORK/policies/org:stable
  team: oci:$WORK/policies/team-alpha:stable
  project: aibox/policy.yaml
trust: $WORK/trust.yaml
cache: $WORK/cache
maxStaleness: 7d
CONFIG
cd "$PROJECT"
run start
say "The first start fetched and verified both artifacts and cached them; the effective policy is canonical JSON in the cache."

step "15. Start again: unchanged, so everything comes from the verified cache; the sandbox command gets the policy"
run start -- sh -c 'echo "sandbox: AIBOX_POLICY_VERSION=$AIBOX_POLICY_VERSION"; echo "sandbox: AIBOX_POLICY_DIGEST=$AIBOX_POLICY_DIGEST"; echo "sandbox: AIBOX_POLICY_FILE=$AIBOX_POLICY_FILE"'

step "16. Change and republish the org baseline (1.5.0): the next start propagates it, and the log says which version loaded"
sed -e 's/^  version: 1.4.0$/  version: 1.5.0/' -e 's/requests_per_min: 60,/requests_per_min: 40,/' "$ROOT/testdata/bundles/org/baseline.yaml" >"$WORK/org-1.5.0.yaml"
run push "$WORK/org-1.5.0.yaml" "oci:$WORK/policies/org:stable" --key "$WORK/release.key"
say "The trust policy wants an approver besides the security signer for the org tier:"
run approve "oci:$WORK/policies/org:1.5.0" --key "$WORK/team-lead.key" --role approver --note "tighter LLM gateway limit reviewed" --ticket SEC-1300
run start
run audit log --event policy.loaded --limit 1

step "17. A loosening project policy is refused with the runbook's words: exit 2, nothing loaded"
cp "$ROOT/testdata/bundles/projects/leaky/aibox/policy.yaml" "$PROJECT/aibox/policy.yaml"
set +e
run start
rc=$?
set -e
if [ "$rc" -ne 2 ]; then
  echo "demo: expected aibox start to refuse the loosening project policy with exit 2, got $rc" >&2
  exit 1
fi
say "-> exit 2: project policies can only add restrictions."
cp "$ROOT/testdata/bundles/projects/webapp/aibox/policy.yaml" "$PROJECT/aibox/policy.yaml"

step "18. Anti-rollback: republishing 1.4.0 as stable is refused, until a rollback approval with an incident is attached"
run push "$ROOT/testdata/bundles/org/baseline.yaml" "oci:$WORK/policies/org:stable" --key "$WORK/release.key"
set +e
run start
rc=$?
set -e
if [ "$rc" -ne 2 ]; then
  echo "demo: expected aibox start to refuse the rollback with exit 2, got $rc" >&2
  exit 1
fi
say "The team lead already approved 1.4.0 (one key, one role per digest): the on-call approver signs the rollback."
run approve "oci:$WORK/policies/org:stable" --key "$WORK/oncall.key" --role approver --note "1.5.0 throttles the LLM gateway too hard" --incident INC-2041
run start

step "19. The registry is gone: aibox start uses the verified cache and says how old it is"
mv "$WORK/policies" "$WORK/policies.offline"
run start -- sh -c 'echo "sandbox: started from $AIBOX_POLICY_SOURCE"'
say "Past maxStaleness it refuses, with the sealed-mode banner (here with --max-staleness 1s):"
sleep 2
set +e
run start --max-staleness 1s
rc=$?
set -e
if [ "$rc" -ne 4 ]; then
  echo "demo: expected aibox start to refuse a cache past maxStaleness with exit 4, got $rc" >&2
  exit 1
fi
mv "$WORK/policies.offline" "$WORK/policies"
cd "$ROOT/testdata/bundles"

step "20. Air gap: a sealed export, carried over, verified in full and imported on the other side"
say "The archive holds both policies, every signature and approval, and a seal signed by the exporter."
run key generate --output-key-prefix "$WORK/exporter"
run export "oci:$WORK/policies/org:stable" "oci:$WORK/policies/team-alpha:stable" -o "$WORK/policies.tar" --key "$WORK/exporter.key"
say "On the air-gapped side: the seal, every blob, nothing unlisted, each policy's own signatures; then import."
run import "$WORK/policies.tar" --to "oci:$WORK/airgap" --key "$WORK/exporter.pub" --key "$WORK/release.pub" --key "$WORK/team-lead.pub"
run pull "oci:$WORK/airgap:org-stable" --trust "$WORK/trust.yaml" -o "$WORK/airgap-pulled"
cp "$WORK/policies.tar" "$WORK/tampered.tar"
offset="$(grep -obUa 'foundry.internal' "$WORK/tampered.tar" | head -1 | cut -d: -f1)"
printf 'X' | dd of="$WORK/tampered.tar" bs=1 seek="$offset" conv=notrunc status=none
say "Changed one byte of a policy inside a copy of the archive; importing it:"
set +e
run import "$WORK/tampered.tar" --to "oci:$WORK/airgap-tampered" --key "$WORK/exporter.pub" --key "$WORK/release.pub" --key "$WORK/team-lead.pub"
rc=$?
set -e
if [ "$rc" -ne 2 ] || [ -e "$WORK/airgap-tampered" ]; then
  echo "demo: expected the tampered archive to be refused with exit 2 and nothing written (got $rc)" >&2
  exit 1
fi
say "-> exit 2 (verification failed): the blob no longer matches its digest; nothing was imported."

step "21. The audit log recorded every push, signature, approval, load, refusal, rollback, export and import; the chain verifies"
run audit log --event 'policy.*'
run audit verify

printf '\n%sdemo complete.%s Next: README "Policy bundles", "Publishing and fetching policies" "Governance", "Starting a sandbox: aibox start" and "Air-gapped sites".\n' "$B" "$R"

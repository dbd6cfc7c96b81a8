#!/usr/bin/env bash
# Regenerates testdata/hostile/import/sealed.tar: a real sealed export (aibox export) of the org
# baseline, signed by testdata/trust/keys/alice.key and sealed by carol.key, at a fixed time
# (SOURCE_DATE_EPOCH). scripts/gen-hostile.ts derives the hostile import archives from it.
# Signatures are ECDSA (randomized): a regenerated file differs in its signature bytes only.
# Needs `make build`. Usage: scripts/gen-sealed-fixture.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
keys="$root/testdata/trust/keys"
export COSIGN_PASSWORD=test AIBOX_AUDIT_LOG="$work/audit.jsonl" SOURCE_DATE_EPOCH=1700000000 CI=1 XDG_CACHE_HOME="$work/xdg"
cd "$work"
node "$root/bin/run.js" push "$root/testdata/bundles/org/baseline.yaml" oci:policies:stable --key "$keys/alice.key" >/dev/null
node "$root/bin/run.js" export oci:policies:stable -o "$work/sealed.tar" --key "$keys/carol.key" >/dev/null
mkdir -p "$root/testdata/hostile/import"
cp "$work/sealed.tar" "$root/testdata/hostile/import/sealed.tar"
echo "wrote testdata/hostile/import/sealed.tar"

#!/usr/bin/env bash
# Installs the Debian packages the test suite and benchmarks use, when they are missing:
# docker-registry (CNCF distribution 2.8, the real registry tests talk to), skopeo (interop
# oracle), apache2-utils (htpasswd for the Basic-auth registry), openssl (test CA), openssh-client
# (ssh-keygen: the oracle for SSH key fingerprints used as DSSE keyids), util-linux (script: a pty
# for the password-prompt test), chromium (the headless browser that checks `aibox audit report --html`;
# driven by playwright-core, never by a browser that Playwright downloads itself).
# Non-interactive; uses sudo when not root.
set -euo pipefail
need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v openssl >/dev/null || need+=(openssl)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v script >/dev/null || need+=(bsdutils)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "installing Debian packages: ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${need[@]}" </dev/null; then
  $SUDO apt-get update </dev/null
  $SUDO apt-get install -y --no-install-recommends "${need[@]}" </dev/null
fi

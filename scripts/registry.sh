#!/usr/bin/env bash
# Starts and stops Debian's docker-registry (CNCF distribution 2.8) on 127.0.0.1 for tests,
# benchmarks and demos (registry-notes.md §1). Never binds another interface.
#
#   scripts/registry.sh start --dir STATE_DIR --port PORT [--htpasswd USER:PASS] [--tls]
#                             [--token-realm URL --token-cert PEM [--token-service S] [--token-issuer I]]
#       Writes STATE_DIR/config.yml (+ htpasswd, TLS CA and certificate), starts the registry in
#       the background, waits until GET /v2/ answers, prints its PID on stdout.
#       --htpasswd   Basic auth (bcrypt at cost 4: the registry checks bcrypt on every request)
#       --tls        HTTPS with a certificate for 127.0.0.1/localhost signed by a fresh test CA:
#                    STATE_DIR/ca.pem is the CA to trust (--ca-file / NODE_EXTRA_CA_CERTS),
#                    STATE_DIR/certs.d/ca.crt the same for skopeo --*-cert-dir.
#       --token-*    Bearer token auth (realm of a token server, its signing certificate).
#   scripts/registry.sh stop PID
#       Stops that registry (TERM, then KILL after 5 s) and waits until it is gone.
set -euo pipefail

die() { echo "registry.sh: $*" >&2; exit 1; }

# Running and not a zombie (an exited child stays a zombie until its reaper gets to it).
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)
  [ -n "$state" ] && [ "$state" != Z ]
}

cmd_stop() {
  local pid=${1:-}
  [[ "$pid" =~ ^[0-9]+$ ]] || die "usage: registry.sh stop PID"
  alive "$pid" || exit 0
  # Only ever signal a docker-registry process: a PID reused by something else is left alone.
  if [ -r "/proc/$pid/cmdline" ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'docker-registry'; then
    die "process $pid is not a docker-registry"
  fi
  kill -TERM "$pid" 2>/dev/null || exit 0
  for _ in $(seq 1 250); do
    alive "$pid" || exit 0
    sleep 0.02
  done
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    alive "$pid" || exit 0
    sleep 0.02
  done
  die "process $pid did not exit"
}

cmd_start() {
  local dir="" port="" htpasswd="" tls=0 realm="" tcert="" service="aibox-test-registry" issuer="aibox-test-token-issuer"
  while [ $# -gt 0 ]; do
    case "$1" in
      --dir) dir=$2; shift 2 ;;
      --port) port=$2; shift 2 ;;
      --htpasswd) htpasswd=$2; shift 2 ;;
      --tls) tls=1; shift ;;
      --token-realm) realm=$2; shift 2 ;;
      --token-cert) tcert=$2; shift 2 ;;
      --token-service) service=$2; shift 2 ;;
      --token-issuer) issuer=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ -n "$dir" ] && [ -n "$port" ] || die "usage: registry.sh start --dir STATE_DIR --port PORT [...]"
  [[ "$port" =~ ^[0-9]+$ ]] || die "--port must be a number"
  [ -n "$htpasswd" ] && [ -n "$realm" ] && die "--htpasswd and --token-realm are exclusive"
  [ -n "$realm" ] && [ -z "$tcert" ] && die "--token-realm needs --token-cert"
  command -v docker-registry >/dev/null || die "docker-registry is not installed (make sysdeps)"
  mkdir -p "$dir/data"
  dir=$(cd "$dir" && pwd)

  local auth="" tlsconf="" scheme=http
  if [ -n "$htpasswd" ]; then
    command -v htpasswd >/dev/null || die "htpasswd is not installed (apache2-utils)"
    htpasswd -B -C 4 -b -n "${htpasswd%%:*}" "${htpasswd#*:}" >"$dir/htpasswd" 2>/dev/null
    auth="auth:
  htpasswd:
    realm: aibox-test-realm
    path: $dir/htpasswd"
  elif [ -n "$realm" ]; then
    auth="auth:
  token:
    realm: $realm
    service: $service
    issuer: $issuer
    rootcertbundle: $(cd "$(dirname "$tcert")" && pwd)/$(basename "$tcert")"
  fi
  if [ "$tls" = 1 ]; then
    scheme=https
    # A throw-away CA and a server certificate for the loopback names (EC P-256: fast to make).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 7 \
      -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" -subj "/CN=aibox test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
      -keyout "$dir/key.pem" -out "$dir/cert.csr" -subj "/CN=127.0.0.1" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$dir/cert.ext"
    openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
      -days 7 -sha256 -extfile "$dir/cert.ext" -out "$dir/cert.pem" 2>/dev/null
    mkdir -p "$dir/certs.d"
    cp "$dir/ca.pem" "$dir/certs.d/ca.crt"
    tlsconf="  tls:
    certificate: $dir/cert.pem
    key: $dir/key.pem"
  fi
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: aibox-test-not-a-secret-$port
  draintimeout: 200ms
  headers:
    X-Content-Type-Options: [nosniff]
$tlsconf
$auth
EOF
  # setsid: its own session, so a test runner's terminal signals do not reach it; stopped by PID.
  setsid docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/registry.pid"
  local curlopts=(-s -o /dev/null -w '%{http_code}' --max-time 2)
  [ "$tls" = 1 ] && curlopts+=(--cacert "$dir/ca.pem")
  for _ in $(seq 1 500); do
    if ! alive "$pid"; then
      tail -n 20 "$dir/registry.log" >&2 || true
      die "docker-registry exited during start-up (log: $dir/registry.log)"
    fi
    code=$(curl "${curlopts[@]}" "$scheme://127.0.0.1:$port/v2/" || true)
    if [ -n "$code" ] && [ "$code" != "000" ]; then
      echo "$pid"
      return 0
    fi
    sleep 0.02
  done
  kill -KILL "$pid" 2>/dev/null || true
  die "docker-registry did not answer on 127.0.0.1:$port within 10 s (log: $dir/registry.log)"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) die "usage: registry.sh start --dir DIR --port PORT [--htpasswd U:P] [--tls] [--token-realm URL --token-cert PEM] | stop PID" ;;
esac

# Shared by the signing-service tests: a cluster on loopback and a real `kubeca serve`.
set -euo pipefail
: "${KUBECA:?KUBECA must name the kubeca binary}"
T=$(mktemp -d)
[ -n "${KEEP_TMP:-}" ] && echo "tmp: $T" >&2
SERVER_PIDS=()
cleanup() {
  for p in "${SERVER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'echo "aborted at line $LINENO: $BASH_COMMAND" >&2' ERR
FAILS=0
PASSES=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
pass() { PASSES=$((PASSES + 1)); }
check() { if eval "$2"; then pass; else fail "$1"; fi; }
finish() {
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}

# write_cluster DIR FLAVOR ALGO: a modern cluster on 127.0.0.x with workers n1 and n2.
write_cluster() {
  mkdir -p "$1"
  cat > "$1/cluster.yaml" <<YAML
cluster: {name: test, flavor: ${2:-modern}}
master: {host: 127.0.0.1, name: m1}
workers: [{name: n1, ip: 127.0.0.2}, {name: n2, ip: 127.0.0.3}]
pki: {key_algorithm: ${3:-ecdsa-p256}}
signer: {url: "https://127.0.0.1:8443", store: "sqlite:$1/kubeca.db"}
YAML
  "$KUBECA" init --config "$1/cluster.yaml" --pki "$1/pki" >/dev/null
}

# start_server DIR [extra serve flags...]: sets PORT and URL.
start_server() {
  local dir=$1
  shift
  "$KUBECA" serve --config "${SERVE_CONFIG:-$dir/cluster.yaml}" --pki "$dir/pki" --listen 127.0.0.1:0 \
    --audit-log "$dir/audit.log" "$@" 2>"$dir/serve.err" &
  SERVER_PIDS+=($!)
  SERVER_PID=$!
  for _ in $(seq 100); do
    PORT=$(sed -n 's|.*serving on https://127.0.0.1:\([0-9]*\).*|\1|p' "$dir/serve.err")
    [ -n "$PORT" ] && break
    sleep 0.1
  done
  [ -n "$PORT" ] || { cat "$dir/serve.err"; exit 1; }
  URL="https://127.0.0.1:$PORT"
}

# pin DIR: the CA pin, computed with openssl (not with kubeca).
pin() {
  echo "sha256:$(openssl x509 -in "$1/pki/ca.pem" -pubkey -noout |
    openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)"
}

# make_csr OUT SUBJECT [openssl req options...]: a P-256 CSR unless options say otherwise.
make_csr() {
  local out=$1 subj=$2
  shift 2
  if [ $# -eq 0 ]; then set -- -newkey ec -pkeyopt ec_paramgen_curve:P-256; fi
  openssl req -new -nodes -keyout "$out.key" -subj "$subj" -out "$out" "$@" 2>/dev/null
}

# sign_body CSRFILE [PROFILE]: the JSON body for /v1/sign.
sign_body() {
  python3 -c 'import json,sys; d={"csr": open(sys.argv[1]).read()}
if len(sys.argv) > 2: d["profile"] = sys.argv[2]
print(json.dumps(d))' "$@"
}

# post_sign DIR TOKEN BODYFILE: prints the status; the answer is in $T/resp.
post_sign() {
  curl -s -o "$T/resp" -w '%{http_code}' --cacert "$1/pki/ca.pem" \
    -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
    --data-binary @"$3" "$URL/v1/sign"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# same_key CERT KEY: openssl says the certificate's public key is the key's.
same_key() {
  [ "$(openssl x509 -in "$1" -noout -pubkey 2>/dev/null)" = "$(openssl pkey -in "$2" -pubout 2>/dev/null)" ] &&
    [ -n "$(openssl pkey -in "$2" -pubout 2>/dev/null)" ]
}
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }

resp_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$T/resp" "$1"; }
# cert_count DIR: the certificates the service issued (init records the folder's leaves too).
cert_count() {
  sqlite3 "$1/kubeca.db" "select count(*) from certificates where requester <> 'init'"
}

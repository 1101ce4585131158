#!/usr/bin/env bash
# bench/profile.sh — instructions per signing request, counted by valgrind (callgrind):
# steady on a shared machine where wall times are not (docs/benchmarks.md, "Instructions
# per request").
#
# `kubeca init` makes a PKI with the CA's algorithm, `kubeca serve` runs under callgrind with
# counting off; a keep-alive client (Python, one TLS connection) posts WARMUP requests, then
# counting goes on for REQUESTS more (each one checked: 201), off again, and the server is
# stopped. Printed: instructions per request, in total and for the top functions
# (inclusive, then self). Binds 127.0.0.1 only.
#
# Environment: KUBECA (default build/kubeca), ALG (ecdsa-p256; rsa-2048, ed25519, ...),
# WARMUP (50), REQUESTS (300), TOP (25), KEEP=1 keeps the folder (callgrind.out, for
# callgrind_annotate or kcachegrind). The store is SQLite, as bench/serve has it.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
KUBECA=$(realpath "${KUBECA:-$ROOT/build/kubeca}")
ALG=${ALG:-ecdsa-p256}
WARMUP=${WARMUP:-50}
REQUESTS=${REQUESTS:-300}
TOP=${TOP:-25}

for tool in valgrind callgrind_control callgrind_annotate openssl jq python3 ss curl; do
  command -v "$tool" >/dev/null || { echo "profile.sh: $tool is missing" >&2; exit 2; }
done
[[ -x $KUBECA ]] || { echo "profile.sh: $KUBECA is missing; build it" >&2; exit 2; }

WORK=$(mktemp -d /tmp/kubeca-profile.XXXXXX)
SPID=
cleanup() {
  local rc=$?
  if [[ -n $SPID ]]; then
    kill "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 || $rc != 0 ]]; then echo "work folder kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$WORK"

port=
while :; do
  port=$((20000 + RANDOM % 30000))
  [[ -z $(ss -Htln "sport = :$port") ]] && break
done
store_url="sqlite:$WORK/kubeca.db"
cat >cluster.yaml <<EOF
cluster: {name: bench, flavor: modern}
master: {host: 127.0.0.1, name: m1}
workers: [{name: n1, ip: 127.0.0.2}]
pki: {key_algorithm: $ALG}
signer: {url: "https://127.0.0.1:$port", store: "$store_url"}
EOF
"$KUBECA" init -c cluster.yaml --pki pki >init.log
case $ALG in
  rsa-*) newkey=(-newkey "rsa:${ALG#rsa-}") ;;
  ecdsa-p256) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
  ecdsa-p384) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-384) ;;
  ed25519) newkey=(-newkey ed25519) ;;
  *) echo "profile.sh: unknown ALG $ALG" >&2; exit 2 ;;
esac
openssl req -new "${newkey[@]}" -nodes -keyout n1-key.pem -subj /CN=system:node:n1 -out n1.csr 2>/dev/null
jq -n --rawfile csr n1.csr '{csr: $csr, profile: "kubelet"}' >body.json

serve=("$KUBECA" serve -c cluster.yaml --pki pki --listen "127.0.0.1:$port" --audit-log audit.log)
token=$("$KUBECA" token create --store "$store_url" --node n1 --ip 127.0.0.2 --uses 1000000 \
  --ttl 2h 2>/dev/null)

valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/callgrind.out" \
  "${serve[@]}" 2>serve.err &
SPID=$!
for _ in $(seq 1 600); do
  curl -sk -o /dev/null --max-time 2 "https://127.0.0.1:$port/healthz" && break
  kill -0 "$SPID" 2>/dev/null || { cat serve.err >&2; exit 1; }
  sleep 0.2
done

# post N: N signing requests over one keep-alive TLS connection; each must answer 201.
post() {
  python3 - "$port" "$token" "$1" <<'EOF'
import http.client, ssl, sys
port, token, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
body = open("body.json", "rb").read()
ctx = ssl.create_default_context(cafile="pki/ca.pem")
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=120)
for i in range(n):
    c.request("POST", "/v1/sign", body, {"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 201:
        sys.exit("request %d: HTTP %d %s" % (i, r.status, data[:200]))
EOF
}
post "$WARMUP"
callgrind_control -i on "$SPID" >/dev/null 2>&1
post "$REQUESTS"
callgrind_control -i off "$SPID" >/dev/null 2>&1
kill "$SPID"
wait "$SPID" 2>/dev/null || true
SPID=

out=$WORK/callgrind.out
[[ -s $out ]] || { echo "profile.sh: no callgrind output" >&2; exit 1; }
total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !t {gsub(",", "", $1); t = $1} END {print t}')
echo "== $ALG, SQLite store: $REQUESTS requests after $WARMUP, $(valgrind --version)"
awk -v t="$total" -v n="$REQUESTS" 'BEGIN {printf "instructions per request: %.3f M (total %d)\n", t / n / 1e6, t}'
per_request() {  # reads callgrind_annotate's "COUNT (PCT) FILE:FUNCTION [OBJECT]" lines
  awk -v n="$REQUESTS" -v top="$TOP" '
    /^ *[0-9,]+ +\([ 0-9.%]*\) / && !/PROGRAM TOTALS/ {
      c = $1; gsub(",", "", c); f = $0
      sub(/^ *[0-9,]+ +\([ 0-9.%]*\) +/, "", f); sub(/ \[[^]]*\]$/, "", f); sub(/^[?][?][?]:/, "", f)
      if (++k <= top) printf "%10.1f k  %s\n", c / n / 1000, substr(f, 1, 110) }'
}
echo
echo "-- inclusive, thousands of instructions per request"
callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null | per_request
echo
echo "-- self"
callgrind_annotate --threshold=100 "$out" 2>/dev/null | per_request
exit 0

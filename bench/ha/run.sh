#!/usr/bin/env bash
# bench/ha/run.sh — the signing service on SQLite against the same service on a three-member
# etcd, with one, two and three replicas, in one run (docs/benchmarks.md, "ha").
#
# One ecdsa-p256 PKI from `kubeca init`; a three-member etcd on 127.0.0.1 with TLS from that
# PKI (etcd/server, etcd/peer) and kubeca's apiserver-etcd-client certificate. Every
# request is a POST /v1/sign with the next of TOKENS bootstrap tokens (each allows many
# uses), as nodes joining would: wrk, CONNS connections in all, split over the replicas.
# For each setup: signs/s, p50/p99, the replicas' CPU per sign and etcd's CPU per sign.
# Everything binds 127.0.0.1 only; every process started here is stopped on exit.
#
# Environment: KUBECA (default build/kubeca), DURATION (10s), CONNS (16), TOKENS (64),
# KEEP=1 to keep the work folder.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KUBECA=$(realpath "${KUBECA:-$ROOT/build/kubeca}")
DURATION=${DURATION:-10s}
CONNS=${CONNS:-16}
TOKENS=${TOKENS:-64}
for tool in wrk etcd etcdctl openssl jq curl awk; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (scripts/install-deps.sh)" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/kubeca-bench-ha.XXXXXX)
cd "$WORK"
PIDS=()
cleanup() {
  local rc=$? p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ ${KEEP:-0} == 1 || $rc != 0 ]]; then echo "work folder kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "-- $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }
sum_cpu() { local s=0 p; for p in "$@"; do s=$(awk -v a="$s" -v b="$(cpu_seconds "$p")" 'BEGIN {print a + b}'); done; echo "$s"; }

cat >cluster.yaml <<EOF
cluster: {name: bench, flavor: modern}
master: {host: 127.0.0.1, name: m1}
workers: [{name: n1, ip: 127.0.0.2}]
pki: {key_algorithm: ecdsa-p256}
signer: {url: "https://127.0.0.1:8443", store: "sqlite:$WORK/kubeca.db"}
EOF
"$KUBECA" init -c cluster.yaml --pki pki >/dev/null
P=$WORK/pki
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout n1-key.pem \
  -subj /CN=system:node:n1 -out n1.csr 2>/dev/null
jq -n --rawfile csr n1.csr '{csr: $csr, profile: "kubelet"}' >body.json

# A three-member etcd, TLS for clients and peers, each member with its own data folder.
CPORTS=() PPORTS=() ETCD_PIDS=()
for i in 1 2 3; do CPORTS+=("$(free_port)"); PPORTS+=("$(free_port)"); done
initial="e1=https://127.0.0.1:${PPORTS[0]},e2=https://127.0.0.1:${PPORTS[1]},e3=https://127.0.0.1:${PPORTS[2]}"
for i in 0 1 2; do
  etcd --name "e$((i + 1))" --data-dir "$WORK/etcd$i" \
    --listen-client-urls "https://127.0.0.1:${CPORTS[$i]}" --advertise-client-urls "https://127.0.0.1:${CPORTS[$i]}" \
    --listen-peer-urls "https://127.0.0.1:${PPORTS[$i]}" --initial-advertise-peer-urls "https://127.0.0.1:${PPORTS[$i]}" \
    --initial-cluster "$initial" --initial-cluster-state new --listen-metrics-urls "" \
    --cert-file "$P/etcd/server.pem" --key-file "$P/etcd/server-key.pem" --client-cert-auth \
    --trusted-ca-file "$P/etcd/ca.pem" --peer-cert-file "$P/etcd/peer.pem" \
    --peer-key-file "$P/etcd/peer-key.pem" --peer-client-cert-auth --peer-trusted-ca-file "$P/etcd/ca.pem" \
    >"$WORK/etcd$i.log" 2>&1 &
  PIDS+=($!) ETCD_PIDS+=($!)
done
EPS="127.0.0.1:${CPORTS[0]},127.0.0.1:${CPORTS[1]},127.0.0.1:${CPORTS[2]}"
TLS="ca=$P/etcd/ca.pem&cert=$P/apiserver-etcd-client.pem&key=$P/apiserver-etcd-client-key.pem"
for _ in $(seq 100); do
  ETCDCTL_API=3 etcdctl --endpoints "https://$EPS" --cacert "$P/etcd/ca.pem" --cert "$P/apiserver-etcd-client.pem" \
    --key "$P/apiserver-etcd-client-key.pem" endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done

declare -A RPS P50 P99 CPU ECPU ERR
# run NAME STORE REPLICAS: REPLICAS servers on STORE, TOKENS tokens, wrk on each.
run() {
  local name=$1 store=$2 n=$3 i pids=() urls=()
  log "$name: tokens"
  : >"$WORK/tokens-$name"
  for i in $(seq "$TOKENS"); do
    "$KUBECA" token create --store "$store" --node n1 --ip 127.0.0.2 --uses 1000000 --ttl 2h \
      2>/dev/null >>"$WORK/tokens-$name"
  done
  for i in $(seq "$n"); do
    "$KUBECA" serve -c cluster.yaml --pki "$P" --listen 127.0.0.1:0 --store "$store" \
      --audit-log "$WORK/audit-$name-$i.log" 2>"$WORK/serve-$name-$i.err" &
    PIDS+=($!) pids+=($!)
    local port=""
    for _ in $(seq 100); do
      port=$(sed -n 's|.*serving on https://127.0.0.1:\([0-9]*\).*|\1|p' "$WORK/serve-$name-$i.err")
      [[ -n $port ]] && break
      sleep 0.1
    done
    [[ -n $port ]] || { cat "$WORK/serve-$name-$i.err" >&2; exit 1; }
    urls+=("https://127.0.0.1:$port")
  done
  local c0 e0 c1 e1 per=$((CONNS / n))
  c0=$(sum_cpu "${pids[@]}")
  e0=$(sum_cpu "${ETCD_PIDS[@]}")
  log "$name: wrk -t1 -c$per -d$DURATION on each of $n replica(s)"
  local wrks=()
  for i in $(seq 0 $((n - 1))); do
    BODY_FILE=$WORK/body.json TOKENS_FILE=$WORK/tokens-$name wrk -t1 -c"$per" -d"$DURATION" \
      --latency -s "$HERE/sign.lua" "${urls[$i]}" >"$WORK/wrk-$name-$i.txt" &
    wrks+=($!)
  done
  wait "${wrks[@]}"
  c1=$(sum_cpu "${pids[@]}")
  e1=$(sum_cpu "${ETCD_PIDS[@]}")
  local total=0 errors=0 p50=0 p99=0 dur=0 r
  for i in $(seq 0 $((n - 1))); do
    r=$(grep '^RESULT ' "$WORK/wrk-$name-$i.txt") || { cat "$WORK/wrk-$name-$i.txt" >&2; exit 1; }
    eval "local ${r#RESULT }"
    total=$((total + requests - non2xx))
    errors=$((errors + non2xx + connect + read + write + timeout))
    dur=$duration_us
    ((p50_us > p50)) && p50=$p50_us
    ((p99_us > p99)) && p99=$p99_us
  done
  RPS[$name]=$(awk -v n="$total" -v d="$dur" 'BEGIN {printf "%.0f", n / (d / 1e6)}')
  P50[$name]=$(awk -v u="$p50" 'BEGIN {printf "%.1f", u / 1000}')
  P99[$name]=$(awk -v u="$p99" 'BEGIN {printf "%.1f", u / 1000}')
  CPU[$name]=$(awk -v a="$c0" -v b="$c1" -v n="$total" 'BEGIN {printf "%.2f", n ? (b - a) * 1000 / n : 0}')
  ECPU[$name]=$(awk -v a="$e0" -v b="$e1" -v n="$total" 'BEGIN {printf "%.2f", n ? (b - a) * 1000 / n : 0}')
  ERR[$name]=$errors
  for i in "${pids[@]}"; do kill "$i"; wait "$i" 2>/dev/null || true; done
}

run sqlite-1 "sqlite:$WORK/kubeca.db" 1
run etcd-1 "etcd://$EPS?$TLS&prefix=/b1/" 1
run etcd-2 "etcd://$EPS?$TLS&prefix=/b2/" 2
run etcd-3 "etcd://$EPS?$TLS&prefix=/b3/" 3

echo
echo "== ha: signing on SQLite vs a 3-member etcd ($(nproc) cores); wrk, $CONNS connections in all, $DURATION, $TOKENS tokens; etcd $(etcd --version | awk 'NR==1 {print $3}')"
printf '%-9s %8s %7s %7s %14s %12s %7s %s\n' setup signs/s p50_ms p99_ms serve_cpu_ms etcd_cpu_ms errors vs_sqlite
for s in sqlite-1 etcd-1 etcd-2 etcd-3; do
  printf '%-9s %8s %7s %7s %14s %12s %7s %s\n' "$s" "${RPS[$s]}" "${P50[$s]}" "${P99[$s]}" \
    "${CPU[$s]}" "${ECPU[$s]}" "${ERR[$s]}" \
    "$(awk -v a="${RPS[$s]}" -v b="${RPS[sqlite-1]}" 'BEGIN {printf "%.2f", b ? a / b : 0}')"
done

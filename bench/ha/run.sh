#!/usr/bin/env bash
# bench/ha/run.sh — the signing service on SQLite against the same service on a three-member
# etcd, with one, two and three replicas, in one run (docs/benchmarks.md, "ha").
#
# One ecdsa-p256 PKI from `kubeca init`; a three-member etcd on 127.0.0.1 with TLS from that
# PKI (etcd/server, etcd/peer) and kubeca's apiserver-etcd-client certificate. Every
# request is a POST /v1/sign with the next of CSRS requests (each with a key of its own) and
# the next of its replica's share of TOKENS bootstrap tokens (each allows many uses), as nodes
# joining would: wrk,
# CONNS connections in all, split over the replicas. For each setup: signs/s, p50/p99, the
# replicas' CPU per sign, etcd's CPU per sign, and etcd's requests per sign (Range and Txn,
# from the members' grpc_server_handled_total: the round trips an issuance costs).
# Everything binds 127.0.0.1 only; every process started here is stopped on exit.
#
# Environment: KUBECA (default build/kubeca), DURATION (10s), CONNS (16), TOKENS (64),
# CSRS (1024), KEEP=1 to keep the work folder.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KUBECA=$(realpath "${KUBECA:-$ROOT/build/kubeca}")
DURATION=${DURATION:-10s}
CONNS=${CONNS:-16}
TOKENS=${TOKENS:-64}
CSRS=${CSRS:-1024}
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
# CSRS requests, each with a key of its own: with one key reused, every issuance would look
# through every certificate issued for it (key_revoked) and the benchmark would measure that.
mkdir csrs
seq "$CSRS" | xargs -P "$(nproc)" -I{} sh -c 'openssl req -new -newkey ec \
  -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj /CN=system:node:n1 \
  -out csrs/{}.csr 2>/dev/null'
for f in csrs/*.csr; do jq -c -n --rawfile csr "$f" '{csr: $csr, profile: "kubelet"}'; done >bodies.json

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

# etcd's gRPC requests of one method (Range, Txn) handled by all three members so far.
etcd_requests() {
  local port sum=0 n
  for port in "${CPORTS[@]}"; do
    n=$(curl -s --cacert "$P/etcd/ca.pem" --cert "$P/apiserver-etcd-client.pem" \
      --key "$P/apiserver-etcd-client-key.pem" "https://127.0.0.1:$port/metrics" |
      awk -v m="grpc_method=\"$1\"" 'index($0, "grpc_server_handled_total{") == 1 && index($0, m) {s += $NF} END {printf "%d", s}')
    sum=$((sum + n))
  done
  echo "$sum"
}

declare -A RPS P50 P99 CPU ECPU ERR RANGES TXNS
# run NAME STORE REPLICAS: REPLICAS servers on STORE, TOKENS tokens, wrk on each.
run() {
  local name=$1 store=$2 n=$3 i pids=() urls=()
  log "$name: tokens"
  # Each replica's clients have tokens of their own, as each node has its own token; a
  # token's uses through two replicas would conflict, and each conflict costs a retry.
  for i in $(seq 0 $((n - 1))); do : >"$WORK/tokens-$name-$i"; done
  for i in $(seq 0 $((TOKENS - 1))); do
    "$KUBECA" token create --store "$store" --node n1 --ip 127.0.0.2 --uses 1000000 --ttl 2h \
      2>/dev/null >>"$WORK/tokens-$name-$((i % n))"
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
  local r0 t0 r1 t1
  r0=$(etcd_requests Range) t0=$(etcd_requests Txn)
  log "$name: wrk -t1 -c$per -d$DURATION on each of $n replica(s)"
  local wrks=()
  for i in $(seq 0 $((n - 1))); do
    BODIES_FILE=$WORK/bodies.json TOKENS_FILE=$WORK/tokens-$name-$i wrk -t1 -c"$per" -d"$DURATION" \
      --latency -s "$HERE/sign.lua" "${urls[$i]}" >"$WORK/wrk-$name-$i.txt" &
    wrks+=($!)
  done
  wait "${wrks[@]}"
  c1=$(sum_cpu "${pids[@]}")
  e1=$(sum_cpu "${ETCD_PIDS[@]}")
  r1=$(etcd_requests Range) t1=$(etcd_requests Txn)
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
  RANGES[$name]=$(awk -v a="$r0" -v b="$r1" -v n="$total" 'BEGIN {printf "%.2f", n ? (b - a) / n : 0}')
  TXNS[$name]=$(awk -v a="$t0" -v b="$t1" -v n="$total" 'BEGIN {printf "%.2f", n ? (b - a) / n : 0}')
  for i in "${pids[@]}"; do kill "$i"; wait "$i" 2>/dev/null || true; done
}

SETUPS=(sqlite-1 etcd-1-alone etcd-1 etcd-2 etcd-3)
run sqlite-1 "sqlite:$WORK/kubeca.db" 1
# batch=1: every issuance its own etcd transaction (no group commit), for comparison.
run etcd-1-alone "etcd://$EPS?$TLS&prefix=/b0/&batch=1" 1
run etcd-1 "etcd://$EPS?$TLS&prefix=/b1/" 1
run etcd-2 "etcd://$EPS?$TLS&prefix=/b2/" 2
run etcd-3 "etcd://$EPS?$TLS&prefix=/b3/" 3

echo
echo "== ha: signing on SQLite vs a 3-member etcd ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)); wrk, $CONNS connections in all, $DURATION, $TOKENS tokens, $CSRS keys; etcd $(etcd --version | awk 'NR==1 {print $3}')"
printf '%-12s %8s %7s %7s %14s %12s %10s %8s %7s %s\n' setup signs/s p50_ms p99_ms serve_cpu_ms etcd_cpu_ms ranges/sign txns/sign errors vs_sqlite
for s in "${SETUPS[@]}"; do
  printf '%-12s %8s %7s %7s %14s %12s %10s %8s %7s %s\n' "$s" "${RPS[$s]}" "${P50[$s]}" "${P99[$s]}" \
    "${CPU[$s]}" "${ECPU[$s]}" "${RANGES[$s]}" "${TXNS[$s]}" "${ERR[$s]}" \
    "$(awk -v a="${RPS[$s]}" -v b="${RPS[sqlite-1]}" 'BEGIN {printf "%.2f", b ? a / b : 0}')"
done

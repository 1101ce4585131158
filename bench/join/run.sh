#!/usr/bin/env bash
# bench/join/run.sh — a thousand nodes joining one `kubeca serve` at once
# (docs/benchmarks.md, "join: a thousand nodes at once").
#
# `kubeca init` makes a PKI (ALGO, default ecdsa-p256) with a SQLite store; `kubeca serve`
# runs on 127.0.0.1; `kubeca bench join` creates NODES single-use tokens over the admin API,
# makes NODES keys and CSRs (not timed), then joins them CONCURRENCY at a time, each over a
# fresh TCP+TLS connection with no retry, and checks every certificate (CA signature,
# subject, key, unique serial). The server's peak RSS (VmHWM) and CPU are read from /proc.
# ROUNDS runs, each on a fresh server and store.
#
# Environment: KUBECA (default build-perf/kubeca), NODES (1000), CONCURRENCY (200),
# ALGO (ecdsa-p256), ROUNDS (1), KEEP=1 to keep the work folder.
# Exit status: 0 when every target holds, 1 otherwise, 2 on a missing tool.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/../lib.sh"
KUBECA=${KUBECA:-$ROOT/build-perf/kubeca}
NODES=${NODES:-1000}
CONCURRENCY=${CONCURRENCY:-200}
ALGO=${ALGO:-ecdsa-p256}
ROUNDS=${ROUNDS:-1}
# Targets (issue 13, point 3 and 4).
TARGET_P99_MS=1000
TARGET_RATE=1000
TARGET_RSS_MIB=64

for tool in curl ss awk; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (apt-get install it)" >&2; exit 2; }
done
[[ -x $KUBECA ]] || {
  echo "run.sh: $KUBECA is missing; build it: cmake -S $ROOT -B $ROOT/build-perf -DCMAKE_BUILD_TYPE=Release && cmake --build $ROOT/build-perf -j2 --target kubeca" >&2
  exit 2
}
KUBECA=$(realpath "$KUBECA")

WORK=$(mktemp -d /tmp/kubeca-bench-join.XXXXXX)
cd "$WORK"
SERVER=
cleanup() {
  local rc=$?
  if [[ -n $SERVER ]]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 || $rc != 0 ]]; then echo "work folder kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fails=0
verdict() {  # verdict OK TEXT
  if [[ $1 == 1 ]]; then echo "PASS  ${*:2}"; else echo "FAIL  ${*:2}"; fails=$((fails + 1)); fi
}

for round in $(seq 1 "$ROUNDS"); do
  dir=$WORK/round$round
  mkdir -p "$dir"
  port=$(bench_free_port)
  cat >"$dir/cluster.yaml" <<EOF
cluster: {name: bench, flavor: modern}
master: {host: 127.0.0.1, name: m1}
workers: [{name: n1, ip: 127.0.0.2}]
pki: {key_algorithm: $ALGO}
signer: {url: "https://127.0.0.1:$port", store: "sqlite:$dir/kubeca.db"}
EOF
  "$KUBECA" init -c "$dir/cluster.yaml" --pki "$dir/pki" >"$dir/init.log"
  "$KUBECA" serve -c "$dir/cluster.yaml" --pki "$dir/pki" --listen "127.0.0.1:$port" \
    --audit-log "$dir/audit.log" 2>"$dir/serve.err" &
  SERVER=$!
  bench_wait_up "$SERVER" "https://127.0.0.1:$port/healthz"
  load0=$(cut -d' ' -f1 /proc/loadavg)
  cpu0=$(bench_cpu_seconds "$SERVER")
  rc=0
  "$KUBECA" bench join --nodes "$NODES" --concurrency "$CONCURRENCY" \
    --server "https://127.0.0.1:$port" --pki "$dir/pki" --key-algorithm "$ALGO" \
    >"$dir/join.txt" 2>"$dir/join.err" || rc=$?
  cpu1=$(bench_cpu_seconds "$SERVER")
  rss=$(awk -v k="$(bench_peak_rss_kib "$SERVER")" 'BEGIN {printf "%.1f", k / 1024}')
  kill "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  SERVER=
  echo "== round $round: $NODES nodes, concurrency $CONCURRENCY, $ALGO, load average $load0 at the start"
  cat "$dir/join.txt"
  # Server CPU covers the token creation too (NODES admin requests).
  echo "server: peak RSS $rss MiB, CPU $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.2f", b - a}') s (tokens and joins)"
  p99=$(awk '/^latency/ {print $8}' "$dir/join.txt")
  rate=$(awk '/joins\/s/ {print $3}' "$dir/join.txt")
  verdict "$([[ $rc == 0 ]] && echo 1 || echo 0)" "every node joined, every certificate verified, serials unique (bench join exit $rc)"
  verdict "$(awk -v p="$p99" -v t=$TARGET_P99_MS 'BEGIN {print (p != "" && p <= t) ? 1 : 0}')" "p99 $p99 ms (target <= $TARGET_P99_MS ms)"
  verdict "$(awk -v r="$rate" -v t=$TARGET_RATE 'BEGIN {print (r != "" && r >= t) ? 1 : 0}')" "$rate joins/s (target >= $TARGET_RATE)"
  verdict "$(awk -v m="$rss" -v t=$TARGET_RSS_MIB 'BEGIN {print (m <= t) ? 1 : 0}')" "server peak RSS $rss MiB (target <= $TARGET_RSS_MIB MiB)"
done
echo
if [[ $fails == 0 ]]; then echo "all targets PASS"; else echo "$fails target(s) FAIL"; exit 1; fi

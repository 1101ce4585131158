#!/usr/bin/env bash
# bench/plot.sh — p99 latency of signing against concurrency, kubeca and cfssl, drawn by
# gnuplot into docs/p99-concurrency.png (docs/benchmarks.md, "p99 against concurrency").
#
# One ecdsa-p256 PKI from `kubeca init`; both servers get the same CA, the same TLS
# certificate and the same BODIES (CSRs of distinct P-256 keys, posted in turn by
# bench/plot.lua). For each concurrency C in LEVELS: a fresh `kubeca serve` with an empty
# SQLite store (every certificate stored and audited) is loaded with `wrk -cC` for DURATION
# over TLS keep-alive, then stopped; then `cfssl serve` (no database) the same way. A level
# with any non-2xx answer or socket error is reported and left out of the plot.
#
# Environment: KUBECA (default build-perf/kubeca), LEVELS ("1 2 4 8 16 32 64 128 256"),
# DURATION (5s), CSRS (256), OUT (docs/p99-concurrency.png; the figures go next to it as
# .csv), KEEP=1 to keep the work folder. Installs gnuplot-nox when gnuplot is missing.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
KUBECA=${KUBECA:-$ROOT/build-perf/kubeca}
LEVELS=${LEVELS:-"1 2 4 8 16 32 64 128 256"}
DURATION=${DURATION:-5s}
CSRS=${CSRS:-256}
OUT=${OUT:-$ROOT/docs/p99-concurrency.png}
CSV=${OUT%.png}.csv

if ! command -v gnuplot >/dev/null; then
  echo "-- installing gnuplot-nox" >&2
  apt-get install -y gnuplot-nox >/dev/null
fi
for tool in wrk cfssl openssl jq curl ss awk gnuplot; do
  command -v "$tool" >/dev/null || { echo "plot.sh: $tool is missing (apt-get install it)" >&2; exit 2; }
done
[[ -x $KUBECA ]] || { echo "plot.sh: $KUBECA is missing (see bench/serve/run.sh for the build)" >&2; exit 2; }
KUBECA=$(realpath "$KUBECA")
OUT=$(realpath -m "$OUT")
CSV=$(realpath -m "$CSV")

WORK=$(mktemp -d /tmp/kubeca-bench-plot.XXXXXX)
cd "$WORK"
SERVER=
cleanup() {
  local rc=$?
  if [[ -n $SERVER ]]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  if [[ ${KEEP:-0} == 1 || $rc != 0 ]]; then echo "work folder kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "-- $*" >&2; }

port=$(bench_free_port)
cat >cluster.yaml <<YAML
cluster: {name: bench, flavor: modern}
master: {host: 127.0.0.1, name: m1}
workers: [{name: n1, ip: 127.0.0.2}]
pki: {key_algorithm: ecdsa-p256}
signer: {url: "https://127.0.0.1:$port", store: "sqlite:$WORK/init.db"}
YAML
"$KUBECA" init -c cluster.yaml --pki pki >/dev/null
log "making $CSRS CSRs"
for i in $(seq 1 "$CSRS"); do
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
    -subj /CN=system:node:n1 -out csr.pem 2>/dev/null
  jq -nc --rawfile csr csr.pem '{csr: $csr, profile: "kubelet"}' >>kubeca-bodies.txt
  jq -nc --rawfile csr csr.pem '{certificate_request: $csr}' >>cfssl-bodies.txt
done
cat >cfssl.json <<'JSON'
{"signing": {"default": {"expiry": "8760h",
  "usages": ["signing", "digital signature", "key encipherment", "server auth", "client auth"]}}}
JSON

# load NAME C URL BODIES [TOKEN]: one wrk run; prints "p99_ms signs_per_s" or "error ...".
load() {
  local name=$1 c=$2 url=$3 bodies=$4 token=${5:-} t r
  t=$((c < 2 ? 1 : 2))
  BODIES=$bodies TOKEN=$token wrk -t"$t" -c"$c" -d"$DURATION" -s "$HERE/plot.lua" "$url" >"wrk-$name-$c.txt"
  r=$(grep '^RESULT ' "wrk-$name-$c.txt") || { echo "error no RESULT"; return; }
  eval "local ${r#RESULT }"
  # shellcheck disable=SC2154  # set by the eval
  if ((non2xx + connect + read + write + timeout > 0)); then
    echo "error $non2xx non-2xx, $connect connect, $read read, $write write, $timeout timeout"
    return
  fi
  awk -v p="$p99_us" -v n="$requests" -v d="$duration_us" 'BEGIN {printf "%.2f %.0f\n", p / 1000, n / (d / 1e6)}'
}

declare -A RES
for c in $LEVELS; do
  log "concurrency $c: kubeca (load average $(cut -d' ' -f1 /proc/loadavg))"
  "$KUBECA" serve -c cluster.yaml --pki pki --listen "127.0.0.1:$port" --store "sqlite:$WORK/k$c.db" \
    --audit-log "audit-$c.log" 2>"kubeca-$c.err" &
  SERVER=$!
  bench_wait_up "$SERVER" "https://127.0.0.1:$port/healthz"
  token=$("$KUBECA" token create --store "sqlite:$WORK/k$c.db" --node n1 --ip 127.0.0.2 \
    --uses 1000000 --ttl 2h 2>/dev/null)
  RES[kubeca:$c]=$(load kubeca "$c" "https://127.0.0.1:$port/v1/sign" kubeca-bodies.txt "$token")
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=

  log "concurrency $c: cfssl"
  cfssl serve -address 127.0.0.1 -port "$port" -ca pki/ca.pem -ca-key pki/ca-key.pem \
    -config cfssl.json -tls-cert pki/signer.pem -tls-key pki/signer-key.pem 2>"cfssl-$c.log" &
  SERVER=$!
  bench_wait_up "$SERVER" "https://127.0.0.1:$port/"
  RES[cfssl:$c]=$(load cfssl "$c" "https://127.0.0.1:$port/api/v1/cfssl/sign" cfssl-bodies.txt)
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
done

{
  echo "# concurrency kubeca_p99_ms kubeca_signs_per_s cfssl_p99_ms cfssl_signs_per_s"
  echo "# $(date -u +%F), $(nproc) cores, wrk -d$DURATION over TLS keep-alive, ecdsa-p256, $CSRS CSRs"
  for c in $LEVELS; do
    k=${RES[kubeca:$c]} f=${RES[cfssl:$c]}
    [[ $k == error* ]] && k="NaN NaN"
    [[ $f == error* ]] && f="NaN NaN"
    echo "$c $k $f"
  done
} >"$CSV"
printf '%-11s %-24s %s\n' concurrency "kubeca p99 ms, signs/s" "cfssl p99 ms, signs/s"
for c in $LEVELS; do printf '%-11s %-24s %s\n' "$c" "${RES[kubeca:$c]}" "${RES[cfssl:$c]}"; done

gnuplot <<GP
set terminal pngcairo size 800,500 font "sans,10"
set output "$OUT"
set title "p99 latency of POST sign (ecdsa-p256, TLS keep-alive, $(nproc) cores shared with wrk)"
set xlabel "concurrent connections (wrk -c)"
set ylabel "p99 latency (ms)"
set logscale x 2
set logscale y 10
set grid
set key top left
plot "$CSV" using 1:2 with linespoints lw 2 pt 7 title "kubeca (stores every certificate, SQLite)", \
     "$CSV" using 1:4 with linespoints lw 2 pt 5 title "cfssl (no database)"
GP
echo "wrote $OUT and $CSV"

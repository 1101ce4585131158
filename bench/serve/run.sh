#!/usr/bin/env bash
# bench/serve/run.sh — `kubeca serve` against `cfssl serve` under wrk, the signing endpoint
# only (docs/benchmarks.md, "serve: kubeca vs cfssl").
#
# For each CA algorithm (rsa-2048, ecdsa-p256, ed25519): `kubeca init` makes the PKI; the
# servers get the SAME CA (ca.pem/ca-key.pem), the same TLS certificate (signer.pem) and the
# same pre-made CSR of the same key type. Three servers: kubeca (stores every certificate in
# SQLite, synchronous=FULL), cfssl without a database, and cfssl with its SQLite certdb
# (`-db-config`, cfssl's schema: tables certificates and ocsp_responses). cfssl 1.2 cannot
# sign with an Ed25519 CA, so that row has kubeca alone. Each server is started alone, loaded with
# `wrk -t2 -c16 -d10s --latency` (TLS, keep-alive) posting that CSR, its peak RSS read from
# /proc/PID/status (VmHWM), and stopped before the next one starts. Everything binds
# 127.0.0.1 only; every process started here is stopped on exit.
#
# Environment: KUBECA (the binary; default build-perf/kubeca), DURATION (10s), CONNS (16),
# WRK_THREADS (2), ALGOS ("rsa-2048 ecdsa-p256 ed25519"), KEEP=1 to keep the work folder,
# CEILINGS=0 to skip the botan/openssl speed figures and the ceiling they set.
set -euo pipefail
export LC_ALL=C  # `times` and awk read decimals with a dot

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/../lib.sh"
KUBECA=${KUBECA:-$ROOT/build-perf/kubeca}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-16}
WRK_THREADS=${WRK_THREADS:-2}
ALGOS=${ALGOS:-"rsa-2048 ecdsa-p256 ed25519"}
CEILINGS=${CEILINGS:-1}

# Targets (issue 13): kubeca signs/s against cfssl without a database and against cfssl with
# its SQLite certdb (0: no target), the share of the two-core ceiling, p99 and peak RSS.
declare -A TARGET_RATIO=([rsa-2048]=1.25 [ecdsa-p256]=1.0 [ed25519]=0)
declare -A TARGET_RATIO_DB=([rsa-2048]=0 [ecdsa-p256]=2.0 [ed25519]=0)
TARGET_CEILING_SHARE=0.85
TARGET_P99_MS=15
TARGET_RSS_MIB=32

for tool in wrk cfssl openssl jq curl ss botan awk taskset sqlite3; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (apt-get install it)" >&2; exit 2; }
done
[[ -x $KUBECA ]] || {
  echo "run.sh: $KUBECA is missing; build it: cmake -S $ROOT -B $ROOT/build-perf -DCMAKE_BUILD_TYPE=Release && cmake --build $ROOT/build-perf -j2 --target kubeca" >&2
  exit 2
}

KUBECA=$(realpath "$KUBECA")

WORK=$(mktemp -d /tmp/kubeca-bench-serve.XXXXXX)
cd "$WORK"  # nothing this script writes lands in the caller's folder
PIDS=()
cleanup() {
  local rc=$? p
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  # Kept when asked for, or when the run failed, to read the servers' logs.
  if [[ ${KEEP:-0} == 1 || $rc != 0 ]]; then
    echo "work folder kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "-- $*" >&2; }

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    if [[ -z $(ss -Htln "sport = :$p") ]]; then echo "$p"; return; fi
  done
}

# wait_up PID PORT: until the TLS port answers (or the process died).
wait_up() {
  local pid=$1 port=$2 i
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { echo "run.sh: server $pid exited; see $WORK" >&2; return 1; }
    if curl -sk -o /dev/null --max-time 1 "https://127.0.0.1:$port/"; then return 0; fi
    sleep 0.1
  done
  echo "run.sh: server $pid does not answer on 127.0.0.1:$port" >&2
  return 1
}

stop() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local keep=()
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}

peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# CPU seconds (user + system) a process has used so far.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# check_one NAME URL BODY EXPECT_STATUS JQ_CERT CA [TOKEN]: one request by hand; the answer
# must have the expected status and a certificate that chains to CA.
check_one() {
  local name=$1 url=$2 body=$3 expect=$4 path=$5 ca=$6 token=${7:-}
  local out=$WORK/check-$name.json status
  local auth=()
  [[ -n $token ]] && auth=(-H "Authorization: Bearer $token")
  status=$(curl -sk -o "$out" -w '%{http_code}' "${auth[@]+"${auth[@]}"}" \
    -H 'Content-Type: application/json' --data-binary "@$body" "$url")
  if [[ $status != "$expect" ]]; then
    echo "run.sh: $name answered $status, not $expect: $(head -c 300 "$out")" >&2
    return 1
  fi
  jq -r "$path" "$out" >"$WORK/check-$name.pem"
  openssl verify -CAfile "$ca" "$WORK/check-$name.pem" >/dev/null || {
    echo "run.sh: $name's certificate does not verify against $ca" >&2
    return 1
  }
}

declare -A RPS P50 P99 RSS ERRS CPU LOAD WRK_CPU STORED


# load NAME ALG URL BODY PID [TOKEN]
load() {
  local name=$1 alg=$2 url=$3 body=$4 pid=$5 token=${6:-}
  local out=$WORK/wrk-$name-$alg.txt
  LOAD[$name:$alg]=$(loadavg)
  log "wrk -t$WRK_THREADS -c$CONNS -d$DURATION --latency against $name ($alg), load average ${LOAD[$name:$alg]}"
  local cpu0 cpu1 wrk0 wrk1
  cpu0=$(cpu_seconds "$pid")
  times >"$WORK/.times0"
  BODY_FILE=$body TOKEN=$token wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency \
    -s "$HERE/sign.lua" "$url" >"$out"
  times >"$WORK/.times1"
  wrk0=$(children_cpu "$WORK/.times0")
  wrk1=$(children_cpu "$WORK/.times1")
  cpu1=$(cpu_seconds "$pid")
  local r
  r=$(grep '^RESULT ' "$out") || { cat "$out" >&2; return 1; }
  # shellcheck disable=SC2086
  eval "local ${r#RESULT }"
  local errors=$((non2xx + connect + read + write + timeout))
  RPS[$name:$alg]=$(awk -v n="$requests" -v e="$non2xx" -v d="$duration_us" 'BEGIN {printf "%.0f", (n - e) / (d / 1e6)}')
  P50[$name:$alg]=$(awk -v u="$p50_us" 'BEGIN {printf "%.2f", u / 1000}')
  P99[$name:$alg]=$(awk -v u="$p99_us" 'BEGIN {printf "%.2f", u / 1000}')
  RSS[$name:$alg]=$(awk -v k="$(peak_rss_kib "$pid")" 'BEGIN {printf "%.1f", k / 1024}')
  # The server's own CPU per answered request: steadier than signs/s on a shared machine.
  CPU[$name:$alg]=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$requests" 'BEGIN {printf "%.2f", (n > 0 ? (b - a) * 1000 / n : 0)}')
  # wrk's own CPU per request: the load generator's share of the same cores.
  WRK_CPU[$name:$alg]=$(awk -v a="$wrk0" -v b="$wrk1" -v n="$requests" 'BEGIN {printf "%.3f", (n > 0 ? (b - a) * 1000 / n : 0)}')
  ERRS[$name:$alg]="$non2xx non-2xx, $connect connect, $read read, $write write, $timeout timeout"
  [[ $errors == 0 ]] || ERRS[$name:$alg]+=" (ERRORS)"
}

cat >"$WORK/cfssl.json" <<'EOF'
{"signing": {"default": {"expiry": "8760h",
  "usages": ["signing", "digital signature", "key encipherment", "server auth", "client auth"]}}}
EOF

for alg in $ALGOS; do
  dir=$WORK/$alg
  mkdir -p "$dir"
  kport=$(free_port)
  cat >"$dir/cluster.yaml" <<EOF
cluster: {name: bench, flavor: modern}
master: {host: 127.0.0.1, name: m1}
workers: [{name: n1, ip: 127.0.0.2}]
pki: {key_algorithm: $alg}
signer: {url: "https://127.0.0.1:$kport", store: "sqlite:$dir/kubeca.db"}
EOF
  log "kubeca init ($alg)"
  "$KUBECA" init -c "$dir/cluster.yaml" --pki "$dir/pki" >"$dir/init.log"
  case $alg in
    rsa-2048) newkey=(-newkey rsa:2048) ;;
    ecdsa-p256) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
    ed25519) newkey=(-newkey ed25519) ;;
    *) echo "run.sh: unknown algorithm $alg" >&2; exit 2 ;;
  esac
  # One CSR of the CA's key type, posted by every request to both servers.
  openssl req -new "${newkey[@]}" -nodes -keyout "$dir/n1-key.pem" -subj /CN=system:node:n1 \
    -out "$dir/n1.csr" 2>/dev/null
  jq -n --rawfile csr "$dir/n1.csr" '{csr: $csr, profile: "kubelet"}' >"$dir/kubeca-body.json"
  jq -n --rawfile csr "$dir/n1.csr" '{certificate_request: $csr}' >"$dir/cfssl-body.json"

  # kubeca: the token allows a million uses; every issuance is stored and audited.
  token=$("$KUBECA" token create --store "sqlite:$dir/kubeca.db" --node n1 --ip 127.0.0.2 \
    --uses 1000000 --ttl 2h 2>/dev/null)
  "$KUBECA" serve -c "$dir/cluster.yaml" --pki "$dir/pki" --listen "127.0.0.1:$kport" \
    --audit-log "$dir/audit.log" 2>"$dir/kubeca.err" &
  kpid=$!
  PIDS+=("$kpid")
  wait_up "$kpid" "$kport"
  check_one "kubeca-$alg" "https://127.0.0.1:$kport/v1/sign" "$dir/kubeca-body.json" 201 \
    .certificate "$dir/pki/ca.pem" "$token"
  load kubeca "$alg" "https://127.0.0.1:$kport/v1/sign" "$dir/kubeca-body.json" "$kpid" "$token"
  stop "$kpid"

  # cfssl 1.2 signs with RSA and ECDSA CAs only.
  [[ $alg == ed25519 ]] && continue
  # cfssl: the same CA key and certificate, the same TLS certificate; no database, then its
  # SQLite certdb (every certificate inserted before the answer, as kubeca does).
  for name in cfssl cfssl-db; do
    db=()
    if [[ $name == cfssl-db ]]; then
      sqlite3 "$dir/cfssl.db" <<'EOF'
CREATE TABLE certificates (
  serial_number blob NOT NULL, authority_key_identifier blob NOT NULL, ca_label blob,
  status blob NOT NULL, reason int, expiry timestamp, revoked_at timestamp, pem blob NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier));
CREATE TABLE ocsp_responses (
  serial_number blob NOT NULL, authority_key_identifier blob NOT NULL, body blob NOT NULL,
  expiry timestamp, PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier)
    REFERENCES certificates(serial_number, authority_key_identifier));
EOF
      jq -n --arg db "$dir/cfssl.db" '{driver: "sqlite3", data_source: $db}' >"$dir/cfssl-db.json"
      db=(-db-config "$dir/cfssl-db.json")
    fi
    cport=$(free_port)
    cfssl serve -address 127.0.0.1 -port "$cport" -ca "$dir/pki/ca.pem" -ca-key "$dir/pki/ca-key.pem" \
      -config "$WORK/cfssl.json" -tls-cert "$dir/pki/signer.pem" -tls-key "$dir/pki/signer-key.pem" \
      "${db[@]+"${db[@]}"}" 2>"$dir/$name.log" &
    cpid=$!
    PIDS+=("$cpid")
    wait_up "$cpid" "$cport"
    check_one "$name-$alg" "https://127.0.0.1:$cport/api/v1/cfssl/sign" "$dir/cfssl-body.json" 200 \
      .result.certificate "$dir/pki/ca.pem"
    load "$name" "$alg" "https://127.0.0.1:$cport/api/v1/cfssl/sign" "$dir/cfssl-body.json" "$cpid"
    stop "$cpid"
    [[ $name == cfssl-db ]] && STORED[$alg]=$(sqlite3 "$dir/cfssl.db" 'SELECT count(*) FROM certificates')
  done
done

echo
echo "== versions: $("$KUBECA" --version 2>&1 | head -1); cfssl $(cfssl version 2>&1 | awk '/^Version/ {v=$2} /^Runtime/ {r=$2} END {print v " (" r ")"}');" \
  "$(wrk -v 2>&1 | awk 'NR == 1 {print $1, $2}'); Botan $(botan version); $(openssl version | cut -d' ' -f1-2)"
echo "== serve: kubeca vs cfssl ($(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)); wrk -t$WRK_THREADS -c$CONNS -d$DURATION, TLS keep-alive"
printf '%-8s %-11s %8s %8s %8s %8s %11s %8s %5s  %s\n' server algorithm signs/s p50_ms p99_ms rss_MiB cpu_ms/sign wrk_ms load errors
for alg in $ALGOS; do
  for s in kubeca cfssl cfssl-db; do
    [[ -n ${RPS[$s:$alg]:-} ]] || continue
    printf '%-8s %-11s %8s %8s %8s %8s %11s %8s %5s  %s\n' "$s" "$alg" "${RPS[$s:$alg]}" "${P50[$s:$alg]}" \
      "${P99[$s:$alg]}" "${RSS[$s:$alg]}" "${CPU[$s:$alg]}" "${WRK_CPU[$s:$alg]}" "${LOAD[$s:$alg]}" "${ERRS[$s:$alg]}"
  done
done
echo "(cpu_ms/sign: the server's CPU per answer; wrk_ms: wrk's CPU per answer; load: the 1-minute"
echo " load average when that run started; wrk shares the $(nproc) cores)"

declare -A MAXRATE CRYPTO
if [[ $CEILINGS == 1 ]]; then
  # Pinned to one core: Botan 2 computes an RSA signature's two CRT halves on two threads
  # (its global thread pool), so an unpinned `botan speed` reports wall time on two cores,
  # not the CPU one signature costs.
  echo
  echo "== ceilings: taskset -c 0 botan speed --msec=1000 (Botan $(botan version 2>/dev/null || echo '?'), one core)"
  taskset -c 0 botan speed --msec=1000 --ecc-groups=secp256r1 ECDSA RSA Ed25519 2>&1 |
    grep -E '^(ECDSA-secp256r1|RSA-2048|Ed25519) .*(sign|verify)/sec' | tee "$WORK/botan-speed.txt"
  echo
  echo "== for comparison: taskset -c 0 openssl speed -seconds 1 ecdsap256 rsa2048 ed25519 ($(openssl version | cut -d' ' -f1-2), one core)"
  taskset -c 0 openssl speed -seconds 1 ecdsap256 rsa2048 ed25519 2>/dev/null | grep -E 'sign|bits|Ed25519' |
    tee "$WORK/openssl-speed.txt"
  rate() { awk -v pat="$1" -v what="$2" '$0 ~ pat && $0 ~ what"/sec" {for (i = 1; i < NF; i++) if ($(i + 1) ~ "^"what"/sec") print $i}' "$WORK/botan-speed.txt"; }
  ossl_verify() { awk -v pat="$1" '$0 ~ pat {print $NF; exit}' "$WORK/openssl-speed.txt"; }
  declare -A SIGN=([rsa-2048]=$(rate '^RSA-2048' sign) [ecdsa-p256]=$(rate '^ECDSA-secp256r1' sign) [ed25519]=$(rate '^Ed25519' sign))
  declare -A VERIFY=([rsa-2048]=$(ossl_verify '^rsa 2048') [ecdsa-p256]=$(ossl_verify 'nistp256') [ed25519]=$(ossl_verify 'Ed25519'))
  # One issuance is one CA signature (Botan) and one CSR check (OpenSSL); wrk spends its own
  # measured CPU on every request. With nothing else (no TLS, HTTP, JSON, store, audit), the
  # $(nproc) cores could answer at most this many requests a second.
  echo
  echo "== the most signs/s $(nproc) cores allow: Botan sign + OpenSSL verify + wrk, nothing else"
  for alg in $ALGOS; do
    [[ -n ${SIGN[$alg]} && -n ${VERIFY[$alg]} ]] || { echo "$alg: no speed figures"; continue; }
    CRYPTO[$alg]=$(awk -v s="${SIGN[$alg]}" -v v="${VERIFY[$alg]}" 'BEGIN {printf "%.3f", 1000 / s + 1000 / v}')
    MAXRATE[$alg]=$(awk -v n="$(nproc)" -v c="${CRYPTO[$alg]}" -v w="${WRK_CPU[kubeca:$alg]}" 'BEGIN {printf "%.0f", n * 1000 / (c + w)}')
    awk -v a="$alg" -v c="${CRYPTO[$alg]}" -v w="${WRK_CPU[kubeca:$alg]}" -v m="${MAXRATE[$alg]}" -v k="${CPU[kubeca:$alg]}" 'BEGIN {
      printf "%-10s %.3f ms crypto + %.3f ms wrk per request: at most %s/s; kubeca spent %.3f ms of CPU per sign, %.3f ms beyond its crypto\n",
        a, c, w, m, k, k - c }'
  done
fi

echo
echo "== targets (kubeca; issue 13)"
fails=0
verdict() {  # verdict OK LABEL
  local ok=$1
  shift
  if [[ $ok == 1 ]]; then echo "PASS  $*"; else echo "FAIL  $*"; fails=$((fails + 1)); fi
}
ratio_of() { awk -v a="${RPS[kubeca:$1]}" -v b="${RPS[$2:$1]:-0}" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
# clean ALG SERVER...: 1 when none of those runs had an error.
clean_runs() {
  local alg=$1 s
  shift
  for s in "$@"; do
    [[ ${ERRS[$s:$alg]:-} == *ERRORS* ]] && { echo 0; return; }
  done
  echo 1
}
for alg in $ALGOS; do
  clean=$(clean_runs "$alg" kubeca cfssl)
  note=$([[ $clean == 1 ]] || echo ', run had errors: does not count')
  if [[ ${TARGET_RATIO[$alg]} != 0 ]]; then
    r=$(ratio_of "$alg" cfssl)
    verdict "$(awk -v r="$r" -v t="${TARGET_RATIO[$alg]}" -v c="$clean" 'BEGIN {print (c && r >= t) ? 1 : 0}')" \
      "$alg signs/s kubeca/cfssl (no database) = ${r}x (target >= ${TARGET_RATIO[$alg]}x)$note"
  elif [[ -n ${RPS[cfssl:$alg]:-} ]]; then
    echo "info  $alg signs/s kubeca/cfssl (no database) = $(ratio_of "$alg" cfssl)x"
  fi
  clean=$(clean_runs "$alg" kubeca cfssl-db)
  note=$([[ $clean == 1 ]] || echo ', run had errors: does not count')
  if [[ ${TARGET_RATIO_DB[$alg]} != 0 ]]; then
    r=$(ratio_of "$alg" cfssl-db)
    verdict "$(awk -v r="$r" -v t="${TARGET_RATIO_DB[$alg]}" -v c="$clean" 'BEGIN {print (c && r >= t) ? 1 : 0}')" \
      "$alg signs/s kubeca/cfssl+sqlite = ${r}x (target >= ${TARGET_RATIO_DB[$alg]}x)$note"
  elif [[ -n ${RPS[cfssl-db:$alg]:-} ]]; then
    echo "info  $alg signs/s kubeca/cfssl+sqlite = $(ratio_of "$alg" cfssl-db)x (cfssl stored ${STORED[$alg]:-?} certificates)"
  fi
  if [[ -n ${MAXRATE[$alg]:-} ]]; then
    share=$(awk -v a="${RPS[kubeca:$alg]}" -v m="${MAXRATE[$alg]}" 'BEGIN {printf "%.0f", 100 * a / m}')
    verdict "$(awk -v s="$share" -v t="$TARGET_CEILING_SHARE" 'BEGIN {print (s >= 100 * t) ? 1 : 0}')" \
      "$alg signs/s = ${share}% of the two-core ceiling ${MAXRATE[$alg]}/s (target >= $(awk -v t="$TARGET_CEILING_SHARE" 'BEGIN {print 100 * t}')%)"
  fi
  clean=$(clean_runs "$alg" kubeca)
  ok=$(awk -v p="${P99[kubeca:$alg]}" -v t="$TARGET_P99_MS" -v c="$clean" 'BEGIN {print (c && p <= t) ? 1 : 0}')
  verdict "$ok" "$alg p99 = ${P99[kubeca:$alg]} ms at $CONNS connections (target <= $TARGET_P99_MS ms)"
  ok=$(awk -v m="${RSS[kubeca:$alg]}" -v t="$TARGET_RSS_MIB" 'BEGIN {print (m <= t) ? 1 : 0}')
  verdict "$ok" "$alg peak RSS = ${RSS[kubeca:$alg]} MiB (target <= $TARGET_RSS_MIB MiB)"
done

echo
if [[ $fails == 0 ]]; then echo "all targets PASS"; else echo "$fails target(s) FAIL"; fi

#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions called indirectly: "$fn", the EXIT trap
# bench/init/run.sh — `kubeca init` against the seed's openssl procedure, timed in the same
# run (docs/benchmarks.md, "init: kubeca vs the seed's openssl procedure").
#
# The cluster is the seed's (MASTER_HOST 192.168.24.11, POD_NETWORK 10.2.0.0/16,
# SERVICE_IP_RANGE 10.3.0.0/24, K8S_SERVICE_IP 10.3.0.1, DNS_SERVICE_IP 10.3.0.10) with
# WORKERS workers w001..wNNN on 192.168.25.x, flavor coreos-2016. Per algorithm:
#   openssl  the seed's "Generate Kubernetes TLS Assets" commands as the guide writes them,
#            run one after the other as a person following it would: CA (genrsa 2048,
#            req -x509 -days 10000 -subj /CN=kube-ca), apiserver (openssl.cnf, v3_req, the
#            SANs), each worker (worker-openssl.cnf, WORKER_IP in the environment), admin.
#            For ecdsa-p256 only the key commands change (openssl ecparam -genkey P-256).
#   kubeca   `kubeca init --config cluster.yaml --pki DIR` of the same cluster, into an
#            empty folder (so it makes every key, certificate and kubeconfig).
# The two alternate, REPS times each; the table shows the median wall time (and the CPU
# time the tool's processes used), the ratio kubeca/openssl against the issue's target,
# and PASS/FAIL. Afterwards both folders are checked: the same certificates (names,
# subjects, SANs; kubeca adds its signer.pem), the key types, and `openssl verify` of
# every kubeca certificate against kubeca's ca.pem.
#
# Last, the rsa-2048 ceiling: one RSA-2048 key by `botan keygen` and by `openssl genrsa`
# (KEYGEN_SAMPLES processes each, their start-up subtracted), and what that implies for
# kubeca on this machine's cores.
#
# Environment: KUBECA (a kubeca binary; default: build Release in build-bench), REPS (3),
# WORKERS (100), ALGOS ("rsa-2048 ecdsa-p256"), BENCH_DIR (the parent of the work folder;
# default $TMPDIR or /tmp — put it on the disk you care about: kubeca fsyncs every file it
# writes, the openssl commands do not), KEYGEN_SAMPLES (40; 0 skips the ceiling),
# KEEP=1 to keep the work folder.
# Exit status: 0 when the run and the checks pass (whatever the ratios), 1 when a check
# fails, 2 on a missing tool.
set -euo pipefail
export LC_ALL=C  # `times` and awk read decimals with a dot

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/../lib.sh"
REPS=${REPS:-3}
KEYGEN_SAMPLES=${KEYGEN_SAMPLES:-40}
WORKERS=${WORKERS:-100}
ALGOS=${ALGOS:-"rsa-2048 ecdsa-p256"}

# Targets (the issue): kubeca's time at most this fraction of the openssl procedure's.
declare -A TARGET=([rsa-2048]=0.125 [ecdsa-p256]=0.01)
declare -A TARGET_TEXT=([rsa-2048]="1/8" [ecdsa-p256]="1/100")

log() { echo "-- $*" >&2; }
die() { echo "run.sh: $*" >&2; exit "${2:-1}"; }

for tool in openssl awk sort; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install it)" 2
done
((WORKERS >= 1 && WORKERS <= 2000)) || die "WORKERS must be 1..2000" 2
((REPS >= 1)) || die "REPS must be 1 or more" 2
for a in $ALGOS; do
  [[ -n ${TARGET[$a]:-} ]] || die "ALGOS: $a is not benchmarked (rsa-2048, ecdsa-p256)" 2
done

if [[ -z ${KUBECA:-} ]]; then
  command -v cmake >/dev/null || die "cmake is missing; install it or pass KUBECA=path" 2
  log "building kubeca (Release) in $ROOT/build-bench"
  cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$ROOT/build-bench" -j"$(nproc)" --target kubeca >/dev/null
  KUBECA=$ROOT/build-bench/kubeca
fi
[[ -x $KUBECA ]] || die "$KUBECA is not an executable" 2
KUBECA=$(cd "$(dirname "$KUBECA")" && pwd)/$(basename "$KUBECA")

WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/kubeca-bench-init.XXXXXX")
cleanup() {
  if [[ ${KEEP:-0} == 1 ]]; then echo "work folder kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

worker_name() { printf 'w%03d' "$1"; }
worker_ip() { echo "192.168.$((25 + ($1 - 1) / 250)).$(((($1 - 1) % 250) + 1))"; }

# --- the cluster, once per algorithm -------------------------------------------------------
write_cluster_yaml() {  # ALGO FILE
  {
    cat <<EOF
# The seed's cluster with $WORKERS workers (bench/init/run.sh).
cluster:
  name: kubernetes
  domain: cluster.local
  flavor: coreos-2016
master:
  host: 192.168.24.11            # MASTER_HOST
  name: coreos1
  extra_sans: []
etcd:
  endpoints: [http://192.168.24.11:2379]   # ETCD_ENDPOINTS
network:
  pod_cidr: 10.2.0.0/16          # POD_NETWORK
  service_cidr: 10.3.0.0/24      # SERVICE_IP_RANGE; K8S_SERVICE_IP = 10.3.0.1
  dns_service_ip: 10.3.0.10      # DNS_SERVICE_IP
workers:                         # WORKER_FQDN / WORKER_IP
EOF
    local i
    for ((i = 1; i <= WORKERS; i++)); do
      echo "  - {name: $(worker_name "$i"), ip: $(worker_ip "$i")}"
    done
    cat <<EOF
pki:
  key_algorithm: $1
  ca_validity: 240000h           # openssl req -x509 -days 10000
  cert_validity: 8760h           # openssl x509 -days 365
signer:                          # no store: every run makes a new CA, and a store has one
  listen: 0.0.0.0:8443
  url: https://192.168.24.11:8443
EOF
  } >"$2"
}

# --- the seed's procedure, as written ------------------------------------------------------
# The person's key command: the seed's genrsa, or its P-256 counterpart.
seed_genkey() {  # ALGO FILE
  if [[ $1 == rsa-2048 ]]; then
    openssl genrsa -out "$2" 2048 2>/dev/null
  else
    openssl ecparam -name prime256v1 -genkey -noout -out "$2"
  fi
}

seed_openssl() {  # ALGO DIR
  local algo=$1
  mkdir "$2"
  (
    cd "$2"
    # Create a cluster root CA
    seed_genkey "$algo" ca-key.pem
    openssl req -x509 -new -nodes -key ca-key.pem -days 10000 -out ca.pem \
      -subj "/CN=kube-ca"
    # Kubernetes API Server Keypair (the person fills in K8S_SERVICE_IP and MASTER_HOST)
    cp "$ROOT/tests/data/seed-apiserver-openssl.cnf" openssl.cnf
    seed_genkey "$algo" apiserver-key.pem
    openssl req -new -key apiserver-key.pem -out apiserver.csr -subj \
      "/CN=kube-apiserver" -config openssl.cnf
    openssl x509 -req -in apiserver.csr -CA ca.pem -CAkey ca-key.pem \
      -CAcreateserial -out apiserver.pem -days 365 -extensions v3_req -extfile \
      openssl.cnf 2>/dev/null
    # Kubernetes Worker Keypairs
    cat >worker-openssl.cnf <<'EOF'
[req]
req_extensions = v3_req
distinguished_name = req_distinguished_name
[req_distinguished_name]
[ v3_req ]
basicConstraints = CA:FALSE
keyUsage = nonRepudiation, digitalSignature, keyEncipherment
subjectAltName = @alt_names
[alt_names]
IP.1 = $ENV::WORKER_IP
EOF
    local i WORKER_FQDN WORKER_IP
    for ((i = 1; i <= WORKERS; i++)); do
      WORKER_FQDN=$(worker_name "$i")
      WORKER_IP=$(worker_ip "$i")
      seed_genkey "$algo" "${WORKER_FQDN}-worker-key.pem"
      WORKER_IP=${WORKER_IP} openssl req -new -key "${WORKER_FQDN}-worker-key.pem" \
        -out "${WORKER_FQDN}-worker.csr" -subj "/CN=${WORKER_FQDN}" -config \
        worker-openssl.cnf
      WORKER_IP=${WORKER_IP} openssl x509 -req -in "${WORKER_FQDN}-worker.csr" -CA \
        ca.pem -CAkey ca-key.pem -CAcreateserial -out "${WORKER_FQDN}-worker.pem" -days \
        365 -extensions v3_req -extfile worker-openssl.cnf 2>/dev/null
    done
    # Cluster administrator keypair
    seed_genkey "$algo" admin-key.pem
    openssl req -new -key admin-key.pem -out admin.csr -subj "/CN=kube-admin"
    openssl x509 -req -in admin.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
      -out admin.pem -days 365 2>/dev/null
  )
}

run_kubeca() {  # ALGO DIR
  "$KUBECA" init --config "$WORK/cluster-$1.yaml" --pki "$2" >"$WORK/kubeca-$1.out"
}

# --- timing --------------------------------------------------------------------------------
# The CPU seconds (user + sys) this shell's children have used so far: snap_cpu in this
# shell, then read_cpu (bench/lib.sh).
snap_cpu() { times >"$WORK/.times"; }
read_cpu() { children_cpu "$WORK/.times"; }

declare -A WALL CPU  # "tool algo" -> space-separated samples
timed() {  # TOOL ALGO DIR
  local fn=seed_openssl c0 c1 t0 t1
  [[ $1 == kubeca ]] && fn=run_kubeca
  sync  # untimed: the previous run's writeback does not land on this one's fsyncs
  snap_cpu
  c0=$(read_cpu)
  t0=$EPOCHREALTIME
  "$fn" "$2" "$3"
  t1=$EPOCHREALTIME
  snap_cpu
  c1=$(read_cpu)
  WALL["$1 $2"]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') "
  CPU["$1 $2"]+="$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", b - a }') "
}

median() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END {
  if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minmax() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 }
  END { printf "%s-%s", lo, hi }'; }

# --- checks --------------------------------------------------------------------------------
FAILED=0
check_fail() { echo "CHECK FAILED: $*" >&2; FAILED=1; }

cert_names() {  # DIR: the certificate files' names without .pem, sorted
  local f
  for f in "$1"/*.pem; do
    [[ -e $f && $f != *-key.pem ]] && basename "$f" .pem
  done | sort
}
# "subject | sorted SANs" of a certificate, in openssl's words.
identity() {
  local text subject sans
  text=$(openssl x509 -in "$1" -noout -subject -ext subjectAltName 2>/dev/null)
  subject=$(sed -n 's/^subject= *//p' <<<"$text")
  sans=$(grep -v -e '^subject=' -e 'Subject Alternative Name' <<<"$text" | tr ',' '\n' |
    sed -e 's/^ *//' -e 's/^IP Address:/IP:/' | awk 'NF' | sort | paste -sd, -)
  echo "$subject | $sans"
}

check_same_certificates() {  # ALGO OPENSSL_DIR KUBECA_DIR
  local algo=$1 od=$2 kd=$3 n_o n_k missing extra name io ik bad=0
  n_o=$(cert_names "$od" | wc -l)
  n_k=$(cert_names "$kd" | wc -l)
  missing=$(comm -23 <(cert_names "$od") <(cert_names "$kd") | tr '\n' ' ')
  extra=$(comm -13 <(cert_names "$od") <(cert_names "$kd") | paste -sd' ' -)
  [[ -z $missing ]] || check_fail "$algo: kubeca lacks $missing"
  ((n_o == WORKERS + 3)) || check_fail "$algo: openssl made $n_o certificates, not $((WORKERS + 3))"
  # Same subject; every SAN the seed puts in, kubeca puts in too (it adds DNS:NAME and the
  # master name, as the profiles say).
  for name in $(cert_names "$od"); do
    [[ -f $kd/$name.pem ]] || continue
    io=$(identity "$od/$name.pem")
    ik=$(identity "$kd/$name.pem")
    if [[ ${io%% | *} != "${ik%% | *}" ]]; then
      check_fail "$algo $name: subject ${io%% | *} (openssl) vs ${ik%% | *} (kubeca)"
      bad=1
      continue
    fi
    local san
    for san in $(tr ',' ' ' <<<"${io#* | }"); do
      [[ ",${ik#* | }," == *",$san,"* ]] || { check_fail "$algo $name: kubeca lacks SAN $san"; bad=1; }
    done
  done
  # Key types: RSA 2048 or EC P-256, in both folders.
  local want pk
  [[ $algo == rsa-2048 ]] && want="rsaEncryption.*2048 bit" || want="id-ecPublicKey.*256 bit.*prime256v1"
  for d in "$od" "$kd"; do
    for name in ca apiserver admin "$(worker_name 1)-worker" "$(worker_name "$WORKERS")-worker"; do
      pk=$(openssl x509 -in "$d/$name.pem" -noout -text |
        grep -E 'Public Key Algorithm|Public-Key|ASN1 OID' | tr -s ' \n' ' ')
      grep -qE "$want" <<<"$pk" || { check_fail "$algo $d/$name.pem: key is $pk"; bad=1; }
    done
  done
  # openssl verify of every kubeca certificate (and, for fairness, every openssl one).
  local out
  local -a certs
  mapfile -t certs < <(cert_names "$kd" | sed "s|^|$kd/|; s|\$|.pem|")
  if ! out=$(openssl verify -CAfile "$kd/ca.pem" -- "${certs[@]}" 2>&1); then
    check_fail "$algo: openssl verify of kubeca's certificates: $(grep -v ': OK$' <<<"$out" | head -3)"
    bad=1
  fi
  local n_ok
  n_ok=$(grep -c ': OK$' <<<"$out" || true)
  mapfile -t certs < <(cert_names "$od" | sed "s|^|$od/|; s|\$|.pem|")
  if ! openssl verify -CAfile "$od/ca.pem" -- "${certs[@]}" >/dev/null 2>&1; then
    check_fail "$algo: openssl verify of the openssl procedure's certificates"
  fi
  local kc
  kc=$(find "$kd" -maxdepth 1 -name '*.conf' | wc -l)
  printf '%-10s openssl %d certs, kubeca %d certs (+%s) and %d kubeconfigs; same subjects and SANs: %s; openssl verify of kubeca: %d/%d OK\n' \
    "$algo" "$n_o" "$n_k" "${extra:-nothing}" "$kc" "$([[ $bad == 0 ]] && echo yes || echo NO)" "$n_ok" "$n_k"
}

# --- the run -------------------------------------------------------------------------------
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
BOTAN_VERSION=$( (botan version 2>/dev/null || dpkg-query -W -f '${Version}' libbotan-2-19 2>/dev/null) | head -1)
echo "machine: $(nproc) cores, ${CPU_MODEL:-unknown CPU}; $(openssl version); Botan ${BOTAN_VERSION:-?}"
echo "kubeca:  $KUBECA ($("$KUBECA" --version 2>/dev/null | head -1 || true))"
echo "work:    $WORK ($(df -PT "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')); $WORKERS workers, $REPS repetitions"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start"

for algo in $ALGOS; do
  write_cluster_yaml "$algo" "$WORK/cluster-$algo.yaml"
  # Warm the page cache and the dynamic loader for both tools, untimed.
  # Nothing is deleted until the end: on ext4 without a journal (this machine's disk), making
  # a file skips every inode freed in the last minute, one by one, so a run right after
  # `rm -rf` of the previous one's hundreds of files pays for that deletion (kubeca's init
  # took 2.5x as long). An operator's first init does not follow a mass deletion.
  "$KUBECA" init --config "$WORK/cluster-$algo.yaml" --pki "$WORK/warm-$algo" >/dev/null
  openssl version >/dev/null
  for ((r = 1; r <= REPS; r++)); do
    log "$algo repetition $r/$REPS: openssl procedure"
    timed openssl "$algo" "$WORK/openssl-$algo-$r"
    log "$algo repetition $r/$REPS: kubeca init"
    timed kubeca "$algo" "$WORK/kubeca-$algo-$r"
  done
  # The last repetition's folders are the ones checked.
  mv "$WORK/openssl-$algo-$REPS" "$WORK/openssl-$algo"
  mv "$WORK/kubeca-$algo-$REPS" "$WORK/kubeca-$algo"
done
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at end"
echo

printf '%-8s %-11s %9s %15s %9s\n' tool algorithm "median s" "min-max s" "cpu s"
for algo in $ALGOS; do
  for tool in openssl kubeca; do
    printf '%-8s %-11s %9s %15s %9s\n' "$tool" "$algo" "$(median "${WALL[$tool $algo]}")" \
      "$(minmax "${WALL[$tool $algo]}")" "$(median "${CPU[$tool $algo]}")"
  done
done
echo
printf '%-11s %14s %8s %6s %s\n' algorithm "kubeca/openssl" target result "(openssl/kubeca)"
for algo in $ALGOS; do
  o=$(median "${WALL[openssl $algo]}")
  k=$(median "${WALL[kubeca $algo]}")
  awk -v a="$algo" -v o="$o" -v k="$k" -v t="${TARGET[$algo]}" -v tt="${TARGET_TEXT[$algo]}" \
    'BEGIN { r = k / o; printf "%-11s %14.4f %8s %6s (%.1fx faster)\n", a, r, tt, (r <= t ? "PASS" : "FAIL"), o / k }'
done
echo

for algo in $ALGOS; do
  check_same_certificates "$algo" "$WORK/openssl-$algo" "$WORK/kubeca-$algo"
done

# --- the rsa-2048 ceiling ------------------------------------------------------------------
# "MEAN SE": milliseconds per run of a command over KEYGEN_SAMPLES runs, and the standard
# error of that mean (an RSA key's cost varies widely: its primes are found by random search).
per_run_ms() {
  local i t0 t1 samples=""
  for ((i = 0; i < KEYGEN_SAMPLES; i++)); do
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1
    t1=$EPOCHREALTIME
    samples+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }') "
  done
  tr ' ' '\n' <<<"$samples" | awk 'NF { n++; s += $1; q += $1 * $1 } END {
    m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0; if (v < 0) v = 0
    printf "%.1f %.1f", m, sqrt(v / n) }'
}
if [[ " $ALGOS " == *" rsa-2048 "* ]] && ((KEYGEN_SAMPLES > 0)) && command -v botan >/dev/null; then
  echo
  read -r b_ms b_se <<<"$(per_run_ms botan keygen --algo=RSA --params=2048)"
  read -r b_start _ <<<"$(per_run_ms botan version)"
  read -r o_ms o_se <<<"$(per_run_ms openssl genrsa -out "$WORK/ceiling-key.pem" 2048)"
  read -r o_start _ <<<"$(per_run_ms openssl version)"
  keys=$(find "$WORK/kubeca-rsa-2048" -name '*-key.pem' | wc -l)
  awk -v b="$b_ms" -v bse="$b_se" -v bs="$b_start" -v o="$o_ms" -v ose="$o_se" -v os0="$o_start" \
    -v k="$keys" -v c="$(nproc)" -v n="$KEYGEN_SAMPLES" \
    -v os="$(median "${WALL[openssl rsa-2048]}")" -v t="${TARGET[rsa-2048]}" 'BEGIN {
      b -= bs; o -= os0; floor = k * b / c / 1000
      printf "ceiling:  one RSA-2048 key: Botan %.1f +- %.1f ms, openssl genrsa %.1f +- %.1f ms\n", b, 2 * bse, o, 2 * ose
      printf "          (mean of %d `botan keygen` / `openssl genrsa` runs less process start-up, +- 2 SE)\n", n
      printf "          kubeca makes %d keys on %d cores: about %.2f s of key generation alone,\n", k, c, floor
      printf "          kubeca/openssl about %.3f from keys alone (target %.3f); the target needs\n", floor / os, t
      printf "          <= %.1f ms per key on %d cores, or %d cores at %.1f ms per key\n",
        t * os * 1000 * c / k, c, cores(k * b / 1000 / (t * os)), b }
    function cores(x) { return x == int(x) ? x : int(x) + 1 }'
fi
exit "$FAILED"

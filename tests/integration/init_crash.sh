#!/usr/bin/env bash
# `kubeca init` killed with SIGKILL at random moments of its run: whatever it left is whole
# (every certificate and key parses, every key present with its certificate is that
# certificate's key), no leaf is in place without its key, and the next run completes the
# folder into a PKI that verifies.
source "$(dirname "$0")/lib.sh"

RUNS=${INIT_CRASH_RUNS:-16}
WORKERS=30

# The modern example with 30 workers: enough files that kills land while they are written.
make_config modern ecdsa-p256 "$T/cluster.yaml" '/^  - {name: coreos[34]/d'
for ((i = 1; i <= WORKERS; i++)); do
  sed -i "/^  - {name: coreos2,/a\\  - {name: w$i, ip: 192.168.30.$i}" "$T/cluster.yaml"
done

# How long one whole run takes here, so the kills spread over all of it.
t0=$EPOCHREALTIME
must_kc 0 init --config "$T/cluster.yaml" --pki "$T/whole"
full_ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 + 1 }')
mapfile -t names < <(cd "$T/whole" && find . -name '*.pem' ! -name '*-key.pem' ! -name 'sa.*' |
  sed 's|^\./||; s|\.pem$||' | sort)
((${#names[@]} > WORKERS)) && pass || fail "a whole run made ${#names[@]} certificates"

# check_whole DIR WHAT: every file there parses; a certificate is never without its key, and
# a key beside its certificate is that certificate's key.
check_whole() {
  local dir=$1 what=$2 f name bad=0
  local -a confs=()
  while IFS= read -r f; do
    case $f in
      *.conf) confs+=("$f") ;;
      */sa.key) openssl pkey -in "$f" -noout 2>/dev/null || { fail "$what: $f is not whole"; bad=1; } ;;
      */sa.pub) openssl pkey -pubin -in "$f" -noout 2>/dev/null || { fail "$what: $f is not whole"; bad=1; } ;;
      *-key.pem) [[ -f ${f%-key.pem}.pem ]] || openssl pkey -in "$f" -noout 2>/dev/null ||
        { fail "$what: $f is not a whole key"; bad=1; } ;;
    esac
  done < <(find "$dir" -type f ! -name '.*')
  # kubectl merges every kubeconfig it is given and fails on any that is not whole.
  if ((${#confs[@]})) && ! KUBECONFIG=$(IFS=:; echo "${confs[*]}") kubectl config view \
    -o name >/dev/null 2>&1; then
    fail "$what: kubectl cannot read the kubeconfigs"
    bad=1
  fi
  for name in "${names[@]}"; do
    [[ -f $dir/$name.pem ]] || continue
    if [[ ! -f $dir/$name-key.pem ]]; then
      fail "$what: $name.pem is in place without $name-key.pem"
      bad=1
    elif [[ $(openssl x509 -in "$dir/$name.pem" -noout -pubkey 2>&1) != \
      "$(openssl pkey -in "$dir/$name-key.pem" -pubout 2>&1)" ]]; then
      fail "$what: $name.pem and $name-key.pem are not whole or not a pair"
      bad=1
    fi
  done
  [[ $bad == 0 ]] && pass
}

killed_mid_write=0  # kills that left temporaries or a part of the files
for ((r = 1; r <= RUNS; r++)); do
  d=$T/run-$r
  # Kill points spread evenly over [0, full run] and shuffled a little.
  delay_ms=$(((full_ms * (r - 1)) / (RUNS - 1) + RANDOM % 3))
  "$KUBECA" init --config "$T/cluster.yaml" --pki "$d" >/dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v m="$delay_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [[ -d $d ]]; then
    n=$(find "$d" -type f ! -name '.*' | wc -l)
    temps=$(find "$d" -type f -name '.*.tmp*' | wc -l)
    if ((temps > 0 || (n > 0 && n < 2 * ${#names[@]}))); then
      killed_mid_write=$((killed_mid_write + 1))
    fi
    check_whole "$d" "run $r killed after ${delay_ms} ms ($n files)"
  fi
  # The next run completes the folder; the result is a PKI that verifies.
  expect_ok "run $r: init after the kill" "$KUBECA" init --config "$T/cluster.yaml" --pki "$d"
  check_whole "$d" "run $r completed"
  expect_eq "run $r: sa.pub is the public half of sa.key" "$(openssl pkey -pubin -in "$d/sa.pub")" \
    "$(openssl pkey -in "$d/sa.key" -pubout)"
  expect_eq "run $r: temporaries left after the second init" \
    "$(find "$d" -name '.*.tmp*' -printf '%P ')" ""
  # One openssl verify per CA for all the certificates it issued.
  declare -A by_ca=()
  for name in "${names[@]}"; do
    [[ -f $d/$name.pem ]] || { fail "run $r: $name.pem missing after the second init"; continue; }
    [[ $name == "$(ca_of "$name")" ]] || by_ca[$(ca_of "$name")]+="$d/$name.pem "
  done
  for ca in "${!by_ca[@]}"; do
    # shellcheck disable=SC2086  # the list is space-separated paths without spaces
    expect_ok "run $r: certificates of $ca.pem verify" openssl verify -CAfile "$d/$ca.pem" ${by_ca[$ca]}
  done
  unset by_ca
  rm -rf "$d"
done
echo "init took ${full_ms} ms whole; $killed_mid_write of $RUNS kills left a partly written folder"
# Kills that only ever hit before or after the writes would test nothing.
if ((killed_mid_write == 0)); then fail "no kill landed while files were being written"; else pass; fi
finish

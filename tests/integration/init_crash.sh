#!/usr/bin/env bash
# `kubeca init` killed with SIGKILL at random moments of its run: whatever it left is whole
# (every certificate and key parses, every key present with its certificate is that
# certificate's key), no leaf is in place without its key, and the next run completes the
# folder into a PKI that verifies.
source "$(dirname "$0")/lib.sh"

# Under the sanitizers every run is several times slower: fewer spread kills, the same checks.
default_runs=16
[[ ${KUBECA_SANITIZED:-0} == 1 ]] && default_runs=6
RUNS=${INIT_CRASH_RUNS:-$default_runs}
((RUNS >= 2)) || { echo "INIT_CRASH_RUNS must be 2 or more" >&2; exit 2; }
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
  # A kubeconfig is whole when its three blobs decode to whole PEM blocks.
  local bad_confs
  if ((${#confs[@]})) && ! bad_confs=$(python3 - "${confs[@]}" <<'PY'
import base64, re, sys
bad = []
for f in sys.argv[1:]:
    text = open(f).read()
    blobs = re.findall(r"^\s*(?:certificate-authority|client-certificate|client-key)-data: (\S+)$",
                       text, re.M)
    ok = text.endswith("\n") and len(blobs) == 3
    for b in blobs:
        try:
            pem = base64.b64decode(b, validate=True).decode()
        except Exception:
            ok = False
            continue
        ok = ok and pem.startswith("-----BEGIN ") and pem.rstrip().endswith("-----")
    if not ok:
        bad.append(f)
print(" ".join(bad))
sys.exit(1 if bad else 0)
PY
  ); then
    fail "$what: kubeconfigs not whole: $bad_confs"
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
  if ((bad == 0)); then pass; fi
}

# The order of the syscalls, which a SIGKILL cannot show (the page cache survives it): one
# syncfs before any rename and no fsync of single files; every key and kubeconfig renamed,
# then the folders synced, before the first certificate's rename; the folders synced last.
# LeakSanitizer cannot run under ptrace: off for this one run of a sanitizer build.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
  strace -f -y -qq -e trace=rename,renameat,renameat2,syncfs,fsync,fdatasync -o "$T/trace" \
  "$KUBECA" init --config "$T/cluster.yaml" --pki "$T/traced" >/dev/null
order=$(awk -v dir="$T/traced" '
  / syncfs\(/ { syncs++; if (!first_sync) first_sync = NR }
  / f(data)?sync\(/ {
    if ($0 !~ "<" dir "(/etcd)?>") bad_fsync++
    else { last_dirsync = NR; if (last_private && !first_public) synced_between = 1 }
  }
  / rename(at2?)?\(/ {
    if (!first_rename) first_rename = NR
    last_rename = NR
    if ($0 ~ /(-key\.pem|\.conf|sa\.key)"\) = 0/) { private++; last_private = NR; if (first_public) late++ }
    else { public++; if (!first_public) first_public = NR }
  }
  END {
    printf "renames=%d+%d syncfs=%d before_renames=%s file_fsyncs=%d keys_before_certs=%s synced_between=%s synced_last=%s\n",
      private, public, syncs, (first_sync && first_sync < first_rename) ? "yes" : "no", bad_fsync,
      (late == 0 && last_private < first_public) ? "yes" : "no", synced_between ? "yes" : "no",
      (last_dirsync > last_rename) ? "yes" : "no" }' "$T/trace")
n_files=$(find "$T/traced" -type f | wc -l)
n_private=$(find "$T/traced" -type f \( -name '*-key.pem' -o -name '*.conf' -o -name sa.key \) | wc -l)
expect_eq "init's syscall order" "$order" \
  "renames=$n_private+$((n_files - n_private)) syncfs=1 before_renames=yes file_fsyncs=0 keys_before_certs=yes synced_between=yes synced_last=yes"

# One kubeca at a time: while another holds the folder's lock (flock(1) here), init fails at
# once, names the folder and changes nothing.
state=$(tree_state "$T/whole")
flock "$T/whole" bash -c 'echo $$ >"$1"; exec sleep 30' _ "$T/holder.pid" &
holder=$!
for _ in $(seq 100); do [[ -s $T/holder.pid ]] && break; sleep 0.1; done
rm "$T/whole/admin.conf"
kc 1 init --config "$T/cluster.yaml" --pki "$T/whole"
expect_contains "init while the folder is locked" "$ERR" "another kubeca is writing $T/whole"
expect_eq "nothing made while locked" "$(test -e "$T/whole/admin.conf" && echo yes || echo no)" no
kc 1 certs renew all --pki "$T/whole"
expect_contains "certs renew while the folder is locked" "$ERR" "another kubeca is writing"
kill "$(cat "$T/holder.pid")" 2>/dev/null || true  # the sleep: flock(1) then exits
wait "$holder" 2>/dev/null || true
kc 0 init --config "$T/cluster.yaml" --pki "$T/whole"
expect_eq "after the lock: only admin.conf made again" "$(tree_state "$T/whole" | grep -c admin.conf)" 1
expect_eq "after the lock: the rest unchanged" "$(tree_state "$T/whole" | grep -v admin.conf)" \
  "$(grep -v admin.conf <<<"$state")"

killed_mid_write=0  # kills that left temporaries or a part of the files
# crash_run R DELAY_MS [writes]: init killed after DELAY_MS (with "writes": DELAY_MS after
# its first temporary file appears), checked, then completed by a second init.
crash_run() {
  local r=$1 delay_ms=$2 mode=${3:-} d=$T/run-$1 pid n temps name ca
  "$KUBECA" init --config "$T/cluster.yaml" --pki "$d" >/dev/null 2>&1 &
  pid=$!
  if [[ $mode == writes ]]; then
    while kill -0 "$pid" 2>/dev/null && ! compgen -G "$d/.*.tmp*" >/dev/null; do :; done
    # On a quiet disk the whole batch takes a few ms: wait in the shell, not with a process
    # that itself takes that long to start.
    local until_us=$((${EPOCHREALTIME/./} + delay_ms * 1000))
    while ((${EPOCHREALTIME/./} < until_us)); do :; done
  else
    sleep "$(awk -v m="$delay_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
  fi
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
  local -A by_ca=()
  for name in "${names[@]}"; do
    [[ -f $d/$name.pem ]] || { fail "run $r: $name.pem missing after the second init"; continue; }
    [[ $name == "$(ca_of "$name")" ]] || by_ca[$(ca_of "$name")]+="$d/$name.pem "
  done
  for ca in "${!by_ca[@]}"; do
    # shellcheck disable=SC2086  # the list is space-separated paths without spaces
    expect_ok "run $r: certificates of $ca.pem verify" openssl verify -CAfile "$d/$ca.pem" ${by_ca[$ca]}
  done
  rm -rf "$d"
}

# Kill points spread evenly over [0, the whole run], shuffled a little.
for ((r = 1; r <= RUNS; r++)); do
  crash_run "$r" $(((full_ms * (r - 1)) / (RUNS - 1) + RANDOM % 3))
done
# The writes are a small part of the run: four more kills aimed at them, 0 to 3 ms after
# the first temporary file appears.
for ((r = RUNS + 1; r <= RUNS + 4; r++)); do
  crash_run "$r" $((r - RUNS - 1)) writes
done
echo "init took ${full_ms} ms whole; $killed_mid_write of $((r - 1)) kills left a partly written folder"
# Kills that only ever hit before or after the writes would test nothing.
if ((killed_mid_write == 0)); then fail "no kill landed while files were being written"; else pass; fi
finish

#!/usr/bin/env bash
# Failures under load (issue 12, point 7): a three-member etcd (TLS for clients and peers,
# certificates from `kubeca init`) and three `kubeca serve` replicas on 127.0.0.1, .2 and
# .3, all on one store URL naming the three members. JOINS nodes join, each with a key of
# its own and a server list that starts at another replica: a fifth with 1-use tokens
# through `kubeca request --server URL1,URL2,URL3`, the rest with four multi-use tokens
# through ha_joins.py (the same API calls and retries, no process per join). Meanwhile one
# replica is killed (-9), then the etcd leader is killed (-9) and restarted. Every join
# succeeds after the client's own retries; serials are unique; every served certificate is
# in etcd under its token; a token's uses are its certificates in etcd. Then etcd loses
# quorum (the leader and one more killed): the replicas answer a sign 503
# store_unavailable and /readyz 503; the sign leaves nothing (the token's uses and etcd's
# certificates unchanged after recovery); with the members back, service resumes without
# restarting kubeca serve: a node that began to join during the outage gets its
# certificate by its own retries. Prints the figures docs/ha.md quotes.
source "$(dirname "$0")/serve_lib.sh"
source "$(dirname "$0")/etcd_lib.sh"
command -v etcd >/dev/null || { echo "etcd is missing (scripts/install-deps.sh: etcd-server)"; exit 1; }
# Under ASan every kubeca process is several times slower: fewer joins, the same checks.
if [ "${KUBECA_SANITIZED:-0}" = 1 ]; then JOINS=${JOINS:-150}; else JOINS=${JOINS:-500}; fi
PAR=${PAR:-12}  # joins at once
ms() { date +%s%3N; }
T0=$(ms)

D=$T/c
P=$D/pki
mkdir -p "$D"
cat >"$D/cluster.yaml" <<YAML
cluster: {name: test, flavor: modern}
master: {host: 127.0.0.1, name: m1}
workers: [{name: n1, ip: 127.0.0.2}]
pki: {key_algorithm: ecdsa-p256}
signer:
  url: https://127.0.0.1:8443
  urls: [https://127.0.0.1:8443, https://127.0.0.2:8443, https://127.0.0.3:8443]
  store: sqlite:$D/kubeca.db
YAML
"$KUBECA" init --config "$D/cluster.yaml" --pki "$P" >/dev/null
PIN=$(pin "$D")
etcd_cluster_start 3 "$P"
STORE=$ETCD_STORE

URLS=() REPLICA_PIDS=()
for i in 1 2 3; do
  "$KUBECA" serve --config "$D/cluster.yaml" --pki "$P" --listen "127.0.0.$i:0" --store "$STORE" \
    --audit-log "$T/audit$i.log" 2>"$T/serve$i.err" &
  SERVER_PIDS+=($!) REPLICA_PIDS+=($!)
done
for i in 1 2 3; do
  port=""
  for _ in $(seq 100); do
    port=$(sed -n "s|.*serving on https://127.0.0.$i:\([0-9]*\).*|\1|p" "$T/serve$i.err")
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$T/serve$i.err"; exit 1; }
  URLS+=("https://127.0.0.$i:$port")
done
readyz() { curl -s -o /dev/null -w "%{http_code}" --max-time "${2:-10}" --cacert "$P/ca.pem" "$1/readyz" || true; }
for u in "${URLS[@]}"; do
  check "replica $u ready on three members" '[ "$(readyz "$u")" = 200 ]'
done

# Tokens up front: a 1-use token for every tenth join (node wN), four multi-use tokens
# (nodes pool0..pool3) for the others, with uses to spare.
T_SETUP=$(ms)
ONES=$((JOINS / 10))
seq 0 $((ONES - 1)) | xargs -P 4 -I{} sh -c '"$0" token create --store "$1" --node w{} \
  --ip 127.0.0.2 --uses 1 2>/dev/null >"$2/one.{}"' "$KUBECA" "$STORE" "$T"
MULTI=()
for k in 0 1 2 3; do
  MULTI+=("$("$KUBECA" token create --store "$STORE" --node "pool$k" --ip 127.0.0.2 --uses "$JOINS" 2>/dev/null)")
done
: >"$T/plan"
for ((i = 0; i < JOINS; i++)); do
  r=$((i % 3))  # the list starts at replica r: each replica is first for a third
  servers="${URLS[$r]},${URLS[$(((r + 1) % 3))]},${URLS[$(((r + 2) % 3))]}"
  if ((i % 10 == 0)); then
    echo "$i $(cat "$T/one.$((i / 10))") w$((i / 10)) $servers" >>"$T/plan"
  else
    echo "$i ${MULTI[$((i % 4))]} pool$((i % 4)) $servers" >>"$T/plan"
  fi
done
check "$((ONES + 4)) tokens made" '[ "$(awk "{print \$2}" "$T/plan" | grep -c "^[a-z0-9]\{6\}\.[a-z0-9]\{16\}$")" = "$JOINS" ]'

# The joins, PAR at once: the 1-use tokens' through `kubeca request` (a process each, its
# own retries: --retries 8, backoff from 0.5 s), the others through ha_joins.py, which
# makes the same requests and retries the same way without a process per join.
mkdir -p "$T/j"
T_JOINS=$(ms)
grep -E '^[0-9]+ [^ ]+ w' "$T/plan" | sed "s|\$| $PIN $T/j|" | xargs -P $((PAR / 3)) -L 1 sh -c \
  'KUBECA_TOKEN=$2 "$0" request --server "$4" --ca-hash "$5" --out-dir "$6/$1" --name "$3" \
  >"$6/$1.log" 2>&1; echo $? >"$6/$1.rc"' "$KUBECA" &
DRIVERS=($!)
grep -E '^[0-9]+ [^ ]+ pool' "$T/plan" | python3 "$(dirname "$0")/ha_joins.py" "$P/ca.pem" \
  $((PAR - PAR / 3)) "$T/j" &
DRIVERS+=($!)
done_joins() { find "$T/j" -maxdepth 1 -name '*.rc' | wc -l; }
wait_joins() {  # N: until N joins are done (or the driver ended)
  local p
  while [ "$(done_joins)" -lt "$1" ]; do
    for p in "${DRIVERS[@]}" ""; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && break; done
    [ -n "$p" ] || return 0
    sleep 0.05
  done
}
wait_joins $((JOINS / 5))
kill -9 "${REPLICA_PIDS[1]}"
wait "${REPLICA_PIDS[1]}" 2>/dev/null || true
KILLED_AT=$(done_joins)
wait_joins $((JOINS * 2 / 5))
KILLED=$(etcd_leader)
[ -n "$KILLED" ] || KILLED=0
etcd_member_kill "$KILLED"
ETCD_KILLED_AT=$(done_joins)
sleep 1
etcd_member_start "$KILLED"
wait "${DRIVERS[@]}"
T_JOINED=$(ms)
check "the replica and the etcd member died while joins ran ($KILLED_AT, $ETCD_KILLED_AT of $JOINS done)" \
  '[ "$KILLED_AT" -lt "$JOINS" ] && [ "$ETCD_KILLED_AT" -lt "$JOINS" ]'
ok=$(cat "$T"/j/*.rc | grep -cx 0 || true)
check "all $JOINS joins succeeded ($ok)" '[ "$ok" = "$JOINS" ]'
for f in $(grep -Lx 0 "$T"/j/*.rc | head -3); do echo "join ${f%.rc}: $(tail -3 "${f%.rc}.log")" >&2; done
RETRIES=$(cat "$T"/j/*.log | grep -c 'attempt [0-9]* failed' || true)
RETRIED=$(grep -l 'attempt [0-9]* failed' "$T"/j/*.log | wc -l || true)
FAILOVERS=$(cat "$T"/j/*.log | grep -c 'next server' || true)
# Resent: a request that reached a replica which died or failed before answering.
RESENT=$( (grep -l 'next server$' "$T"/j/*.log || true) | wc -l)
check "the certificates chain to the cluster CA" \
  '[ "$(openssl verify -CAfile "$P/ca.pem" $(awk -v d="$T/j" "{print d \"/\" \$1 \"/\" \$3 \".pem\"}" "$T/plan") | grep -c ": OK$")" = "$JOINS" ]'
check "etcd healthy again with the member back" 'etcd_wait_healthy 50'

# Accounting, from etcd itself (etcdctl) and `kubeca token list`.
ectl get --prefix /kubeca/certs/ --print-value-only >"$T/store.json"
"$KUBECA" token list --store "$STORE" --json >"$T/tokens.json"
python3 "$(dirname "$0")/ha_check.py" "$T/plan" "$T/j" "$T/store.json" "$T/tokens.json" >"$T/acct"
while read -r verdict what; do
  case $verdict in
    ok) pass ;;
    fail) fail "$what" ;;
    orphans) ORPHANS=$what ;;
  esac
done <"$T/acct"
check "accounting ran" '[ -n "${ORPHANS:-}" ]'
# An orphan: a certificate a token paid for that no join holds. A join resent after its
# replica died marks the request as a retry and gets back what that replica stored, so
# there are none; at most one per resent join if the dying replica's transaction was
# still on its way into etcd when the next replica looked.
check "orphaned certificates ${ORPHANS:-?} <= $RESENT resent joins" '[ "${ORPHANS:-99}" -le "$RESENT" ]'

T_ACCOUNTED=$(ms)

# Quorum lost: the leader and one more member killed; the third has no leader.
LEADER=$(etcd_leader)
[ -n "$LEADER" ] || LEADER=0
A=$LEADER B=$(((LEADER + 1) % 3))
uses_of() {
  "$KUBECA" token list --store "$STORE" --json |
    python3 -c "import json,sys; print([t['uses'] for t in json.load(sys.stdin) if t['id']=='${1%%.*}'][0])"
}
USES_BEFORE=$(uses_of "${MULTI[0]}")
CERTS_BEFORE=$(ectl get --prefix /kubeca/certs/ --keys-only | grep -c /kubeca/certs/)
RESUME_TOK=$("$KUBECA" token create --store "$STORE" --node late --ip 127.0.0.2 2>/dev/null)
make_csr "$T/out.csr" "/CN=system:node:pool0/O=system:nodes"
sign_body "$T/out.csr" >"$T/out.json"
etcd_member_kill "$A"
etcd_member_kill "$B"
T_LOST=$(ms)
LIVE=("${URLS[0]}" "${URLS[2]}")
ASKED=()
for n in 0 1; do
  curl -s -o "$T/out$n.resp" -w '%{http_code}' --max-time 40 --cacert "$P/ca.pem" \
    -H "Authorization: Bearer ${MULTI[0]}" --data-binary @"$T/out.json" "${LIVE[$n]}/v1/sign" \
    >"$T/out$n.code" &
  ASKED+=($!)
  readyz "${LIVE[$n]}" 40 >"$T/ready$n.code" &
  ASKED+=($!)
done
# A node that boots now: its request keeps retrying until etcd is back.
KUBECA_TOKEN=$RESUME_TOK "$KUBECA" request --server "${URLS[1]},${URLS[0]},${URLS[2]}" \
  --ca-hash "$PIN" --out-dir "$T/late" --name late --retries 12 >"$T/late.log" 2>&1 &
LATE=$!
SERVER_PIDS+=($!)
wait "${ASKED[@]}" || true
T_ANSWERED=$(ms)
for n in 0 1; do
  check "quorum lost: ${LIVE[$n]} sign answers 503 store_unavailable ($(cat "$T/out$n.code") $(cat "$T/out$n.resp"))" \
    '[ "$(cat "$T/out$n.code")" = 503 ] && grep -q "\"store_unavailable\"" "$T/out$n.resp"'
  check "quorum lost: ${LIVE[$n]} /readyz 503 ($(cat "$T/ready$n.code"))" \
    '[ "$(cat "$T/ready$n.code")" = 503 ]'
done
check "quorum lost: the booting node has no certificate yet" '[ ! -e "$T/late/late.pem" ] && kill -0 "$LATE"'
etcd_member_start "$A"
etcd_member_start "$B"
T_BACK=$(ms)
ready=""
for _ in $(seq 120); do
  ready=$(readyz "${URLS[0]}")
  [ "$ready" = 200 ] && break
  sleep 0.25
done
T_READY=$(ms)
check "quorum back: /readyz 200 without a restart ($ready)" '[ "$ready" = 200 ]'
check "quorum back: the booting node joined by its own retries" 'wait "$LATE" && [ -s "$T/late/late.pem" ]'
T_LATE=$(ms)
check "the sign made during the outage spent no use ($(uses_of "${MULTI[0]}") vs $USES_BEFORE)" \
  '[ "$(uses_of "${MULTI[0]}")" = "$USES_BEFORE" ]'
LATE_SERIAL=$(serial_of "$T/late/late.pem" | sed 's/^0*//')
ectl get --prefix /kubeca/certs/ --keys-only | grep /kubeca/certs/ | sed -e 's|.*/||' -e 's/^0*//' >"$T/after"
check "the outage left no certificate: etcd holds the one before plus the late node's" \
  '[ "$(wc -l <"$T/after")" = $((CERTS_BEFORE + 1)) ] && grep -qix "$LATE_SERIAL" "$T/after"'
check "the late node's certificate chains to the CA" 'openssl verify -CAfile "$P/ca.pem" "$T/late/late.pem" >/dev/null'

secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", (b - a) / 1000}'; }
echo "joins: $JOINS in $(secs "$T_JOINS" "$T_JOINED") s, $PAR at once; replica killed after $KILLED_AT," \
  "etcd leader e$KILLED killed after $ETCD_KILLED_AT; $RETRIES client retries in $RETRIED joins," \
  "$FAILOVERS failovers to the next replica (ha_joins.py's), $RESENT joins resent after a broken answer;" \
  "orphaned certificates ${ORPHANS:-?}"
echo "quorum lost: 503s and /readyz answered in $(secs "$T_LOST" "$T_ANSWERED") s; members back:" \
  "/readyz 200 after $(secs "$T_BACK" "$T_READY") s, the waiting join done after" \
  "$(secs "$T_BACK" "$T_LATE") s ($(grep -c 'attempt [0-9]* failed' "$T/late.log" || true) retries);" \
  "whole test $(secs "$T0" "$(ms)") s (setup $(secs "$T0" "$T_SETUP") s, tokens" \
  "$(secs "$T_SETUP" "$T_JOINS") s, accounting $(secs "$T_JOINED" "$T_ACCOUNTED") s)"
finish

#!/usr/bin/env bash
# Three `kubeca serve` replicas on one TLS etcd (certificates from `kubeca init`): a 1-use
# token raced over the replicas yields one certificate, an N-use token N; a revocation made
# through one replica is enforced by the others at once; `kubeca store migrate` moves a
# SQLite signer to etcd and refuses a non-empty target.
source "$(dirname "$0")/serve_lib.sh"
source "$(dirname "$0")/etcd_lib.sh"
command -v etcd >/dev/null || { echo "etcd is missing (scripts/install-deps.sh: etcd-server)"; exit 1; }
D=$T/c
write_cluster "$D"
P=$D/pki

etcd_cluster_start 1 "$P"
STORE=$ETCD_STORE
URLS=()
for i in 1 2 3; do
  "$KUBECA" serve --config "$D/cluster.yaml" --pki "$P" --listen 127.0.0.1:0 --store "$STORE" \
    --audit-log "$T/audit$i.log" 2>"$T/serve$i.err" &
  SERVER_PIDS+=($!)
  port=""
  for _ in $(seq 100); do
    port=$(sed -n 's|.*serving on https://127.0.0.1:\([0-9]*\).*|\1|p' "$T/serve$i.err")
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$T/serve$i.err"; exit 1; }
  URLS+=("https://127.0.0.1:$port")
done
for u in "${URLS[@]}"; do
  check "replica $u ready on etcd" '[ "$(curl -s -o /dev/null -w "%{http_code}" --cacert "$P/ca.pem" "$u/readyz")" = 200 ]'
done

# Every racer has a key of its own: the same key asking again would rightly get the same
# certificate back (a retry), which is not a race for the token.
mkdir -p "$T/bodies"
for i in $(seq 0 199); do
  make_csr "$T/bodies/$i.csr" "/CN=system:node:n1/O=system:nodes"
  sign_body "$T/bodies/$i.csr" > "$T/bodies/$i.json"
done
make_csr "$T/n1.csr" "/CN=system:node:n1/O=system:nodes"
sign_body "$T/n1.csr" > "$T/n1.json"
# race TOKEN COUNT: COUNT requests with the same token, spread over the replicas, 50 at once.
race() {
  local tok=$1 n=$2
  rm -rf "$T/race" && mkdir "$T/race"
  seq 0 $((n - 1)) | xargs -P 50 -I{} bash -c '
    i={}; urls=('"${URLS[*]}"'); u=${urls[$((i % 3))]}
    curl -s -o /dev/null -w "%{http_code}\n" --max-time 20 --cacert "'"$P"'/ca.pem" \
      -H "Authorization: Bearer '"$tok"'" --data-binary @"'"$T"'/bodies/$i.json" "$u/v1/sign" \
      > "'"$T"'/race/$i"'
  cat "$T/race"/* | sort | uniq -c | tr -s ' ' > "$T/race.txt"
}
certs_in_etcd() { ectl get --prefix /kubeca/certs/ --keys-only | grep -c /kubeca/certs/ || true; }

ONE=$("$KUBECA" token create --store "$STORE" --node n1 --ip 127.0.0.2 --uses 1 2>/dev/null)
before=$(certs_in_etcd)
race "$ONE" 200
check "1-use token over 3 replicas: exactly one 201 ($(cat "$T/race.txt" | tr '\n' ' '))" \
  'grep -q "^ 1 201$" "$T/race.txt"'
check "1-use token: the others 401" '[ "$(grep " 401$" "$T/race.txt" | cut -d" " -f2)" = 199 ]'
check "1-use token: one certificate in etcd" '[ $(( $(certs_in_etcd) - before )) = 1 ]'

FIVE=$("$KUBECA" token create --store "$STORE" --node n1 --ip 127.0.0.2 --uses 5 2>/dev/null)
before=$(certs_in_etcd)
race "$FIVE" 200
check "5-use token over 3 replicas: exactly five 201" 'grep -q "^ 5 201$" "$T/race.txt"'
check "5-use token: five certificates in etcd" '[ $(( $(certs_in_etcd) - before )) = 5 ]'
check "5-use token: uses counted 5" \
  '"$KUBECA" token list --store "$STORE" --json | python3 -c "import json,sys; t=[x for x in json.load(sys.stdin) if x[\"id\"]==\"${FIVE%%.*}\"]; sys.exit(0 if t and t[0][\"uses\"]==5 else 1)"'
serials=$(ectl get --prefix /kubeca/certs/ --keys-only | grep /kubeca/certs/ | sort | uniq -d | wc -l)
check "no serial twice" '[ "$serials" = 0 ]'

# A node joins through replica 1, is revoked through replica 2, and replica 3 refuses it.
TOK=$("$KUBECA" token create --store "$STORE" --node n2 --ip 127.0.0.3 2>/dev/null)
"$KUBECA" request --server "${URLS[0]}" --token "$TOK" --ca-hash "$(pin "$D")" --out-dir "$T/n2" \
  --name n2 >/dev/null 2>&1
check "node joined through replica 1" '[ -s "$T/n2/n2.pem" ]'
"$KUBECA" revoke --server "${URLS[1]}" --certificate-authority "$P/ca.pem" \
  --client-certificate "$P/admin.pem" --client-key "$P/admin-key.pem" \
  --cert "$T/n2/n2.pem" --reason keyCompromise >/dev/null
make_csr "$T/n2r.csr" "/CN=system:node:n2/O=system:nodes"
sign_body "$T/n2r.csr" > "$T/n2r.json"
code=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$P/ca.pem" --cert "$T/n2/n2.pem" \
  --key "$T/n2/n2-key.pem" --data-binary @"$T/n2r.json" "${URLS[2]}/v1/renew")
check "revoked through replica 2, refused by replica 3 at once ($code)" \
  '[ "$code" = 401 ] && grep -q certificate_revoked "$T/resp"'
curl -s --cacert "$P/ca.pem" -H 'Accept: application/x-pem-file' "${URLS[2]}/v1/crl" > "$T/crl.pem"
check "replica 3's CRL lists it" \
  'openssl crl -in "$T/crl.pem" -noout -text | grep -qi "$(serial_of "$T/n2/n2.pem")"'

# Clients fail over: with replica 1 stopped and a dead address first in the list, a node
# still joins and renews through the next URL.
DEAD="https://127.0.0.1:$(free_port)"
kill "${SERVER_PIDS[1]}"
wait "${SERVER_PIDS[1]}" 2>/dev/null || true
LIST="$DEAD,${URLS[0]},${URLS[1]},${URLS[2]}"
TOK=$("$KUBECA" token create --store "$STORE" --node n1 --ip 127.0.0.2 2>/dev/null)
check "request fails over to a live replica" \
  '"$KUBECA" request --server "$LIST" --token "$TOK" --ca-hash "$(pin "$D")" --out-dir "$T/n1" --name n1 >"$T/fo.out" 2>&1'
check "its certificate chains to the CA" 'openssl verify -CAfile "$P/ca.pem" "$T/n1/n1.pem" >/dev/null'
check "renew fails over too" \
  '"$KUBECA" renew --server "$LIST" --ca "$T/n1/ca.pem" --cert "$T/n1/n1.pem" --key "$T/n1/n1-key.pem" --force >"$T/fo2.out" 2>&1'
check "a server list with a non-https URL: exit 2" \
  '"$KUBECA" request --server "$DEAD,http://x:1" --token "$TOK" --ca-hash "$(pin "$D")" --out-dir "$T/x" --name n1 >/dev/null 2>&1; [ $? = 2 ]'

# store migrate: a SQLite signer's records into an empty prefix, checked through the CLI.
SQL="sqlite:$D/kubeca.db"  # made by init, which recorded the folder's leaves there
for n in 1 2 3; do "$KUBECA" token create --store "$SQL" --node n1 --ip 127.0.0.2 >/dev/null 2>&1; done
NEW="$ETCD_STORE&prefix=/moved/"
check "store migrate sqlite -> etcd" '"$KUBECA" store migrate --from "$SQL" --to "$NEW" >"$T/mig.out" 2>&1'
check "migrate reports what it copied" 'grep -q "3 tokens" "$T/mig.out"'
check "tokens readable from etcd" \
  '[ "$("$KUBECA" token list --store "$NEW" --json | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")" = 3 ]'
"$KUBECA" store migrate --from "$SQL" --to "$NEW" >"$T/mig2.out" 2>&1 && rc=0 || rc=$?
check "migrate into a non-empty store: exit 2 ($rc)" '[ "$rc" = 2 ] && grep -q "not empty" "$T/mig2.out"'

# etcd gone: the replicas say so (503 store_unavailable, /readyz 503) and write nothing;
# etcd back: they serve again by themselves.
etcd_member_kill 0 TERM
TOK_URL=${URLS[2]}
code=$(curl -s -o "$T/resp" -w '%{http_code}' --max-time 30 --cacert "$P/ca.pem" \
  -H "Authorization: Bearer $FIVE" --data-binary @"$T/bodies/0.json" "$TOK_URL/v1/sign")
check "etcd down: sign answers 503 store_unavailable ($code $(cat "$T/resp"))" \
  '[ "$code" = 503 ] && grep -q store_unavailable "$T/resp"'
check "etcd down: /readyz 503" \
  '[ "$(curl -s -o /dev/null -w "%{http_code}" --max-time 30 --cacert "$P/ca.pem" "$TOK_URL/readyz")" = 503 ]'
check "etcd down: /healthz still 200" \
  '[ "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 --cacert "$P/ca.pem" "$TOK_URL/healthz")" = 200 ]'
etcd_member_start 0
ready=""
for _ in $(seq 60); do
  ready=$(curl -s -o /dev/null -w "%{http_code}" --max-time 10 --cacert "$P/ca.pem" "$TOK_URL/readyz")
  [ "$ready" = 200 ] && break
  sleep 0.5
done
check "etcd back: /readyz 200 again without a restart ($ready)" '[ "$ready" = 200 ]'
make_csr "$T/fresh.csr" "/CN=system:node:n1/O=system:nodes"
sign_body "$T/fresh.csr" > "$T/fresh.json"
check "etcd back: the 5-use token still has no use left for a new key" \
  '[ "$(curl -s -o /dev/null -w "%{http_code}" --cacert "$P/ca.pem" -H "Authorization: Bearer $FIVE" --data-binary @"$T/fresh.json" "$TOK_URL/v1/sign")" = 401 ]'

finish

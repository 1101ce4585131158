#!/usr/bin/env bash
# `kubeca bench join`: 100 nodes joining at once, 50 at a time, each with its own token, key
# and CSR. The tool's own checks are checked again from outside: the store holds 100 new
# certificates with distinct serials, each verifies against the CA with openssl and names
# its node; every token was used once. A server of another CA fails every join (exit 1).
source "$(dirname "$0")/serve_lib.sh"
D=$T/c
write_cluster "$D"
start_server "$D"

out=$("$KUBECA" bench join --nodes 100 --concurrency 50 --server "$URL" --pki "$D/pki" 2>"$T/err") &&
  rc=0 || rc=$?
echo "$out"
check "bench join exits 0 (got $rc)" '[ "$rc" = 0 ]'
check "100 of 100 joined" 'grep -q "^successes 100/100  failures 0$" <<<"$out"'
check "100 verified, 100 unique serials" \
  'grep -q "^certificates verified against the CA 100/100, unique serials 100/100$" <<<"$out"'
check "latency and rate printed" 'grep -Eq "^latency ms  p50 [0-9.]+  p95 [0-9.]+  p99 [0-9.]+" <<<"$out" &&
  grep -Eq "^[0-9.]+ s, [0-9]+ joins/s$" <<<"$out"'

q() { sqlite3 "$D/kubeca.db" "$1"; }
check "100 tokens, each used once" \
  '[ "$(q "select count(*) from tokens where node like '"'"'bench-%'"'"' and uses = 1 and uses_allowed = 1")" = 100 ]'
check "100 certificates, 100 distinct serials" \
  '[ "$(q "select count(distinct serial) from certificates where node like '"'"'bench-%'"'"'")" = 100 ]'
# Each stored certificate verifies against the CA and names the node it was issued to.
bad=0
while IFS='|' read -r serial node; do
  q "select pem from certificates where serial = '$serial'" >"$T/c.pem"
  openssl verify -CAfile "$D/pki/ca.pem" "$T/c.pem" >/dev/null 2>&1 || bad=$((bad + 1))
  subj=$(openssl x509 -in "$T/c.pem" -noout -subject -nameopt RFC2253)
  [[ $subj == *"CN=system:node:$node"* ]] || bad=$((bad + 1))
done < <(q "select serial, node from certificates where node like 'bench-%'")
check "every stored certificate verifies and names its node ($bad bad)" '[ "$bad" = 0 ]'

# Another CA's folder: the server is not trusted, no node joins, exit 1.
write_cluster "$T/other"
"$KUBECA" bench join --nodes 5 --concurrency 5 --server "$URL" --pki "$T/other/pki" \
  --store "sqlite:$D/kubeca.db" >"$T/other.out" 2>&1 && rc=0 || rc=$?
check "another CA: exit 1 (got $rc)" '[ "$rc" = 1 ]'
check "another CA: 0 of 5 joined, TLS refused" 'grep -q "^successes 0/5" "$T/other.out" &&
  grep -q "TLS handshake" "$T/other.out"'

# Bad usage: exit 2, one line, nothing created.
before=$(q "select count(*) from tokens")
"$KUBECA" bench join --nodes 0 --server "$URL" --pki "$D/pki" >"$T/usage.out" 2>&1 && rc=0 || rc=$?
check "--nodes 0: exit 2 naming the flag" '[ "$rc" = 2 ] && grep -q "^kubeca: --nodes" "$T/usage.out"'
"$KUBECA" bench join --server http://127.0.0.1:1 --pki "$D/pki" >"$T/usage.out" 2>&1 && rc=0 || rc=$?
check "http:// server: exit 2" '[ "$rc" = 2 ] && grep -q "^kubeca: --server" "$T/usage.out"'
check "bad usage created no token" '[ "$(q "select count(*) from tokens")" = "$before" ]'
finish

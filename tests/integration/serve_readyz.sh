#!/usr/bin/env bash
# /readyz tells whether the store can really be queried: on a copy of a real store with pages
# in its middle overwritten it answers 503 while /healthz stays 200; on the intact store, 200.
source "$(dirname "$0")/serve_lib.sh"
HERE=$(dirname "$0")
D=$T/c
write_cluster "$D"
start_server "$D"
TOKEN=$("$KUBECA" token create --store "sqlite:$D/kubeca.db" --node n1 --ip 127.0.0.2 --uses 400 2>/dev/null)
make_csr "$T/n1.csr" "/CN=system:node:n1"
summary=$(timeout 120 python3 "$HERE/http_load.py" sign 127.0.0.1 "$PORT" "$D/pki/ca.pem" "$TOKEN" "$T/n1.csr" 300)
check "300 certificates issued ($summary)" '[ "$(cert_count "$D")" = 300 ]'
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
check "the store was checkpointed on stop" '[ ! -s "$D/kubeca.db-wal" ]'

# The copy, with the middle third of its pages overwritten.
cp "$D/kubeca.db" "$T/broken.db"
pages=$(($(stat -c %s "$T/broken.db") / 4096))
dd if=/dev/urandom of="$T/broken.db" bs=4096 seek=$((pages / 3)) count=$((pages / 3)) conv=notrunc status=none
check "sqlite3 itself finds the copy damaged" '[ "$(sqlite3 "$T/broken.db" "pragma integrity_check" 2>&1 | head -1)" != ok ]'

start_server "$D" --store "sqlite:$T/broken.db"
code() { curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" "$URL$1"; }
check "damaged store: /healthz 200" '[ "$(code /healthz)" = 200 ]'
got=$(code /readyz)
check "damaged store: /readyz 503 not_ready, got $got" '[ "$got" = 503 ] && [ "$(resp_field code)" = not_ready ]'
got=$(code /readyz)
check "damaged store: /readyz stays 503, got $got" '[ "$got" = 503 ]'
check "damaged store: /healthz still 200" '[ "$(code /healthz)" = 200 ]'
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true

start_server "$D"
check "intact store: /readyz 200" '[ "$(code /readyz)" = 200 ] && [ "$(cat "$T/resp")" = ok ]'
check "intact store: /readyz 200 again (the next slice)" '[ "$(code /readyz)" = 200 ]'
finish

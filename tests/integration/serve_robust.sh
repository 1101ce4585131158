#!/usr/bin/env bash
# Broken and hostile requests (/%ff, a CSR whose CN is not UTF-8, malformed HTTP, huge
# headers) get a 4xx and the documented JSON error; no answer names a file of the host.
source "$(dirname "$0")/serve_lib.sh"
HERE=$(dirname "$0")
D=$T/c
write_cluster "$D"
start_server "$D"
token=$("$KUBECA" token create --store "sqlite:$D/kubeca.db" --node n1 --ip 127.0.0.2 --uses 10 2>/dev/null)
python3 "$HERE/bad_utf8_csr.py" "$T/bad.csr" "$T/bad.key"
sign_body "$T/bad.csr" kubelet >"$T/bad.json"
rc=0
python3 "$HERE/serve_robust.py" "$PORT" "$token" "$T/bad.json" "$D" "$KUBECA_SOURCE/docs/api.md" \
  >"$T/robust.out" 2>&1 || rc=$?
cat "$T/robust.out"
check "every broken request gets a 4xx with a documented JSON error and no file path" \
  '[ $rc -eq 0 ]'
check "nothing was issued" '[ "$(cert_count "$D")" -eq 0 ]'
check "the server is still up" \
  '[ "$(curl -s --cacert "$D/pki/ca.pem" "$URL/healthz")" = ok ]'
finish

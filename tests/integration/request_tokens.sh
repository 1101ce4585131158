#!/usr/bin/env bash
# `kubeca request` on a node and `kubeca token` as an admin, against the real server.
source "$(dirname "$0")/serve_lib.sh"
D=$T/c
write_cluster "$D"
STORE="sqlite:$D/kubeca.db"
PIN=$(pin "$D")

# The node starts before the service: it retries with backoff and gets there.
PORT=$(free_port)
TOKEN=$("$KUBECA" token create --store "$STORE" --node n1 --ip 127.0.0.2 2>/dev/null)
"$KUBECA" request --server "https://127.0.0.1:$PORT" --token "$TOKEN" --ca-hash "$PIN" \
  --out-dir "$T/n1" --name n1 --kubeconfig-out "$T/n1/kubelet.conf" >"$T/req.out" 2>"$T/req.err" &
REQ=$!
sleep 1.5
"$KUBECA" serve --config "$D/cluster.yaml" --pki "$D/pki" --listen "127.0.0.1:$PORT" \
  --audit-log "$D/audit.log" 2>"$D/serve.err" &
SERVER_PIDS+=($!)
URL="https://127.0.0.1:$PORT"
rc=0; wait "$REQ" || rc=$?
check "request waited for the service and succeeded (rc $rc)" '[ "$rc" = 0 ]'
check "it said it was retrying" 'grep -q "retrying" "$T/req.err"'
check "certificate for n1" '[ "$(openssl x509 -in "$T/n1/n1.pem" -noout -subject)" = "subject=O = system:nodes, CN = system:node:n1" ]'
check "SANs of n1" 'openssl x509 -in "$T/n1/n1.pem" -noout -ext subjectAltName | grep -q "DNS:n1, IP Address:127.0.0.2"'
check "chain verifies" 'openssl verify -CAfile "$D/pki/ca.pem" "$T/n1/n1.pem" >/dev/null'
check "ca.pem is the cluster CA" 'cmp -s "$T/n1/ca.pem" "$D/pki/ca.pem"'
check "key 0600" '[ "$(stat -L -c %a "$T/n1/n1-key.pem")" = 600 ]'
check "key matches" 'same_key "$T/n1/n1.pem" "$T/n1/n1-key.pem"'
check "kubelet kubeconfig readable by kubectl" '[ "$(kubectl --kubeconfig "$T/n1/kubelet.conf" config view -o jsonpath="{.users[0].name}")" = "system:node:n1" ]'
check "kubeconfig points at the files" 'kubectl --kubeconfig "$T/n1/kubelet.conf" config view -o jsonpath="{.users[0].user.client-certificate}" | grep -q "/n1/n1.pem$"'

# Idempotent: a second run keeps the valid certificate, spends nothing, sends nothing.
sum=$(sha256sum "$T/n1/n1.pem" "$T/n1/n1-key.pem")
lines=$(wc -l < "$D/audit.log")
out=$("$KUBECA" request --server "$URL" --token "$TOKEN" --ca-hash "$PIN" --out-dir "$T/n1" --name n1 2>&1)
check "second run keeps ($out)" '[[ "$out" == *kept* ]] && [ "$(sha256sum "$T/n1/n1.pem" "$T/n1/n1-key.pem")" = "$sum" ]'
check "second run asked nothing of the service" '[ "$(wc -l < "$D/audit.log")" = "$lines" ]'

# A wrong pin: nothing is sent, nothing is written.
T2=$("$KUBECA" token create --store "$STORE" --node n2 --ip 127.0.0.3 2>/dev/null)
rc=0; out=$("$KUBECA" request --server "$URL" --token "$T2" --ca-hash "sha256:$(printf '0%.0s' $(seq 64))" \
  --out-dir "$T/n2" --name n2 2>&1) || rc=$?
check "wrong pin: exit 1 naming both pins ($out)" '[ "$rc" = 1 ] && [[ "$out" == *"$PIN"* ]]'
check "wrong pin: nothing written" '[ ! -e "$T/n2" ]'
check "wrong pin: the token was not sent" '[ "$(wc -l < "$D/audit.log")" = "$lines" ]'
rc=0; "$KUBECA" request --server "$URL" --token "$T2" --ca-hash "md5:abc" --out-dir "$T/n2" --name n2 >/dev/null 2>&1 || rc=$?
check "malformed pin: exit 2" '[ "$rc" = 2 ]'
rc=0; "$KUBECA" request --server "$URL" --token "nope" --ca-hash "$PIN" --out-dir "$T/n2" --name n2 >/dev/null 2>&1 || rc=$?
check "malformed token: exit 2" '[ "$rc" = 2 ]'
rc=0; out=$("$KUBECA" request --server "$URL" --token "$T2" --ca-hash "$PIN" --out-dir "$T/n2" --name n1 2>&1) || rc=$?
check "a token for n2 used as n1: refused, exit 1 ($out)" '[ "$rc" = 1 ] && [[ "$out" == *name_not_allowed* ]] && [ ! -e "$T/n2/n1.pem" ]'
rc=0; out=$("$KUBECA" request --server "$URL" --token "$T2" --ca-hash "$PIN" --out-dir "$T/n2" --name n2 2>&1) || rc=$?
check "its own name works (the refusal spent no use)" '[ "$rc" = 0 ]'
check "ed25519 and P-384 keys are accepted" '
  t3=$("$KUBECA" token create --store "$STORE" --node n3 --ip 127.0.0.4 --uses 2 2>/dev/null) &&
  "$KUBECA" request --server "$URL" --token "$t3" --ca-hash "$PIN" --out-dir "$T/n3" --name n3 --key-algorithm ed25519 >/dev/null 2>&1 &&
  "$KUBECA" request --server "$URL" --token "$t3" --ca-hash "$PIN" --out-dir "$T/n3b" --name n3 --key-algorithm ecdsa-p384 >/dev/null 2>&1 &&
  openssl verify -CAfile "$D/pki/ca.pem" "$T/n3/n3.pem" "$T/n3b/n3.pem" >/dev/null'

# Tokens as an admin over mTLS: a kubeconfig, or kubectl's own flags.
"$KUBECA" kubeconfig --pki "$D/pki" --user admin --server "$URL" --out "$T/admin.conf" >/dev/null
out=$("$KUBECA" token create --kubeconfig "$T/admin.conf" --node n4 --ip 127.0.0.5 --ttl 30m --uses 2 --json)
id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$out")
tok=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token"])' "$out")
check "token create over mTLS: id.secret" '[[ "$tok" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] && [ "${tok%%.*}" = "$id" ]'
check "only the hash is stored" '[ "$(sqlite3 "$D/kubeca.db" "select secret_hash from tokens where id = '"'"'$id'"'"'")" = "$(printf %s "${tok#*.}" | sha256sum | cut -d" " -f1)" ]'
admin_flags=(--server "$URL" --certificate-authority "$D/pki/ca.pem" --client-certificate "$D/pki/admin.pem" --client-key "$D/pki/admin-key.pem")
list=$("$KUBECA" token list "${admin_flags[@]}")
check "token list with kubectl's flags shows it active" 'grep -qE "^$id +n4 +kubelet +0/2 .* active" <<<"$list"'
check "token list never shows a secret" '! grep -q "${tok#*.}" <<<"$list"'
"$KUBECA" token revoke "$id" --kubeconfig "$T/admin.conf" >/dev/null
check "token revoke over mTLS" '"$KUBECA" token list --store "$STORE" --json | python3 -c "import json,sys; assert [t for t in json.load(sys.stdin) if t[\"id\"] == \"$id\"][0][\"revoked\"]"'
"$KUBECA" kubeconfig --pki "$D/pki" --user kubelet-n1 --server "$URL" --out "$T/node.conf" >/dev/null
rc=0; out=$("$KUBECA" token create --kubeconfig "$T/node.conf" --node n5 --ip 127.0.0.6 2>&1) || rc=$?
check "a node cannot create tokens: exit 1, admin_required ($out)" '[ "$rc" = 1 ] && [[ "$out" == *admin_required* ]]'
rc=0; out=$("$KUBECA" token create --store "$STORE" --node "../evil" --ip 127.0.0.6 2>&1) || rc=$?
check "a bad node name: exit 2 ($out)" '[ "$rc" = 2 ] && [[ "$out" == kubeca:* ]]'
rc=0; out=$("$KUBECA" token create --store "$STORE" --node n5 2>&1) || rc=$?
check "a kubelet token needs an IP: exit 2 ($out)" '[ "$rc" = 2 ]'
rc=0; "$KUBECA" token revoke zzzzzz --store "$STORE" >/dev/null 2>&1 || rc=$?
check "revoking an unknown token: exit 1" '[ "$rc" = 1 ]'
curl -s --cacert "$D/pki/ca.pem" "$URL/metrics" > "$T/metrics"
check "metrics: expiry of each served certificate" '[ "$(grep -c "^kubeca_certificate_expiry_seconds{serial=\"$(serial_of "$T/n1/n1.pem")\",profile=\"kubelet\"} [0-9]" "$T/metrics")" = 1 ]'
finish

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
check "metrics: live kubelet certificates counted, no per-serial series" '
  grep -Eq "^kubeca_certificates_live\{profile=\"kubelet\"\} [1-9]" "$T/metrics" && ! grep -q serial= "$T/metrics"'

# Privileged profiles: a token for one is a cluster-wide credential, so it takes
# --allow-privileged (and says so); kubelet and kube-proxy do not.
tokens_before=$(sqlite3 "$D/kubeca.db" 'select count(*) from tokens')
for prof in admin apiserver apiserver-kubelet-client front-proxy-client signer etcd-peer controller-manager; do
  kc_rc=0; out=$("$KUBECA" token create --store "$STORE" --node m1 --ip 127.0.0.1 --profile "$prof" 2>&1 >/dev/null) || kc_rc=$?
  check "token for $prof without --allow-privileged: exit 2, one kubeca: line ($kc_rc: $out)" \
    '[ "$kc_rc" = 2 ] && [ "$(wc -l <<<"$out")" = 1 ] && [[ "$out" == kubeca:*--allow-privileged* ]]'
done
check "no privileged token was stored" '[ "$(sqlite3 "$D/kubeca.db" "select count(*) from tokens")" = "$tokens_before" ]'
kc_rc=0; tok=$("$KUBECA" token create --store "$STORE" --node m1 --profile admin --allow-privileged 2>"$T/warn") || kc_rc=$?
check "admin token with --allow-privileged: made, with a warning ($(cat "$T/warn"))" \
  '[ "$kc_rc" = 0 ] && [[ "$tok" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] && grep -q "^kubeca: warning: .*admin" "$T/warn"'
check "  and stored as admin" '[ "$(sqlite3 "$D/kubeca.db" "select profile from tokens where id = '"'"'${tok%%.*}'"'"'")" = admin ]'
kc_rc=0; "$KUBECA" token create --store "$STORE" --node kp --profile kube-proxy >/dev/null 2>"$T/warn" || kc_rc=$?
check "kube-proxy needs no flag and gets no warning" '[ "$kc_rc" = 0 ] && ! grep -q warning "$T/warn"'
lines=$(wc -l < "$D/audit.log")
kc_rc=0; out=$("$KUBECA" token create --kubeconfig "$T/admin.conf" --node m1 --profile apiserver 2>&1) || kc_rc=$?
check "over the API without the flag: exit 2 before asking ($out)" '[ "$kc_rc" = 2 ] && [ "$(wc -l < "$D/audit.log")" = "$lines" ]'
kc_rc=0; out=$("$KUBECA" token create --kubeconfig "$T/admin.conf" --node m1 --profile apiserver --allow-privileged --json 2>/dev/null) || kc_rc=$?
check "over the API with the flag: created" '[ "$kc_rc" = 0 ] && [ "$(python3 -c "import json,sys; print(json.loads(sys.argv[1])[\"profile\"])" "$out")" = apiserver ]'
admin_curl=(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" --cert "$D/pki/admin.pem" --key "$D/pki/admin-key.pem" -H 'Content-Type: application/json')
got=$("${admin_curl[@]}" -d '{"node": "m1", "profile": "etcd-server", "ips": ["127.0.0.1"]}' "$URL/v1/tokens")
check "POST /v1/tokens for etcd-server without allow_privileged: 403 privileged_profile, got $got" '[ "$got" = 403 ] && [ "$(resp_field code)" = privileged_profile ]'
got=$("${admin_curl[@]}" -d '{"node": "m1", "profile": "etcd-server", "ips": ["127.0.0.1"], "allow_privileged": true}' "$URL/v1/tokens")
check "  with \"allow_privileged\": true: 201, got $got" '[ "$got" = 201 ] && [ "$(resp_field profile)" = etcd-server ]'
got=$("${admin_curl[@]}" -d '{"node": "n9", "profile": "kubelet", "ips": ["127.0.0.9"]}' "$URL/v1/tokens")
check "  kubelet needs nothing: 201, got $got" '[ "$got" = 201 ]'

# The failure limiter counts per address AND token id: ten bad tokens from this address do
# not stop a good one from the same address (one NAT, many nodes).
for _ in $(seq 10); do
  bad=$(python3 -c 'import random,string; a=string.ascii_lowercase+string.digits; print("".join(random.choice(a) for _ in range(6))+"."+"".join(random.choice(a) for _ in range(16)))')
  curl -s -o /dev/null --cacert "$D/pki/ca.pem" -H "Authorization: Bearer $bad" -d '{}' "$URL/v1/sign"
done
T5=$("$KUBECA" token create --store "$STORE" --node n5 --ip 127.0.0.6 2>/dev/null)
kc_rc=0; out=$("$KUBECA" request --server "$URL" --token "$T5" --ca-hash "$PIN" --out-dir "$T/n5" --name n5 2>&1) || kc_rc=$?
check "after 10 bad tokens from this address, a good request from it succeeds ($out)" '[ "$kc_rc" = 0 ] && openssl verify -CAfile "$D/pki/ca.pem" "$T/n5/n5.pem" >/dev/null'
# The same token id with wrong secrets: 429 with Retry-After, within the window.
T6=$("$KUBECA" token create --store "$STORE" --node n6 --ip 127.0.0.7 2>/dev/null)
codes=""
for _ in $(seq 11); do
  codes="$codes $(curl -s -o "$T/resp" -D "$T/headers" -w '%{http_code}' --cacert "$D/pki/ca.pem" \
    -H "Authorization: Bearer ${T6%%.*}.0000000000000000" -d '{}' "$URL/v1/sign")"
done
ra=$(sed -n 's/^[Rr]etry-[Aa]fter: *\([0-9]*\).*/\1/p' "$T/headers")
check "one token id hammered: ten 401 then 429 ($codes)" '[ "$codes" = "$(printf " 401%.0s" $(seq 10)) 429" ] && [ "$(resp_field code)" = too_many_failures ]'
check "  with Retry-After between 1 and 60 s ($ra)" '[ -n "$ra" ] && [ "$ra" -ge 1 ] && [ "$ra" -le 60 ]'
check "the audit log names the token id of the blocked attempts, never the secret" 'grep -q "\"token_id\":\"${T6%%.*}\"" "$D/audit.log" && ! grep -q "${T6#*.}" "$D/audit.log"'

# The client waits out Retry-After and retries: a server with a 4 s window.
D2=$T/c2
write_cluster "$D2"
start_server "$D2" --max-failures 3 --failure-window 4s
T7=$("$KUBECA" token create --store "sqlite:$D2/kubeca.db" --node n7 --ip 127.0.0.8 2>/dev/null)
for _ in 1 2 3; do
  curl -s -o /dev/null --cacert "$D2/pki/ca.pem" -H "Authorization: Bearer ${T7%%.*}.0000000000000000" -d '{}' "$URL/v1/sign"
done
got=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$D2/pki/ca.pem" -H "Authorization: Bearer $T7" -d '{}' "$URL/v1/sign")
check "the good token of a hammered id waits too: 429, got $got" '[ "$got" = 429 ]'
t0=$(date +%s%N)
kc_rc=0; out=$("$KUBECA" request --server "$URL" --token "$T7" --ca-hash "$(pin "$D2")" --out-dir "$T/n7" --name n7 2>&1) || kc_rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "kubeca request waits out Retry-After and succeeds (rc $kc_rc, $ms ms): $out" \
  '[ "$kc_rc" = 0 ] && [[ "$out" == *Retry-After* ]] && [ "$ms" -ge 1500 ] && [ "$ms" -le 15000 ] && [ -s "$T/n7/n7.pem" ]'
finish

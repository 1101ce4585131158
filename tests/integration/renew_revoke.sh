#!/usr/bin/env bash
# Scheduled renewal and revocation against the real server: the daemon renews short-lived
# certificates several times in a row, a kill at any point leaves a matching pair, refusals
# change nothing, the CRL lists what was revoked and openssl agrees.
source "$(dirname "$0")/serve_lib.sh"
D=$T/c
write_cluster "$D"
# Renewals here are many more than an identity's default budget of 6 an hour.
sed -i 's|^signer: {|signer: {renew_limit: 1000, |' "$D/cluster.yaml"
# The service issues six-second certificates; the PKI itself keeps its year.
sed 's/pki: {key_algorithm: ecdsa-p256}/pki: {key_algorithm: ecdsa-p256, cert_validity: 6s}/' \
  "$D/cluster.yaml" > "$D/short.yaml"
SERVE_CONFIG=$D/short.yaml start_server "$D"
STORE="sqlite:$D/kubeca.db"
PIN=$(pin "$D")
N=$T/node
TOKEN=$("$KUBECA" token create --store "$STORE" --node n1 --ip 127.0.0.2 --uses 2 2>/dev/null)
"$KUBECA" request --server "$URL" --token "$TOKEN" --ca-hash "$PIN" --out-dir "$N" --name n1 2>/dev/null >/dev/null
check "request wrote a matching pair" 'same_key "$N/n1.pem" "$N/n1-key.pem"'
first_serial=$(serial_of "$N/n1.pem")
key_before=$(sha256sum < "$N/n1-key.pem")

# The daemon: several renewals within a bounded time, the hook after each swap.
renew_args=(--server "$URL" --ca "$N/ca.pem" --cert "$N/n1.pem" --key "$N/n1-key.pem")
timeout 20 "$KUBECA" renew "${renew_args[@]}" --daemon --exec "echo swapped >> $T/hook.log" 2>"$T/daemon.log" || true
renewals=$(grep -c "renewed " "$T/daemon.log" || true)
check "daemon renewed at least 3 times in 20 s (got $renewals)" '[ "$renewals" -ge 3 ]'
check "hook ran once per swap" '[ "$(wc -l < "$T/hook.log")" = "$renewals" ]'
check "daemon logs when the next renewal is due" 'grep -q "next renewal of .* due at" "$T/daemon.log"'
check "serial changed" '[ "$(serial_of "$N/n1.pem")" != "$first_serial" ]'
check "key kept without --rotate-key" '[ "$(sha256sum < "$N/n1-key.pem")" = "$key_before" ]'
check "renewed certificate verifies" 'openssl verify -CAfile "$D/pki/ca.pem" "$N/n1.pem" >/dev/null'
check "same identity after renewal" '[ "$(openssl x509 -in "$N/n1.pem" -noout -subject -ext subjectAltName | tr -d " \n")" = "subject=O=system:nodes,CN=system:node:n1X509v3SubjectAlternativeName:DNS:n1,IPAddress:127.0.0.2" ]'
serials=$(grep -o "renewed [^ ]*: serial [0-9a-f]*" "$T/daemon.log" | awk '{print $NF}' | sort -u | wc -l)
check "every renewal a new serial" '[ "$serials" = "$renewals" ]'

# The rest uses certificates of a year, from a second server on the same store, so that
# nothing below races a six-second expiry on a loaded machine.
SHORT_URL=$URL
start_server "$D"
N=$T/node-long
TOKEN=$("$KUBECA" token create --store "$STORE" --node n1 --ip 127.0.0.2 2>/dev/null)
"$KUBECA" request --server "$URL" --token "$TOKEN" --ca-hash "$PIN" --out-dir "$N" --name n1 2>/dev/null >/dev/null
key_before=$(sha256sum < "$N/n1-key.pem")
renew_args=(--server "$URL" --ca "$N/ca.pem" --cert "$N/n1.pem" --key "$N/n1-key.pem")

# Not due yet: a one-shot run exits 0 and changes nothing.
"$KUBECA" renew "${renew_args[@]}" --force >/dev/null 2>&1
s1=$(serial_of "$N/n1.pem")
rc=0; out=$("$KUBECA" renew "${renew_args[@]}" 2>&1) || rc=$?
check "one-shot when not due: exit 0 ($out)" '[ "$rc" = 0 ] && [[ "$out" == *"not due"* ]]'
check "one-shot when not due: same serial" '[ "$(serial_of "$N/n1.pem")" = "$s1" ]'

# --rotate-key: a new key, still a matching pair.
"$KUBECA" renew "${renew_args[@]}" --force --rotate-key >/dev/null 2>&1
check "rotate-key changed the key" '[ "$(sha256sum < "$N/n1-key.pem")" != "$key_before" ]'
check "rotate-key pair matches" 'same_key "$N/n1.pem" "$N/n1-key.pem"'
check "key stays 0600" '[ "$(stat -L -c %a "$N/n1-key.pem")" = 600 ]'

# Killed at any point: the pair on disk always matches.
mismatches=0
for i in $(seq 1 25); do
  "$KUBECA" renew "${renew_args[@]}" --force --rotate-key >/dev/null 2>&1 &
  pid=$!
  sleep "0.0$((RANDOM % 9))$((RANDOM % 10))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  same_key "$N/n1.pem" "$N/n1-key.pem" || mismatches=$((mismatches + 1))
done
check "25 kills mid-renewal: pair always matches ($mismatches mismatches)" '[ "$mismatches" = 0 ]'
# A kill after the server answered leaves the pair in place superseded; the new key waits on
# disk (.n1-key.pem.pending) and the next run asks with it and gets its certificate back.
rc=0; s_before=$(serial_of "$N/n1.pem")
"$KUBECA" renew "${renew_args[@]}" --force --rotate-key >"$T/after.out" 2>&1 || rc=$?
check "rotate-key renewal works after the kills: exit $rc ($(cat "$T/after.out"))" '[ "$rc" = 0 ] && [ "$(serial_of "$N/n1.pem")" != "$s_before" ]'
check "no pending key left" '[ -z "$(find "$N" -name "*.pending")" ]'
rc=0; "$KUBECA" renew "${renew_args[@]}" --force >"$T/after.out" 2>&1 || rc=$?
check "renewal works after the kills: exit $rc ($(cat "$T/after.out"))" '[ "$rc" = 0 ] && same_key "$N/n1.pem" "$N/n1-key.pem" && openssl verify -CAfile "$D/pki/ca.pem" "$N/n1.pem" >/dev/null'
check "old versions pruned" '[ "$(ls "$N/.n1.pem.d" | grep -c "^v")" -le 2 ]'

# Refusals, each checked on the server: status in the audit log, nothing stored.
count_before=$(cert_count "$D")
# A certificate from another CA.
write_cluster "$T/other"
curl -s -o "$T/resp" --cacert "$D/pki/ca.pem" --cert "$T/other/pki/kubelet-n1.pem" --key "$T/other/pki/kubelet-n1-key.pem" \
  -d "$(sign_body "$T/other/pki/kubelet-n1.pem" 2>/dev/null || echo '{}')" "$URL/v1/renew" || true
make_csr "$T/r.csr" "/CN=system:node:n1"
sign_body "$T/r.csr" > "$T/r.json"
code=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" --cert "$T/other/pki/kubelet-n1.pem" --key "$T/other/pki/kubelet-n1-key.pem" --data-binary @"$T/r.json" "$URL/v1/renew")
check "another CA's certificate: 401 unknown_issuer (got $code $(resp_field code))" '[ "$code" = 401 ] && [ "$(resp_field code)" = unknown_issuer ]'
# A CSR asking for a different identity.
make_csr "$T/n2.csr" "/CN=system:node:n2"
sign_body "$T/n2.csr" > "$T/n2.json"
code=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" --cert "$N/n1.pem" --key "$N/n1-key.pem" --data-binary @"$T/n2.json" "$URL/v1/renew")
check "renew asking for another identity: 403 (got $code $(resp_field code))" '[ "$code" = 403 ] && [ "$(resp_field code)" = name_not_allowed ]'
# No client certificate at all.
code=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" --data-binary @"$T/r.json" "$URL/v1/renew")
check "renew without a certificate: 401" '[ "$code" = 401 ] && [ "$(resp_field code)" = client_certificate_required ]'
check "refusals stored nothing" '[ "$(cert_count "$D")" = "$count_before" ]'

# Revocation through the admin API, then the revoked certificate cannot renew.
"$KUBECA" kubeconfig --pki "$D/pki" --user admin --server "$URL" --out "$T/admin.conf" >/dev/null
cp "$N/n1.pem" "$T/revoked.pem"
"$KUBECA" revoke --kubeconfig "$T/admin.conf" --cert "$T/revoked.pem" --reason keyCompromise >/dev/null
rc=0; out=$("$KUBECA" renew "${renew_args[@]}" --force 2>&1) || rc=$?
check "revoked certificate cannot renew: exit 1 ($out)" '[ "$rc" = 1 ] && [[ "$out" == *certificate_revoked* ]]'
check "the revoked pair is kept on disk" 'same_key "$N/n1.pem" "$N/n1-key.pem"'

# The CRL: DER from the API, PEM with Accept, and from the CLI; openssl agrees.
curl -s --cacert "$D/pki/ca.pem" "$URL/v1/crl" -o "$T/crl.der"
check "CRL (DER) parses and lists the serial" 'openssl crl -inform der -in "$T/crl.der" -noout -text | tr "A-F" "a-f" | grep -q "$(serial_of "$T/revoked.pem")"'
check "CRL reason keyCompromise" 'openssl crl -inform der -in "$T/crl.der" -noout -text | grep -q "Key Compromise"'
check "CRL signed by the CA" 'openssl crl -inform der -in "$T/crl.der" -CAfile "$D/pki/ca.pem" -noout 2>&1 | grep -q "verify OK"'
curl -s --cacert "$D/pki/ca.pem" -H "Accept: application/x-pem-file" "$URL/v1/crl" -o "$T/crl.pem"
check "CRL as PEM" 'grep -q "BEGIN X509 CRL" "$T/crl.pem"'
check "CRL nextUpdate in the future" '[ "$(date -d "$(openssl crl -in "$T/crl.pem" -noout -nextupdate | cut -d= -f2)" +%s)" -gt "$(date +%s)" ]'
"$KUBECA" crl --kubeconfig "$T/admin.conf" --pem --out "$T/crl-cli.pem" >/dev/null
check "kubeca crl (service) lists it" 'openssl crl -in "$T/crl-cli.pem" -noout -text | tr "A-F" "a-f" | grep -q "$(serial_of "$T/revoked.pem")"'
"$KUBECA" crl --pki "$D/pki" --store "$STORE" --pem --out "$T/crl-local.pem" >/dev/null
check "kubeca crl (store) lists it" 'openssl crl -in "$T/crl-local.pem" -noout -text | tr "A-F" "a-f" | grep -q "$(serial_of "$T/revoked.pem")"'
cat "$D/pki/ca.pem" "$T/crl.pem" > "$T/ca-crl.pem"
check "openssl verify -crl_check fails the revoked one" '! openssl verify -crl_check -CAfile "$T/ca-crl.pem" "$T/revoked.pem" >/dev/null 2>&1'
TOKEN2=$("$KUBECA" token create --store "$STORE" --node n2 --ip 127.0.0.3 2>/dev/null)
"$KUBECA" request --server "$URL" --token "$TOKEN2" --ca-hash "$PIN" --out-dir "$T/n2" --name n2 >/dev/null 2>&1
check "openssl verify -crl_check passes a good one" 'openssl verify -crl_check -CAfile "$T/ca-crl.pem" "$T/n2/n2.pem" >/dev/null'
check "leaf names the CRL distribution point" 'openssl x509 -in "$T/n2/n2.pem" -noout -ext crlDistributionPoints | grep -q "URI:https://127.0.0.1:8443/v1/crl"'
"$KUBECA" revoke --pki "$D/pki" --store "$STORE" --serial "$(serial_of "$T/n2/n2.pem")" >/dev/null
curl -s --cacert "$D/pki/ca.pem" -H "Accept: application/x-pem-file" "$URL/v1/crl" -o "$T/crl2.pem"
check "a revocation by the CLI reaches the served CRL" 'openssl crl -in "$T/crl2.pem" -noout -text | tr "A-F" "a-f" | grep -q "$(serial_of "$T/n2/n2.pem")"'
code=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" --cert "$D/pki/admin.pem" --key "$D/pki/admin-key.pem" -d '{"serial":"00ff"}' "$URL/v1/revoke")
check "revoking an unknown serial: 404" '[ "$code" = 404 ]'

# Expiry in /metrics: unrevoked certificates only.
curl -s --cacert "$D/pki/ca.pem" "$URL/metrics" > "$T/metrics"
check "metrics: CA expiry" 'grep -q "^kubeca_ca_expiry_seconds " "$T/metrics"'
# The live count follows the store, the CLI's revocation of n2 above included.
live=$(sed -n 's/^kubeca_certificates_live{profile="kubelet"} //p' "$T/metrics")
stored=$(sqlite3 "$D/kubeca.db" "select count(*) from certificates where profile = 'kubelet' and status = 'good' and not_after > strftime('%s', 'now')")
check "metrics: live kubelet certificates ($live) are the store's good, unexpired ones ($stored)" '[ -n "$live" ] && [ "$live" = "$stored" ]'
check "metrics: no per-serial series" '! grep -q "serial=" "$T/metrics"'

# An expired certificate cannot renew: the node needs a new token.
T3=$("$KUBECA" token create --store "$STORE" --node n1 --ip 127.0.0.2 2>/dev/null)
"$KUBECA" request --server "$SHORT_URL" --token "$T3" --ca-hash "$PIN" --out-dir "$T/exp" --name n1 >/dev/null 2>&1
sleep 7
rc=0; out=$("$KUBECA" renew --server "$SHORT_URL" --ca "$T/exp/ca.pem" --cert "$T/exp/n1.pem" --key "$T/exp/n1-key.pem" --force 2>&1) || rc=$?
check "expired certificate: exit 1, says a new token is needed ($out)" '[ "$rc" = 1 ] && [[ "$out" == *"new token"* ]]'

# Offline renewal, as kubeadm's: same identities, new serials, kubeconfigs follow.
P=$D/pki
before_admin=$(serial_of "$P/admin.pem")
before_subject=$(openssl x509 -in "$P/apiserver.pem" -noout -subject -ext subjectAltName)
admin_key=$(sha256sum < "$P/admin-key.pem")
"$KUBECA" certs renew all --pki "$P" > "$T/renew.out"
check "certs renew all: admin serial changed" '[ "$(serial_of "$P/admin.pem")" != "$before_admin" ]'
check "certs renew all: apiserver identity kept" '[ "$(openssl x509 -in "$P/apiserver.pem" -noout -subject -ext subjectAltName)" = "$before_subject" ]'
check "certs renew all: key kept" '[ "$(sha256sum < "$P/admin-key.pem")" = "$admin_key" ]'
check "certs renew all: admin.conf rewritten" 'grep -q "rewrote admin.conf" "$T/renew.out"'
kubectl --kubeconfig "$P/admin.conf" config view --raw -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d > "$T/conf.pem"
check "admin.conf embeds the renewed certificate" '[ "$(serial_of "$T/conf.pem")" = "$(serial_of "$P/admin.pem")" ]'
for f in apiserver admin kube-proxy etcd/server front-proxy-client; do
  ca=$P/ca.pem
  case $f in etcd/*) ca=$P/etcd/ca.pem ;; front-proxy-client) ca=$P/front-proxy-ca.pem ;; esac
  check "renewed $f verifies" 'openssl verify -CAfile "$ca" "$P/$f.pem" >/dev/null'
done
"$KUBECA" certs renew scheduler --pki "$P" --rotate-key >/dev/null
check "certs renew NAME --rotate-key: pair matches" 'same_key "$P/scheduler.pem" "$P/scheduler-key.pem"'
rc=0; "$KUBECA" certs renew nothing-here --pki "$P" >/dev/null 2>&1 || rc=$?
check "certs renew of an unknown name: exit 2" '[ "$rc" = 2 ]'
check "certs list still reads the folder" '"$KUBECA" certs list --pki "$P" --json | python3 -c "import json,sys; d=json.load(sys.stdin); n=len(d)+sum(len(c[\"copies\"]) for c in d); assert n > 20, n"'
finish

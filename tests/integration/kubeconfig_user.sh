#!/usr/bin/env bash
# `kubeca kubeconfig user`: a person's short-lived credential (profile user: CN = name,
# O = each group, clientAuth only, valid for --ttl), offline with the CA key and through a
# real `kubeca serve` for an admin without it (POST /v1/users, admin only); recorded in the
# store, revocable, audited with the admin who asked; bad values refused and nothing made.
source "$(dirname "$0")/serve_lib.sh"
unset KUBECA_PKI KUBECA_CONFIG KUBECA_KUBECONFIG KUBECA_STORE KUBECA_SERVER
D=$T/c
write_cluster "$D"
start_server "$D"
API=https://127.0.0.1:6443
DB=$D/kubeca.db

# user_cert CONF OUT: the client certificate a kubeconfig embeds, as kubectl reads it.
user_cert() {
  kubectl config view --kubeconfig "$1" --raw -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d >"$2"
  kubectl config view --kubeconfig "$1" --raw -o jsonpath='{.users[0].user.client-key-data}' | base64 -d >"$2.key"
}
# RFC 2253 order: the last RDN first, so O=devs then O=qa in the certificate reads CN,O=qa,O=devs.
subject() { openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }
eku() { openssl x509 -in "$1" -noout -ext extendedKeyUsage | sed -n 2p | sed 's/^ *//'; }
epoch() { date -d "$(openssl x509 -in "$1" -noout "-$2" | cut -d= -f2)" +%s; }
# check_user PEM SUBJECT TTL_SECONDS: subject, usages, validity, chain.
check_user() {
  local pem=$1 subj=$2 ttl=$3 now
  now=$(date +%s)
  check "$pem: subject $(subject "$pem")" '[ "$(subject "$pem")" = "$subj" ]'
  check "$pem: EKU clientAuth only ($(eku "$pem"))" '[ "$(eku "$pem")" = "TLS Web Client Authentication" ]'
  check "$pem: not a CA" 'openssl x509 -in "$pem" -noout -ext basicConstraints | grep -q "CA:FALSE"'
  check "$pem: no SAN" '! openssl x509 -in "$pem" -noout -ext subjectAltName 2>/dev/null | grep -q .'
  local left=$(($(epoch "$pem" enddate) - now))
  check "$pem: expires in the ttl ($left s, want $ttl)" '[ "$left" -le "$ttl" ] && [ "$left" -ge $((ttl - 120)) ]'
  check "$pem: notBefore five minutes back" '[ $(($(epoch "$pem" enddate) - $(epoch "$pem" startdate))) -eq $((ttl + 300)) ]'
  check "$pem: chains to the cluster CA" 'openssl verify -CAfile "$D/pki/ca.pem" "$pem" >/dev/null'
  check "$pem: its key is the kubeconfig's" 'same_key "$pem" "$pem.key"'
}

# --- Offline, with the CA key --------------------------------------------------------------
out=$("$KUBECA" kubeconfig user --name alice --group devs --group qa --ttl 24h --server "$API" \
  --out "$T/alice.conf" --pki "$D/pki" --config "$D/cluster.yaml")
check "offline: says what it wrote ($out)" '[[ "$out" == "wrote $T/alice.conf for alice (groups devs,qa) at $API"* ]]'
check "alice.conf is 0600" '[ "$(stat -c %a "$T/alice.conf")" = 600 ]'
user_cert "$T/alice.conf" "$T/alice.pem"
check_user "$T/alice.pem" "CN=alice,O=qa,O=devs" 86400
check "kubectl: the server" '[ "$(kubectl config view --kubeconfig "$T/alice.conf" -o jsonpath="{.clusters[0].cluster.server}")" = "$API" ]'
check "kubectl: the user" '[ "$(kubectl config view --kubeconfig "$T/alice.conf" -o jsonpath="{.contexts[0].context.user}")" = alice ]'
check "kubectl: the CA is the cluster's" '[ "$(kubectl config view --kubeconfig "$T/alice.conf" --raw -o jsonpath="{.clusters[0].cluster.certificate-authority-data}" | base64 -d)" = "$(cat "$D/pki/ca.pem")" ]'
A_SERIAL=$(serial_of "$T/alice.pem")
check "offline: recorded in signer.store as user" '[ "$(sqlite3 "$DB" "select profile||\" \"||requester||\" \"||status from certificates where serial=\"$A_SERIAL\"")" = "user kubeconfig-user good" ]'
check "offline: names the CRL" 'openssl x509 -in "$T/alice.pem" -noout -ext crlDistributionPoints | grep -q "https://127.0.0.1:8443/v1/crl"'

# Revocable like any certificate: the served CRL lists it afterwards.
"$KUBECA" revoke --serial "$A_SERIAL" --pki "$D/pki" --store "sqlite:$DB" >/dev/null
curl -s --cacert "$D/pki/ca.pem" -H 'Accept: application/x-pem-file' "$URL/v1/crl" >"$T/crl.pem"
check "alice revoked: the CRL refuses her" '! openssl verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$D/pki/ca.pem" "$T/alice.pem" >/dev/null 2>&1'
check "and accepts another" 'openssl verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$D/pki/ca.pem" "$D/pki/admin.pem" >/dev/null'

# system:masters needs --allow-privileged.
bad() { # bad WHAT NEEDLE ARGS...: exit 2, one kubeca: line naming NEEDLE, no file, no record
  local what=$1 needle=$2 rc=0 err before
  shift 2
  before=$(sqlite3 "$DB" "select count(*) from certificates")
  err=$("$KUBECA" kubeconfig user "$@" 2>&1 >/dev/null) || rc=$?
  check "$what: exit 2 ($rc)" '[ "$rc" -eq 2 ]'
  check "$what: one line naming $needle ($err)" '[[ "$err" == "kubeca: "*"$needle"* ]] && [ "$(wc -l <<<"$err")" -eq 1 ]'
  check "$what: nothing written" '[ ! -e "$T/bad.conf" ]'
  check "$what: nothing recorded" '[ "$(sqlite3 "$DB" "select count(*) from certificates")" = "$before" ]'
}
ok=(--server "$API" --pki "$D/pki" --config "$D/cluster.yaml" --out "$T/bad.conf")
bad "system:masters" "--allow-privileged" --name root --group system:masters "${ok[@]}"
bad "another system: group" "--allow-privileged" --name n --group system:nodes "${ok[@]}"
bad "a system: name" "--allow-privileged" --name system:node:n1 "${ok[@]}"
bad "an empty name" "--name" --name "" "${ok[@]}"
bad "a name with a comma" "--name" --name "a,O=system:masters" "${ok[@]}"
bad "a name with a newline" "--name" --name "$(printf 'a\nb')" "${ok[@]}"
bad "a name of 65 characters" "--name" --name "$(printf 'a%.0s' $(seq 65))" "${ok[@]}"
bad "a group with a space" "--group" --name bob --group "dev ops" "${ok[@]}"
bad "a group given twice" "given twice" --name bob --group devs --group devs "${ok[@]}"
bad "ttl not a duration" "--ttl" --name bob --ttl soon "${ok[@]}"
bad "ttl zero" "--ttl" --name bob --ttl 0s "${ok[@]}"
bad "ttl under a minute" "--ttl" --name bob --ttl 30s "${ok[@]}"
bad "ttl over cert_validity" "pki.cert_validity" --name bob --ttl 9000h "${ok[@]}"
bad "server not https" "--server" --name bob --server http://x --pki "$D/pki" --out "$T/bad.conf"
bad "unknown key algorithm" "--key-algorithm" --name bob --key-algorithm rsa-1024 "${ok[@]}"
bad "--out a device" "--out" --name bob --server "$API" --pki "$D/pki" --out /dev/null
bad "no CA in --pki" "--pki: $T/nowhere/ca.pem does not exist" --name bob --server "$API" --pki "$T/nowhere" --out "$T/bad.conf"
bad "--pki and --kubeconfig" "not both" --name bob --server "$API" --pki "$D/pki" --kubeconfig "$T/x.conf" --out "$T/bad.conf"
echo keep >"$T/kept.conf"
bad "--out exists" "--force" --name bob --server "$API" --pki "$D/pki" --out "$T/kept.conf"
check "--out exists: kept" '[ "$(cat "$T/kept.conf")" = keep ]'
out=$("$KUBECA" kubeconfig user --name root --group system:masters --allow-privileged --ttl 1h \
  --server "$API" --pki "$D/pki" --out "$T/root.conf")
user_cert "$T/root.conf" "$T/root.pem"
check_user "$T/root.pem" "CN=root,O=system:masters" 3600
check "a user is not a token profile" '! "$KUBECA" token create --store "sqlite:$DB" --node n1 --profile user --allow-privileged 2>"$T/err" && grep -q "kubeca kubeconfig user" "$T/err"'
check "nor an issue profile" '! "$KUBECA" issue user --pki "$D/pki" --name x --out "$T/x" 2>"$T/err" && grep -q "kubeca kubeconfig user" "$T/err"'

# --- Through the signing service, as an admin without the CA key --------------------------
"$KUBECA" kubeconfig --pki "$D/pki" --user admin --server "$URL" --out "$T/admin.conf" >/dev/null
ADMIN_SERIAL=$(serial_of "$D/pki/admin.pem")
# KUBECA_PKI points nowhere: nothing of the PKI folder is read.
out=$(KUBECA_PKI=$T/no-pki "$KUBECA" kubeconfig user --name bob --group devs --ttl 2h \
  --server "$API" --out "$T/bob.conf" --kubeconfig "$T/admin.conf")
check "service: signed there ($out)" '[[ "$out" == *"signed by the signing service"* ]]'
user_cert "$T/bob.conf" "$T/bob.pem"
check_user "$T/bob.pem" "CN=bob,O=devs" 7200
B_SERIAL=$(serial_of "$T/bob.pem")
check "service: recorded, requested by the admin" '[ "$(sqlite3 "$DB" "select profile||\" \"||requester from certificates where serial=\"$B_SERIAL\"")" = "user admin:$ADMIN_SERIAL" ]'
line=$(grep "\"serial\":\"$B_SERIAL\"" "$D/audit.log" || true)
check "audit: user-sign by the admin ($line)" 'python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert d[\"action\"]==\"user-sign\" and d[\"result\"]==\"issued\" and d[\"by\"].startswith(\"O=system:masters, CN=kubernetes-admin (serial \") and sys.argv[2] in d[\"by\"], d" "$line" "$ADMIN_SERIAL"'
check "service: the client refuses system:masters first" '! "$KUBECA" kubeconfig user --name r --group system:masters --server "$API" --out "$T/bad.conf" --kubeconfig "$T/admin.conf" 2>/dev/null'

# The endpoint itself, with curl.
make_csr "$T/u.csr" "/CN=carol"
users() { # users CERT KEY BODY: POST /v1/users; prints the status, the answer in $T/resp
  local auth=()
  [ -n "$1" ] && auth=(--cert "$1" --key "$2")
  curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" "${auth[@]}" \
    -H 'Content-Type: application/json' --data-binary "$3" "$URL/v1/users"
}
body() { python3 -c 'import json,sys; d={"csr": open(sys.argv[1]).read()}; d.update(json.loads(sys.argv[2])); print(json.dumps(d))' "$T/u.csr" "$1"; }
got=$(users "$D/pki/kubelet-n1.pem" "$D/pki/kubelet-n1-key.pem" "$(body '{"name": "carol"}')")
check "a node's certificate: 403 admin_required ($got)" '[ "$got" = 403 ] && [ "$(resp_field code)" = admin_required ]'
got=$(users "$T/bob.pem" "$T/bob.pem.key" "$(body '{"name": "carol"}')")
check "a user's certificate: 403 admin_required ($got)" '[ "$got" = 403 ] && [ "$(resp_field code)" = admin_required ]'
got=$(users "" "" "$(body '{"name": "carol"}')")
check "no certificate: 401 ($got)" '[ "$got" = 401 ] && [ "$(resp_field code)" = client_certificate_required ]'
A=("$D/pki/admin.pem" "$D/pki/admin-key.pem")
got=$(users "${A[@]}" "$(body '{"name": "carol", "groups": ["system:masters"]}')")
check "system:masters without allow_privileged: 403 ($got)" '[ "$got" = 403 ] && [ "$(resp_field code)" = privileged_profile ]'
got=$(users "${A[@]}" "$(body '{"name": "carol", "ttl": "100000h"}')")
check "ttl too long: 400 ($got)" '[ "$got" = 400 ] && [ "$(resp_field code)" = malformed_request ]'
got=$(users "${A[@]}" "$(body '{"name": "carol", "groups": "devs"}')")
check "groups not a list: 400 ($got)" '[ "$got" = 400 ] && [ "$(resp_field code)" = malformed_request ]'
got=$(users "${A[@]}" "$(body '{"name": "dave"}')")
check "a CN the request does not grant: 403 ($got)" '[ "$got" = 403 ] && [ "$(resp_field code)" = name_not_allowed ]'
got=$(users "${A[@]}" "$(body '{"name": "carol", "groups": ["system:masters"], "allow_privileged": true, "ttl": "10m"}')")
check "with allow_privileged: 201 ($got)" '[ "$got" = 201 ]'
resp_field certificate >"$T/carol.pem"
check "carol: O=system:masters" '[ "$(subject "$T/carol.pem")" = "CN=carol,O=system:masters" ]'
# A user certificate does not renew itself.
make_csr "$T/r.csr" "/CN=bob"
curl -s -o "$T/resp" --cacert "$D/pki/ca.pem" --cert "$T/bob.pem" --key "$T/bob.pem.key" \
  -H 'Content-Type: application/json' --data-binary "$(python3 -c 'import json,sys; print(json.dumps({"csr": open(sys.argv[1]).read()}))' "$T/r.csr")" "$URL/v1/renew"
check "a user certificate does not renew" '[ "$(resp_field code)" = profile_not_allowed ]'
# Revoked through the service like any other.
"$KUBECA" revoke --serial "$B_SERIAL" --kubeconfig "$T/admin.conf" >/dev/null
check "bob revoked in the store" '[ "$(sqlite3 "$DB" "select status from certificates where serial=\"$B_SERIAL\"")" = revoked ]'
curl -s --cacert "$D/pki/ca.pem" "$URL/metrics" >"$T/metrics"
check "metrics: /v1/users counted" 'grep -q "^kubeca_requests_total{endpoint=\"/v1/users\",profile=\"user\",result=\"ok\"} 2$" "$T/metrics"'
check "metrics: the refusal counted" 'grep -q "^kubeca_requests_total{endpoint=\"/v1/users\",profile=\"user\",result=\"admin_required\"} 2$" "$T/metrics"'
finish

#!/usr/bin/env bash
# Renewal follows today's policy against the real server: only the newest certificate of an
# identity renews (an old one gets 403 before any 429), renewals are limited per identity
# (429 + Retry-After, counted in /metrics), validity comes from the running config, the
# profile from the store; the lost-node procedure of the operator guide leaves nothing the
# node held able to renew or pass `openssl verify -crl_check`; CRL Numbers only go up, across
# revocations and restarts, and a revocation date never moves.
source "$(dirname "$0")/serve_lib.sh"
D=$T/c
write_cluster "$D"
sed -i 's|^signer: {|signer: {renew_limit: 3, renew_window: 1h, |' "$D/cluster.yaml"
STORE="sqlite:$D/kubeca.db"
PIN=$(pin "$D")
CA=$D/pki/ca.pem
start() {  # start [CONFIG]: serve, and an admin kubeconfig for it
  SERVE_CONFIG=${1:-$D/cluster.yaml} start_server "$D"
  "$KUBECA" kubeconfig --pki "$D/pki" --user admin --server "$URL" --out "$T/admin.conf" --force >/dev/null
}
start

request() {  # request NODE IP DIR
  local tok
  tok=$("$KUBECA" token create --store "$STORE" --node "$1" --ip "$2" 2>/dev/null)
  "$KUBECA" request --server "$URL" --token "$tok" --ca-hash "$PIN" --out-dir "$3" --name "$1" >/dev/null 2>&1
}
renew_force() {  # renew_force DIR NAME: exit status of a forced renewal
  "$KUBECA" renew --server "$URL" --ca "$1/ca.pem" --cert "$1/$2.pem" --key "$1/$2-key.pem" --force >"$T/renew.out" 2>&1
}
# post_renew CERT KEY CSR: the status of POST /v1/renew; the answer in $T/resp, headers in $T/hdr.
post_renew() {
  sign_body "$3" > "$T/renew.json"
  curl -s -D "$T/hdr" -o "$T/resp" -w '%{http_code}' --cacert "$CA" --cert "$1" --key "$2" \
    --data-binary @"$T/renew.json" "$URL/v1/renew"
}
end_days() { echo $(( ($(date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) )); }

# --- Only the newest certificate renews; a retry with the same key gets the same answer.
N=$T/n1
request n1 127.0.0.2 "$N"
cp "$N/n1.pem" "$T/a.pem"; cp "$N/n1-key.pem" "$T/a-key.pem"
renew_force "$N" n1
b=$(serial_of "$N/n1.pem")
check "first renewal: a new serial" '[ "$b" != "$(serial_of "$T/a.pem")" ]'
make_csr "$T/new.csr" "/CN=system:node:n1"
code=$(post_renew "$T/a.pem" "$T/a-key.pem" "$T/new.csr")
check "superseded certificate, new key: 403 certificate_superseded (got $code $(resp_field code))" \
  '[ "$code" = 403 ] && [ "$(resp_field code)" = certificate_superseded ]'
openssl req -new -key "$T/a-key.pem" -subj "/CN=system:node:n1" -out "$T/same.csr" 2>/dev/null
code=$(post_renew "$T/a.pem" "$T/a-key.pem" "$T/same.csr")
check "superseded certificate retried with its key: the certificate it got ($code)" \
  '[ "$code" = 201 ] && [ "$(resp_field serial)" = "$b" ]'
count=$(sqlite3 "$D/kubeca.db" "select count(*) from certificates where subject like '%node:n1' and requester != 'init'")
check "the retry stored nothing new ($count certificates of n1)" '[ "$count" = 2 ]'

# --- The rate limit: 3 renewals per identity per hour here.
renew_force "$N" n1
renew_force "$N" n1
newest=$N/n1.pem
code=$(post_renew "$newest" "$N/n1-key.pem" "$T/same.csr")
code=$(post_renew "$newest" "$N/n1-key.pem" <(openssl req -new -key "$N/n1-key.pem" -subj / 2>/dev/null))
retry=$(tr -d '\r' < "$T/hdr" | sed -n 's/^[Rr]etry-[Aa]fter: *//p')
check "fourth renewal within the hour: 429 renew_rate_limited (got $code $(resp_field code))" \
  '[ "$code" = 429 ] && [ "$(resp_field code)" = renew_rate_limited ]'
check "429 carries Retry-After within the window ($retry)" '[ -n "$retry" ] && [ "$retry" -gt 0 ] && [ "$retry" -le 3601 ]'
code=$(post_renew "$T/a.pem" "$T/a-key.pem" "$T/new.csr")
check "an old certificate still gets 403, not 429 (got $code)" '[ "$code" = 403 ]'
curl -s --cacert "$CA" "$URL/metrics" > "$T/metrics"
check "/metrics counts the refusal" 'grep -q "kubeca_requests_total{.*renew.*renew_rate_limited.*} [1-9]" "$T/metrics"'
request n2 127.0.0.3 "$T/n2"
check "another identity has its own budget" 'renew_force "$T/n2" n2'

# --- Validity from today's config, after a restart with cert_validity: 1h.
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
sed 's/pki: {key_algorithm: ecdsa-p256}/pki: {key_algorithm: ecdsa-p256, cert_validity: 1h}/' \
  "$D/cluster.yaml" > "$D/hour.yaml"
grep -q "cert_validity: 1h" "$D/hour.yaml"
start "$D/hour.yaml"
left=$(end_days "$N/n1.pem")
check "before: a year left ($left s)" '[ "$left" -gt 30000000 ]'
renew_force "$N" n1
left=$(end_days "$N/n1.pem")
check "renewed under cert_validity: 1h: at most an hour left ($left s)" '[ "$left" -le 3600 ] && [ "$left" -gt 3000 ]'

# --- The profile comes from the store (or the subject): admin and apiserver stay themselves.
for name in admin apiserver; do
  mkdir -p "$T/$name"
  cp "$D/pki/$name.pem" "$D/pki/$name-key.pem" "$CA" "$T/$name/"
  renew_force "$T/$name" "$name"
  s=$(serial_of "$T/$name/$name.pem")
  p=$(sqlite3 "$D/kubeca.db" "select profile from certificates where serial = '$s'")
  check "renewed $name recorded as $name (got '$p')" '[ "$p" = "$name" ]'
  renew_force "$T/$name" "$name"
  s=$(serial_of "$T/$name/$name.pem")
  p=$(sqlite3 "$D/kubeca.db" "select profile from certificates where serial = '$s'")
  check "renewed again, still $name (got '$p')" '[ "$p" = "$name" ]'
done

# --- CRL Numbers: strictly increasing across revocations and a restart.
# crl_number [FILE]: the CRL Number in decimal, of FILE or of what the service serves now.
crl_number() {
  local f=${1:-$T/crl.pem}
  [ -n "${1:-}" ] || curl -s --cacert "$CA" -H "Accept: application/x-pem-file" "$URL/v1/crl" -o "$f"
  printf '%d' "$(openssl crl -in "$f" -noout -crlnumber | cut -d= -f2)"
}
n0=$(crl_number)
check "served CRL is kept: same number without a change" '[ "$(crl_number)" = "$n0" ]'

# --- The lost node, as the operator guide says: n2 held a certificate and its renewal.
cp "$T/n2/n2.pem" "$T/n2-old.pem"
renew_force "$T/n2" n2
# What the store holds for n2, unexpired and good: its token's certificate, the renewal, and
# the kubelet certificate init made for it.
held=$(sqlite3 "$D/kubeca.db" "select count(*) from certificates where node='n2' and status='good' and not_after > strftime('%s','now')")
"$KUBECA" revoke --node n2 --reason keyCompromise --kubeconfig "$T/admin.conf" > "$T/revoke.out"
check "revoke --node lists every certificate it revoked ($(wc -l < "$T/revoke.out"))" \
  '[ "$held" -ge 3 ] && [ "$(grep -c "^revoked " "$T/revoke.out")" = "$held" ]'
"$KUBECA" crl --out "$T/lost.pem" --pem --kubeconfig "$T/admin.conf" >/dev/null
cat "$CA" "$T/lost.pem" > "$T/ca-crl.pem"
for f in "$T/n2-old.pem" "$T/n2/n2.pem"; do
  check "$(basename "$f") fails openssl verify -crl_check" '! openssl verify -crl_check -CAfile "$T/ca-crl.pem" "$f" >/dev/null 2>&1'
  check "$(basename "$f") still verifies without the CRL" 'openssl verify -CAfile "$CA" "$f" >/dev/null'
done
rc=0; renew_force "$T/n2" n2 || rc=$?
check "the lost node cannot renew: exit 1, certificate_revoked ($(cat "$T/renew.out"))" '[ "$rc" = 1 ] && grep -q certificate_revoked "$T/renew.out"'
code=$(post_renew "$T/n2-old.pem" "$T/n2/n2-key.pem" <(openssl req -new -key "$T/n2/n2-key.pem" -subj / 2>/dev/null))
check "nor its older certificate: 401 ($code)" '[ "$code" = 401 ]'
check "n1 still passes the CRL check" 'openssl verify -crl_check -CAfile "$T/ca-crl.pem" "$N/n1.pem" >/dev/null'
n1=$(crl_number)
check "CRL Number went up on revocation ($n0 -> $n1)" '[ "$n1" -gt "$n0" ]'
date1=$(openssl crl -in "$T/crl.pem" -noout -text | grep -A1 "Serial Number: $(serial_of "$T/n2-old.pem" | tr a-f A-F)" | sed -n 's/.*Revocation Date: //p')

# revoke --node against the store, as the CLI on the master does it.
request n3 127.0.0.4 "$T/n3"
sleep 1
"$KUBECA" revoke --node n3 --pki "$D/pki" --store "$STORE" > "$T/revoke3.out"
check "revoke --node (store) revoked n3's certificate" 'grep -q "^revoked $(serial_of "$T/n3/n3.pem")" "$T/revoke3.out"'
n2=$(crl_number)
check "a CLI revocation reaches the served CRL with a higher number ($n1 -> $n2)" \
  '[ "$n2" -gt "$n1" ] && openssl crl -in "$T/crl.pem" -noout -text | tr A-F a-f | grep -q "$(serial_of "$T/n3/n3.pem")"'
date2=$(openssl crl -in "$T/crl.pem" -noout -text | grep -A1 "Serial Number: $(serial_of "$T/n2-old.pem" | tr a-f A-F)" | sed -n 's/.*Revocation Date: //p')
check "a revocation date does not move ($date1 / $date2)" '[ -n "$date1" ] && [ "$date1" = "$date2" ]'
rc=0; "$KUBECA" revoke --node nobody --kubeconfig "$T/admin.conf" >/dev/null 2>&1 || rc=$?
check "revoke --node of a node with nothing: exit 1" '[ "$rc" = 1 ]'
rc=0; "$KUBECA" revoke --node n2 --serial 00ff --kubeconfig "$T/admin.conf" >/dev/null 2>&1 || rc=$?
check "revoke --node with --serial: exit 2" '[ "$rc" = 2 ]'

kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
start
n3=$(crl_number)
check "after a restart the CRL Number is higher still ($n2 -> $n3)" '[ "$n3" -gt "$n2" ]'
"$KUBECA" crl --pki "$D/pki" --store "$STORE" --pem --out "$T/cli.pem" >/dev/null
n4=$(crl_number "$T/cli.pem")
check "kubeca crl from the store takes the next number ($n3 -> $n4)" '[ "$n4" -gt "$n3" ]'
finish

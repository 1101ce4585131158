#!/usr/bin/env bash
# Every refusal of POST /v1/sign against the real server: status, error code, and that
# nothing was issued or stored.
source "$(dirname "$0")/serve_lib.sh"
D=$T/c
write_cluster "$D"
start_server "$D" --max-failures 5
STORE="sqlite:$D/kubeca.db"
token() { "$KUBECA" token create --store "$STORE" "$@" 2>/dev/null; }
TOKEN=$(token --node n1 --ip 127.0.0.2 --uses 5)

# refused NAME STATUS CODE TOKEN CSR [PROFILE]: the request is refused and nothing is stored.
refused() {
  local name=$1 status=$2 code=$3 tok=$4
  shift 4
  sign_body "$@" > "$T/body"
  local before got after
  before=$(cert_count "$D")
  got=$(post_sign "$D" "$tok" "$T/body")
  after=$(cert_count "$D")
  check "$name: status $got, want $status ($(cat "$T/resp"))" '[ "$got" = "$status" ]'
  check "$name: code $(resp_field code), want $code" '[ "$(resp_field code)" = "$code" ]'
  check "$name: error message present" '[ -n "$(resp_field error)" ]'
  check "$name: stored $before -> $after" '[ "$before" = "$after" ]'
}

echo "not a csr" > "$T/garbage.csr"
refused "malformed PEM" 400 malformed_csr "$TOKEN" "$T/garbage.csr"
printf -- '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' > "$T/bad.csr"
refused "PEM with garbage inside" 400 malformed_csr "$TOKEN" "$T/bad.csr"

make_csr "$T/good.csr" "/CN=system:node:n1"
# Flip the last byte of the signature: the structure stays valid, the signature does not.
openssl req -in "$T/good.csr" -outform der -out "$T/good.der"
python3 - "$T/good.der" "$T/tampered.der" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[-1] ^= 0x01
open(sys.argv[2], 'wb').write(b)
PY
openssl req -inform der -in "$T/tampered.der" -out "$T/tampered.csr" 2>/dev/null
refused "bad self-signature" 400 bad_csr_signature "$TOKEN" "$T/tampered.csr"

make_csr "$T/rsa1024.csr" "/CN=system:node:n1" -newkey rsa:1024
refused "RSA-1024" 403 weak_key "$TOKEN" "$T/rsa1024.csr"
make_csr "$T/p521.csr" "/CN=system:node:n1" -newkey ec -pkeyopt ec_paramgen_curve:P-521
refused "curve P-521" 403 weak_key "$TOKEN" "$T/p521.csr"
make_csr "$T/k1.csr" "/CN=system:node:n1" -newkey ec -pkeyopt ec_paramgen_curve:secp256k1
refused "curve secp256k1" 403 weak_key "$TOKEN" "$T/k1.csr"
# An exponent OpenSSL makes on request, below the 65537 the policy asks for.
make_csr "$T/e3.csr" "/CN=system:node:n1" -newkey rsa:2048 -pkeyopt rsa_keygen_pubexp:3
refused "RSA e=3" 403 weak_key "$TOKEN" "$T/e3.csr"
make_csr "$T/ca.csr" "/CN=system:node:n1" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -addext "basicConstraints=critical,CA:TRUE"
refused "CA:TRUE" 403 ca_not_allowed "$TOKEN" "$T/ca.csr"
make_csr "$T/masters.csr" "/O=system:masters/CN=system:node:n1"
refused "O=system:masters" 403 group_not_allowed "$TOKEN" "$T/masters.csr"
make_csr "$T/other.csr" "/CN=system:node:n2"
refused "another node's name" 403 name_not_allowed "$TOKEN" "$T/other.csr"
make_csr "$T/otherdns.csr" "/CN=system:node:n1" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -addext "subjectAltName=DNS:n2"
refused "another node's DNS name" 403 name_not_allowed "$TOKEN" "$T/otherdns.csr"
make_csr "$T/otherip.csr" "/CN=system:node:n1" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -addext "subjectAltName=IP:127.0.0.3"
refused "another node's IP" 403 name_not_allowed "$TOKEN" "$T/otherip.csr"
refused "another profile" 403 profile_not_allowed "$TOKEN" "$T/good.csr" admin

# Tokens: wrong, expired, revoked, used up.
refused "wrong secret" 401 token_invalid "${TOKEN%%.*}.0000000000000000" "$T/good.csr"
refused "malformed token" 401 token_malformed "not-a-token" "$T/good.csr"
EXPIRING=$(token --node n1 --ip 127.0.0.2 --ttl 1s)
REVOKED=$(token --node n1 --ip 127.0.0.2)
"$KUBECA" token revoke "${REVOKED%%.*}" --store "$STORE" >/dev/null
refused "revoked token" 401 token_revoked "$REVOKED" "$T/good.csr"
ONCE=$(token --node n1 --ip 127.0.0.2 --uses 1)
sign_body "$T/good.csr" > "$T/body"
got=$(post_sign "$D" "$ONCE" "$T/body")
check "one-use token: first use 201, got $got" '[ "$got" = 201 ]'
# Used up: another key is refused (the same key gets its certificate again: request_crash.sh).
make_csr "$T/good2.csr" "/CN=system:node:n1"
refused "used-up token" 401 token_used_up "$ONCE" "$T/good2.csr"
sleep 1.2
refused "expired token" 401 token_expired "$EXPIRING" "$T/good.csr"

# What the CSR asks for never reaches the certificate.
make_csr "$T/greedy.csr" "/CN=system:node:n1" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -addext "keyUsage=critical,keyCertSign,cRLSign" -addext "extendedKeyUsage=codeSigning"
sign_body "$T/greedy.csr" > "$T/body"
got=$(post_sign "$D" "$TOKEN" "$T/body")
check "greedy CSR still signed (201), got $got" '[ "$got" = 201 ]'
resp_field certificate > "$T/greedy.pem"
text=$(openssl x509 -in "$T/greedy.pem" -noout -text)
check "no keyCertSign from the CSR" '! grep -q "Certificate Sign" <<<"$text"'
check "no codeSigning from the CSR" '! grep -q "Code Signing" <<<"$text"'
check "profile EKU" 'grep -q "TLS Web Server Authentication, TLS Web Client Authentication" <<<"$text"'
check "subject from the token" '[ "$(openssl x509 -in "$T/greedy.pem" -noout -subject)" = "subject=O = system:nodes, CN = system:node:n1" ]'
check "CA:FALSE" 'grep -q "CA:FALSE" <<<"$text"'
check "chain verifies" 'openssl verify -CAfile "$D/pki/ca.pem" "$T/greedy.pem" >/dev/null'

# Bodies: too large, chunked.
head -c 70000 /dev/zero | tr '\0' a > "$T/big"
got=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" -H "Authorization: Bearer $TOKEN" --data-binary @"$T/big" "$URL/v1/sign")
check "body over 64 KiB: 413, got $got" '[ "$got" = 413 ] && [ "$(resp_field code)" = body_too_large ]'
got=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" -H "Authorization: Bearer $TOKEN" -H "Transfer-Encoding: chunked" --data-binary @"$T/body" "$URL/v1/sign")
check "chunked body: 411, got $got" '[ "$got" = 411 ] && [ "$(resp_field code)" = length_required ]'
got=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" "$URL/healthz")
check "a 20 kB header is refused, got $got" '[ "$got" != 200 ]'

# Admin endpoints: no certificate 401, a node's certificate 403, the admin's 200.
for ep in "GET /v1/tokens" "GET /v1/certificates" "POST /v1/tokens" "DELETE /v1/tokens/abcdef" "POST /v1/revoke"; do
  set -- $ep
  got=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" -X "$1" -d '{}' "$URL$2")
  check "$ep without a certificate: 401, got $got" '[ "$got" = 401 ]'
  got=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" --cert "$D/pki/kubelet-n1.pem" --key "$D/pki/kubelet-n1-key.pem" -X "$1" -d '{}' "$URL$2")
  check "$ep with a node certificate: 403, got $got" '[ "$got" = 403 ] && [ "$(resp_field code)" = admin_required ]'
done
got=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" --cert "$D/pki/admin.pem" --key "$D/pki/admin-key.pem" "$URL/v1/tokens")
check "GET /v1/tokens as admin: 200, got $got" '[ "$got" = 200 ]'
got=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" -X PUT "$URL/v1/ca")
check "PUT /v1/ca: 405" '[ "$got" = 405 ] && [ "$(resp_field code)" = method_not_allowed ]'
got=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$D/pki/ca.pem" "$URL/v1/nothing")
check "unknown path: 404" '[ "$got" = 404 ] && [ "$(resp_field code)" = not_found ]'

# Failed attempts with one token id from one address end in 429, before the token is looked at.
codes=""
for _ in 1 2 3 4 5 6; do
  codes="$codes $(post_sign "$D" "${TOKEN%%.*}.1111111111111111" "$T/body")"
done
check "repeated failures end in 429 ($codes)" '[[ "$codes" == *429 ]]'
got=$(post_sign "$D" "$TOKEN" "$T/body")
check "even the right secret waits once its token id is blocked here: 429, got $got" '[ "$got" = 429 ]'

# The audit log: one JSON line per decision; no secret anywhere.
check "audit lines parse as JSON" 'python3 -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$D/audit.log"'
check "audit log records refusals" '[ "$(grep -c "\"result\":\"refused\"" "$D/audit.log")" -ge 15 ]'
check "audit log records issuances" '[ "$(grep -c "\"result\":\"issued\"" "$D/audit.log")" -eq 2 ]'
curl -s --cacert "$D/pki/ca.pem" "$URL/metrics" > "$T/metrics"
for secret in "${TOKEN#*.}" "${ONCE#*.}" "${REVOKED#*.}" "${EXPIRING#*.}"; do
  check "secret absent from the audit log" '! grep -q "$secret" "$D/audit.log"'
  check "secret absent from the server log" '! grep -q "$secret" "$D/serve.err"'
  check "secret absent from metrics" '! grep -q "$secret" "$T/metrics"'
  check "secret absent from the store" '! sqlite3 "$D/kubeca.db" .dump | grep -q "$secret"'
done
check "metrics: latency histogram" 'grep -q "kubeca_request_duration_seconds_bucket{endpoint=\"/v1/sign\",le=\"+Inf\"}" "$T/metrics"'
check "metrics: refusals by code" 'grep -q "kubeca_requests_total{endpoint=\"/v1/sign\",profile=\"kubelet\",result=\"weak_key\"} 4" "$T/metrics"'
check "metrics: CA expiry" 'grep -Eq "^kubeca_ca_expiry_seconds [0-9]{8,}" "$T/metrics"'
check "metrics: issued" 'grep -q "kubeca_certificates_issued_total{profile=\"kubelet\"} 2" "$T/metrics"'
check "store holds exactly the two issued" '[ "$(cert_count "$D")" = 2 ]'
check "healthz" '[ "$(curl -s --cacert "$D/pki/ca.pem" "$URL/healthz")" = ok ]'
check "readyz" '[ "$(curl -s --cacert "$D/pki/ca.pem" "$URL/readyz")" = ok ]'

# Graceful stop.
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
rc=$?
check "SIGTERM: exit 0, got $rc" '[ "$rc" = 0 ]'
check "SIGTERM: says stopped" 'grep -q "kubeca: stopped" "$D/serve.err"'
finish

#!/usr/bin/env bash
# The signing service's own certificate and its port: renewed while serving at two thirds of
# its life, with no restart and no dropped connection; issued again when signer.url or the
# listen address name something it lacks; a second server on a held port fails at once.
source "$(dirname "$0")/serve_lib.sh"
HERE=$(dirname "$0")

# A second `kubeca serve` on the port a first one holds: exit 1, one line naming the address.
D=$T/c
write_cluster "$D"
start_server "$D"
rc=0
timeout 10 "$KUBECA" serve --config "$D/cluster.yaml" --pki "$D/pki" --listen "127.0.0.1:$PORT" \
  --audit-log "$T/second.log" >/dev/null 2>"$T/second.err" || rc=$?
check "a second serve on a held port exits 1 (not 124: it did not start serving)" '[ $rc -eq 1 ]'
check "its error names the address" \
  'grep -qx "kubeca: cannot listen on 127.0.0.1:$PORT: address in use" "$T/second.err"'
check "the first server still answers" \
  '[ "$(curl -s --cacert "$D/pki/ca.pem" "$URL/healthz")" = ok ]'
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true

# cert_validity 30s: the signer certificate lapses 30 s after it was issued.
S=$T/s
mkdir -p "$S"
cat >"$S/cluster.yaml" <<YAML
cluster: {name: test, flavor: modern}
master: {host: 127.0.0.1, name: m1}
workers: [{name: n1, ip: 127.0.0.2}]
pki: {key_algorithm: ecdsa-p256, cert_validity: 30s}
signer: {url: "https://127.0.0.1:8443", store: "sqlite:$S/kubeca.db"}
YAML
"$KUBECA" init --config "$S/cluster.yaml" --pki "$S/pki" >/dev/null
start_server "$S"
rc=0
python3 "$HERE/serve_signer.py" "$PORT" "$S/pki/ca.pem" 40 >"$T/signer.out" 2>&1 || rc=$?
tail -1 "$T/signer.out"
check "the signer certificate is renewed while serving; no request and no connection lost" \
  '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || cat "$T/signer.out" >&2
check "the renewed certificate is in the PKI folder and verifies now" \
  'openssl verify -CAfile "$S/pki/ca.pem" "$S/pki/signer.pem" >/dev/null'
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true

# A new signer.url host and a listen address the certificate lacks: issued again at start.
sed -i 's|url: "https://127.0.0.1:8443"|url: "https://signer.example.test:8443"|' "$D/cluster.yaml"
before=$(serial_of "$D/pki/signer.pem")
"$KUBECA" serve --config "$D/cluster.yaml" --pki "$D/pki" --listen 127.0.0.5:0 \
  --audit-log "$D/audit.log" 2>"$T/third.err" &
SERVER_PIDS+=($!)
for _ in $(seq 100); do
  P5=$(sed -n 's|.*serving on https://127.0.0.5:\([0-9]*\).*|\1|p' "$T/third.err")
  [ -n "$P5" ] && break
  sleep 0.1
done
openssl s_client -connect "127.0.0.5:$P5" -servername signer.example.test </dev/null 2>/dev/null |
  openssl x509 -noout -text >"$T/served.txt" 2>/dev/null || true
check "a new signer.url host is in the served certificate" \
  'grep -q "DNS:signer.example.test" "$T/served.txt"'
check "the listen address is in the served certificate" \
  'grep -q "IP Address:127.0.0.5" "$T/served.txt"'
check "it is a new certificate" '[ "$(serial_of "$D/pki/signer.pem")" != "$before" ]'
finish

#!/usr/bin/env bash
# /metrics under a hostile client: 10,000 requests over keep-alive to random paths (with the
# label injection of issue 11), random "profile" values from a token holder and bad tokens
# with random ids. /metrics stays valid Prometheus text from fixed label sets, under 64 KiB,
# and the server's memory stays under 64 MiB.
source "$(dirname "$0")/serve_lib.sh"
: "${KUBECA_SOURCE:?KUBECA_SOURCE must name the repository root}"
HERE=$(dirname "$0")
D=$T/c
write_cluster "$D"
start_server "$D"
TOKEN=$("$KUBECA" token create --store "sqlite:$D/kubeca.db" --node n1 --ip 127.0.0.2 2>/dev/null)

# The injection alone, with curl, as the issue saw it.
curl -s -o /dev/null --cacert "$D/pki/ca.pem" "$URL/x%22%7D%201%0Akubeca_ca_expiry_seconds%20-1%0A%23"

start=$(date +%s)
summary=$(timeout 300 python3 "$HERE/http_load.py" flood 127.0.0.1 "$PORT" "$D/pki/ca.pem" "$TOKEN" 10000)
echo "flood: $summary in $(($(date +%s) - start)) s"
answered=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sum(v for k, v in d.items() if k != "errors"))' "$summary")
check "10,000 requests answered ($summary)" '[ "$answered" -ge 10000 ]'
check "the token holder's random profiles were refused 403" '[ "$(python3 -c "import json,sys; print(json.loads(sys.argv[1]).get(\"403\", 0))" "$summary")" -ge 2000 ]'

curl -s --cacert "$D/pki/ca.pem" "$URL/metrics" >"$T/metrics"
out=$(/usr/bin/python3 "$HERE/check_metrics.py" "$T/metrics" "$KUBECA_SOURCE/docs/api.md" 2>&1) || true
echo "$out"
check "metrics: valid text, fixed labels, under 64 KiB ($(tail -1 <<<"$out"))" '[[ "$(tail -1 <<<"$out")" == *" 0 problems" ]]'
check "metrics: the injected sample is not there" '! grep -q "^kubeca_ca_expiry_seconds -1" "$T/metrics"'
check "metrics: unknown paths counted as other" 'grep -Eq "^kubeca_requests_total\{endpoint=\"other\",profile=\"\",result=\"not_found\"\} [0-9]{4}" "$T/metrics"'
check "metrics: random profiles counted under the token profile" 'grep -Eq "^kubeca_requests_total\{endpoint=\"/v1/sign\",profile=\"kubelet\",result=\"profile_not_allowed\"\} [0-9]{4}" "$T/metrics"'
check "metrics: no per-serial series" '! grep -q "serial=" "$T/metrics"'
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")
echo "server RSS after the flood: $rss kB; /metrics $(wc -c <"$T/metrics") bytes"
# AddressSanitizer's shadow memory and quarantine make RSS meaningless in that build.
if [ "${KUBECA_SANITIZED:-0}" = 1 ]; then
  echo "server RSS bound not checked under AddressSanitizer"
else
  check "server RSS <= 64 MiB ($rss kB)" '[ "$rss" -le 65536 ]'
fi

# Still serving: a real request gets its certificate, and the gauges follow it.
make_csr "$T/n1.csr" "/CN=system:node:n1"
sign_body "$T/n1.csr" >"$T/body"
got=$(post_sign "$D" "$TOKEN" "$T/body")
check "a real request after the flood: 201, got $got" '[ "$got" = 201 ]'
curl -s --cacert "$D/pki/ca.pem" "$URL/metrics" >"$T/metrics"
# init recorded its own kubelet certificates in the same store: count what the store holds.
LIVE=$(sqlite3 "$D/kubeca.db" "select count(*) from certificates where profile='kubelet' and status='good' and not_after > strftime('%s','now')")
check "metrics: $LIVE live kubelet certificates, as the store says" 'grep -q "^kubeca_certificates_live{profile=\"kubelet\"} $LIVE$" "$T/metrics"'
check "metrics: its expiry is the soonest" 'grep -Eq "^kubeca_certificate_soonest_expiry_seconds\{profile=\"kubelet\"\} [0-9]{7,}$" "$T/metrics"'
check "metrics: issued counted" 'grep -q "^kubeca_certificates_issued_total{profile=\"kubelet\"} 1$" "$T/metrics"'
finish

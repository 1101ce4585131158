#!/usr/bin/env bash
# manifests/monitoring/: the alerting rules load in Prometheus' own checker, their unit tests
# pass (and fail when a threshold moves), every kubeca metric they name is one a real
# `kubeca serve` exports, and that live /metrics passes `promtool check metrics`.
source "$(dirname "$0")/serve_lib.sh"
: "${KUBECA_SOURCE:?KUBECA_SOURCE must name the repository root}"
M=$KUBECA_SOURCE/manifests/monitoring
command -v promtool >/dev/null || { echo "promtool missing: apt-get install prometheus" >&2; exit 1; }

check "promtool check rules" 'promtool check rules "$M/kubeca-alerts.yaml" >"$T/out" 2>&1 || { cat "$T/out"; false; }'
check "promtool test rules" 'promtool test rules "$M/kubeca-alerts.test.yaml" >"$T/out" 2>&1 || { cat "$T/out"; false; }'
check "promtool check config on the scrape example" 'promtool check config "$M/prometheus-scrape.yaml" >"$T/out" 2>&1 || { cat "$T/out"; false; }'

# The unit tests can fail: move each expiry threshold and they must.
mkdir "$T/mut"
cp "$M/kubeca-alerts.test.yaml" "$T/mut/"
for change in 's/< 30 \* 86400/< 10 * 86400/' 's/< 7 \* 86400/< 2 * 86400/' 's/profile!="user"/profile!="none"/'; do
  sed "$change" "$M/kubeca-alerts.yaml" >"$T/mut/kubeca-alerts.yaml"
  check "the rules changed ($change)" '! cmp -s "$M/kubeca-alerts.yaml" "$T/mut/kubeca-alerts.yaml"'
  check "promtool test rules fails with $change" '! promtool test rules "$T/mut/kubeca-alerts.test.yaml" >/dev/null 2>&1'
done

# A live /metrics from a real server, with a signed certificate and a refusal counted.
D=$T/c
write_cluster "$D"
start_server "$D"
TOKEN=$("$KUBECA" token create --store "sqlite:$D/kubeca.db" --node n1 --ip 127.0.0.2 2>/dev/null)
make_csr "$T/n1.csr" "/CN=system:node:n1"
sign_body "$T/n1.csr" >"$T/body"
check "a certificate is signed" '[ "$(post_sign "$D" "$TOKEN" "$T/body")" = 201 ]'
check "a bad token is refused" '[ "$(post_sign "$D" abcdef.0000000000000000 "$T/body")" = 401 ]'
curl -s --max-time 10 --cacert "$D/pki/ca.pem" "$URL/metrics" >"$T/metrics"
check "promtool check metrics on the live /metrics" 'promtool check metrics <"$T/metrics" >"$T/out" 2>&1 || { cat "$T/out"; false; }'
check "/metrics has the CA expiry" 'grep -Eq "^kubeca_ca_expiry_seconds [0-9]+$" "$T/metrics"'

# Every kubeca_* name in the rules is exported (a renamed metric would silence an alert).
names=$(grep -o 'kubeca_[a-z_]*' "$M/kubeca-alerts.yaml" "$M/kubeca-alerts.test.yaml" | cut -d: -f2 | sort -u)
check "the rules name kubeca metrics" '[ -n "$names" ]'
for n in $names; do
  check "the rules' $n is exported" 'grep -q "^$n[{ ]" "$T/metrics"'
done
# The labels the rules select on are the ones kubeca uses.
check "requests have endpoint, profile and result" 'grep -Eq "^kubeca_requests_total\{endpoint=\"/v1/sign\",profile=\"kubelet\",result=\"ok\"\} 1$" "$T/metrics"'
check "the soonest expiry is by profile" 'grep -Eq "^kubeca_certificate_soonest_expiry_seconds\{profile=\"kubelet\"\} [0-9]+$" "$T/metrics"'

# A fresh CA is years from its end: the 30-day rule would not fire on this scrape.
ca_left=$(sed -n 's/^kubeca_ca_expiry_seconds //p' "$T/metrics")
check "the CA has more than 30 days left ($ca_left s)" '[ "$ca_left" -gt 2592000 ]'
finish

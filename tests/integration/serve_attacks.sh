#!/usr/bin/env bash
# Slowloris and idle connections from the same address as the real clients (a NAT, a load
# balancer): with 100 TLS connections trickling one header byte every 2 s and 300 idle TCP
# connections open from 127.0.0.1, and each opened again when the server sheds it, /healthz
# answers within 1 s on every probe and signing requests succeed.
source "$(dirname "$0")/serve_lib.sh"
D=$T/c
write_cluster "$D"
start_server "$D"
token=$("$KUBECA" token create --store "sqlite:$D/kubeca.db" --node n1 --ip 127.0.0.2 --uses 100 2>/dev/null)
make_csr "$T/n1.csr" /CN=system:node:n1
sign_body "$T/n1.csr" kubelet >"$T/body.json"

rc=0
python3 "$(dirname "$0")/serve_attacks.py" "$PORT" "$D/pki/ca.pem" "$token" "$T/body.json" \
  "${ATTACK_SECONDS:-25}" >"$T/attack.out" 2>&1 || rc=$?
tail -1 "$T/attack.out"
check "healthz within 1 s and signing requests succeed under the attack" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || grep FAIL "$T/attack.out" | head -5 >&2
check "the server is still up" 'kill -0 $SERVER_PID'
check "the store has every certificate answered" \
  '[ "$(cert_count "$D")" -eq "$(grep -c "^sign 201" "$T/attack.out")" ]'
finish

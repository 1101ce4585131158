#!/usr/bin/env bash
# bootstrap against real etcd on loopback:
#  1. coreos-2016 `bootstrap apply` writes the flannel config through etcd's v2 keys API
#     (etcd --enable-v2) only if absent;
#  2. modern `bootstrap apply` does the same through the v3 JSON gateway;
#  3. three members on 127.x.y.{11,12,13}, started from the etcd.service files that
#     `bootstrap etcd` rendered with the certificates kubeca issued, report healthy to
#     `etcdctl endpoint health` over TLS;
#  4. modern `bootstrap apply` writes the flannel config to those members over TLS (the
#     PKI's apiserver-etcd-client pair) only if absent.
source "$(dirname "$0")/bootstrap_lib.sh"

command -v etcd >/dev/null || fail "etcd is missing (scripts/install-deps.sh: etcd-server)"
command -v etcdctl >/dev/null || fail "etcdctl is missing (scripts/install-deps.sh: etcd-client)"
FLANNEL='{"Network":"10.2.0.0/16","Backend":{"Type":"vxlan"}}'
OTHER='{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}'

start_single() {  # start_single NAME [extra etcd flags]: sets PORT (no subshell: PIDS must grow)
  local name=$1 port peer
  shift
  port=$(free_port)
  peer=$(free_port)
  etcd --name "$name" --data-dir "$WORK/$name.etcd" \
    --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$name=http://127.0.0.1:$peer" "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  TRIES=40 wait_for curl -sf "http://127.0.0.1:$port/health" || { cat "$WORK/$name.log" >&2; fail "etcd $name did not start"; }
  PORT=$port
}

# --- 1. coreos-2016: etcd v2 keys --------------------------------------------------------
start_single v2 --enable-v2
port=$PORT
make_config "$WORK/coreos.yaml" coreos-2016 "s#endpoints: .*#endpoints: [http://127.0.0.1:$port]#"
out=$("$KUBECA" bootstrap apply --config "$WORK/coreos.yaml" --skip-namespaces)
echo "$out" | grep -q "(etcd v2): created" || fail "v2 apply said: $out"
v2_value() {
  curl -sf "http://127.0.0.1:$port/v2/keys/coreos.com/network/config" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["node"]["value"])'
}
[ "$(v2_value)" = "$FLANNEL" ] || fail "v2 value is $(v2_value)"
[ "$(ETCDCTL_API=2 etcdctl --endpoints "http://127.0.0.1:$port" get /coreos.com/network/config)" = "$FLANNEL" ] \
  || fail "etcdctl (v2) does not read the flannel config"
curl -sf -X PUT "http://127.0.0.1:$port/v2/keys/coreos.com/network/config" --data-urlencode "value=$OTHER" >/dev/null
out=$("$KUBECA" bootstrap apply --config "$WORK/coreos.yaml" --skip-namespaces)
echo "$out" | grep -q "exists (left as is)" || fail "second v2 apply said: $out"
[ "$(v2_value)" = "$OTHER" ] || fail "v2 apply overwrote an existing config: $(v2_value)"

# --- 2. modern: etcd v3 JSON gateway -----------------------------------------------------
start_single v3
port3=$PORT
make_config "$WORK/modern-plain.yaml" modern
out=$("$KUBECA" bootstrap apply --config "$WORK/modern-plain.yaml" --etcd "http://127.0.0.1:$port3" --skip-namespaces)
echo "$out" | grep -q "(etcd v3): created" || fail "v3 apply said: $out"
v3_get() { ETCDCTL_API=3 etcdctl "$@" get /coreos.com/network/config --print-value-only; }
[ "$(v3_get --endpoints "http://127.0.0.1:$port3")" = "$FLANNEL" ] || fail "v3 value: $(v3_get --endpoints "http://127.0.0.1:$port3")"
ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$port3" put /coreos.com/network/config "$OTHER" >/dev/null
out=$("$KUBECA" bootstrap apply --config "$WORK/modern-plain.yaml" --etcd "http://127.0.0.1:$port3" --skip-namespaces)
echo "$out" | grep -q "exists (left as is)" || fail "second v3 apply said: $out"
[ "$(v3_get --endpoints "http://127.0.0.1:$port3")" = "$OTHER" ] || fail "v3 apply overwrote an existing config"

# --- 3. three members with TLS, from the rendered units ---------------------------------
base=""
for _ in $(seq 20); do
  candidate="127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1))"
  if python3 - "$candidate" <<'PY'
import socket, sys
for last in (11, 12, 13):
    for port in (2379, 2380):
        s = socket.socket(); s.bind((f"{sys.argv[1]}.{last}", port)); s.close()
PY
  then base=$candidate; break; fi
done
[ -n "$base" ] || fail "no free 127.x.y.{11,12,13} with ports 2379 and 2380"
make_config "$WORK/cluster.yaml" modern \
  "s#host: 192.168.24.11#host: $base.11#" \
  "s#ip: 192.168.24.12#ip: $base.12#" "s#ip: 192.168.24.13#ip: $base.13#" \
  "s#endpoints: .*#endpoints: [https://$base.11:2379, https://$base.12:2379, https://$base.13:2379]#"
PKI="$WORK/pki"
"$KUBECA" init --config "$WORK/cluster.yaml" --pki "$PKI" >/dev/null
for n in 2 3; do
  for profile in etcd-server etcd-peer; do
    "$KUBECA" issue "$profile" --name "coreos$n" --ip "$base.1$n" --pki "$PKI" --config "$WORK/cluster.yaml" >/dev/null
  done
done
endpoints=""
for n in 1 2 3; do
  root="$WORK/member$n"
  "$KUBECA" bootstrap etcd --node "coreos$n" --config "$WORK/cluster.yaml" --pki "$PKI" --root "$root" >/dev/null
  unit="$root/etc/systemd/system/etcd.service"
  cmd=$(unit_exec_start "$unit")
  # The host's paths, under this member's root.
  cmd=${cmd//\/etc\/kubernetes/$root/etc/kubernetes}
  cmd=${cmd//\/var\/lib\/etcd/$root/var/lib/etcd}
  read -ra argv <<<"$cmd"
  [ "${argv[0]}" = /usr/bin/etcd ] || fail "ExecStart of $unit is ${argv[0]}"
  "${argv[@]}" >"$WORK/member$n.log" 2>&1 &
  PIDS+=($!)
  endpoints+="${endpoints:+,}https://$base.1$n:2379"
done
tls=(--cacert "$WORK/member1/etc/kubernetes/pki/etcd/ca.crt"
  --cert "$WORK/member1/etc/kubernetes/pki/etcd/healthcheck-client.crt"
  --key "$WORK/member1/etc/kubernetes/pki/etcd/healthcheck-client.key")
if ! TRIES=60 wait_for env ETCDCTL_API=3 etcdctl --endpoints "$endpoints" "${tls[@]}" endpoint health; then
  tail -n 20 "$WORK"/member*.log >&2
  fail "the three members are not healthy"
fi
health=$(ETCDCTL_API=3 etcdctl --endpoints "$endpoints" "${tls[@]}" endpoint health 2>&1)
echo "$health"
[ "$(echo "$health" | grep -c "is healthy")" = 3 ] || fail "not three healthy members"
[ "$(ETCDCTL_API=3 etcdctl --endpoints "$endpoints" "${tls[@]}" member list | wc -l)" = 3 ] || fail "member list"
# Without a client certificate the members refuse: TLS client auth is on.
if ETCDCTL_API=3 etcdctl --endpoints "https://$base.11:2379" --cacert "${tls[1]}" --command-timeout=3s \
  endpoint health >/dev/null 2>&1; then
  fail "a member answered a client without a certificate"
fi

# --- 4. modern apply over TLS to these members ------------------------------------------
# The v3 JSON gateway dials its own gRPC port with the server certificate as a client
# (etcd-io/etcd#9785); the etcd-server profile's clientAuth is what lets it through.
# apply authenticates with the PKI's apiserver-etcd-client pair and trusts the etcd CA.
v3_tls_get() { v3_get --endpoints "$endpoints" "${tls[@]}"; }
out=$("$KUBECA" bootstrap apply --config "$WORK/cluster.yaml" --pki "$PKI" --skip-namespaces 2>&1) \
  || fail "apply over TLS: $out"
echo "$out" | grep -q "(etcd v3): created" || fail "TLS apply said: $out"
[ "$(v3_tls_get)" = "$FLANNEL" ] || fail "TLS v3 value: $(v3_tls_get)"
# A second run with another pod_cidr leaves the value as it is.
sed 's#pod_cidr: .*#pod_cidr: 10.244.0.0/16#' "$WORK/cluster.yaml" >"$WORK/cluster-other.yaml"
out=$("$KUBECA" bootstrap apply --config "$WORK/cluster-other.yaml" --pki "$PKI" \
  --skip-namespaces 2>&1) || fail "second apply over TLS: $out"
echo "$out" | grep -q "exists (left as is)" || fail "second TLS apply said: $out"
[ "$(v3_tls_get)" = "$FLANNEL" ] || fail "TLS apply overwrote the config: $(v3_tls_get)"
# A client pair from another CA (the cluster CA's admin) is refused: apply really
# authenticates, and fails with 1 rather than writing.
mkdir -p "$WORK/pki-wrong/etcd"
cp "$PKI/etcd/ca.pem" "$WORK/pki-wrong/etcd/ca.pem"
cp "$PKI/admin.pem" "$WORK/pki-wrong/apiserver-etcd-client.pem"
cp "$PKI/admin-key.pem" "$WORK/pki-wrong/apiserver-etcd-client-key.pem"
rc=0
out=$("$KUBECA" bootstrap apply --config "$WORK/cluster.yaml" --pki "$WORK/pki-wrong" \
  --skip-namespaces 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "apply with a client certificate of another CA: exit $rc: $out"
echo "$out" | grep -q "client certificate $WORK/pki-wrong/apiserver-etcd-client.pem" \
  || fail "the refusal does not name the client certificate: $out"
echo "ok"

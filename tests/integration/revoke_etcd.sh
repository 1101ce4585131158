#!/usr/bin/env bash
# A real etcd on 127.0.0.1 started with kubeca's CRL refuses a revoked client certificate
# that kubeca issued and accepts a good one.
source "$(dirname "$0")/serve_lib.sh"
command -v etcd >/dev/null || { echo "etcd is missing (scripts/install-deps.sh: etcd-server)"; exit 1; }
D=$T/c
write_cluster "$D"
start_server "$D"
STORE="sqlite:$D/kubeca.db"
PIN=$(pin "$D")
for n in n1:127.0.0.2 n2:127.0.0.3; do
  tok=$("$KUBECA" token create --store "$STORE" --node "${n%%:*}" --ip "${n#*:}" 2>/dev/null)
  "$KUBECA" request --server "$URL" --token "$tok" --ca-hash "$PIN" --out-dir "$T/${n%%:*}" \
    --name "${n%%:*}" >/dev/null 2>&1
done
"$KUBECA" issue kubelet --pki "$D/pki" --config "$D/cluster.yaml" --name etcd-test \
  --ip 127.0.0.1 --out "$T/etcd-server" >/dev/null
"$KUBECA" revoke --pki "$D/pki" --store "$STORE" --cert "$T/n2/n2.pem" --reason keyCompromise >/dev/null
"$KUBECA" crl --pki "$D/pki" --store "$STORE" --pem --out "$T/crl.pem" >/dev/null

CP=$(free_port)
PP=$(free_port)
etcd --name t --data-dir "$T/etcd" \
  --listen-client-urls "https://127.0.0.1:$CP" --advertise-client-urls "https://127.0.0.1:$CP" \
  --listen-peer-urls "http://127.0.0.1:$PP" --initial-advertise-peer-urls "http://127.0.0.1:$PP" \
  --initial-cluster "t=http://127.0.0.1:$PP" --listen-metrics-urls "" \
  --cert-file "$T/etcd-server.pem" --key-file "$T/etcd-server-key.pem" \
  --client-cert-auth --trusted-ca-file "$D/pki/ca.pem" --client-crl-file "$T/crl.pem" \
  >"$T/etcd.log" 2>&1 &
SERVER_PIDS+=($!)
as() {
  ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:$CP" --cacert "$D/pki/ca.pem" \
    --cert "$T/$1/$1.pem" --key "$T/$1/$1-key.pem" --command-timeout=3s "${@:2}"
}
up=0
for _ in $(seq 50); do
  if as n1 endpoint health >/dev/null 2>&1; then up=1; break; fi
  sleep 0.2
done
[ "$up" = 1 ] || { tail -20 "$T/etcd.log"; exit 1; }
check "good client certificate: put" 'as n1 put /kubeca/test ok >/dev/null 2>&1'
check "good client certificate: get" '[ "$(as n1 get /kubeca/test --print-value-only 2>/dev/null)" = ok ]'
check "revoked client certificate: refused" '! as n2 get /kubeca/test >/dev/null 2>&1'
check "revoked client certificate: refused for writes too" '! as n2 put /kubeca/test bad >/dev/null 2>&1'
check "the value is the good client's" '[ "$(as n1 get /kubeca/test --print-value-only 2>/dev/null)" = ok ]'
check "etcd says why" 'grep -qi "revoked" "$T/etcd.log"'
finish

# A TLS etcd cluster of N members on 127.0.0.1 for the signing-service tests (Debian's
# etcd-server). Source it after serve_lib.sh (it uses $T, SERVER_PIDS and free_port): every
# member started is in SERVER_PIDS, so serve_lib's trap stops it.
#
# Clients and peers speak TLS with the certificates `kubeca init` issued from the etcd CA:
# etcd/server for clients, etcd/peer between members, apiserver-etcd-client for kubeca.

# etcd_cluster_start N PKI: starts members 0..N-1 and waits until the cluster is healthy.
# Sets ETCD_EPS (H:P,... for clients), ETCD_STORE (kubeca's store URL for all members) and
# ETCD_PIDS (a member's pid by index).
etcd_cluster_start() {
  local n=$1 i
  ETCD_PKI=$2
  ETCD_CPORTS=() ETCD_PPORTS=() ETCD_PIDS=()
  ETCD_INITIAL="" ETCD_EPS=""
  for ((i = 0; i < n; i++)); do
    ETCD_CPORTS+=("$(free_port)")
    ETCD_PPORTS+=("$(free_port)")
    ETCD_INITIAL+="${ETCD_INITIAL:+,}e$i=https://127.0.0.1:${ETCD_PPORTS[$i]}"
    ETCD_EPS+="${ETCD_EPS:+,}127.0.0.1:${ETCD_CPORTS[$i]}"
  done
  for ((i = 0; i < n; i++)); do etcd_member_start "$i"; done
  ETCD_STORE="etcd://$ETCD_EPS?ca=$ETCD_PKI/etcd/ca.pem&cert=$ETCD_PKI/apiserver-etcd-client.pem&key=$ETCD_PKI/apiserver-etcd-client-key.pem"
  etcd_wait_healthy || {
    tail -20 "$T"/etcd*.log >&2
    echo "FAIL: the etcd cluster did not start" >&2
    exit 1
  }
}

# etcd_member_start I: starts (or restarts, on its data folder) member I.
etcd_member_start() {
  local i=$1 p=$ETCD_PKI
  etcd --name "e$i" --data-dir "$T/etcd$i" \
    --listen-client-urls "https://127.0.0.1:${ETCD_CPORTS[$i]}" \
    --advertise-client-urls "https://127.0.0.1:${ETCD_CPORTS[$i]}" \
    --listen-peer-urls "https://127.0.0.1:${ETCD_PPORTS[$i]}" \
    --initial-advertise-peer-urls "https://127.0.0.1:${ETCD_PPORTS[$i]}" \
    --initial-cluster "$ETCD_INITIAL" --initial-cluster-state new --listen-metrics-urls "" \
    --cert-file "$p/etcd/server.pem" --key-file "$p/etcd/server-key.pem" --client-cert-auth \
    --trusted-ca-file "$p/etcd/ca.pem" --peer-cert-file "$p/etcd/peer.pem" \
    --peer-key-file "$p/etcd/peer-key.pem" --peer-client-cert-auth \
    --peer-trusted-ca-file "$p/etcd/ca.pem" >>"$T/etcd$i.log" 2>&1 &
  ETCD_PIDS[$i]=$!
  SERVER_PIDS+=($!)
}

# etcd_member_kill I [SIGNAL]: stops member I (SIGKILL unless told) and reaps it.
etcd_member_kill() {
  kill "-${2:-KILL}" "${ETCD_PIDS[$1]}" 2>/dev/null || true
  wait "${ETCD_PIDS[$1]}" 2>/dev/null || true
}

# ectl ARGS...: etcdctl on every member, as kubeca's client certificate.
ectl() {
  ETCDCTL_API=3 etcdctl --endpoints "https://${ETCD_EPS//,/,https://}" --cacert "$ETCD_PKI/etcd/ca.pem" \
    --cert "$ETCD_PKI/apiserver-etcd-client.pem" --key "$ETCD_PKI/apiserver-etcd-client-key.pem" \
    --command-timeout=5s "$@"
}

# etcd_wait_healthy [TRIES]: every member answers (0.2 s apart, 100 tries unless told).
etcd_wait_healthy() {
  local _
  for _ in $(seq "${1:-100}"); do
    ectl endpoint health >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# etcd_leader: the index of the member that leads now (empty when none does).
etcd_leader() {
  local i id
  id=$(ectl endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["Status"]["header"]["member_id"] == e["Status"]["leader"]:
        print(e["Endpoint"])' | head -1 || true)
  for i in "${!ETCD_CPORTS[@]}"; do
    [ "${id#https://}" = "127.0.0.1:${ETCD_CPORTS[$i]}" ] && echo "$i"
  done
  return 0
}

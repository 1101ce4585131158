#!/usr/bin/env bash
# A modern master from `bootstrap master` runs the signing service: kubeca-serve.service is
# rendered, passes `systemd-analyze verify`, and its ExecStart (the host's paths moved under
# the rendered root) starts a `kubeca serve` that answers /readyz on 127.0.0.1 with the
# signer certificate bootstrap copied, which names every replica of signer.urls. The
# config it reads is the operator's cluster.yaml (0600); an etcd store lands there as given,
# and the unit then writes no store folder. Two masters' units on one real etcd are both
# ready, and with one of them killed a worker's request (both URLs) still gets its
# certificate, recorded in etcd. A bad signer.urls is exit 2, one line.
source "$(dirname "$0")/bootstrap_lib.sh"

for tool in openssl curl systemd-analyze; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh)"
done

PORT=$(free_port)
DEAD=$(free_port 127.0.0.9)
root="$WORK/root"
pki="$WORK/pki"
mkdir -p "$WORK/store"
cat >"$WORK/cluster.yaml" <<YAML
cluster: {name: test, flavor: modern}
master: {host: 127.0.0.1, name: m1}
etcd: {endpoints: [https://127.0.0.1:2379]}
workers: [{name: n1, ip: 127.0.0.2}]
pki: {key_algorithm: ecdsa-p256}
signer:
  listen: 127.0.0.1:$PORT
  url: https://127.0.0.1:$PORT
  urls: ["https://127.0.0.9:$DEAD", "https://127.0.0.1:$PORT", "https://m2.example.test:8443"]
  store: sqlite:$WORK/store/kubeca.db
YAML

# A bad replica URL: one line naming the field, exit 2, nothing made.
sed 's|"https://127.0.0.9:'"$DEAD"'"|"http://127.0.0.9:'"$DEAD"'"|' "$WORK/cluster.yaml" >"$WORK/bad.yaml"
rc=0
err=$("$KUBECA" init --config "$WORK/bad.yaml" --pki "$WORK/bad-pki" 2>&1 >/dev/null) || rc=$?
[ "$rc" = 2 ] || fail "bad signer.urls: exit $rc: $err"
[ "$err" = "kubeca: signer.urls[0]: \"http://127.0.0.9:$DEAD\" must be an https:// URL" ] \
  || fail "bad signer.urls said: $err"
[ ! -e "$WORK/bad-pki" ] || fail "bad signer.urls: init made $WORK/bad-pki"

"$KUBECA" init --config "$WORK/cluster.yaml" --pki "$pki" >/dev/null
"$KUBECA" bootstrap master --config "$WORK/cluster.yaml" --pki "$pki" --root "$root" >/dev/null
unit="$root/etc/systemd/system/kubeca-serve.service"
[ -f "$unit" ] || fail "bootstrap master did not render kubeca-serve.service"

# The signer certificate names every replica's host (openssl reads it, not kubeca).
sans=$(openssl x509 -in "$root/etc/kubeca/pki/signer.pem" -noout -ext subjectAltName |
  tail -n +2 | tr -d ' ' | tr ',' '\n' | sort | paste -sd,)
[ "$sans" = "DNS:m1,DNS:m2.example.test,IPAddress:127.0.0.1,IPAddress:127.0.0.9" ] \
  || fail "signer.pem SANs: $sans"

# The config is the operator's file, private to root.
cmp -s "$WORK/cluster.yaml" "$root/etc/kubeca/cluster.yaml" || fail "/etc/kubeca/cluster.yaml differs"
[ "$(stat -c %a "$root/etc/kubeca/cluster.yaml")" = 600 ] || fail "cluster.yaml is not 0600"
[ "$(stat -c %a "$root/etc/kubeca/pki/ca-key.pem")" = 600 ] || fail "ca-key.pem is not 0600"

verify() {  # UNIT: systemd-analyze verify, only the absent kubeca binary excused
  local out rest
  out=$(cd "$(dirname "$1")" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$1" 2>&1 ||
    true)
  rest=$(echo "$out" | grep -v -E "(Command|Executable) /usr/local/bin/kubeca( is not executable| not found|: No such file)" |
    grep -v -E "Unit etcd\.service not found" | grep -v -E "^$" || true)
  [ -z "$rest" ] || { echo "$out" >&2; fail "systemd-analyze verify $1"; }
}
verify "$unit"
for key in "Restart=on-failure" "NoNewPrivileges=yes" "ProtectSystem=strict" "PrivateTmp=yes" \
  "CapabilityBoundingSet=" "ReadWritePaths=/etc/kubeca/pki" "ReadWritePaths=$WORK/store"; do
  grep -qx -- "$key" "$unit" || fail "kubeca-serve.service has no $key"
done

# systemd's own exposure score (0 safest, 10 unsandboxed root): at most 2.0 (it is 1.8;
# a unit with no hardening scores 9.6). --root: the unit as rendered, not the host's.
(cd "$root/etc/systemd/system" && systemd-analyze security --offline=true --root="$root" \
  --threshold=20 kubeca-serve.service >"$WORK/security.out" 2>&1) \
  || { cat "$WORK/security.out" >&2; fail "kubeca-serve.service: $(tail -1 "$WORK/security.out")"; }

# The ExecStart as systemd runs it, with the host's paths under the root.
exec_start=$(unit_exec_start "$unit")
read -r -a argv <<<"$exec_start"
[ "${argv[0]}" = /usr/local/bin/kubeca ] || fail "ExecStart runs ${argv[0]}"
argv[0]=$KUBECA
for i in "${!argv[@]}"; do
  case ${argv[$i]} in /etc/* | /var/* | /run/*) argv[$i]=$root${argv[$i]} ;; esac
done
"${argv[@]}" >"$WORK/serve.out" 2>"$WORK/serve.err" &
PIDS+=($!)
ready() { curl -sf --cacert "$pki/ca.pem" "https://127.0.0.1:$PORT/readyz"; }
TRIES=60 wait_for ready || { cat "$WORK/serve.err" >&2; fail "the unit's serve never became ready"; }
grep -q "serving on https://127.0.0.1:$PORT (store sqlite:$WORK/store/kubeca.db)" "$WORK/serve.err" \
  || fail "serve said: $(<"$WORK/serve.err")"
# It serves the signer certificate bootstrap copied.
served=$(openssl s_client -connect "127.0.0.1:$PORT" -servername 127.0.0.1 </dev/null 2>/dev/null |
  openssl x509 -noout -fingerprint -sha256)
[ "$served" = "$(openssl x509 -in "$root/etc/kubeca/pki/signer.pem" -noout -fingerprint -sha256)" ] \
  || fail "serve presents another certificate: $served"

# An etcd store: the master's config carries the URL; serve writes no store folder.
etcd_url="etcd://127.0.0.1:2379?ca=/etc/kubernetes/pki/etcd/ca.crt&cert=/etc/kubernetes/pki/apiserver-etcd-client.crt&key=/etc/kubernetes/pki/apiserver-etcd-client.key"
sed "s|^  store: .*|  store: \"${etcd_url//&/\\&}\"|" "$WORK/cluster.yaml" >"$WORK/etcd.yaml"
"$KUBECA" bootstrap master --config "$WORK/etcd.yaml" --pki "$pki" --root "$WORK/etcd-root" >/dev/null
eunit="$WORK/etcd-root/etc/systemd/system/kubeca-serve.service"
grep -qF "store: \"$etcd_url\"" "$WORK/etcd-root/etc/kubeca/cluster.yaml" \
  || fail "the etcd store is not in the master's cluster.yaml"
verify "$eunit"
[ "$(grep -c '^ReadWritePaths=' "$eunit")" = 1 ] && ! grep -q '^StateDirectory=' "$eunit" \
  || fail "with an etcd store serve may write more than its PKI: $(grep -E '^(ReadWrite|State)' "$eunit")"

# Two masters on one etcd (TLS, kubeca's certificates): each unit's serve is a replica. The
# store URL names the PKI's files here (the test's masters share a machine).
command -v etcd >/dev/null || fail "etcd is missing (scripts/install-deps.sh: etcd-server)"
CP=$(free_port)
PP=$(free_port)
etcd --name e1 --data-dir "$WORK/etcd" \
  --listen-client-urls "https://127.0.0.1:$CP" --advertise-client-urls "https://127.0.0.1:$CP" \
  --listen-peer-urls "http://127.0.0.1:$PP" --initial-advertise-peer-urls "http://127.0.0.1:$PP" \
  --initial-cluster "e1=http://127.0.0.1:$PP" --listen-metrics-urls "" \
  --cert-file "$pki/etcd/server.pem" --key-file "$pki/etcd/server-key.pem" \
  --client-cert-auth --trusted-ca-file "$pki/etcd/ca.pem" >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)
P2=$(free_port)
store="etcd://127.0.0.1:$CP?ca=$pki/etcd/ca.pem&cert=$pki/apiserver-etcd-client.pem&key=$pki/apiserver-etcd-client-key.pem"
sed -e "s|^  store: .*|  store: \"${store//&/\\&}\"|" \
  -e "s|^  urls: .*|  urls: [\"https://127.0.0.1:$PORT\", \"https://127.0.0.1:$P2\"]|" \
  "$WORK/cluster.yaml" >"$WORK/ha.yaml"
kill "${PIDS[0]}" && wait "${PIDS[0]}" || true  # the SQLite serve gives its port back
replica() {  # NAME [ARG...]: bootstrap master NAME and run its unit's ExecStart
  local name=$1 r="$WORK/ha-$1" i
  shift
  "$KUBECA" bootstrap master --config "$WORK/ha.yaml" --pki "$pki" --root "$r" >/dev/null
  read -r -a argv <<<"$(unit_exec_start "$r/etc/systemd/system/kubeca-serve.service")"
  argv[0]=$KUBECA
  for i in "${!argv[@]}"; do
    case ${argv[$i]} in /etc/*) argv[$i]=$r${argv[$i]} ;; esac
  done
  "${argv[@]}" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
}
TRIES=60 wait_for etcdctl --endpoints "https://127.0.0.1:$CP" --cacert "$pki/etcd/ca.pem" \
  --cert "$pki/apiserver-etcd-client.pem" --key "$pki/apiserver-etcd-client-key.pem" \
  endpoint health || { tail -20 "$WORK/etcd.log" >&2; fail "etcd did not start"; }
replica a
first=$!
replica b --listen "127.0.0.1:$P2"
for p in "$PORT" "$P2"; do
  TRIES=60 wait_for curl -sf --cacert "$pki/ca.pem" "https://127.0.0.1:$p/readyz" \
    || { cat "$WORK"/a.err "$WORK"/b.err >&2; fail "replica on $p not ready on etcd"; }
done
grep -q "(store etcd://127.0.0.1:$CP" "$WORK/b.err" || fail "replica b: $(<"$WORK/b.err")"
# One replica down: a worker's request unit, listing both, still gets its certificate.
"$KUBECA" bootstrap worker --config "$WORK/ha.yaml" --pki "$pki" --root "$WORK/ha-w" --node n1 >/dev/null
servers=$(unit_exec_start "$WORK/ha-w/etc/systemd/system/kubeca-request.service" |
  sed -n 's/.* --server \([^ ]*\) .*/\1/p')
[ "$servers" = "https://127.0.0.1:$PORT,https://127.0.0.1:$P2" ] || fail "worker --server $servers"
token=$("$KUBECA" token create --store "$store" --node n1 --ip 127.0.0.2 2>/dev/null)
kill "$first" && wait "$first" || true
KUBECA_TOKEN=$token "$KUBECA" request --server "$servers" --ca-hash "$(grep -o 'sha256:[0-9a-f]*' \
  "$WORK/ha-w/etc/kubeca/ca.env")" --out-dir "$WORK/n1" --name n1 >"$WORK/req.out" 2>&1 \
  || fail "request with replica a down: $(<"$WORK/req.out")"
serial=$(openssl x509 -in "$WORK/n1/n1.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
[ -n "$serial" ] || fail "no certificate in $WORK/n1"
[ -n "$(etcdctl --endpoints "https://127.0.0.1:$CP" --cacert "$pki/etcd/ca.pem" \
  --cert "$pki/apiserver-etcd-client.pem" --key "$pki/apiserver-etcd-client-key.pem" \
  get --prefix /kubeca/certs/ --keys-only | grep -i "$serial")" ] \
  || fail "certificate $serial is not in etcd"

# The default store: systemd makes /var/lib/kubeca for it.
sed '/^  store: /d' "$WORK/cluster.yaml" >"$WORK/default.yaml"
"$KUBECA" bootstrap master --config "$WORK/default.yaml" --pki "$pki" --root "$WORK/default-root" >/dev/null
dunit="$WORK/default-root/etc/systemd/system/kubeca-serve.service"
verify "$dunit"
grep -qx "StateDirectory=kubeca" "$dunit" || fail "default store: no StateDirectory=kubeca"
echo "ok: kubeca-serve.service verified and serving on 127.0.0.1:$PORT"

#!/usr/bin/env bash
# `kubeca init` for both flavors, checked with openssl, gnutls' certtool and kubectl: file
# set, subjects, usages, SANs, chains, kubeconfigs, modes, idempotence, partial re-creation.
source "$(dirname "$0")/lib.sh"

json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
pubkey_of_cert() { openssl x509 -in "$1" -noout -pubkey; }
pubkey_of_key() { openssl pkey -in "$1" -pubout; }

# check_pairs DIR CERT...: each certificate chains to its CA (and not to a stranger), its
# key file is its key, and the key file is private.
check_pairs() {
  local dir=$1 name
  shift
  for name in "$@"; do
    verify_chain "$dir/$(ca_of "$name").pem" "$dir/$name.pem"
    expect_fails "$name under a stranger CA" openssl verify -CAfile "$(stranger_ca)" "$dir/$name.pem"
    expect_eq "$name-key.pem is the key of $name.pem" "$(pubkey_of_key "$dir/$name-key.pem")" \
      "$(pubkey_of_cert "$dir/$name.pem")"
    expect_eq "$name-key.pem mode" "$(stat -c %a "$dir/$name-key.pem")" 600
  done
}

# check_kubeconfig FILE SERVER USER CERT KEY CA: kubectl reads what kubeca wrote.
check_kubeconfig() {
  local f=$1 fields
  mapfile -t fields < <(kubectl --kubeconfig "$f" config view --raw -o 'jsonpath={.clusters[0].cluster.server}
{.users[0].name}
{.contexts[0].context.user}
{.current-context}
{.contexts[0].name}
{.users[0].user.client-certificate-data}
{.users[0].user.client-key-data}
{.clusters[0].cluster.certificate-authority-data}')
  expect_eq "$f server" "${fields[0]}" "$2"
  expect_eq "$f user" "${fields[1]}" "$3"
  expect_eq "$f context user" "${fields[2]}" "$3"
  expect_eq "$f current context" "${fields[3]}" "${fields[4]}"
  expect_eq "$f client certificate" "$(base64 -d <<<"${fields[5]}")" "$(cat "$4")"
  expect_eq "$f client key" "$(base64 -d <<<"${fields[6]}")" "$(cat "$5")"
  expect_eq "$f CA" "$(base64 -d <<<"${fields[7]}")" "$(cat "$6")"
  expect_eq "$f mode" "$(stat -c %a "$f")" 600
}

APISERVER_SANS="DNS:coreos1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,\
DNS:kubernetes.default.svc.cluster.local,IP Address:10.3.0.1,IP Address:192.168.24.11"
LEAF_BC="critical CA:FALSE"
CA_KU="critical *Certificate Sign, CRL Sign"
SERVER="TLS Web Server Authentication"
CLIENT="TLS Web Client Authentication"
BOTH="$SERVER, $CLIENT"

# ---------------------------------------------------------------------------------------
# modern, ecdsa-p256
M=$T/modern
make_config modern ecdsa-p256 "$T/modern.yaml"
must_kc 0 init --config "$T/modern.yaml" --pki "$M" --json
expect_eq "modern: files created" "$(json 'd["created"]' <<<"$OUT")" 48
expect_eq "modern: flavor" "$(json 'd["flavor"]' <<<"$OUT")" modern

MODERN_FILES="admin-key.pem admin.conf admin.pem apiserver-etcd-client-key.pem
apiserver-etcd-client.pem apiserver-key.pem apiserver-kubelet-client-key.pem
apiserver-kubelet-client.pem apiserver.pem ca-key.pem ca.pem controller-manager-key.pem
controller-manager.conf controller-manager.pem etcd/ca-key.pem etcd/ca.pem
etcd/healthcheck-client-key.pem etcd/healthcheck-client.pem etcd/peer-key.pem etcd/peer.pem
etcd/server-key.pem etcd/server.pem front-proxy-ca-key.pem front-proxy-ca.pem
front-proxy-client-key.pem front-proxy-client.pem kube-proxy-key.pem kube-proxy.conf
kube-proxy.pem kubelet-coreos1-key.pem kubelet-coreos1.conf kubelet-coreos1.pem
kubelet-coreos2-key.pem kubelet-coreos2.conf kubelet-coreos2.pem kubelet-coreos3-key.pem
kubelet-coreos3.conf kubelet-coreos3.pem kubelet-coreos4-key.pem kubelet-coreos4.conf
kubelet-coreos4.pem sa.key sa.pub scheduler-key.pem scheduler.conf scheduler.pem
signer-key.pem signer.pem"
expect_eq "modern: file set" "$(cd "$M" && find . -type f | sed 's|^\./||' | sort | xargs)" \
  "$(xargs <<<"$MODERN_FILES")"

# Every profile as product.md's table has it (EC keys: no keyEncipherment).
EC_KU="critical Digital Signature"
expect_cert "$M/ca.pem" "subject=CN=kubernetes-ca | bc=critical CA:TRUE* | ku=$CA_KU | eku= | san="
expect_cert "$M/front-proxy-ca.pem" \
  "subject=CN=front-proxy-ca | bc=critical CA:TRUE* | ku=$CA_KU | eku= | san="
expect_cert "$M/etcd/ca.pem" "subject=CN=etcd-ca | bc=critical CA:TRUE* | ku=$CA_KU | eku= | san="
expect_cert "$M/apiserver.pem" \
  "subject=CN=kube-apiserver | bc=$LEAF_BC | ku=$EC_KU | eku=$SERVER | san=$APISERVER_SANS"
for n in 1 2 3 4; do
  expect_cert "$M/kubelet-coreos$n.pem" "subject=CN=system:node:coreos$n,O=system:nodes | \
bc=$LEAF_BC | ku=$EC_KU | eku=$BOTH | san=DNS:coreos$n,IP Address:192.168.24.1$n"
done
expect_cert "$M/admin.pem" \
  "subject=CN=kubernetes-admin,O=system:masters | bc=$LEAF_BC | ku=$EC_KU | eku=$CLIENT | san="
expect_cert "$M/kube-proxy.pem" \
  "subject=CN=system:kube-proxy | bc=$LEAF_BC | ku=$EC_KU | eku=$CLIENT | san="
expect_cert "$M/controller-manager.pem" \
  "subject=CN=system:kube-controller-manager | bc=$LEAF_BC | ku=$EC_KU | eku=$CLIENT | san="
expect_cert "$M/scheduler.pem" \
  "subject=CN=system:kube-scheduler | bc=$LEAF_BC | ku=$EC_KU | eku=$CLIENT | san="
expect_cert "$M/apiserver-kubelet-client.pem" "subject=CN=kube-apiserver-kubelet-client,\
O=system:masters | bc=$LEAF_BC | ku=$EC_KU | eku=$CLIENT | san="
expect_cert "$M/front-proxy-client.pem" \
  "subject=CN=front-proxy-client | bc=$LEAF_BC | ku=$EC_KU | eku=$CLIENT | san="
ETCD_SANS="DNS:coreos1,DNS:localhost,IP Address:0:0:0:0:0:0:0:1,IP Address:127.0.0.1,\
IP Address:192.168.24.11"
expect_cert "$M/etcd/server.pem" \
  "subject=CN=coreos1 | bc=$LEAF_BC | ku=$EC_KU | eku=$BOTH | san=$ETCD_SANS"
expect_cert "$M/etcd/peer.pem" \
  "subject=CN=coreos1 | bc=$LEAF_BC | ku=$EC_KU | eku=$BOTH | san=$ETCD_SANS"
expect_cert "$M/etcd/healthcheck-client.pem" \
  "subject=CN=kube-etcd-healthcheck-client | bc=$LEAF_BC | ku=$EC_KU | eku=$CLIENT | san="
expect_cert "$M/apiserver-etcd-client.pem" \
  "subject=CN=kube-apiserver-etcd-client | bc=$LEAF_BC | ku=$EC_KU | eku=$CLIENT | san="
expect_cert "$M/signer.pem" "subject=CN=kubeca | bc=$LEAF_BC | ku=$EC_KU | eku=$SERVER | \
san=DNS:coreos1,IP Address:192.168.24.11"

# The SANs as `openssl x509 -text` prints them, one by one.
api_text=$(openssl x509 -in "$M/apiserver.pem" -noout -text)
# (The comma ends a name in that list, so "DNS:kubernetes," is not "DNS:kubernetes.default".)
for san in "DNS:kubernetes," "DNS:kubernetes.default," "DNS:kubernetes.default.svc," \
  "DNS:kubernetes.default.svc.cluster.local," "DNS:coreos1," "IP Address:10.3.0.1," \
  "IP Address:192.168.24.11"; do
  expect_contains "apiserver -text" "$api_text" "$san"
done

# Chains, keys, modes.
check_pairs "$M" ca front-proxy-ca etcd/ca apiserver admin signer kubelet-coreos1 \
  kubelet-coreos2 kubelet-coreos3 kubelet-coreos4 kube-proxy controller-manager scheduler \
  apiserver-kubelet-client front-proxy-client etcd/server etcd/peer etcd/healthcheck-client \
  apiserver-etcd-client
expect_fails "etcd/server is not under the cluster CA" openssl verify -CAfile "$M/ca.pem" \
  "$M/etcd/server.pem"
expect_fails "front-proxy-client is not under the cluster CA" openssl verify -CAfile "$M/ca.pem" \
  "$M/front-proxy-client.pem"
expect_fails "apiserver is not under the etcd CA" openssl verify -CAfile "$M/etcd/ca.pem" \
  "$M/apiserver.pem"
expect_eq "sa.key mode" "$(stat -c %a "$M/sa.key")" 600
expect_eq "sa.pub is sa.key's public key" "$(pubkey_of_key "$M/sa.key")" "$(cat "$M/sa.pub")"
expect_eq "PKI folder mode" "$(stat -c %a "$M")" 700
# Serials: 128-bit positive, all different.
serials=$(for f in $(cd "$M" && find . -name '*.pem' ! -name '*-key.pem'); do
  openssl x509 -in "$M/$f" -noout -serial
done)
expect_eq "serials are unique" "$(sort <<<"$serials" | uniq -d)" ""
expect_eq "serials are 128-bit" "$(grep -cvE '^serial=[89A-F][0-9A-F]{31}$' <<<"$serials" || true)" 0
# notBefore is five minutes back; one year to notAfter.
nb=$(date -d "$(openssl x509 -in "$M/admin.pem" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in "$M/admin.pem" -noout -enddate | cut -d= -f2)" +%s)
written=$(stat -c %Y "$M/admin.pem")
expect_eq "admin notBefore is backdated 5 minutes" \
  "$(((written - nb) >= 300 && (written - nb) < 330))" 1
expect_eq "admin validity is 8760h + 5m" "$((na - nb))" $((8760 * 3600 + 300))

# Kubeconfigs.
check_kubeconfig "$M/admin.conf" https://192.168.24.11:6443 kubernetes-admin "$M/admin.pem" \
  "$M/admin-key.pem" "$M/ca.pem"
check_kubeconfig "$M/kubelet-coreos2.conf" https://192.168.24.11:6443 system:node:coreos2 \
  "$M/kubelet-coreos2.pem" "$M/kubelet-coreos2-key.pem" "$M/ca.pem"
check_kubeconfig "$M/scheduler.conf" https://192.168.24.11:6443 system:kube-scheduler \
  "$M/scheduler.pem" "$M/scheduler-key.pem" "$M/ca.pem"

# Idempotent: a second run changes no byte and says so.
before=$(tree_state "$M")
kc 0 init --config "$T/modern.yaml" --pki "$M" --json
expect_eq "re-run: created" "$(json 'd["created"]' <<<"$OUT")" 0
expect_eq "re-run: nothing changed" "$(tree_state "$M")" "$before"
kc 0 init --config "$T/modern.yaml" --pki "$M"
expect_contains "re-run: summary" "$OUT" "0 files created, 48 kept"

# One leaf pair deleted: only that pair is made again.
old_api_key=$(cat "$M/apiserver-key.pem")
rm "$M/apiserver.pem" "$M/apiserver-key.pem"
kc 0 init --config "$T/modern.yaml" --pki "$M" --json
expect_eq "apiserver re-made: created" "$(json 'd["created"]' <<<"$OUT")" 2
expect_eq "apiserver re-made: which" \
  "$(json '" ".join(sorted(f["path"] for f in d["files"] if f["created"]))' <<<"$OUT")" \
  "apiserver-key.pem apiserver.pem"
after=$(tree_state "$M")
only_api=' \./apiserver(-key)?\.pem$'
expect_eq "apiserver re-made: the rest unchanged" "$(grep -vE "$only_api" <<<"$after")" \
  "$(grep -vE "$only_api" <<<"$before")"
expect_not_contains "apiserver re-made: a new key" "$(cat "$M/apiserver-key.pem")" "$old_api_key"
check_pairs "$M" apiserver
expect_cert "$M/apiserver.pem" \
  "subject=CN=kube-apiserver | bc=$LEAF_BC | ku=$EC_KU | eku=$SERVER | san=$APISERVER_SANS"

# A kubelet pair deleted: the pair and the kubeconfig that embeds it.
before=$(tree_state "$M")
rm "$M/kubelet-coreos3.pem" "$M/kubelet-coreos3-key.pem"
kc 0 init --config "$T/modern.yaml" --pki "$M" --json
expect_eq "kubelet re-made: which" \
  "$(json '" ".join(sorted(f["path"] for f in d["files"] if f["created"]))' <<<"$OUT")" \
  "kubelet-coreos3-key.pem kubelet-coreos3.conf kubelet-coreos3.pem"
expect_eq "kubelet re-made: the rest unchanged" "$(tree_state "$M" | grep -v kubelet-coreos3)" \
  "$(grep -v kubelet-coreos3 <<<"$before")"
check_kubeconfig "$M/kubelet-coreos3.conf" https://192.168.24.11:6443 system:node:coreos3 \
  "$M/kubelet-coreos3.pem" "$M/kubelet-coreos3-key.pem" "$M/ca.pem"

# Only the certificate deleted: it is issued again for the key that is there.
key_before=$(pubkey_of_key "$M/scheduler-key.pem")
rm "$M/scheduler.pem"
kc 0 init --config "$T/modern.yaml" --pki "$M"
expect_eq "scheduler re-issued for its key" "$(pubkey_of_cert "$M/scheduler.pem")" "$key_before"
check_pairs "$M" scheduler

# sa.pub lost (a run stopped after sa.key): derived again from the key, which stays.
sa_key_before=$(sha256sum <"$M/sa.key")
rm "$M/sa.pub"
kc 0 init --config "$T/modern.yaml" --pki "$M"
expect_eq "sa.pub made again from sa.key" "$(openssl pkey -pubin -in "$M/sa.pub" 2>&1)" \
  "$(openssl pkey -in "$M/sa.key" -pubout)"
expect_eq "sa.key kept" "$(sha256sum <"$M/sa.key")" "$sa_key_before"

# ---------------------------------------------------------------------------------------
# coreos-2016: the seed's RSA-2048 procedure, file names and subjects.
C=$T/coreos
make_config coreos-2016 rsa-2048 "$T/coreos.yaml"
must_kc 0 init --config "$T/coreos.yaml" --pki "$C"
expect_eq "coreos: file set" "$(cd "$C" && find . -type f | sed 's|^\./||' | sort | xargs)" \
  "admin-key.pem admin.conf admin.pem apiserver-key.pem apiserver.pem ca-key.pem ca.pem \
coreos2-worker-key.pem coreos2-worker.pem coreos3-worker-key.pem coreos3-worker.pem \
coreos4-worker-key.pem coreos4-worker.pem kubelet-coreos2.conf kubelet-coreos3.conf \
kubelet-coreos4.conf signer-key.pem signer.pem"

SEED_KU="critical Digital Signature, Non Repudiation, Key Encipherment"
expect_cert "$C/ca.pem" "subject=CN=kube-ca | bc=critical CA:TRUE* | ku=$CA_KU | eku= | san="
expect_cert "$C/apiserver.pem" \
  "subject=CN=kube-apiserver | bc=$LEAF_BC | ku=$SEED_KU | eku=$SERVER | san=$APISERVER_SANS"
for n in 2 3 4; do
  expect_cert "$C/coreos$n-worker.pem" "subject=CN=coreos$n | bc=$LEAF_BC | ku=$SEED_KU | \
eku=$BOTH | san=DNS:coreos$n,IP Address:192.168.24.1$n"
done
expect_cert "$C/admin.pem" "subject=CN=kube-admin | bc=$LEAF_BC | ku=$SEED_KU | eku=$CLIENT | san="
check_pairs "$C" ca apiserver coreos2-worker coreos3-worker coreos4-worker admin signer
for f in ca apiserver coreos2-worker admin; do
  expect_match "$f-key.pem is RSA 2048" "$(openssl pkey -in "$C/$f-key.pem" -noout -text | head -1)" \
    "Private-Key: (2048 bit*"
done
expect_contains "coreos signature" "$(openssl x509 -in "$C/apiserver.pem" -noout -text)" \
  "Signature Algorithm: sha256WithRSAEncryption"
# The seed's kube-apiserver listens on 443.
check_kubeconfig "$C/admin.conf" https://192.168.24.11 kube-admin "$C/admin.pem" \
  "$C/admin-key.pem" "$C/ca.pem"
check_kubeconfig "$C/kubelet-coreos2.conf" https://192.168.24.11 coreos2 "$C/coreos2-worker.pem" \
  "$C/coreos2-worker-key.pem" "$C/ca.pem"
before=$(tree_state "$C")
kc 0 init --config "$T/coreos.yaml" --pki "$C"
expect_contains "coreos re-run" "$OUT" "0 files created, 18 kept"
expect_eq "coreos re-run: nothing changed" "$(tree_state "$C")" "$before"

# The seed's own openssl steps, with kubeca's CA: openssl signs with it, and kubeca's
# apiserver certificate says at least what the seed's does.
cp "$KUBECA_SOURCE/tests/data/seed-apiserver-openssl.cnf" "$T/openssl.cnf"
(
  cd "$T"
  openssl genrsa -out seed-apiserver-key.pem 2048 2>/dev/null
  openssl req -new -key seed-apiserver-key.pem -out seed-apiserver.csr -subj "/CN=kube-apiserver" \
    -config openssl.cnf
  openssl x509 -req -in seed-apiserver.csr -CA "$C/ca.pem" -CAkey "$C/ca-key.pem" \
    -CAcreateserial -out seed-apiserver.pem -days 365 -extensions v3_req -extfile openssl.cnf \
    2>/dev/null
)
expect_ok "the seed's apiserver.pem under kubeca's CA" openssl verify -CAfile "$C/ca.pem" \
  "$T/seed-apiserver.pem"
seed=$(describe_cert "$T/seed-apiserver.pem")
ours=$(describe_cert "$C/apiserver.pem")
expect_eq "seed and kubeca: subject" "${seed%% |*}" "${ours%% |*}"
key_usage() { sed 's/.* | ku=\(critical \)\{0,1\}\([^|]*\) | eku=.*/\2/' <<<"$1"; }
expect_eq "seed and kubeca: key usage" "$(key_usage "$seed")" "$(key_usage "$ours")"
expect_eq "seed's key usage" "$(key_usage "$seed")" \
  "Digital Signature, Non Repudiation, Key Encipherment"
for san in $(sed 's/.*san=//; s/IP Address:/IP_/g; s/,/ /g' <<<"$seed"); do
  expect_contains "seed SAN in kubeca's apiserver.pem" ",${ours##*san=}," ",${san/IP_/IP Address:},"
done

# ---------------------------------------------------------------------------------------
# --env-file: the seed's shell variables (with brace lists) drive the same init.
E=$T/env
printf 'cluster: {flavor: coreos-2016}\npki: {key_algorithm: ecdsa-p256}\n' >"$T/env.yaml"
kc 0 init --config "$T/env.yaml" --env-file "$KUBECA_SOURCE/examples/seed.env" --pki "$E"
for n in 2 3 4; do
  expect_cert "$E/coreos$n-worker.pem" "subject=CN=coreos$n | bc=$LEAF_BC | ku=$SEED_KU | \
eku=$BOTH | san=DNS:coreos$n,IP Address:192.168.24.1$n"
  verify_chain "$E/ca.pem" "$E/coreos$n-worker.pem"
done
expect_cert "$E/apiserver.pem" \
  "subject=CN=kube-apiserver | bc=$LEAF_BC | ku=$SEED_KU | eku=$SERVER | san=$APISERVER_SANS"

# ---------------------------------------------------------------------------------------
# An IPv6 cluster: v6 ranges, v6 SANs, a bracketed server URL.
S=$T/v6
cat >"$T/v6.yaml" <<'EOF'
master: {host: "fd00:24::11", name: m1}
etcd: {endpoints: ["https://[fd00:24::11]:2379"]}
network: {pod_cidr: "fd00:10:244::/56", service_cidr: "fd00:10:96::/112", dns_service_ip: "fd00:10:96::a"}
workers: [{name: w1, ip: "fd00:24::12"}]
pki: {key_algorithm: ecdsa-p256}
EOF
must_kc 0 init --config "$T/v6.yaml" --pki "$S"
expect_cert "$S/apiserver.pem" "subject=CN=kube-apiserver | bc=$LEAF_BC | ku=$EC_KU | eku=$SERVER | \
san=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,\
DNS:kubernetes.default.svc.cluster.local,DNS:m1,IP Address:FD00:10:96:0:0:0:0:1,\
IP Address:FD00:24:0:0:0:0:0:11"
expect_cert "$S/kubelet-w1.pem" "subject=CN=system:node:w1,O=system:nodes | bc=$LEAF_BC | \
ku=$EC_KU | eku=$BOTH | san=DNS:w1,IP Address:FD00:24:0:0:0:0:0:12"
check_pairs "$S" apiserver kubelet-w1 etcd/server signer
check_kubeconfig "$S/admin.conf" "https://[fd00:24::11]:6443" kubernetes-admin "$S/admin.pem" \
  "$S/admin-key.pem" "$S/ca.pem"
before=$(tree_state "$S")
kc 0 init --config "$T/v6.yaml" --pki "$S"
expect_eq "v6 re-run: nothing changed" "$(tree_state "$S")" "$before"

finish

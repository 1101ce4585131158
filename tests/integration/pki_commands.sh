#!/usr/bin/env bash
# The commands around an initialised PKI folder: issue, kubeconfig, certs list and
# check-expiration, demo. Checked with openssl, kubectl and python3's json module.
source "$(dirname "$0")/lib.sh"

json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# openssl's serial, lower-case hex.
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
# openssl's notAfter as kubeadm's tables show it.
table_end() {
  date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" '+%b %d, %Y %H:%M UTC'
}
# openssl's notAfter as RFC 3339 UTC.
not_after_of() {
  date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ
}

P=$T/pki
make_config modern ecdsa-p256 "$T/cluster.yaml"
must_kc 0 init --config "$T/cluster.yaml" --pki "$P"

# ---------------------------------------------------------------------------------------
# issue: a node outside the config. Without --config the key follows the CA's (P-256 here),
# which gets no keyEncipherment.
kc 0 issue kubelet --name n9 --ip 192.168.24.19 --pki "$P"
expect_cert "$P/kubelet-n9.pem" "subject=CN=system:node:n9,O=system:nodes | bc=critical CA:FALSE \
| ku=critical Digital Signature | eku=TLS Web Server Authentication, \
TLS Web Client Authentication | san=DNS:n9,IP Address:192.168.24.19"
expect_match "n9 key is P-256 like its CA" "$(openssl pkey -in "$P/kubelet-n9-key.pem" -noout -text |
  grep NIST)" "NIST CURVE: P-256"
verify_chain "$P/ca.pem" "$P/kubelet-n9.pem"
expect_eq "n9 key mode" "$(stat -c %a "$P/kubelet-n9-key.pem")" 600
expect_eq "n9 key matches" "$(openssl pkey -in "$P/kubelet-n9-key.pem" -pubout)" \
  "$(openssl x509 -in "$P/kubelet-n9.pem" -noout -pubkey)"
expect_contains "issue output: serial" "$OUT" "serial $(serial_of "$P/kubelet-n9.pem")"

# It never overwrites (bad input, exit 2, as for every output path without --force).
n9=$(sha256sum "$P/kubelet-n9.pem" "$P/kubelet-n9-key.pem")
kc 2 issue kubelet --name n9 --ip 192.168.24.19 --pki "$P"
expect_one_error_line "issue twice" "$P/kubelet-n9.pem exists"
expect_eq "issue twice: files unchanged" "$(sha256sum "$P/kubelet-n9.pem" "$P/kubelet-n9-key.pem")" "$n9"

# --json, --out, extra names, IPv6.
kc 0 issue kubelet --name n8 --ip 192.168.24.18 --ip fd00::18 --dns n8.example.com \
  --pki "$P" --out "$T/n8" --json
expect_eq "--json profile" "$(json 'd["profile"]' <<<"$OUT")" kubelet
expect_eq "--json certificate" "$(json 'd["certificate"]' <<<"$OUT")" "$T/n8.pem"
expect_eq "--json key" "$(json 'd["key"]' <<<"$OUT")" "$T/n8-key.pem"
expect_eq "--json serial" "$(json 'd["serial"]' <<<"$OUT")" "$(serial_of "$T/n8.pem")"
expect_eq "--json not_after" "$(json 'd["not_after"]' <<<"$OUT")" "$(not_after_of "$T/n8.pem")"
expect_contains "--json subject" "$(json 'd["subject"]' <<<"$OUT")" "CN=system:node:n8"
expect_cert "$T/n8.pem" "subject=CN=system:node:n8,O=system:nodes | * | san=DNS:n8,\
DNS:n8.example.com,IP Address:192.168.24.18,IP Address:FD00:0:0:0:0:0:0:18"
verify_chain "$P/ca.pem" "$T/n8.pem"

# Per-profile CAs and the config's own node.
kc 0 issue etcd-peer --name etcd2 --ip 192.168.24.22 --pki "$P"
expect_cert "$P/etcd/peer-etcd2.pem" "subject=CN=etcd2 | * | eku=TLS Web Server Authentication, \
TLS Web Client Authentication | san=DNS:etcd2,DNS:localhost,IP Address:0:0:0:0:0:0:0:1,\
IP Address:127.0.0.1,IP Address:192.168.24.22"
verify_chain "$P/etcd/ca.pem" "$P/etcd/peer-etcd2.pem"
expect_fails "etcd-peer is not under the cluster CA" openssl verify -CAfile "$P/ca.pem" \
  "$P/etcd/peer-etcd2.pem"
kc 0 issue admin --pki "$P" --out "$T/ops" --key-algorithm ed25519
expect_cert "$T/ops.pem" "subject=CN=kubernetes-admin,O=system:masters | bc=critical CA:FALSE | \
ku=critical Digital Signature | eku=TLS Web Client Authentication | san="
expect_match "--key-algorithm ed25519" "$(openssl pkey -in "$T/ops-key.pem" -noout -text |
  head -1)" "ED25519 Private-Key:"
verify_chain "$P/ca.pem" "$T/ops.pem"
kc 2 issue admin --pki "$P" --out "$T/ops2" --key-algorithm dsa-1024
expect_one_error_line "issue with an unknown algorithm" '--key-algorithm: unknown "dsa-1024"'
kc 0 issue kubelet --name coreos2 --config "$T/cluster.yaml" --pki "$P" --out "$T/coreos2"
expect_cert "$T/coreos2.pem" "subject=CN=system:node:coreos2,O=system:nodes | * | \
san=DNS:coreos2,IP Address:192.168.24.12"

# The seed's flavor names the node as the seed did.
make_config coreos-2016 ecdsa-p256 "$T/coreos.yaml"
must_kc 0 init --config "$T/coreos.yaml" --pki "$T/coreos"
kc 0 issue kubelet --name coreos9 --ip 192.168.24.19 --config "$T/coreos.yaml" --pki "$T/coreos"
expect_cert "$T/coreos/coreos9-worker.pem" "subject=CN=coreos9 | bc=critical CA:FALSE | \
ku=critical Digital Signature, Non Repudiation, Key Encipherment | * | \
san=DNS:coreos9,IP Address:192.168.24.19"
verify_chain "$T/coreos/ca.pem" "$T/coreos/coreos9-worker.pem"

# Bad requests: exit 2, nothing written.
kc 2 issue kubelet --name ../n7 --ip 192.168.24.17 --pki "$P"
expect_one_error_line "issue bad name" '--name: "../n7" is not a valid DNS name'
kc 2 issue kubelet --name n7 --ip 192.168.24.300 --pki "$P"
expect_one_error_line "issue bad IP" '--ip: "192.168.24.300" is not an IP address'
kc 2 issue kubelet --name n7 --pki "$P"
expect_one_error_line "issue without IP" 'profile kubelet for "n7" needs --ip'
kc 2 issue root --pki "$P"
expect_one_error_line "issue unknown profile" 'unknown profile "root"'
kc 2 issue ca --pki "$P"
expect_one_error_line "issue a CA" 'unknown profile "ca"'
kc 2 issue apiserver --pki "$P"
expect_one_error_line "issue apiserver without config" "profile apiserver needs --config"
kc 2 issue kube-proxy --pki "$T/coreos" --config "$T/coreos.yaml"
expect_one_error_line "issue outside the flavor" "does not exist in flavor coreos-2016"
expect_eq "bad requests wrote nothing" "$(find "$P" -name '*n7*' | wc -l)" 0
kc 1 issue admin --pki "$T/empty" --out "$T/x"
expect_one_error_line "issue without a CA" "ca.pem not found"

# ---------------------------------------------------------------------------------------
# kubeconfig: kubectl reads it.
kc 0 kubeconfig --user admin --server https://127.0.0.1:6443 --pki "$P" --out "$T/admin.conf"
view() {
  kubectl --kubeconfig "$1" config view --raw -o "jsonpath={.clusters[0].cluster.server} \
{.users[0].name} {.contexts[0].context.user} {.current-context}"
}
expect_eq "kubeconfig admin" "$(view "$T/admin.conf")" \
  "https://127.0.0.1:6443 kubernetes-admin kubernetes-admin kubernetes-admin@kubernetes"
expect_eq "kubeconfig admin cert" "$(kubectl --kubeconfig "$T/admin.conf" config view --raw -o \
  'jsonpath={.users[0].user.client-certificate-data}' | base64 -d)" "$(cat "$P/admin.pem")"
expect_eq "kubeconfig admin key" "$(kubectl --kubeconfig "$T/admin.conf" config view --raw -o \
  'jsonpath={.users[0].user.client-key-data}' | base64 -d)" "$(cat "$P/admin-key.pem")"
expect_eq "kubeconfig CA" "$(kubectl --kubeconfig "$T/admin.conf" config view --raw -o \
  'jsonpath={.clusters[0].cluster.certificate-authority-data}' | base64 -d)" "$(cat "$P/ca.pem")"
expect_eq "kubeconfig mode" "$(stat -c %a "$T/admin.conf")" 600
kc 0 kubeconfig --user kubelet-n9 --server https://192.168.24.11:6443 --pki "$P" \
  --out "$T/n9.conf"
expect_eq "kubeconfig n9" "$(view "$T/n9.conf")" \
  "https://192.168.24.11:6443 system:node:n9 system:node:n9 system:node:n9@kubernetes"
kc 2 kubeconfig --user admin --server http://127.0.0.1:6443 --pki "$P" --out "$T/bad.conf"
expect_one_error_line "kubeconfig over http" "--server"
kc 2 kubeconfig --user nobody --server https://127.0.0.1:6443 --pki "$P" --out "$T/bad.conf"
expect_one_error_line "kubeconfig unknown user" "$P/nobody.pem not found"
expect_eq "bad kubeconfigs not written" "$(test -e "$T/bad.conf" && echo yes || echo no)" no

# ---------------------------------------------------------------------------------------
# certs list --json: every certificate once, with its CA, serial and expiry as openssl reads
# them; a PEM file a kubeconfig embeds is in that row's copies (kubeadm's admin.conf row).
kc 0 certs list --pki "$P" --json
echo "$OUT" >"$T/list.json"
pems=$(cd "$P" && find . -name '*.pem' ! -name '*-key.pem' | sed 's|^\./||; s|\.pem$||' | sort)
confs=$(cd "$P" && find . -name '*.conf' | sed 's|^\./||' | sort)
expect_eq "certs list: names and copies" \
  "$(json '"\n".join(sorted([c["name"] for c in d] + sum([c["copies"] for c in d], [])))' <"$T/list.json")" \
  "$(sort <<<"$pems"$'\n'"$confs")"
expect_eq "certs list: no name twice" "$(json 'len({c["name"] for c in d}) == len(d)' <"$T/list.json")" True
for name in $pems; do
  case $name in
    ca | front-proxy-ca | etcd/ca) want_ca="" want_is_ca=True ;;
    etcd/* | apiserver-etcd-client) want_ca=etcd/ca want_is_ca=False ;;
    front-proxy-client) want_ca=front-proxy-ca want_is_ca=False ;;
    *) want_ca=ca want_is_ca=False ;;
  esac
  row=$(json "[(c['certificate_authority'], c['is_ca'], c['serial'], c['expires'], c['status'])
    for c in d if c['name'] == '$name' or '$name' in c['copies']][0]" <"$T/list.json")
  expect_eq "certs list: $name" "$row" "('$want_ca', $want_is_ca, '$(serial_of "$P/$name.pem")', \
'$(not_after_of "$P/$name.pem")', 'valid')"
done
expect_eq "certs list: admin.conf is admin.pem" \
  "$(json "[(c['serial'], c['copies']) for c in d if c['name'] == 'admin.conf'][0]" <"$T/list.json")" \
  "('$(serial_of "$P/admin.pem")', ['admin'])"
kc 0 certs list --pki "$P"
expect_match "certs list table header" "$(head -1 <<<"$OUT")" \
  "CERTIFICATE*EXPIRES*RESIDUAL TIME*CERTIFICATE AUTHORITY*EXTERNALLY MANAGED*SERIAL*STATUS"
expect_match "certs list: etcd/server row" "$(grep '^etcd/server ' <<<"$OUT")" \
  "etcd/server *$(table_end "$P/etcd/server.pem") *364d *etcd/ca *no *$(serial_of "$P/etcd/server.pem") *valid"

# check-expiration: a certificate of a 240h config is within the 30-day warning; exit 0.
make_config modern ecdsa-p256 "$T/short.yaml" 's/cert_validity: 8760h/cert_validity: 240h/'
kc 0 issue kube-proxy --config "$T/short.yaml" --pki "$P" --out "$P/short-proxy"
nb=$(date -d "$(openssl x509 -in "$P/short-proxy.pem" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in "$P/short-proxy.pem" -noout -enddate | cut -d= -f2)" +%s)
expect_eq "short-proxy lives 240h" "$((na - nb))" $((240 * 3600 + 300))
kc 0 certs check-expiration --pki "$P"
expect_match "check-expiration: warning" "$(grep '^short-proxy ' <<<"$OUT")" \
  "short-proxy *$(table_end "$P/short-proxy.pem") *9d *ca *no *$(serial_of "$P/short-proxy.pem") *expiring *expires within 720h"
expect_eq "check-expiration: one warning" "$(grep -c 'expires within' <<<"$OUT")" 1
expect_match "check-expiration: header" "$(head -1 <<<"$OUT")" "CERTIFICATE *EXPIRES*WARNING"
kc 0 certs check-expiration --pki "$P" --json
expect_eq "check-expiration --json: status" \
  "$(json "{c['status'] for c in d['certificates'] if c['name'] == 'short-proxy'}" <<<"$OUT")" "{'expiring'}"
expect_eq "check-expiration --json: the others" \
  "$(json "sorted({c['status'] for c in d['certificates'] + d['certificateAuthorities'] if c['name'] != 'short-proxy'})" <<<"$OUT")" "['valid']"
expect_eq "check-expiration --json: residual" \
  "$(json "[c['residualTime'] for c in d['certificates'] if c['name'] == 'short-proxy'][0] // 3600" \
    <<<"$OUT")" 239
kc 0 certs check-expiration --pki "$P" --warn 200h
expect_eq "check-expiration --warn 200h: no warning" "$(grep -c 'expires within' <<<"$OUT" || true)" 0
kc 2 certs frob --pki "$P"
expect_one_error_line "certs unknown action" 'unknown action "frob"'
kc 2 certs list --pki "$T/nowhere"
expect_one_error_line "certs list on a missing folder" "$T/nowhere"

# ---------------------------------------------------------------------------------------
# demo: the whole story; the CA pin it prints is the one openssl computes from its CA.
kc 0 demo --dir "$T/demo"
expect_eq "demo prints the CA's SPKI hash as its pin" \
  "$(grep -oE 'sha256:[0-9a-f]{64}' <<<"$OUT" | sort -u)" "$(spki_pin "$T/demo/pki/ca.pem")"
verify_chain "$T/demo/pki/ca.pem" "$T/demo/pki/apiserver.pem"
# Without --dir it works in a temporary folder.
TMPDIR=$T kc 0 demo
expect_match "demo in a temporary folder: a pin" "$OUT" "*sha256:*"
expect_contains "demo in a temporary folder: where" "$OUT" "kubeca demo in $T/kubeca-demo-"

finish

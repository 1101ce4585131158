#!/usr/bin/env bash
# `kubeca init` on bad input and on a folder that disagrees with the config: exit codes, one
# error line naming the field or file, and not one byte written.
source "$(dirname "$0")/lib.sh"

make_config modern ecdsa-p256 "$T/good.yaml"

# bad_config NAME NEEDLE SED-EXPR...: init exits 2 with one line naming the field, and the
# PKI folder is not created.
bad_config() {
  local name=$1 needle=$2
  shift 2
  make_config modern ecdsa-p256 "$T/$name.yaml" "$@"
  kc 2 init --config "$T/$name.yaml" --pki "$T/pki-$name"
  expect_one_error_line "$name" "$needle"
  if [ -e "$T/pki-$name" ]; then fail "$name: $T/pki-$name was created"; else pass; fi
}

bad_config pod-host-bits 'network.pod_cidr: "10.2.0.1/16" has host bits set' \
  's|pod_cidr: 10.2.0.0/16|pod_cidr: 10.2.0.1/16|'
bad_config cidr-parse 'network.service_cidr: "10.3.0.0/33" is not a CIDR' \
  's|service_cidr: 10.3.0.0/24|service_cidr: 10.3.0.0/33|'
bad_config overlap 'network.service_cidr: 10.2.3.0/24 overlaps network.pod_cidr 10.2.0.0/16' \
  's|service_cidr: 10.3.0.0/24|service_cidr: 10.2.3.0/24|'
bad_config too-large 'network.service_cidr: 10.32.0.0/11 is larger than /12' \
  's|service_cidr: 10.3.0.0/24|service_cidr: 10.32.0.0/11|' \
  's|dns_service_ip: 10.3.0.10|dns_service_ip: 10.32.0.10|'
bad_config k8s-service-ip 'network.k8s_service_ip: 10.3.0.2 must be the first IP of 10.3.0.0/24' \
  's|^\(  dns_service_ip: 10.3.0.10\).*|\1\n  k8s_service_ip: 10.3.0.2|'
bad_config dns-broadcast 'network.dns_service_ip: 10.3.0.255 is the network, first or broadcast' \
  's|dns_service_ip: 10.3.0.10|dns_service_ip: 10.3.0.255|'
bad_config dns-outside 'network.dns_service_ip: 10.4.0.10 is outside network.service_cidr' \
  's|dns_service_ip: 10.3.0.10|dns_service_ip: 10.4.0.10|'
bad_config master-in-pods 'master.host: 10.2.0.11 lies inside network.pod_cidr' \
  's|host: 192.168.24.11 |host: 10.2.0.11 |'
bad_config etcd-in-services 'etcd.endpoints[1]: 10.3.0.12 lies inside network.service_cidr' \
  's|//192.168.24.12:2379|//10.3.0.12:2379|'
bad_config worker-in-services 'workers[2].ip: 10.3.0.14 lies inside network.service_cidr' \
  's|ip: 192.168.24.14|ip: 10.3.0.14|'
bad_config worker-name-twice 'workers[1].name: "coreos2" is used twice' \
  's|name: coreos3|name: coreos2|'
bad_config worker-ip-twice 'workers[2].ip: 192.168.24.12 is used twice' \
  's|ip: 192.168.24.14|ip: 192.168.24.12|'
bad_config worker-path 'workers[0].name: "../etc" is not a valid DNS name' \
  's|name: coreos2|name: ../etc|'
bad_config master-slash 'master.name: "core/os1" is not a valid DNS name' \
  's|name: coreos1|name: core/os1|'
bad_config unknown-field 'cluster.nmae: unknown field' 's|  name: kubernetes|  nmae: kubernetes|'
bad_config key-algorithm 'pki.key_algorithm: "rsa-1024" is not one of' \
  's|key_algorithm: ecdsa-p256|key_algorithm: rsa-1024|'
bad_config duration-unit "pki.ca_validity: duration \"10y\" has unknown unit 'y'" \
  's|ca_validity: 87600h|ca_validity: 10y|'
bad_config duration-huge 'pki.ca_validity: duration "9999999h" is longer than 100 years' \
  's|ca_validity: 87600h|ca_validity: 9999999h|'
bad_config cert-longer 'pki.cert_validity: is longer than pki.ca_validity' \
  's|cert_validity: 8760h|cert_validity: 87601h|'
bad_config flavor 'cluster.flavor: "vintage" is not a flavor' 's|flavor: modern|flavor: vintage|'
# The malformed YAML case, named after its file.
make_config modern ecdsa-p256 "$T/broken.yaml" 's|^  name: coreos1|\tname: coreos1|'
kc 2 init --config "$T/broken.yaml" --pki "$T/pki-broken"
expect_one_error_line "malformed YAML" "$T/broken.yaml: line 8: "
expect_eq "malformed YAML: no folder" "$(test -e "$T/pki-broken" && echo yes || echo no)" no

# The seed's env file with a wrong K8S_SERVICE_IP: the error names the variable.
sed 's/^K8S_SERVICE_IP=.*/K8S_SERVICE_IP=10.3.0.5/' "$KUBECA_SOURCE/examples/seed.env" >"$T/bad.env"
kc 2 init --env-file "$T/bad.env" --pki "$T/pki-env"
expect_one_error_line "env file" "K8S_SERVICE_IP (network.k8s_service_ip): 10.3.0.5 must be"
printf 'MASTER_HOST=192.168.24.11\nWORKER_IP=192.168.24.{12,13,14}\nWORKER_FQDN=coreos{2,3}\n' \
  >"$T/short.env"
kc 2 init --env-file "$T/short.env" --pki "$T/pki-env"
expect_one_error_line "env file lists" "WORKER_FQDN: 2 names for 3 WORKER_IP addresses"
expect_eq "env file: no folder" "$(test -e "$T/pki-env" && echo yes || echo no)" no

kc 2 init --config "$T/missing.yaml" --pki "$T/pki-missing"
expect_one_error_line "missing config" "$T/missing.yaml"

# ---------------------------------------------------------------------------------------
# A folder that exists: bad input leaves it as it was.
P=$T/pki
must_kc 0 init --config "$T/good.yaml" --pki "$P"
state=$(tree_state "$P")
unchanged() { expect_eq "$1: folder unchanged" "$(tree_state "$P")" "$state"; }

kc 2 init --config "$T/pod-host-bits.yaml" --pki "$P"
expect_one_error_line "bad config on an existing folder" "network.pod_cidr"
unchanged "bad config"

# An existing CA is never overwritten: another flavor names another CA subject.
make_config modern ecdsa-p256 "$T/flavor.yaml" 's|flavor: modern|flavor: coreos-2016|'
kc 1 init --config "$T/flavor.yaml" --pki "$P"
expect_one_error_line "CA of another flavor" "$P/ca.pem names CN=kubernetes-ca"
expect_contains "CA of another flavor: what the config wants" "$ERR" "CN=kube-ca"
unchanged "CA of another flavor"

# A certificate whose SANs differ from the config is an error naming the file.
make_config modern ecdsa-p256 "$T/extra-san.yaml" 's|extra_sans: \[\]|extra_sans: [api.example.com]|'
kc 1 init --config "$T/extra-san.yaml" --pki "$P"
expect_one_error_line "extra SAN" "$P/apiserver.pem names CN=kube-apiserver"
expect_contains "extra SAN: the wanted name" "$ERR" "DNS:api.example.com"
unchanged "extra SAN"

# The same with an IPv6 SAN (Botan's own SAN reader does not see those).
V=$T/pki-v6
make_config modern ecdsa-p256 "$T/v6a.yaml" 's|extra_sans: \[\]|extra_sans: ["fd00::1"]|'
make_config modern ecdsa-p256 "$T/v6b.yaml" 's|extra_sans: \[\]|extra_sans: ["fd00::2"]|'
must_kc 0 init --config "$T/v6a.yaml" --pki "$V"
expect_match "IPv6 SAN" "$(describe_cert "$V/apiserver.pem")" "*,IP Address:FD00:0:0:0:0:0:0:1"
v6_state=$(tree_state "$V")
kc 0 init --config "$T/v6a.yaml" --pki "$V"
expect_contains "IPv6 SAN: same config" "$OUT" "0 files created"
kc 1 init --config "$T/v6b.yaml" --pki "$V"
expect_one_error_line "IPv6 SAN changed" "$V/apiserver.pem names"
expect_contains "IPv6 SAN changed: the wanted IP" "$ERR" "IP:fd00::2;"
expect_eq "IPv6 SAN changed: folder unchanged" "$(tree_state "$V")" "$v6_state"

make_config modern ecdsa-p256 "$T/moved.yaml" 's|ip: 192.168.24.13|ip: 192.168.24.33|'
kc 1 init --config "$T/moved.yaml" --pki "$P"
expect_one_error_line "worker moved" "$P/kubelet-coreos3.pem names"
expect_contains "worker moved: the wanted IP" "$ERR" "IP:192.168.24.33"
unchanged "worker moved"

# Another key algorithm in the config does not replace keys that exist.
make_config modern ed25519 "$T/ed.yaml"
kc 0 init --config "$T/ed.yaml" --pki "$P"
expect_contains "other algorithm: nothing made" "$OUT" "0 files created"
unchanged "other algorithm"

# A key that is not its certificate's key.
cp "$P/admin-key.pem" "$T/admin-key.pem"
cp "$P/scheduler-key.pem" "$P/admin-key.pem"
state=$(tree_state "$P")
kc 1 init --config "$T/good.yaml" --pki "$P"
expect_one_error_line "swapped key" "$P/admin-key.pem is not the key of $P/admin.pem"
unchanged "swapped key"
cp "$T/admin-key.pem" "$P/admin-key.pem"

# A certificate without its key.
mv "$P/signer-key.pem" "$T/signer-key.pem"
state=$(tree_state "$P")
kc 1 init --config "$T/good.yaml" --pki "$P"
expect_one_error_line "certificate without key" "$P/signer.pem exists without its key"
unchanged "certificate without key"
mv "$T/signer-key.pem" "$P/signer-key.pem"

# The CA deleted: a new CA would leave every kept certificate untrusted. It is refused, and
# no CA is made.
mkdir "$T/ca-backup"
mv "$P/ca.pem" "$P/ca-key.pem" "$T/ca-backup/"
state=$(tree_state "$P")
kc 1 init --config "$T/good.yaml" --pki "$P"
expect_one_error_line "CA deleted" "was not issued by $P/ca.pem"
unchanged "CA deleted"
expect_eq "CA deleted: no new CA" "$(test -e "$P/ca.pem" && echo yes || echo no)" no
mv "$T/ca-backup/ca.pem" "$T/ca-backup/ca-key.pem" "$P/"
kc 0 init --config "$T/good.yaml" --pki "$P"
expect_contains "CA restored" "$OUT" "0 files created"

# ---------------------------------------------------------------------------------------
# Usage errors: exit 2, one line.
kc 2 frobnicate
expect_one_error_line "unknown command" 'unknown command "frobnicate"'
kc 2
# Without --pki the folder is KUBECA_PKI's, else /etc/kubernetes/pki: the tests name one in
# $T, never the machine's (cli_env.sh tests the variables and defaults).
echo "not a folder" >"$T/env-file-not-dir"
KUBECA_PKI=$T/env-file-not-dir kc 2 init --config "$T/good.yaml"
expect_one_error_line "init without --pki, KUBECA_PKI a file" "KUBECA_PKI: $T/env-file-not-dir is not a folder"
if [ ! -e /etc/kubeca/cluster.yaml ]; then
  kc 2 init --pki "$T/nowhere"
  expect_one_error_line "init without a config" "--config or --env-file is required (the default, /etc/kubeca/cluster.yaml, does not exist)"
fi
kc 2 init --config "$T/good.yaml" --pki "$T/nowhere" --frob
expect_one_error_line "init with an unknown flag" "frob"
KUBECA_PKI=$T/nowhere kc 1 issue admin
expect_one_error_line "issue without --pki" "$T/nowhere/ca.pem not found"
KUBECA_PKI=$T/nowhere kc 2 certs list
expect_one_error_line "certs without --pki" "KUBECA_PKI: $T/nowhere is not a folder"
KUBECA_PKI=$T/nowhere kc 2 kubeconfig --user admin --server https://127.0.0.1:6443 --out "$T/x.conf"
expect_one_error_line "kubeconfig without --pki" "$T/nowhere/admin.pem not found"
expect_eq "usage errors wrote nothing" "$(test -e "$T/nowhere" -o -e "$T/x.conf" && echo yes || echo no)" no
echo "not a folder" >"$T/a-file"
kc 2 init --config "$T/good.yaml" --pki "$T/a-file"
expect_one_error_line "init into a file" "--pki: $T/a-file is not a folder"
expect_eq "init into a file left it as it was" "$(cat "$T/a-file")" "not a folder"
for cmd in init issue kubeconfig certs demo; do
  kc 0 "$cmd" --help
  expect_contains "$cmd --help" "$OUT" "Usage: kubeca $cmd"
done

finish

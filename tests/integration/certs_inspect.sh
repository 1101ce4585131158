#!/usr/bin/env bash
# kubeca certs inspect FILE: a certificate (PEM, DER), a kubeconfig, a CSR; whether it
# chains to the PKI and is revoked; inputs made by openssl; bad inputs. Checked with openssl.
source "$(dirname "$0")/lib.sh"

py() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
pyy() { python3 -c 'import yaml,sys; d=yaml.safe_load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
when() { date -u -d "$(openssl x509 -in "$2" -noout "-$1" | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ; }
# openssl's SANs as "DNS:a, IP:b" in kubeca's order (DNS names, then IPs, as written).
sans_of() {
  openssl x509 -in "$1" -noout -ext subjectAltName | tail -n +2 | sed 's/^ *//; s/IP Address:/IP:/g'
}

P=$T/pki
make_config modern ecdsa-p256 "$T/cluster.yaml" "s|^  url: .*|&\n  store: sqlite:$T/k.db|"
must_kc 0 init --config "$T/cluster.yaml" --pki "$P"

# A certificate of the PKI, field by field against openssl.
A=$P/apiserver.pem
kc 0 certs inspect "$A" --pki "$P" --config "$T/cluster.yaml" -o json
J=$OUT
expect_eq "kind" "$(py 'd["kind"]' <<<"$J")" certificate
expect_eq "subject" "$(py 'd["subject"]' <<<"$J")" "CN=kube-apiserver"
expect_eq "sans" "$(py '", ".join(d["sans"])' <<<"$J")" "$(sans_of "$A")"
expect_eq "usages" "$(py 'd["usages"]' <<<"$J")" "['digital signature', 'server auth']"
expect_eq "issuer" "$(py 'd["issuer"]' <<<"$J")" "$(openssl x509 -in "$A" -noout -issuer -nameopt sep_comma_plus_space,sname | cut -d= -f2-)"
expect_eq "serial" "$(py 'd["serial"]' <<<"$J")" "$(serial_of "$A")"
expect_eq "not_before" "$(py 'd["not_before"]' <<<"$J")" "$(when startdate "$A")"
expect_eq "not_after" "$(py 'd["not_after"]' <<<"$J")" "$(when enddate "$A")"
expect_eq "chains to ca" "$(py 'd["chains_to"]' <<<"$J")" ca
expect_eq "in the store, not revoked" "$(py '(d["in_store"], d["revoked"])' <<<"$J")" "(True, False)"
expect_eq "key" "$(py 'd["key"]' <<<"$J")" "ECDSA 256 bits"
kc 0 certs inspect "$P/etcd/server.pem" --pki "$P" -o yaml
expect_eq "etcd/server chains to etcd/ca" "$(pyy 'd["chains_to"]' <<<"$OUT")" etcd/ca
expect_eq "no store: revoked unknown" "$(pyy 'd["revoked"]' <<<"$OUT")" None
expect_eq "yaml dates are strings" "$(pyy 'type(d["not_after"]).__name__' <<<"$OUT")" str
# Revoked in the store: inspect says so, offline.
kc 0 revoke --cert "$P/kubelet-coreos2.pem" --pki "$P" --store "sqlite:$T/k.db"
kc 0 certs inspect "$P/kubelet-coreos2.pem" --store "sqlite:$T/k.db" --json
expect_eq "revoked" "$(py 'd["revoked"]' <<<"$OUT")" True
# The table: one field a row, dates as kubeadm's tables.
kc 0 certs inspect "$A" --pki "$P"
expect_match "table subject" "$(grep '^SUBJECT ' <<<"$OUT")" "SUBJECT *CN=kube-apiserver"
expect_match "table not after" "$(grep '^NOT AFTER ' <<<"$OUT")" \
  "NOT AFTER *$(date -u -d "$(when enddate "$A")" '+%b %d, %Y %H:%M UTC')"
expect_match "table chains" "$(grep '^CHAINS TO ' <<<"$OUT")" "CHAINS TO *ca"

# A kubeconfig: the certificate it embeds.
kc 0 certs inspect "$P/admin.conf" --pki "$P" -o json
expect_eq "kubeconfig kind" "$(py 'd["kind"]' <<<"$OUT")" kubeconfig
expect_eq "kubeconfig subject" "$(py 'd["subject"]' <<<"$OUT")" "O=system:masters, CN=kubernetes-admin"
expect_eq "kubeconfig serial" "$(py 'd["serial"]' <<<"$OUT")" "$(serial_of "$P/admin.pem")"
expect_eq "kubeconfig usages" "$(py 'd["usages"]' <<<"$OUT")" "['digital signature', 'client auth']"

# openssl-made inputs: a certificate of another CA (PEM and DER), a CSR.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/o-key.pem" -out "$T/o.pem" -days 2 \
  -subj "/CN=stranger/O=elsewhere" -addext "subjectAltName=DNS:s.example.com,IP:10.9.9.9" 2>/dev/null
kc 0 certs inspect "$T/o.pem" --pki "$P" -o json
expect_eq "stranger: does not chain" "$(py 'd["chains_to"]' <<<"$OUT")" False
expect_eq "stranger: subject in the certificate's order" "$(py 'd["subject"]' <<<"$OUT")" "CN=stranger, O=elsewhere"
expect_eq "stranger: sans" "$(py 'd["sans"]' <<<"$OUT")" "['DNS:s.example.com', 'IP:10.9.9.9']"
expect_eq "stranger: key" "$(py 'd["key"]' <<<"$OUT")" "RSA 2048 bits"
openssl x509 -in "$T/o.pem" -outform der -out "$T/o.der"
kc 0 certs inspect "$T/o.der" -o json
expect_eq "DER: serial" "$(py 'd["serial"]' <<<"$OUT")" "$(serial_of "$T/o.pem")"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/r-key.pem" \
  -out "$T/r.csr" -subj "/O=system:nodes/CN=system:node:n5" \
  -addext "subjectAltName=DNS:n5,IP:10.0.0.5" -addext "extendedKeyUsage=clientAuth" 2>/dev/null
kc 0 certs inspect "$T/r.csr" -o json
expect_eq "csr kind" "$(py 'd["kind"]' <<<"$OUT")" csr
expect_eq "csr subject" "$(py 'd["subject"]' <<<"$OUT")" "O=system:nodes, CN=system:node:n5"
expect_eq "csr sans" "$(py 'd["sans"]' <<<"$OUT")" "['DNS:n5', 'IP:10.0.0.5']"
expect_eq "csr usages" "$(py 'd["usages"]' <<<"$OUT")" "['client auth']"
expect_eq "csr: signature, no serial" "$(py '(d["signature_ok"], d["serial"])' <<<"$OUT")" "(True, None)"

# Bad inputs: one line, exit 2.
head -c 300 /dev/urandom >"$T/garbage"
kc 2 certs inspect "$T/garbage"
expect_one_error_line "garbage" "is not a certificate, a kubeconfig with an embedded certificate, or a CSR"
printf -- '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' >"$T/broken.pem"
kc 2 certs inspect "$T/broken.pem"
expect_one_error_line "a broken PEM" "is not a certificate"
kc 2 certs inspect "$P"
expect_one_error_line "a folder" "is a folder, not a file"
kc 2 certs inspect "$T/nowhere.pem"
expect_one_error_line "missing" "does not exist"
kc 2 certs inspect
expect_one_error_line "no file" "file"
kc 2 certs inspect "$A" --pki "$T/nowhere"
expect_one_error_line "--pki not a folder" "is not a folder"
kc 2 certs inspect "$A" --store "sqlite:$T/nowhere.db"
expect_one_error_line "--store missing" "no store"
[ ! -e "$T/nowhere.db" ] && pass || fail "inspect made a store"
kc 2 certs inspect "$A" --store "ftp://x"
expect_one_error_line "--store bad URL" "unsupported store URL"
kc 2 certs inspect "$A" --config "$T/nowhere.yaml"
expect_one_error_line "--config missing" "--config: $T/nowhere.yaml does not exist"
kc 2 certs inspect "$A" --env-file "$P"
expect_one_error_line "--env-file a folder" "is a folder, not a file"
kc 2 certs inspect "$A" "$A"
expect_one_error_line "two files" "unexpected argument"
kc 2 certs inspect "$A" -o wide
expect_one_error_line "-o wide" 'unknown output format "wide"'

finish

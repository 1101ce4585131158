#!/usr/bin/env bash
# What a kubeadm user reaches for around a PKI folder: the CA pin (ca pin, certs ca-hash),
# the folder modes, renewing a kubeconfig by the name the table prints. Checked with openssl.
source "$(dirname "$0")/lib.sh"

P=$T/pki
make_config modern ecdsa-p256 "$T/cluster.yaml"
must_kc 0 init --config "$T/cluster.yaml" --pki "$P"

# ---------------------------------------------------------------------------------------
# The CA pin, as openssl computes it from ca.pem.
want_pin=$(spki_pin "$P/ca.pem")
expect_match "openssl pin" "$want_pin" "sha256:????????????????????????????????????????????????????????????????"
kc 0 ca pin --pki "$P"
expect_eq "ca pin" "$OUT" "$want_pin"
kc 0 certs ca-hash --pki "$P"
expect_eq "certs ca-hash" "$OUT" "$want_pin"
kc 0 ca pin --help
expect_contains "ca pin --help" "$OUT" "SubjectPublicKeyInfo"
# Bad input: one line, exit 2.
kc 2 ca pin --pki "$T/nowhere"
expect_one_error_line "ca pin, no folder" "does not exist"
KUBECA_PKI=$T/nowhere kc 2 ca pin
expect_one_error_line "ca pin without --pki" "KUBECA_PKI: $T/nowhere/ca.pem does not exist"
kc 2 ca frobnicate --pki "$P"
expect_one_error_line "ca, unknown" "unknown ca command"
echo garbage >"$T/ca.pem"
mkdir -p "$T/bad" && cp "$T/ca.pem" "$T/bad/ca.pem"
kc 2 certs ca-hash --pki "$T/bad"
expect_one_error_line "ca-hash, not a certificate" "not a PEM certificate"

# ---------------------------------------------------------------------------------------
# Every folder init makes is 0700, whatever the umask: the folder, etcd/, and the parents
# it had to make.
expect_eq "folder modes" "$(cd "$P" && find . -type d -printf '%m %p\n' | sort)" "700 .
700 ./etcd"
(umask 022 && "$KUBECA" init --config "$T/cluster.yaml" --pki "$T/new/deep/pki" >/dev/null)
expect_eq "made parents and subfolders" "$(cd "$T/new" && find . -mindepth 1 -type d -printf '%m %p\n' |
  sort)" "700 ./deep
700 ./deep/pki
700 ./deep/pki/etcd"

# ---------------------------------------------------------------------------------------
# certs renew accepts every name the table prints; a kubeconfig's name renews the
# certificate it embeds and rewrites the kubeconfig.
embedded_pem() {
  python3 -c 'import base64,sys,yaml
d=yaml.safe_load(open(sys.argv[1]))
print(base64.b64decode(d["users"][0]["user"]["client-certificate-data"]).decode(), end="")' "$1"
}
old_serial=$(openssl x509 -in "$P/admin.pem" -noout -serial)
kc 0 certs renew admin.conf --pki "$P"
expect_contains "renew admin.conf: says so" "$OUT" "rewrote admin.conf"
new_serial=$(openssl x509 -in "$P/admin.pem" -noout -serial)
[ "$old_serial" != "$new_serial" ] && pass || fail "renew admin.conf: admin.pem serial unchanged"
embedded_pem "$P/admin.conf" >"$T/embedded.pem"
expect_eq "admin.conf embeds the renewed certificate" "$(openssl x509 -in "$T/embedded.pem" -noout -serial)" "$new_serial"
for name in $("$KUBECA" certs list --pki "$P" --json |
  python3 -c 'import json,sys; print(" ".join(c["name"] for c in json.load(sys.stdin) if not c["is_ca"]))'); do
  kc 0 certs renew "$name" --pki "$P"
  expect_contains "renew $name" "$OUT" "renewed "
done
kc 2 certs renew ca --pki "$P"
expect_one_error_line "renew a CA" "is a certificate authority"
kc 2 certs renew nothing.conf --pki "$P"
expect_one_error_line "renew an unknown kubeconfig" 'no certificate "nothing.conf"'
# A kubeconfig whose certificate is in no PEM file: renewed inside the kubeconfig.
rm "$P/scheduler.pem" "$P/scheduler-key.pem"
embedded_pem "$P/scheduler.conf" >"$T/before.pem"
kc 0 certs renew scheduler.conf --pki "$P"
embedded_pem "$P/scheduler.conf" >"$T/after.pem"
[ "$(openssl x509 -in "$T/before.pem" -noout -serial)" != "$(openssl x509 -in "$T/after.pem" -noout -serial)" ] &&
  pass || fail "scheduler.conf: serial unchanged"
expect_eq "scheduler.conf: same subject" "$(openssl x509 -in "$T/after.pem" -noout -subject)" \
  "$(openssl x509 -in "$T/before.pem" -noout -subject)"
verify_chain "$P/ca.pem" "$T/after.pem"
expect_eq "scheduler.conf: kubectl reads it" "$(kubectl config view --kubeconfig "$P/scheduler.conf" --raw \
  -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d | openssl x509 -noout -serial)" \
  "$(openssl x509 -in "$T/after.pem" -noout -serial)"
expect_eq "scheduler.conf: key matches" "$(kubectl config view --kubeconfig "$P/scheduler.conf" --raw \
  -o jsonpath='{.users[0].user.client-key-data}' | base64 -d | openssl pkey -pubout)" \
  "$(openssl x509 -in "$T/after.pem" -noout -pubkey)"
expect_eq "scheduler.conf: mode" "$(stat -c %a "$P/scheduler.conf")" 600
kc 0 certs renew all --pki "$P"
expect_contains "renew all takes scheduler.conf" "$OUT" "rewrote scheduler.conf"

finish

#!/usr/bin/env bash
# kubeadm's defaults and KUBECA_* variables: --pki is /etc/kubernetes/pki, --config is
# /etc/kubeca/cluster.yaml, and the flags that carry paths and URLs take KUBECA_PKI,
# KUBECA_CONFIG, KUBECA_STORE, KUBECA_SERVER, ...; a flag beats its variable, which beats
# the default; a bad variable gets the flag's error with the variable's name. Nothing here
# may touch /etc: every write names a folder in $T.
source "$(dirname "$0")/lib.sh"
etc_before=$(ls -d /etc/kubernetes /etc/kubeca 2>/dev/null || true)
unset KUBECA_PKI KUBECA_CONFIG KUBECA_ENV_FILE KUBECA_STORE KUBECA_KUBECONFIG KUBECA_SERVER \
  KUBECA_AUDIT_LOG KUBECA_CERTIFICATE_AUTHORITY KUBECA_CLIENT_CERTIFICATE KUBECA_CLIENT_KEY

cat >"$T/c.yaml" <<YAML
cluster: {name: test, flavor: modern}
master: {host: 127.0.0.1, name: m1}
workers: [{name: n1, ip: 127.0.0.2}]
pki: {key_algorithm: ecdsa-p256}
signer: {url: "https://127.0.0.1:8443", store: "sqlite:$T/kubeca.db"}
YAML

# --help tells the defaults and the variables.
kc 0 init --help
expect_contains "init --help: --pki default" "$OUT" "(=/etc/kubernetes/pki)"
expect_contains "init --help: --config default" "$OUT" "cluster.yaml, else /etc/kubeca/cluster.yaml"
expect_match "init --help: KUBECA_PKI" "$OUT" "*KUBECA_PKI*--pki*"
expect_match "init --help: KUBECA_CONFIG" "$OUT" "*KUBECA_CONFIG*--config*"
kc 0 token --help
expect_match "token --help: KUBECA_STORE" "$OUT" "*KUBECA_STORE*--store*"
expect_match "token --help: KUBECA_SERVER" "$OUT" "*KUBECA_SERVER*--server*"
kc 0 kubeconfig --help
expect_not_contains "kubeconfig --help: its --server is the API server's" "$OUT" "KUBECA_SERVER"
kc 0 serve --help
expect_match "serve --help: KUBECA_AUDIT_LOG" "$OUT" "*KUBECA_AUDIT_LOG*--audit-log*"

# The variables are used: init with no flag at all.
KUBECA_PKI=$T/pki KUBECA_CONFIG=$T/c.yaml kc 0 init
expect_contains "init from KUBECA_PKI and KUBECA_CONFIG" "$OUT" "$T/pki/ca.pem"
expect_ok "the CA is in KUBECA_PKI" test -f "$T/pki/ca.pem"
want_pin=$("$KUBECA" ca pin --pki "$T/pki")
KUBECA_PKI=$T/pki kc 0 ca pin
expect_eq "ca pin from KUBECA_PKI" "$OUT" "$want_pin"
# A flag beats its variable.
KUBECA_PKI=$T/nowhere kc 0 ca pin --pki "$T/pki"
expect_eq "--pki beats KUBECA_PKI" "$OUT" "$want_pin"
# An empty variable is unset (the default then; checked only where the machine has none).
if [ ! -e /etc/kubernetes/pki ]; then
  KUBECA_PKI= kc 2 ca pin
  expect_one_error_line "empty KUBECA_PKI: the default" "--pki: /etc/kubernetes/pki/ca.pem does not exist"
  kc 2 certs list
  expect_one_error_line "certs list: the default folder" "/etc/kubernetes/pki"
fi

# A bad variable: the flag's error, naming the variable; exit 2; nothing written.
kc 2 ca pin --pki "$T/nope"
flag_err=$ERR
KUBECA_PKI=$T/nope kc 2 ca pin
expect_one_error_line "bad KUBECA_PKI" "KUBECA_PKI: $T/nope/ca.pem does not exist"
expect_eq "bad KUBECA_PKI: the flag's error" "${ERR/KUBECA_PKI/--pki}" "$flag_err"
echo "a file" >"$T/a-file"
KUBECA_PKI=$T/a-file KUBECA_CONFIG=$T/c.yaml kc 2 init
expect_one_error_line "KUBECA_PKI a file" "KUBECA_PKI: $T/a-file is not a folder"
KUBECA_CONFIG=$T/missing.yaml kc 2 init --pki "$T/p2"
expect_one_error_line "bad KUBECA_CONFIG" "KUBECA_CONFIG: $T/missing.yaml does not exist"
expect_fails "bad KUBECA_CONFIG made no folder" test -e "$T/p2"
KUBECA_CONFIG=$T/missing.yaml kc 0 init --pki "$T/pki" --config "$T/c.yaml"
expect_contains "--config beats KUBECA_CONFIG" "$OUT" "0 files created"

# The store: KUBECA_STORE used, a bad one named, and a flag of the admin group wins.
KUBECA_STORE=sqlite:$T/kubeca.db kc 0 token create --node n1 --ip 127.0.0.2
token_id=${OUT%%.*}
kc 0 token list --store "sqlite:$T/kubeca.db"
expect_contains "token made through KUBECA_STORE" "$OUT" "$token_id"
KUBECA_STORE=bogus:x kc 2 token list
expect_one_error_line "bad KUBECA_STORE" "KUBECA_STORE: unsupported store URL \"bogus:x\""
KUBECA_STORE=sqlite:$T/none.db kc 2 token list
expect_one_error_line "KUBECA_STORE: no such store" "no store at $T/none.db"
expect_fails "KUBECA_STORE: nothing created" test -e "$T/none.db"
KUBECA_STORE=bogus:x kc 0 token list --store "sqlite:$T/kubeca.db"
expect_contains "--store beats KUBECA_STORE" "$OUT" "$token_id"
KUBECA_STORE=sqlite:$T/kubeca.db kc 2 token list --kubeconfig "$T/missing.conf"
expect_one_error_line "--kubeconfig turns KUBECA_STORE off" "--kubeconfig: $T/missing.conf does not exist"
KUBECA_KUBECONFIG=$T/missing.conf kc 2 token list
expect_one_error_line "bad KUBECA_KUBECONFIG" "KUBECA_KUBECONFIG: $T/missing.conf does not exist"

# The server: KUBECA_SERVER for the signer, checked as --server is.
KUBECA_SERVER=http://127.0.0.1:1 kc 2 token list --certificate-authority "$T/pki/ca.pem" \
  --client-certificate "$T/pki/admin.pem" --client-key "$T/pki/admin-key.pem"
expect_one_error_line "KUBECA_SERVER not https" "https://"
KUBECA_SERVER=https://127.0.0.1:1 kc 2 token list
expect_one_error_line "KUBECA_SERVER without its files" "KUBECA_SERVER needs --certificate-authority"
# kubeconfig's --server is the API server: KUBECA_SERVER is not taken for it.
KUBECA_SERVER=https://127.0.0.1:8443 kc 2 kubeconfig --pki "$T/pki" --user admin --out "$T/a.conf"
expect_one_error_line "kubeconfig ignores KUBECA_SERVER" "--server"
expect_fails "no kubeconfig written" test -e "$T/a.conf"

etc_after=$(ls -d /etc/kubernetes /etc/kubeca 2>/dev/null || true)
expect_eq "nothing made in /etc" "$etc_after" "$etc_before"
finish

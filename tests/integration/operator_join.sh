#!/usr/bin/env bash
# kubeadm's `token create --print-join-command`: the printed line, run as printed on a
# node, gets the node its certificate. And docs/api.md names exactly the token fields the
# service returns.
source "$(dirname "$0")/serve_lib.sh"

D=$T/c
write_cluster "$D"
start_server "$D"
STORE="sqlite:$D/kubeca.db"
PIN=$(pin "$D")
"$KUBECA" kubeconfig --pki "$D/pki" --user admin --server "$URL" --out "$T/admin.conf" >/dev/null

# Over mTLS: the server from the kubeconfig, the pin from the service's /v1/ca.
out=$("$KUBECA" token create --kubeconfig "$T/admin.conf" --node n1 --ip 127.0.0.2 --print-join-command)
line1=$(sed -n 1p <<<"$out")
line2=$(sed -n 2p <<<"$out")
check "two lines" '[ "$(wc -l <<<"$out")" -eq 2 ]'
check "join line: $line1" '[[ "$line1" =~ ^kubeca\ request\ --server\ $URL\ --token\ [a-z0-9]{6}\.[a-z0-9]{16}\ --ca-hash\ $PIN\ --out-dir\ /etc/kubernetes/pki\ --name\ n1$ ]]'
check "comment: token file preferred: $line2" '[[ "$line2" == "# "*--token-file* ]]'
# Run as printed (the out-dir moved into the test folder): the node gets its certificate.
read -ra words <<<"${line1/\/etc\/kubernetes\/pki/$T/n1}"
check "the printed command works" '"$KUBECA" "${words[@]:1}" >"$T/req.out" 2>&1'
check "n1 chains to the CA" 'openssl verify -CAfile "$D/pki/ca.pem" "$T/n1/n1.pem" >/dev/null'
check "n1 subject" '[[ "$(openssl x509 -in "$T/n1/n1.pem" -noout -subject -nameopt RFC2253)" == *CN=system:node:n1* ]]'

# On the store: the URL from --config's signer.url, the pin from --pki.
out=$("$KUBECA" token create --store "$STORE" --config "$D/cluster.yaml" --pki "$D/pki" --node n2 --ip 127.0.0.3 --print-join-command | head -1)
check "store form: $out" '[[ "$out" =~ ^kubeca\ request\ --server\ https://127\.0\.0\.1:8443\ --token\ [a-z0-9.]{23}\ --ca-hash\ $PIN\ --out-dir\ /etc/kubernetes/pki\ --name\ n2$ ]]'
# --json carries it too.
j=$("$KUBECA" token create --kubeconfig "$T/admin.conf" --node n2 --ip 127.0.0.3 --print-join-command --json)
check "json join_command" 'python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert d[\"join_command\"].endswith(\"--name n2\") and d[\"token\"] in d[\"join_command\"]" "$j"'

# Bad combinations: exit 2, one line, no token made.
before=$("$KUBECA" token list --store "$STORE" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
bad() { # bad WHAT NEEDLE ARGS...
  local what=$1 needle=$2 rc=0 err
  shift 2
  err=$("$KUBECA" "$@" 2>&1 >/dev/null) || rc=$?
  check "$what: exit 2 ($rc)" '[ "$rc" -eq 2 ]'
  check "$what: one kubeca: line naming $needle ($err)" '[[ "$err" == "kubeca: "*"$needle"* ]] && [ "$(wc -l <<<"$err")" -eq 1 ]'
}
bad "store without --config" "--config" token create --store "$STORE" --pki "$D/pki" --node n3 --ip 127.0.0.4 --print-join-command
bad "store without --pki" "--pki" token create --store "$STORE" --config "$D/cluster.yaml" --node n3 --ip 127.0.0.4 --print-join-command
bad "--pki without the flag" "--print-join-command" token create --store "$STORE" --pki "$D/pki" --node n3 --ip 127.0.0.4
bad "--pki nowhere" "does not exist" token create --store "$STORE" --config "$D/cluster.yaml" --pki "$T/nowhere" --node n3 --ip 127.0.0.4 --print-join-command
bad "on list" "token create" token list --store "$STORE" --print-join-command
bad "request, bad pin: names ca pin" "kubeca ca pin --pki DIR" request --server "$URL" --token abcdef.0123456789abcdef --ca-hash sha256:12 --out-dir "$T/x" --name n3
after=$("$KUBECA" token list --store "$STORE" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "no token made by the bad ones ($before, $after)" '[ "$before" = "$after" ]'
check "--help says the token file is preferred" '"$KUBECA" token --help | grep -q -- "--token-file"'

# docs/api.md names exactly the fields POST and GET /v1/tokens return.
doc_fields() { # doc_fields ENDPOINT: the quoted names of the success column's JSON
  grep -F "| \`$1\` |" "$KUBECA_SOURCE/docs/api.md" | awk -F'|' '{print $5}' | grep -oE '"[a-z_]+"' |
    tr -d '"' | sort | paste -sd' '
}
post=$(curl -s --cacert "$D/pki/ca.pem" --cert "$D/pki/admin.pem" --key "$D/pki/admin-key.pem" \
  -H 'Content-Type: application/json' --data '{"node": "n2", "ips": ["127.0.0.3"]}' "$URL/v1/tokens")
got=$(python3 -c 'import json,sys; print(" ".join(sorted(json.loads(sys.argv[1]))))' "$post")
want=$(doc_fields "POST /v1/tokens")
check "POST /v1/tokens fields: doc [$want], service [$got]" '[ -n "$want" ] && [ "$want" = "$got" ]'
list=$(curl -s --cacert "$D/pki/ca.pem" --cert "$D/pki/admin.pem" --key "$D/pki/admin-key.pem" "$URL/v1/tokens")
got=$(python3 -c 'import json,sys; l=json.loads(sys.argv[1]); print(" ".join(sorted(set().union(*map(set, l)))))' "$list")
want=$(doc_fields "GET /v1/tokens")
check "GET /v1/tokens fields: doc [$want], service [$got]" '[ -n "$want" ] && [ "$want" = "$got" ]'

finish

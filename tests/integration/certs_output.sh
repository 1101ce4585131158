#!/usr/bin/env bash
# -o json|yaml|table on the commands that print data (--json is -o json), kubeadm's
# check-expiration shape and date formats, one row per certificate, certs renew with
# today's config and --dry-run, external CA mode. Checked against openssl and python3.
source "$(dirname "$0")/lib.sh"

# py EXPR: EXPR over d, the JSON on stdin.
py() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# pyy EXPR: the same over YAML.
pyy() { python3 -c 'import json,yaml,sys; d=yaml.safe_load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
rfc3339_end() { date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ; }
table_end() { date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" '+%b %d, %Y %H:%M UTC'; }
sans_of() { openssl x509 -in "$1" -noout -ext subjectAltName | tail -n +2 | tr -d ' '; }

P=$T/pki
make_config modern ecdsa-p256 "$T/cluster.yaml" "s|^  url: .*|&\n  store: sqlite:$T/k.db|"
must_kc 0 init --config "$T/cluster.yaml" --pki "$P" -o yaml
expect_eq "init -o yaml: created" "$(pyy 'd["created"]' <<<"$OUT")" \
  "$(find "$P" -type f ! -name '.*' | wc -l)"

# ---------------------------------------------------------------------------------------
# check-expiration -o json: kubeadm's CertificateExpirationInfo.
kc 0 certs check-expiration --pki "$P" -o json
J=$OUT
expect_eq "kind" "$(py 'd["kind"]' <<<"$J")" CertificateExpirationInfo
expect_eq "field names" "$(py 'sorted([c for c in d["certificates"] if c["name"]=="apiserver"][0])' <<<"$J")" \
  "['caName', 'expirationDate', 'externallyManaged', 'missing', 'name', 'residualTime', 'serial', 'status', 'subject']"
expect_eq "apiserver expirationDate" \
  "$(py '[c["expirationDate"] for c in d["certificates"] if c["name"]=="apiserver"][0]' <<<"$J")" \
  "$(rfc3339_end "$P/apiserver.pem")"
residual=$(py '[c["residualTime"] for c in d["certificates"] if c["name"]=="apiserver"][0]' <<<"$J")
want=$(($(date -u -d "$(rfc3339_end "$P/apiserver.pem")" +%s) - $(date +%s)))
[ $((residual - want)) -ge 0 ] && [ $((residual - want)) -le 60 ] && pass ||
  fail "residualTime $residual, want about $want seconds"
expect_eq "caName etcd/server" \
  "$(py '[c["caName"] for c in d["certificates"] if c["name"]=="etcd/server"][0]' <<<"$J")" etcd/ca
expect_eq "CAs: no caName, own section" \
  "$(py '[(c["name"], "caName" in c, c["externallyManaged"], c["missing"]) for c in d["certificateAuthorities"]]' <<<"$J")" \
  "[('ca', False, False, False), ('etcd/ca', False, False, False), ('front-proxy-ca', False, False, False)]"
expect_eq "no leaf externally managed or missing" \
  "$(py 'sorted({(c["externallyManaged"], c["missing"]) for c in d["certificates"]})' <<<"$J")" "[(False, False)]"
# -o yaml says the same; --json is -o json.
kc 0 certs check-expiration --pki "$P" -o yaml
# (residualTime aside: a second has passed)
same='json.dumps([{k: v for k, v in c.items() if k != "residualTime"} for c in d["certificates"] + d["certificateAuthorities"]], sort_keys=True)'
expect_eq "yaml = json" "$(pyy "$same" <<<"$OUT")" "$(py "$same" <<<"$J")"
kc 0 certs check-expiration --pki "$P" --json
expect_eq "--json = -o json" "$(py 'd["kind"]' <<<"$OUT")" CertificateExpirationInfo
kc 0 certs check-expiration --pki "$P" --output json
expect_eq "--output json" "$(py 'len(d["certificates"])' <<<"$OUT")" "$(py 'len(d["certificates"])' <<<"$J")"

# The table: kubeadm's columns and date format; a kubeconfig is the row for the certificate
# it embeds (admin.conf, no admin), each certificate once.
kc 0 certs check-expiration --pki "$P" -o table
expect_match "table header" "$(head -1 <<<"$OUT")" \
  "CERTIFICATE*EXPIRES*RESIDUAL TIME*CERTIFICATE AUTHORITY*EXTERNALLY MANAGED*"
expect_match "apiserver row" "$(grep '^apiserver ' <<<"$OUT")" \
  "apiserver *$(table_end "$P/apiserver.pem") *364d *ca *no *$(serial_of "$P/apiserver.pem") *valid*"
expect_eq "admin.conf is a row" "$(grep -c '^admin.conf ' <<<"$OUT")" 1
expect_eq "admin is not" "$(grep -c '^admin ' <<<"$OUT" || true)" 0
expect_eq "each serial once" "$(awk 'NF>5 && $1!="CERTIFICATE" {print $(NF-1)}' <<<"$OUT" | sort | uniq -d)" ""
kc 0 certs list --pki "$P" -o json
expect_eq "list: admin.conf holds admin's copy" \
  "$(py '[c["copies"] for c in d if c["name"]=="admin.conf"][0]' <<<"$OUT")" "['admin']"
expect_eq "list: no admin row" "$(py '[c["name"] for c in d if c["name"]=="admin"]' <<<"$OUT")" "[]"
expect_eq "list: not_before" "$(py '[c["not_before"] for c in d if c["name"]=="apiserver"][0]' <<<"$OUT")" \
  "$(date -u -d "$(openssl x509 -in "$P/apiserver.pem" -noout -startdate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)"
# certs renew takes every name the table prints; a CA is refused with the reason.
"$KUBECA" certs list --pki "$P" >"$T/table"
leaves=$(awk '/^$/ {exit} NR>1 {print $1}' "$T/table")
cas=$(awk 'f && NF {print $1} /^CERTIFICATE AUTHORITY/ {f=1}' "$T/table")
expect_eq "table: the CAs" "$(xargs <<<"$cas")" "ca etcd/ca front-proxy-ca"
expect_eq "table: 16 leaves" "$(wc -w <<<"$leaves")" 16
for name in $leaves; do
  kc 0 certs renew "$name" --pki "$P" --dry-run
  expect_contains "renew --dry-run $name" "$OUT" "would renew "
done
for name in $cas; do
  kc 2 certs renew "$name" --pki "$P" --dry-run
  expect_one_error_line "renew $name" "is a certificate authority"
done

# ---------------------------------------------------------------------------------------
# A bad -o: one line, exit 2, nothing done; --json with another -o is bad too.
before=$(tree_state "$P")
for cmd in "certs list --pki $P" "certs check-expiration --pki $P" "certs renew all --pki $P" \
  "certs inspect $P/ca.pem" "ca pin --pki $P" "certs ca-hash --pki $P" \
  "token list --store sqlite:$T/k.db" "token create --node n1 --ip 10.0.0.1 --store sqlite:$T/k.db" \
  "issue kubelet --name n7 --ip 10.0.0.7 --pki $P" "init --config $T/cluster.yaml --pki $P" \
  "revoke --serial 01 --pki $P --store sqlite:$T/k.db" \
  "store migrate --from sqlite:$T/k.db --to sqlite:$T/k2.db"; do
  # shellcheck disable=SC2086
  kc 2 $cmd -o xml
  expect_one_error_line "$cmd -o xml" 'unknown output format "xml" (json, yaml or table)'
done
kc 2 certs list --pki "$P" --json -o yaml
expect_one_error_line "--json -o yaml" "disagree"
kc 2 certs list --pki "$P" -o
expect_one_error_line "-o without a value" "output"
expect_eq "bad -o changed nothing" "$(tree_state "$P")" "$before"
[ ! -e "$T/k2.db" ] && pass || fail "store migrate -o xml made the target"
kc 0 token list --store "sqlite:$T/k.db" -o json
expect_eq "bad -o made no token" "$OUT" "[]"

# ---------------------------------------------------------------------------------------
# The other commands' data: token create/list, ca pin, issue, revoke, store migrate.
kc 0 ca pin --pki "$P" -o json
expect_eq "ca pin -o json" "$(py 'd["pin"]' <<<"$OUT")" "$(spki_pin "$P/ca.pem")"
kc 0 certs ca-hash --pki "$P" -o yaml
expect_eq "ca-hash -o yaml" "$(pyy 'd["pin"]' <<<"$OUT")" "$(spki_pin "$P/ca.pem")"
kc 0 token create --node n1 --ip 10.0.0.1 --store "sqlite:$T/k.db" -o yaml
expect_match "token create -o yaml: token" "$(pyy 'd["token"]' <<<"$OUT")" "??????.????????????????"
expect_eq "token create -o yaml: node" "$(pyy 'd["node"]' <<<"$OUT")" n1
expect_eq "token create -o yaml: expires_at is a string" "$(pyy 'type(d["expires_at"]).__name__' <<<"$OUT")" str
tid=$(pyy 'd["id"]' <<<"$OUT")
texp=$(pyy 'd["expires_at"]' <<<"$OUT")
kc 0 token list --store "sqlite:$T/k.db"
expect_match "token list table date" "$(grep "^$tid " <<<"$OUT")" \
  "$tid *n1 *kubelet *0/1 *$(date -u -d "$texp" '+%b %d, %Y %H:%M UTC') *active"
kc 0 token list --store "sqlite:$T/k.db" -o yaml
expect_eq "token list -o yaml" "$(pyy '[t["id"] for t in d]' <<<"$OUT")" "['$tid']"
kc 0 issue kubelet --name n7 --ip 10.0.0.7 --pki "$P" --config "$T/cluster.yaml" -o yaml
expect_eq "issue -o yaml serial" "$(pyy 'd["serial"]' <<<"$OUT")" "$(serial_of "$P/kubelet-n7.pem")"
expect_eq "issue -o yaml subject, as certs list" "$(pyy 'd["subject"]' <<<"$OUT")" \
  "$("$KUBECA" certs list --pki "$P" --json | py '[c["subject"] for c in d if c["name"]=="kubelet-n7"][0]')"
kc 0 revoke --serial "$(serial_of "$P/kubelet-n7.pem")" --pki "$P" --store "sqlite:$T/k.db" -o json
expect_eq "revoke -o json" "$(py '[(r["serial"], r["reason"]) for r in d]' <<<"$OUT")" \
  "[('$(serial_of "$P/kubelet-n7.pem")', 'unspecified')]"
kc 0 store migrate --from "sqlite:$T/k.db" --to "sqlite:$T/k3.db" -o json
expect_eq "store migrate -o json" "$(py '(d["tokens"], d["revoked"], d["verified"])' <<<"$OUT")" "(1, 1, True)"

# ---------------------------------------------------------------------------------------
# certs renew applies today's config: a SAN added to it is in the renewed apiserver
# certificate; --dry-run shows it and writes nothing. The config init used changes nothing.
kc 0 certs renew all --pki "$P" --config "$T/cluster.yaml" --dry-run -o json
expect_eq "same config: no change planned" "$(py '[c["name"] for c in d if c["added"] or c["removed"]]' <<<"$OUT")" "[]"
expect_eq "same config: every leaf planned" "$(py 'len(d)' <<<"$OUT")" 17
make_config modern ecdsa-p256 "$T/new.yaml" "s|^  url: .*|&\n  store: sqlite:$T/k.db|" \
  's|^  extra_sans: \[\]|  extra_sans: [api.example.com, 192.168.24.99]|'
kc 1 init --config "$T/new.yaml" --pki "$P"
expect_contains "init names the stale apiserver" "$ERR" "apiserver.pem"
before=$(tree_state "$P")
db_before=$(sha256sum "$T/k.db")
kc 0 certs renew apiserver --pki "$P" --config "$T/new.yaml" --dry-run
expect_contains "dry run: says what it adds" "$OUT" "would renew apiserver, adds DNS:api.example.com, IP:192.168.24.99"
kc 0 certs renew all --pki "$P" --config "$T/new.yaml" --dry-run -o json
expect_eq "dry run json: apiserver adds" \
  "$(py '[c["added"] for c in d if c["name"]=="apiserver"][0]' <<<"$OUT")" "['DNS:api.example.com', 'IP:192.168.24.99']"
expect_eq "dry run json: admin.conf would be rewritten" \
  "$(py '[c["kubeconfigs"] for c in d if c["name"]=="admin"][0]' <<<"$OUT")" "['admin.conf']"
expect_eq "dry run json: no serial" "$(py '{c["serial"] for c in d}' <<<"$OUT")" "{None}"
expect_eq "dry run: files unchanged" "$(tree_state "$P")" "$before"
expect_eq "dry run: no lock or temporary file" "$(find "$P" -name '.*' | wc -l)" 0
expect_eq "dry run: store unchanged" "$(sha256sum "$T/k.db")" "$db_before"
kc 2 certs renew apiserver --pki "$P" --dry-run=yes
expect_one_error_line "--dry-run=yes" "dry-run"
kc 2 certs list --pki "$P" --dry-run
expect_one_error_line "--dry-run on list" "goes with certs renew"
old_serial=$(serial_of "$P/apiserver.pem")
kc 0 certs renew apiserver --pki "$P" --config "$T/new.yaml"
expect_contains "renew: says what it added" "$OUT" "adds DNS:api.example.com, IP:192.168.24.99"
expect_contains "renewed apiserver SANs" "$(sans_of "$P/apiserver.pem")" "DNS:api.example.com"
expect_contains "renewed apiserver SANs" "$(sans_of "$P/apiserver.pem")" "IPAddress:192.168.24.99"
[ "$(serial_of "$P/apiserver.pem")" != "$old_serial" ] && pass || fail "apiserver serial unchanged"
verify_chain "$P/ca.pem" "$P/apiserver.pem"
kc 0 init --config "$T/new.yaml" --pki "$P"
expect_contains "init accepts the renewed apiserver" "$OUT" "0 files created"
# Without --config, the same identity.
kc 0 certs renew apiserver --pki "$P" -o json
expect_eq "renew without config: no change" "$(py '(d[0]["added"], d[0]["removed"])' <<<"$OUT")" "([], [])"
expect_contains "SAN kept" "$(sans_of "$P/apiserver.pem")" "DNS:api.example.com"

# ---------------------------------------------------------------------------------------
# External CA mode: ca.pem without ca-key.pem.
X=$T/ext
cp -a "$P" "$X"
rm "$X/ca-key.pem"
kc 0 certs check-expiration --pki "$X"
expect_match "table: apiserver externally managed" "$(grep '^apiserver ' <<<"$OUT")" "apiserver *??? ??, ???? ??:?? UTC *364d *ca *yes *"
expect_match "table: etcd/server is not" "$(grep '^etcd/server ' <<<"$OUT")" "etcd/server *??? ??, ???? ??:?? UTC *364d *etcd/ca *no *"
expect_match "table: ca row" "$(grep '^ca ' <<<"$OUT")" "ca *??? ??, ???? ??:?? UTC *9y *yes *"
kc 0 certs check-expiration --pki "$X" -o json
expect_eq "json: externallyManaged" \
  "$(py '[c["externallyManaged"] for c in d["certificates"] if c["name"] in ("apiserver","etcd/server")]' <<<"$OUT")" "[True, False]"
expect_eq "json: ca externallyManaged" \
  "$(py '[c["externallyManaged"] for c in d["certificateAuthorities"] if c["name"]=="ca"]' <<<"$OUT")" "[True]"
before=$(tree_state "$X")
kc 1 certs renew apiserver --pki "$X"
expect_one_error_line "renew under an external CA" "its CA ca is externally managed ($X/ca-key.pem is absent)"
expect_contains "renew under an external CA: what to do" "$ERR" "have that CA sign a new certificate"
kc 1 certs renew admin.conf --pki "$X"
expect_one_error_line "renew admin.conf under an external CA" "externally managed"
expect_eq "external: nothing written" "$(tree_state "$X")" "$before"
etcd_serial=$(serial_of "$X/etcd/server.pem")
api_sum=$(sha256sum <"$X/apiserver.pem")
kc 0 certs renew all --pki "$X"
expect_contains "renew all: skips apiserver" "$OUT" "skipped apiserver: its CA ca is externally managed"
expect_contains "renew all: renews etcd/server" "$OUT" "renewed etcd/server"
expect_eq "apiserver untouched" "$(sha256sum <"$X/apiserver.pem")" "$api_sum"
[ "$(serial_of "$X/etcd/server.pem")" != "$etcd_serial" ] && pass || fail "etcd/server not renewed"
rm "$X/etcd/ca-key.pem" "$X/front-proxy-ca-key.pem"
kc 1 certs renew all --pki "$X"
expect_one_error_line "renew all, every CA external" "nothing can be renewed here"

finish

#!/usr/bin/env bash
# Bad input to any command: one line on stderr starting "kubeca:", exit 2 (1 for a runtime
# failure), and not one byte written. Each case here was seen doing something else: a stray
# argument ignored, a wrong message, exit 0 or 1, a file written before the refusal.
source "$(dirname "$0")/lib.sh"

cat >"$T/c.yaml" <<YAML
cluster: {name: test, flavor: modern}
master: {host: 127.0.0.1, name: m1}
etcd: {endpoints: [https://127.0.0.1:2379]}
workers: [{name: n1, ip: 127.0.0.2}]
pki: {key_algorithm: ecdsa-p256}
signer: {url: "https://127.0.0.1:8443", listen: "127.0.0.1:0", store: "sqlite:db"}
YAML
P=$T/pki
# init makes the config's store (sqlite:db, relative): in a folder of its own.
mkdir -p "$T/init-cwd" "$T/cwd"
cd "$T/init-cwd"
must_kc 0 init --config "$T/c.yaml" --pki "$P"
cd "$T/cwd"

# state: every path under $T (but kc's own output files) with its type, mode, size, target
# and content hash: equal output, nothing created, removed or changed.
state() {
  (cd "$T" && find . \( -name .stdout -o -name .stderr -o -name .out \) -prune -o \
    -printf '%p %y %m %s %l ' -exec sh -c '[ -f "$1" ] && [ ! -L "$1" ] && sha256sum <"$1" || echo' \
    _ {} \; | sort)
}
# refused WHAT NEEDLE CMD...: exit 2 (or $WANT), one error line with NEEDLE, $T unchanged.
refused() {
  local what=$1 needle=$2 want=${WANT:-2}
  shift 2
  local before
  before=$(state)
  # A command that should refuse at once but serves instead is stopped (exit 124).
  RC=0
  timeout 20 "$KUBECA" "$@" >"$T/.stdout" 2>"$T/.stderr" || RC=$?
  OUT=$(cat "$T/.stdout")
  ERR=$(cat "$T/.stderr")
  expect_eq "$what: exit code" "$RC" "$want"
  expect_one_error_line "$what" "$needle"
  local after
  after=$(state)
  if [ "$after" = "$before" ]; then
    pass
  else
    local d
    d=$(diff <(echo "$before") <(echo "$after") || true)
    fail "$what: wrote: ${d:0:300}"
  fi
}

# A stray positional argument, for every command that takes none (or no more).
refused "init stray" 'unexpected argument "stray"' init stray --config "$T/c.yaml" --pki "$P"
refused "demo stray" 'unexpected argument "now"' demo now --dir "$T/demo"
expect_eq "demo stray: no folder" "$(test -e "$T/demo" && echo yes || echo no)" no
refused "crl stray" 'unexpected argument "x"' crl x --out "$T/crl.der" --store "sqlite:$T/s.db" \
  --pki "$P"
refused "certs list stray" 'unexpected argument "extra"' certs list extra --pki "$P"
refused "certs check-expiration stray" 'unexpected argument "x"' certs check-expiration x --pki "$P"
refused "certs renew two names" 'unexpected argument "admin"' certs renew apiserver admin --pki "$P"
refused "issue two profiles" 'unexpected argument "kubelet"' issue admin kubelet --pki "$P"
refused "token revoke stray" 'unexpected argument "b"' token revoke abcdef b --store "sqlite:$T/s.db"
refused "kubeconfig stray" 'unexpected argument "admin"' kubeconfig admin --pki "$P" --user admin \
  --server https://127.0.0.1:6443 --out "$T/a.conf"

# revoke --serial that is not hex: exit 2 naming it, not "no certificate".
refused "revoke --serial xyz" '--serial: "xyz" is not hex' revoke --serial xyz --pki "$P" \
  --store "sqlite:$T/s.db"

# certs renew with a path for a name.
refused "certs renew ../.." '"../.." is a path' certs renew ../.. --pki "$P"
refused "certs renew /etc" '"/etc/passwd" is a path' certs renew /etc/passwd --pki "$P"

# init --config a folder: said so, not "master.host: is required".
refused "init --config DIR" "--config: $T is a folder" init --config "$T" --pki "$T/p2"
refused "init --env-file DIR" "--env-file: $T is a folder" init --env-file "$T" --pki "$T/p2"

# bootstrap worker --node MASTER: it is the master, and which command lays it down.
refused "bootstrap worker --node m1" '"m1" is the master' bootstrap worker --config "$T/c.yaml" \
  --pki "$P" --root "$T/root" --node m1
expect_contains "bootstrap worker --node m1: names the command" "$ERR" "kubeca bootstrap master"

# demo: a bad key algorithm before any file (it wrote cluster.yaml first).
refused "demo --key-algorithm rsa-1024" '--key-algorithm: unknown "rsa-1024"' demo \
  --key-algorithm rsa-1024 --dir "$T/demo"
expect_eq "demo rsa-1024: no folder" "$(test -e "$T/demo" && echo yes || echo no)" no

# serve: a missing PKI creates no store (the config's sqlite:db, relative to here); an
# unknown store scheme is bad input; --threads and --listen are checked.
refused "serve --pki MISSING" "--pki: $T/missing/ca.pem not found" serve --config "$T/c.yaml" \
  --pki "$T/missing"
expect_eq "serve --pki MISSING: no ./db" "$(test -e "$T/cwd/db" && echo yes || echo no)" no
refused "serve --store mysql" '--store: unsupported store URL "mysql://h/db"' serve \
  --config "$T/c.yaml" --pki "$P" --store mysql://h/db
refused "serve --threads 0" "--threads: 0 is not between 1 and 4096" serve --config "$T/c.yaml" \
  --pki "$P" --store "sqlite:$T/s.db" --threads 0
refused "serve --threads -1" "--threads: -1 is not between 1 and 4096" serve \
  --config "$T/c.yaml" --pki "$P" --store "sqlite:$T/s.db" --threads -1
refused "serve --listen :99999" '--listen: port "99999" is not a number from 0 to 65535' serve \
  --config "$T/c.yaml" --pki "$P" --store "sqlite:$T/s.db" --listen 127.0.0.1:99999
refused "serve --listen no port" '--listen: "127.0.0.1" is not HOST:PORT' serve \
  --config "$T/c.yaml" --pki "$P" --store "sqlite:$T/s.db" --listen 127.0.0.1
refused "serve --listen bare IPv6" "--listen: write an IPv6 address in brackets" serve \
  --config "$T/c.yaml" --pki "$P" --store "sqlite:$T/s.db" --listen ::1:8443
sed 's|listen: "127.0.0.1:0"|listen: "127.0.0.1:70000"|' "$T/c.yaml" >"$T/c-port.yaml"
refused "serve signer.listen port" 'signer.listen: port "70000"' serve --config "$T/c-port.yaml" \
  --pki "$P" --store "sqlite:$T/s.db"
rm -f "$T/c-port.yaml"

# renew: a missing --cert is bad input (exit 2), as a missing --config is for init.
refused "renew --cert missing" "--cert: $T/nope.pem does not exist" renew \
  --server https://127.0.0.1:1 --ca "$P/ca.pem" --cert "$T/nope.pem" --key "$P/admin-key.pem"
refused "token list --kubeconfig missing" "--kubeconfig: $T/none.conf does not exist" token list \
  --kubeconfig "$T/none.conf"
refused "revoke --cert missing" "--cert: $T/none.pem does not exist" revoke --cert "$T/none.pem" \
  --kubeconfig "$T/none.conf"
refused "renew --retries 0" "--retries: 0 is not 1 or more" renew --server https://127.0.0.1:1 \
  --ca "$P/ca.pem" --cert "$P/admin.pem" --key "$P/admin-key.pem" --retries 0

# kubeconfig --out: the rule issue follows. An existing file with other content is refused
# unless --force; the same content is left as it is.
must_kc 0 kubeconfig --pki "$P" --user admin --server https://127.0.0.1:6443 --out "$T/a.conf"
echo "mine" >"$T/other.conf"
refused "kubeconfig over another file" "--out: $T/other.conf exists with other content" \
  kubeconfig --pki "$P" --user admin --server https://127.0.0.1:6443 --out "$T/other.conf"
expect_eq "kubeconfig: the other file kept" "$(cat "$T/other.conf")" mine
sum=$(sha256sum "$T/a.conf")
kc 0 kubeconfig --pki "$P" --user admin --server https://127.0.0.1:6443 --out "$T/a.conf"
expect_contains "kubeconfig: same content" "$OUT" "unchanged $T/a.conf"
expect_eq "kubeconfig: same file" "$(sha256sum "$T/a.conf")" "$sum"
kc 0 kubeconfig --pki "$P" --user admin --server https://127.0.0.1:6443 --out "$T/other.conf" \
  --force
expect_eq "kubeconfig --force: replaced with a kubeconfig" \
  "$(kubectl config view --kubeconfig "$T/other.conf" -o jsonpath='{.users[0].name}')" \
  kubernetes-admin
# issue refuses the same way, exit 2, and --force replaces.
must_kc 0 issue admin --pki "$P" --out "$T/me"
refused "issue over a pair" "kubeca: $T/me.pem exists" issue admin --pki "$P" --out "$T/me"
serial=$(openssl x509 -in "$T/me.pem" -noout -serial)
kc 0 issue admin --pki "$P" --out "$T/me" --force
expect_fails "issue --force: a new certificate" test "$(openssl x509 -in "$T/me.pem" -noout \
  -serial)" = "$serial"
expect_eq "issue --force: key 0600" "$(stat -c %a "$T/me-key.pem")" 600

# A corrupt or missing certificate in the PKI folder is listed, never dropped.
cp -a "$P" "$T/broken"
B=$T/broken
echo "garbage" >"$B/apiserver.pem"
rm "$B/scheduler.pem"
rm "$B/etcd/server.pem"
ln -s "$T/nowhere.pem" "$B/etcd/server.pem"
echo "not: [yaml" >"$B/kube-proxy.conf"
kc 0 certs list --pki "$B"
expect_match "list: apiserver INVALID" "$(grep '^apiserver ' <<<"$OUT")" "apiserver *- *- *- *- *INVALID"
expect_match "list: scheduler MISSING" "$(grep '^scheduler ' <<<"$OUT")" "scheduler *- *- *- *- *MISSING"
expect_match "list: etcd/server MISSING" "$(grep '^etcd/server ' <<<"$OUT")" "*MISSING"
expect_match "list: kube-proxy.conf INVALID" "$(grep '^kube-proxy.conf ' <<<"$OUT")" "*INVALID"
expect_match "list: admin.conf still valid" "$(grep '^admin.conf ' <<<"$OUT")" "*valid"
kc 0 certs check-expiration --pki "$B"
expect_contains "check-expiration: says why" "$(grep '^apiserver ' <<<"$OUT")" "$B/apiserver.pem"
kc 0 certs list --pki "$B" --json
status_of() {
  python3 -c 'import json,sys
d={c["name"]: c for c in json.loads(sys.argv[1])}
c=d.get(sys.argv[2]); print("absent" if c is None else c["status"] + " " + str(bool(c.get("error"))) + " " + str(c["expires"]))' "$OUT" "$1"
}
expect_eq "json: apiserver" "$(status_of apiserver)" "invalid True None"
expect_eq "json: scheduler" "$(status_of scheduler)" "missing True None"
expect_eq "json: etcd/server" "$(status_of etcd/server)" "missing True None"
expect_eq "json: kube-proxy.conf" "$(status_of kube-proxy.conf)" "invalid True None"
expect_match "json: admin.conf" "$(status_of admin.conf)" "valid False 20*"
WANT=1 refused "renew all with broken ones" "apiserver is INVALID" certs renew all --pki "$B"
expect_contains "renew all: names every broken one" "$ERR" "scheduler is MISSING"
expect_contains "renew all: says nothing was renewed" "$ERR" "nothing was renewed"
WANT=1 refused "renew a broken one" "scheduler is MISSING" certs renew scheduler --pki "$B"
kc 0 certs renew admin --pki "$B"
expect_contains "renew of a sound one still works" "$OUT" "renewed admin"

finish

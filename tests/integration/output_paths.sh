#!/usr/bin/env bash
# Every output path follows one rule (pki/core/fs.cc): an existing path that is not a regular
# file is refused with exit 2 and left as it was, and `-` is standard output. Seen: `crl
# --out /dev/null` replaced /dev/null with a regular file. This test never touches a real
# device: it makes a FIFO, a unix socket, a folder, and a symlink to a FIFO in its own folder.
source "$(dirname "$0")/serve_lib.sh"
D=$T/c
write_cluster "$D"
P=$D/pki
STORE="sqlite:$D/kubeca.db"
O=$T/out
mkdir -p "$O/folder" "$O/node"
cd "$T"  # a kubeca that writes a file named - writes it here
mkfifo "$O/fifo"
ln -s "$O/fifo" "$O/link-to-fifo"
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$O/socket"
# A process that opens the FIFO would block: every kubeca below runs under a timeout.
run() { # RC_VAR OUT ERR CMD...
  local rc=0
  timeout 20 "$KUBECA" "${@:3}" >"$1" 2>"$2" || rc=$?
  echo "$rc"
}
kinds() { (cd "$O" && find . -printf '%p %y %l\n' | sort); }
BEFORE=$(kinds)

# refused WHAT FLAGFILE CMD...: exit 2, one line "kubeca: FLAG: PATH is ..." and $O as it was.
refused() {
  local what=$1 path=$2 rc
  shift 2
  rc=$(run "$T/o" "$T/e" "$@")
  check "$what: exit 2 (rc $rc: $(head -c 300 "$T/e"))" '[ "$rc" = 2 ]'
  check "$what: one line naming $path ($(cat "$T/e"))" \
    '[ "$(wc -l <"$T/e")" = 1 ] && grep -q "^kubeca: .*$path.* not a" "$T/e"'
  check "$what: the special files are as they were" '[ "$(kinds)" = "$BEFORE" ]'
}

for target in fifo socket link-to-fifo folder; do
  refused "crl --out $target" "$O/$target" crl --out "$O/$target" --pki "$P" --store "$STORE"
  refused "kubeconfig --out $target" "$O/$target" kubeconfig --pki "$P" --user admin \
    --server https://127.0.0.1:6443 --out "$O/$target"
  refused "kubeconfig --out $target --force" "$O/$target" kubeconfig --pki "$P" --user admin \
    --server https://127.0.0.1:6443 --out "$O/$target" --force
done
# Folders a command writes into: a file there is refused, not half-used.
BEFORE=$(kinds)
refused "init --pki a FIFO" "$O/fifo" init --config "$D/cluster.yaml" --pki "$O/fifo"
refused "bootstrap --root a socket" "$O/socket" bootstrap worker --config "$D/cluster.yaml" \
  --pki "$P" --root "$O/socket" --node n1
refused "demo --dir a FIFO" "$O/fifo" demo --dir "$O/fifo"
# issue --out PREFIX: PREFIX.pem and PREFIX-key.pem.
ln -s "$O/fifo" "$O/me.pem"
BEFORE=$(kinds)
refused "issue --out onto a FIFO" "$O/me.pem" issue admin --pki "$P" --out "$O/me" --force
mkdir "$O/you-key.pem"
BEFORE=$(kinds)
refused "issue --out key onto a folder" "$O/you-key.pem" issue admin --pki "$P" --out "$O/you"
check "issue: no certificate left beside the refused key path" '[ ! -e "$O/you.pem" ]'
rc=$(run "$T/o" "$T/e" issue admin --pki "$P" --out -)
check "issue --out -: exit 2, a prefix is needed ($(cat "$T/e"))" \
  '[ "$rc" = 2 ] && grep -q "^kubeca: --out: issue writes two files" "$T/e" && [ ! -e "$T/-.pem" ]'

# request: --out-dir a file, NAME.pem a FIFO, --kubeconfig-out a socket: refused before the
# token is spent (checked in the store: still 0 uses).
start_server "$D"
TOKEN=$("$KUBECA" token create --store "$STORE" --node n1 --ip 127.0.0.2 2>/dev/null)
PIN=$(pin "$D")
uses() { sqlite3 "$D/kubeca.db" "select uses from tokens where id = '${TOKEN%%.*}'"; }
: >"$O/plain"
(umask 077 && echo "$TOKEN" >"$T/token")
BEFORE=$(kinds)
refused "request --out-dir a file" "$O/plain" request --server "$URL" --token-file "$T/token" \
  --ca-hash "$PIN" --out-dir "$O/plain" --name n1
ln -s "$O/fifo" "$O/node/n1.pem"
BEFORE=$(kinds)
refused "request NAME.pem a FIFO" "$O/node/n1.pem" request --server "$URL" \
  --token-file "$T/token" --ca-hash "$PIN" --out-dir "$O/node" --name n1
rm "$O/node/n1.pem"
BEFORE=$(kinds)
refused "request --kubeconfig-out a socket" "$O/socket" request --server "$URL" \
  --token-file "$T/token" --ca-hash "$PIN" --out-dir "$O/node" --name n1 \
  --kubeconfig-out "$O/socket"
check "request: the token was not spent ($(uses))" '[ "$(uses)" = 0 ]'
rc=$(run "$T/o" "$T/e" request --server "$URL" --token-file "$T/token" --ca-hash "$PIN" \
  --out-dir "$O/node" --name n1 --kubeconfig-out "$O/node/kubelet.conf")
check "request into regular paths works (rc $rc: $(cat "$T/e"))" '[ "$rc" = 0 ] && openssl verify -CAfile "$P/ca.pem" "$O/node/n1.pem" >/dev/null'

# `--out -` is standard output: the CRL parses with openssl, the kubeconfig with kubectl.
rc=$(run "$T/crl.der" "$T/e" crl --out - --pki "$P" --store "$STORE")
check "crl --out -: exit 0 (rc $rc: $(cat "$T/e"))" '[ "$rc" = 0 ]'
check "crl --out -: DER CRL on stdout, signed by the CA" \
  'openssl crl -inform DER -in "$T/crl.der" -noout -CAfile "$P/ca.pem" 2>&1 | grep -q "verify OK"'
check "crl --out -: no file named -" '[ ! -e "$T/-" ]'
rc=$(run "$T/admin.conf" "$T/e" kubeconfig --pki "$P" --user admin --server "$URL" --out -)
check "kubeconfig --out -: a kubeconfig on stdout (rc $rc)" \
  '[ "$rc" = 0 ] && [ "$(kubectl config view --kubeconfig "$T/admin.conf" -o jsonpath="{.users[0].name}")" = kubernetes-admin ]'

# A regular file is replaced only with --force (an older CRL), and written atomically 0644.
rc=$(run "$T/o" "$T/e" crl --out "$O/crl.der" --pki "$P" --store "$STORE")
check "crl --out a new file (rc $rc)" '[ "$rc" = 0 ] && [ "$(stat -c %a "$O/crl.der")" = 644 ]'
sleep 1.1  # a CRL made a second later differs (thisUpdate)
rc=$(run "$T/o" "$T/e" crl --out "$O/crl.der" --pki "$P" --store "$STORE")
check "crl over an older CRL without --force: exit 2 ($(cat "$T/e"))" \
  '[ "$rc" = 2 ] && grep -q "exists with other content.*--force" "$T/e"'
rc=$(run "$T/o" "$T/e" crl --out "$O/crl.der" --pki "$P" --store "$STORE" --force)
check "crl --force replaces it (rc $rc)" '[ "$rc" = 0 ]'
finish

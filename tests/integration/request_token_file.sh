#!/usr/bin/env bash
# `kubeca request` takes its bootstrap token from a 0600 file (--token-file) or from
# KUBECA_TOKEN, so it never has to be on a command line that every user of the node can
# read (/proc/PID/cmdline). A bad token file is bad input: one line, exit 2, the signer not
# asked. Also: --retries below 1 and an unreachable server say what is wrong.
source "$(dirname "$0")/serve_lib.sh"
D=$T/c
write_cluster "$D"
STORE="sqlite:$D/kubeca.db"
PIN=$(pin "$D")
start_server "$D"
new_token() { "$KUBECA" token create --store "$STORE" --node "$1" --ip "$2" 2>/dev/null; }
audit_lines() { wc -l <"$D/audit.log"; }

# run_request OUT-DIR NAME [ARGS...]: sets RC, OUT (stdout+stderr); the env is the caller's.
run_request() {
  local dir=$1 name=$2
  shift 2
  RC=0
  OUT=$(timeout 60 "$KUBECA" request --server "$URL" --ca-hash "$PIN" --out-dir "$dir" \
    --name "$name" --retries "${RETRIES:-2}" "$@" 2>&1) || RC=$?
}

# --token-file: a 0600 file with the token and a newline, as `token create >file` writes it.
TOKEN=$(new_token n1 127.0.0.2)
(umask 077 && echo "$TOKEN" >"$T/n1.token")
run_request "$T/n1" n1 --token-file "$T/n1.token"
check "--token-file: exit 0 ($OUT)" '[ "$RC" = 0 ]'
check "--token-file: the certificate of n1, from the CA" \
  '[ "$(openssl x509 -in "$T/n1/n1.pem" -noout -subject)" = "subject=O = system:nodes, CN = system:node:n1" ] &&
   openssl verify -CAfile "$D/pki/ca.pem" "$T/n1/n1.pem" >/dev/null'
check "--token-file: the secret is in no output" '! grep -qF "${TOKEN#*.}" <<<"$OUT"'

# KUBECA_TOKEN, the way the kubeca-request unit passes it (EnvironmentFile).
TOKEN2=$(new_token n2 127.0.0.3)
RC=0
OUT=$(KUBECA_TOKEN=$TOKEN2 timeout 60 "$KUBECA" request --server "$URL" --ca-hash "$PIN" \
  --out-dir "$T/n2" --name n2 --retries 2 2>&1) || RC=$?
check "KUBECA_TOKEN: exit 0 ($OUT)" '[ "$RC" = 0 ] && [ -s "$T/n2/n2.pem" ]'
check "KUBECA_TOKEN: the certificate is n2's" \
  '[ "$(openssl x509 -in "$T/n2/n2.pem" -noout -subject)" = "subject=O = system:nodes, CN = system:node:n2" ]'

# Bad token files: exit 2, one line naming the file and what is wrong, nothing asked of the
# signer (the audit log does not grow) and nothing written.
TOKEN3=$(new_token n3 127.0.0.4)
bad_file() {  # WHAT NEEDLE FILE
  local lines needle=$2
  lines=$(audit_lines)
  run_request "$T/n3" n3 --token-file "$3"
  check "$1: exit 2 ($OUT)" '[ "$RC" = 2 ]'
  check "$1: one line naming the file and the fault ($OUT)" \
    '[ "$(wc -l <<<"$OUT")" = 1 ] && [[ "$OUT" == "kubeca: --token-file: "*"$needle"* ]]'
  check "$1: the signer was not asked" '[ "$(audit_lines)" = "$lines" ]'
  check "$1: nothing written" '[ ! -e "$T/n3" ]'
}
bad_file "missing file" "$T/absent: No such file or directory" "$T/absent"
: >"$T/empty" && chmod 600 "$T/empty"
bad_file "empty file" "$T/empty is empty" "$T/empty"
printf '\n\n' >"$T/blank" && chmod 600 "$T/blank"
bad_file "only newlines" "$T/blank is empty" "$T/blank"
echo "$TOKEN3" >"$T/open" && chmod 644 "$T/open"
bad_file "mode 0644" "$T/open is mode 644" "$T/open"
echo "$TOKEN3" >"$T/group" && chmod 640 "$T/group"
bad_file "mode 0640" "is mode 640" "$T/group"
echo "${TOKEN3}x" >"$T/malformed" && chmod 600 "$T/malformed"
bad_file "malformed token" "does not hold a token of the form" "$T/malformed"
printf '%s\n%s\n' "$TOKEN3" "$TOKEN3" >"$T/two" && chmod 600 "$T/two"
bad_file "two tokens" "does not hold a token" "$T/two"
mkdir -m 700 "$T/tokdir"
bad_file "a folder" "$T/tokdir is not a regular file" "$T/tokdir"
mkfifo -m 600 "$T/tokfifo"
bad_file "a FIFO (does not hang)" "$T/tokfifo is not a regular file" "$T/tokfifo"
if [ "$(id -u)" != 0 ]; then
  echo "$TOKEN3" >"$T/unreadable" && chmod 000 "$T/unreadable"
  bad_file "unreadable" "Permission denied" "$T/unreadable"
fi

# --token and --token-file together; no token at all.
(umask 077 && echo "$TOKEN3" >"$T/n3.token")
run_request "$T/n3" n3 --token-file "$T/n3.token" --token "$TOKEN3"
check "--token with --token-file: exit 2 ($OUT)" \
  '[ "$RC" = 2 ] && [ "$(wc -l <<<"$OUT")" = 1 ] && [[ "$OUT" == "kubeca: --token and --token-file"* ]]'
RC=0
OUT=$(env -u KUBECA_TOKEN "$KUBECA" request --server "$URL" --ca-hash "$PIN" --out-dir "$T/n3" \
  --name n3 2>&1) || RC=$?
check "no token: exit 2 naming --token-file ($OUT)" '[ "$RC" = 2 ] && [[ "$OUT" == "kubeca: no token: "*--token-file* ]]'
check "no bad case spent the token" '[ "$(sqlite3 "$D/kubeca.db" "select uses from tokens where id = '"'${TOKEN3%%.*}'"'")" = 0 ]'

# --retries below 1: bad usage, not "fetching the CA: " with nothing after it.
for r in 0 -1; do
  RETRIES=$r run_request "$T/n3" n3 --token-file "$T/n3.token"
  check "--retries $r: exit 2, one line ($OUT)" \
    '[ "$RC" = 2 ] && [ "$(wc -l <<<"$OUT")" = 1 ] && [[ "$OUT" == "kubeca: --retries: $r is not 1 or more" ]]'
done

# An unreachable server: the address and the cause, not "cannot reach the server: Connection".
DEAD=$(free_port)
RC=0
OUT=$("$KUBECA" request --server "https://127.0.0.1:$DEAD" --token-file "$T/n3.token" \
  --ca-hash "$PIN" --out-dir "$T/n3" --name n3 --retries 1 2>&1) || RC=$?
check "unreachable: exit 1, one line with the address and the cause ($OUT)" \
  '[ "$RC" = 1 ] && [ "$(wc -l <<<"$OUT")" = 1 ] &&
   [[ "$OUT" == "kubeca: fetching the CA: cannot reach 127.0.0.1:$DEAD: Connection refused" ]]'
check "unreachable: nothing written" '[ ! -e "$T/n3" ]'
finish

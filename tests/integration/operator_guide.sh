#!/usr/bin/env bash
# The operator guide's commands, run as a reader copies them: every shell block of
# docs/operator-guide.md marked `<!-- test: run -->` runs in order in a temporary folder
# (the one marked `<!-- test: serve -->` is the signing service, in the background), with
# the example addresses moved to loopback (10.0.0.X -> 127.0.0.X, port 8443 -> a free port),
# /etc and /var under the folder, and the values a reader pastes (the token, the pin, a
# serial) taken from what the earlier blocks printed. So the guide cannot drift.
source "$(dirname "$0")/lib.sh"

ROOT=$T/root
mkdir -p "$ROOT/etc" "$ROOT/var" "$T/work"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PATH=$(dirname "$KUBECA"):$PATH
serve_pid=""
cleanup_serve() { [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true; }
trap 'cleanup_serve; rm -rf "$T"' EXIT

# The marked blocks, NUL-separated, each "KIND\n" then the block.
python3 - "$KUBECA_SOURCE/docs/operator-guide.md" >"$T/blocks" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for kind, body in re.findall(r"<!-- test: (run|serve) -->\n```[a-z]*\n(.*?)```", text, re.S):
    sys.stdout.write(kind + "\n" + body + "\0")
PY
count=$(tr -cd '\0' <"$T/blocks" | wc -c)
if [ "$count" -ge 8 ]; then pass; else fail "only $count marked blocks in the guide"; fi

token="" pin="" first_id=""
n=0
while IFS= read -r -d '' block; do
  n=$((n + 1))
  kind=${block%%$'\n'*}
  body=${block#*$'\n'}
  serial=""
  [ -f "$ROOT/etc/kubernetes/pki/kubelet-n9.pem" ] &&
    serial=$(openssl x509 -in "$ROOT/etc/kubernetes/pki/kubelet-n9.pem" -noout -serial | cut -d= -f2)
  body=$(BODY=$body ROOT=$ROOT PORT=$PORT TOKEN=$token FIRST_ID=$first_id PIN=$pin SERIAL=$serial python3 -c '
import os, re
b, e = os.environ["BODY"], os.environ
b = re.sub(r"\b10\.0\.0\.", "127.0.0.", b)
b = b.replace("0.0.0.0:8443", "127.0.0.1:8443").replace(":8443", ":" + e["PORT"])
b = re.sub(r"(?<![\w./-])/(etc|var)/", e["ROOT"] + r"/\1/", b)
if e["TOKEN"]: b = b.replace("abcdef.0123456789abcdef", e["TOKEN"])
if e["FIRST_ID"]: b = b.replace("token revoke ID ", "token revoke " + e["FIRST_ID"] + " ")
if e["PIN"]: b = b.replace("sha256:...", e["PIN"])
if e["SERIAL"]: b = b.replace("9f3c...", e["SERIAL"])
print(b, end="")')
  if [ "$kind" = serve ]; then
    (cd "$T/work" && exec bash -c "exec $body") 2>"$T/serve.err" &
    serve_pid=$!
    for _ in $(seq 100); do
      grep -q "serving on" "$T/serve.err" && break
      sleep 0.1
    done
    if grep -q "serving on https://127.0.0.1:$PORT" "$T/serve.err"; then pass; else
      fail "block $n (serve) did not start: $(cat "$T/serve.err")"
    fi
    continue
  fi
  if (cd "$T/work" && bash -euo pipefail -c "$body") >"$T/block.out" 2>&1; then
    pass
  else
    fail "block $n failed:"$'\n'"$body"$'\n'"--- output:"$'\n'"$(cat "$T/block.out")"
  fi
  t=$(grep -oE '\b[a-z0-9]{6}\.[a-z0-9]{16}\b' "$T/block.out" | tail -1 || true)
  [ -z "$t" ] || token=$t
  [ -n "$first_id" ] || first_id=${t%%.*}
  p=$(grep -oE 'sha256:[0-9a-f]{64}' "$T/block.out" | tail -1 || true)
  [ -z "$p" ] || pin=$p
done <"$T/blocks"

# What the reader should have now, checked with openssl.
expect_eq "the pin the guide printed" "$pin" "$(spki_pin "$ROOT/etc/kubernetes/pki/ca.pem")"
N1=$ROOT/etc/kubernetes/ssl/n1.pem
verify_chain "$ROOT/etc/kubernetes/pki/ca.pem" "$N1"
expect_match "n1's certificate" "$(describe_cert "$N1")" "subject=CN=system:node:n1,O=system:nodes*san=*127.0.0.11*"
openssl crl -in "$T/work/crl.pem" -noout -text >"$T/crl.txt" 2>&1 || fail "crl.pem: $(cat "$T/crl.txt")"
n1_serial=$(openssl x509 -in "$N1" -noout -serial | cut -d= -f2)
n9_serial=$(openssl x509 -in "$ROOT/etc/kubernetes/pki/kubelet-n9.pem" -noout -serial | cut -d= -f2)
expect_contains "the CRL lists n1" "$(cat "$T/crl.txt")" "Serial Number: $n1_serial"
expect_contains "the CRL lists n9" "$(cat "$T/crl.txt")" "Serial Number: $n9_serial"
expect_eq "PKI folders not 0700" "$(find "$ROOT/etc/kubernetes/pki" -type d ! -perm 700 -printf '%m %p\n')" ""
cleanup_serve
finish

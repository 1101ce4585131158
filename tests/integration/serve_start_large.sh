#!/usr/bin/env bash
# `kubeca serve` on a store of 100,000 certificates answers /readyz 200 within 100 ms of its
# start (3 s under sanitizers), and /metrics then counts every live certificate, including
# those issued while it was still reading the store.
#
# The store: 20 certificates issued for real (bench join), then 100,000 rows made by
# sqlite3 from them, each with a serial of its own but a copy of one of the 20 PEMs. Serve
# reads no PEM at start for records that have their key hash (and the metrics count
# serials), so the copies cost it what distinct certificates would; rows stored without a
# key hash (schema 1) are parsed at start and are not part of this test.
source "$(dirname "$0")/serve_lib.sh"
D=$T/c
write_cluster "$D"
start_server "$D"
"$KUBECA" bench join --nodes 20 --concurrency 10 --server "$URL" --pki "$D/pki" >"$T/join0" 2>&1
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
sqlite3 "$D/kubeca.db" <<'SQL'
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
INSERT INTO certificates (serial, profile, subject, sans, not_before, not_after, status,
  requester, pem, revoked_at, reason, key_hash, node, identity)
SELECT printf('%s%04x', c.serial, n.i), c.profile, c.subject, c.sans, c.not_before,
  c.not_after, c.status, c.requester, c.pem, c.revoked_at, c.reason, c.key_hash,
  c.node || '-' || n.i, c.identity || '-' || n.i
FROM certificates c, n WHERE c.node LIKE 'bench-%';
SQL
live=$(sqlite3 "$D/kubeca.db" "select count(*) from certificates where profile = 'kubelet' and status = 'good'")
check "the store holds 100,020 kubelet certificates ($live)" '[ "$live" = 100020 ]'

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=https://127.0.0.1:$PORT
# Started and timed by one process: from the fork to the first /readyz 200.
ms=$(python3 - "$KUBECA" "$D" "$PORT" <<'PY'
import http.client, os, ssl, subprocess, sys, time
kubeca, d, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=d + "/pki/ca.pem")
err = open(d + "/serve.err", "w")
t0 = time.monotonic()
p = subprocess.Popen([kubeca, "serve", "--config", d + "/cluster.yaml", "--pki", d + "/pki",
                      "--listen", "127.0.0.1:%d" % port, "--audit-log", d + "/audit.log"],
                     stdout=subprocess.DEVNULL, stderr=err)
while time.monotonic() - t0 < 30:
    try:
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
        c.request("GET", "/readyz")
        if c.getresponse().status == 200:
            print("%.1f %d" % ((time.monotonic() - t0) * 1000, p.pid))
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.002)
print("timeout %d" % p.pid)
PY
)
SERVER_PID=${ms#* }
SERVER_PIDS+=("$SERVER_PID")
ms=${ms% *}
limit=100
[ "${KUBECA_SANITIZED:-0}" = 1 ] && limit=3000
check "/readyz 200 after $ms ms (at most $limit)" \
  'awk -v m="$ms" -v l="$limit" "BEGIN {exit !(m != \"timeout\" && m <= l)}"'

# Five nodes join at once while the metrics may still be reading the store.
"$KUBECA" bench join --nodes 5 --concurrency 5 --server "$URL" --pki "$D/pki" >"$T/join1" 2>&1
check "5 nodes joined right after the start" 'grep -q "^successes 5/5" "$T/join1"'
gauge=
for _ in $(seq 100); do
  gauge=$(curl -s --cacert "$D/pki/ca.pem" "$URL/metrics" |
    sed -n 's/^kubeca_certificates_live{profile="kubelet"} //p')
  [ "$gauge" = 100025 ] && break
  sleep 0.1
done
check "/metrics counts 100,025 live kubelet certificates (got $gauge)" '[ "$gauge" = 100025 ]'
if [ "${KUBECA_SANITIZED:-0}" != 1 ]; then
  rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")
  check "peak RSS $((rss / 1024)) MiB with 100,000 certificates (at most 64)" '[ "$rss" -le $((64 * 1024)) ]'
fi
finish

#!/usr/bin/env python3
"""Node joins over the signing API, as `kubeca request` makes them, many at once.

Usage: ha_joins.py CA_PEM THREADS JOINDIR < PLAN

PLAN: one join a line, "INDEX TOKEN NODE URL1,URL2,...". For each, a P-256 key of its own
and a CSR for system:node:NODE, POSTed to /v1/sign with the token, the signer checked
against CA_PEM. Like `kubeca request` (pki/node/client.cc): each attempt asks the server
that answered last, then the next of the list on a connection failure or a 5xx; an attempt
that ends in no answer, a 503 or a 429 is tried again after 0.5 s, 1 s, 2 s... (8 attempts
in all), the same CSR each time, marked `Kubeca-Retry: 1` after the first send. Writes JOINDIR/INDEX/NODE.pem, JOINDIR/INDEX.log (one
"attempt N failed" line per retry, as the client logs, and one "... next server" line per
failover, which the client does not log) and JOINDIR/INDEX.rc (0 or 1).
What it spares is a process, two TLS handshakes and a key file per join: the CPU that 500
`kubeca request` processes would take from the servers under test on a two-core machine.
"""
import http.client
import json
import os
import random
import ssl
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ATTEMPTS = 8

ca_file, threads, join_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cafile=ca_file)
local = threading.local()


def connection(url):
    """A kept-alive connection to url, dropped after 1 s idle as the client drops it: the
    server closes idle ones after 2 s, and one found closed is not a replica's failure."""
    conns = local.__dict__.setdefault("conns", {})
    now = time.monotonic()
    if url in conns and now - conns[url][1] > 1:
        conns.pop(url)[0].close()
    if url not in conns:
        u = urlsplit(url)
        conns[url] = [http.client.HTTPSConnection(u.hostname, u.port, context=context, timeout=15), now]
    conns[url][1] = now
    return conns[url][0]


def post(url, body, token, retry):
    """(status, body); status 0 when the server could not be reached or the answer broke."""
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    if retry:
        headers["Kubeca-Retry"] = "1"
    for fresh in (False, True):
        c = connection(url)
        try:
            c.request("POST", "/v1/sign", body, headers)
            r = c.getresponse()
            return r.status, r.read()
        except ConnectionRefusedError as e:
            c.close()
            return 0, b"refused: " + str(e).encode()
        except (OSError, http.client.HTTPException) as e:
            c.close()
            # A kept-alive connection the server closed while idle: once more on a new one.
            if fresh or not isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError,
                                           ConnectionResetError)):
                return 0, str(e).encode()
    return 0, b""


def join(line):
    try:
        attempt_join(*line.split())
    except Exception as e:  # a bug here is a failed join, told, not a hang
        index = line.split()[0]
        with open(f"{join_dir}/{index}.log", "a") as f:
            f.write(f"driver error: {e!r}\n")
        with open(f"{join_dir}/{index}.rc", "w") as f:
            f.write("1\n")


def attempt_join(index, token, node, servers):
    servers = servers.split(",")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "system:node:" + node),
                                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes")]))
           .sign(key, hashes.SHA256()))
    body = json.dumps({"csr": csr.public_bytes(serialization.Encoding.PEM).decode(),
                       "profile": "kubelet"})
    log = []
    current, delay, status, answer = 0, 0.5, 0, b""
    for attempt in range(1, ATTEMPTS + 1):
        for i in range(len(servers)):
            at = (current + i) % len(servers)
            status, answer = post(servers[at], body, token, attempt > 1 or i > 0)
            if status != 0 and status < 500:
                current = at
                break
            # "refused": nothing reached a server; otherwise the request may have been acted on.
            refused = status == 0 and answer.startswith(b"refused")
            log.append(f"{servers[at]}: {status} {answer[:120]!r}; next server" +
                       (" (refused)" if refused else ""))
        if status not in (0, 503, 429) or attempt == ATTEMPTS:
            break
        log.append(f"attempt {attempt} failed ({status} {answer[:120]!r}); retrying")
        time.sleep(delay + random.uniform(0, delay / 4))
        delay = min(delay * 2, 30)
    ok = status in (200, 201)
    if ok:
        os.makedirs(f"{join_dir}/{index}", exist_ok=True)
        with open(f"{join_dir}/{index}/{node}.pem", "w") as f:
            f.write(json.loads(answer)["certificate"])
    else:
        log.append(f"failed: {status} {answer[:300]!r}")
    with open(f"{join_dir}/{index}.log", "w") as f:
        f.write("".join(s + "\n" for s in log))
    with open(f"{join_dir}/{index}.rc", "w") as f:
        f.write("0\n" if ok else "1\n")


with ThreadPoolExecutor(threads) as pool:
    list(pool.map(join, [line for line in sys.stdin if line.strip()]))

#!/usr/bin/env python3
"""Many requests over a few keep-alive TLS connections, for the serve tests (curl per request
is too slow). Bounded in count; only to the loopback address it is given.

  http_load.py flood HOST PORT CAFILE TOKEN N   random paths, the /metrics injection, random
                                                "profile" values from a token holder, and
                                                bad tokens with random ids
  http_load.py sign HOST PORT CAFILE TOKEN CSRFILE N   N signings of one CSR

Prints a JSON summary {status: count, "errors": n} on stdout.
"""
import http.client
import json
import random
import ssl
import string
import sys

INJECTION = "/x%22%7D%201%0Akubeca_ca_expiry_seconds%20-1%0A%23"
# Printable ASCII (quotes, braces, backslashes, newlines among them), percent-encoded.
PATH_BYTES = [c for c in range(0x20, 0x7F)] + [0x0A, 0x0D, 0x09]


class Client:
    def __init__(self, host, port, cafile):
        assert host in ("127.0.0.1", "localhost", "::1"), "loopback only"
        self.host, self.port = host, port
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.ctx.check_hostname = False
        self.conn = None
        self.counts = {"errors": 0}

    def request(self, method, path, body=None, headers=None):
        for _ in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPSConnection(
                        self.host, self.port, context=self.ctx, timeout=10)
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                key = str(r.status)
                self.counts[key] = self.counts.get(key, 0) + 1
                if r.will_close:
                    self.conn.close()
                    self.conn = None
                return r.status, data
            except (http.client.HTTPException, OSError):
                self.counts["errors"] += 1
                if self.conn:
                    self.conn.close()
                self.conn = None
        return 0, b""


def random_path(rng):
    n = rng.randint(1, 40)
    return "/" + "".join("%%%02X" % rng.choice(PATH_BYTES) if rng.random() < 0.3
                         else rng.choice(string.ascii_letters + string.digits + "/-._~")
                         for _ in range(n))


def random_token(rng):
    a = string.ascii_lowercase + string.digits
    return "".join(rng.choice(a) for _ in range(6)) + "." + "".join(rng.choice(a) for _ in range(16))


def flood(c, token, n):
    rng = random.Random(11)
    for i in range(n):
        k = i % 10
        if i % 100 == 0:
            c.request("GET", INJECTION)
        elif k < 6:
            c.request(rng.choice(["GET", "GET", "POST", "DELETE"]), random_path(rng),
                      body=b"" if rng.random() < 0.5 else None)
        elif k < 8:
            # A token holder naming any profile: refused, and never a label.
            profile = "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 30)))
            c.request("POST", "/v1/sign", body=json.dumps({"csr": "x", "profile": profile}),
                      headers={"Authorization": "Bearer " + token,
                               "Content-Type": "application/json"})
        else:
            c.request("POST", "/v1/sign", body=b"{}",
                      headers={"Authorization": "Bearer " + random_token(rng),
                               "Content-Type": "application/json"})


def sign(c, token, csr, n):
    body = json.dumps({"csr": csr})
    for _ in range(n):
        c.request("POST", "/v1/sign", body=body,
                  headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})


def main():
    mode, host, port, cafile, token = sys.argv[1:6]
    c = Client(host, int(port), cafile)
    if mode == "flood":
        flood(c, token, int(sys.argv[6]))
    elif mode == "sign":
        sign(c, token, open(sys.argv[6]).read(), int(sys.argv[7]))
    else:
        sys.exit("unknown mode " + mode)
    print(json.dumps(c.counts, sort_keys=True))


if __name__ == "__main__":
    main()

# Hostile or broken requests, sent raw over TLS: each must get a 4xx answer whose body is the
# documented JSON error ({"error", "code"} with a code from docs/api.md), no EXCEPTION_WHAT
# header, and nothing that names a file of the host (SECRET_PATH, the PKI folder).
#
# usage: serve_robust.py PORT TOKEN BAD_CSR_BODY_FILE SECRET_PATH
import json
import re
import socket
import ssl
import sys

port, token, bad_csr_body, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
DOC = open(sys.argv[5]).read() if len(sys.argv) > 5 else ""
documented = set(re.findall(r"`([a-z_]+)`", DOC.split("## Refusals", 1)[-1].split("##", 1)[0]))

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def raw(data):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5))
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            head, _, body = out.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if m and len(body) >= int(m.group(1)):
                break
    except (socket.timeout, ConnectionError, ssl.SSLError):
        pass
    s.close()
    return out


def request(method, target, headers=None, body=b""):
    h = {"Host": "x"}
    h.update(headers or {})
    if body:
        h.setdefault("Content-Length", str(len(body)))
    lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in h.items()]
    return raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


bad_csr = open(bad_csr_body, "rb").read()
cases = [
    ("GET /%ff", request("GET", "/%ff")),
    ("GET /%zz", request("GET", "/%zz")),
    ("GET /%00", request("GET", "/%00")),
    ("DELETE /v1/tokens/%ff", request("DELETE", "/v1/tokens/%ff")),
    ("DELETE /v1/tokens/ABC", request("DELETE", "/v1/tokens/ABC")),
    ("a CSR whose CN is not UTF-8", request("POST", "/v1/sign", {
        "Authorization": "Bearer " + token, "Content-Type": "application/json"}, bad_csr)),
    ("a body that is not UTF-8", request("POST", "/v1/sign", {
        "Authorization": "Bearer " + token}, b'{"csr": "\xff\xfe"}')),
    ("Content-Length: abc", request("POST", "/v1/sign", {"Content-Length": "abc"}, b"{}")),
    ("a request line that is not HTTP", raw(b"HELLO\r\n\r\n")),
    ("20 KiB of headers", request("GET", "/healthz", {"X-Big": "a" * 20000})),
]

failures = 0
for name, answer in cases:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    m = re.match(r"HTTP/1\.[01] (\d{3})", status_line)
    status = int(m.group(1)) if m else 0
    problems = []
    if not 400 <= status < 500:
        problems.append(f"status {status_line!r}")
    if b"exception_what" in head.lower():
        problems.append("an EXCEPTION_WHAT header")
    if secret.encode() in answer or b"/tmp/" in answer:
        problems.append("a file path")
    try:
        doc = json.loads(body)
        if not isinstance(doc.get("error"), str) or not isinstance(doc.get("code"), str):
            problems.append(f"JSON without error and code: {body[:120]!r}")
        elif documented and doc["code"] not in documented:
            problems.append(f"undocumented code {doc['code']!r}")
    except ValueError:
        problems.append(f"not JSON: {body[:120]!r}")
    print(f"{name}: {status_line} {body[:100]!r}" + (f"  <-- FAIL: {', '.join(problems)}"
                                                     if problems else ""))
    failures += bool(problems)
sys.exit(1 if failures else 0)

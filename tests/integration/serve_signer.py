# The signer certificate renewed in the running process: one keep-alive client asks /healthz
# every second on the same connection for SECONDS, and a fresh, verifying client connects
# every 3 s and reads the serial of the certificate it is served. Every request must succeed,
# the keep-alive connection must never be dropped, a fresh client must verify after the first
# certificate's notAfter, and the serial must change. Exits 1 on any failure.
#
# usage: serve_signer.py PORT CA_PEM SECONDS
import http.client
import ssl
import sys
import time

port, ca_file, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca_file)  # checks notAfter and the name 127.0.0.1


def fresh():
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        return r.status, c.sock.getpeercert()
    finally:
        c.close()


failures = 0
status, first = fresh()
first_end = ssl.cert_time_to_seconds(first["notAfter"])
print(f"first serial {first['serialNumber']}, notAfter {first['notAfter']}", flush=True)
serials = [first["serialNumber"]]

keep = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
keep.connect()
sock = keep.sock
start = time.monotonic()
after_expiry = 0
i = 0
while time.monotonic() - start < seconds:
    try:
        keep.request("GET", "/healthz")
        r = keep.getresponse()
        r.read()
        ok = r.status == 200 and keep.sock is sock
    except Exception as e:  # a dropped connection
        print(f"keep-alive request failed: {e!r}", flush=True)
        ok = False
    failures += not ok
    if i % 3 == 0:
        try:
            status, cert = fresh()
            if cert["serialNumber"] != serials[-1]:
                serials.append(cert["serialNumber"])
                print(f"t={time.monotonic() - start:.0f}s new serial {cert['serialNumber']}, "
                      f"notAfter {cert['notAfter']}", flush=True)
            if time.time() > first_end:
                after_expiry += 1
        except Exception as e:
            print(f"t={time.monotonic() - start:.0f}s fresh client failed: {e!r}", flush=True)
            failures += 1
    i += 1
    time.sleep(1)

keep.close()
print(f"summary: {i} keep-alive requests on one connection, serials {len(serials)}, "
      f"fresh handshakes after the first certificate expired: {after_expiry}, {failures} failed")
sys.exit(0 if failures == 0 and len(serials) >= 2 and after_expiry > 0 else 1)

# The attacker and the real client of serve_attacks.sh, both from 127.0.0.1 (one address, as
# behind a NAT): TRICKLE TLS connections sending one header byte every 2 s and IDLE TCP
# connections that never say a word, each opened again as soon as the server closes it, while
# a real client asks GET /healthz on a fresh TLS connection every half second and POSTs a
# signing request now and then. Prints one line per probe and a summary; exits 1 when a
# probe failed or took 1 s or more.
#
# usage: serve_attacks.py PORT CA_PEM TOKEN SIGN_BODY_FILE SECONDS [TRICKLE IDLE]
import asyncio
import http.client
import json
import socket
import ssl
import sys
import threading
import time

port, ca_file, token, body_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
seconds = float(sys.argv[5])
trickle_n = int(sys.argv[6]) if len(sys.argv) > 6 else 100
idle_n = int(sys.argv[7]) if len(sys.argv) > 7 else 300
body = open(body_file, "rb").read()

attack_ctx = ssl.create_default_context()
attack_ctx.check_hostname = False
attack_ctx.verify_mode = ssl.CERT_NONE
stop = threading.Event()
counts = {"trickle_open": 0, "trickle_closed": 0, "idle_open": 0, "idle_closed": 0}
HEADER = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000 + b"\r\n\r\n"


async def trickle():
    while not stop.is_set():
        try:
            _, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, ssl=attack_ctx), 10)
        except Exception:
            await asyncio.sleep(0.2)
            continue
        counts["trickle_open"] += 1
        try:
            for i in range(len(HEADER)):
                if stop.is_set():
                    break
                w.write(HEADER[i:i + 1])
                await w.drain()
                await asyncio.sleep(2)
        except Exception:
            counts["trickle_closed"] += 1
        w.close()


async def idle():
    while not stop.is_set():
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        except Exception:
            await asyncio.sleep(0.2)
            continue
        counts["idle_open"] += 1
        try:
            while not stop.is_set():
                try:
                    if await asyncio.wait_for(r.read(1), 0.5) == b"":
                        break
                except asyncio.TimeoutError:
                    pass
        except Exception:
            pass
        counts["idle_closed"] += 1
        w.close()


async def attack():
    tasks = [asyncio.create_task(trickle()) for _ in range(trickle_n)]
    tasks += [asyncio.create_task(idle()) for _ in range(idle_n)]
    while not stop.is_set():
        await asyncio.sleep(0.2)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


attacker = threading.Thread(target=lambda: asyncio.run(attack()), daemon=True)
attacker.start()
time.sleep(4)  # let the attack take hold

client_ctx = ssl.create_default_context(cafile=ca_file)
client_ctx.check_hostname = False


def request(method, path, payload=None, headers=None):
    start = time.monotonic()
    c = http.client.HTTPSConnection("127.0.0.1", port, context=client_ctx, timeout=5)
    try:
        c.request(method, path, body=payload, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, data, time.monotonic() - start
    except Exception as e:
        return None, str(e).encode(), time.monotonic() - start
    finally:
        c.close()


failures, probes, signs, worst = 0, 0, 0, 0.0
end = time.monotonic() + seconds
while time.monotonic() < end:
    status, data, took = request("GET", "/healthz")
    probes += 1
    worst = max(worst, took)
    ok = status == 200 and took < 1.0
    print(f"healthz {status} {took:.3f}s" + ("" if ok else "  <-- FAIL"), flush=True)
    failures += not ok
    if probes % 5 == 0:
        status, data, took = request("POST", "/v1/sign", body, {
            "Authorization": "Bearer " + token, "Content-Type": "application/json"})
        signs += 1
        ok = status == 201 and "certificate" in json.loads(data or b"{}")
        print(f"sign {status} {took:.3f}s" + ("" if ok else f"  <-- FAIL {data[:200]!r}"),
              flush=True)
        failures += not ok
    time.sleep(0.5)

stop.set()
attacker.join(5)
print(f"summary: {probes} healthz probes, {signs} signs, worst healthz {worst:.3f}s, "
      f"{failures} failed; attacker {counts}")
sys.exit(1 if failures else 0)

#!/usr/bin/env python3
"""ha_failure.sh's accounting: what the joins got against what etcd holds.

Usage: ha_check.py PLAN JOINDIR STORE_VALUES TOKENS_JSON

PLAN: one join a line, "INDEX TOKEN NODE SERVERS"; JOINDIR/INDEX/NODE.pem is its
certificate. STORE_VALUES: the values under /kubeca/certs/ (one JSON record a line, as
etcdctl prints them). TOKENS_JSON: `kubeca token list --json`. Prints one line per check,
"ok DESCRIPTION" or "fail DESCRIPTION", then "orphans N": certificates a token paid for that
no join holds (a multi-use token's answer lost with a killed replica, asked again).
"""
import collections
import json
import sys

from cryptography import x509
from cryptography.x509.oid import NameOID


def main():
    plan_file, join_dir, store_file, tokens_file = sys.argv[1:5]
    plan = [line.split() for line in open(plan_file) if line.strip()]
    store = [json.loads(line) for line in open(store_file) if line.strip().startswith("{")]
    tokens = {t["id"]: t for t in json.load(open(tokens_file))}
    by_serial = {int(c["serial"], 16): c for c in store}
    checks = []

    def check(ok, what):
        checks.append(("ok " if ok else "fail ") + what)

    served = []  # (index, token id, serial)
    bad_subject = []
    for index, token, node, _ in plan:
        try:
            pem = open(f"{join_dir}/{index}/{node}.pem", "rb").read()
        except OSError:
            continue  # a failed join: ha_failure.sh counts those
        cert = x509.load_pem_x509_certificate(pem)
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        org = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        if cn != f"system:node:{node}" or org != ["system:nodes"]:
            bad_subject.append(f"{index}: {cert.subject.rfc4514_string()}")
        served.append((index, token.split(".")[0], cert.serial_number))
    check(not bad_subject, f"every certificate names its node ({bad_subject[:3]})")

    serials = [s for _, _, s in served]
    dupes = [s for s, n in collections.Counter(serials).items() if n > 1]
    check(not dupes, f"{len(serials)} served serials, none twice ({dupes[:3]})")

    missing = [format(s, "x") for s in serials if s not in by_serial]
    check(not missing, f"every served certificate is in etcd (missing: {missing[:3]})")
    wrong = [s for i, t, s in served if s in by_serial and by_serial[s]["requester"] != "token:" + t]
    check(not wrong, f"etcd names each one's token as its requester ({wrong[:3]})")

    # Token accounting: a use is a certificate in etcd and a certificate a use, per token.
    in_store = collections.Counter(c["requester"] for c in store)
    joins = collections.Counter(t for _, t, _ in served)
    planned = collections.Counter(t.split(".")[0] for _, t, _, _ in plan)
    orphans = 0
    for tid, n in planned.items():
        t = tokens.get(tid)
        if t is None:
            check(False, f"token {tid} is listed")
            continue
        uses, held = t["uses"], in_store.get("token:" + tid, 0)
        if uses != held:
            check(False, f"token {tid}: {uses} uses, {held} certificates in etcd")
        if t["uses_allowed"] == 1 and uses != 1:
            check(False, f"1-use token {tid}: {uses} uses")
        if uses < joins.get(tid, 0):
            check(False, f"token {tid}: {uses} uses < {joins[tid]} joins")
        orphans += uses - joins.get(tid, 0)
    check(not [c for c in checks if c.startswith("fail token") or c.startswith("fail 1-use")],
          f"{len(planned)} tokens: uses == their certificates in etcd, 1-use tokens used once")
    print("\n".join(checks))
    print(f"orphans {orphans}")


main()

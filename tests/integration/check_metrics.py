#!/usr/bin/python3
"""Checks a /metrics answer: valid Prometheus text (prometheus_client's parser, Debian's
python3-prometheus-client, agrees), under 64 KiB, every label value from the fixed sets that
docs/api.md documents (endpoints, refusal codes) or a profile name.

  check_metrics.py METRICS_FILE DOCS_API_MD
Prints each problem; exit 1 when there is one.
"""
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

PROFILES = {"", "ca", "apiserver", "kubelet", "admin", "kube-proxy", "controller-manager",
            "scheduler", "apiserver-kubelet-client", "front-proxy-ca", "front-proxy-client",
            "etcd-ca", "etcd-server", "etcd-peer", "etcd-healthcheck-client",
            "apiserver-etcd-client", "signer", "user"}


def documented(doc):
    endpoints = {"other"}
    for m in re.finditer(r"^\| `[A-Z]+ (/[^` ]*)` \|", doc, re.M):
        endpoints.add(m.group(1))
    refusals = doc[doc.index("## Refusals"):]
    refusals = refusals[:refusals.index("\n## ", 1)]
    results = {"ok", "other"}
    for line in refusals.splitlines():
        if re.match(r"^\| [0-9]{3} \|", line):
            results.update(re.findall(r"`([a-z_]+)`", line.split("|")[2]))
    return endpoints, results


def main():
    raw = open(sys.argv[1], "rb").read()
    endpoints, results = documented(open(sys.argv[2]).read())
    problems = []
    if len(raw) >= 64 * 1024:
        problems.append("%d bytes, not under 64 KiB" % len(raw))
    text = raw.decode("utf-8")
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and others on bad text
        problems.append("prometheus_client cannot parse it: %r" % e)
        families = []
    sample = re.compile(r'^([a-z_]+)(\{([a-z_]+="[^"\\\n]*"(?:,[a-z_]+="[^"\\\n]*")*)\})? '
                        r'(-?[0-9][0-9.e+-]*)$')
    allowed = {"endpoint": endpoints, "result": results, "profile": PROFILES}
    ca_expiry = []
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = sample.match(line)
        if not m:
            problems.append("not a sample line: %r" % line[:200])
            continue
        if m.group(1) == "kubeca_ca_expiry_seconds":
            ca_expiry.append(float(m.group(4)))
        for name, value in re.findall(r'([a-z_]+)="([^"]*)"', m.group(3) or ""):
            if name == "le":
                if not re.match(r"^([0-9.]+|\+Inf)$", value):
                    problems.append("bad le in %r" % line)
            elif name not in allowed:
                problems.append("label %s is not one of the fixed ones: %r" % (name, line))
            elif value not in allowed[name]:
                problems.append("%s=%r is not in the fixed set: %r" % (name, value, line[:200]))
    if len(ca_expiry) != 1 or ca_expiry[0] <= 0:
        problems.append("kubeca_ca_expiry_seconds samples: %r" % ca_expiry)
    for p in problems[:20]:
        print("metrics: " + p)
    print("%d bytes, %d families, %d problems" % (len(raw), len(families), len(problems)))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

# A P-256 CSR, correctly self-signed, whose CN is a UTF8String with bytes that are not UTF-8
# (openssl req refuses to make one): openssl makes a CSR for a placeholder CN, the bytes are
# patched in the CertificationRequestInfo, and openssl signs it again with the same key.
#
# usage: bad_utf8_csr.py OUT_PEM KEY_OUT
import base64
import subprocess
import sys
import tempfile

out_pem, key_out = sys.argv[1], sys.argv[2]


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def read_tlv(data, i):
    """(tag, start of value, end of value) of the element at i."""
    tag, n = data[i], data[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(data[i:i + k], "big")
        i += k
    return tag, i, i + n


with tempfile.TemporaryDirectory() as d:
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key_out,
                    "-subj", "/CN=system:node:n1QQ", "-outform", "DER", "-out", d + "/csr.der"],
                   check=True, capture_output=True)
    der = open(d + "/csr.der", "rb").read()
    _, body, _ = read_tlv(der, 0)
    _, info_v, info_end = read_tlv(der, body)
    info = der[body:info_end]
    _, _, alg_end = read_tlv(der, info_end)
    algid = der[info_end:alg_end]
    assert info.count(b"n1QQ") == 1
    info = info.replace(b"n1QQ", b"n1\xff\xfe")
    open(d + "/info.der", "wb").write(info)
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_out, d + "/info.der"],
                         check=True, capture_output=True).stdout
    csr = tlv(0x30, info + algid + tlv(0x03, b"\x00" + sig))
    b64 = base64.encodebytes(csr).decode().replace("\n", "")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    with open(out_pem, "w") as f:
        f.write("-----BEGIN CERTIFICATE REQUEST-----\n" + "\n".join(lines) +
                "\n-----END CERTIFICATE REQUEST-----\n")

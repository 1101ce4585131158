// CSRs built field by field around subject keys kubeca must refuse. A key without a secret
// lets anyone make its self-signature: RSA with e = 1 (the signature is the padded hash),
// the P-256 point at infinity (u1*G alone), an Ed25519 point of small order (R = identity,
// S = 0). These helpers make those forgeries, so the tests attack as a client would.
#pragma once

#include <botan/asn1_obj.h>
#include <botan/bigint.h>
#include <botan/der_enc.h>
#include <botan/ec_group.h>
#include <botan/hash.h>
#include <botan/pem.h>
#include <botan/rng.h>
#include <botan/x509_dn.h>

#include <functional>
#include <string>
#include <vector>

namespace kubeca::test {

using Bytes = std::vector<uint8_t>;

inline Bytes spki(const Botan::AlgorithmIdentifier& alg, const Bytes& key_bits) {
  Bytes out;
  Botan::DER_Encoder(out)
      .start_cons(Botan::SEQUENCE)
      .encode(alg)
      .encode(key_bits, Botan::BIT_STRING)
      .end_cons();
  return out;
}

inline Bytes rsa_spki(const Botan::BigInt& n, const Botan::BigInt& e) {
  Bytes bits;
  Botan::DER_Encoder(bits).start_cons(Botan::SEQUENCE).encode(n).encode(e).end_cons();
  return spki(Botan::AlgorithmIdentifier(Botan::OID("1.2.840.113549.1.1.1"),
                                         Botan::AlgorithmIdentifier::USE_NULL_PARAM),
              bits);
}

// point: the SEC1 encoding (0x00 alone is the point at infinity).
inline Bytes ec_spki(const std::string& curve, const Bytes& point) {
  Bytes params;
  Botan::DER_Encoder(params).encode(Botan::OID::from_string(curve));
  return spki(Botan::AlgorithmIdentifier(Botan::OID("1.2.840.10045.2.1"), params), point);
}

inline Bytes ed25519_spki(const Bytes& a) {
  return spki(Botan::AlgorithmIdentifier(Botan::OID("1.3.101.112"),
                                         Botan::AlgorithmIdentifier::USE_EMPTY_PARAM),
              a);
}

// A PEM CSR for CN=cn with this SubjectPublicKeyInfo; `sign` gets the DER of the
// CertificationRequestInfo and returns the signature under `sig_alg`.
inline std::string csr_pem(const Bytes& subject_spki, const Botan::AlgorithmIdentifier& sig_alg,
                           const std::function<Bytes(const Bytes&)>& sign,
                           const std::string& cn = "system:node:n1") {
  Botan::X509_DN dn;
  dn.add_attribute("X520.CommonName", cn);
  Bytes info;
  Botan::DER_Encoder(info)
      .start_cons(Botan::SEQUENCE)
      .encode(size_t(0))
      .encode(dn)
      .raw_bytes(subject_spki)
      .add_object(Botan::ASN1_Tag(0), Botan::ASN1_Tag(Botan::CONSTRUCTED | Botan::CONTEXT_SPECIFIC),
                  Bytes())
      .end_cons();
  Bytes der;
  Botan::DER_Encoder(der)
      .start_cons(Botan::SEQUENCE)
      .raw_bytes(info)
      .encode(sig_alg)
      .encode(sign(info), Botan::BIT_STRING)
      .end_cons();
  return Botan::PEM_Code::encode(der, "CERTIFICATE REQUEST");
}

inline Bytes sha256(const Bytes& data) {
  const auto h = Botan::HashFunction::create_or_throw("SHA-256")->process(data);
  return Bytes(h.begin(), h.end());
}

// sha256WithRSAEncryption under (n, e = 1): s^1 mod n is s, so the signature is
// EMSA-PKCS1-v1_5's encoded message itself, and it verifies.
inline std::string rsa_e1_csr(const Botan::BigInt& n) {
  const auto sign = [&](const Bytes& info) {
    static const uint8_t kDigestInfo[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x01, 0x05, 0x00, 0x04, 0x20};
    Bytes t(std::begin(kDigestInfo), std::end(kDigestInfo));
    const Bytes h = sha256(info);
    t.insert(t.end(), h.begin(), h.end());
    Bytes em{0x00, 0x01};
    em.insert(em.end(), n.bytes() - 3 - t.size(), 0xff);
    em.push_back(0x00);
    em.insert(em.end(), t.begin(), t.end());
    return em;
  };
  return csr_pem(rsa_spki(n, 1),
                 Botan::AlgorithmIdentifier(Botan::OID("1.2.840.113549.1.1.11"),
                                            Botan::AlgorithmIdentifier::USE_NULL_PARAM),
                 sign);
}

// ecdsa-with-SHA256 under the P-256 point at infinity Q: u1*G + u2*Q is u1*G, so
// r = x(e/s * G) verifies for any s.
inline std::string p256_infinity_csr(Botan::RandomNumberGenerator& rng) {
  const Botan::EC_Group g("secp256r1");
  const auto sign = [&](const Bytes& info) {
    const Botan::BigInt e = g.mod_order(Botan::BigInt::decode(sha256(info)));
    const Botan::BigInt s = Botan::BigInt::random_integer(rng, 1, g.get_order());
    const Botan::BigInt u1 = g.multiply_mod_order(e, g.inverse_mod_order(s));
    const Botan::BigInt r = g.mod_order((g.get_base_point() * u1).get_affine_x());
    Bytes sig;
    Botan::DER_Encoder(sig).start_cons(Botan::SEQUENCE).encode(r).encode(s).end_cons();
    return sig;
  };
  return csr_pem(ec_spki("secp256r1", {0x00}),
                 Botan::AlgorithmIdentifier(Botan::OID("1.2.840.10045.4.3.2"),
                                            Botan::AlgorithmIdentifier::USE_EMPTY_PARAM),
                 sign);
}

// Ed25519 with R = identity, S = 0 under the public point a: it verifies when [h]a is the
// identity, always for a = identity and for one message in ord(a) otherwise.
inline std::string ed25519_forged_csr(const Bytes& a, const std::string& cn = "system:node:n1") {
  const auto sign = [](const Bytes&) {
    Bytes sig(64, 0);
    sig[0] = 0x01;
    return sig;
  };
  return csr_pem(ed25519_spki(a),
                 Botan::AlgorithmIdentifier(Botan::OID("1.3.101.112"),
                                            Botan::AlgorithmIdentifier::USE_EMPTY_PARAM),
                 sign, cn);
}

inline Bytes ed25519_identity() {
  Bytes a(32, 0);
  a[0] = 0x01;
  return a;
}

}  // namespace kubeca::test

// A certificate signing request (PKCS#10) as `kubeca serve` receives it: decoded with
// Botan, its self-signature checked with OpenSSL libcrypto.
//
// Why not Botan::PKCS10_Request: Botan 2 verifies the self-signature inside its
// constructor with its own code, and its P-256 verification costs about 0.3 ms here (8x
// OpenSSL), more than issuing the certificate; it cannot be told to skip it. So the
// fields are decoded here the way Botan 2.19's decode_pkcs10 does, and the signature is
// verified once, by self_signature_ok(). Issuing stays on Botan. docs/benchmarks.md,
// "serve: kubeca vs cfssl", has the figures.
#pragma once

#include <botan/pk_keys.h>
#include <botan/pkix_types.h>
#include <botan/x509_ext.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kubeca {

class Csr {
 public:
  // Decodes the first PEM block, which must be a CERTIFICATE REQUEST. Throws a
  // Botan::Exception when it is malformed. Does not check the signature.
  static Csr from_pem(const std::string& pem);

  const Botan::X509_DN& subject_dn() const { return subject_; }
  // The subjectAltName extension, plus each PKCS#9 emailAddress attribute as "RFC822".
  const Botan::AlternativeName& subject_alt_name() const { return alt_name_; }
  const Botan::Extensions& extensions() const { return extensions_; }
  bool is_CA() const;  // basicConstraints CA:TRUE asked for
  const std::vector<uint8_t>& raw_public_key() const { return public_key_; }  // SPKI, DER

  // The subject key, to issue for. Throws a Botan::Exception when Botan cannot load it.
  // RSA keys come back as a light Public_Key (SubjectPublicKeyInfo, size and name):
  // Botan's RSA_PublicKey precomputes, at about 0.6 ms, what only its own RSA operations
  // use, and a CA never runs one with a subject's key.
  std::unique_ptr<Botan::Public_Key> subject_public_key() const;

  // True when the self-signature verifies under the request's own key (OpenSSL). RSA
  // PKCS#1 v1.5 and ECDSA P-256/P-384 with SHA-2, and Ed25519 go a direct way (the key
  // built from its numbers: OpenSSL 3.0's generic key decoder costs more than the
  // verification); anything else goes through X509_REQ_verify.
  bool self_signature_ok() const;

 private:
  std::vector<uint8_t> der_;     // the whole request, as received
  std::vector<uint8_t> signed_;  // CertificationRequestInfo, DER: what is signed
  Botan::AlgorithmIdentifier sig_algo_;
  std::vector<uint8_t> signature_;  // the BIT STRING's bytes
  Botan::X509_DN subject_;
  std::vector<uint8_t> public_key_;
  Botan::Extensions extensions_;
  Botan::AlternativeName alt_name_;
};

}  // namespace kubeca

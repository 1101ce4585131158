// A certificate authority: a certificate and its key, issuing from CertSpecs.
#pragma once

#include <botan/bigint.h>
#include <botan/pk_keys.h>
#include <botan/rng.h>
#include <botan/x509cert.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kubeca/profile.h"

namespace kubeca {

using TimePoint = std::chrono::system_clock::time_point;

// A positive 128-bit serial with the top bit set, so every serial has the same length.
Botan::BigInt random_serial(Botan::RandomNumberGenerator& rng);

// A certificate as Ca::issue_der signed it, with what a record needs, known without
// parsing it again.
struct IssuedCert {
  std::vector<uint8_t> der;
  std::string serial;   // lower-case hex, as serial_hex gives it
  std::string subject;  // dn_text of the subject
  TimePoint not_before, not_after;
};

class Ca {
 public:
  Ca(Botan::X509_Certificate cert, std::unique_ptr<Botan::Private_Key> key);
  ~Ca();

  // A new self-signed CA for a CA profile.
  static std::unique_ptr<Ca> create(const CertSpec& spec, std::unique_ptr<Botan::Private_Key> key,
                                    TimePoint now, Botan::RandomNumberGenerator& rng);
  // Loads ca.pem + ca-key.pem; throws with the file named when they do not match.
  static std::unique_ptr<Ca> load(const std::filesystem::path& cert_pem,
                                  const std::filesystem::path& key_pem);

  // Issues a certificate for `subject_key` from `spec` alone. notBefore is now - 5 min,
  // notAfter now + validity capped at the CA's own notAfter. Thread-safe.
  Botan::X509_Certificate issue(const CertSpec& spec, const Botan::Public_Key& subject_key,
                                TimePoint now, const Botan::BigInt& serial,
                                Botan::RandomNumberGenerator& rng) const;
  // The same certificate, as DER (the service's path: nothing parsed back).
  IssuedCert issue_der(const CertSpec& spec, const Botan::Public_Key& subject_key, TimePoint now,
                       const Botan::BigInt& serial, Botan::RandomNumberGenerator& rng) const;

  const Botan::X509_Certificate& certificate() const { return cert_; }
  const Botan::Private_Key& key() const { return *key_; }
  const std::string& certificate_pem() const { return cert_pem_; }

  // True when `cert` names this CA as issuer and carries its signature.
  bool issued(const Botan::X509_Certificate& cert) const;

  // Put a CRL distribution point with this URL in every certificate issued from now on.
  void set_crl_url(std::string url) { crl_url_ = std::move(url); }
  const std::string& crl_url() const { return crl_url_; }

 private:
  Botan::X509_Certificate cert_;
  std::string cert_pem_;  // served with every certificate
  TimePoint ca_not_after_;
  std::unique_ptr<Botan::Private_Key> key_;
  std::string crl_url_;
  // Botan's PK_Signer is not thread-safe, and making one costs about 1 ms for an RSA-2048
  // key (its blinder), as much as the signature: idle ones are kept and reused, each by
  // one thread at a time, so issuing runs on every core.
  struct Signer;
  mutable std::mutex mu_;  // guards signers_
  mutable std::vector<std::unique_ptr<Signer>> signers_;
};

// The identity and usages a certificate carries, as a spec to issue it again: subject,
// SANs (IPv6 ones too), EKUs, the seed's usages, and its lifetime.
CertSpec identity_of(const Botan::X509_Certificate& cert, Profile profile = Profile::kKubelet);

// SHA-256 of the certificate's SubjectPublicKeyInfo, "sha256:HEX" (kubeadm's CA pin).
std::string ca_pin(const Botan::X509_Certificate& cert);
std::string to_pem(const Botan::X509_Certificate& cert);
Botan::X509_Certificate parse_certificate_pem(const std::string& pem);
std::string serial_hex(const Botan::X509_Certificate& cert);
std::string dn_text(const Botan::X509_DN& dn);  // "O=system:nodes, CN=system:node:n1"
// True when `key` is the certificate's key (SubjectPublicKeyInfo compared).
bool key_matches(const Botan::X509_Certificate& cert, const Botan::Public_Key& key);

}  // namespace kubeca

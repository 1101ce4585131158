#include "kubeca/crl.h"

#include <botan/pem.h>
#include <botan/pkix_types.h>
#include <botan/x509_ca.h>
#include <botan/x509_crl.h>

#include "kubeca/config.h"
#include "kubeca/keys.h"
#include "kubeca/pki.h"

namespace kubeca {

namespace {
struct Reason {
  int code;
  const char* name;
};
constexpr Reason kReasons[] = {
    {0, "unspecified"},        {1, "keyCompromise"},      {2, "cACompromise"},
    {3, "affiliationChanged"}, {4, "superseded"},         {5, "cessationOfOperation"},
    {6, "certificateHold"},    {9, "privilegeWithdrawn"}, {10, "aACompromise"}};
}  // namespace

std::optional<int> parse_revocation_reason(const std::string& name) {
  for (const auto& r : kReasons) {
    if (name == r.name) return r.code;
  }
  return std::nullopt;
}

std::string revocation_reason_name(int code) {
  for (const auto& r : kReasons) {
    if (code == r.code) return r.name;
  }
  return "unspecified";
}

std::string Crl::pem() const { return Botan::PEM_Code::encode(der, "X509 CRL"); }

Crl make_crl(const Ca& ca, const std::vector<CertRecord>& records, TimePoint now,
             std::chrono::seconds lifetime) {
  Botan::RandomNumberGenerator& rng = thread_rng();
  Botan::X509_CA x509_ca(ca.certificate(), ca.key(), signature_hash(ca.key()), rng);
  std::vector<Botan::CRL_Entry> entries;
  const auto& ca_subject = ca.certificate().subject_dn();
  for (const auto& r : records) {
    if (r.status != "revoked" || r.pem.empty()) continue;
    const auto cert = parse_certificate_pem(r.pem);
    if (cert.issuer_dn() != ca_subject) continue;
    entries.emplace_back(cert, static_cast<Botan::CRL_Code>(r.reason));
  }
  const auto empty = x509_ca.new_crl(rng, now, lifetime);
  const auto crl = x509_ca.update_crl(empty, entries, rng, now, lifetime);
  Crl out;
  out.der = crl.BER_encode();
  out.this_update = crl.this_update().to_std_timepoint();
  out.next_update = crl.next_update().to_std_timepoint();
  return out;
}

CertRecord record_of(const Botan::X509_Certificate& cert, const std::string& profile,
                     const std::string& requester) {
  CertRecord r;
  r.serial = serial_hex(cert);
  r.profile = profile;
  r.subject = dn_text(cert.subject_dn());
  for (const auto& [type, value] : cert.subject_alt_name().get_attributes()) {
    r.sans.push_back(type + ":" + value);
  }
  r.not_before = unix_seconds(cert.not_before().to_std_timepoint());
  r.not_after = unix_seconds(cert.not_after().to_std_timepoint());
  r.requester = requester;
  r.pem = to_pem(cert);
  return r;
}

std::optional<CertRecord> revoke_certificate(Store& store, const Ca& ca,
                                             const std::string& serial_in,
                                             const std::string& cert_pem, int reason, int64_t now) {
  std::string serial;
  if (!cert_pem.empty()) {
    Botan::X509_Certificate cert;
    try {
      cert = parse_certificate_pem(cert_pem);
    } catch (const std::exception& e) {
      throw InputError(std::string("not a certificate: ") + e.what());
    }
    if (!ca.issued(cert)) throw InputError("the certificate was not issued by this CA");
    serial = serial_hex(cert);
    if (!store.find_certificate(serial)) store.insert_certificate(record_of(cert, "", "revoke"));
  } else {
    for (char ch : serial_in) {
      if (ch != ':') serial += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
  }
  if (!store.revoke_certificate(serial, reason, now)) return std::nullopt;
  return store.find_certificate(serial);
}

}  // namespace kubeca

// Revocation: reasons by name and the CA's certificate revocation list.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "kubeca/ca.h"
#include "kubeca/store.h"

namespace kubeca {

// RFC 5280 CRLReason names as openssl prints them: keyCompromise, superseded, ...
std::optional<int> parse_revocation_reason(const std::string& name);
std::string revocation_reason_name(int code);

struct Crl {
  std::vector<uint8_t> der;
  TimePoint this_update, next_update;
  std::string pem() const;
};

// A CRL signed by `ca` listing every revoked record it issued, valid for `lifetime`.
Crl make_crl(const Ca& ca, const std::vector<CertRecord>& records, TimePoint now,
             std::chrono::seconds lifetime = std::chrono::hours(24));

// The store record for a certificate kubeca did not record itself (issued by `init`).
CertRecord record_of(const Botan::X509_Certificate& cert, const std::string& profile,
                     const std::string& requester);

// Revokes a certificate of `ca` named by serial (hex, colons allowed) or given as PEM; one
// the store never recorded (issued by `kubeca init`) is recorded first. Returns the
// record, or nullopt for an unknown serial. Throws InputError for a PEM that is not a
// certificate of `ca`.
std::optional<CertRecord> revoke_certificate(Store& store, const Ca& ca, const std::string& serial,
                                             const std::string& cert_pem, int reason, int64_t now);

}  // namespace kubeca

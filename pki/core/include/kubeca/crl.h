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
  int64_t number = 0;       // its CRL Number
  int64_t revocations = 0;  // the store's revocation_count() it was made from
  std::string pem() const;
};

// A CRL signed by `ca` with CRL Number `number`, listing every revoked record it issued
// with the record's own revocation time and reason, valid for `lifetime`.
Crl make_crl(const Ca& ca, const std::vector<CertRecord>& records, int64_t number, TimePoint now,
             std::chrono::seconds lifetime = std::chrono::hours(24));
// The next CRL of the store: its number taken from the store's persisted counter.
Crl make_crl(const Ca& ca, Store& store, TimePoint now,
             std::chrono::seconds lifetime = std::chrono::hours(24));

// The form a CRL is published in (Store::publish_crl).
PublishedCrl published_of(const Crl& crl);
// make_crl, then published so every replica of the service serves it (unless one with a
// higher number was published meanwhile).
Crl make_and_publish_crl(const Ca& ca, Store& store, TimePoint now,
                         std::chrono::seconds lifetime = std::chrono::hours(24));

// Hex SHA-256 of a SubjectPublicKeyInfo (CertRecord::key_hash).
std::string key_hash_of(const std::vector<uint8_t>& spki);
// The identity a certificate keeps across renewals: profile, subject, SANs, node.
std::string identity_of_record(const CertRecord& r);

// The store record for a certificate: serial, names, validity, key hash, node (`node`, or a
// kubelet's name from its subject) and identity.
CertRecord record_of(const Botan::X509_Certificate& cert, const std::string& profile,
                     const std::string& requester, const std::string& node = "");
// The same record for a certificate Ca::issue_der just made from `spec` for `key`, without
// parsing it (tests/unit/ca_test.cc checks that both give the same record).
CertRecord record_of(const IssuedCert& cert, const CertSpec& spec, const Botan::Public_Key& key,
                     const std::string& profile, const std::string& requester,
                     const std::string& node = "");

// Revokes a certificate of `ca` named by serial (hex, colons allowed) or given as PEM; one
// the store never recorded (issued by `kubeca init`) is recorded first. Returns the
// record, or nullopt for an unknown serial. Throws InputError for a PEM that is not a
// certificate of `ca`.
std::optional<CertRecord> revoke_certificate(Store& store, const Ca& ca, const std::string& serial,
                                             const std::string& cert_pem, int reason, int64_t now);

// Revokes every certificate of `node` that has not expired at `now`; returns them.
std::vector<CertRecord> revoke_node(Store& store, const std::string& node, int reason, int64_t now);

}  // namespace kubeca

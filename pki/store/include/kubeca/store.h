// The store: issued certificates, bootstrap tokens (hashed), revocations.
// SQLite (sqlite:PATH, WAL, shared by `kubeca serve` and the CLI) or memory (tests).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace kubeca {

struct CertRecord {
  std::string serial;  // lower-case hex, no leading "0x"
  std::string profile;
  std::string subject;            // "O=system:nodes, CN=system:node:n1" (dn_text)
  std::vector<std::string> sans;  // "DNS:n1", "IP:10.0.0.1"
  int64_t not_before = 0;         // unix seconds
  int64_t not_after = 0;
  std::string status = "good";  // good | revoked
  std::string requester;        // "token:abcdef", "renew:SERIAL", "cli"
  std::string pem;
  int64_t revoked_at = 0;
  int reason = 0;        // RFC 5280 CRLReason code
  std::string key_hash;  // hex SHA-256 of the SubjectPublicKeyInfo
  std::string node;      // the node it was issued to (token's node, kubelet's name), or ""
  std::string identity;  // profile, subject, SANs and node: what a renewal keeps
};

// What a new CRL is made from, read in the transaction that takes its number.
struct CrlBasis {
  int64_t number = 0;       // the CRL Number for the new CRL: one more than the last one taken
  int64_t revocations = 0;  // revocation_count() at that moment
  std::vector<CertRecord> revoked;
};

// The CRL every replica serves (Store::publish_crl): the one with the highest CRL Number.
struct PublishedCrl {
  int64_t number = 0;       // its CRL Number
  int64_t revocations = 0;  // revocation_count() it was made from
  int64_t this_update = 0;  // unix seconds
  int64_t next_update = 0;
  std::string der;
};

struct TokenRecord {
  std::string id;           // [a-z0-9]{6}
  std::string secret_hash;  // hex SHA-256 of the secret part; the secret is never stored
  std::string node;
  std::vector<std::string> ips;
  std::string profile = "kubelet";
  int64_t created_at = 0;
  int64_t expires_at = 0;
  int uses_allowed = 1;
  int uses = 0;
  bool revoked = false;
};

// The store could not be reached or could not answer: the same request may succeed later,
// here or on another replica (HTTP 503 store_unavailable).
class StoreUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class TokenUse { kOk, kUnknown, kRevoked, kExpired, kUsedUp, kDuplicateSerial };
const char* to_string(TokenUse u);

class Store {
 public:
  virtual ~Store() = default;

  // False when a certificate with this serial is already stored.
  virtual bool insert_certificate(const CertRecord& cert) = 0;
  // Stores those of `certs` not stored yet, in one transaction that is on disk (fsync) when
  // this returns: the offline commands record a certificate before writing its file.
  // Returns how many were new.
  virtual size_t record_certificates(const std::vector<CertRecord>& certs) = 0;
  virtual std::optional<CertRecord> find_certificate(const std::string& serial) = 0;
  virtual std::vector<CertRecord> list_certificates() = 0;  // ordered by not_before, serial
  // False when the serial is unknown; revoking twice keeps the first time and reason.
  // A new revocation also bumps revocation_count().
  virtual bool revoke_certificate(const std::string& serial, int reason, int64_t now) = 0;
  // The newest certificate of an identity: latest not_before, then latest stored.
  virtual std::optional<CertRecord> newest_of_identity(const std::string& identity) = 0;
  // Every certificate for the public key with this hash.
  virtual std::vector<CertRecord> certificates_with_key(const std::string& key_hash) = 0;
  // True when any certificate for this key was revoked (the key is barred). Answered from
  // an index, without reading the key's other certificates: a key may have thousands.
  virtual bool key_revoked(const std::string& key_hash) = 0;
  // A good certificate for this key issued to `requester`, unexpired at `now` (the one that
  // expires last), or none: what a client that lost its answer gets again. Indexed, too.
  virtual std::optional<CertRecord> issued_for_key(const std::string& key_hash,
                                                   const std::string& requester, int64_t now) = 0;
  virtual std::vector<CertRecord> certificates_of_node(const std::string& node) = 0;
  // Fills key_hash, node and identity of a record stored without them (before schema 2);
  // false when the serial is unknown or the record has them already.
  virtual bool fill_certificate_identity(const std::string& serial, const std::string& key_hash,
                                         const std::string& node, const std::string& identity) = 0;
  // The records stored without key_hash (before schema 2): what fill_certificate_identity
  // is for. Few or none, found without reading the others.
  virtual std::vector<CertRecord> certificates_without_identity() {
    std::vector<CertRecord> out;
    for (auto& c : list_certificates()) {
      if (c.key_hash.empty()) out.push_back(std::move(c));
    }
    return out;
  }
  // Calls fn for every certificate neither revoked nor expired at `now`, without holding
  // every record in memory at once; the store may be written to meanwhile.
  using LiveVisitor =
      std::function<void(const std::string& serial, const std::string& profile, int64_t not_after)>;
  virtual void visit_live_certificates(int64_t now, const LiveVisitor& fn) {
    for (const auto& c : list_certificates()) {
      if (c.status == "good" && c.not_after > now) fn(c.serial, c.profile, c.not_after);
    }
  }
  // How many revocations the store has seen: a cheap way to tell that the CRL is stale.
  virtual int64_t revocation_count() = 0;
  // In one transaction: takes the next CRL Number (persisted, never handed out twice) and
  // reads the revoked certificates.
  virtual CrlBasis next_crl() = 0;
  // Makes the next CRL Number at least `number` + 1 (store migrate: the new store never hands
  // out a number the old one did). Never lowers it.
  virtual void raise_crl_number(int64_t number) = 0;

  // Keeps `crl` as the CRL to serve when its number is higher than the published one's;
  // false (nothing changes) otherwise, so the CRL served only moves forward.
  virtual bool publish_crl(const PublishedCrl& crl) = 0;
  // The published CRL's number, 0 when none: one small read, to tell whether a copy is stale.
  virtual int64_t published_crl_number() = 0;
  virtual std::optional<PublishedCrl> published_crl() = 0;

  // False when the id exists.
  virtual bool insert_token(const TokenRecord& token) = 0;
  virtual std::optional<TokenRecord> find_token(const std::string& id) = 0;
  virtual std::vector<TokenRecord> list_tokens() = 0;
  virtual bool revoke_token(const std::string& id) = 0;
  // In one transaction: the token is known, not revoked, not expired at `now` and has a
  // use left; its use count goes up by one and `cert` is stored. Nothing changes otherwise.
  virtual TokenUse use_token(const std::string& id, const CertRecord& cert, int64_t now) = 0;

  virtual bool healthy() = 0;  // the store answers

  // Periodic work (CRL regeneration, expiry metrics) runs on one replica at a time: true
  // while this process holds `task`'s lease, taken when free; call it at least every
  // lease_ttl/3 to keep it. A store that one process owns always says true.
  virtual bool lead(const std::string& task) {
    (void)task;
    return true;
  }
  // The lease's TTL: how long a dead leader keeps its tasks. Zero for a store one process
  // owns (it always leads).
  virtual std::chrono::seconds lease_ttl() const { return std::chrono::seconds(0); }

  // Ties the store to the CA whose pin ("sha256:HEX" of its SubjectPublicKeyInfo, ca_pin())
  // is given: the first call records it, later ones must give the same pin. Throws
  // InputError naming both pins when the store belongs to another CA.
  virtual void bind_ca(const std::string& pin) = 0;

  // Changes when another connection (the CLI) commits to the store; constant when none can.
  virtual int64_t outside_changes() { return 0; }
};

// Only `kubeca serve` and `kubeca init` create a store; every other command needs it to
// exist, so a mistyped --store path is an error instead of an empty store.
enum class OpenMode { kCreate, kExisting };

// "sqlite:PATH" (with kCreate, created with its folder when absent), "sqlite::memory:", or
// "memory:". Throws InputError for an absent file with kExisting, std::runtime_error naming
// the URL when it cannot be opened.
std::unique_ptr<Store> open_store(const std::string& url, OpenMode mode = OpenMode::kCreate);

// etcd://H:P[,H:P...]?ca=F&cert=F&key=F[&prefix=/kubeca/] (TLS, client certificates),
// etcd:https://H:P[,https://...]?..., or etcd+http://H:P (plain, loopback tests only).
std::unique_ptr<Store> open_etcd_store(const std::string& url);

}  // namespace kubeca

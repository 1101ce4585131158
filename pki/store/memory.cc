// memory: a store for tests and the demo, gone when the process ends.
#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

#include "kubeca/config.h"
#include "kubeca/store.h"
#include "store_internal.h"

namespace kubeca {

namespace {

using namespace store_internal;

class MemoryStore : public Store {
 public:
  bool insert_certificate(const CertRecord& cert) override {
    std::lock_guard<std::mutex> lock(mu_);
    return insert_locked(cert);
  }

  size_t record_certificates(const std::vector<CertRecord>& certs) override {
    std::lock_guard<std::mutex> lock(mu_);
    size_t added = 0;
    for (const auto& c : certs) added += insert_locked(c) ? 1 : 0;
    return added;
  }

  std::optional<CertRecord> find_certificate(const std::string& serial) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = certs_.find(serial);
    if (it == certs_.end()) return std::nullopt;
    return it->second;
  }

  std::vector<CertRecord> list_certificates() override {
    std::vector<CertRecord> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [serial, cert] : certs_) out.push_back(cert);
    }
    std::sort(out.begin(), out.end(), cert_order);
    return out;
  }

  bool revoke_certificate(const std::string& serial, int reason, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = certs_.find(serial);
    if (it == certs_.end()) return false;
    CertRecord& c = it->second;
    if (c.status != "revoked") {
      c.status = "revoked";
      c.revoked_at = now;
      c.reason = reason;
      ++revocations_;
      if (!c.key_hash.empty()) revoked_keys_.insert(c.key_hash);
    }
    return true;
  }

  std::optional<CertRecord> newest_of_identity(const std::string& identity) override {
    std::lock_guard<std::mutex> lock(mu_);
    const CertRecord* best = nullptr;
    for (const auto& [serial, c] : certs_) {
      if (c.identity != identity) continue;
      if (!best || std::make_pair(c.not_before, order_.at(c.serial)) >
                       std::make_pair(best->not_before, order_.at(best->serial))) {
        best = &c;
      }
    }
    if (!best) return std::nullopt;
    return *best;
  }

  std::vector<CertRecord> certificates_with_key(const std::string& key_hash) override {
    return select([&](const CertRecord& c) { return c.key_hash == key_hash; });
  }

  bool key_revoked(const std::string& key_hash) override {
    std::lock_guard<std::mutex> lock(mu_);
    return revoked_keys_.count(key_hash) != 0;
  }

  std::optional<CertRecord> issued_for_key(const std::string& key_hash,
                                           const std::string& requester, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_key_.find({key_hash, requester});
    if (it == by_key_.end()) return std::nullopt;
    // Latest notAfter first; revoked ones are rare, expired ones end the walk.
    for (auto e = it->second.rbegin(); e != it->second.rend() && e->first > now; ++e) {
      const CertRecord& c = certs_.at(e->second);
      if (c.status == "good") return c;
    }
    return std::nullopt;
  }

  std::vector<CertRecord> certificates_of_node(const std::string& node) override {
    return select([&](const CertRecord& c) { return c.node == node; });
  }

  bool fill_certificate_identity(const std::string& serial, const std::string& key_hash,
                                 const std::string& node, const std::string& identity) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = certs_.find(serial);
    if (it == certs_.end() || !it->second.key_hash.empty()) return false;
    it->second.key_hash = key_hash;
    it->second.node = node;
    it->second.identity = identity;
    index_locked(it->second);
    return true;
  }

  int64_t revocation_count() override {
    std::lock_guard<std::mutex> lock(mu_);
    return revocations_;
  }

  CrlBasis next_crl() override {
    CrlBasis b;
    {
      std::lock_guard<std::mutex> lock(mu_);
      b.number = ++crl_number_;
      b.revocations = revocations_;
    }
    b.revoked = select([](const CertRecord& c) { return c.status == "revoked"; });
    return b;
  }

  void raise_crl_number(int64_t number) override {
    std::lock_guard<std::mutex> lock(mu_);
    crl_number_ = std::max(crl_number_, number);
  }

  bool publish_crl(const PublishedCrl& crl) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (crl_ && crl_->number >= crl.number) return false;
    crl_ = crl;
    return true;
  }
  int64_t published_crl_number() override {
    std::lock_guard<std::mutex> lock(mu_);
    return crl_ ? crl_->number : 0;
  }
  std::optional<PublishedCrl> published_crl() override {
    std::lock_guard<std::mutex> lock(mu_);
    return crl_;
  }

  bool insert_token(const TokenRecord& token) override {
    std::lock_guard<std::mutex> lock(mu_);
    return tokens_.emplace(token.id, token).second;
  }

  std::optional<TokenRecord> find_token(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tokens_.find(id);
    if (it == tokens_.end()) return std::nullopt;
    return it->second;
  }

  std::vector<TokenRecord> list_tokens() override {
    std::vector<TokenRecord> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, token] : tokens_) out.push_back(token);
    }
    std::sort(out.begin(), out.end(), token_order);
    return out;
  }

  bool revoke_token(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tokens_.find(id);
    if (it == tokens_.end()) return false;
    it->second.revoked = true;
    return true;
  }

  TokenUse use_token(const std::string& id, const CertRecord& cert, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tokens_.find(id);
    if (it == tokens_.end()) return TokenUse::kUnknown;
    TokenRecord& t = it->second;
    TokenUse u = check_token(t.revoked, t.expires_at, t.uses_allowed, t.uses, now);
    if (u != TokenUse::kOk) return u;
    if (!insert_locked(cert)) return TokenUse::kDuplicateSerial;
    ++t.uses;
    return TokenUse::kOk;
  }

  bool healthy() override { return true; }

  void bind_ca(const std::string& pin) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (ca_pin_.empty()) ca_pin_ = pin;
    check_ca("memory:", ca_pin_, pin);
  }

 private:
  bool insert_locked(const CertRecord& cert) {
    if (!certs_.emplace(cert.serial, cert).second) return false;
    order_[cert.serial] = ++inserted_;
    index_locked(cert);
    return true;
  }

  void index_locked(const CertRecord& c) {
    if (c.key_hash.empty()) return;
    by_key_[{c.key_hash, c.requester}].emplace(c.not_after, c.serial);
    if (c.status == "revoked") revoked_keys_.insert(c.key_hash);
  }

  template <class Pred>
  std::vector<CertRecord> select(Pred pred) {
    std::vector<CertRecord> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [serial, c] : certs_) {
        if (pred(c)) out.push_back(c);
      }
    }
    std::sort(out.begin(), out.end(), cert_order);
    return out;
  }

  std::mutex mu_;
  std::string ca_pin_;
  std::map<std::string, CertRecord> certs_;
  std::map<std::string, uint64_t> order_;  // serial -> insertion number
  uint64_t inserted_ = 0;
  // (key hash, requester) -> (not_after, serial): issued_for_key without a scan.
  std::map<std::pair<std::string, std::string>, std::multimap<int64_t, std::string>> by_key_;
  std::set<std::string> revoked_keys_;  // key hashes with a revoked certificate
  std::map<std::string, TokenRecord> tokens_;
  int64_t revocations_ = 0;
  int64_t crl_number_ = 0;
  std::optional<PublishedCrl> crl_;
};

}  // namespace

std::unique_ptr<Store> store_internal::make_memory_store() {
  return std::make_unique<MemoryStore>();
}

}  // namespace kubeca

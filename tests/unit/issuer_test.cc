// The Issuer's renewal and revocation policy, driven directly (no HTTP): renewal follows
// today's config and the stored profile, only the newest certificate of an identity renews,
// renewals are rate limited per identity, revocation bars a key and covers a node, a retried
// request gets its certificate back, and CRL Numbers only go up.
#include "kubeca/issuer.h"

#include <botan/x509_crl.h>
#include <botan/x509self.h>
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <set>
#include <thread>

#include "kubeca/crl.h"
#include "kubeca/fs.h"
#include "kubeca/keys.h"
#include "kubeca/periodic.h"
#include "kubeca/pki.h"
#include "kubeca/token.h"
#include "test_support.h"

namespace kubeca {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

class IssuerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::make_temp_dir("kubeca-issuer-test");
    config_.master_host = "127.0.0.1";
    config_.master_name = "m1";
    config_.workers = {{"n1", "127.0.0.2"}, {"n2", "127.0.0.3"}};
    config_.key_algorithm = "ecdsa-p256";
    config_.signer_url = "https://127.0.0.1:8443";
    validate(config_);
    init_pki(config_, dir_ / "pki", Clock::now());
    store_ = open_store("sqlite:" + (dir_ / "kubeca.db").string());
    issuer_ = make_issuer(config_);
  }
  void TearDown() override {
    issuer_.reset();
    fs::remove_all(dir_);
  }

  std::unique_ptr<Issuer> make_issuer(const Config& c) {
    IssuerOptions o;
    o.audit_log = (dir_ / "audit.log").string();
    return std::make_unique<Issuer>(c, dir_ / "pki", *store_, o);
  }

  std::string token(const std::string& node, const std::string& ip, int uses = 1) {
    TokenRequest tr;
    tr.node = node;
    tr.ips = {ip};
    tr.uses = uses;
    return create_token(*store_, tr, std::time(nullptr)).first;
  }

  static std::unique_ptr<Botan::Private_Key> key() {
    return generate_key(KeyAlgorithm::kEcdsaP256, thread_rng());
  }
  static std::string csr(const Botan::Private_Key& k) {
    Botan::X509_Cert_Options opts;
    return Botan::X509::create_cert_req(opts, k, "SHA-256", thread_rng()).PEM_encode();
  }

  Issuance sign(const std::string& tok, const Botan::Private_Key& k) {
    SignRequest r;
    r.bearer = tok;
    r.has_csr = true;
    r.csr_pem = csr(k);
    return issuer_->sign(Caller{"127.0.0.1", std::nullopt}, r);
  }
  Issuance renew(const std::string& cert_pem, const Botan::Private_Key& k) {
    return issuer_->renew(Caller{"127.0.0.1", parse_certificate_pem(cert_pem)}, true, csr(k));
  }
  // The refusal a call throws, or a ServiceError with status 0 when it does not throw.
  template <class F>
  static ServiceError refusal(F f) {
    try {
      f();
    } catch (const ServiceError& e) {
      return e;
    }
    return ServiceError{0, "none", "no refusal"};
  }
  static int64_t life(const Issuance& out) {
    return std::chrono::duration_cast<std::chrono::seconds>(out.not_after - Clock::now()).count();
  }
  Botan::X509_CRL crl() {
    const Crl c = issuer_->current_crl();
    return Botan::X509_CRL(c.der);
  }

  fs::path dir_;
  Config config_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Issuer> issuer_;
};

// Seen: a server at cert_validity: 1h renewed a certificate for a year.
TEST_F(IssuerTest, RenewalValidityComesFromTodaysConfig) {
  auto k = key();
  const Issuance year = sign(token("n1", "127.0.0.2"), *k);
  EXPECT_GT(life(year), 300 * 86400);
  Config today = config_;
  today.cert_validity = std::chrono::hours(1);
  issuer_ = make_issuer(today);
  const Issuance renewed = renew(year.certificate, *k);
  EXPECT_LE(life(renewed), 3600);
  EXPECT_GT(life(renewed), 3500);
}

// Seen: renewed admin and apiserver certificates were recorded as kubelet.
TEST_F(IssuerTest, RenewalKeepsTheProfile) {
  for (const std::string name : {"admin", "apiserver", "kube-proxy"}) {
    const auto k = load_private_key_pem(read_file(dir_ / "pki" / (name + "-key.pem")));
    const Issuance out = renew(read_file(dir_ / "pki" / (name + ".pem")), *k);
    EXPECT_EQ(out.profile, name);
    EXPECT_EQ(store_->find_certificate(out.serial)->profile, name);
    // Renewing the renewed one keeps it too, now from the store's record.
    EXPECT_EQ(renew(out.certificate, *k).profile, name);
  }
}

TEST_F(IssuerTest, OnlyTheNewestCertificateRenews) {
  auto k = key();
  const Issuance a = sign(token("n1", "127.0.0.2"), *k);
  const Issuance b = renew(a.certificate, *k);
  EXPECT_NE(a.serial, b.serial);
  // The superseded one, with a new key: refused, nothing stored.
  auto other = key();
  const size_t before = store_->list_certificates().size();
  const ServiceError e = refusal([&] { renew(a.certificate, *other); });
  EXPECT_EQ(e.status, 403);
  EXPECT_EQ(e.code, "certificate_superseded");
  EXPECT_EQ(store_->list_certificates().size(), before);
  // The newest renews.
  EXPECT_NE(renew(b.certificate, *k).serial, b.serial);
}

// A renewal whose answer was lost, asked again with the same key: the same certificate.
TEST_F(IssuerTest, RenewalRetriedWithTheSameKeyGetsTheSameCertificate) {
  auto k = key();
  const Issuance a = sign(token("n1", "127.0.0.2"), *k);
  const Issuance b = renew(a.certificate, *k);
  const size_t before = store_->list_certificates().size();
  const Issuance again = renew(a.certificate, *k);
  EXPECT_EQ(again.serial, b.serial);
  EXPECT_EQ(again.certificate, b.certificate);
  EXPECT_EQ(store_->list_certificates().size(), before);
}

TEST_F(IssuerTest, RenewalsAreRateLimitedPerIdentityAfterTheSupersededCheck) {
  Config limited = config_;
  limited.renew_limit = 2;
  limited.renew_window = std::chrono::hours(1);
  issuer_ = make_issuer(limited);
  auto k = key();
  const Issuance a = sign(token("n1", "127.0.0.2"), *k);
  const Issuance b = renew(a.certificate, *k);
  const Issuance c = renew(b.certificate, *k);
  const ServiceError limit = refusal([&] { renew(c.certificate, *k); });
  EXPECT_EQ(limit.status, 429);
  EXPECT_EQ(limit.code, "renew_rate_limited");
  EXPECT_GT(limit.retry_after, 0);
  EXPECT_LE(limit.retry_after, 3601);
  // An old certificate is refused as superseded, not rate limited.
  auto other = key();
  EXPECT_EQ(refusal([&] { renew(b.certificate, *other); }).status, 403);
  // Another identity has its own budget.
  const Issuance n2 = sign(token("n2", "127.0.0.3"), *k);
  EXPECT_NO_THROW(renew(n2.certificate, *k));
}

// Revoking one certificate bars every certificate with its key, here the newer one.
TEST_F(IssuerTest, RevokingACertificateBarsItsKey) {
  auto k = key();
  const Issuance a = sign(token("n1", "127.0.0.2"), *k);
  const Issuance b = renew(a.certificate, *k);
  RevokeRequest r;
  r.serial = a.serial;
  issuer_->revoke(Caller{"127.0.0.1", std::nullopt}, r);
  const ServiceError e = refusal([&] { renew(b.certificate, *key()); });
  EXPECT_EQ(e.status, 401);
  EXPECT_EQ(e.code, "certificate_revoked");
  // Nor does a token certify that key again.
  const ServiceError s = refusal([&] { sign(token("n1", "127.0.0.2"), *k); });
  EXPECT_EQ(s.status, 403);
  EXPECT_EQ(s.code, "key_revoked");
}

// A store from before schema 2: records without key, node and identity. On start the Issuer
// fills them in, so a key revoked back then is barred and an old certificate is superseded.
TEST_F(IssuerTest, RecordsWithoutIdentityAreFilledInOnStart) {
  auto k = key();
  const Issuance a = sign(token("n1", "127.0.0.2"), *k);
  const Issuance b = renew(a.certificate, *k);
  for (const auto& serial : {a.serial, b.serial}) {
    CertRecord r = *store_->find_certificate(serial);
    r.key_hash = r.node = r.identity = "";
    r.serial = "old" + serial;  // stands for the pre-migration copy
    ASSERT_TRUE(store_->insert_certificate(r));
  }
  // Strip the originals the way migration left them: only the copies without identity stay.
  auto bare = open_store("memory:");
  for (auto r : store_->list_certificates()) {
    if (r.serial.rfind("old", 0) != 0) continue;
    r.serial = r.serial.substr(3);
    ASSERT_TRUE(bare->insert_certificate(r));
  }
  issuer_.reset();
  store_ = std::move(bare);
  ASSERT_EQ(store_->find_certificate(a.serial)->key_hash, "");
  ASSERT_TRUE(store_->revoke_certificate(b.serial, 1, unix_now()));
  issuer_ = make_issuer(config_);
  EXPECT_NE(store_->find_certificate(a.serial)->key_hash, "");
  EXPECT_EQ(store_->find_certificate(a.serial)->node, "n1");
  EXPECT_EQ(refusal([&] { renew(a.certificate, *key()); }).code, "certificate_revoked");
}

TEST_F(IssuerTest, RevokeNodeRevokesEveryUnexpiredCertificateOfTheNode) {
  auto k1 = key(), k2 = key(), k3 = key();
  const Issuance a = sign(token("n1", "127.0.0.2"), *k1);
  const Issuance b = sign(token("n1", "127.0.0.2"), *k2);
  const Issuance b2 = renew(b.certificate, *k2);
  const Issuance other = sign(token("n2", "127.0.0.3"), *k3);
  const auto revoked = issuer_->revoke_node(Caller{"127.0.0.1", std::nullopt}, "n1", {});
  ASSERT_EQ(revoked.size(), 3u);
  for (const auto& s : {a.serial, b.serial, b2.serial}) {
    EXPECT_EQ(store_->find_certificate(s)->status, "revoked") << s;
  }
  EXPECT_EQ(store_->find_certificate(other.serial)->status, "good");
  const auto list = crl();
  EXPECT_EQ(list.get_revoked().size(), 3u);
  for (const auto& s : {a.serial, b.serial, b2.serial}) {
    EXPECT_TRUE(list.is_revoked(parse_certificate_pem(store_->find_certificate(s)->pem))) << s;
  }
  EXPECT_EQ(refusal([&] { renew(b2.certificate, *k2); }).code, "certificate_revoked");
  EXPECT_EQ(refusal([&] {
              issuer_->revoke_node(Caller{"127.0.0.1", std::nullopt}, "nobody", {});
            }).status,
            404);
}

// `kubeca request` killed after the server answered asks again with the same token and key.
TEST_F(IssuerTest, SignRetriedWithTheSameKeyGetsTheSameCertificate) {
  auto k = key();
  const std::string t = token("n1", "127.0.0.2");
  const Issuance first = sign(t, *k);
  const Issuance again = sign(t, *k);
  EXPECT_EQ(again.serial, first.serial);
  EXPECT_EQ(again.certificate, first.certificate);
  EXPECT_EQ(store_->list_certificates().size(), 1u);
  // Another key does not get it: the token is used up.
  const ServiceError e = refusal([&] { sign(t, *key()); });
  EXPECT_EQ(e.status, 401);
  EXPECT_EQ(e.code, "token_used_up");
  // Nor does the same key once the certificate is revoked.
  RevokeRequest r;
  r.serial = first.serial;
  issuer_->revoke(Caller{"127.0.0.1", std::nullopt}, r);
  EXPECT_EQ(refusal([&] { sign(t, *k); }).code, "token_used_up");
}

// A replica killed after it stored a certificate, before it answered: the client asks the
// next replica again, saying so (Kubeca-Retry). With a multi-use token the retry gets the
// certificate already issued and spends no second use; a request not marked as a retry
// still gets a new certificate for the same key.
TEST_F(IssuerTest, MarkedRetryWithAMultiUseTokenGetsTheSameCertificate) {
  auto k = key();
  const std::string t = token("n1", "127.0.0.2", 3);
  const Issuance first = sign(t, *k);
  SignRequest r;
  r.bearer = t;
  r.has_csr = true;
  r.csr_pem = csr(*k);
  r.retry = true;
  const Issuance again = issuer_->sign(Caller{"127.0.0.1", std::nullopt}, r);
  EXPECT_EQ(again.serial, first.serial);
  EXPECT_EQ(store_->find_token(t.substr(0, 6))->uses, 1);
  // A marked retry with another key is a new certificate: the mark grants nothing.
  r.csr_pem = csr(*key());
  EXPECT_NE(issuer_->sign(Caller{"127.0.0.1", std::nullopt}, r).serial, first.serial);
  EXPECT_EQ(store_->find_token(t.substr(0, 6))->uses, 2);
  EXPECT_NE(sign(t, *k).serial, first.serial);  // unmarked: a new one
  EXPECT_EQ(store_->find_token(t.substr(0, 6))->uses, 3);
  EXPECT_EQ(store_->list_certificates().size(), 3u);
}

// Forwards to a store and counts the certificate records it hands out in bulk.
class CountingStore : public Store {
 public:
  explicit CountingStore(Store& s) : s_(s) {}
  size_t bulk_records = 0;  // records returned by the calls that return lists

  bool insert_certificate(const CertRecord& c) override { return s_.insert_certificate(c); }
  size_t record_certificates(const std::vector<CertRecord>& c) override {
    return s_.record_certificates(c);
  }
  std::optional<CertRecord> find_certificate(const std::string& serial) override {
    return s_.find_certificate(serial);
  }
  std::vector<CertRecord> list_certificates() override { return count(s_.list_certificates()); }
  bool revoke_certificate(const std::string& serial, int reason, int64_t now) override {
    return s_.revoke_certificate(serial, reason, now);
  }
  std::optional<CertRecord> newest_of_identity(const std::string& identity) override {
    return s_.newest_of_identity(identity);
  }
  std::vector<CertRecord> certificates_with_key(const std::string& key_hash) override {
    return count(s_.certificates_with_key(key_hash));
  }
  bool key_revoked(const std::string& key_hash) override { return s_.key_revoked(key_hash); }
  std::optional<CertRecord> issued_for_key(const std::string& key_hash,
                                           const std::string& requester, int64_t now) override {
    return s_.issued_for_key(key_hash, requester, now);
  }
  std::vector<CertRecord> certificates_of_node(const std::string& node) override {
    return count(s_.certificates_of_node(node));
  }
  bool fill_certificate_identity(const std::string& serial, const std::string& key_hash,
                                 const std::string& node, const std::string& identity) override {
    return s_.fill_certificate_identity(serial, key_hash, node, identity);
  }
  int64_t revocation_count() override { return s_.revocation_count(); }
  CrlBasis next_crl() override { return s_.next_crl(); }
  void raise_crl_number(int64_t n) override { s_.raise_crl_number(n); }
  bool publish_crl(const PublishedCrl& crl) override { return s_.publish_crl(crl); }
  int64_t published_crl_number() override { return s_.published_crl_number(); }
  std::optional<PublishedCrl> published_crl() override { return s_.published_crl(); }
  bool insert_token(const TokenRecord& t) override { return s_.insert_token(t); }
  std::optional<TokenRecord> find_token(const std::string& id) override {
    return s_.find_token(id);
  }
  std::vector<TokenRecord> list_tokens() override { return s_.list_tokens(); }
  bool revoke_token(const std::string& id) override { return s_.revoke_token(id); }
  TokenUse use_token(const std::string& id, const CertRecord& c, int64_t now) override {
    return s_.use_token(id, c, now);
  }
  bool healthy() override { return s_.healthy(); }
  void bind_ca(const std::string& pin) override { s_.bind_ca(pin); }

 private:
  std::vector<CertRecord> count(std::vector<CertRecord> v) {
    bulk_records += v.size();
    return v;
  }
  Store& s_;
};

// Seen: bench/ha fell from about 1,070 to 233 signs/s on SQLite because every issuance read
// every earlier certificate of its key (the benchmark sends one CSR). Issuing for one key
// again and again, and answering a retry, must read no other certificate of that key.
TEST_F(IssuerTest, IssuancesForOneKeyReadNoOtherCertificatesOfIt) {
  CountingStore counting(*store_);
  IssuerOptions o;
  o.audit_log = (dir_ / "audit.log").string();
  Issuer issuer(config_, dir_ / "pki", counting, o);
  counting.bulk_records = 0;  // the start reads the store once
  constexpr int kIssuances = 300;
  auto k = key();
  const std::string t = token("n1", "127.0.0.2", kIssuances);
  SignRequest r;
  r.bearer = t;
  r.has_csr = true;
  r.csr_pem = csr(*k);
  std::set<std::string> serials;
  for (int i = 0; i < kIssuances; ++i) {
    serials.insert(issuer.sign(Caller{"127.0.0.1", std::nullopt}, r).serial);
  }
  EXPECT_EQ(serials.size(), static_cast<size_t>(kIssuances));
  // The token is used up: the same key gets one of its certificates again.
  const Issuance again = issuer.sign(Caller{"127.0.0.1", std::nullopt}, r);
  EXPECT_TRUE(again.replay);
  EXPECT_EQ(serials.count(again.serial), 1u);
  EXPECT_EQ(store_->certificates_with_key(key_hash_of(k->subject_public_key())).size(),
            static_cast<size_t>(kIssuances));
  // Reading each earlier record would be about 45,000 here.
  EXPECT_EQ(counting.bulk_records, 0u);
}

TEST_F(IssuerTest, CrlNumbersIncreaseAndRevocationDatesStay) {
  auto k1 = key(), k2 = key();
  const Issuance a = sign(token("n1", "127.0.0.2"), *k1);
  const Issuance b = sign(token("n2", "127.0.0.3"), *k2);
  const auto empty = crl();
  EXPECT_EQ(crl().crl_number(), empty.crl_number());  // unchanged: served from state
  RevokeRequest r;
  r.serial = a.serial;
  issuer_->revoke(Caller{"127.0.0.1", std::nullopt}, r);
  const auto one = crl();
  EXPECT_GT(one.crl_number(), empty.crl_number());
  ASSERT_EQ(one.get_revoked().size(), 1u);
  const auto when = one.get_revoked()[0].expire_time();
  EXPECT_EQ(unix_seconds(when.to_std_timepoint()), store_->find_certificate(a.serial)->revoked_at);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  r.serial = b.serial;
  issuer_->revoke(Caller{"127.0.0.1", std::nullopt}, r);
  const auto two = crl();
  EXPECT_GT(two.crl_number(), one.crl_number());
  ASSERT_EQ(two.get_revoked().size(), 2u);
  for (const auto& e : two.get_revoked()) {
    if (e.serial_number() == one.get_revoked()[0].serial_number()) {
      EXPECT_EQ(e.expire_time().to_std_timepoint(), when.to_std_timepoint());
    }
  }
  // A restart serves the published CRL; its first periodic round (it leads: one process
  // owns the store) makes the next one, continuing the numbers from the store.
  issuer_ = make_issuer(config_);
  EXPECT_EQ(crl().crl_number(), two.crl_number());
  PeriodicWork work(*issuer_, *store_, nullptr);
  ASSERT_TRUE(work.round());
  EXPECT_GT(crl().crl_number(), two.crl_number());
  // A revocation through the store alone (a CLI that did not publish) reaches the CRL at
  // the leader's next round.
  auto k3 = key();
  const Issuance c = sign(token("n1", "127.0.0.2"), *k3);
  const auto before = crl();
  ASSERT_TRUE(store_->revoke_certificate(c.serial, 1, unix_now()));
  EXPECT_EQ(crl().crl_number(), before.crl_number());
  ASSERT_TRUE(work.round());
  const auto after = crl();
  EXPECT_GT(after.crl_number(), before.crl_number());
  EXPECT_EQ(after.get_revoked().size(), 3u);
}

}  // namespace
}  // namespace kubeca

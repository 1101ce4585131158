// Replicas of the signing service on one real etcd, driven without HTTP: one does the
// periodic work (the CRL, the certificate gauges) and another takes it over within the
// lease's TTL when it dies, the CRL Number only going up; a revocation made through one
// replica is enforced by the other at once. Stores one process owns always lead.
#include <botan/x509_crl.h>
#include <botan/x509self.h>
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <random>
#include <thread>

#include "kubeca/fs.h"
#include "kubeca/issuer.h"
#include "kubeca/keys.h"
#include "kubeca/metrics.h"
#include "kubeca/periodic.h"
#include "kubeca/pki.h"
#include "kubeca/token.h"
#include "local_etcd.h"
#include "test_support.h"

namespace kubeca {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kLeaseTtl = 2;  // seconds

struct Replica {
  std::unique_ptr<Store> store;
  Metrics metrics;
  std::unique_ptr<Issuer> issuer;
  std::unique_ptr<PeriodicWork> work;
};

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::make_temp_dir("kubeca-replicas-test");
    config_.master_host = "127.0.0.1";
    config_.master_name = "m1";
    config_.workers = {{"n1", "127.0.0.2"}, {"n2", "127.0.0.3"}};
    config_.key_algorithm = "ecdsa-p256";
    config_.signer_url = "https://127.0.0.1:8443";
    validate(config_);
    init_pki(config_, dir_ / "pki", Clock::now());
  }
  void TearDown() override { fs::remove_all(dir_); }

  bool use_etcd() {
    if (!test::LocalEtcd::get().available()) return false;
    url_ = "etcd+http://" + test::LocalEtcd::get().endpoint() + "?prefix=/replicas-" +
           std::to_string(std::random_device()()) + "/&lease=" + std::to_string(kLeaseTtl);
    return true;
  }

  // crl_lifetime: the leader makes a new CRL at half of it.
  std::unique_ptr<Replica> replica(const std::string& url, std::chrono::seconds crl_lifetime) {
    auto r = std::make_unique<Replica>();
    r->store = open_store(url);
    IssuerOptions o;
    o.audit_log = (dir_ / "audit.log").string();
    o.crl_lifetime = crl_lifetime;
    o.metrics = &r->metrics;
    r->issuer = std::make_unique<Issuer>(config_, dir_ / "pki", *r->store, o);
    r->work = std::make_unique<PeriodicWork>(*r->issuer, *r->store, &r->metrics);
    return r;
  }

  static std::string token(Store& store, const std::string& node, const std::string& ip) {
    TokenRequest tr;
    tr.node = node;
    tr.ips = {ip};
    return create_token(store, tr, std::time(nullptr)).first;
  }
  static std::string csr(const Botan::Private_Key& k) {
    Botan::X509_Cert_Options opts;
    return Botan::X509::create_cert_req(opts, k, "SHA-256", thread_rng()).PEM_encode();
  }
  static Issuance sign(Issuer& issuer, const std::string& tok, const Botan::Private_Key& k) {
    SignRequest r;
    r.bearer = tok;
    r.has_csr = true;
    r.csr_pem = csr(k);
    return issuer.sign(Caller{"127.0.0.1", std::nullopt}, r);
  }
  template <class F>
  static std::string refusal(F f) {
    try {
      f();
    } catch (const ServiceError& e) {
      return e.code;
    }
    return "none";
  }
  static bool waits_for(const std::function<bool()>& f, std::chrono::milliseconds limit) {
    const auto end = Steady::now() + limit;
    while (!f()) {
      if (Steady::now() > end) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

  fs::path dir_;
  Config config_;
  std::string url_;
};

TEST_F(ReplicasTest, OneLeaderThenTakeoverWithinTheTtlAndTheCrlNumberOnlyGoesUp) {
  if (!use_etcd()) GTEST_SKIP() << "etcd is not installed (Debian: etcd-server)";
  // A CRL life long enough that the leader's refresh (at half of it, plus a round) comes well
  // before a follower's own fallback (at three quarters, of a this_update kept in seconds),
  // even under the sanitizers.
  auto a = replica(url_, 12s), b = replica(url_, 12s);
  EXPECT_EQ(a->work->period(), std::chrono::milliseconds(kLeaseTtl * 1000 / 3));
  a->work->start();
  ASSERT_TRUE(waits_for([&] { return a->work->leading(); }, 2s));
  b->work->start();
  // B's gauges are read from the store once, at its first scrape (here, before A issues).
  EXPECT_EQ(b->metrics.render(unix_now()).find("kubeca_certificates_live{profile=\"kubelet\"}"),
            std::string::npos);
  // A certificate issued through the leader: the follower only learns of it from the store.
  auto k = generate_key(KeyAlgorithm::kEcdsaP256, thread_rng());
  sign(*a->issuer, token(*a->store, "n1", "127.0.0.2"), *k);

  // Both serve the published CRL; only the leader makes them, at half their life (6 s), so
  // the number moves by one at a time, and never down, whichever replica is asked.
  int64_t last = 0, ups = 0;
  auto sample = [&](Replica& r) {
    const int64_t n = r.issuer->current_crl().number;
    EXPECT_GE(n, last) << "the CRL Number went down";
    EXPECT_LE(n, last + 1) << "a CRL was made besides the leader's";
    if (last && n > last) ++ups;
    last = n;
  };
  for (auto end = Steady::now() + 7000ms; Steady::now() < end;) {
    sample(*a);
    sample(*b);
    EXPECT_TRUE(a->work->leading());
    EXPECT_FALSE(b->work->leading());
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_GE(ups, 1);
  EXPECT_EQ(a->issuer->current_crl().der, b->issuer->current_crl().der);
  EXPECT_NE(a->metrics.render(unix_now()).find("kubeca_periodic_leader 1\n"), std::string::npos);
  EXPECT_NE(b->metrics.render(unix_now()).find("kubeca_periodic_leader 0\n"), std::string::npos);
  // B's own gauges: loaded before A issued, and an etcd store is not re-read per scrape, so
  // without A's certificate.
  EXPECT_EQ(b->metrics.render(unix_now()).find("kubeca_certificates_live{profile=\"kubelet\"}"),
            std::string::npos);

  // The leader dies (its lease is not given back): the other takes over within the TTL
  // and a round, makes a CRL at once, and counts the whole store for its gauges.
  const int64_t before = b->issuer->current_crl().number;
  last = before;
  a->work->stop();
  const auto died = Steady::now();
  ASSERT_TRUE(waits_for([&] { return b->work->leading(); }, std::chrono::seconds(kLeaseTtl + 3)));
  const auto took = Steady::now() - died;
  EXPECT_LE(took, std::chrono::seconds(kLeaseTtl) + b->work->period() + 500ms)
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  ASSERT_TRUE(waits_for([&] { return b->issuer->current_crl().number > before; }, 1s));
  EXPECT_NE(b->metrics.render(unix_now()).find("kubeca_periodic_leader 1\n"), std::string::npos);
  // In the takeover's round, after the CRL: B never issued it, so it counted the store.
  EXPECT_TRUE(waits_for(
      [&] {
        return b->metrics.render(unix_now())
                   .find("kubeca_certificates_live{profile=\"kubelet\"} 1\n") != std::string::npos;
      },
      1s));
  for (auto end = Steady::now() + 7000ms; Steady::now() < end;) {
    sample(*b);
    sample(*a);  // the dead leader's issuer, still reading the store, serves the same CRL
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_GE(ups, 3);  // before, at the takeover, and at half the new CRL's life
  const Botan::X509_CRL crl(b->issuer->current_crl().der);
  EXPECT_EQ(crl.crl_number(), static_cast<uint32_t>(last));
  b->work->stop();
}

// A revocation made through one replica is refused by the other on its next request: every
// check reads etcd (no replica keeps a copy of what is revoked), so no watch is needed.
TEST_F(ReplicasTest, RevocationsThroughOneReplicaAreEnforcedByTheOtherAtOnce) {
  if (!use_etcd()) GTEST_SKIP() << "etcd is not installed (Debian: etcd-server)";
  auto a = replica(url_, 24h), b = replica(url_, 24h);
  const Caller admin{"127.0.0.1", std::nullopt};
  auto k = generate_key(KeyAlgorithm::kEcdsaP256, thread_rng());
  // A token made through A is usable through B at once.
  const Issuance issued = sign(*b->issuer, token(*a->store, "n1", "127.0.0.2"), *k);
  const Caller holder{"127.0.0.1", parse_certificate_pem(issued.certificate)};
  b->issuer->current_crl();  // B holds a CRL from before the revocation

  RevokeRequest rr;
  rr.serial = issued.serial;
  a->issuer->revoke(admin, rr);
  const auto revoked = Steady::now();
  auto k2 = generate_key(KeyAlgorithm::kEcdsaP256, thread_rng());
  EXPECT_EQ(refusal([&] { b->issuer->renew(holder, true, csr(*k2)); }), "certificate_revoked");
  // Its key is barred on B too, even with a fresh token.
  EXPECT_EQ(refusal([&] { sign(*b->issuer, token(*a->store, "n1", "127.0.0.2"), *k); }),
            "key_revoked");
  const Botan::X509_CRL crl(b->issuer->current_crl().der);
  EXPECT_TRUE(crl.is_revoked(parse_certificate_pem(issued.certificate)));
  EXPECT_LT(Steady::now() - revoked, 1s);

  // A token revoked through A is refused by B.
  const std::string tok = token(*a->store, "n2", "127.0.0.3");
  b->store->find_token(tok.substr(0, 6));  // B has read it before
  a->issuer->revoke_token(admin, tok.substr(0, 6));
  const auto token_revoked = Steady::now();
  EXPECT_EQ(refusal([&] { sign(*b->issuer, tok, *k2); }), "token_revoked");
  EXPECT_LT(Steady::now() - token_revoked, 1s);
  for (const auto& c : b->store->list_certificates())
    EXPECT_NE(c.requester, "token:" + tok.substr(0, 6));
}

TEST_F(ReplicasTest, StoresOneProcessOwnsAlwaysLead) {
  for (const std::string& url : {std::string("memory:"), "sqlite:" + (dir_ / "k.db").string()}) {
    auto r = replica(url, 24h);
    EXPECT_EQ(r->work->period(), 1s) << url;
    EXPECT_TRUE(r->work->round()) << url;
    EXPECT_TRUE(r->work->round()) << url;
    EXPECT_TRUE(r->work->leading()) << url;
    // The first round made and published a CRL; the next one kept it.
    EXPECT_EQ(r->store->published_crl_number(), 1) << url;
    EXPECT_EQ(r->issuer->current_crl().number, 1) << url;
    EXPECT_NE(r->metrics.render(unix_now()).find("kubeca_periodic_leader 1\n"), std::string::npos);
  }
}

}  // namespace
}  // namespace kubeca

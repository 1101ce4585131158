// The Issuer without HTTP: the failure limiter (per address and token id, bounded, with a
// Retry-After) and privileged token profiles.
#include <botan/x509self.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "kubeca/fs.h"
#include "kubeca/issuer.h"
#include "kubeca/keys.h"
#include "kubeca/metrics.h"
#include "kubeca/pki.h"
#include "kubeca/token.h"
#include "test_support.h"

namespace kubeca {
namespace {

namespace fs = std::filesystem;

class IssuerLimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(test::make_temp_dir("kubeca-issuer-test"));
    config_ = new Config;
    config_->master_host = "127.0.0.1";
    config_->master_name = "m1";
    config_->workers = {{"n1", "127.0.0.2"}};
    config_->key_algorithm = "ecdsa-p256";
    config_->signer_url = "https://127.0.0.1:8443";
    validate(*config_);
    init_pki(*config_, *dir_ / "pki", std::chrono::system_clock::now());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete config_;
  }

  std::unique_ptr<Issuer> Make(IssuerOptions o) {
    o.audit_log = (*dir_ / "audit.log").string();
    return std::make_unique<Issuer>(*config_, *dir_ / "pki", *store_, o);
  }

  // Refused with this code; returns the refusal.
  static ServiceError Refusal(Issuer& issuer, const std::string& remote, const std::string& token) {
    SignRequest r;
    r.bearer = token;
    try {
      issuer.sign(Caller{remote, std::nullopt}, r);
    } catch (const ServiceError& e) {
      return e;
    }
    ADD_FAILURE() << "signed";
    return ServiceError{0, "", ""};
  }

  static fs::path* dir_;
  static Config* config_;
  std::unique_ptr<Store> store_ = open_store("memory:");
};

fs::path* IssuerLimitsTest::dir_ = nullptr;
Config* IssuerLimitsTest::config_ = nullptr;

std::string bad_token(int i) {
  char id[7];
  std::snprintf(id, sizeof id, "%06d", i);
  return std::string(id) + ".0000000000000000";
}

TEST_F(IssuerLimitsTest, BadTokensFromOneAddressDoNotBlockAnotherTokenFromIt) {
  auto issuer = Make({});
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(Refusal(*issuer, "10.0.0.1", bad_token(i)).code, "token_invalid") << i;
  }
  TokenRequest tr;
  tr.node = "n1";
  tr.ips = {"127.0.0.2"};
  const auto [good, rec] = create_token(*store_, tr, unix_now());
  EXPECT_EQ(issuer->blocked("10.0.0.1", rec.id), 0);
  // Past the token check (no CSR in this request), so not held up by the others' failures.
  EXPECT_EQ(Refusal(*issuer, "10.0.0.1", good).code, "missing_csr");
}

TEST_F(IssuerLimitsTest, OneTokenIdHammeredGets429WithRetryAfter) {
  IssuerOptions o;
  o.max_failures = 3;
  o.failure_window = std::chrono::seconds(30);
  auto issuer = Make(o);
  const std::string t = bad_token(7);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Refusal(*issuer, "10.0.0.1", t).code, "token_invalid");
  const int wait = issuer->blocked("10.0.0.1", "000007");
  EXPECT_GE(wait, 29);
  EXPECT_LE(wait, 31);
  const ServiceError e = Refusal(*issuer, "10.0.0.1", t);
  EXPECT_EQ(e.status, 429);
  EXPECT_EQ(e.code, "too_many_failures");
  EXPECT_EQ(e.retry_after, wait);
  // Another address, or another id from this one, is not held up.
  EXPECT_EQ(issuer->blocked("10.0.0.2", "000007"), 0);
  EXPECT_EQ(issuer->blocked("10.0.0.1", "000008"), 0);
}

TEST_F(IssuerLimitsTest, TheWindowPassesAndTheIdMayTryAgain) {
  IssuerOptions o;
  o.max_failures = 2;
  o.failure_window = std::chrono::seconds(1);
  auto issuer = Make(o);
  Refusal(*issuer, "10.0.0.1", bad_token(1));
  Refusal(*issuer, "10.0.0.1", bad_token(1));
  EXPECT_EQ(issuer->blocked("10.0.0.1", "000001"), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(issuer->blocked("10.0.0.1", "000001"), 0);
}

TEST_F(IssuerLimitsTest, MissingAndMalformedTokensCountTogetherPerAddress) {
  IssuerOptions o;
  o.max_failures = 2;
  auto issuer = Make(o);
  EXPECT_EQ(Refusal(*issuer, "10.0.0.1", "").code, "token_required");
  EXPECT_EQ(Refusal(*issuer, "10.0.0.1", "not-a-token").code, "token_malformed");
  EXPECT_GT(issuer->blocked("10.0.0.1", ""), 0);
  EXPECT_EQ(Refusal(*issuer, "10.0.0.1", "junk").status, 429);
  EXPECT_EQ(issuer->blocked("10.0.0.1", "000001"), 0);
}

TEST_F(IssuerLimitsTest, AnAttackerCannotGrowTheLimiterWithoutBound) {
  IssuerOptions o;
  o.max_limiter_entries = 1000;
  auto issuer = Make(o);
  for (int i = 0; i < 5000; ++i) Refusal(*issuer, "10.0.0." + std::to_string(i % 7), bad_token(i));
  EXPECT_LE(issuer->limiter_entries(), 1000u);
  EXPECT_GE(issuer->limiter_entries(), 900u);
  // The most recent failures are the ones kept.
  for (int k = 0; k < 10; ++k) Refusal(*issuer, "10.0.0.9", bad_token(4999));
  EXPECT_GT(issuer->blocked("10.0.0.9", "004999"), 0);
}

TEST_F(IssuerLimitsTest, PrivilegedProfilesNeedAllowPrivileged) {
  auto issuer = Make({});
  std::string token;
  // The admin check is the server's; create_token itself judges only the request.
  const Caller admin{"127.0.0.1", std::nullopt};
  for (const char* p : {"admin", "apiserver", "front-proxy-client", "etcd-peer", "signer",
                        "apiserver-etcd-client", "controller-manager"}) {
    try {
      issuer->create_token(admin, "m1", {"127.0.0.1"}, p, 1, "1h", token);
      ADD_FAILURE() << p << " without allow_privileged";
    } catch (const ServiceError& e) {
      EXPECT_EQ(e.status, 403) << p;
      EXPECT_EQ(e.code, "privileged_profile") << p;
    }
  }
  EXPECT_TRUE(store_->list_tokens().empty());
  EXPECT_EQ(issuer->create_token(admin, "m1", {"127.0.0.1"}, "admin", 1, "1h", token, true).profile,
            "admin");
  EXPECT_EQ(issuer->create_token(admin, "n1", {"127.0.0.2"}, "kubelet", 1, "1h", token).profile,
            "kubelet");
  EXPECT_EQ(issuer->create_token(admin, "kp", {}, "kube-proxy", 1, "1h", token).profile,
            "kube-proxy");
  // The store-side entry point (the CLI's) refuses it too.
  TokenRequest tr;
  tr.node = "m1";
  tr.profile = "etcd-server";
  tr.ips = {"127.0.0.1"};
  EXPECT_THROW(create_token(*store_, tr, unix_now()), InputError);
  tr.allow_privileged = true;
  EXPECT_EQ(create_token(*store_, tr, unix_now()).second.profile, "etcd-server");
}

TEST_F(IssuerLimitsTest, MetricsFollowIssuanceAndRevocation) {
  Metrics m;
  IssuerOptions o;
  o.metrics = &m;
  auto issuer = Make(o);
  auto live = [&] {
    const std::string t = m.render(unix_now());
    const std::string k = "kubeca_certificates_live{profile=\"kubelet\"} ";
    const auto at = t.find(k);
    return at == std::string::npos ? 0 : std::stoi(t.substr(at + k.size()));
  };
  EXPECT_EQ(live(), 0);
  TokenRequest tr;
  tr.node = "n1";
  tr.ips = {"127.0.0.2"};
  tr.uses = 2;
  const auto [token, rec] = create_token(*store_, tr, unix_now());
  Botan::RandomNumberGenerator& rng = thread_rng();
  auto key = generate_key(KeyAlgorithm::kEcdsaP256, rng);
  SignRequest r;
  r.bearer = token;
  r.has_csr = true;
  r.csr_pem =
      Botan::X509::create_cert_req(Botan::X509_Cert_Options(), *key, "SHA-256", rng).PEM_encode();
  const Caller node{"10.0.0.1", std::nullopt};
  const Issuance first = issuer->sign(node, r);
  issuer->sign(node, r);
  EXPECT_EQ(live(), 2);
  const std::string text = m.render(unix_now());
  EXPECT_NE(text.find("kubeca_certificates_issued_total{profile=\"kubelet\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("kubeca_certificate_soonest_expiry_seconds{profile=\"kubelet\"} "),
            std::string::npos);
  RevokeRequest rv;
  rv.serial = first.serial;
  issuer->revoke(node, rv);
  issuer->revoke(node, rv);  // twice: counted once
  EXPECT_EQ(live(), 1);
  // A second Issuer on the same store starts from what the store holds.
  Metrics m2;
  o.metrics = &m2;
  auto again = Make(o);
  EXPECT_NE(m2.render(unix_now()).find("kubeca_certificates_live{profile=\"kubelet\"} 1\n"),
            std::string::npos);
}

}  // namespace
}  // namespace kubeca

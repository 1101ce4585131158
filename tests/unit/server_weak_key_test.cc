// The service on 127.0.0.1 against CSRs whose self-signature verifies under a key without a
// secret (RSA e = 1, the P-256 point at infinity, the Ed25519 identity): /v1/sign and
// /v1/renew answer 403 weak_key, issue nothing and spend no token use.
#include <botan/auto_rng.h>
#include <botan/rsa.h>
#include <botan/x509self.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "crafted_csr.h"
#include "kubeca/client.h"
#include "kubeca/csr.h"
#include "kubeca/fs.h"
#include "kubeca/keys.h"
#include "kubeca/pki.h"
#include "kubeca/server.h"
#include "kubeca/token.h"
#include "test_support.h"

namespace kubeca {
namespace {

namespace fs = std::filesystem;

class ServerWeakKeyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Botan::AutoSeeded_RNG rng;
    const Botan::RSA_PrivateKey key(rng, 2048);
    forged_ = {{"rsa_e1", test::rsa_e1_csr(key.get_n())},
               {"p256_infinity", test::p256_infinity_csr(rng)},
               {"ed25519_identity", test::ed25519_forged_csr(test::ed25519_identity())}};
  }

  void SetUp() override {
    dir_ = test::make_temp_dir("kubeca-weak-key-test");
    config_.master_host = "127.0.0.1";
    config_.master_name = "m1";
    config_.workers = {{"n1", "127.0.0.2"}};
    config_.key_algorithm = "ecdsa-p256";
    config_.signer_url = "https://127.0.0.1:8443";
    validate(config_);
    init_pki(config_, dir_ / "pki", std::chrono::system_clock::now());
    store_url_ = "sqlite:" + (dir_ / "kubeca.db").string();
    ca_pem_ = read_file(dir_ / "pki" / "ca.pem");
    ServeOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.audit_log = (dir_ / "audit.log").string();
    server_ = std::make_unique<SigningServer>(config_, dir_ / "pki", open_store(store_url_), o);
    url_ = "https://127.0.0.1:" + std::to_string(server_->start());
    store_ = open_store(store_url_);
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  std::pair<std::string, TokenRecord> Token(int uses) {
    TokenRequest tr;
    tr.node = "n1";
    tr.ips = {"127.0.0.2"};
    tr.uses = uses;
    return create_token(*store_, tr, std::time(nullptr));
  }

  static inline std::map<std::string, std::string> forged_;
  fs::path dir_;
  Config config_;
  std::string store_url_, ca_pem_, url_;
  std::unique_ptr<SigningServer> server_;
  std::unique_ptr<Store> store_;
};

TEST_F(ServerWeakKeyTest, SignRefusesForgedCsrsAndIssuesNothing) {
  const auto [token, rec] = Token(1);
  ApiClient api(url_, ca_pem_);
  for (const auto& [name, pem] : forged_) {
    SCOPED_TRACE(name);
    // The forgery is a good one: its self-signature verifies.
    ASSERT_TRUE(Csr::from_pem(pem).self_signature_ok());
    const auto r = api.post("/v1/sign", {{"csr", pem}, {"profile", "kubelet"}}, token);
    EXPECT_EQ(r.status, 403) << r.describe();
    EXPECT_EQ(r.json().value("code", ""), "weak_key") << r.describe();
    EXPECT_TRUE(store_->list_certificates().empty());
    EXPECT_EQ(store_->find_token(rec.id)->uses, 0);
  }
  // An off-curve point does not even decode.
  Botan::AutoSeeded_RNG rng;
  const auto key = generate_key(KeyAlgorithm::kEcdsaP256, rng);
  auto point = key->public_key_bits();
  point.back() ^= 0x01;
  const std::string off =
      test::csr_pem(test::ec_spki("secp256r1", point),
                    Botan::AlgorithmIdentifier(Botan::OID("1.2.840.10045.4.3.2"),
                                               Botan::AlgorithmIdentifier::USE_EMPTY_PARAM),
                    [](const test::Bytes&) {
                      return test::Bytes{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
                    });
  const auto r = api.post("/v1/sign", {{"csr", off}}, token);
  EXPECT_EQ(r.status, 400) << r.describe();
  EXPECT_EQ(r.json().value("code", ""), "malformed_csr") << r.describe();
  EXPECT_TRUE(store_->list_certificates().empty());

  // The token's one use is still there for an honest CSR.
  Botan::X509_Cert_Options opts;
  opts.common_name = "system:node:n1";
  const auto good = Botan::X509::create_cert_req(opts, *key, "SHA-256", rng).PEM_encode();
  EXPECT_EQ(api.post("/v1/sign", {{"csr", good}}, token).status, 201);
  EXPECT_EQ(store_->list_certificates().size(), 1u);
}

TEST_F(ServerWeakKeyTest, RenewRefusesForgedCsrsAndIssuesNothing) {
  // A kubelet with an honest certificate asks to renew onto a key without a secret.
  const auto [token, rec] = Token(1);
  Botan::AutoSeeded_RNG rng;
  const auto key = generate_key(KeyAlgorithm::kEcdsaP256, rng);
  Botan::X509_Cert_Options opts;
  opts.common_name = "system:node:n1";
  const auto csr = Botan::X509::create_cert_req(opts, *key, "SHA-256", rng).PEM_encode();
  const auto first = ApiClient(url_, ca_pem_).post("/v1/sign", {{"csr", csr}}, token);
  ASSERT_EQ(first.status, 201) << first.describe();
  ApiClient mtls(url_, ca_pem_, first.json()["certificate"].get<std::string>(),
                 private_key_pem(*key));
  for (const auto& [name, pem] : forged_) {
    SCOPED_TRACE(name);
    const auto r = mtls.post("/v1/renew", {{"csr", pem}});
    EXPECT_EQ(r.status, 403) << r.describe();
    EXPECT_EQ(r.json().value("code", ""), "weak_key") << r.describe();
    EXPECT_EQ(store_->list_certificates().size(), 1u);
  }
  // The same client renews onto an honest key.
  const auto next = generate_key(KeyAlgorithm::kEcdsaP256, rng);
  const auto good = Botan::X509::create_cert_req(opts, *next, "SHA-256", rng).PEM_encode();
  EXPECT_EQ(mtls.post("/v1/renew", {{"csr", good}}).status, 201);
  EXPECT_EQ(store_->list_certificates().size(), 2u);
}

}  // namespace
}  // namespace kubeca

// The offline paths hold a key file kubeca did not make to the service's weak-key policy
// before a new certificate names it: `init` with a key but no certificate, and
// `certs renew` without --rotate-key. Refused, they change nothing.
#include <botan/auto_rng.h>
#include <botan/rsa.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "kubeca/ca.h"
#include "kubeca/config.h"
#include "kubeca/fs.h"
#include "kubeca/keys.h"
#include "kubeca/pki.h"
#include "test_support.h"

namespace kubeca {
namespace {

namespace fs = std::filesystem;

class KeptKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::make_temp_dir("kubeca-kept-key-test");
    pki_ = dir_ / "pki";
    config_.master_host = "127.0.0.1";
    config_.master_name = "m1";
    config_.workers = {{"n1", "127.0.0.2"}};
    config_.key_algorithm = "ecdsa-p256";
    validate(config_);
    init_pki(config_, pki_, std::chrono::system_clock::now());
    for (const auto& spec : planned_certificates(config_)) {
      if (!profile_is_ca(spec.profile)) leaf_ = spec.file;
    }
    ASSERT_FALSE(leaf_.empty());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // An RSA-2048 key with e = d = 1: its "signatures" are the padded hashes themselves.
  static std::string e1_key_pem() {
    Botan::AutoSeeded_RNG rng;
    const Botan::RSA_PrivateKey real(rng, 2048);
    const Botan::RSA_PrivateKey e1(real.get_p(), real.get_q(), 1, 1, real.get_n());
    return private_key_pem(e1);
  }

  fs::path dir_, pki_;
  Config config_;
  std::string leaf_;
};

TEST_F(KeptKeyTest, InitRefusesAKeyWithoutASecretForANewCertificate) {
  const fs::path cert = cert_path(pki_, leaf_), key = key_path(pki_, leaf_);
  fs::remove(cert);
  write_file_atomic(key, e1_key_pem(), 0600);
  try {
    init_pki(config_, pki_, std::chrono::system_clock::now());
    FAIL() << "init issued a certificate for an RSA key with e = 1";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(key.string() + ": RSA public exponent 1 is too small"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(cert));
  // A sound key of the operator's own is used as it is.
  Botan::AutoSeeded_RNG rng;
  const auto own = generate_key(KeyAlgorithm::kEcdsaP256, rng);
  write_file_atomic(key, private_key_pem(*own), 0600);
  init_pki(config_, pki_, std::chrono::system_clock::now());
  EXPECT_TRUE(key_matches(parse_certificate_pem(read_file(cert)), *own));
}

TEST_F(KeptKeyTest, OfflineRenewalRefusesToKeepAKeyWithoutASecret) {
  const fs::path cert = cert_path(pki_, leaf_), key = key_path(pki_, leaf_);
  const std::string e1 = e1_key_pem(), before = read_file(cert);
  write_file_atomic(key, e1, 0600);
  for (const std::string& name : {leaf_, std::string("all")}) {
    SCOPED_TRACE(name);
    EXPECT_THROW(renew_offline(pki_, name, std::chrono::system_clock::now()), InputError);
    EXPECT_EQ(read_file(cert), before);
    EXPECT_EQ(read_file(key), e1);
  }
  // --rotate-key replaces it with a sound key of the same kind.
  renew_offline(pki_, leaf_, std::chrono::system_clock::now(), OfflineRenewOptions{true});
  const auto fresh = load_private_key_pem(read_file(key));
  EXPECT_EQ(weak_key_reason(*fresh), "");
  EXPECT_TRUE(key_matches(parse_certificate_pem(read_file(cert)), *fresh));
}

}  // namespace
}  // namespace kubeca

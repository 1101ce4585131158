// Csr: requests made with Botan for every key kubeca accepts are decoded field by field,
// their self-signatures verify (and stop verifying when one bit changes), and the subject
// key comes back with the SubjectPublicKeyInfo Botan's own key would give.
#include "kubeca/csr.h"

#include <botan/auto_rng.h>
#include <botan/data_src.h>
#include <botan/pem.h>
#include <botan/pkcs10.h>
#include <botan/rsa.h>
#include <botan/x509_dn.h>
#include <botan/x509_key.h>
#include <botan/x509self.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "kubeca/keys.h"

namespace kubeca {
namespace {

Botan::AutoSeeded_RNG& rng() {
  static Botan::AutoSeeded_RNG r;
  return r;
}

// One key per algorithm for the whole file: RSA keys take tens of milliseconds.
const Botan::Private_Key& key_of(KeyAlgorithm a) {
  static std::map<KeyAlgorithm, std::unique_ptr<Botan::Private_Key>> keys;
  auto& k = keys[a];
  if (!k) k = generate_key(a, rng());
  return *k;
}

std::string make_csr(const Botan::Private_Key& key, const std::string& padding = "",
                     bool ca = false) {
  Botan::X509_Cert_Options opts;
  opts.common_name = "system:node:n1";
  opts.organization = "system:nodes";
  opts.dns = "n1.example";
  opts.add_ex_constraint("PKIX.ClientAuth");
  opts.ip = "127.0.0.2";
  if (!padding.empty()) opts.set_padding_scheme(padding);
  if (ca) opts.CA_key();
  return Botan::X509::create_cert_req(opts, key, signature_hash(key), rng()).PEM_encode();
}

// The DER inside a PEM, with byte `at` (from the end when negative) XORed with `mask`.
std::string flip(const std::string& pem, long at, uint8_t mask = 0x01) {
  std::string label;
  auto der = Botan::PEM_Code::decode(pem, label);
  der[at < 0 ? der.size() + at : at] ^= mask;
  return Botan::PEM_Code::encode(der, label);
}

struct Case {
  KeyAlgorithm algorithm;
  std::string padding;  // empty: the key's usual signature scheme
};

class CsrByKey : public ::testing::TestWithParam<Case> {};

TEST_P(CsrByKey, DecodesVerifiesAndKeepsTheKey) {
  const auto& key = key_of(GetParam().algorithm);
  const std::string pem = make_csr(key, GetParam().padding);
  const Csr csr = Csr::from_pem(pem);

  // The same fields as Botan's PKCS10_Request.
  Botan::DataSource_Memory src(pem);
  const Botan::PKCS10_Request botan(src);
  EXPECT_EQ(csr.subject_dn(), botan.subject_dn());
  EXPECT_EQ(csr.subject_dn().get_first_attribute("CN"), "system:node:n1");
  EXPECT_EQ(csr.subject_alt_name().get_attributes(), botan.subject_alt_name().get_attributes());
  EXPECT_EQ(csr.subject_alt_name().get_attribute("DNS"), std::vector<std::string>{"n1.example"});
  EXPECT_EQ(csr.subject_alt_name().get_attribute("IP"), std::vector<std::string>{"127.0.0.2"});
  EXPECT_FALSE(csr.is_CA());
  EXPECT_EQ(csr.raw_public_key(), botan.raw_public_key());

  EXPECT_TRUE(csr.self_signature_ok());

  const auto subject = csr.subject_public_key();
  ASSERT_NE(subject, nullptr);
  EXPECT_EQ(subject->algo_name(), key.algo_name());
  EXPECT_EQ(subject->key_length(), key.key_length());
  EXPECT_EQ(subject->estimated_strength(), key.estimated_strength());
  EXPECT_EQ(subject->subject_public_key(), key.subject_public_key());
  EXPECT_TRUE(subject->check_key(rng(), false));
  EXPECT_EQ(weak_key_reason(*subject), "");
}

TEST_P(CsrByKey, OneFlippedBitBreaksTheSignature) {
  const std::string pem = make_csr(key_of(GetParam().algorithm), GetParam().padding);
  // The last byte is in the signature; the CN's last letter in what is signed.
  std::string label;
  const auto der = Botan::PEM_Code::decode(pem, label);
  const std::string cn = "system:node:n1";
  const auto at = std::search(der.begin(), der.end(), cn.begin(), cn.end()) - der.begin();
  ASSERT_LT(static_cast<size_t>(at), der.size());
  EXPECT_FALSE(Csr::from_pem(flip(pem, -1)).self_signature_ok());
  const Csr renamed = Csr::from_pem(flip(pem, at + cn.size() - 1));
  EXPECT_EQ(renamed.subject_dn().get_first_attribute("CN"), "system:node:n0");
  EXPECT_FALSE(renamed.self_signature_ok());
}

INSTANTIATE_TEST_SUITE_P(Keys, CsrByKey,
                         ::testing::Values(Case{KeyAlgorithm::kRsa2048, ""},
                                           Case{KeyAlgorithm::kRsa3072, ""},
                                           Case{KeyAlgorithm::kEcdsaP256, ""},
                                           Case{KeyAlgorithm::kEcdsaP384, ""},
                                           Case{KeyAlgorithm::kEd25519, ""},
                                           // RSA-PSS: the X509_REQ_verify way.
                                           Case{KeyAlgorithm::kRsa2048, "EMSA4(SHA-256)"}),
                         [](const auto& info) {
                           std::string n = to_string(info.param.algorithm);
                           if (!info.param.padding.empty()) n += "_pss";
                           n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
                           return n;
                         });

TEST(Csr, AnotherKeysSignatureDoesNotVerify) {
  // The request of one P-256 key with the signature of another over the same body.
  const auto other = generate_key(KeyAlgorithm::kEcdsaP256, rng());
  const std::string a = make_csr(key_of(KeyAlgorithm::kEcdsaP256));
  const std::string b = make_csr(*other);
  EXPECT_TRUE(Csr::from_pem(a).self_signature_ok());
  EXPECT_TRUE(Csr::from_pem(b).self_signature_ok());
  // Swap the SubjectPublicKeyInfo: same length for two P-256 keys.
  std::string label;
  auto da = Botan::PEM_Code::decode(a, label);
  const auto db = Botan::PEM_Code::decode(b, label);
  const auto ka = Csr::from_pem(a).raw_public_key(), kb = Csr::from_pem(b).raw_public_key();
  auto pos = std::search(da.begin(), da.end(), ka.begin(), ka.end());
  ASSERT_NE(pos, da.end());
  std::copy(kb.begin(), kb.end(), pos);
  const Csr swapped = Csr::from_pem(Botan::PEM_Code::encode(da, label));
  EXPECT_EQ(swapped.raw_public_key(), kb);
  EXPECT_FALSE(swapped.self_signature_ok());
}

TEST(Csr, CaTrueIsSeen) {
  EXPECT_TRUE(Csr::from_pem(make_csr(key_of(KeyAlgorithm::kEcdsaP256), "", true)).is_CA());
}

TEST(Csr, WeakKeysStillDecode) {
  // Refusing them is parse_csr's job; the key must come back for weak_key_reason to say why.
  Botan::RSA_PrivateKey rsa1024(rng(), 1024);
  const Csr csr = Csr::from_pem(make_csr(rsa1024));
  EXPECT_TRUE(csr.self_signature_ok());
  EXPECT_NE(weak_key_reason(*csr.subject_public_key()), "");
  EXPECT_EQ(csr.subject_public_key()->key_length(), 1024u);
}

TEST(Csr, MalformedInputThrows) {
  const std::string good = make_csr(key_of(KeyAlgorithm::kEcdsaP256));
  std::string label;
  const auto der = Botan::PEM_Code::decode(good, label);
  EXPECT_THROW(Csr::from_pem("not a csr"), Botan::Exception);
  EXPECT_THROW(Csr::from_pem("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                             "-----END CERTIFICATE REQUEST-----\n"),
               Botan::Exception);
  EXPECT_THROW(Csr::from_pem(Botan::PEM_Code::encode(der, "CERTIFICATE")), Botan::Exception);
  const std::vector<uint8_t> cut(der.begin(), der.begin() + der.size() / 2);
  EXPECT_THROW(Csr::from_pem(Botan::PEM_Code::encode(cut, "CERTIFICATE REQUEST")),
               Botan::Exception);
}

}  // namespace
}  // namespace kubeca

// weak_key_reason: every key kubeca makes passes; keys without a secret (RSA e = 1, the EC
// point at infinity, Ed25519 points of small order) and the other bad numbers are refused
// with a reason that names them, whether the key comes from a CSR or from Botan.
#include "kubeca/keys.h"

#include <botan/auto_rng.h>
#include <botan/curve25519.h>
#include <botan/ecdsa.h>
#include <botan/ed25519.h>
#include <botan/hex.h>
#include <botan/rsa.h>
#include <botan/x509_key.h>
#include <gtest/gtest.h>

#include <map>

#include "crafted_csr.h"
#include "kubeca/csr.h"

namespace kubeca {
namespace {

using test::Bytes;

Botan::AutoSeeded_RNG& rng() {
  static Botan::AutoSeeded_RNG r;
  return r;
}

// Kept to the end of the process: Botan's locked-memory pool may go first at exit.
const Botan::Private_Key& key_of(KeyAlgorithm a) {
  static auto* keys = new std::map<KeyAlgorithm, std::unique_ptr<Botan::Private_Key>>;
  auto& k = (*keys)[a];
  if (!k) k = generate_key(a, rng());
  return *k;
}

// A real RSA-2048 modulus: odd, no small factors.
const Botan::BigInt& modulus() {
  static const auto* n = new Botan::BigInt(
      dynamic_cast<const Botan::RSA_PublicKey&>(key_of(KeyAlgorithm::kRsa2048)).get_n());
  return *n;
}

// The subject key of a CSR with this SubjectPublicKeyInfo, as the service reads it (the
// signature does not matter here: parse_csr checks it separately).
std::unique_ptr<Botan::Public_Key> csr_key(const Bytes& spki) {
  const auto junk = [](const Bytes&) { return Bytes(64, 0x5a); };
  const std::string pem =
      test::csr_pem(spki,
                    Botan::AlgorithmIdentifier(Botan::OID("1.2.840.113549.1.1.11"),
                                               Botan::AlgorithmIdentifier::USE_NULL_PARAM),
                    junk);
  return Csr::from_pem(pem).subject_public_key();
}

std::string csr_reason(const Bytes& spki) { return weak_key_reason(*csr_key(spki)); }

TEST(WeakKey, EveryAlgorithmKubecaMakesPasses) {
  for (KeyAlgorithm a :
       {KeyAlgorithm::kRsa2048, KeyAlgorithm::kRsa3072, KeyAlgorithm::kRsa4096,
        KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEcdsaP384, KeyAlgorithm::kEd25519}) {
    SCOPED_TRACE(to_string(a));
    const auto& key = key_of(a);
    EXPECT_EQ(weak_key_reason(key), "");
    const auto spki = Botan::X509::BER_encode(key);
    EXPECT_EQ(weak_key_reason(*std::unique_ptr<Botan::Public_Key>(Botan::X509::load_key(spki))),
              "");
    EXPECT_EQ(csr_reason(spki), "");
  }
}

TEST(WeakKey, RsaExponents) {
  const Botan::BigInt two256 = Botan::BigInt::power_of_2(256);
  struct Case {
    Botan::BigInt e;
    std::string reason;  // a part of it; empty: accepted
  };
  const Case cases[] = {
      {1, "exponent 1 is too small"},
      {3, "exponent 3 is too small"},
      {65535, "exponent 65535 is too small"},
      {65536, "exponent is even"},
      {65537 + 1, "exponent is even"},
      {two256 + 1, "2^256 or more"},
      {two256 * 7 + 1, "2^256 or more"},
      {65537, ""},
      {65539, ""},
      {two256 - 1, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("e = " + c.e.to_dec_string());
    const std::string reason = csr_reason(test::rsa_spki(modulus(), c.e));
    if (c.reason.empty()) {
      EXPECT_EQ(reason, "");
    } else {
      EXPECT_NE(reason.find(c.reason), std::string::npos) << reason;
    }
    // Botan's own RSA key, where it takes the numbers (it refuses an even exponent itself).
    if (c.e.is_odd()) {
      EXPECT_EQ(weak_key_reason(Botan::RSA_PublicKey(modulus(), c.e)), reason);
    }
  }
}

TEST(WeakKey, RsaModuli) {
  const Botan::BigInt& n = modulus();
  struct Case {
    Botan::BigInt n;
    std::string reason;
  };
  Botan::BigInt huge = n;
  for (int i = 0; i < 4; ++i) huge *= n;  // about 10240 bits
  const Case cases[] = {
      {n + 1, "modulus is even"},
      {n * 3, "small factor 3"},
      {n * 751, "small factor 751"},
      {n * 743 * 751, "small factor 743"},
      {Botan::BigInt::power_of_2(1023) + 1, "1024 bits is too weak"},
      {huge, "larger than 8192 bits"},
      {n * 757, ""},  // 757 is the first prime past the CA/Browser Forum's 752
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.n.bits()) + "-bit modulus");
    const std::string reason = csr_reason(test::rsa_spki(c.n, 65537));
    if (c.reason.empty()) {
      EXPECT_EQ(reason, "");
    } else {
      EXPECT_NE(reason.find(c.reason), std::string::npos) << reason;
    }
  }
}

TEST(WeakKey, EcPointAtInfinityDecodesAndIsRefused) {
  // Botan 2.19 decodes the lone 0x00 as the identity without complaint: the check is ours.
  for (const char* curve : {"secp256r1", "secp384r1"}) {
    SCOPED_TRACE(curve);
    const Bytes spki = test::ec_spki(curve, {0x00});
    std::unique_ptr<Botan::Public_Key> botan(Botan::X509::load_key(spki));
    EXPECT_NE(weak_key_reason(*botan).find("point at infinity"), std::string::npos);
    EXPECT_NE(csr_reason(spki).find("point at infinity"), std::string::npos);
  }
}

TEST(WeakKey, EcPointOffTheCurve) {
  const Botan::EC_Group group("secp256r1");
  const auto& good = dynamic_cast<const Botan::EC_PublicKey&>(key_of(KeyAlgorithm::kEcdsaP256));
  const Botan::BigInt x = good.public_point().get_affine_x();
  const Botan::BigInt y = good.public_point().get_affine_y();
  // Botan refuses to decode it from a CSR (400 malformed_csr at the service)...
  Bytes point = good.public_point().encode(Botan::PointGFp::UNCOMPRESSED);
  point.back() ^= 0x01;
  EXPECT_THROW(csr_key(test::ec_spki("secp256r1", point)), Botan::Exception);
  // ...and weak_key_reason refuses one that reaches it another way.
  const Botan::ECDSA_PublicKey off(group, group.point(x, y + 1));
  EXPECT_EQ(weak_key_reason(off), "EC public point is not on the curve");
  EXPECT_EQ(weak_key_reason(Botan::ECDSA_PublicKey(group, good.public_point())), "");
}

// The 32-byte encodings of the Ed25519 points of small order, both signs of x.
std::vector<Bytes> small_order_encodings() {
  const Bytes ys[] = {
      Bytes(32, 0x00),
      test::ed25519_identity(),
      Botan::hex_decode("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
      Botan::hex_decode("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
      Botan::hex_decode("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
  };
  std::vector<Bytes> out;
  for (const auto& y : ys) {
    out.push_back(y);
    out.push_back(y);
    out.back()[31] |= 0x80;
  }
  return out;
}

TEST(WeakKey, Ed25519SmallOrderAndNonCanonicalPointsAreRefused) {
  for (const auto& a : small_order_encodings()) {
    SCOPED_TRACE(Botan::hex_encode(a));
    EXPECT_EQ(csr_reason(test::ed25519_spki(a)),
              "Ed25519 public key is a point of small order (it has no private key)");
    EXPECT_NE(weak_key_reason(Botan::Ed25519_PublicKey(a)), "");
  }
  // y = p and y = p + 1: 0 and 1 again, written the long way.
  for (const char* hex : {"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                          "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"}) {
    EXPECT_NE(csr_reason(test::ed25519_spki(Botan::hex_decode(hex))).find("not canonically"),
              std::string::npos)
        << hex;
  }
  // One bit away from a small-order y is not on the list.
  Bytes near = small_order_encodings()[4];
  near[0] ^= 0x01;
  EXPECT_EQ(csr_reason(test::ed25519_spki(near)), "");
}

// The list is right: under each point, OpenSSL accepts the forgery R = identity, S = 0 for
// some message, which no point of large order allows; and not under a real key.
TEST(WeakKey, Ed25519BlocklistIsExactlyTheForgeablePoints) {
  const auto verifies_for_some_message = [](const Bytes& a) {
    for (int i = 0; i < 200; ++i) {
      if (Csr::from_pem(test::ed25519_forged_csr(a, "n" + std::to_string(i))).self_signature_ok())
        return true;
    }
    return false;
  };
  // The eight torsion points: x = 0 has one sign only.
  std::vector<Bytes> torsion;
  for (const auto& a : small_order_encodings()) {
    const bool x_zero = a[0] == 0x01 || a[0] == 0xec;
    if (!(x_zero && (a[31] & 0x80))) torsion.push_back(a);
  }
  ASSERT_EQ(torsion.size(), 8u);
  for (const auto& a : torsion) {
    EXPECT_TRUE(verifies_for_some_message(a)) << Botan::hex_encode(a);
  }
  EXPECT_FALSE(verifies_for_some_message(key_of(KeyAlgorithm::kEd25519).public_key_bits()));
}

TEST(WeakKey, ForgedCsrsVerifyAndAreRefused) {
  // What the service saw: a self-signature that verifies, under a key anyone can sign for.
  const std::string e1 = test::rsa_e1_csr(modulus());
  const std::string inf = test::p256_infinity_csr(rng());
  const std::string ed = test::ed25519_forged_csr(test::ed25519_identity());
  for (const auto* pem : {&e1, &inf, &ed}) {
    const Csr csr = Csr::from_pem(*pem);
    EXPECT_TRUE(csr.self_signature_ok());
    EXPECT_NE(weak_key_reason(*csr.subject_public_key()), "");
  }
  EXPECT_EQ(weak_key_reason(*Csr::from_pem(e1).subject_public_key()),
            "RSA public exponent 1 is too small (65537 or more)");
}

TEST(WeakKey, X25519IsNotASigningKey) {
  const Botan::Curve25519_PrivateKey x(rng());
  const std::string reason = weak_key_reason(x);
  EXPECT_NE(reason.find("X25519"), std::string::npos) << reason;
  EXPECT_NE(reason.find("cannot sign"), std::string::npos) << reason;
  std::unique_ptr<Botan::Public_Key> loaded(Botan::X509::load_key(Botan::X509::BER_encode(x)));
  EXPECT_EQ(weak_key_reason(*loaded), reason);
}

}  // namespace
}  // namespace kubeca

#include "kubeca/keys.h"

#include <botan/ber_dec.h>
#include <botan/bigint.h>
#include <botan/chacha_rng.h>
#include <botan/data_src.h>
#include <botan/ecdsa.h>
#include <botan/ed25519.h>
#include <botan/numthry.h>
#include <botan/pkcs8.h>
#include <botan/rsa.h>
#include <botan/system_rng.h>
#include <botan/x509_key.h>

#include <algorithm>
#include <array>

#include "kubeca/parallel.h"

namespace kubeca {

namespace {
struct Name {
  KeyAlgorithm a;
  const char* name;
};
constexpr Name kNames[] = {
    {KeyAlgorithm::kRsa2048, "rsa-2048"},     {KeyAlgorithm::kRsa3072, "rsa-3072"},
    {KeyAlgorithm::kRsa4096, "rsa-4096"},     {KeyAlgorithm::kEcdsaP256, "ecdsa-p256"},
    {KeyAlgorithm::kEcdsaP384, "ecdsa-p384"}, {KeyAlgorithm::kEd25519, "ed25519"}};
}  // namespace

std::unique_ptr<Botan::RandomNumberGenerator> make_rng() {
  return std::make_unique<Botan::ChaCha_RNG>(Botan::system_rng());
}

Botan::RandomNumberGenerator& thread_rng() {
  thread_local std::unique_ptr<Botan::RandomNumberGenerator> rng = make_rng();
  return *rng;
}

std::optional<KeyAlgorithm> parse_key_algorithm(const std::string& name) {
  for (const auto& n : kNames) {
    if (name == n.name) return n.a;
  }
  return std::nullopt;
}

const char* to_string(KeyAlgorithm a) {
  for (const auto& n : kNames) {
    if (a == n.a) return n.name;
  }
  return "unknown";
}

std::unique_ptr<Botan::Private_Key> generate_key(KeyAlgorithm a,
                                                 Botan::RandomNumberGenerator& rng) {
  switch (a) {
    case KeyAlgorithm::kRsa2048:
      return std::make_unique<Botan::RSA_PrivateKey>(rng, 2048);
    case KeyAlgorithm::kRsa3072:
      return std::make_unique<Botan::RSA_PrivateKey>(rng, 3072);
    case KeyAlgorithm::kRsa4096:
      return std::make_unique<Botan::RSA_PrivateKey>(rng, 4096);
    case KeyAlgorithm::kEcdsaP256:
      return std::make_unique<Botan::ECDSA_PrivateKey>(rng, Botan::EC_Group("secp256r1"));
    case KeyAlgorithm::kEcdsaP384:
      return std::make_unique<Botan::ECDSA_PrivateKey>(rng, Botan::EC_Group("secp384r1"));
    case KeyAlgorithm::kEd25519:
      return std::make_unique<Botan::Ed25519_PrivateKey>(rng);
  }
  throw std::logic_error("unknown key algorithm");
}

std::vector<std::unique_ptr<Botan::Private_Key>> generate_keys(
    KeyAlgorithm a, size_t n, unsigned threads, const std::function<void()>& on_key) {
  std::vector<std::unique_ptr<Botan::Private_Key>> keys(n);
  parallel_for(n, threads == 0 ? cpu_threads() : threads, [&](size_t i) {
    keys[i] = generate_key(a, thread_rng());
    if (on_key) on_key();
  });
  return keys;
}

KeyAlgorithm algorithm_of(const Botan::Public_Key& key) {
  const std::string algo = key.algo_name();
  if (algo == "RSA") {
    return key.key_length() > 3072   ? KeyAlgorithm::kRsa4096
           : key.key_length() > 2048 ? KeyAlgorithm::kRsa3072
                                     : KeyAlgorithm::kRsa2048;
  }
  if (algo == "Ed25519") return KeyAlgorithm::kEd25519;
  return key.key_length() > 256 ? KeyAlgorithm::kEcdsaP384 : KeyAlgorithm::kEcdsaP256;
}

std::string private_key_pem(const Botan::Private_Key& key) { return Botan::PKCS8::PEM_encode(key); }

std::string public_key_pem(const Botan::Public_Key& key) { return Botan::X509::PEM_encode(key); }

std::unique_ptr<Botan::Private_Key> load_private_key_pem(const std::string& pem) {
  Botan::DataSource_Memory src(pem);
  return Botan::PKCS8::load_key(src);
}

std::string signature_hash(const Botan::Public_Key& key) {
  const std::string algo = key.algo_name();
  if (algo == "Ed25519") return "Pure";
  if (algo == "ECDSA" && key.key_length() > 256) return "SHA-384";
  return "SHA-256";
}

bool is_rsa(const Botan::Public_Key& key) { return key.algo_name() == "RSA"; }

namespace {

// The odd primes below 752 (CA/Browser Forum BR 6.1.6), multiplied into groups that fit a
// word: n is divided once per group (about 20 times) instead of once per prime (132).
struct PrimeGroup {
  Botan::word product;
  std::vector<uint16_t> primes;
};
std::vector<PrimeGroup> small_prime_groups() {
  std::vector<PrimeGroup> groups;
  for (size_t i = 0; Botan::PRIMES[i] < 752; ++i) {  // Botan's table starts at 3
    const Botan::word p = Botan::PRIMES[i];
    if (groups.empty() || groups.back().product > ~Botan::word(0) / p) groups.push_back({1, {}});
    groups.back().product *= p;
    groups.back().primes.push_back(Botan::PRIMES[i]);
  }
  return groups;
}

// The smallest odd prime below 752 dividing n, or 0.
uint16_t small_factor(const Botan::BigInt& n) {
  static const std::vector<PrimeGroup> groups = small_prime_groups();
  for (const auto& g : groups) {
    const Botan::word r = n % g.product;
    for (uint16_t p : g.primes) {
      if (r % p == 0) return p;
    }
  }
  return 0;
}

// The RSA checks of CA/Browser Forum BR 6.1.6 and NIST SP 800-89: an exponent of 1 makes
// the "signature" the padded hash itself, a modulus with a small factor is factored at once.
std::string rsa_numbers_reason(const Botan::BigInt& n, const Botan::BigInt& e) {
  if (n.is_negative() || e.is_negative()) return "RSA modulus or exponent is negative";
  if (n.bits() < 2048) {
    return "RSA key of " + std::to_string(n.bits()) + " bits is too weak (2048 or more)";
  }
  if (n.bits() > 8192) return "RSA key larger than 8192 bits";
  if (n.is_even()) return "RSA modulus is even (it has the factor 2)";
  if (const uint16_t p = small_factor(n)) {
    return "RSA modulus has the small factor " + std::to_string(p);
  }
  if (e.is_even()) return "RSA public exponent is even (it must be odd)";
  if (e < 65537) {
    return "RSA public exponent " + e.to_dec_string() + " is too small (65537 or more)";
  }
  if (e.bits() > 256) return "RSA public exponent is 2^256 or more (65537 is usual)";
  return "";
}

// From the numbers themselves where the key holds them: no decoding on the hot path.
std::string rsa_reason(const Botan::Public_Key& key) {
  Botan::BigInt decoded_n, decoded_e;
  const Botan::BigInt* n = &decoded_n;
  const Botan::BigInt* e = &decoded_e;
  if (const auto* numbers = dynamic_cast<const RsaNumbers*>(&key)) {
    n = &numbers->modulus();
    e = &numbers->exponent();
  } else if (const auto* rsa = dynamic_cast<const Botan::RSA_PublicKey*>(&key)) {
    n = &rsa->get_n();
    e = &rsa->get_e();
  } else {
    try {
      Botan::BER_Decoder(key.public_key_bits())
          .start_cons(Botan::SEQUENCE)
          .decode(decoded_n)
          .decode(decoded_e)
          .end_cons()
          .verify_end();
    } catch (const std::exception&) {
      return "RSA public key cannot be decoded";
    }
  }
  return rsa_numbers_reason(*n, *e);
}

std::string ec_reason(const Botan::Public_Key& key) {
  const auto& ec = dynamic_cast<const Botan::EC_PublicKey&>(key);
  static const Botan::OID kP256("1.2.840.10045.3.1.7"), kP384("1.3.132.0.34");
  const auto oid = ec.domain().get_curve_oid();
  if (oid != kP256 && oid != kP384) {
    return "curve " + oid.to_formatted_string() + " is not allowed (P-256 or P-384)";
  }
  // P-256 and P-384 have cofactor 1: on the curve and not the identity is the whole check.
  const auto& point = ec.public_point();
  if (point.is_zero()) return "EC public key is the point at infinity (it has no private key)";
  if (!point.on_the_curve()) return "EC public point is not on the curve";
  return "";
}

// The Ed25519 points of small order (libsodium's blocklist): their y, little-endian, the
// sign of x left out. A signature under one verifies for about one message in eight.
constexpr uint8_t kSmallOrderY[][32] = {
    {0},     // y = 0: the two points of order 4
    {0x01},  // y = 1: the identity
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};

std::string ed25519_reason(const Botan::Public_Key& key) {
  const std::vector<uint8_t> a = key.public_key_bits();
  if (a.size() != 32) return "Ed25519 public key is not 32 bytes";
  std::array<uint8_t, 32> y;
  std::copy(a.begin(), a.end(), y.begin());
  y[31] &= 0x7f;
  // RFC 8032 5.1.3: y must be below p = 2^255 - 19.
  if (y[31] == 0x7f && y[0] >= 0xed &&
      std::all_of(y.begin() + 1, y.begin() + 31, [](uint8_t b) { return b == 0xff; })) {
    return "Ed25519 public key is not canonically encoded (y >= 2^255 - 19)";
  }
  for (const auto& bad : kSmallOrderY) {
    if (std::equal(y.begin(), y.end(), bad)) {
      return "Ed25519 public key is a point of small order (it has no private key)";
    }
  }
  return "";
}

}  // namespace

std::string weak_key_reason(const Botan::Public_Key& key) {
  const std::string algo = key.algo_name();
  if (algo == "RSA") return rsa_reason(key);
  if (algo == "ECDSA") return ec_reason(key);
  if (algo == "Ed25519") return ed25519_reason(key);
  if (algo == "Curve25519") {
    return "X25519 keys only agree on secrets and cannot sign (RSA, ECDSA P-256/P-384 or "
           "Ed25519)";
  }
  return "key type " + algo + " is not allowed (RSA, ECDSA P-256/P-384 or Ed25519)";
}

}  // namespace kubeca

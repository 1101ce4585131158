#include "kubeca/keys.h"

#include <botan/chacha_rng.h>
#include <botan/data_src.h>
#include <botan/ecdsa.h>
#include <botan/ed25519.h>
#include <botan/pkcs8.h>
#include <botan/rsa.h>
#include <botan/system_rng.h>
#include <botan/x509_key.h>

#include <algorithm>

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

std::vector<std::unique_ptr<Botan::Private_Key>> generate_keys(KeyAlgorithm a, size_t n,
                                                               unsigned threads) {
  std::vector<std::unique_ptr<Botan::Private_Key>> keys(n);
  parallel_for(n, threads == 0 ? cpu_threads() : threads,
               [&](size_t i) { keys[i] = generate_key(a, thread_rng()); });
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

std::string weak_key_reason(const Botan::Public_Key& key) {
  const std::string algo = key.algo_name();
  if (algo == "RSA") {
    if (key.key_length() < 2048) {
      return "RSA key of " + std::to_string(key.key_length()) + " bits is too weak (2048 or more)";
    }
    if (key.key_length() > 8192) return "RSA key larger than 8192 bits";
    return "";
  }
  if (algo == "ECDSA") {
    const auto& ec = dynamic_cast<const Botan::EC_PublicKey&>(key);
    const auto oid = ec.domain().get_curve_oid();
    if (oid == Botan::OID::from_string("secp256r1") ||
        oid == Botan::OID::from_string("secp384r1")) {
      return "";
    }
    return "curve " + oid.to_formatted_string() + " is not allowed (P-256 or P-384)";
  }
  if (algo == "Ed25519") return "";
  return "key type " + algo + " is not allowed (RSA, ECDSA P-256/P-384 or Ed25519)";
}

}  // namespace kubeca

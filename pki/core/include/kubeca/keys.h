// Key pairs: the six algorithms kubeca issues, PEM in and out.
#pragma once

#include <botan/bigint.h>
#include <botan/pk_keys.h>
#include <botan/rng.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kubeca {

enum class KeyAlgorithm { kRsa2048, kRsa3072, kRsa4096, kEcdsaP256, kEcdsaP384, kEd25519 };

std::optional<KeyAlgorithm> parse_key_algorithm(const std::string& name);
const char* to_string(KeyAlgorithm a);

// A ChaCha20 RNG seeded (and reseeded) from the kernel's. Botan's AutoSeeded_RNG runs
// HMAC-SHA-384 twice per call, which was a tenth of a signing request's CPU.
std::unique_ptr<Botan::RandomNumberGenerator> make_rng();
// This thread's own make_rng(): RNGs are not safe to share between threads.
Botan::RandomNumberGenerator& thread_rng();

std::unique_ptr<Botan::Private_Key> generate_key(KeyAlgorithm a, Botan::RandomNumberGenerator& rng);

// Generates n keys on up to `threads` threads: RSA costs tens of milliseconds each.
// `on_key` is called (from the worker threads) after each key.
std::vector<std::unique_ptr<Botan::Private_Key>> generate_keys(
    KeyAlgorithm a, size_t n, unsigned threads = 0, const std::function<void()>& on_key = {});

// The algorithm of an existing key, to make its successor of the same kind.
KeyAlgorithm algorithm_of(const Botan::Public_Key& key);

std::string private_key_pem(const Botan::Private_Key& key);  // PKCS#8
std::string public_key_pem(const Botan::Public_Key& key);    // SubjectPublicKeyInfo
std::unique_ptr<Botan::Private_Key> load_private_key_pem(const std::string& pem);

// The hash to sign with for a key of this type: SHA-384 for P-384, none for Ed25519.
std::string signature_hash(const Botan::Public_Key& key);
bool is_rsa(const Botan::Public_Key& key);

// An RSA public key that hands out its numbers without Botan's RSA_PublicKey (whose
// constructor precomputes for operations a subject key never does): the CSR's subject key.
// weak_key_reason reads them from here rather than decoding the key bits again.
class RsaNumbers {
 public:
  virtual ~RsaNumbers() = default;
  virtual const Botan::BigInt& modulus() const = 0;
  virtual const Botan::BigInt& exponent() const = 0;
};

// Refuses keys the policy forbids or that have no secret: RSA outside 2048..8192 bits, a
// modulus that is even or has a factor below 752, an exponent that is even, below 65537 or
// 2^256 and above; curves other than P-256/P-384, the point at infinity, a point off the
// curve; Ed25519 points of small order or not canonically encoded; X25519 and anything but
// RSA, ECDSA and Ed25519. Cheap (no modular exponentiation): it runs on every request.
// Returns the reason, or empty when acceptable.
std::string weak_key_reason(const Botan::Public_Key& key);

}  // namespace kubeca

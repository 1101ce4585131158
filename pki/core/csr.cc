#include "kubeca/csr.h"

#include <botan/ber_dec.h>
#include <botan/bigint.h>
#include <botan/data_src.h>
#include <botan/der_enc.h>
#include <botan/pem.h>
#include <botan/workfactor.h>
#include <botan/x509_key.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "kubeca/keys.h"

namespace kubeca {

namespace {

const Botan::OID kRsaEncryption("1.2.840.113549.1.1.1");
const Botan::OID kEcPublicKey("1.2.840.10045.2.1");
const Botan::OID kEd25519("1.3.101.112");

// An RSA subject key with only what issuing reads: the SubjectPublicKeyInfo, the modulus
// size and the name. It refuses what does not decode; weak_key_reason judges the numbers
// (an even modulus or exponent is a weak_key refusal, as e = 1 is).
class RsaSubjectKey final : public Botan::Public_Key, public RsaNumbers {
 public:
  explicit RsaSubjectKey(const std::vector<uint8_t>& key_bits) {
    Botan::BER_Decoder(key_bits).start_cons(Botan::SEQUENCE).decode(n_).decode(e_).end_cons();
    if (n_.is_negative() || n_.is_zero() || e_.is_negative() || e_.is_zero()) {
      throw Botan::Decoding_Error("Invalid RSA public key parameters");
    }
  }
  std::string algo_name() const override { return "RSA"; }
  size_t key_length() const override { return n_.bits(); }
  size_t estimated_strength() const override { return Botan::if_work_factor(key_length()); }
  Botan::AlgorithmIdentifier algorithm_identifier() const override {
    return Botan::AlgorithmIdentifier(get_oid(), Botan::AlgorithmIdentifier::USE_NULL_PARAM);
  }
  std::vector<uint8_t> public_key_bits() const override {
    std::vector<uint8_t> out;
    Botan::DER_Encoder(out).start_cons(Botan::SEQUENCE).encode(n_).encode(e_).end_cons();
    return out;
  }
  const Botan::BigInt& modulus() const override { return n_; }
  const Botan::BigInt& exponent() const override { return e_; }
  bool check_key(Botan::RandomNumberGenerator&, bool) const override {
    return n_ >= 35 && n_.is_odd() && e_ >= 3 && e_.is_odd();
  }

 private:
  Botan::BigInt n_, e_;
};

// The SubjectPublicKeyInfo's algorithm and key bits.
void split_spki(const std::vector<uint8_t>& spki, Botan::AlgorithmIdentifier& alg,
                std::vector<uint8_t>& bits) {
  Botan::BER_Decoder(spki)
      .start_cons(Botan::SEQUENCE)
      .decode(alg)
      .decode(bits, Botan::BIT_STRING)
      .end_cons();
}

struct FreePkey {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, FreePkey>;

Pkey pkey_from(const char* type, const OSSL_PARAM* params) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* key = nullptr;
  if (ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1) {
    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params));
  }
  EVP_PKEY_CTX_free(ctx);
  return Pkey(key);
}

Pkey rsa_pkey(const std::vector<uint8_t>& bits) {
  Botan::BigInt n, e;
  Botan::BER_Decoder(bits).start_cons(Botan::SEQUENCE).decode(n).decode(e).end_cons();
  const auto nb = Botan::BigInt::encode(n), eb = Botan::BigInt::encode(e);
  BIGNUM* bn_n = BN_bin2bn(nb.data(), static_cast<int>(nb.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(eb.data(), static_cast<int>(eb.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1) {
    params = OSSL_PARAM_BLD_to_param(bld);
  }
  Pkey key = params ? pkey_from("RSA", params) : nullptr;
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  return key;
}

Pkey ec_pkey(const Botan::AlgorithmIdentifier& alg, std::vector<uint8_t>& point) {
  static const Botan::OID kP256("1.2.840.10045.3.1.7"), kP384("1.3.132.0.34");
  Botan::OID curve;
  Botan::BER_Decoder(alg.get_parameters()).decode(curve).verify_end();
  const char* group = curve == kP256 ? "P-256" : curve == kP384 ? "P-384" : nullptr;
  if (group == nullptr) return nullptr;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  return pkey_from("EC", params);
}

// The direct way: 1 good, 0 bad, -1 not a case it knows (the caller falls back).
int verify_direct(const Botan::AlgorithmIdentifier& sig_algo, const std::vector<uint8_t>& sig,
                  const std::vector<uint8_t>& signed_data, const std::vector<uint8_t>& spki) {
  struct Kind {
    Botan::OID oid;
    const Botan::OID* key;
    const char* digest;
  };
  static const Kind kKinds[] = {
      {Botan::OID("1.2.840.10045.4.3.2"), &kEcPublicKey, "SHA256"},      // ecdsa-with-SHA256
      {Botan::OID("1.2.840.10045.4.3.3"), &kEcPublicKey, "SHA384"},      // ecdsa-with-SHA384
      {Botan::OID("1.2.840.10045.4.3.4"), &kEcPublicKey, "SHA512"},      // ecdsa-with-SHA512
      {Botan::OID("1.2.840.113549.1.1.11"), &kRsaEncryption, "SHA256"},  // sha256WithRSAEncryption
      {Botan::OID("1.2.840.113549.1.1.12"), &kRsaEncryption, "SHA384"},  // sha384WithRSAEncryption
      {Botan::OID("1.2.840.113549.1.1.13"), &kRsaEncryption, "SHA512"},  // sha512WithRSAEncryption
      {kEd25519, &kEd25519, nullptr},                                    // Ed25519
  };
  const Kind* kind = nullptr;
  for (const auto& k : kKinds) {
    if (sig_algo.get_oid() == k.oid) kind = &k;
  }
  if (kind == nullptr) return -1;
  // RFC 4055: NULL (or absent) parameters for RSA; RFC 5758 and 8410: absent otherwise.
  const bool params_ok = kind->key == &kRsaEncryption ? sig_algo.parameters_are_null_or_empty()
                                                      : sig_algo.parameters_are_empty();
  if (!params_ok) return -1;

  Botan::AlgorithmIdentifier alg;
  std::vector<uint8_t> bits;
  split_spki(spki, alg, bits);
  if (alg.get_oid() != *kind->key) return -1;
  Pkey key;
  if (kind->key == &kRsaEncryption) {
    key = rsa_pkey(bits);
  } else if (kind->key == &kEcPublicKey) {
    key = ec_pkey(alg, bits);
  } else {
    key.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bits.data(), bits.size()));
  }
  if (!key) return -1;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  const bool good =
      md != nullptr &&
      EVP_DigestVerifyInit_ex(md, nullptr, kind->digest, nullptr, nullptr, key.get(), nullptr) ==
          1 &&
      EVP_DigestVerify(md, sig.data(), sig.size(), signed_data.data(), signed_data.size()) == 1;
  EVP_MD_CTX_free(md);
  return good ? 1 : 0;
}

// Any other algorithm OpenSSL knows (RSA-PSS, other curves, ...), from the DER.
bool verify_x509_req(const std::vector<uint8_t>& der) {
  const unsigned char* p = der.data();
  X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size()));
  if (req == nullptr) return false;
  EVP_PKEY* key = X509_REQ_get0_pubkey(req);
  const bool good = key != nullptr && X509_REQ_verify(req, key) == 1;
  X509_REQ_free(req);
  return good;
}

}  // namespace

Csr Csr::from_pem(const std::string& pem) {
  Csr c;
  // As Botan's X509_Object::load_data: BER (a SEQUENCE tag first) as is, else the first
  // PEM block.
  Botan::DataSource_Memory src(pem);
  if (!pem.empty() && static_cast<uint8_t>(pem[0]) == 0x30 && !Botan::PEM_Code::matches(src)) {
    c.der_.assign(pem.begin(), pem.end());
  } else {
    std::string label;
    c.der_ = Botan::unlock(Botan::PEM_Code::decode(src, label));
    if (label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST") {
      throw Botan::Decoding_Error("Unexpected PEM label for CERTIFICATE REQUEST of " + label);
    }
  }
  std::vector<uint8_t> info_bits;
  Botan::BER_Decoder(c.der_)
      .start_cons(Botan::SEQUENCE)
      .start_cons(Botan::SEQUENCE)
      .raw_bytes(info_bits)
      .end_cons()
      .decode(c.sig_algo_)
      .decode(c.signature_, Botan::BIT_STRING)
      .end_cons();
  // What is signed, as Botan's signed_body() gives it.
  Botan::DER_Encoder(c.signed_).add_object(Botan::SEQUENCE, Botan::CONSTRUCTED, info_bits);

  // decode_pkcs10 of Botan 2.19.
  Botan::BER_Decoder info(info_bits);
  size_t version = 0;
  info.decode(version);
  if (version != 0) {
    throw Botan::Decoding_Error("Unknown version code in PKCS #10 request: " +
                                std::to_string(version));
  }
  info.decode(c.subject_);
  const Botan::BER_Object key = info.get_next_object();
  if (!key.is_a(Botan::SEQUENCE, Botan::CONSTRUCTED)) {
    throw Botan::BER_Bad_Tag("PKCS10_Request: Unexpected tag for public key", key.tagging());
  }
  Botan::DER_Encoder(c.public_key_)
      .add_object(Botan::SEQUENCE, Botan::CONSTRUCTED, key.bits(), key.length());
  const Botan::BER_Object attrs = info.get_next_object();
  std::vector<std::string> emails;
  if (attrs.is_a(0, Botan::ASN1_Tag(Botan::CONSTRUCTED | Botan::CONTEXT_SPECIFIC))) {
    Botan::BER_Decoder list(attrs);
    while (list.more_items()) {
      Botan::Attribute attr;
      list.decode(attr);
      Botan::BER_Decoder value(attr.get_parameters());
      if (attr.get_oid() == Botan::OID::from_string("PKCS9.EmailAddress")) {
        Botan::ASN1_String email;
        value.decode(email);
        emails.push_back(email.value());
      } else if (attr.get_oid() == Botan::OID::from_string("PKCS9.ChallengePassword")) {
        Botan::ASN1_String challenge;
        value.decode(challenge);
      } else if (attr.get_oid() == Botan::OID::from_string("PKCS9.ExtensionRequest")) {
        value.decode(c.extensions_).verify_end();
      }
    }
    list.verify_end();
  } else if (attrs.is_set()) {
    throw Botan::BER_Bad_Tag("PKCS10_Request: Unexpected tag for attributes", attrs.tagging());
  }
  info.verify_end();
  if (const auto* san =
          c.extensions_
              .get_extension_object_as<Botan::Cert_Extension::Subject_Alternative_Name>()) {
    c.alt_name_ = san->get_alt_name();
  }
  for (const auto& e : emails) c.alt_name_.add_attribute("RFC822", e);
  return c;
}

bool Csr::is_CA() const {
  const auto* bc = extensions_.get_extension_object_as<Botan::Cert_Extension::Basic_Constraints>();
  return bc != nullptr && bc->get_is_ca();
}

std::unique_ptr<Botan::Public_Key> Csr::subject_public_key() const {
  Botan::AlgorithmIdentifier alg;
  std::vector<uint8_t> bits;
  split_spki(public_key_, alg, bits);
  if (alg.get_oid() == kRsaEncryption && !bits.empty()) {
    return std::make_unique<RsaSubjectKey>(bits);
  }
  return std::unique_ptr<Botan::Public_Key>(Botan::X509::load_key(public_key_));
}

bool Csr::self_signature_ok() const {
  int r = -1;
  try {
    r = verify_direct(sig_algo_, signature_, signed_, public_key_);
  } catch (const std::exception&) {
    r = -1;  // not a case the direct way reads: X509_REQ_verify decides
  }
  const bool good = r >= 0 ? r == 1 : verify_x509_req(der_);
  // OpenSSL's error queue is per thread, and TLS on this thread reads it (SSL_get_error).
  ERR_clear_error();
  return good;
}

}  // namespace kubeca

#include "kubeca/ca.h"

#include <botan/ber_dec.h>
#include <botan/data_src.h>
#include <botan/der_enc.h>
#include <botan/hash.h>
#include <botan/hex.h>
#include <botan/pem.h>
#include <botan/pkix_types.h>
#include <botan/pubkey.h>
#include <botan/x509_ca.h>
#include <botan/x509_ext.h>
#include <botan/x509_key.h>

#include "kubeca/fs.h"
#include "kubeca/keys.h"
#include "kubeca/net.h"

namespace kubeca {

namespace {

// Botan 2's own SubjectAlternativeName drops IPv6 addresses: encode GeneralNames here.
class SubjectAltNames final : public Botan::Certificate_Extension {
 public:
  SubjectAltNames(std::vector<std::string> dns, std::vector<std::string> ips)
      : dns_(std::move(dns)), ips_(std::move(ips)) {}
  Botan::OID oid_of() const override { return Botan::OID("2.5.29.17"); }
  std::string oid_name() const override { return "X509v3.SubjectAlternativeName"; }
  Certificate_Extension* copy() const override { return new SubjectAltNames(dns_, ips_); }
  void contents_to(Botan::Data_Store&, Botan::Data_Store&) const override {}

 private:
  bool should_encode() const override { return !dns_.empty() || !ips_.empty(); }
  std::vector<uint8_t> encode_inner() const override {
    std::vector<uint8_t> out;
    Botan::DER_Encoder enc(out);
    enc.start_cons(Botan::SEQUENCE);
    for (const auto& d : dns_) enc.add_object(Botan::ASN1_Tag(2), Botan::CONTEXT_SPECIFIC, d);
    for (const auto& s : ips_) {
      const IpAddress ip = *parse_ip(s);
      enc.add_object(Botan::ASN1_Tag(7), Botan::CONTEXT_SPECIFIC, ip.bytes.data(), ip.v6 ? 16 : 4);
    }
    enc.end_cons();
    return out;
  }
  void decode_inner(const std::vector<uint8_t>&) override {
    throw Botan::Not_Implemented("kubeca SubjectAltNames decoding");
  }
  std::vector<std::string> dns_, ips_;
};

// Botan 2's CRL_Distribution_Points throws Not_Implemented when encoded.
class CrlDistributionPoint final : public Botan::Certificate_Extension {
 public:
  explicit CrlDistributionPoint(std::string url) : url_(std::move(url)) {}
  Botan::OID oid_of() const override { return Botan::OID("2.5.29.31"); }
  std::string oid_name() const override { return "X509v3.CRLDistributionPoints"; }
  Certificate_Extension* copy() const override { return new CrlDistributionPoint(url_); }
  void contents_to(Botan::Data_Store&, Botan::Data_Store&) const override {}

 private:
  std::vector<uint8_t> encode_inner() const override {
    std::vector<uint8_t> out;
    Botan::DER_Encoder enc(out);
    enc.start_cons(Botan::SEQUENCE)                               // CRLDistributionPoints
        .start_cons(Botan::SEQUENCE)                              // DistributionPoint
        .start_cons(Botan::ASN1_Tag(0), Botan::CONTEXT_SPECIFIC)  // distributionPoint
        .start_cons(Botan::ASN1_Tag(0), Botan::CONTEXT_SPECIFIC)  // fullName
        .add_object(Botan::ASN1_Tag(6), Botan::CONTEXT_SPECIFIC, url_)
        .end_cons()
        .end_cons()
        .end_cons()
        .end_cons();
    return out;
  }
  void decode_inner(const std::vector<uint8_t>&) override {
    throw Botan::Not_Implemented("kubeca CRL distribution point decoding");
  }
  std::string url_;
};

Botan::X509_DN make_dn(const CertSpec& spec) {
  Botan::X509_DN dn;
  for (const auto& o : spec.organizations) dn.add_attribute("X520.Organization", o);
  dn.add_attribute("X520.CommonName", spec.common_name);
  return dn;
}

Botan::Key_Constraints usages(const CertSpec& spec, const Botan::Public_Key& key) {
  if (profile_is_ca(spec.profile)) {
    return Botan::Key_Constraints(Botan::KEY_CERT_SIGN | Botan::CRL_SIGN |
                                  Botan::DIGITAL_SIGNATURE);
  }
  if (spec.seed_usages) {
    return Botan::Key_Constraints(Botan::NON_REPUDIATION | Botan::DIGITAL_SIGNATURE |
                                  Botan::KEY_ENCIPHERMENT);
  }
  int ku = Botan::DIGITAL_SIGNATURE;
  if (is_rsa(key)) ku |= Botan::KEY_ENCIPHERMENT;
  return Botan::Key_Constraints(ku);
}

std::vector<uint8_t> key_id(const Botan::Public_Key& key) {
  // RFC 5280 method 1: SHA-1 of the subjectPublicKey bits.
  auto sha1 = Botan::HashFunction::create_or_throw("SHA-1");
  return Botan::unlock(sha1->process(key.public_key_bits()));
}

// The signed certificate's DER, as Botan's X509_CA::make_cert encodes it, without the parse
// make_cert does afterwards (a tenth of an ECDSA issuance): the caller knows what it holds.
IssuedCert sign(Botan::PK_Signer& signer, const Botan::AlgorithmIdentifier& sig_algo,
                const Botan::X509_DN& issuer, const std::vector<uint8_t>& issuer_kid,
                const CertSpec& spec, const Botan::Public_Key& subject_key, TimePoint now,
                TimePoint cap, const Botan::BigInt& serial, const std::string& crl_url,
                Botan::RandomNumberGenerator& rng) {
  const bool is_ca = profile_is_ca(spec.profile);
  Botan::Extensions ext;
  ext.add(new Botan::Cert_Extension::Basic_Constraints(is_ca, 0), true);
  ext.add(new Botan::Cert_Extension::Key_Usage(usages(spec, subject_key)), true);
  std::vector<Botan::OID> eku;
  if (spec.server_auth) eku.push_back(Botan::OID::from_string("PKIX.ServerAuth"));
  if (spec.client_auth) eku.push_back(Botan::OID::from_string("PKIX.ClientAuth"));
  if (!eku.empty()) ext.add(new Botan::Cert_Extension::Extended_Key_Usage(eku));
  const auto kid = key_id(subject_key);
  ext.add(new Botan::Cert_Extension::Subject_Key_ID(kid));
  ext.add(new Botan::Cert_Extension::Authority_Key_ID(issuer_kid.empty() ? kid : issuer_kid));
  if (!spec.dns_names.empty() || !spec.ip_addresses.empty()) {
    ext.add(new SubjectAltNames(spec.dns_names, spec.ip_addresses));
  }
  if (!is_ca && !crl_url.empty()) ext.add(new CrlDistributionPoint(crl_url));

  const TimePoint not_before = now - std::chrono::minutes(5);
  TimePoint not_after = now + spec.validity;
  if (not_after > cap) not_after = cap;

  IssuedCert out;
  const Botan::X509_Time from(not_before), until(not_after);
  const Botan::X509_DN subject = make_dn(spec);
  const size_t kVersion3 = 2;
  const Botan::secure_vector<uint8_t> tbs = Botan::DER_Encoder()
                                                .start_cons(Botan::SEQUENCE)
                                                .start_explicit(0)
                                                .encode(kVersion3)
                                                .end_explicit()
                                                .encode(serial)
                                                .encode(sig_algo)
                                                .encode(issuer)
                                                .start_cons(Botan::SEQUENCE)
                                                .encode(from)
                                                .encode(until)
                                                .end_cons()
                                                .encode(subject)
                                                .raw_bytes(subject_key.subject_public_key())
                                                .start_explicit(3)
                                                .start_cons(Botan::SEQUENCE)
                                                .encode(ext)
                                                .end_cons()
                                                .end_explicit()
                                                .end_cons()
                                                .get_contents();
  out.der = Botan::X509_Object::make_signed(&signer, rng, sig_algo, tbs);
  out.serial = Botan::hex_encode(Botan::BigInt::encode(serial), false);
  out.subject = dn_text(subject);
  out.not_before = from.to_std_timepoint();
  out.not_after = until.to_std_timepoint();
  return out;
}

}  // namespace

Botan::BigInt random_serial(Botan::RandomNumberGenerator& rng) {
  Botan::BigInt serial(rng, 128);
  serial.set_bit(127);
  return serial;
}

struct Ca::Signer {
  // RSA's blinder keeps a reference to the RNG it was made with.
  std::unique_ptr<Botan::RandomNumberGenerator> rng = make_rng();
  Botan::AlgorithmIdentifier algo;
  std::unique_ptr<Botan::PK_Signer> signer;
};

Ca::Ca(Botan::X509_Certificate cert, std::unique_ptr<Botan::Private_Key> key)
    : cert_(std::move(cert)),
      cert_pem_(to_pem(cert_)),
      ca_not_after_(cert_.not_after().to_std_timepoint()),
      key_(std::move(key)) {}

Ca::~Ca() = default;

std::unique_ptr<Ca> Ca::create(const CertSpec& spec, std::unique_ptr<Botan::Private_Key> key,
                               TimePoint now, Botan::RandomNumberGenerator& rng) {
  const auto dn = make_dn(spec);
  Botan::AlgorithmIdentifier sig_algo;
  std::unique_ptr<Botan::PK_Signer> signer(
      Botan::choose_sig_format(*key, rng, signature_hash(*key), sig_algo));
  const auto issued = sign(*signer, sig_algo, dn, {}, spec, *key, now, TimePoint::max(),
                           random_serial(rng), "", rng);
  return std::make_unique<Ca>(Botan::X509_Certificate(issued.der), std::move(key));
}

std::unique_ptr<Ca> Ca::load(const std::filesystem::path& cert_pem,
                             const std::filesystem::path& key_pem) {
  auto cert = parse_certificate_pem(read_file(cert_pem));
  std::unique_ptr<Botan::Private_Key> key;
  try {
    key = load_private_key_pem(read_file(key_pem));
  } catch (const Botan::Exception& e) {
    throw std::runtime_error(key_pem.string() + ": not a private key: " + e.what());
  }
  if (!key_matches(cert, *key)) {
    throw std::runtime_error(key_pem.string() + " is not the key of " + cert_pem.string());
  }
  if (!cert.is_CA_cert()) throw std::runtime_error(cert_pem.string() + " is not a CA certificate");
  return std::make_unique<Ca>(std::move(cert), std::move(key));
}

Botan::X509_Certificate Ca::issue(const CertSpec& spec, const Botan::Public_Key& subject_key,
                                  TimePoint now, const Botan::BigInt& serial,
                                  Botan::RandomNumberGenerator& rng) const {
  return Botan::X509_Certificate(issue_der(spec, subject_key, now, serial, rng).der);
}

IssuedCert Ca::issue_der(const CertSpec& spec, const Botan::Public_Key& subject_key, TimePoint now,
                         const Botan::BigInt& serial, Botan::RandomNumberGenerator& rng) const {
  std::unique_ptr<Signer> s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!signers_.empty()) {
      s = std::move(signers_.back());
      signers_.pop_back();
    }
  }
  if (!s) {
    s = std::make_unique<Signer>();
    s->signer.reset(Botan::choose_sig_format(*key_, *s->rng, signature_hash(*key_), s->algo));
  }
  auto cert = sign(*s->signer, s->algo, cert_.subject_dn(), cert_.subject_key_id(), spec,
                   subject_key, now, ca_not_after_, serial, crl_url_, rng);
  std::lock_guard<std::mutex> lock(mu_);
  signers_.push_back(std::move(s));
  return cert;
}

bool Ca::issued(const Botan::X509_Certificate& cert) const {
  return cert.issuer_dn() == cert_.subject_dn() && cert.check_signature(*key_);
}

std::string ca_pin(const Botan::X509_Certificate& cert) {
  auto sha = Botan::HashFunction::create_or_throw("SHA-256");
  return "sha256:" + Botan::hex_encode(sha->process(cert.subject_public_key_info()), false);
}

std::string to_pem(const Botan::X509_Certificate& cert) { return cert.PEM_encode(); }

Botan::X509_Certificate parse_certificate_pem(const std::string& pem) {
  Botan::DataSource_Memory src(pem);
  return Botan::X509_Certificate(src);
}

std::string serial_hex(const Botan::X509_Certificate& cert) {
  return Botan::hex_encode(cert.serial_number(), false);
}

bool key_matches(const Botan::X509_Certificate& cert, const Botan::Public_Key& key) {
  return cert.subject_public_key_info() == Botan::X509::BER_encode(key);
}

CertSpec identity_of(const Botan::X509_Certificate& cert, Profile profile) {
  CertSpec s;
  s.profile = profile;
  const auto cn = cert.subject_info("X520.CommonName");
  s.common_name = cn.empty() ? "" : cn.front();
  s.organizations = cert.subject_info("X520.Organization");
  // Botan 2's own reader drops IPv6 addresses: read the GeneralNames from the DER.
  const auto raw = cert.v3_extensions().extensions_raw();
  const auto san = raw.find(Botan::OID("2.5.29.17"));
  if (san != raw.end()) {
    Botan::BER_Decoder der(san->second.first);
    Botan::BER_Decoder names = der.start_cons(Botan::SEQUENCE);
    while (names.more_items()) {
      const Botan::BER_Object name = names.get_next_object();
      if (name.is_a(2, Botan::CONTEXT_SPECIFIC)) {
        s.dns_names.emplace_back(reinterpret_cast<const char*>(name.bits()), name.length());
      } else if (name.is_a(7, Botan::CONTEXT_SPECIFIC) &&
                 (name.length() == 4 || name.length() == 16)) {
        IpAddress ip;
        ip.v6 = name.length() == 16;
        std::copy(name.bits(), name.bits() + name.length(), ip.bytes.begin());
        s.ip_addresses.push_back(ip.str());
      }
    }
  }
  for (const auto& oid : cert.extended_key_usage()) {
    if (oid == Botan::OID::from_string("PKIX.ServerAuth")) s.server_auth = true;
    if (oid == Botan::OID::from_string("PKIX.ClientAuth")) s.client_auth = true;
  }
  s.seed_usages = (cert.constraints() & Botan::NON_REPUDIATION) != 0;
  // notBefore was backdated by five minutes when it was issued.
  s.validity = std::chrono::duration_cast<std::chrono::seconds>(
                   cert.not_after().to_std_timepoint() - cert.not_before().to_std_timepoint()) -
               std::chrono::minutes(5);
  if (s.validity < std::chrono::seconds(1)) s.validity = std::chrono::seconds(1);
  return s;
}

std::string dn_text(const Botan::X509_DN& dn) {
  std::string out;
  for (const auto& [oid, value] : dn.dn_info()) {
    const std::string n = oid.to_formatted_string();
    const std::string key = n == "X520.CommonName" ? "CN" : n == "X520.Organization" ? "O" : n;
    out += (out.empty() ? "" : ", ") + key + "=" + value.value();
  }
  return out;
}

}  // namespace kubeca

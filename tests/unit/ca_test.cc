// Ca::create and Ca::issue: every certificate parsed back with Botan and checked field by
// field against product.md (subject, SANs, key usage, EKU, basic constraints, key ids,
// serial, validity, chain) for every profile, both flavors and all six key algorithms.
#include "kubeca/ca.h"

#include <arpa/inet.h>
#include <botan/auto_rng.h>
#include <botan/ber_dec.h>
#include <botan/certstor.h>
#include <botan/hash.h>
#include <botan/hex.h>
#include <botan/pubkey.h>
#include <botan/x509_ca.h>
#include <botan/x509_key.h>
#include <botan/x509path.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "kubeca/config.h"
#include "kubeca/crl.h"
#include "kubeca/keys.h"
#include "kubeca/profile.h"
#include "test_support.h"

namespace kubeca {
namespace {

namespace fs = std::filesystem;
using Strings = std::vector<std::string>;
using std::chrono::hours;
using std::chrono::minutes;

// A fixed instant (2030-03-17T17:46:40Z): X.509 times have whole seconds, and nothing here
// depends on the wall clock.
const TimePoint kNow = std::chrono::system_clock::from_time_t(1900000000);

const char kServerAuth[] = "1.3.6.1.5.5.7.3.1";
const char kClientAuth[] = "1.3.6.1.5.5.7.3.2";

// Keys are slow to make (RSA): one per (algorithm, slot), shared by the tests.
const Botan::Private_Key& Key(KeyAlgorithm a, int slot) {
  static std::map<std::pair<KeyAlgorithm, int>, std::unique_ptr<Botan::Private_Key>> keys;
  auto& k = keys[{a, slot}];
  if (!k) {
    Botan::AutoSeeded_RNG rng;
    k = generate_key(a, rng);
  }
  return *k;
}

std::unique_ptr<Botan::Private_Key> CopyKey(const Botan::Private_Key& key) {
  return load_private_key_pem(private_key_pem(key));
}

Config SeedConfig(Flavor flavor) {
  Config c = parse_config_yaml(R"(
master: {host: 192.168.24.11, name: coreos1, extra_sans: ["fd00::10"]}
network: {pod_cidr: 10.2.0.0/16, service_cidr: 10.3.0.0/24, dns_service_ip: 10.3.0.10}
workers: [{name: coreos2, ip: 192.168.24.12}]
pki: {ca_validity: 87600h, cert_validity: 8760h}
)");
  c.flavor = flavor;
  validate(c);
  return c;
}

using test::Sorted;

// The subject as "CN=..", "O=.." in certificate order; any other attribute by its OID.
Strings SubjectOf(const Botan::X509_Certificate& cert) {
  Strings out;
  for (const auto& [oid, value] : cert.subject_dn().dn_info()) {
    const std::string o = oid.to_string();
    out.push_back((o == "2.5.4.3" ? "CN" : o == "2.5.4.10" ? "O" : o) + "=" + value.value());
  }
  return Sorted(out);
}

Strings ExpectedSubject(const CertSpec& spec) {
  Strings out{"CN=" + spec.common_name};
  for (const auto& o : spec.organizations) out.push_back("O=" + o);
  return Sorted(out);
}

// The SubjectAltName extension decoded from its DER here, IPv6 included (Botan 2's own
// reader drops IPv6 addresses). Other name types come back as "?TAG".
std::string Text(const Botan::BER_Object& obj) {
  return std::string(reinterpret_cast<const char*>(obj.bits()), obj.length());
}

struct Names {
  Strings dns, ips, other;
  bool present = false;
};

Names SansOf(const Botan::X509_Certificate& cert) {
  Names out;
  const auto raw = cert.v3_extensions().extensions_raw();
  const auto it = raw.find(Botan::OID("2.5.29.17"));
  if (it == raw.end()) return out;
  out.present = true;
  Botan::BER_Decoder der(it->second.first);
  Botan::BER_Decoder names = der.start_cons(Botan::SEQUENCE);
  while (names.more_items()) {
    const Botan::BER_Object obj = names.get_next_object();
    if (obj.is_a(2, Botan::CONTEXT_SPECIFIC)) {
      out.dns.push_back(Text(obj));
    } else if (obj.is_a(7, Botan::CONTEXT_SPECIFIC) && (obj.length() == 4 || obj.length() == 16)) {
      char buf[INET6_ADDRSTRLEN] = {};
      inet_ntop(obj.length() == 4 ? AF_INET : AF_INET6, obj.bits(), buf, sizeof buf);
      out.ips.push_back(buf);
    } else {
      out.other.push_back("?" + std::to_string(static_cast<int>(obj.type())));
    }
  }
  return out;
}

// The DER INTEGER of the serial, straight from the TBSCertificate.
std::vector<uint8_t> SerialDer(const Botan::X509_Certificate& cert) {
  Botan::BER_Decoder tbs(cert.tbs_data());
  Botan::BER_Decoder seq = tbs.start_cons(Botan::SEQUENCE);
  Botan::BER_Object version = seq.get_next_object();
  EXPECT_TRUE(version.is_a(0, Botan::ASN1_Tag(Botan::CONTEXT_SPECIFIC | Botan::CONSTRUCTED)))
      << "an explicit v3 version";
  Botan::BER_Object serial = seq.get_next_object();
  EXPECT_TRUE(serial.is_a(Botan::INTEGER, Botan::UNIVERSAL));
  return std::vector<uint8_t>(serial.bits(), serial.bits() + serial.length());
}

bool HasEku(const Botan::X509_Certificate& cert, const char* oid) {
  const auto& eku = cert.extended_key_usage();
  return std::find(eku.begin(), eku.end(), Botan::OID(oid)) != eku.end();
}

std::string SignatureOid(const Botan::X509_Certificate& cert) {
  return cert.signature_algorithm().get_oid().to_string();
}

// The signature algorithm a CA key must produce: SHA-384 for P-384, pure Ed25519.
std::string ExpectedSignatureOid(const Botan::Public_Key& ca_key) {
  const std::string algo = ca_key.algo_name();
  if (algo == "RSA") return "1.2.840.113549.1.1.11";  // sha256WithRSAEncryption
  if (algo == "Ed25519") return "1.3.101.112";
  return ca_key.key_length() > 256 ? "1.2.840.10045.4.3.3"   // ecdsa-with-SHA384
                                   : "1.2.840.10045.4.3.2";  // ecdsa-with-SHA256
}

Botan::Path_Validation_Result Validate(const Botan::X509_Certificate& leaf,
                                       const Botan::X509_Certificate& root,
                                       Botan::Usage_Type usage = Botan::Usage_Type::UNSPECIFIED,
                                       TimePoint at = kNow) {
  Botan::Certificate_Store_In_Memory store(root);
  return Botan::x509_path_validate(leaf, Botan::Path_Validation_Restrictions(), store, "", usage,
                                   at);
}

// Everything product.md says about a certificate of `spec` with `subject_key`, issued by
// `ca` (or self-signed when `ca` is null) at kNow.
void ExpectCertificate(const Botan::X509_Certificate& cert, const CertSpec& spec,
                       const Botan::Public_Key& subject_key, const Ca* ca, Flavor flavor) {
  SCOPED_TRACE(std::string(to_string(spec.profile)) + " " + spec.common_name + ", " +
               subject_key.algo_name() + " key, " + to_string(flavor));
  const bool is_ca = profile_is_ca(spec.profile);
  const Botan::X509_Certificate& issuer = ca ? ca->certificate() : cert;

  // Subject, issuer, key.
  EXPECT_EQ(SubjectOf(cert), ExpectedSubject(spec));
  EXPECT_EQ(cert.issuer_dn(), issuer.subject_dn());
  EXPECT_EQ(cert.subject_public_key_info(), Botan::X509::BER_encode(subject_key));
  EXPECT_EQ(cert.x509_version(), 3u);

  // SANs, exactly the spec's.
  const Names sans = SansOf(cert);
  EXPECT_EQ(Sorted(sans.dns), Sorted(spec.dns_names));
  EXPECT_EQ(Sorted(sans.ips), Sorted(spec.ip_addresses));
  EXPECT_TRUE(sans.other.empty());
  EXPECT_EQ(sans.present, !spec.dns_names.empty() || !spec.ip_addresses.empty());

  // Basic constraints and key usage, both critical.
  EXPECT_EQ(cert.is_CA_cert(), is_ca);
  EXPECT_TRUE(cert.is_critical("X509v3.BasicConstraints"));
  EXPECT_TRUE(cert.is_critical("X509v3.KeyUsage"));
  const Botan::Key_Constraints ku = cert.constraints();
  if (is_ca) {
    EXPECT_TRUE(ku & Botan::KEY_CERT_SIGN);
    EXPECT_TRUE(ku & Botan::CRL_SIGN);
    EXPECT_FALSE(ku & Botan::KEY_ENCIPHERMENT);
  } else if (flavor == Flavor::kCoreos2016) {
    // The seed's openssl.cnf: keyUsage = nonRepudiation, digitalSignature, keyEncipherment.
    EXPECT_EQ(ku, Botan::NON_REPUDIATION | Botan::DIGITAL_SIGNATURE | Botan::KEY_ENCIPHERMENT);
  } else if (subject_key.algo_name() == "RSA") {
    EXPECT_EQ(ku, Botan::DIGITAL_SIGNATURE | Botan::KEY_ENCIPHERMENT);
  } else {
    EXPECT_EQ(ku, Botan::DIGITAL_SIGNATURE);
  }
  EXPECT_FALSE(!is_ca && (ku & (Botan::KEY_CERT_SIGN | Botan::CRL_SIGN)));

  // Extended key usage: exactly what the profile says.
  EXPECT_EQ(HasEku(cert, kServerAuth), spec.server_auth);
  EXPECT_EQ(HasEku(cert, kClientAuth), spec.client_auth);
  EXPECT_EQ(cert.extended_key_usage().size(), size_t(spec.server_auth) + size_t(spec.client_auth));

  // Key identifiers: SKI is SHA-1 of the key (RFC 5280 method 1), AKI the issuer's SKI.
  EXPECT_EQ(cert.subject_key_id(), cert.subject_public_key_bitstring_sha1());
  EXPECT_EQ(cert.authority_key_id(), issuer.subject_key_id());
  EXPECT_FALSE(cert.authority_key_id().empty());

  // A positive 128-bit serial: 17 DER bytes, a zero then a byte with the top bit set.
  const std::vector<uint8_t> serial = SerialDer(cert);
  ASSERT_EQ(serial.size(), 17u);
  EXPECT_EQ(serial[0], 0x00);
  EXPECT_GE(serial[1], 0x80);
  EXPECT_EQ(Botan::BigInt::decode(cert.serial_number()).bits(), 128u);

  // Validity: backdated 5 minutes; the spec's length, capped at the issuer's notAfter.
  EXPECT_EQ(cert.not_before().to_std_timepoint(), kNow - minutes(5));
  const TimePoint want_after =
      ca ? std::min(kNow + spec.validity, ca->certificate().not_after().to_std_timepoint())
         : kNow + spec.validity;
  EXPECT_EQ(cert.not_after().to_std_timepoint(), want_after);

  // Signature and chain.
  const auto issuer_key = issuer.load_subject_public_key();
  EXPECT_TRUE(cert.check_signature(*issuer_key));
  EXPECT_EQ(SignatureOid(cert), ExpectedSignatureOid(*issuer_key));
  if (ca) {
    const auto result = Validate(cert, ca->certificate());
    EXPECT_TRUE(result.successful_validation()) << result.result_string();
    if (spec.server_auth) {
      const auto server = Validate(cert, ca->certificate(), Botan::Usage_Type::TLS_SERVER_AUTH);
      EXPECT_TRUE(server.successful_validation()) << server.result_string();
    } else {
      EXPECT_FALSE(Validate(cert, ca->certificate(), Botan::Usage_Type::TLS_SERVER_AUTH)
                       .successful_validation());
    }
    if (spec.client_auth) {
      const auto client = Validate(cert, ca->certificate(), Botan::Usage_Type::TLS_CLIENT_AUTH);
      EXPECT_TRUE(client.successful_validation()) << client.result_string();
    }
  } else {
    EXPECT_TRUE(cert.is_self_signed());
    EXPECT_EQ(cert.subject_key_id(), cert.authority_key_id());
  }
}

Identity IdentityFor(Profile p) {
  return p == Profile::kKubelet ? Identity{"coreos2", {}, {}} : Identity{};
}

class IssueTest : public ::testing::TestWithParam<KeyAlgorithm> {};

// Every profile of both flavors with this algorithm for the CAs and the leaves.
TEST_P(IssueTest, EveryProfileOfBothFlavors) {
  const KeyAlgorithm a = GetParam();
  Botan::AutoSeeded_RNG rng;
  for (Flavor flavor : {Flavor::kModern, Flavor::kCoreos2016}) {
    const Config config = SeedConfig(flavor);
    std::map<Profile, std::unique_ptr<Ca>> cas;
    int slot = 0;
    for (Profile p : {Profile::kCa, Profile::kFrontProxyCa, Profile::kEtcdCa}) {
      if (!profile_in_flavor(p, flavor)) continue;
      const CertSpec spec = make_spec(config, p);
      cas[p] = Ca::create(spec, CopyKey(Key(a, slot++)), kNow, rng);
      ExpectCertificate(cas[p]->certificate(), spec, cas[p]->key(), nullptr, flavor);
    }
    std::set<std::string> serials;
    for (Profile p : all_profiles()) {
      if (profile_is_ca(p) || !profile_in_flavor(p, flavor)) continue;
      const CertSpec spec =
          p == Profile::kUser ? user_spec(config, {"alice", {"devs", "qa"}, std::chrono::hours(24)})
                              : make_spec(config, p, IdentityFor(p));
      const Ca& ca = *cas.at(issuer_of(p));
      const Botan::Private_Key& key = Key(a, 10);
      const auto cert = ca.issue(spec, key, kNow, random_serial(rng), rng);
      ExpectCertificate(cert, spec, key, &ca, flavor);
      EXPECT_TRUE(serials.insert(serial_hex(cert)).second) << "serials are unique";
      // Not trusted by another CA of the same cluster.
      if (issuer_of(p) != Profile::kCa && cas.count(Profile::kCa)) {
        EXPECT_FALSE(Validate(cert, cas.at(Profile::kCa)->certificate()).successful_validation());
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Algorithms, IssueTest,
                         ::testing::Values(KeyAlgorithm::kRsa2048, KeyAlgorithm::kRsa3072,
                                           KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEcdsaP384,
                                           KeyAlgorithm::kEd25519),
                         [](const auto& info) {
                           std::string n = to_string(info.param);
                           n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
                           return n;
                         });

// RSA-4096 is slow to generate: one key, used as a CA and as a leaf.
TEST(Issue, Rsa4096AsCaAndAsLeaf) {
  Botan::AutoSeeded_RNG rng;
  const Config config = SeedConfig(Flavor::kModern);
  const Botan::Private_Key& big = Key(KeyAlgorithm::kRsa4096, 0);
  EXPECT_EQ(big.key_length(), 4096u);

  const CertSpec ca_spec = make_spec(config, Profile::kCa);
  const auto rsa_ca = Ca::create(ca_spec, CopyKey(big), kNow, rng);
  ExpectCertificate(rsa_ca->certificate(), ca_spec, big, nullptr, Flavor::kModern);
  const CertSpec api = make_spec(config, Profile::kApiserver);
  const Botan::Private_Key& p256 = Key(KeyAlgorithm::kEcdsaP256, 10);
  ExpectCertificate(rsa_ca->issue(api, p256, kNow, random_serial(rng), rng), api, p256,
                    rsa_ca.get(), Flavor::kModern);

  const auto ec_ca = Ca::create(ca_spec, CopyKey(Key(KeyAlgorithm::kEcdsaP256, 0)), kNow, rng);
  const CertSpec kubelet = make_spec(config, Profile::kKubelet, {"coreos2", {}, {}});
  ExpectCertificate(ec_ca->issue(kubelet, big, kNow, random_serial(rng), rng), kubelet, big,
                    ec_ca.get(), Flavor::kModern);
}

// The leaf's key, not the CA's, decides keyEncipherment.
TEST(Issue, KeyUsageFollowsTheSubjectKeyNotTheCa) {
  Botan::AutoSeeded_RNG rng;
  const Config config = SeedConfig(Flavor::kModern);
  const CertSpec ca_spec = make_spec(config, Profile::kCa);
  const CertSpec admin = make_spec(config, Profile::kAdmin);
  const std::pair<KeyAlgorithm, KeyAlgorithm> pairs[] = {
      {KeyAlgorithm::kRsa2048, KeyAlgorithm::kEcdsaP256},
      {KeyAlgorithm::kRsa2048, KeyAlgorithm::kEd25519},
      {KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kRsa2048},
      {KeyAlgorithm::kEd25519, KeyAlgorithm::kEcdsaP384},
      {KeyAlgorithm::kEcdsaP384, KeyAlgorithm::kRsa2048},
  };
  for (const auto& [ca_algo, leaf_algo] : pairs) {
    const auto ca = Ca::create(ca_spec, CopyKey(Key(ca_algo, 0)), kNow, rng);
    const Botan::Private_Key& key = Key(leaf_algo, 10);
    const auto cert = ca->issue(admin, key, kNow, random_serial(rng), rng);
    ExpectCertificate(cert, admin, key, ca.get(), Flavor::kModern);
    EXPECT_EQ(bool(cert.constraints() & Botan::KEY_ENCIPHERMENT),
              leaf_algo == KeyAlgorithm::kRsa2048)
        << to_string(ca_algo) << " CA, " << to_string(leaf_algo) << " leaf";
  }
}

TEST(Issue, NotAfterIsCappedAtTheCasNotAfter) {
  Botan::AutoSeeded_RNG rng;
  const Config config = SeedConfig(Flavor::kModern);
  CertSpec ca_spec = make_spec(config, Profile::kCa);
  ca_spec.validity = hours(2);
  const auto ca = Ca::create(ca_spec, CopyKey(Key(KeyAlgorithm::kEcdsaP256, 0)), kNow, rng);
  EXPECT_EQ(ca->certificate().not_after().to_std_timepoint(), kNow + hours(2));

  const Botan::Private_Key& key = Key(KeyAlgorithm::kEcdsaP256, 10);
  CertSpec spec = make_spec(config, Profile::kAdmin);
  ASSERT_EQ(spec.validity, hours(8760));
  auto cert = ca->issue(spec, key, kNow, random_serial(rng), rng);
  EXPECT_EQ(cert.not_after().to_std_timepoint(), kNow + hours(2));
  ExpectCertificate(cert, spec, key, ca.get(), Flavor::kModern);

  // Issued later, the cap still holds; a short validity is kept as it is.
  cert = ca->issue(spec, key, kNow + minutes(90), random_serial(rng), rng);
  EXPECT_EQ(cert.not_before().to_std_timepoint(), kNow + minutes(85));
  EXPECT_EQ(cert.not_after().to_std_timepoint(), kNow + hours(2));
  spec.validity = minutes(30);
  cert = ca->issue(spec, key, kNow, random_serial(rng), rng);
  EXPECT_EQ(cert.not_after().to_std_timepoint(), kNow + minutes(30));

  // Path validation agrees: valid within, expired after the CA.
  EXPECT_TRUE(Validate(cert, ca->certificate(), Botan::Usage_Type::UNSPECIFIED, kNow + minutes(20))
                  .successful_validation());
  EXPECT_FALSE(Validate(cert, ca->certificate(), Botan::Usage_Type::UNSPECIFIED, kNow + hours(3))
                   .successful_validation());
  EXPECT_FALSE(Validate(cert, ca->certificate(), Botan::Usage_Type::UNSPECIFIED, kNow - minutes(10))
                   .successful_validation());
}

TEST(Issue, IpV6SansAreEncoded) {
  Botan::AutoSeeded_RNG rng;
  const Config config = SeedConfig(Flavor::kModern);
  const auto ca = Ca::create(make_spec(config, Profile::kEtcdCa),
                             CopyKey(Key(KeyAlgorithm::kEcdsaP256, 0)), kNow, rng);
  const CertSpec spec = make_spec(config, Profile::kEtcdServer);
  const auto cert =
      ca->issue(spec, Key(KeyAlgorithm::kEcdsaP256, 10), kNow, random_serial(rng), rng);
  const Names sans = SansOf(cert);
  EXPECT_EQ(Sorted(sans.ips), Sorted({"127.0.0.1", "::1", "192.168.24.11"}));
  EXPECT_EQ(Sorted(sans.dns), Sorted({"localhost", "coreos1"}));

  const auto ca2 = Ca::create(make_spec(config, Profile::kCa),
                              CopyKey(Key(KeyAlgorithm::kEcdsaP256, 1)), kNow, rng);
  const auto api = ca2->issue(make_spec(config, Profile::kApiserver),
                              Key(KeyAlgorithm::kEcdsaP256, 10), kNow, random_serial(rng), rng);
  EXPECT_EQ(Sorted(SansOf(api).ips), Sorted({"10.3.0.1", "192.168.24.11", "fd00::10"}));
  EXPECT_EQ(Sorted(SansOf(api).dns),
            Sorted({"kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local", "coreos1"}));
}

// What init compares a kept certificate with, and renewal re-issues: IPv6 SANs included.
TEST(IdentityOf, ReadsBackTheSpecWithIpv6Sans) {
  Botan::AutoSeeded_RNG rng;
  const Config config = SeedConfig(Flavor::kModern);
  const auto ca = Ca::create(make_spec(config, Profile::kEtcdCa),
                             CopyKey(Key(KeyAlgorithm::kEcdsaP256, 0)), kNow, rng);
  const CertSpec spec = make_spec(config, Profile::kEtcdPeer);
  const auto cert =
      ca->issue(spec, Key(KeyAlgorithm::kEcdsaP256, 10), kNow, random_serial(rng), rng);
  const CertSpec back = identity_of(cert, Profile::kEtcdPeer);
  EXPECT_EQ(back.common_name, spec.common_name);
  EXPECT_EQ(Sorted(back.dns_names), Sorted(spec.dns_names));
  EXPECT_EQ(Sorted(back.ip_addresses), Sorted({"127.0.0.1", "::1", "192.168.24.11"}));
  EXPECT_TRUE(back.server_auth);
  EXPECT_TRUE(back.client_auth);
}

// The service's path signs the TBSCertificate itself (no parse back): the same bytes
// X509_CA::make_cert makes from the same fields (Ed25519 signs deterministically), and the
// record made from what it knows is the record read back from the certificate.
TEST(Issue, IssueDerIsMakeCertsCertificateAndRecord) {
  Botan::AutoSeeded_RNG rng;
  const Config config = SeedConfig(Flavor::kModern);
  auto ca = Ca::create(make_spec(config, Profile::kCa), CopyKey(Key(KeyAlgorithm::kEd25519, 0)),
                       kNow, rng);
  ca->set_crl_url("https://10.0.0.1:8443/v1/crl");
  for (const Profile p : {Profile::kKubelet, Profile::kApiserver, Profile::kAdmin}) {
    const CertSpec spec = make_spec(config, p, Identity{"coreos2", {"192.168.24.12"}, {}});
    const auto& key = Key(KeyAlgorithm::kEcdsaP256, 10);
    const Botan::BigInt serial = random_serial(rng);
    const IssuedCert out = ca->issue_der(spec, key, kNow, serial, rng);
    const Botan::X509_Certificate cert(out.der);
    Botan::AlgorithmIdentifier algo;
    std::unique_ptr<Botan::PK_Signer> signer(
        Botan::choose_sig_format(ca->key(), rng, signature_hash(ca->key()), algo));
    const auto reference = Botan::X509_CA::make_cert(
        signer.get(), rng, serial, algo, key.subject_public_key(), cert.not_before(),
        cert.not_after(), ca->certificate().subject_dn(), cert.subject_dn(), cert.v3_extensions());
    EXPECT_EQ(reference.BER_encode(), out.der) << to_string(p);
    EXPECT_EQ(out.serial, serial_hex(cert));
    EXPECT_EQ(out.subject, dn_text(cert.subject_dn()));
    EXPECT_EQ(out.not_after, cert.not_after().to_std_timepoint());
    const CertRecord fast = record_of(out, spec, key, to_string(p), "token:abc123", "coreos2");
    const CertRecord read = record_of(cert, to_string(p), "token:abc123", "coreos2");
    EXPECT_EQ(fast.serial, read.serial);
    EXPECT_EQ(fast.subject, read.subject);
    EXPECT_EQ(fast.sans, read.sans) << to_string(p);
    EXPECT_EQ(fast.not_before, read.not_before);
    EXPECT_EQ(fast.not_after, read.not_after);
    EXPECT_EQ(fast.pem, read.pem);
    EXPECT_EQ(fast.key_hash, read.key_hash);
    EXPECT_EQ(fast.node, read.node);
    EXPECT_EQ(fast.identity, read.identity);
  }
}

TEST(Issue, CrlDistributionPointWhenConfigured) {
  Botan::AutoSeeded_RNG rng;
  const Config config = SeedConfig(Flavor::kModern);
  const auto ca = Ca::create(make_spec(config, Profile::kCa),
                             CopyKey(Key(KeyAlgorithm::kEcdsaP256, 0)), kNow, rng);
  const Botan::OID crl_dp("2.5.29.31");
  const CertSpec spec = make_spec(config, Profile::kAdmin);
  const auto& key = Key(KeyAlgorithm::kEcdsaP256, 10);
  EXPECT_EQ(ca->issue(spec, key, kNow, random_serial(rng), rng)
                .v3_extensions()
                .extensions_raw()
                .count(crl_dp),
            0u);
  const std::string url = "https://192.168.24.11:8443/v1/crl";
  ca->set_crl_url(url);
  const auto raw =
      ca->issue(spec, key, kNow, random_serial(rng), rng).v3_extensions().extensions_raw();
  ASSERT_EQ(raw.count(crl_dp), 1u);
  // DistributionPoint { fullName [0] { uniformResourceIdentifier [6] url } }
  Botan::BER_Decoder der(raw.at(crl_dp).first);
  Botan::BER_Decoder points = der.start_cons(Botan::SEQUENCE);
  Botan::BER_Decoder point = points.start_cons(Botan::SEQUENCE);
  Botan::BER_Decoder name = point.start_cons(Botan::ASN1_Tag(0), Botan::CONTEXT_SPECIFIC);
  Botan::BER_Decoder full = name.start_cons(Botan::ASN1_Tag(0), Botan::CONTEXT_SPECIFIC);
  const Botan::BER_Object uri = full.get_next_object();
  EXPECT_TRUE(uri.is_a(6, Botan::CONTEXT_SPECIFIC));
  EXPECT_EQ(Text(uri), url);
}

TEST(Issue, ConcurrentIssuanceFromOneCa) {
  Botan::AutoSeeded_RNG rng;
  const Config config = SeedConfig(Flavor::kModern);
  const auto ca = Ca::create(make_spec(config, Profile::kCa),
                             CopyKey(Key(KeyAlgorithm::kEcdsaP256, 0)), kNow, rng);
  const CertSpec spec = make_spec(config, Profile::kKubeProxy);
  const Botan::Private_Key& key = Key(KeyAlgorithm::kEcdsaP256, 10);
  constexpr int kThreads = 4, kEach = 8;
  std::vector<std::vector<Botan::X509_Certificate>> issued(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Botan::AutoSeeded_RNG thread_rng;
      for (int i = 0; i < kEach; ++i) {
        issued[t].push_back(ca->issue(spec, key, kNow, random_serial(thread_rng), thread_rng));
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> serials;
  for (const auto& list : issued) {
    for (const auto& cert : list) {
      EXPECT_TRUE(Validate(cert, ca->certificate()).successful_validation());
      serials.insert(serial_hex(cert));
    }
  }
  EXPECT_EQ(serials.size(), size_t(kThreads * kEach));
}

TEST(RandomSerial, PositiveAnd128Bits) {
  Botan::AutoSeeded_RNG rng;
  std::set<std::string> seen;
  for (int i = 0; i < 500; ++i) {
    const Botan::BigInt s = random_serial(rng);
    EXPECT_TRUE(s.is_positive());
    EXPECT_EQ(s.bits(), 128u);
    seen.insert(s.to_hex_string());
  }
  EXPECT_EQ(seen.size(), 500u);
}

TEST(CaPin, IsSha256OfTheSubjectPublicKeyInfo) {
  Botan::AutoSeeded_RNG rng;
  const Config config = SeedConfig(Flavor::kModern);
  const auto ca = Ca::create(make_spec(config, Profile::kCa),
                             CopyKey(Key(KeyAlgorithm::kEcdsaP256, 0)), kNow, rng);
  const std::string pin = ca_pin(ca->certificate());
  auto sha = Botan::HashFunction::create_or_throw("SHA-256");
  const std::vector<uint8_t> spki = Botan::X509::BER_encode(ca->key());
  EXPECT_EQ(pin, "sha256:" + Botan::hex_encode(sha->process(spki), false));
  EXPECT_EQ(pin.size(), 7u + 64u);
  // The pin depends on the key only: a CA re-made with the same key has the same pin.
  const auto again = Ca::create(make_spec(config, Profile::kCa),
                                CopyKey(Key(KeyAlgorithm::kEcdsaP256, 0)), kNow + hours(1), rng);
  EXPECT_EQ(ca_pin(again->certificate()), pin);
  const auto other = Ca::create(make_spec(config, Profile::kCa),
                                CopyKey(Key(KeyAlgorithm::kEcdsaP256, 1)), kNow, rng);
  EXPECT_NE(ca_pin(other->certificate()), pin);
}

class CaFiles : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("kubeca-ca-test"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }
  std::string LoadError(const fs::path& cert, const fs::path& key) {
    try {
      Ca::load(cert, key);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "OK";
  }
  fs::path dir_;
};

TEST_F(CaFiles, LoadRoundTripsAndRefusesMismatches) {
  Botan::AutoSeeded_RNG rng;
  const Config config = SeedConfig(Flavor::kModern);
  const auto ca = Ca::create(make_spec(config, Profile::kCa),
                             CopyKey(Key(KeyAlgorithm::kEcdsaP256, 0)), kNow, rng);
  const fs::path cert = Write("ca.pem", ca->certificate_pem());
  const fs::path key = Write("ca-key.pem", private_key_pem(ca->key()));
  const auto loaded = Ca::load(cert, key);
  EXPECT_EQ(loaded->certificate(), ca->certificate());
  EXPECT_TRUE(key_matches(loaded->certificate(), loaded->key()));
  // The loaded CA issues certificates the original CA's certificate verifies.
  const CertSpec spec = make_spec(config, Profile::kScheduler);
  const auto leaf =
      loaded->issue(spec, Key(KeyAlgorithm::kEd25519, 10), kNow, random_serial(rng), rng);
  EXPECT_TRUE(Validate(leaf, ca->certificate()).successful_validation());

  const fs::path other_key =
      Write("other-key.pem", private_key_pem(Key(KeyAlgorithm::kEcdsaP256, 1)));
  EXPECT_EQ(LoadError(cert, other_key), other_key.string() + " is not the key of " + cert.string());

  const fs::path leaf_pem = Write("leaf.pem", to_pem(leaf));
  const fs::path leaf_key = Write("leaf-key.pem", private_key_pem(Key(KeyAlgorithm::kEd25519, 10)));
  EXPECT_EQ(LoadError(leaf_pem, leaf_key), leaf_pem.string() + " is not a CA certificate");

  const fs::path garbage = Write("garbage-key.pem", "not a key\n");
  EXPECT_EQ(LoadError(cert, garbage).rfind(garbage.string() + ": not a private key", 0), 0u);
}

}  // namespace
}  // namespace kubeca

#include "kubeca/crl.h"

#include <botan/der_enc.h>
#include <botan/hash.h>
#include <botan/hex.h>
#include <botan/pem.h>
#include <botan/pkix_types.h>
#include <botan/pubkey.h>
#include <botan/x509_ca.h>
#include <botan/x509_crl.h>
#include <botan/x509_ext.h>

#include <algorithm>

#include "kubeca/config.h"
#include "kubeca/keys.h"
#include "kubeca/net.h"
#include "kubeca/pki.h"

namespace kubeca {

namespace {
struct Reason {
  int code;
  const char* name;
};
constexpr Reason kReasons[] = {
    {0, "unspecified"},        {1, "keyCompromise"},      {2, "cACompromise"},
    {3, "affiliationChanged"}, {4, "superseded"},         {5, "cessationOfOperation"},
    {6, "certificateHold"},    {9, "privilegeWithdrawn"}, {10, "aACompromise"}};
}  // namespace

std::optional<int> parse_revocation_reason(const std::string& name) {
  for (const auto& r : kReasons) {
    if (name == r.name) return r.code;
  }
  return std::nullopt;
}

std::string revocation_reason_name(int code) {
  for (const auto& r : kReasons) {
    if (code == r.code) return r.name;
  }
  return "unspecified";
}

std::string Crl::pem() const { return Botan::PEM_Code::encode(der, "X509 CRL"); }

namespace {

// One revokedCertificates entry, encoded here because Botan's CRL_Entry stamps the time of
// encoding as the revocation date: a revocation date is the moment of revocation, always.
std::vector<uint8_t> crl_entry(const CertRecord& r) {
  std::vector<uint8_t> out;
  Botan::DER_Encoder der(out);
  der.start_cons(Botan::SEQUENCE)
      .encode(Botan::BigInt("0x" + r.serial))
      .encode(Botan::X509_Time(std::chrono::system_clock::from_time_t(r.revoked_at)));
  if (r.reason != 0) {  // RFC 5280: unspecified is left out
    Botan::Extensions ext;
    ext.add(new Botan::Cert_Extension::CRL_ReasonCode(static_cast<Botan::CRL_Code>(r.reason)));
    der.start_cons(Botan::SEQUENCE).encode(ext).end_cons();
  }
  der.end_cons();
  return out;
}

}  // namespace

// The TBSCertList is built here as X509_CA::make_crl builds it, because Botan 2 numbers a
// CRL only as its predecessor's number + 1 and has no way to set it from the store.
Crl make_crl(const Ca& ca, const std::vector<CertRecord>& records, int64_t number, TimePoint now,
             std::chrono::seconds lifetime) {
  Botan::RandomNumberGenerator& rng = thread_rng();
  Botan::AlgorithmIdentifier sig_algo;
  std::unique_ptr<Botan::PK_Signer> signer(
      Botan::choose_sig_format(ca.key(), rng, signature_hash(ca.key()), sig_algo));
  const auto& ca_subject = ca.certificate().subject_dn();
  std::vector<std::vector<uint8_t>> entries;
  for (const auto& r : records) {
    if (r.status != "revoked" || r.pem.empty()) continue;
    if (parse_certificate_pem(r.pem).issuer_dn() != ca_subject) continue;
    entries.push_back(crl_entry(r));
  }
  Botan::Extensions ext;
  ext.add(new Botan::Cert_Extension::Authority_Key_ID(ca.certificate().subject_key_id()));
  ext.add(new Botan::Cert_Extension::CRL_Number(static_cast<size_t>(number)));
  // X509_Time has whole seconds; thisUpdate and nextUpdate are read back from it.
  const auto this_update = std::chrono::system_clock::from_time_t(unix_seconds(now));
  Botan::DER_Encoder tbs;
  tbs.start_cons(Botan::SEQUENCE)
      .encode(static_cast<size_t>(1))  // v2
      .encode(sig_algo)
      .encode(ca_subject)
      .encode(Botan::X509_Time(this_update))
      .encode(Botan::X509_Time(this_update + lifetime));
  if (!entries.empty()) {
    tbs.start_cons(Botan::SEQUENCE);
    for (const auto& e : entries) tbs.raw_bytes(e);
    tbs.end_cons();
  }
  tbs.start_explicit(0).start_cons(Botan::SEQUENCE).encode(ext).end_cons().end_explicit();
  tbs.end_cons();
  Crl out;
  out.der = Botan::X509_Object::make_signed(signer.get(), rng, sig_algo, tbs.get_contents());
  out.this_update = this_update;
  out.next_update = this_update + lifetime;
  out.number = number;
  return out;
}

Crl make_crl(const Ca& ca, Store& store, TimePoint now, std::chrono::seconds lifetime) {
  const CrlBasis basis = store.next_crl();
  Crl out = make_crl(ca, basis.revoked, basis.number, now, lifetime);
  out.revocations = basis.revocations;
  return out;
}

PublishedCrl published_of(const Crl& crl) {
  PublishedCrl p;
  p.number = crl.number;
  p.revocations = crl.revocations;
  p.this_update = unix_seconds(crl.this_update);
  p.next_update = unix_seconds(crl.next_update);
  p.der.assign(crl.der.begin(), crl.der.end());
  return p;
}

Crl make_and_publish_crl(const Ca& ca, Store& store, TimePoint now, std::chrono::seconds lifetime) {
  Crl out = make_crl(ca, store, now, lifetime);
  store.publish_crl(published_of(out));
  return out;
}

std::string key_hash_of(const std::vector<uint8_t>& spki) {
  auto sha = Botan::HashFunction::create_or_throw("SHA-256");
  return Botan::hex_encode(sha->process(spki), false);
}

std::string identity_of_record(const CertRecord& r) {
  std::vector<std::string> sans = r.sans;
  std::sort(sans.begin(), sans.end());
  std::string out = r.profile + "\n" + r.subject + "\n";
  for (const auto& s : sans) out += s + ",";
  return out + "\n" + r.node;
}

namespace {

// A kubelet's name is in its subject: CN=system:node:NAME (modern), CN=NAME (the seed).
std::string node_of(const std::string& profile, const std::string& node, const std::string& cn) {
  if (!node.empty() || (profile != "kubelet" && !profile.empty())) return node;
  const std::string prefix = "system:node:";
  if (cn.rfind(prefix, 0) == 0) return cn.substr(prefix.size());
  return profile == "kubelet" ? cn : "";
}

}  // namespace

CertRecord record_of(const Botan::X509_Certificate& cert, const std::string& profile,
                     const std::string& requester, const std::string& node) {
  CertRecord r;
  r.serial = serial_hex(cert);
  r.profile = profile;
  r.subject = dn_text(cert.subject_dn());
  for (const auto& [type, value] : cert.subject_alt_name().get_attributes()) {
    r.sans.push_back(type + ":" + value);
  }
  r.not_before = unix_seconds(cert.not_before().to_std_timepoint());
  r.not_after = unix_seconds(cert.not_after().to_std_timepoint());
  r.requester = requester;
  r.pem = to_pem(cert);
  r.key_hash = key_hash_of(cert.subject_public_key_info());
  const auto cn = cert.subject_info("X520.CommonName");
  r.node = node_of(profile, node, cn.empty() ? "" : cn.front());
  r.identity = identity_of_record(r);
  return r;
}

CertRecord record_of(const IssuedCert& cert, const CertSpec& spec, const Botan::Public_Key& key,
                     const std::string& profile, const std::string& requester,
                     const std::string& node) {
  CertRecord r;
  r.serial = cert.serial;
  r.profile = profile;
  r.subject = cert.subject;
  // As Botan 2 reads the names back (what record_of above stores): DNS names, then the IPv4
  // addresses; it skips IPv6 ones.
  for (const auto& d : spec.dns_names) r.sans.push_back("DNS:" + d);
  for (const auto& s : spec.ip_addresses) {
    const auto ip = parse_ip(s);
    if (ip && !ip->v6) r.sans.push_back("IP:" + ip->str());
  }
  r.not_before = unix_seconds(cert.not_before);
  r.not_after = unix_seconds(cert.not_after);
  r.requester = requester;
  r.pem = Botan::PEM_Code::encode(cert.der, "CERTIFICATE");
  r.key_hash = key_hash_of(key.subject_public_key());
  r.node = node_of(profile, node, spec.common_name);
  r.identity = identity_of_record(r);
  return r;
}

std::optional<CertRecord> revoke_certificate(Store& store, const Ca& ca,
                                             const std::string& serial_in,
                                             const std::string& cert_pem, int reason, int64_t now) {
  std::string serial;
  if (!cert_pem.empty()) {
    Botan::X509_Certificate cert;
    try {
      cert = parse_certificate_pem(cert_pem);
    } catch (const std::exception& e) {
      throw InputError(std::string("not a certificate: ") + e.what());
    }
    if (!ca.issued(cert)) throw InputError("the certificate was not issued by this CA");
    serial = serial_hex(cert);
    if (!store.find_certificate(serial)) store.insert_certificate(record_of(cert, "", "revoke"));
  } else {
    for (char ch : serial_in) {
      if (ch != ':') serial += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
  }
  if (!store.revoke_certificate(serial, reason, now)) return std::nullopt;
  return store.find_certificate(serial);
}

std::vector<CertRecord> revoke_node(Store& store, const std::string& node, int reason,
                                    int64_t now) {
  std::vector<CertRecord> out;
  if (node.empty()) return out;
  for (const auto& c : store.certificates_of_node(node)) {
    if (c.not_after <= now) continue;
    if (store.revoke_certificate(c.serial, reason, now)) {
      if (auto rec = store.find_certificate(c.serial)) out.push_back(*rec);
    }
  }
  return out;
}

}  // namespace kubeca

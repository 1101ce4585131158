// `certs list` and `check-expiration`: every certificate of a PKI folder, each once.
#include <botan/x509cert.h>

#include <algorithm>
#include <map>

#include "kubeca/fs.h"
#include "kubeca/kubeconfig.h"
#include "kubeca/pki.h"
#include "pki_internal.h"

namespace kubeca {

using detail::visible_files;

namespace {

// A certificate's name from its key file's, "" for another file: "etcd/server-key.pem" ->
// "etcd/server".
std::string name_of_key(const std::string& rel) {
  const std::string suffix = "-key.pem";
  if (rel.size() <= suffix.size() ||
      rel.compare(rel.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return "";
  }
  return rel.substr(0, rel.size() - suffix.size());
}

bool is_ca_name(const std::string& name) {
  return name == "ca" || (name.size() > 3 && (name.compare(name.size() - 3, 3, "-ca") == 0 ||
                                              name.compare(name.size() - 3, 3, "/ca") == 0));
}

// What is wrong in the folder: a key whose certificate is gone (MISSING, also a dangling
// symlink), a certificate or kubeconfig that does not parse (INVALID).
std::vector<CertStatus> broken_entries(const fs::path& dir,
                                       const std::map<std::string, std::string>& invalid) {
  std::vector<CertStatus> out;
  for (const auto& [name, why] : invalid) {
    CertStatus s;
    s.name = name;
    s.status = "invalid";
    s.error = why;
    s.is_ca = is_ca_name(name);
    out.push_back(std::move(s));
  }
  for (const fs::path& p : visible_files(dir)) {
    const std::string name = name_of_key(p.lexically_relative(dir).string());
    if (name.empty() || file_exists(cert_path(dir, name)) || invalid.count(name)) continue;
    CertStatus s;
    s.name = name;
    s.status = "missing";
    s.error = cert_path(dir, name).string() +
              (fs::is_symlink(cert_path(dir, name)) ? " is a dangling symlink" : " is gone") +
              " (its key is there)";
    s.is_ca = is_ca_name(name);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

std::vector<CertStatus> list_certificates(const fs::path& dir, TimePoint now,
                                          std::chrono::seconds warn) {
  if (!fs::is_directory(dir)) throw InputError("--pki: " + dir.string() + " is not a folder");
  struct Entry {
    std::string name;
    Botan::X509_Certificate cert;
    bool conf;
  };
  std::vector<Entry> certs;
  std::map<std::string, std::string> invalid;  // name -> why
  for (const fs::path& p : visible_files(dir)) {
    const std::string rel = p.lexically_relative(dir).string();
    const std::string fname = p.filename().string();
    const bool pem = p.extension() == ".pem" && fname.find("-key.pem") == std::string::npos;
    const std::string name = pem ? rel.substr(0, rel.size() - 4) : rel;
    try {
      if (pem) {
        certs.push_back({name, parse_certificate_pem(read_file(p)), false});
      } else if (p.extension() == ".conf") {
        const auto creds = read_kubeconfig(p.string());
        if (!creds.client_cert_pem.empty()) {
          certs.push_back({name, parse_certificate_pem(creds.client_cert_pem), true});
        }
      }
    } catch (const std::exception& e) {
      invalid[name] = p.string() + ": " + e.what();  // shown, never dropped
    }
  }
  std::map<std::string, std::string> ca_names;  // subject DN -> file name
  for (const auto& e : certs) {
    if (e.cert.is_CA_cert()) ca_names[dn_text(e.cert.subject_dn())] = e.name;
  }
  // A PEM file a kubeconfig embeds is the kubeconfig's row (kubeadm shows admin.conf).
  std::map<std::string, std::vector<std::string>> copies;  // kubeconfig -> PEM names
  std::vector<bool> hidden(certs.size(), false);
  for (const auto& conf : certs) {
    if (!conf.conf) continue;
    for (size_t i = 0; i < certs.size(); ++i) {
      if (!certs[i].conf && certs[i].cert == conf.cert) {
        hidden[i] = true;
        copies[conf.name].push_back(certs[i].name);
      }
    }
  }
  std::vector<CertStatus> out;
  for (size_t i = 0; i < certs.size(); ++i) {
    if (hidden[i]) continue;
    const std::string& name = certs[i].name;
    const Botan::X509_Certificate& cert = certs[i].cert;
    CertStatus s;
    s.name = name;
    s.copies = copies[name];
    s.subject = dn_text(cert.subject_dn());
    const std::string issuer = dn_text(cert.issuer_dn());
    const bool self_signed = cert.is_CA_cert() && issuer == s.subject;
    s.issuer = self_signed ? "" : ca_names.count(issuer) ? ca_names[issuer] : issuer;
    s.serial = serial_hex(cert);
    s.not_before = cert.not_before().to_std_timepoint();
    s.not_after = cert.not_after().to_std_timepoint();
    s.is_ca = cert.is_CA_cert();
    // The key that signs (a CA's own for a CA row) must be in the folder to renew here.
    s.externally_managed = s.is_ca
                               ? !file_exists(key_path(dir, name))
                               : !ca_names.count(issuer) || !file_exists(key_path(dir, s.issuer));
    s.status = now < s.not_before         ? "not-yet-valid"
               : now >= s.not_after       ? "expired"
               : s.not_after - now < warn ? "expiring"
                                          : "valid";
    out.push_back(std::move(s));
  }
  for (auto& b : broken_entries(dir, invalid)) out.push_back(std::move(b));
  std::sort(out.begin(), out.end(), [](const CertStatus& a, const CertStatus& b) {
    if (a.is_ca != b.is_ca) return !a.is_ca;
    return a.name < b.name;
  });
  return out;
}

}  // namespace kubeca

// `certs renew`: offline renewal of a PKI folder's certificates with their own CA, as
// kubeadm's, with today's config and a dry run.
#include <botan/base64.h>
#include <botan/x509_ext.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <set>

#include "kubeca/crl.h"
#include "kubeca/fs.h"
#include "kubeca/keys.h"
#include "kubeca/kubeconfig.h"
#include "kubeca/node.h"
#include "kubeca/pki.h"
#include "pki_internal.h"

namespace kubeca {

using detail::visible_files;

namespace {

struct Found {
  std::string name;
  fs::path path;
  Botan::X509_Certificate cert;
  // A certificate found only inside a kubeconfig (no PEM file holds it): its key and PEM
  // as embedded; renewing it rewrites the kubeconfig alone.
  bool embedded = false;
  std::string cert_pem, key_pem;
};

std::vector<Found> pem_certificates(const fs::path& dir) {
  std::vector<Found> out;
  for (const fs::path& p : visible_files(dir)) {
    const std::string fname = p.filename().string();
    if (p.extension() != ".pem" || fname.find("-key.pem") != std::string::npos) {
      continue;
    }
    try {
      const std::string rel = p.lexically_relative(dir).string();
      out.push_back(
          {rel.substr(0, rel.size() - 4), p, parse_certificate_pem(read_file(p)), false, "", ""});
    } catch (const std::exception&) {
    }
  }
  std::sort(out.begin(), out.end(), [](const Found& a, const Found& b) { return a.name < b.name; });
  return out;
}

// What `certs renew NAME.conf` renews: the PEM file holding the kubeconfig's certificate, or
// the embedded certificate itself when no file holds it. Null when it embeds none.
std::optional<Found> kubeconfig_target(const fs::path& conf, const std::vector<Found>& pems) {
  const auto creds = read_kubeconfig(conf.string());
  if (creds.client_cert_pem.empty() || creds.client_key_pem.empty()) return std::nullopt;
  const auto cert = parse_certificate_pem(creds.client_cert_pem);
  for (const auto& f : pems) {
    if (f.cert == cert) return f;
  }
  return Found{conf.filename().string(), conf, cert, true, creds.client_cert_pem,
               creds.client_key_pem};
}

// The certificates only kubeconfigs hold, whose CA is in the folder: part of "all".
std::vector<Found> embedded_only(const fs::path& dir, const std::vector<Found>& pems) {
  std::vector<Found> out;
  for (const fs::path& conf : visible_files(dir)) {
    if (conf.extension() != ".conf") continue;
    std::optional<Found> f;
    try {
      f = kubeconfig_target(conf, pems);
    } catch (const std::exception&) {
      continue;  // an INVALID kubeconfig: certs renew refuses before it gets here
    }
    if (!f || !f->embedded) continue;
    for (const auto& c : pems) {
      if (c.cert.is_CA_cert() && c.cert.subject_dn() == f->cert.issuer_dn()) {
        f->name = conf.lexically_relative(dir).string();
        out.push_back(*f);
        break;
      }
    }
  }
  return out;
}

// Replaces the embedded client certificate (and key) in every kubeconfig holding `old_pem`;
// with dry, only names them.
std::vector<std::string> rewrite_kubeconfigs(const fs::path& dir, const std::string& old_pem,
                                             const std::string& new_pem,
                                             const std::string& new_key_pem, bool dry) {
  std::vector<std::string> out;
  const std::string old_b64 =
      Botan::base64_encode(reinterpret_cast<const uint8_t*>(old_pem.data()), old_pem.size());
  for (const fs::path& conf : visible_files(dir)) {
    if (conf.extension() != ".conf") continue;
    YAML::Node root;
    try {
      root = YAML::LoadFile(conf.string());
    } catch (const YAML::Exception&) {
      continue;
    }
    bool changed = false;
    for (auto u : root["users"]) {
      YAML::Node user = u["user"];
      if (user["client-certificate-data"] &&
          user["client-certificate-data"].as<std::string>() == old_b64) {
        user["client-certificate-data"] =
            Botan::base64_encode(reinterpret_cast<const uint8_t*>(new_pem.data()), new_pem.size());
        user["client-key-data"] = Botan::base64_encode(
            reinterpret_cast<const uint8_t*>(new_key_pem.data()), new_key_pem.size());
        changed = true;
      }
    }
    if (changed && dry) {
      out.push_back(conf.lexically_relative(dir).string());
    } else if (changed) {
      YAML::Emitter e;
      e << root;
      write_file_atomic(conf, std::string(e.c_str()) + "\n", 0600);
      out.push_back(conf.lexically_relative(dir).string());
    }
  }
  return out;
}

}  // namespace

namespace {

// The URI of the certificate's CRL distribution point; "" when it has none. (Botan's own
// crl_distribution_point() answers "URI: URL ", not the URL.)
std::string crl_url_in(const Botan::X509_Certificate& cert) {
  using Points = Botan::Cert_Extension::CRL_Distribution_Points;
  if (const auto* ext = cert.v3_extensions().get_extension_object_as<Points>()) {
    for (const auto& point : ext->distribution_points()) {
      const auto uris = point.point().get_attribute("URI");
      if (!uris.empty()) return uris.front();
    }
  }
  return "";
}

// The cluster CA of the folder (ca.pem); with a store, binds the store to it.
const Found* cluster_ca_of(const fs::path& dir, const std::vector<Found>& all, Store* store) {
  const Found* out = nullptr;
  for (const auto& c : all) {
    if (c.name == "ca" && c.cert.is_CA_cert()) out = &c;
  }
  if (store) {
    if (!out) {
      throw std::runtime_error(cert_path(dir, "ca").string() +
                               " not found: the store is bound to the cluster CA");
    }
    store->bind_ca(ca_pin(out->cert));
  }
  return out;
}

}  // namespace

namespace {

// What the certificate says, one item per subject field and SAN, for showing a change.
std::set<std::string> identity_items(const CertSpec& s) {
  std::set<std::string> out{"CN=" + s.common_name};
  for (const auto& o : s.organizations) out.insert("O=" + o);
  for (const auto& d : s.dns_names) out.insert("DNS:" + d);
  for (const auto& ip : s.ip_addresses) out.insert("IP:" + ip);
  return out;
}

// The spec today's config gives `f` when init makes it from the config (by file, or a
// kubeconfig's name without .conf) under the CA that signed it; null otherwise.
std::optional<CertSpec> config_spec(const std::vector<CertSpec>& planned, const Config* config,
                                    const Found& f, const std::string& issuer_name) {
  if (!config) return std::nullopt;
  const std::string file = f.embedded ? fs::path(f.name).replace_extension("").string() : f.name;
  for (const auto& spec : planned) {
    if (spec.file != file || profile_is_ca(spec.profile)) continue;
    if (make_spec(*config, issuer_of(spec.profile)).file == issuer_name) return spec;
  }
  return std::nullopt;
}

std::string external_ca_advice(const fs::path& dir, const Found& f, const Found& issuer) {
  const std::string where = f.path.string();
  return f.name + ": its CA " + issuer.name + " is externally managed (" +
         key_path(dir, issuer.name).string() +
         " is absent), so kubeca cannot sign it here; have that CA sign a new certificate " +
         "for the same names (kubeca certs inspect " + where + " shows them) and put it in " +
         "place of " + where + ", or put the CA's key at " + key_path(dir, issuer.name).string();
}

struct Plan {
  const Found* f;
  const Found* issuer;
  CertSpec spec;
  std::string key_pem;
  std::optional<Botan::X509_Certificate> cert;  // unset for a dry run or a skipped one
  Renewed report;
};

// Which certificates `name` means: all, a PEM name, or a kubeconfig (its PEM file when one
// holds the embedded certificate, else the certificate inside it).
std::vector<const Found*> renewal_targets(const fs::path& dir, const std::string& name,
                                          const std::vector<Found>& all,
                                          std::vector<Found>& conf_targets) {
  if (name == "all") {
    conf_targets = embedded_only(dir, all);
  } else if (fs::path(name).extension() == ".conf" && fs::is_regular_file(dir / name)) {
    if (auto f = kubeconfig_target(dir / name, all)) conf_targets.push_back(*f);
  }
  std::vector<const Found*> targets;
  for (const auto& f : all) {
    if (f.cert.is_CA_cert()) {
      if (f.name == name) {
        throw InputError(name +
                         " is a certificate authority: certs renew renews the certificates it "
                         "signed, not the CA (see the operator guide on the CA's end of life)");
      }
      continue;
    }
    const bool by_conf = !conf_targets.empty() && !conf_targets[0].embedded && name != "all" &&
                         conf_targets[0].path == f.path;
    if (name == "all" || f.name == name || by_conf) targets.push_back(&f);
  }
  for (const auto& f : conf_targets) {
    if (f.embedded && !f.cert.is_CA_cert()) targets.push_back(&f);
  }
  if (targets.empty()) {
    throw InputError("no certificate \"" + name + "\" in " + dir.string() +
                     " (see `kubeca certs list`)");
  }
  return targets;
}

// Everything decided, nothing written: the spec, the key, the changes, or why it is skipped.
std::vector<Plan> plan_renewals(const fs::path& dir, const std::string& name,
                                const std::vector<Found>& all,
                                const std::vector<const Found*>& targets,
                                const OfflineRenewOptions& options) {
  const std::vector<CertSpec> planned =
      options.config ? planned_certificates(*options.config) : std::vector<CertSpec>{};
  Botan::RandomNumberGenerator& rng = thread_rng();
  std::vector<Plan> plans;
  for (const Found* f : targets) {
    const Found* issuer = nullptr;
    for (const auto& c : all) {
      if (c.cert.is_CA_cert() && c.cert.subject_dn() == f->cert.issuer_dn()) issuer = &c;
    }
    if (!issuer) {
      throw std::runtime_error(f->name + ": its CA (" + dn_text(f->cert.issuer_dn()) +
                               ") is not in " + dir.string());
    }
    Plan p{f, issuer, identity_of(f->cert), "", std::nullopt, {}};
    p.report.name = f->name;
    p.report.old_serial = serial_hex(f->cert);
    if (auto s = config_spec(planned, options.config, *f, issuer->name)) p.spec = *s;
    const CertSpec old = identity_of(f->cert);
    p.report.old_identity = describe(old);
    p.report.new_identity = describe(p.spec);
    const auto before = identity_items(old), after = identity_items(p.spec);
    std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                        std::back_inserter(p.report.added));
    std::set_difference(before.begin(), before.end(), after.begin(), after.end(),
                        std::back_inserter(p.report.removed));
    if (!file_exists(key_path(dir, issuer->name))) {
      // External CA mode, as kubeadm's: a named one fails, "all" renews the others.
      if (name != "all") throw std::runtime_error(external_ca_advice(dir, *f, *issuer));
      p.report.skipped = external_ca_advice(dir, *f, *issuer);
      plans.push_back(std::move(p));
      continue;
    }
    const fs::path kp = f->embedded ? f->path : key_path(dir, f->name);
    p.key_pem = f->embedded ? f->key_pem : read_file(kp);
    if (options.rotate_key && !options.dry_run) {
      auto old_key = load_private_key_pem(p.key_pem);
      p.key_pem = private_key_pem(*generate_key(algorithm_of(*old_key), rng));
    } else if (!options.rotate_key) {
      detail::check_key_file(kp, *load_private_key_pem(p.key_pem),
                             "renew with --rotate-key for a new key");
    }
    plans.push_back(std::move(p));
  }
  return plans;
}

}  // namespace

std::vector<Renewed> renew_offline(const fs::path& dir, const std::string& name, TimePoint now,
                                   const OfflineRenewOptions& options, const Recording& recording) {
  if (!fs::is_directory(dir)) throw InputError("--pki: " + dir.string() + " is not a folder");
  // A dry run writes nothing, not even the lock file.
  std::optional<FolderLock> lock;
  if (!options.dry_run) lock.emplace(dir);
  const auto all = pem_certificates(dir);
  std::vector<Found> conf_targets;  // kubeconfigs: by name, or "all"'s embedded-only ones
  const auto targets = renewal_targets(dir, name, all, conf_targets);
  // Everything is issued before anything is written: a failure leaves the folder as it was.
  std::vector<Plan> plans = plan_renewals(dir, name, all, targets, options);
  const size_t renewable = static_cast<size_t>(std::count_if(
      plans.begin(), plans.end(), [](const Plan& p) { return p.report.skipped.empty(); }));
  if (renewable == 0) {
    throw std::runtime_error("certs renew " + name +
                             ": nothing can be renewed here: " + plans.front().report.skipped);
  }
  std::vector<Renewed> out;
  if (options.dry_run) {
    for (auto& p : plans) {
      if (p.report.skipped.empty()) {
        const std::string pem = p.f->embedded ? p.f->cert_pem : read_file(p.f->path);
        p.report.kubeconfigs = rewrite_kubeconfigs(dir, pem, "", "", true);
      }
      out.push_back(std::move(p.report));
    }
    return out;
  }
  const Found* cluster_ca = cluster_ca_of(dir, all, recording.store);
  std::map<std::string, std::unique_ptr<Ca>> cas;
  Botan::RandomNumberGenerator& rng = thread_rng();
  for (auto& p : plans) {
    if (!p.report.skipped.empty()) continue;
    auto& ca = cas[p.issuer->name];
    if (!ca) ca = Ca::load(p.issuer->path, key_path(dir, p.issuer->name));
    // The service's CRL for the cluster CA's leaves when the config names it; else as before.
    ca->set_crl_url(p.issuer == cluster_ca && !recording.crl_url.empty() ? recording.crl_url
                                                                         : crl_url_in(p.f->cert));
    p.cert = ca->issue(p.spec, *load_private_key_pem(p.key_pem), now, random_serial(rng), rng);
  }
  if (recording.store) {
    // Before any file is replaced; the profile is the old record's when the store has it.
    std::vector<CertRecord> records;
    for (const auto& p : plans) {
      if (!p.cert) continue;
      const auto old = recording.store->find_certificate(serial_hex(p.f->cert));
      records.push_back(record_of(*p.cert, old ? old->profile : "", "certs-renew"));
    }
    recording.store->record_certificates(records);
  }
  for (auto& p : plans) {
    if (p.cert) {
      const std::string old_pem = p.f->embedded ? p.f->cert_pem : read_file(p.f->path);
      const std::string new_pem = to_pem(*p.cert);
      if (!p.f->embedded) install_pair(p.f->path, key_path(dir, p.f->name), new_pem, p.key_pem);
      p.report.new_serial = serial_hex(*p.cert);
      p.report.kubeconfigs = rewrite_kubeconfigs(dir, old_pem, new_pem, p.key_pem, false);
    }
    out.push_back(std::move(p.report));
  }
  return out;
}

}  // namespace kubeca

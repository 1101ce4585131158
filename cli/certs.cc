// `kubeca certs list|check-expiration|renew|inspect|ca-hash`: the PKI folder, as kubeadm's
// `certs` shows and renews it.
#include "certs.h"

#include <cctype>
#include <iostream>

#include "kubeca/config.h"
#include "kubeca/pki.h"
#include "output.h"

namespace kubeca::cli {

namespace {

std::string upper(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

int64_t residual_seconds(const CertStatus& c, TimePoint now) {
  return c.broken() ? 0
                    : std::chrono::duration_cast<std::chrono::seconds>(c.not_after - now).count();
}

// check-expiration -o json|yaml: kubeadm's CertificateExpirationInfo (output.kubeadm.k8s.io),
// field for field, plus kubeca's serial, subject, status and error.
nlohmann::json expiration_info(const std::vector<CertStatus>& certs, TimePoint now) {
  nlohmann::json out = {{"kind", "CertificateExpirationInfo"},
                        {"apiVersion", "output.kubeca/v1alpha1"},
                        {"certificates", nlohmann::json::array()},
                        {"certificateAuthorities", nlohmann::json::array()}};
  for (const auto& c : certs) {
    nlohmann::json e = {{"name", c.name},
                        {"expirationDate",
                         c.broken() ? nlohmann::json() : nlohmann::json(format_time(c.not_after))},
                        {"residualTime", residual_seconds(c, now)},
                        {"externallyManaged", c.externally_managed},
                        {"missing", c.status == "missing"}};
    if (!c.issuer.empty()) e["caName"] = c.issuer;  // omitted for a root CA, as kubeadm's
    e["serial"] = c.broken() ? nlohmann::json() : nlohmann::json(c.serial);
    e["subject"] = c.broken() ? nlohmann::json() : nlohmann::json(c.subject);
    e["status"] = c.status;
    if (!c.copies.empty()) e["copies"] = c.copies;
    if (c.broken()) e["error"] = c.error;
    out[c.is_ca ? "certificateAuthorities" : "certificates"].push_back(e);
  }
  return out;
}

// certs list -o json|yaml: one object per certificate.
nlohmann::json certificate_list(const std::vector<CertStatus>& certs, TimePoint now) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : certs) {
    const bool b = c.broken();
    nlohmann::json e = {
        {"name", c.name},
        {"subject", b ? nlohmann::json() : nlohmann::json(c.subject)},
        {"not_before", b ? nlohmann::json() : nlohmann::json(format_time(c.not_before))},
        {"expires", b ? nlohmann::json() : nlohmann::json(format_time(c.not_after))},
        {"residual_seconds", b ? nlohmann::json() : nlohmann::json(residual_seconds(c, now))},
        {"certificate_authority", b ? nlohmann::json() : nlohmann::json(c.issuer)},
        {"is_ca", c.is_ca},
        {"externally_managed", c.externally_managed},
        {"copies", c.copies},
        {"serial", b ? nlohmann::json() : nlohmann::json(c.serial)},
        {"status", c.status}};
    if (b) e["error"] = c.error;
    out.push_back(e);
  }
  return out;
}

void print_certificate_table(const std::vector<CertStatus>& certs, TimePoint now, bool check,
                             const std::string& warn) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY",
                  "EXTERNALLY MANAGED", "SERIAL", "STATUS"});
  if (check) rows[0].push_back("WARNING");
  bool header_ca = false;
  for (const auto& c : certs) {
    if (c.is_ca && !header_ca) {
      rows.push_back({});
      rows.push_back({"CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "", "EXTERNALLY MANAGED",
                      "SERIAL", "STATUS"});
      header_ca = true;
    }
    if (c.broken()) {
      std::vector<std::string> row{c.name, "-", "-", "-", "-", "-", upper(c.status)};
      if (check) row.push_back(c.error);
      rows.push_back(row);
      continue;
    }
    std::vector<std::string> row{c.name,
                                 table_time(c.not_after),
                                 format_duration(std::chrono::seconds(residual_seconds(c, now))),
                                 c.issuer,
                                 c.externally_managed ? "yes" : "no",
                                 c.serial,
                                 c.status};
    if (check) {
      row.push_back(c.status == "expired"    ? "EXPIRED: renew now"
                    : c.status == "expiring" ? "expires within " + warn
                                             : "");
    }
    rows.push_back(row);
  }
  print_table(rows);
}

}  // namespace

int cmd_certs(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "ca-hash") {
    return print_folder_ca_pin(
        {args.begin() + 1, args.end()},
        "Usage: kubeca certs ca-hash --pki DIR [-o json|yaml|table]   (the same as kubeca ca pin)");
  }
  if (!args.empty() && args[0] == "inspect") return certs_inspect({args.begin() + 1, args.end()});
  po::options_description desc("Options");
  desc.add_options()("action", po::value<std::string>()->required(),
                     "list | check-expiration | renew")(
      "pki", po::value<std::string>()->default_value(kDefaultPki), "the PKI folder")(
      "warn", po::value<std::string>()->default_value("720h"),
      "check-expiration flags certificates that expire within this time")(
      "rotate-key", "renew: make new keys instead of keeping them")(
      "dry-run", "renew: show what would change (names, SANs), write nothing")(
      "config,c", po::value<std::string>(),
      "renew: today's cluster.yaml: its names (a new SAN), validity, signer.store, signer.url")(
      "env-file", po::value<std::string>(), "renew: the seed's shell variables")(
      "name", po::value<std::string>(),
      "renew: all, or a name the table prints (apiserver, etcd/server, admin.conf)");
  add_output_options(desc);
  po::positional_options_description pos;
  pos.add("action", 1).add("name", 1);
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca certs list|check-expiration --pki DIR [-o json|yaml|table]\n"
             "       kubeca certs renew all|NAME --pki DIR [--config F] [--rotate-key] "
             "[--dry-run] [-o ...]\n"
             "       kubeca certs inspect FILE [--pki DIR] [--store URL|--config F] [-o ...]\n"
             "       kubeca certs ca-hash --pki DIR   (the CA pin, as kubeca ca pin)\n\n"
             "Lists every certificate in the PKI folder (and in its kubeconfigs) once, with\n"
             "its expiry, residual time, CA, whether its CA is externally managed (its key is\n"
             "not in DIR), serial and status; a kubeconfig is the row for the certificate it\n"
             "embeds, as kubeadm's. check-expiration -o json is kubeadm's shape\n"
             "(certificates, certificateAuthorities). renew issues a certificate again with a\n"
             "new validity, offline, with the CA key in DIR: with --config, what init makes\n"
             "from that config gets today's names (a SAN added to the config); without, the\n"
             "same identity. A kubeconfig's name (admin.conf) renews the certificate it embeds\n"
             "and rewrites it. A key without its certificate is listed as MISSING, a file that\n"
             "does not parse as INVALID; renew refuses to run while one it would renew is\n"
             "broken. --json is -o json.",
             desc, vm, &pos)) {
    return 0;
  }
  const std::string action = vm["action"].as<std::string>();
  const Format format = output_format(vm);
  if (action == "renew") return certs_renew(vm);
  if (action != "list" && action != "check-expiration") {
    throw UsageError("unknown action \"" + action +
                     "\" (list, check-expiration, renew, inspect or ca-hash)");
  }
  if (vm.count("name")) {
    throw UsageError("unexpected argument \"" + vm["name"].as<std::string>() + "\": certs " +
                     action + " lists the whole folder");
  }
  for (const char* f : {"rotate-key", "dry-run", "config", "env-file"}) {
    if (vm.count(f)) throw UsageError(std::string("--") + f + " goes with certs renew");
  }
  const auto now = std::chrono::system_clock::now();
  const auto warn = parse_duration(vm["warn"].as<std::string>());
  const auto certs = list_certificates(vm["pki"].as<std::string>(), now, warn);
  if (format != Format::kTable) {
    print_data(
        action == "check-expiration" ? expiration_info(certs, now) : certificate_list(certs, now),
        format);
    return 0;
  }
  print_certificate_table(certs, now, action == "check-expiration", vm["warn"].as<std::string>());
  return 0;
}

}  // namespace kubeca::cli

#include <cctype>
#include <iostream>

#include "common.h"
#include "kubeca/config.h"
#include "kubeca/pki.h"

namespace kubeca::cli {

namespace {

std::string upper(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

}  // namespace

int cmd_certs(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "ca-hash") {
    return print_folder_ca_pin(
        {args.begin() + 1, args.end()},
        "Usage: kubeca certs ca-hash --pki DIR   (the same as kubeca ca pin)");
  }
  po::options_description desc("Options");
  desc.add_options()("action", po::value<std::string>()->required(), "list | check-expiration")(
      "pki", po::value<std::string>()->default_value(kDefaultPki), "the PKI folder")(
      "warn", po::value<std::string>()->default_value("720h"),
      "check-expiration flags certificates that expire within this time")(
      "rotate-key", "renew: make new keys instead of keeping them")(
      "config,c", po::value<std::string>(),
      "renew: cluster.yaml, to record in signer.store and name signer.url's CRL")(
      "env-file", po::value<std::string>(), "renew: the seed's shell variables")(
      "name", po::value<std::string>(),
      "renew: all, or a name the table prints (apiserver, etcd/server, admin.conf)")(
      "json", "print as JSON");
  po::positional_options_description pos;
  pos.add("action", 1).add("name", 1);
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca certs list|check-expiration --pki DIR [--json]\n"
             "       kubeca certs renew all|NAME --pki DIR [--rotate-key] [--config F]\n"
             "       kubeca certs ca-hash --pki DIR   (the CA pin, as kubeca ca pin)\n\n"
             "Lists every certificate in the PKI folder (and in its kubeconfigs) with\n"
             "its expiry, residual time, CA, serial and status. renew issues the same\n"
             "identity again with a new validity, offline, with the CA key in DIR; a\n"
             "kubeconfig's name (admin.conf) renews the certificate it embeds and rewrites it.\n"
             "A key without its certificate is listed as MISSING, a file that does not\n"
             "parse as INVALID (status missing / invalid and an error in --json); renew\n"
             "refuses to run while one it would renew is broken.",
             desc, vm, &pos)) {
    return 0;
  }
  const std::string action = vm["action"].as<std::string>();
  if (action == "renew") {
    if (!vm.count("name")) throw UsageError("certs renew needs all or a certificate name");
    const std::string name = vm["name"].as<std::string>();
    if (name.empty() || name[0] == '/' || name.find("..") != std::string::npos) {
      throw UsageError("certs renew: \"" + name +
                       "\" is a path; give all or a certificate's name (apiserver, etcd/server)");
    }
    // A broken certificate would otherwise drop out of "all" unseen: refuse, renew nothing.
    std::string broken;
    for (const auto& c :
         list_certificates(vm["pki"].as<std::string>(), std::chrono::system_clock::now())) {
      const bool conf = c.name.find(".conf") != std::string::npos;
      if (c.broken() && !c.is_ca && (name == c.name || (name == "all" && !conf))) {
        broken +=
            (broken.empty() ? "" : "; ") + c.name + " is " + upper(c.status) + " (" + c.error + ")";
      }
    }
    if (!broken.empty()) {
      throw std::runtime_error("certs renew " + name + ": " + broken +
                               "; restore or remove it first, nothing was renewed");
    }
    std::unique_ptr<Store> store;
    std::string crl_url;
    if (vm.count("config") || vm.count("env-file")) {
      const Config config = load_config_from(vm);
      store = config_store(config, OpenMode::kExisting);
      crl_url = crl_url_of(config);
    }
    const auto renewed = renew_offline(vm["pki"].as<std::string>(), vm["name"].as<std::string>(),
                                       vm.count("rotate-key") > 0, std::chrono::system_clock::now(),
                                       {store.get(), crl_url});
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : renewed) {
      out.push_back({{"name", r.name},
                     {"old_serial", r.old_serial},
                     {"serial", r.new_serial},
                     {"kubeconfigs", r.kubeconfigs}});
      if (!vm.count("json")) {
        std::cout << "renewed " << r.name << " (serial " << r.new_serial << ")";
        for (const auto& k : r.kubeconfigs) std::cout << ", rewrote " << k;
        std::cout << "\n";
      }
    }
    if (vm.count("json")) print_json(out);
    return 0;
  }
  if (action != "list" && action != "check-expiration") {
    throw UsageError("unknown action \"" + action + "\" (list, check-expiration or renew)");
  }
  if (vm.count("name")) {
    throw UsageError("unexpected argument \"" + vm["name"].as<std::string>() + "\": certs " +
                     action + " lists the whole folder");
  }
  const auto now = std::chrono::system_clock::now();
  const auto warn = parse_duration(vm["warn"].as<std::string>());
  const auto certs = list_certificates(vm["pki"].as<std::string>(), now, warn);
  auto residual = [&](const CertStatus& c) {
    return format_duration(std::chrono::duration_cast<std::chrono::seconds>(c.not_after - now));
  };
  if (vm.count("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : certs) {
      if (c.broken()) {
        out.push_back({{"name", c.name},
                       {"subject", nullptr},
                       {"expires", nullptr},
                       {"residual_seconds", nullptr},
                       {"certificate_authority", nullptr},
                       {"is_ca", c.is_ca},
                       {"serial", nullptr},
                       {"status", c.status},
                       {"error", c.error}});
        continue;
      }
      out.push_back({{"name", c.name},
                     {"subject", c.subject},
                     {"expires", format_time(c.not_after)},
                     {"residual_seconds",
                      std::chrono::duration_cast<std::chrono::seconds>(c.not_after - now).count()},
                     {"certificate_authority", c.issuer},
                     {"is_ca", c.is_ca},
                     {"serial", c.serial},
                     {"status", c.status}});
    }
    print_json(out);
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back(
      {"CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "SERIAL", "STATUS"});
  if (action == "check-expiration") rows[0].push_back("WARNING");
  bool header_ca = false;
  for (const auto& c : certs) {
    if (c.is_ca && !header_ca) {
      rows.push_back({});
      rows.push_back({"CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "", "SERIAL", "STATUS"});
      header_ca = true;
    }
    if (c.broken()) {
      std::vector<std::string> row{c.name, "-", "-", "-", "-", upper(c.status)};
      if (action == "check-expiration") row.push_back(c.error);
      rows.push_back(row);
      continue;
    }
    std::vector<std::string> row{c.name,  format_time(c.not_after), residual(c), c.issuer, c.serial,
                                 c.status};
    if (action == "check-expiration") {
      row.push_back(c.status == "expired"    ? "EXPIRED: renew now"
                    : c.status == "expiring" ? "expires within " + vm["warn"].as<std::string>()
                                             : "");
    }
    rows.push_back(row);
  }
  print_table(rows);
  return 0;
}

}  // namespace kubeca::cli

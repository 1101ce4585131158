// `kubeca certs renew all|NAME`: offline, with the CA key in the folder, today's config, or
// a dry run that shows what would change.
#include <cctype>
#include <iostream>
#include <optional>

#include "certs.h"
#include "kubeca/config.h"
#include "kubeca/pki.h"
#include "output.h"

namespace kubeca::cli {

namespace {

std::string upper(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

void print_renewed(const Renewed& r, bool dry) {
  if (!r.skipped.empty()) {
    std::cout << "skipped " << r.skipped << "\n";
    return;
  }
  std::cout << (dry ? "would renew " : "renewed ") << r.name;
  if (!dry) std::cout << " (serial " << r.new_serial << ")";
  if (!r.added.empty()) std::cout << ", adds " << joined(r.added);
  if (!r.removed.empty()) std::cout << ", drops " << joined(r.removed);
  for (const auto& k : r.kubeconfigs) std::cout << (dry ? ", would rewrite " : ", rewrote ") << k;
  std::cout << "\n";
}

}  // namespace

int certs_renew(const po::variables_map& vm) {
  const Format format = output_format(vm);
  if (!vm.count("name")) throw UsageError("certs renew needs all or a certificate name");
  const std::string name = vm["name"].as<std::string>();
  if (name.empty() || name[0] == '/' || name.find("..") != std::string::npos) {
    throw UsageError("certs renew: \"" + name +
                     "\" is a path; give all or a certificate's name (apiserver, etcd/server)");
  }
  const std::string pki = vm["pki"].as<std::string>();
  // A broken certificate would otherwise drop out of "all" unseen: refuse, renew nothing.
  std::string broken;
  for (const auto& c : list_certificates(pki, std::chrono::system_clock::now())) {
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
  std::optional<Config> config;
  Recording recording;
  const bool dry = vm.count("dry-run") > 0;
  if (vm.count("config") || vm.count("env-file")) {
    config = load_config_from(vm);
    // A dry run opens no store: it records nothing.
    if (!dry) store = config_store(*config, OpenMode::kExisting);
    recording = {store.get(), crl_url_of(*config)};
  }
  OfflineRenewOptions options;
  options.rotate_key = vm.count("rotate-key") > 0;
  options.dry_run = dry;
  options.config = config ? &*config : nullptr;
  const auto renewed =
      renew_offline(pki, name, std::chrono::system_clock::now(), options, recording);
  if (format == Format::kTable) {
    for (const auto& r : renewed) print_renewed(r, dry);
    return 0;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : renewed) {
    nlohmann::json e = {
        {"name", r.name},
        {"old_serial", r.old_serial},
        {"serial", r.new_serial.empty() ? nlohmann::json() : nlohmann::json(r.new_serial)},
        {"kubeconfigs", r.kubeconfigs},
        {"old_identity", r.old_identity},
        {"identity", r.new_identity},
        {"added", r.added},
        {"removed", r.removed},
        {"dry_run", dry}};
    if (!r.skipped.empty()) e["skipped"] = r.skipped;
    out.push_back(e);
  }
  print_data(out, format);
  return 0;
}

}  // namespace kubeca::cli

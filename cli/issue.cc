#include <iostream>

#include "common.h"
#include "kubeca/fs.h"
#include "kubeca/pki.h"
#include "output.h"

namespace kubeca::cli {

int cmd_issue(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("profile", po::value<std::string>()->required(), "the profile")(
      "pki", po::value<std::string>()->default_value(kDefaultPki), "the PKI folder holding the CA")(
      "config,c", po::value<std::string>(), "cluster.yaml (the apiserver and signer need it)")(
      "env-file", po::value<std::string>(), "the seed's shell variables")(
      "name", po::value<std::string>(), "node or member name (kubelet, etcd-server, etcd-peer)")(
      "ip", po::value<std::vector<std::string>>(), "an IP SAN; repeat for more")(
      "dns", po::value<std::vector<std::string>>(), "a DNS SAN; repeat for more")(
      "key-algorithm", po::value<std::string>(), "overrides pki.key_algorithm")(
      "flavor", po::value<std::string>(),
      "modern or coreos-2016 (default: the config's, or the CA's)")(
      "out", po::value<std::string>(), "write PREFIX.pem and PREFIX-key.pem")(
      "force", "replace an existing PREFIX.pem / PREFIX-key.pem");
  add_output_options(desc);
  po::positional_options_description pos;
  pos.add("profile", 1);
  po::variables_map vm;
  std::string profiles;
  for (Profile p : all_profiles()) {
    if (profile_is_ca(p) || p == Profile::kUser) continue;  // users: `kubeca kubeconfig user`
    profiles += std::string(profiles.empty() ? "" : ", ") + to_string(p);
  }
  if (!parse(args,
             "Usage: kubeca issue PROFILE --pki DIR [--config F] [--name N] [--ip IP]... "
             "[--dns D]... [--out PREFIX] [--force] [-o json|yaml|table]\n\nIssues one certificate "
             "with a new key. "
             "An existing pair at PREFIX is refused unless --force.\nProfiles: " +
                 profiles,
             desc, vm, &pos)) {
    return 0;
  }
  const Format format = output_format(vm);
  if (vm.count("out")) {
    const std::string out = vm["out"].as<std::string>();
    if (is_stdout(out)) throw UsageError("--out: issue writes two files; give a PREFIX, not -");
    for (const char* ext : {".pem", "-key.pem"}) check_output_file("--out", out + ext);
  }
  const auto profile = parse_profile(vm["profile"].as<std::string>());
  if (!profile || profile_is_ca(*profile)) {
    throw UsageError("unknown profile \"" + vm["profile"].as<std::string>() +
                     "\" (one of: " + profiles + ")");
  }
  Config config;
  const fs::path dir = vm["pki"].as<std::string>();
  if (vm.count("config") || vm.count("env-file")) {
    config = load_config_from(vm);
  } else {
    if (*profile == Profile::kApiserver || *profile == Profile::kSigner) {
      throw UsageError(std::string("profile ") + to_string(*profile) + " needs --config");
    }
    config.master_host = "127.0.0.1";
    config.master_name = "localhost";
    validate(config);
    // Without a config, follow the CA: its key type, and the seed's flavor for CN=kube-ca.
    const auto root = load_ca(vm["pki"].as<std::string>(), Profile::kCa, Flavor::kModern);
    config.key_algorithm = to_string(algorithm_of(root->key()));
    const auto cn = root->certificate().subject_info("X520.CommonName");
    if (!cn.empty() && cn.front() == "kube-ca") config.flavor = Flavor::kCoreos2016;
  }
  if (vm.count("flavor")) {
    const std::string f = vm["flavor"].as<std::string>();
    if (f != "modern" && f != "coreos-2016") throw UsageError("--flavor: modern or coreos-2016");
    config.flavor = f == "modern" ? Flavor::kModern : Flavor::kCoreos2016;
  }
  std::string algo =
      vm.count("key-algorithm") ? vm["key-algorithm"].as<std::string>() : config.key_algorithm;
  const auto algorithm = parse_key_algorithm(algo);
  if (!algorithm) throw UsageError("--key-algorithm: unknown \"" + algo + "\"");
  Identity id;
  if (vm.count("name")) id.name = vm["name"].as<std::string>();
  if (vm.count("ip")) id.ips = vm["ip"].as<std::vector<std::string>>();
  if (vm.count("dns")) id.dns = vm["dns"].as<std::vector<std::string>>();
  const CertSpec spec = make_spec(config, *profile, id);
  auto ca = load_ca(dir, issuer_of(*profile), config.flavor);
  const fs::path prefix = vm.count("out") ? fs::path(vm["out"].as<std::string>())
                                          : cert_path(dir, spec.file).replace_extension();
  // The store cluster.yaml names must exist (init or serve made it) and be this CA's.
  const auto store = config_store(config, OpenMode::kExisting);
  if (store) store->bind_ca(ca_pin(load_ca(dir, Profile::kCa, config.flavor)->certificate()));
  const auto issued =
      issue_to_files(*ca, spec, *algorithm, prefix, std::chrono::system_clock::now(),
                     vm.count("force") > 0, {store.get(), crl_url_of(config)});
  const std::string cert_file = prefix.string() + ".pem", key_file = prefix.string() + "-key.pem";
  const auto not_after = issued.cert.not_after().to_std_timepoint();
  if (format != Format::kTable) {
    print_data({{"profile", to_string(*profile)},
                {"subject", dn_text(issued.cert.subject_dn())},
                {"serial", serial_hex(issued.cert)},
                {"not_before", format_time(issued.cert.not_before().to_std_timepoint())},
                {"not_after", format_time(not_after)},
                {"certificate", cert_file},
                {"key", key_file}},
               format);
  } else {
    std::cout << "issued " << to_string(*profile) << " " << describe(spec) << "\n  serial "
              << serial_hex(issued.cert) << ", expires " << table_time(not_after) << "\n  "
              << cert_file << "\n  " << key_file << "\n";
  }
  return 0;
}

}  // namespace kubeca::cli

#include <cstdlib>
#include <iostream>

#include "common.h"
#include "kubeca/fs.h"
#include "kubeca/pki.h"

namespace kubeca::cli {

int cmd_demo(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("dir", po::value<std::string>(), "work here instead of a temporary folder")(
      "key-algorithm", po::value<std::string>()->default_value("ecdsa-p256"), "key algorithm");
  po::variables_map vm;
  if (!parse(args, "Usage: kubeca demo [--dir DIR]\n\n"
                   "Runs the whole story on this machine: a demo cluster's PKI in a temporary\n"
                   "folder, on loopback addresses only.",
             desc, vm)) {
    return 0;
  }
  fs::path dir;
  if (vm.count("dir")) {
    dir = vm["dir"].as<std::string>();
    fs::create_directories(dir);
  } else {
    std::string tmpl = (fs::temp_directory_path() / "kubeca-demo-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary folder");
    dir = tmpl;
  }
  Config config;
  config.cluster_name = "demo";
  config.master_host = "127.0.0.1";
  config.master_name = "demo-master";
  config.workers = {{"demo-worker-1", "127.0.0.2"}, {"demo-worker-2", "127.0.0.3"}};
  config.key_algorithm = vm["key-algorithm"].as<std::string>();
  config.signer_store = "sqlite:" + (dir / "kubeca.db").string();
  validate(config);
  const std::string yaml =
      "cluster: {name: demo, domain: cluster.local, flavor: modern}\n"
      "master: {host: 127.0.0.1, name: demo-master}\n"
      "network: {pod_cidr: 10.2.0.0/16, service_cidr: 10.3.0.0/24, dns_service_ip: 10.3.0.10}\n"
      "workers:\n  - {name: demo-worker-1, ip: 127.0.0.2}\n  - {name: demo-worker-2, ip: 127.0.0.3}\n"
      "pki: {key_algorithm: " + config.key_algorithm + "}\n"
      "signer: {listen: 127.0.0.1:0, store: \"" + config.signer_store + "\"}\n";
  write_file_atomic(dir / "cluster.yaml", yaml);
  std::cout << "kubeca demo in " << dir.string() << "\n\n1. kubeca init --config "
            << (dir / "cluster.yaml").string() << " --pki " << (dir / "pki").string() << "\n";
  const auto report =
      init_pki(config, dir / "pki", std::chrono::system_clock::now(), progress_line);
  std::cout << "   " << report.created() << " files in " << report.elapsed.count() << " ms\n\n";
  std::cout << "2. kubeca certs list --pki " << (dir / "pki").string() << "\n\n";
  const auto certs = list_certificates(dir / "pki", std::chrono::system_clock::now());
  std::vector<std::vector<std::string>> rows{{"CERTIFICATE", "SUBJECT", "EXPIRES", "CA"}};
  for (const auto& c : certs) rows.push_back({c.name, c.subject, format_time(c.not_after), c.issuer});
  print_table(rows);
  std::cout << "\nCA pin for nodes: "
            << ca_pin(load_ca(dir / "pki", Profile::kCa, config.flavor)->certificate()) << "\n"
            << "Admin kubeconfig: " << (dir / "pki" / "admin.conf").string() << "\n";
  return 0;
}

}  // namespace kubeca::cli

#include <cstdlib>
#include <iostream>

#include "common.h"
#include "kubeca/fs.h"
#include "kubeca/keys.h"
#include "kubeca/node.h"
#include "kubeca/pki.h"
#include "kubeca/server.h"
#include "kubeca/token.h"
#include "output.h"

namespace kubeca::cli {

int cmd_demo(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("dir", po::value<std::string>(), "work here instead of a temporary folder")(
      "key-algorithm", po::value<std::string>()->default_value("ecdsa-p256"), "key algorithm");
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca demo [--dir DIR]\n\n"
             "Runs the whole story on this machine, on loopback only: the cluster PKI,\n"
             "the signing service, a bootstrap token, a node asking for its certificate\n"
             "with the token and the CA pin, the result checked, the service stopped.",
             desc, vm)) {
    return 0;
  }
  // Checked before anything is made: a refused run leaves no folder and no cluster.yaml.
  const std::string algo = vm["key-algorithm"].as<std::string>();
  if (!parse_key_algorithm(algo)) {
    throw UsageError("--key-algorithm: unknown \"" + algo +
                     "\" (rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384, ed25519)");
  }
  if (vm.count("dir")) check_output_dir("--dir", vm["dir"].as<std::string>());
  fs::path dir;
  if (vm.count("dir")) {
    dir = vm["dir"].as<std::string>();
    fs::create_directories(dir);
  } else {
    std::string tmpl = (fs::temp_directory_path() / "kubeca-demo-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary folder");
    dir = tmpl;
  }
  dir = fs::absolute(dir);
  const std::string store = "sqlite:" + (dir / "kubeca.db").string();
  const std::string yaml =
      "cluster: {name: demo, domain: cluster.local, flavor: modern}\n"
      "master: {host: 127.0.0.1, name: demo-master}\n"
      "network: {pod_cidr: 10.2.0.0/16, service_cidr: 10.3.0.0/24, dns_service_ip: 10.3.0.10}\n"
      "workers:\n  - {name: demo-worker-1, ip: 127.0.0.2}\n  - {name: demo-worker-2, ip: "
      "127.0.0.3}\n"
      "pki: {key_algorithm: " +
      algo +
      "}\n"
      "signer: {listen: \"127.0.0.1:0\", url: \"https://127.0.0.1:8443\", store: \"" +
      store + "\"}\n";
  write_file_atomic(dir / "cluster.yaml", yaml);
  const Config config = load_config((dir / "cluster.yaml").string(), "");
  const fs::path pki = dir / "pki";
  std::cout << "kubeca demo in " << dir.string()
            << "\n\n1. The cluster PKI\n   $ kubeca init --config "
            << (dir / "cluster.yaml").string() << " --pki " << pki.string() << "\n";
  const auto report = init_pki(config, pki, std::chrono::system_clock::now(), init_progress_line());
  std::cout << "   " << report.created() << " files in " << report.elapsed.count() << " ms ("
            << algo << ")\n\n";
  std::vector<std::vector<std::string>> rows{{"   CERTIFICATE", "SUBJECT", "EXPIRES", "CA"}};
  for (const auto& c : list_certificates(pki, std::chrono::system_clock::now())) {
    rows.push_back({"   " + c.name, c.subject, table_time(c.not_after), c.issuer});
  }
  print_table(rows);

  ServeOptions o;
  o.port = 0;
  o.audit_log = (dir / "audit.log").string();
  SigningServer server(config, pki, open_store(store), o);
  const int port = server.start();
  const std::string url = "https://127.0.0.1:" + std::to_string(port);
  std::cout << "\n2. The signing service on loopback\n   $ kubeca serve --config "
            << (dir / "cluster.yaml").string() << " --pki " << pki.string()
            << " --listen 127.0.0.1:" << port << "\n   listening on " << url << "\n";

  auto admin_store = open_store(store);
  TokenRequest tr;
  tr.node = "demo-worker-1";
  tr.ips = {"127.0.0.2"};
  const auto [token, rec] = create_token(*admin_store, tr, std::time(nullptr));
  const std::string pin = ca_pin(load_ca(pki, Profile::kCa, config.flavor)->certificate());
  std::cout << "\n3. A one-time token for node demo-worker-1\n   $ kubeca token create --store "
            << store << " --node demo-worker-1 --ip 127.0.0.2\n   token " << rec.id
            << ".<secret> (1 use, expires "
            << table_time(std::chrono::system_clock::from_time_t(rec.expires_at)) << ")\n   CA pin "
            << pin << "\n";

  NodeRequestOptions n;
  n.server = url;
  n.token = token;
  n.ca_hash = pin;
  n.out_dir = dir / "node";
  n.name = "demo-worker-1";
  n.kubeconfig_out = (dir / "node" / "kubelet.conf").string();
  std::cout << "\n4. The node asks for its certificate at boot (the token in a 0600 file)\n"
            << "   $ kubeca request --server " << url << " --token-file <file> --ca-hash " << pin
            << " --out-dir " << n.out_dir.string() << " --name demo-worker-1 --kubeconfig-out "
            << n.kubeconfig_out << "\n";
  const auto got = node_request(n);
  const auto cert = parse_certificate_pem(read_file(got.cert));
  const auto ca = load_ca(pki, Profile::kCa, config.flavor);
  const bool chain_ok = ca->issued(cert);
  std::cout << "   wrote " << got.cert.string() << ", " << got.key.string() << ", "
            << got.ca.string() << "\n\n5. The result, checked\n   subject  "
            << dn_text(cert.subject_dn()) << "\n   serial   " << got.serial << "\n   expires  "
            << got.not_after << "\n   chain    "
            << (chain_ok ? "verifies against the cluster CA" : "DOES NOT VERIFY") << "\n";
  const auto again = node_request(n);
  std::cout << "   a second request "
            << (again.kept ? "kept the valid certificate" : "issued again") << " (idempotent)\n";

  server.stop();
  server.wait();
  std::cout << "\n6. The service stopped. Audit log: " << o.audit_log
            << "\n   Check with openssl:\n"
            << "   $ openssl verify -CAfile " << (pki / "ca.pem").string() << " "
            << got.cert.string() << "\n";
  return chain_ok && again.kept ? 0 : 1;
}

}  // namespace kubeca::cli

#include <unistd.h>

#include <iostream>

#include "common.h"
#include "kubeca/node.h"

namespace kubeca::cli {

int cmd_request(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("server", po::value<std::string>()->required(),
                     "the signer, https://HOST:8443")("token", po::value<std::string>()->required(),
                                                      "the bootstrap token id.secret")(
      "ca-hash", po::value<std::string>()->required(), "sha256:HEX pin of the cluster CA's key")(
      "out-dir", po::value<std::string>()->required(), "where ca.pem, NAME.pem, NAME-key.pem go")(
      "name", po::value<std::string>(), "the node name (default: the host name)")(
      "key-algorithm", po::value<std::string>()->default_value("ecdsa-p256"),
      "the node key's type")("profile", po::value<std::string>()->default_value("kubelet"),
                             "the profile the token grants")(
      "kubeconfig-out", po::value<std::string>(), "also write a kubelet kubeconfig here")(
      "apiserver", po::value<std::string>(), "the API server URL for the kubeconfig")(
      "retries", po::value<int>()->default_value(8), "attempts while the server is unreachable");
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca request --server URL --token T --ca-hash sha256:HEX --out-dir DIR "
             "[--name N] [--key-algorithm A] [--kubeconfig-out FILE]\n\n"
             "Run on a node at boot: makes the key locally, fetches the CA and checks it\n"
             "against the pin before sending anything, sends a CSR, writes the files.\n"
             "A valid certificate with more than a third of its life left is kept.",
             desc, vm)) {
    return 0;
  }
  NodeRequestOptions o;
  o.server = vm["server"].as<std::string>();
  o.token = vm["token"].as<std::string>();
  o.ca_hash = vm["ca-hash"].as<std::string>();
  o.out_dir = vm["out-dir"].as<std::string>();
  if (vm.count("name")) {
    o.name = vm["name"].as<std::string>();
  } else {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    o.name = host;
  }
  o.key_algorithm = vm["key-algorithm"].as<std::string>();
  o.profile = vm["profile"].as<std::string>();
  if (vm.count("kubeconfig-out")) o.kubeconfig_out = vm["kubeconfig-out"].as<std::string>();
  if (vm.count("apiserver")) o.apiserver = vm["apiserver"].as<std::string>();
  o.max_attempts = vm["retries"].as<int>();
  o.log = [](const std::string& s) { std::cerr << "kubeca: " << s << "\n"; };
  const auto r = node_request(o);
  std::cout << (r.kept ? "kept " : "wrote ") << r.cert.string() << " (serial " << r.serial
            << ", expires " << r.not_after << ")\n";
  return 0;
}

}  // namespace kubeca::cli

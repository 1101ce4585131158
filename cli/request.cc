#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "common.h"
#include "kubeca/node.h"

namespace kubeca::cli {

namespace {

// The token from --token-file, KUBECA_TOKEN or --token: one source, never two flags.
std::string token_of(const po::variables_map& vm) {
  if (vm.count("token") && vm.count("token-file")) {
    throw UsageError(
        "--token and --token-file: give one (--token-file keeps it off the "
        "process list)");
  }
  if (vm.count("token-file"))
    return read_token_file("--token-file", vm["token-file"].as<std::string>());
  if (vm.count("token")) return vm["token"].as<std::string>();
  const char* env = std::getenv("KUBECA_TOKEN");
  if (env && *env) return env;
  throw UsageError("no token: give --token-file FILE (or set KUBECA_TOKEN)");
}

}  // namespace

int cmd_request(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("server", po::value<std::string>()->required(),
                     "the signer, https://HOST:8443; replicas: URL1,URL2,... (tried in turn)")(
      "token-file", po::value<std::string>(),
      "a file (mode 0600) holding the bootstrap token id.secret")(
      "token", po::value<std::string>(),
      "the token itself (visible in the process list: prefer --token-file or KUBECA_TOKEN)")(
      "ca-hash", po::value<std::string>()->required(), "sha256:HEX pin of the cluster CA's key")(
      "out-dir", po::value<std::string>()->required(), "where ca.pem, NAME.pem, NAME-key.pem go")(
      "name", po::value<std::string>(), "the node name (default: the host name)")(
      "key-algorithm", po::value<std::string>()->default_value("ecdsa-p256"),
      "the node key's type")("profile", po::value<std::string>()->default_value("kubelet"),
                             "the profile the token grants")(
      "kubeconfig-out", po::value<std::string>(), "also write a kubelet kubeconfig here")(
      "apiserver", po::value<std::string>(), "the API server URL for the kubeconfig")(
      "retries", po::value<int>()->default_value(8),
      "attempts while the server is unreachable (1 or more)");
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca request --server URL --token-file F --ca-hash sha256:HEX "
             "--out-dir DIR [--name N] [--key-algorithm A] [--kubeconfig-out FILE]\n\n"
             "Run on a node at boot: makes the key locally, fetches the CA and checks it\n"
             "against the pin before sending anything, sends a CSR, writes the files.\n"
             "A valid certificate with more than a third of its life left is kept.\n"
             "The token comes from --token-file, else the environment variable\n"
             "KUBECA_TOKEN, else --token (which other users see in the process list).",
             desc, vm)) {
    return 0;
  }
  NodeRequestOptions o;
  o.server = vm["server"].as<std::string>();
  o.token = token_of(vm);
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
  if (o.max_attempts < 1) {
    throw UsageError("--retries: " + std::to_string(o.max_attempts) + " is not 1 or more");
  }
  o.log = [](const std::string& s) { std::cerr << "kubeca: " << s << "\n"; };
  const auto r = node_request(o);
  std::cout << (r.kept ? "kept " : "wrote ") << r.cert.string() << " (serial " << r.serial
            << ", expires " << r.not_after << ")\n";
  return 0;
}

}  // namespace kubeca::cli

#include "kubeca/kubeconfig.h"

#include <iostream>

#include "common.h"
#include "kubeca/fs.h"
#include "kubeca/pki.h"

namespace kubeca::cli {

int cmd_kubeconfig_user(const std::vector<std::string>& args);  // kubeconfig_user.cc

int cmd_kubeconfig(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "user")
    return cmd_kubeconfig_user({args.begin() + 1, args.end()});
  po::options_description desc("Options");
  desc.add_options()("pki", po::value<std::string>()->default_value(kDefaultPki), "the PKI folder")(
      "user", po::value<std::string>()->required(),
      "admin, or the file name of a certificate in the PKI (kubelet-NODE, kube-proxy, ...)")(
      "server", po::value<std::string>()->required(), "the API server (or signer) URL")(
      "cluster-name", po::value<std::string>()->default_value("kubernetes"), "cluster entry name")(
      "out", po::value<std::string>()->required(),
      "the kubeconfig file to write (0600); - for standard output")(
      "force", "replace an existing --out file that holds something else");
  po::variables_map vm;
  no_env_for("server");  // the API server's URL here, not the signer's KUBECA_SERVER
  if (!parse(args,
             "Usage: kubeca kubeconfig --pki DIR --user admin|NAME --server URL --out FILE "
             "[--force]\n"
             "       kubeca kubeconfig user --name NAME [--group G]... [--ttl 24h] ...  (see "
             "kubeca kubeconfig user --help)\n\n"
             "Writes a kubeconfig embedding the CA, the user's certificate and key. An\n"
             "existing --out with other content is refused unless --force; one with the\n"
             "same content is left as it is.",
             desc, vm)) {
    return 0;
  }
  const fs::path dir = vm["pki"].as<std::string>();
  const std::string user = vm["user"].as<std::string>();
  if (user.find("..") != std::string::npos || user.empty() || user[0] == '/') {
    throw UsageError(
        "--user: a certificate's name in the PKI folder (admin, kubelet-n1), not a path");
  }
  const std::string server = vm["server"].as<std::string>();
  if (server.rfind("https://", 0) != 0) throw UsageError("--server: must be an https:// URL");
  const std::string out = vm["out"].as<std::string>();
  if (!is_stdout(out)) check_output_file("--out", out);
  const fs::path cert = cert_path(dir, user), key = key_path(dir, user);
  if (!file_exists(cert)) {
    throw InputError("--user: " + cert.string() + " not found (issue it with `kubeca issue`)");
  }
  const std::string cert_pem = read_file(cert);
  const auto parsed = parse_certificate_pem(cert_pem);
  const auto cn = parsed.subject_info("X520.CommonName");
  KubeconfigSpec spec{vm["cluster-name"].as<std::string>(),
                      server,
                      read_file(cert_path(dir, "ca")),
                      cn.empty() ? user : cn.front(),
                      cert_pem,
                      read_file(key),
                      "",
                      "",
                      ""};
  const bool wrote = write_output("--out", out, render_kubeconfig(spec), 0600, vm.count("force"));
  if (!is_stdout(out)) {
    std::cout << (wrote ? "wrote " : "unchanged ") << out << " for " << spec.user << " at "
              << server << "\n";
  }
  return 0;
}

}  // namespace kubeca::cli

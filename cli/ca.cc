// `kubeca ca pin` (and `kubeca certs ca-hash`): the pin a node's `request --ca-hash` checks.
#include "kubeca/ca.h"

#include <iostream>

#include "common.h"
#include "kubeca/fs.h"
#include "output.h"

namespace kubeca::cli {

std::string folder_ca_pin(const std::string& pki) {
  const std::string ca = (std::filesystem::path(pki) / "ca.pem").string();
  require_input_file("--pki", ca);
  try {
    return ca_pin(parse_certificate_pem(read_file(ca)));
  } catch (const std::exception& e) {
    throw InputError("--pki: " + ca + " is not a PEM certificate: " + e.what());
  }
}

int print_folder_ca_pin(const std::vector<std::string>& args, const std::string& usage) {
  po::options_description desc("Options");
  desc.add_options()("pki", po::value<std::string>()->default_value(kDefaultPki),
                     "the PKI folder whose ca.pem is pinned");
  add_output_options(desc);
  po::variables_map vm;
  if (!parse(args,
             usage +
                 "\n\nPrints the CA pin, sha256:HEX: the SHA-256 of the cluster CA's\n"
                 "SubjectPublicKeyInfo (kubeadm's --discovery-token-ca-cert-hash). A node gives\n"
                 "it to `kubeca request --ca-hash` and checks the signer's CA against it. Equals\n"
                 "openssl x509 -in DIR/ca.pem -pubkey -noout | openssl pkey -pubin -outform der\n"
                 "| sha256sum.",
             desc, vm)) {
    return 0;
  }
  const Format format = output_format(vm);
  const std::string pki = vm["pki"].as<std::string>();
  const std::string pin = folder_ca_pin(pki);
  if (format == Format::kTable) {
    std::cout << pin << "\n";  // the pin alone: what a script pastes
  } else {
    print_data({{"pin", pin}, {"ca", (std::filesystem::path(pki) / "ca.pem").string()}}, format);
  }
  return 0;
}

int cmd_ca(const std::vector<std::string>& args) {
  const std::string usage = "Usage: kubeca ca pin --pki DIR [-o json|yaml|table]";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << usage << "\n";
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "pin") return print_folder_ca_pin({args.begin() + 1, args.end()}, usage);
  throw UsageError("unknown ca command \"" + args[0] + "\" (pin)");
}

}  // namespace kubeca::cli

// kubeca: the certificate authority of a Kubernetes cluster.
#include <botan/exceptn.h>

#include <cstring>
#include <iostream>

#include "common.h"

using namespace kubeca;
using namespace kubeca::cli;

namespace {

const Command kCommands[] = {
    {"init", "create the cluster PKI and kubeconfigs (idempotent)", cmd_init},
    {"issue", "issue one certificate of a profile from the CA", cmd_issue},
    {"kubeconfig", "write a kubeconfig for a certificate in the PKI", cmd_kubeconfig},
    {"certs", "list, check-expiration, renew: the PKI's certificates and their expiry", cmd_certs},
    {"serve", "run the HTTPS signing service", cmd_serve},
    {"token", "create, list, revoke: bootstrap tokens for nodes", cmd_token},
    {"request", "on a node: get its certificate with a token and the CA pin", cmd_request},
    {"bootstrap", "lay down a host's units, manifests and certificates", cmd_bootstrap},
    {"renew", "on a node: renew its certificate over mTLS (--daemon to keep at it)", cmd_renew},
    {"revoke", "revoke a certificate by serial or file", cmd_revoke},
    {"crl", "write the current certificate revocation list", cmd_crl},
    {"store", "migrate: move the signer's records to another store (SQLite, etcd)", cmd_store},
    {"demo", "the whole story on this machine, in a temporary folder", cmd_demo},
};

void usage(std::ostream& out) {
  out << "kubeca " KUBECA_VERSION
         " - the certificate authority of a Kubernetes cluster\n\n"
         "Usage: kubeca COMMAND [options]   (kubeca COMMAND --help for each)\n\nCommands:\n";
  for (const auto& c : kCommands) {
    out << "  " << c.name << std::string(14 - std::strlen(c.name), ' ') << c.summary << "\n";
  }
  out << "\nExit codes: 0 success, 1 runtime failure, 2 bad usage or bad input.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(std::cout);
    return 0;
  }
  if (name == "--version") {
    std::cout << "kubeca " KUBECA_VERSION "\n";
    return 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(args);
    } catch (const UsageError& e) {
      std::cerr << "kubeca: " << e.what() << "\n";
      return 2;
    } catch (const InputError& e) {
      std::cerr << "kubeca: " << e.what() << "\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "kubeca: " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "kubeca: unknown command \"" << name << "\" (see kubeca --help)\n";
  return 2;
}

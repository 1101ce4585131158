// kubeca: the certificate authority of a Kubernetes cluster.
#include <botan/exceptn.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "common.h"

using namespace kubeca;
using namespace kubeca::cli;

namespace {

int cmd_version(const std::vector<std::string>& args);
int cmd_completion(const std::vector<std::string>& args);

const Command kCommands[] = {
    {"init", "create the cluster PKI and kubeconfigs (idempotent)", cmd_init},
    {"issue", "issue one certificate of a profile from the CA", cmd_issue},
    {"kubeconfig", "write a kubeconfig for a certificate in the PKI; user: a person's",
     cmd_kubeconfig},
    {"certs", "list, check-expiration, renew, inspect, ca-hash: the PKI's certificates", cmd_certs},
    {"ca", "pin: print the CA pin (sha256:HEX) that nodes check", cmd_ca},
    {"serve", "run the HTTPS signing service", cmd_serve},
    {"token", "create, list, revoke: bootstrap tokens for nodes", cmd_token},
    {"request", "on a node: get its certificate with a token and the CA pin", cmd_request},
    {"bootstrap", "lay down a host's units, manifests and certificates", cmd_bootstrap},
    {"renew", "on a node: renew its certificate over mTLS (--daemon to keep at it)", cmd_renew},
    {"revoke", "revoke a certificate by serial or file", cmd_revoke},
    {"crl", "write the current certificate revocation list", cmd_crl},
    {"store", "migrate: move the signer's records to another store (SQLite, etcd)", cmd_store},
    {"bench", "join: many nodes joining at once, timed and checked", cmd_bench},
    {"demo", "the whole story on this machine, in a temporary folder", cmd_demo},
    {"version", "print kubeca's version (as --version)", cmd_version},
    {"completion",
     "bash: print a bash completion script (source it, or put it in "
     "/etc/bash_completion.d/kubeca)",
     cmd_completion},
};

// The words after a command that take sub-actions, for completion.
const std::pair<const char*, const char*> kActions[] = {
    {"certs", "list check-expiration renew inspect ca-hash"},
    {"kubeconfig", "user"},
    {"token", "create list revoke"},
    {"ca", "pin"},
    {"store", "migrate"},
    {"bench", "join"},
    {"bootstrap", "master worker etcd addons"},
    {"completion", "bash"},
};

int cmd_version(const std::vector<std::string>& args) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << "Usage: kubeca version\n\nPrints kubeca's version.\n";
    return 0;
  }
  if (!args.empty()) throw UsageError("unexpected argument \"" + args[0] + "\" (see --help)");
  std::cout << "kubeca " KUBECA_VERSION "\n";
  return 0;
}

// Commands and actions come from the tables above; options from each command's own --help,
// asked when they are completed, so the script never lags behind the binary.
int cmd_completion(const std::vector<std::string>& args) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << "Usage: kubeca completion bash\n\n"
                 "Prints a bash completion script: source <(kubeca completion bash), or\n"
                 "kubeca completion bash > /etc/bash_completion.d/kubeca\n";
    return 0;
  }
  if (args.size() != 1) throw UsageError("completion needs one shell: bash");
  if (args[0] != "bash") {
    throw UsageError("completion: unsupported shell \"" + args[0] + "\" (bash)");
  }
  std::string commands;
  for (const auto& c : kCommands) commands += std::string(commands.empty() ? "" : " ") + c.name;
  std::cout << "# bash completion for kubeca " KUBECA_VERSION
               "\n"
               "_kubeca() {\n"
               "  local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]}\n"
               "  COMPREPLY=()\n"
               "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
               "    COMPREPLY=($(compgen -W \""
            << commands
            << " --help --version\" -- \"$cur\"))\n"
               "    return 0\n"
               "  fi\n"
               "  if [[ $cur == -* ]]; then\n"
               "    local opts\n"
               "    opts=$(\"${COMP_WORDS[0]}\" \"$cmd\" --help 2>/dev/null |"
               " grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)\n"
               "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
               "    return 0\n"
               "  fi\n"
               "  if [ \"$COMP_CWORD\" -eq 2 ]; then\n"
               "    case $cmd in\n";
  for (const auto& [cmd, actions] : kActions) {
    std::cout << "      " << cmd << ") COMPREPLY=($(compgen -W \"" << actions
              << "\" -- \"$cur\")); return 0 ;;\n";
  }
  std::cout << "    esac\n"
               "  fi\n"
               "  COMPREPLY=($(compgen -f -- \"$cur\"))\n"
               "}\n"
               "complete -o filenames -F _kubeca kubeca\n";
  return 0;
}

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
  if (name == "serve") {
    // Botan's locked memory pool takes a global mutex on every secure allocation (about 400
    // a signing request): off for the service unless the operator set it (docs/design.md).
    setenv("BOTAN_MLOCK_POOL_SIZE", "0", /*overwrite=*/0);
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(args);
    } catch (const UsageError& e) {
      std::cerr << "kubeca: " << name_sources(e.what()) << "\n";
      return 2;
    } catch (const InputError& e) {
      std::cerr << "kubeca: " << name_sources(e.what()) << "\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "kubeca: " << name_sources(e.what()) << "\n";
      return 1;
    }
  }
  std::cerr << "kubeca: unknown command \"" << name << "\" (see kubeca --help)\n";
  return 2;
}

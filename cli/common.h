// What every subcommand shares: option parsing, the error contract, output helpers.
#pragma once

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kubeca/client.h"
#include "kubeca/config.h"
#include "kubeca/pki.h"
#include "kubeca/store.h"

namespace kubeca::cli {

namespace po = boost::program_options;

// Bad usage: exit code 2, like InputError.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

// Parses args against desc (and positionals); prints help and returns false on --help.
bool parse(const std::vector<std::string>& args, const std::string& usage,
           po::options_description& desc, po::variables_map& vm,
           const po::positional_options_description* positional = nullptr);

// Where paths and URLs come from: the command line, then a KUBECA_* variable (KUBECA_PKI,
// KUBECA_CONFIG, KUBECA_SERVER, KUBECA_STORE, ...), then kubeadm's default. parse() applies
// the variables; --help lists them.
inline const char* const kDefaultPki = "/etc/kubernetes/pki";
inline const char* const kDefaultConfig = "/etc/kubeca/cluster.yaml";
// This command's OPTION takes no variable (kubeconfig's --server is the API server's).
void no_env_for(const std::string& option);
// Whether OPTION's value came from its KUBECA_* variable rather than the command line.
bool from_env(const std::string& option);
// An error message with each --FLAG whose value came from the environment named as the
// variable it came from, so the user knows where to look.
std::string name_sources(const std::string& message);

bool stdout_is_terminal();
bool stderr_is_terminal();

// A table with a header row, columns padded: kubeadm's look.
void print_table(const std::vector<std::vector<std::string>>& rows);
void print_json(const nlohmann::json& j);

// "[3/20] apiserver" on one terminal line, overwritten as work goes on.
void progress_line(size_t done, size_t total, const std::string& what);

// --config or --env-file, each an existing readable file (InputError otherwise).
Config load_config_from(const po::variables_map& vm);
// An input file a flag names: it exists, is a regular file and can be read (InputError).
void require_input_file(const std::string& flag, const std::string& path);
// A store URL of a scheme kubeca knows (UsageError), checked before anything is opened.
void check_store_url(const std::string& url);
// The store cluster.yaml names (signer.store), opened with `mode`; null when it names none.
std::unique_ptr<Store> config_store(const Config& config, OpenMode mode);
// The service's CRL URL when cluster.yaml names signer.url; "" otherwise.
std::string crl_url_of(const Config& config);

// Admin commands reach either the store (--store URL) or a running service as an admin
// (--kubeconfig, or --server with --certificate-authority/--client-certificate/--client-key).
void add_admin_options(po::options_description& desc);
struct AdminTarget {
  std::unique_ptr<Store> store;    // set for --store
  std::unique_ptr<ApiClient> api;  // set for the service
};
AdminTarget admin_target(const po::variables_map& vm);
// The service's answer when it has the expected status; a runtime error naming the refusal.
nlohmann::json expect(const HttpResult& r, int status, const std::string& what);

int cmd_init(const std::vector<std::string>& args);
int cmd_issue(const std::vector<std::string>& args);
int cmd_kubeconfig(const std::vector<std::string>& args);
int cmd_certs(const std::vector<std::string>& args);
int cmd_serve(const std::vector<std::string>& args);
int cmd_token(const std::vector<std::string>& args);
int cmd_request(const std::vector<std::string>& args);
int cmd_bootstrap(const std::vector<std::string>& args);
int cmd_renew(const std::vector<std::string>& args);
int cmd_revoke(const std::vector<std::string>& args);
int cmd_crl(const std::vector<std::string>& args);
int cmd_demo(const std::vector<std::string>& args);
int cmd_store(const std::vector<std::string>& args);
int cmd_ca(const std::vector<std::string>& args);
int cmd_bench(const std::vector<std::string>& args);

// DIR/ca.pem's pin, "sha256:HEX" (InputError when it is missing or not a certificate).
std::string folder_ca_pin(const std::string& pki);
// `ca pin` and `certs ca-hash`: parses --pki and prints the pin.
int print_folder_ca_pin(const std::vector<std::string>& args, const std::string& usage);

// init's counts (keys made, certificates signed, files written) on one stderr line redrawn
// in place, when stderr is a terminal; empty (no output at all) otherwise.
Progress init_progress_line();

}  // namespace kubeca::cli

#include "common.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "kubeca/fs.h"
#include "kubeca/kubeconfig.h"

namespace kubeca::cli {

namespace fs = std::filesystem;

bool parse(const std::vector<std::string>& args, const std::string& usage,
           po::options_description& desc, po::variables_map& vm,
           const po::positional_options_description* positional) {
  desc.add_options()("help,h", "show this help");
  try {
    po::command_line_parser parser(args);
    parser.options(desc);
    // Positionals are named here, not by Boost: Boost drops the ones a command has no
    // name for, and this way a stray one is refused and named.
    po::parsed_options parsed = parser.run();
    unsigned position = 0;
    for (auto& o : parsed.options) {
      if (o.position_key == -1) continue;
      const std::string word = o.value.empty() ? "" : o.value.front();
      if (!positional || position >= positional->max_total_count()) {
        throw UsageError("unexpected argument \"" + word + "\" (see --help)");
      }
      o.string_key = positional->name_for_position(position++);
    }
    po::store(parsed, vm);
    if (vm.count("help")) {
      std::cout << usage << "\n\n" << desc << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (see --help)");
  }
  return true;
}

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }
bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size());
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    std::cout << line << "\n";
  }
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << "\n"; }

void progress_line(size_t done, size_t total, const std::string& what) {
  if (!stderr_is_terminal()) return;
  std::cerr << "\r\033[K[" << done << "/" << total << "] " << what << std::flush;
  if (done == total) std::cerr << "\r\033[K" << std::flush;
}

Config load_config_from(const po::variables_map& vm) {
  const std::string yaml = vm.count("config") ? vm["config"].as<std::string>() : "";
  const std::string env = vm.count("env-file") ? vm["env-file"].as<std::string>() : "";
  if (yaml.empty() && env.empty()) throw UsageError("--config or --env-file is required");
  require_input_file("--config", yaml);
  require_input_file("--env-file", env);
  return load_config(yaml, env);
}

void require_input_file(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) {
    throw InputError(flag + ": " + path + " does not exist");
  }
  if (st.type() == fs::file_type::directory) {
    throw InputError(flag + ": " + path + " is a folder, not a file");
  }
  if (st.type() != fs::file_type::regular) {
    throw InputError(flag + ": " + path + " is not a regular file");
  }
  if (::access(path.c_str(), R_OK) != 0) {
    throw InputError(flag + ": " + path + " cannot be read: " + std::strerror(errno));
  }
}

void check_store_url(const std::string& url) {
  for (const char* scheme : {"sqlite:", "etcd:", "etcd+http:", "memory:"}) {
    if (url.rfind(scheme, 0) == 0) return;
  }
  throw UsageError("--store: unsupported store URL \"" + url +
                   "\" (use sqlite:PATH or etcd://HOST:PORT,...)");
}

std::unique_ptr<Store> config_store(const Config& config, OpenMode mode) {
  if (!config.signer_store_named) return nullptr;
  return open_store(config.signer_store, mode);
}

std::string crl_url_of(const Config& config) {
  return config.signer_url_named ? config.signer_url + "/v1/crl" : "";
}

void add_admin_options(po::options_description& desc) {
  desc.add_options()("store", po::value<std::string>(), "act on the store directly: sqlite:PATH")(
      "kubeconfig", po::value<std::string>(), "an admin kubeconfig whose server is the signer")(
      "server", po::value<std::string>(),
      "the signer URL, or its replicas URL1,URL2,... (with the three flags below)")(
      "certificate-authority", po::value<std::string>(), "the cluster CA (ca.pem)")(
      "client-certificate", po::value<std::string>(), "an admin certificate (O=system:masters)")(
      "client-key", po::value<std::string>(), "its key");
}

AdminTarget admin_target(const po::variables_map& vm) {
  AdminTarget t;
  if (vm.count("store")) {
    check_store_url(vm["store"].as<std::string>());
    // Never created here: a mistyped path must not become an empty store.
    t.store = open_store(vm["store"].as<std::string>(), OpenMode::kExisting);
    return t;
  }
  for (const char* f :
       {"kubeconfig", "certificate-authority", "client-certificate", "client-key"}) {
    if (vm.count(f)) require_input_file(std::string("--") + f, vm[f].as<std::string>());
  }
  KubeconfigCredentials c;
  if (vm.count("kubeconfig")) {
    c = read_kubeconfig(vm["kubeconfig"].as<std::string>());
  } else if (vm.count("server")) {
    for (const char* f : {"certificate-authority", "client-certificate", "client-key"}) {
      if (!vm.count(f)) throw UsageError(std::string("--server needs --") + f);
    }
    c.server = vm["server"].as<std::string>();
    c.ca_pem = read_file(vm["certificate-authority"].as<std::string>());
    c.client_cert_pem = read_file(vm["client-certificate"].as<std::string>());
    c.client_key_pem = read_file(vm["client-key"].as<std::string>());
  } else {
    throw UsageError("say where: --store URL, --kubeconfig FILE, or --server URL with its flags");
  }
  if (c.server.rfind("https://", 0) != 0) throw UsageError("the server must be an https:// URL");
  if (c.ca_pem.empty()) throw UsageError("the CA of the server is needed to trust it");
  t.api = std::make_unique<ApiClient>(c.server, c.ca_pem, c.client_cert_pem, c.client_key_pem);
  return t;
}

nlohmann::json expect(const HttpResult& r, int status, const std::string& what) {
  if (r.status != status) throw std::runtime_error(what + ": " + r.describe());
  return r.json();
}

}  // namespace kubeca::cli

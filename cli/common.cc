#include "common.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "kubeca/fs.h"
#include "kubeca/kubeconfig.h"

namespace kubeca::cli {

namespace fs = std::filesystem;

namespace {

// The flags that carry paths and URLs, and their variables. Within a group of
// alternatives (the admin target: --store, --kubeconfig or --server) one flag on the
// command line turns off the group's variables, so a variable never overrides what was
// typed.
struct EnvFlag {
  const char* option;
  const char* variable;
  int group;  // 0: alone
};
const EnvFlag kEnvFlags[] = {
    {"pki", "KUBECA_PKI", 0},
    {"config", "KUBECA_CONFIG", 0},
    {"env-file", "KUBECA_ENV_FILE", 0},
    {"audit-log", "KUBECA_AUDIT_LOG", 0},
    {"store", "KUBECA_STORE", 1},
    {"kubeconfig", "KUBECA_KUBECONFIG", 1},
    {"server", "KUBECA_SERVER", 1},
    {"certificate-authority", "KUBECA_CERTIFICATE_AUTHORITY", 0},
    {"client-certificate", "KUBECA_CLIENT_CERTIFICATE", 0},
    {"client-key", "KUBECA_CLIENT_KEY", 0},
};

std::vector<std::string> g_no_env;       // options this command keeps off the environment
std::vector<const EnvFlag*> g_env_used;  // flags whose value came from a variable

bool env_applies(const po::options_description& desc, const EnvFlag& f) {
  return desc.find_nothrow(f.option, false) != nullptr &&
         std::find(g_no_env.begin(), g_no_env.end(), f.option) == g_no_env.end();
}

// Fills the flags not on the command line from their variables (an empty one is unset).
void apply_env(const po::options_description& desc, po::variables_map& vm) {
  std::vector<int> typed_groups;  // decided before any variable is applied
  auto typed = [&](const EnvFlag& f) { return vm.count(f.option) && !vm[f.option].defaulted(); };
  for (const auto& f : kEnvFlags) {
    if (f.group != 0 && env_applies(desc, f) && typed(f)) typed_groups.push_back(f.group);
  }
  for (const auto& f : kEnvFlags) {
    if (!env_applies(desc, f) || typed(f)) continue;
    if (std::find(typed_groups.begin(), typed_groups.end(), f.group) != typed_groups.end()) {
      continue;
    }
    const char* value = std::getenv(f.variable);
    if (!value || !*value) continue;
    vm.erase(f.option);
    vm.emplace(f.option, po::variable_value(std::string(value), false));
    g_env_used.push_back(&f);
  }
}

void print_env_help(const po::options_description& desc) {
  std::string lines;
  for (const auto& f : kEnvFlags) {
    if (!env_applies(desc, f)) continue;
    const std::string v = f.variable;
    lines += "  " + v + std::string(32 - v.size(), ' ') + "--" + f.option + "\n";
  }
  if (lines.empty()) return;
  std::cout << "Environment (a flag on the command line wins over its variable, which wins\n"
               "over the default; an empty variable counts as unset):\n"
            << lines << "\n";
}

}  // namespace

void no_env_for(const std::string& option) { g_no_env.push_back(option); }

bool from_env(const std::string& option) {
  return std::any_of(g_env_used.begin(), g_env_used.end(),
                     [&](const EnvFlag* f) { return option == f->option; });
}

std::string name_sources(const std::string& message) {
  std::string out = message;
  for (const EnvFlag* f : g_env_used) {
    const std::string flag = std::string("--") + f->option;
    for (size_t at = out.find(flag); at != std::string::npos; at = out.find(flag, at)) {
      const size_t end = at + flag.size();
      const bool word = end == out.size() ||
                        !(std::isalnum(static_cast<unsigned char>(out[end])) || out[end] == '-');
      if (!word) {
        at = end;
        continue;
      }
      out.replace(at, flag.size(), f->variable);
      at += std::strlen(f->variable);
    }
  }
  return out;
}

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
      print_env_help(desc);
      return false;
    }
    apply_env(desc, vm);
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
  if (yaml.empty() && env.empty()) {
    // kubeadm's habit: the configuration has a home, used when none is named.
    if (!file_exists(kDefaultConfig)) {
      throw UsageError(std::string("--config or --env-file is required (the default, ") +
                       kDefaultConfig + ", does not exist)");
    }
    require_input_file("--config", kDefaultConfig);
    return load_config(kDefaultConfig, "");
  }
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

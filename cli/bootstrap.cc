#include "kubeca/bootstrap.h"

#include <iostream>

#include "common.h"
#include "kubeca/apply.h"
#include "kubeca/fs.h"

namespace kubeca::cli {

namespace {

const char* kUsage =
    "Usage: kubeca bootstrap master|worker|etcd|addons --config F --pki DIR --root DIR\n"
    "                        [--node NAME] [--flavor modern|coreos-2016] [--dry-run] [--force]\n"
    "       kubeca bootstrap apply --config F [--pki DIR] [--etcd URL]... [--apiserver URL]\n"
    "                        [--timeout DURATION] [--skip-etcd] [--skip-namespaces]\n\n"
    "Lays down a host's files under DIR as they belong under / on that host: units,\n"
    "manifests, kubeconfigs and the certificates copied from the PKI. Re-running changes\n"
    "nothing; a file edited since kubeca wrote it is refused unless --force. The node's own\n"
    "certificate and key are laid down only when absent: after that kubeca-renew owns them\n"
    "and bootstrap leaves them as they are, also with --force. `apply` does the\n"
    "start steps that talk to services: the flannel network config into etcd (only if\n"
    "absent), then the namespaces once the API server answers.";

int run_apply(const Config& config, const po::variables_map& vm) {
  ApplyOptions o;
  if (vm.count("pki")) o.pki = vm["pki"].as<std::string>();
  if (vm.count("etcd")) o.etcd_endpoints = vm["etcd"].as<std::vector<std::string>>();
  if (vm.count("apiserver")) o.apiserver = vm["apiserver"].as<std::string>();
  if (vm.count("timeout")) o.api_timeout = parse_duration(vm["timeout"].as<std::string>());
  o.etcd = !vm.count("skip-etcd");
  o.namespaces = !vm.count("skip-namespaces");
  bootstrap_apply(config, o,
                  [](const ApplyStep& s) { std::cout << s.what << ": " << s.result << std::endl; });
  return 0;
}

}  // namespace

int cmd_bootstrap(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("role", po::value<std::string>(), "master, worker, etcd, addons or apply")(
      "config,c", po::value<std::string>(), "cluster.yaml, else /etc/kubeca/cluster.yaml")(
      "env-file", po::value<std::string>(), "the seed's shell variables (MASTER_HOST=...)")(
      "pki", po::value<std::string>()->default_value(kDefaultPki),
      "the PKI folder kubeca init made")("root", po::value<std::string>(),
                                         "where / of the host is (a mounted image, or /)")(
      "node", po::value<std::string>(), "the worker or etcd member this host is")(
      "flavor", po::value<std::string>(), "modern or coreos-2016 (default: the config's)")(
      "dry-run", "print what would be created or changed, as a diff; write nothing")(
      "force", "overwrite files edited since kubeca wrote them (not the node's own pair)")(
      "etcd", po::value<std::vector<std::string>>(), "apply: an etcd URL (default: the config's)")(
      "apiserver", po::value<std::string>(), "apply: the API server URL")(
      "timeout", po::value<std::string>(), "apply: how long to wait for the API server (5m)")(
      "skip-etcd", "apply: leave etcd alone")("skip-namespaces", "apply: leave the API alone");
  po::positional_options_description pos;
  pos.add("role", 1);
  po::variables_map vm;
  if (!parse(args, kUsage, desc, vm, &pos)) return 0;
  if (!vm.count("role")) throw UsageError("which role: master, worker, etcd, addons or apply");
  Config config = load_config_from(vm);
  if (vm.count("flavor")) {
    const std::string f = vm["flavor"].as<std::string>();
    if (f == "modern") {
      config.flavor = Flavor::kModern;
    } else if (f == "coreos-2016") {
      config.flavor = Flavor::kCoreos2016;
    } else {
      throw UsageError("--flavor: \"" + f + "\" is not modern or coreos-2016");
    }
  }
  const std::string role_name = vm["role"].as<std::string>();
  if (role_name == "apply") return run_apply(config, vm);
  const auto role = parse_role(role_name);
  if (!role) {
    throw UsageError("\"" + role_name + "\" is not master, worker, etcd, addons or apply");
  }
  if (!vm.count("root")) throw UsageError("--root is required (use --root / on the host itself)");
  BootstrapRequest request;
  request.role = *role;
  if (vm.count("node")) request.node = vm["node"].as<std::string>();
  request.pki = vm["pki"].as<std::string>();
  if (vm.count("config")) request.config_yaml = read_file(vm["config"].as<std::string>());
  const std::string root = vm["root"].as<std::string>();
  check_output_dir("--root", root);

  const auto changes = compare_with_root(plan_files(config, request), root);
  if (vm.count("dry-run")) {
    std::cout << describe_changes(changes);
    return 0;
  }
  const size_t changed = write_changes(changes, root, vm.count("force") > 0);
  for (const auto& c : changes) {
    if (c.change == Change::kUnchanged) continue;
    std::string label = std::string("[") + to_string(c.change) + "]";
    label.resize(12, ' ');
    std::cout << label << c.file.path << (c.note.empty() ? "" : " (" + c.note + ")") << "\n";
  }
  std::cout << to_string(*role) << " (" << to_string(config.flavor) << "): " << changed
            << " files changed, " << changes.size() - changed << " unchanged, under " << root
            << "\n";
  return 0;
}

}  // namespace kubeca::cli

// `kubeca bootstrap`: the files a host of the cluster needs, rendered from the validated
// Config and the issued PKI, and laid down under a root folder safely and idempotently.
// Bootstrap reads certificates; it never signs one.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kubeca/config.h"

namespace kubeca {

enum class Role { kMaster, kWorker, kEtcd, kAddons };
std::optional<Role> parse_role(const std::string& name);
const char* to_string(Role r);

// One file as it belongs on the host.
struct HostFile {
  std::string path;  // absolute on the host: "/etc/kubernetes/ssl/ca.pem"
  std::string content;
  unsigned mode = 0644;
  std::string source;  // "template coreos-2016/master/kubelet.service" or "pki ca.pem"
  bool secret() const { return (mode & 0077) == 0; }
};

struct BootstrapRequest {
  Role role = Role::kMaster;
  std::string node;  // --node: a worker, the master, or an etcd member; master by default
  std::filesystem::path pki;
};

// The values templates see: the Config, the node, the etcd member, the CA pin.
nlohmann::json template_values(const Config& config, const BootstrapRequest& request);

// Every file the role lays down on that host, rendered and read; writes nothing.
// InputError for a node the config lacks or a certificate missing from the PKI.
std::vector<HostFile> plan_files(const Config& config, const BootstrapRequest& request);

// The templates compiled into kubeca, by path under manifests/ ("modern/addons/files.yaml").
std::vector<std::string> embedded_template_paths();
std::string embedded_template(const std::string& path);  // throws when absent

enum class Change { kCreate, kUpdate, kMode, kUnchanged, kConflict };
const char* to_string(Change c);

struct FileChange {
  HostFile file;
  Change change = Change::kUnchanged;
  std::string before;  // what is on disk now (empty when absent)
  std::string note;    // "mode 0644 -> 0600", "edited since kubeca wrote it"
};

// Compares the plan with what is under `root` and with what kubeca recorded there when it
// last wrote (ROOT/var/lib/kubeca/bootstrap.json): a file whose content differs from both
// the plan and kubeca's record was edited by someone else and is a conflict.
std::vector<FileChange> compare_with_root(const std::vector<HostFile>& files,
                                          const std::filesystem::path& root);

// What --dry-run prints: each change with a unified diff (secrets by size only).
std::string describe_changes(const std::vector<FileChange>& changes);

// Writes creates, updates and mode fixes atomically and records their digests. Conflicts
// make it throw std::runtime_error before anything is written, unless `force`.
// Returns the number of files changed.
size_t write_changes(const std::vector<FileChange>& changes, const std::filesystem::path& root,
                     bool force);

// Where the bookkeeping lives under the root.
std::filesystem::path state_path(const std::filesystem::path& root);

}  // namespace kubeca

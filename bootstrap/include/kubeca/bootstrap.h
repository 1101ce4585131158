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
  // files.yaml `create_only: true`: laid down only when the path is absent. Afterwards the
  // file belongs to `managed_by` (the node's kubeca-renew replaces it, often by a symlink
  // into its versions folder), so bootstrap never overwrites it, not even with --force.
  bool create_only = false;
  std::string managed_by;  // files.yaml `managed_by`, for the report: "kubeca-renew"
  bool secret() const { return (mode & 0077) == 0; }
};

struct BootstrapRequest {
  Role role = Role::kMaster;
  std::string node;  // --node: a worker, the master, or an etcd member; master by default
  std::filesystem::path pki;
  // cluster.yaml as the operator gave it (--config): a modern master gets a copy at
  // /etc/kubeca/cluster.yaml for its kubeca-serve.service.
  std::string config_yaml;
};

// The values templates see: the Config, the node, the etcd member, the CA pin.
nlohmann::json template_values(const Config& config, const BootstrapRequest& request);

// Every file the role lays down on that host, rendered and read; writes nothing.
// InputError for a node the config lacks or a certificate missing from the PKI.
std::vector<HostFile> plan_files(const Config& config, const BootstrapRequest& request);

// The templates compiled into kubeca, by path under manifests/ ("modern/addons/files.yaml").
std::vector<std::string> embedded_template_paths();
std::string embedded_template(const std::string& path);  // throws when absent

// kKept: a create_only file that is there and differs from the plan; left as it is.
enum class Change { kCreate, kUpdate, kMode, kUnchanged, kConflict, kKept };
const char* to_string(Change c);

struct FileChange {
  HostFile file;
  Change change = Change::kUnchanged;
  std::string before;  // what is on disk now (empty when absent)
  std::string note;    // "mode 0644 -> 0600", "edited since kubeca wrote it"
};

// Compares the plan with what is under `root` and with what kubeca recorded there when it
// last wrote (ROOT/var/lib/kubeca/bootstrap.json): a file whose content differs from both
// the plan and kubeca's record was edited by someone else and is a conflict. Nothing is
// read or changed through a symlink: a create_only path that is one is kept, and another
// path's symlink is judged by content only (no mode fix) and replaced, never written through.
std::vector<FileChange> compare_with_root(const std::vector<HostFile>& files,
                                          const std::filesystem::path& root);

// What --dry-run prints: each change with a unified diff (secrets by size only), then the
// counts of files to create, change and keep.
std::string describe_changes(const std::vector<FileChange>& changes);

// Writes creates, updates and mode fixes atomically and records their digests (and which
// paths are create_only). Conflicts make it throw std::runtime_error before anything is
// written, unless `force`; kept files are never touched. A create_only file is created only
// if the path is still absent at that moment. Returns the number of files changed.
size_t write_changes(const std::vector<FileChange>& changes, const std::filesystem::path& root,
                     bool force);

// Where the bookkeeping lives under the root.
std::filesystem::path state_path(const std::filesystem::path& root);

}  // namespace kubeca

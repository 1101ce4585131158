#include "kubeca/bootstrap.h"

#include <botan/hash.h>
#include <botan/hex.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <map>
#include <set>
#include <sstream>
#include <system_error>

#include "embedded.h"
#include "kubeca/ca.h"
#include "kubeca/diff.h"
#include "kubeca/fs.h"
#include "kubeca/net.h"
#include "kubeca/profile.h"
#include "kubeca/template.h"
#include "serve_values.h"

namespace kubeca {

namespace fs = std::filesystem;
using nlohmann::json;

std::optional<Role> parse_role(const std::string& name) {
  if (name == "master") return Role::kMaster;
  if (name == "worker") return Role::kWorker;
  if (name == "etcd") return Role::kEtcd;
  if (name == "addons") return Role::kAddons;
  return std::nullopt;
}

const char* to_string(Role r) {
  switch (r) {
    case Role::kMaster:
      return "master";
    case Role::kWorker:
      return "worker";
    case Role::kEtcd:
      return "etcd";
    case Role::kAddons:
      return "addons";
  }
  return "?";
}

const char* to_string(Change c) {
  switch (c) {
    case Change::kCreate:
      return "create";
    case Change::kUpdate:
      return "update";
    case Change::kMode:
      return "mode";
    case Change::kUnchanged:
      return "unchanged";
    case Change::kConflict:
      return "conflict";
    case Change::kKept:
      return "kept";
  }
  return "?";
}

std::vector<std::string> embedded_template_paths() {
  std::vector<std::string> out;
  for (const auto* f = internal::kEmbeddedManifests; f->path; ++f) out.push_back(f->path);
  return out;
}

std::string embedded_template(const std::string& path) {
  for (const auto* f = internal::kEmbeddedManifests; f->path; ++f) {
    if (path == f->path) return std::string(reinterpret_cast<const char*>(f->data), f->size);
  }
  throw std::runtime_error("no template manifests/" + path + " in this kubeca build");
}

namespace {

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

struct Endpoint {
  std::string scheme, host, port;
};

Endpoint parse_endpoint(const std::string& url) {
  const auto parts = parse_url(url);
  Endpoint e{parts ? parts->scheme : "", parts ? parts->host : "", parts ? parts->port : ""};
  if (e.port.empty()) e.port = "2379";
  return e;
}

// The node a name stands for: the master or a worker.
std::optional<Worker> find_node(const Config& c, const std::string& name) {
  if (name == c.master_name) return Worker{c.master_name, c.master_host};
  if (const Worker* w = c.find_worker(name)) return *w;
  return std::nullopt;
}

std::string node_names(const Config& c) {
  std::vector<std::string> names{c.master_name};
  for (const auto& w : c.workers) names.push_back(w.name);
  return join(names, ", ");
}

// The etcd members are the hosts of etcd.endpoints, named by the node that has the IP.
json etcd_members(const Config& c) {
  json members = json::array();
  for (size_t i = 0; i < c.etcd_endpoints.size(); ++i) {
    const Endpoint e = parse_endpoint(c.etcd_endpoints[i]);
    std::string name;
    const auto ip = parse_ip(e.host);
    if (ip && *ip == *parse_ip(c.master_host)) name = c.master_name;
    for (const auto& w : c.workers) {
      if (ip && *ip == *parse_ip(w.ip)) name = w.name;
    }
    if (name.empty()) {
      throw InputError("etcd.endpoints[" + std::to_string(i) + "]: " + e.host +
                       " is neither master.host nor a worker's ip; bootstrap etcd names each "
                       "member after the node with its address");
    }
    members.push_back({{"name", name},
                       {"ip", e.host},
                       {"scheme", e.scheme},
                       {"client_port", e.port},
                       {"client_url", e.scheme + "://" + url_host(e.host) + ":" + e.port},
                       {"peer_url", e.scheme + "://" + url_host(e.host) + ":2380"}});
  }
  return members;
}

}  // namespace

json template_values(const Config& c, const BootstrapRequest& r) {
  const bool modern = c.flavor == Flavor::kModern;
  json v = {
      {"flavor", to_string(c.flavor)},
      {"role", to_string(r.role)},
      {"cluster_name", c.cluster_name},
      {"domain", c.domain},
      {"master_host", c.master_host},
      {"master_name", c.master_name},
      {"master_url_host", url_host(c.master_host)},
      {"apiserver_url", c.apiserver_url()},
      {"pod_cidr", c.pod_cidr},
      {"service_cidr", c.service_cidr},
      {"k8s_service_ip", c.k8s_service_ip},
      {"dns_service_ip", c.dns_service_ip},
      {"etcd_endpoints", join(c.etcd_endpoints, ",")},
      {"signer_url", c.signer_url},
      {"signer_urls", join(c.signer_urls, ",")},
      {"signer_store", c.signer_store},
      {"is_master", false},
  };
  if (modern) {
    for (size_t i = 0; i < c.etcd_endpoints.size(); ++i) {
      if (c.etcd_endpoints[i].rfind("https://", 0) != 0) {
        throw InputError("etcd.endpoints[" + std::to_string(i) + "]: \"" + c.etcd_endpoints[i] +
                         "\" must be https:// in flavor modern (etcd runs with TLS)");
      }
    }
  }

  const std::string node = r.node.empty() ? c.master_name : r.node;
  if (r.role == Role::kMaster) {
    if (node != c.master_name) {
      throw InputError("--node: \"" + node + "\" is not the master (master.name is " +
                       c.master_name + ")");
    }
  } else if (r.role == Role::kWorker) {
    if (r.node.empty()) throw InputError("--node: bootstrap worker needs the worker's name");
    if (node == c.master_name) {
      throw InputError("--node: \"" + node +
                       "\" is the master (master.name); lay it down with `kubeca bootstrap "
                       "master`, which includes its kubelet");
    }
    if (!c.find_worker(node)) {
      throw InputError("--node: \"" + node + "\" is not in workers (" + node_names(c) + ")");
    }
  }
  if (r.role == Role::kMaster || r.role == Role::kWorker || r.role == Role::kEtcd) {
    const auto n = find_node(c, node);
    if (!n) throw InputError("--node: \"" + node + "\" is not a node (" + node_names(c) + ")");
    v["node_name"] = n->name;
    v["node_ip"] = n->ip;
    v["is_master"] = n->name == c.master_name;
    if (modern) v["kubelet_pki"] = "kubelet-" + n->name;
    if (modern && r.role == Role::kMaster) add_serve_values(c, r, v);
    if (!modern && r.role == Role::kWorker) v["worker_pki"] = n->name + "-worker";
  }
  if (r.role == Role::kEtcd) {
    const json members = etcd_members(c);
    std::vector<std::string> initial;
    json self;
    for (const auto& m : members) {
      initial.push_back(m["name"].get<std::string>() + "=" + m["peer_url"].get<std::string>());
      if (m["name"] == node) self = m;
    }
    if (self.is_null()) {
      throw InputError("--node: \"" + node + "\" is not an etcd member (etcd.endpoints are on " +
                       join(
                           [&] {
                             std::vector<std::string> names;
                             for (const auto& m : members) names.push_back(m["name"]);
                             return names;
                           }(),
                           ", ") +
                       ")");
    }
    for (const char* k : {"name", "ip", "client_url", "peer_url", "client_port"}) {
      v[std::string("etcd_") + k] = self[k];
    }
    v["etcd_initial_cluster"] = join(initial, ",");
    if (modern) {
      Identity id{node, {self["ip"].get<std::string>()}, {}};
      v["etcd_server_pki"] = make_spec(c, Profile::kEtcdServer, id).file;
      v["etcd_peer_pki"] = make_spec(c, Profile::kEtcdPeer, id).file;
    }
  }
  if (!r.pki.empty() && file_exists(r.pki / "ca.pem")) {
    v["ca_hash"] = ca_pin(parse_certificate_pem(read_file(r.pki / "ca.pem")));
  }
  return v;
}

namespace {

bool truthy(const json& v, const std::string& key) {
  if (!v.contains(key)) return false;
  const json& x = v[key];
  return !(x.is_null() || (x.is_boolean() && !x.get<bool>()) ||
           (x.is_string() && x.get<std::string>().empty()));
}

unsigned parse_mode(const std::string& s, const std::string& where) {
  if (s.size() != 4 || s[0] != '0' || s.find_first_not_of("01234567") != std::string::npos) {
    throw std::runtime_error(where + ": mode \"" + s + "\" is not like 0644");
  }
  return static_cast<unsigned>(std::stoul(s, nullptr, 8));
}

// Reads FOLDER/files.yaml: its values (added to `v`), its includes, then its files.
void plan_folder(const std::string& folder, json& v, const fs::path& pki,
                 std::vector<HostFile>& out, std::set<std::string>& seen_folders) {
  if (!seen_folders.insert(folder).second) return;
  const std::string index = folder + "/files.yaml";
  YAML::Node doc;
  try {
    doc = YAML::Load(embedded_template(index));
  } catch (const YAML::Exception& e) {
    throw std::runtime_error("manifests/" + index + ": " + e.what());
  }
  if (const auto values = doc["values"]) {
    for (const auto& kv : values) {
      const std::string key = kv.first.Scalar(), text = kv.second.Scalar();
      // Unquoted true/false are switches for {{#sections}}; the rest are strings.
      if (kv.second.Tag() != "!" && (text == "true" || text == "false")) {
        v[key] = text == "true";
      } else {
        v[key] = render_template(index + " values." + key, text, v);
      }
    }
  }
  if (const auto includes = doc["include"]) {
    for (const auto& inc : includes) plan_folder(inc.Scalar(), v, pki, out, seen_folders);
  }
  for (const auto& f : doc["files"]) {
    const std::string where = index + " " + f["path"].Scalar();
    if (f["when"] && !truthy(v, f["when"].Scalar())) continue;
    HostFile h;
    h.path = render_template(where + " path", f["path"].Scalar(), v);
    h.mode = parse_mode(f["mode"] ? f["mode"].Scalar() : "0644", where);
    if (f["template"]) {
      const std::string name = folder + "/" + f["template"].Scalar();
      h.content = render_template(name, embedded_template(name), v);
      h.source = "template " + name;
    } else if (f["pki"]) {
      const std::string rel = render_template(where + " pki", f["pki"].Scalar(), v);
      const fs::path src = pki / rel;
      if (pki.empty()) throw InputError("--pki is required: " + h.path + " comes from the PKI");
      if (!file_exists(src)) {
        const std::string hint =
            f["hint"] ? render_template(where + " hint", f["hint"].Scalar(), v) : "kubeca init";
        throw InputError("--pki: " + src.string() + " is missing (" + h.path +
                         " is a copy of it); create it with `" + hint + "`");
      }
      h.content = read_file(src);
      h.source = "pki " + rel;
    } else {
      throw std::runtime_error(where + ": neither template nor pki");
    }
    if (const auto co = f["create_only"]) {
      if (co.Scalar() != "true" && co.Scalar() != "false") {
        throw std::runtime_error(where + ": create_only is true or false");
      }
      h.create_only = co.Scalar() == "true";
    }
    if (f["managed_by"]) {
      if (!h.create_only) throw std::runtime_error(where + ": managed_by needs create_only: true");
      h.managed_by = f["managed_by"].Scalar();
    }
    for (const auto& other : out) {
      if (other.path == h.path) throw std::runtime_error(where + ": laid down twice");
    }
    out.push_back(std::move(h));
  }
}

std::string sha256_hex(const std::string& data) {
  auto h = Botan::HashFunction::create_or_throw("SHA-256");
  h->update(data);
  return Botan::hex_encode(h->final(), false);
}

fs::path under(const fs::path& root, const std::string& host_path) {
  return root / fs::path(host_path).relative_path();
}

json read_state(const fs::path& root) {
  const fs::path p = state_path(root);
  if (!file_exists(p)) return json{{"files", json::object()}};
  try {
    json j = json::parse(read_file(p));
    if (!j.contains("files") || !j["files"].is_object()) throw std::runtime_error("no files");
    return j;
  } catch (const std::exception& e) {
    throw std::runtime_error(p.string() + " is damaged (" + e.what() +
                             "); move it away and re-run with --force to take ownership again");
  }
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Creates `path` only if nothing is there, not even a dangling symlink: the content is
// written aside and hard-linked into place, and link(2) fails rather than replace what a
// node unit put there since compare_with_root looked. False when something was there.
bool create_exclusive(const fs::path& path, const std::string& data, unsigned mode) {
  const fs::path tmp = path.parent_path() / ("." + path.filename().string() + ".kubeca-new");
  fs::remove(tmp);
  write_file_atomic(tmp, data, mode);
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int err = errno;
  if (rc != 0 && err != EEXIST) {
    fs::remove(tmp);
    throw std::system_error(err, std::generic_category(), "cannot create " + path.string());
  }
  fs::remove(tmp);
  fsync_dir(path.parent_path());
  return rc == 0;
}

void chown_root(const fs::path& p) {
  // lchown: a path that became a symlink is not followed.
  if (::lchown(p.c_str(), 0, 0) != 0) throw std::runtime_error("cannot chown " + p.string());
}

std::string mode_str(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

}  // namespace

fs::path state_path(const fs::path& root) { return root / "var/lib/kubeca/bootstrap.json"; }

std::vector<HostFile> plan_files(const Config& config, const BootstrapRequest& request) {
  json v = template_values(config, request);
  std::vector<HostFile> out;
  std::set<std::string> seen;
  plan_folder(std::string(to_string(config.flavor)) + "/" + to_string(request.role), v, request.pki,
              out, seen);
  return out;
}

std::vector<FileChange> compare_with_root(const std::vector<HostFile>& files,
                                          const fs::path& root) {
  const json state = read_state(root);
  const bool as_root = ::geteuid() == 0;
  std::vector<FileChange> out;
  for (const auto& f : files) {
    FileChange c;
    c.file = f;
    const fs::path target = under(root, f.path);
    struct stat lst {};
    if (::lstat(target.c_str(), &lst) != 0) {
      c.change = Change::kCreate;
      out.push_back(std::move(c));
      continue;
    }
    const bool regular = S_ISREG(lst.st_mode);
    struct stat st {};
    const bool readable = ::stat(target.c_str(), &st) == 0 && S_ISREG(st.st_mode);
    if (f.create_only && !(regular && read_file(target) == f.content)) {
      // No longer bootstrap's copy: its owner replaced it (a renewal, a request).
      c.change = Change::kKept;
      c.note = f.managed_by.empty() ? "created only when absent" : "managed by " + f.managed_by;
      out.push_back(std::move(c));
      continue;
    }
    if (!readable) {
      c.change = Change::kConflict;
      c.note = S_ISLNK(lst.st_mode) ? "a symlink to no regular file" : "not a regular file";
      out.push_back(std::move(c));
      continue;
    }
    c.before = read_file(target);
    const auto recorded = state["files"].find(f.path);
    if (c.before == f.content) {
      // Mode and owner are fixed on kubeca's own files only, never through a symlink.
      std::vector<std::string> fixes;
      if (regular && (st.st_mode & 07777) != f.mode) {
        fixes.push_back("mode " + mode_str(st.st_mode) + " -> " + mode_str(f.mode));
      }
      if (regular && as_root && (st.st_uid != 0 || st.st_gid != 0)) {
        fixes.push_back("owner -> root:root");
      }
      c.change = fixes.empty() ? Change::kUnchanged : Change::kMode;
      c.note = join(fixes, ", ");
    } else if (recorded != state["files"].end() && *recorded == sha256_hex(c.before)) {
      c.change = Change::kUpdate;
    } else {
      c.change = Change::kConflict;
      c.note = recorded == state["files"].end() ? "exists and kubeca did not write it"
                                                : "edited since kubeca wrote it";
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::string describe_changes(const std::vector<FileChange>& changes) {
  std::ostringstream out;
  size_t create = 0, change = 0, keep = 0, conflict = 0;
  for (const auto& c : changes) {
    create += c.change == Change::kCreate;
    change += c.change == Change::kUpdate || c.change == Change::kMode;
    conflict += c.change == Change::kConflict;
    if (c.change == Change::kUnchanged) {
      ++keep;
      continue;
    }
    if (c.change == Change::kKept) ++keep;  // named, as it differs from the plan
    std::string label = to_string(c.change);
    label.resize(10, ' ');
    out << label << c.file.path << " (" << mode_str(c.file.mode) << " root:root, " << c.file.source
        << ")";
    if (!c.note.empty()) out << ": " << c.note;
    out << "\n";
    if (c.change == Change::kMode || c.change == Change::kKept) continue;
    if (c.file.secret()) {
      out << "  (secret, " << c.file.content.size() << " bytes: content not shown)\n";
      continue;
    }
    const std::string before_name = c.change == Change::kCreate ? "/dev/null" : c.file.path;
    out << unified_diff(c.before, c.file.content, before_name, c.file.path);
  }
  out << create << " to create, " << change << " to change, " << keep << " to keep";
  if (conflict) out << ", " << conflict << " edited outside kubeca (--force overwrites)";
  out << "\n";
  return out.str();
}

size_t write_changes(const std::vector<FileChange>& changes, const fs::path& root, bool force) {
  std::vector<std::string> conflicts;
  for (const auto& c : changes) {
    if (c.change == Change::kConflict) conflicts.push_back(c.file.path);
  }
  if (!conflicts.empty() && !force) {
    throw std::runtime_error("refusing to overwrite " + std::to_string(conflicts.size()) +
                             " file(s) changed outside kubeca: " + join(conflicts, ", ") +
                             " (see --dry-run for the diff; --force overwrites them)");
  }
  const bool as_root = ::geteuid() == 0;
  json state = read_state(root);
  const json old_state = state;
  size_t changed = 0;
  for (const auto& c : changes) {
    const fs::path target = under(root, c.file.path);
    if (c.file.create_only) {
      // Recorded so the state says which files bootstrap hands over after seeding them.
      state["create_only"][c.file.path] = c.file.managed_by;
    }
    switch (c.change) {
      case Change::kKept:
        continue;  // its owner's now: no write, no record of its content
      case Change::kUnchanged:
        break;
      case Change::kMode:
        if (as_root) chown_root(target);
        fs::permissions(target, static_cast<fs::perms>(c.file.mode));
        ++changed;
        break;
      case Change::kCreate:
        if (c.file.create_only) {
          if (!create_exclusive(target, c.file.content, c.file.mode)) continue;  // raced: kept
          if (as_root) chown_root(target);
          ++changed;
          break;
        }
        [[fallthrough]];
      default:
        write_file_atomic(target, c.file.content, c.file.mode);
        if (as_root) chown_root(target);
        ++changed;
    }
    state["files"][c.file.path] = sha256_hex(c.file.content);
  }
  if (state != old_state) write_file_atomic(state_path(root), state.dump(2) + "\n", 0600);
  return changed;
}

}  // namespace kubeca

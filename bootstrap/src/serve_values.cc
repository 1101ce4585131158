// The template values of a modern master's signing service (kubeca-serve.service).
#include "serve_values.h"

#include <filesystem>
#include <string>

namespace kubeca {

namespace fs = std::filesystem;

void add_serve_values(const Config& c, const BootstrapRequest& r, nlohmann::json& v) {
  if (r.config_yaml.empty()) {
    throw InputError(
        "--config: bootstrap master (flavor modern) copies cluster.yaml to "
        "/etc/kubeca/cluster.yaml for kubeca-serve.service; an --env-file alone is not enough");
  }
  if (parse_config_yaml(r.config_yaml).flavor != c.flavor) {
    throw InputError(
        "--flavor: modern is not the flavor of the --config file, which the master's "
        "kubeca-serve.service reads from /etc/kubeca/cluster.yaml; set cluster.flavor there");
  }
  v["cluster_yaml"] = r.config_yaml;
  v["signer_state_dir"] = false;  // StateDirectory=: a folder under /var/lib, made by systemd
  v["signer_rw_dir"] = false;     // ReadWritePaths=: a folder elsewhere, which must exist
  if (c.signer_store.rfind("sqlite:", 0) != 0) return;  // etcd: no folder of its own
  const fs::path db = c.signer_store.substr(7);
  if (!db.is_absolute()) {
    throw InputError("signer.store: \"" + c.signer_store +
                     "\" must be an absolute path for kubeca-serve.service on the master");
  }
  const std::string dir = db.parent_path().lexically_normal().string();
  const std::string var_lib = "/var/lib/";
  if (dir.rfind(var_lib, 0) == 0 && dir.size() > var_lib.size()) {
    v["signer_state_dir"] = dir.substr(var_lib.size());
  } else {
    v["signer_rw_dir"] = dir;
  }
}

}  // namespace kubeca

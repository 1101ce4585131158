// The template values of a modern master's signing service (kubeca-serve.service).
#pragma once

#include <nlohmann/json.hpp>

#include "kubeca/bootstrap.h"
#include "kubeca/config.h"

namespace kubeca {

// cluster_yaml (the --config file, copied to /etc/kubeca/cluster.yaml), and the SQLite
// store's folder: signer_state_dir (under /var/lib) or signer_rw_dir, else false.
// InputError without the file, or when --flavor overrides the file's flavor.
void add_serve_values(const Config& c, const BootstrapRequest& r, nlohmann::json& v);

}  // namespace kubeca

// `kubeca bootstrap apply`: the seed's start steps that talk to services. The flannel
// network config goes into etcd only if absent; the namespaces once the API answers.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "kubeca/config.h"

namespace kubeca {

struct ApplyOptions {
  std::vector<std::string> etcd_endpoints;  // empty: the config's etcd.endpoints
  std::string apiserver;      // empty: http://127.0.0.1:8080 (coreos-2016) or the API URL (modern)
  std::filesystem::path pki;  // client credentials for https endpoints
  std::chrono::milliseconds api_timeout = std::chrono::minutes(5);  // waiting for /version
  std::chrono::milliseconds poll_interval = std::chrono::seconds(2);
  bool etcd = true;        // write the flannel network config
  bool namespaces = true;  // create the namespaces (and coreos-2016's network-policy TPR)
};

struct ApplyStep {
  std::string what;    // "flannel network config /coreos.com/network/config"
  std::string result;  // "created" or "exists (left as is)"
};

// {"Network":"POD_CIDR","Backend":{"Type":"vxlan"}}, byte for byte as the seed writes it.
std::string flannel_network_config(const Config& config);

// The key flannel reads; the same in both flavors (etcd v2 key or v3 key).
inline constexpr const char* kFlannelKey = "/coreos.com/network/config";

// Runs the steps in order; std::runtime_error when a service refuses or never answers.
std::vector<ApplyStep> bootstrap_apply(const Config& config, const ApplyOptions& options,
                                       const std::function<void(const ApplyStep&)>& on_step = {});

}  // namespace kubeca

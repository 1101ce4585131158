// kubeconfig files: a cluster (server + CA), a user (certificate + key), one context.
#pragma once

#include <string>

namespace kubeca {

struct KubeconfigSpec {
  std::string cluster_name;
  std::string server;
  std::string ca_pem;
  std::string user;
  std::string client_cert_pem;
  std::string client_key_pem;
  // File references instead of embedded data (a kubelet reads renewed files in place).
  std::string ca_file, client_cert_file, client_key_file;
};

// Deterministic output: the same inputs give the same bytes.
std::string render_kubeconfig(const KubeconfigSpec& spec);

struct KubeconfigCredentials {
  std::string server;
  std::string ca_pem;
  std::string client_cert_pem;
  std::string client_key_pem;
};
// Reads the current context's cluster and user (embedded data or file paths).
KubeconfigCredentials read_kubeconfig(const std::string& path);

}  // namespace kubeca

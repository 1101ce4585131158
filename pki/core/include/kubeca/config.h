// The cluster configuration: cluster.yaml or the seed's shell variables, validated once.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace kubeca {

enum class Flavor { kModern, kCoreos2016 };
const char* to_string(Flavor f);

// Bad input: a one-line message naming the field. The CLI maps it to exit code 2.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Worker {
  std::string name;
  std::string ip;
};

struct Config {
  std::string cluster_name = "kubernetes";
  std::string domain = "cluster.local";
  Flavor flavor = Flavor::kModern;

  std::string master_host;
  std::string master_name = "master";
  std::vector<std::string> extra_sans;

  std::vector<std::string> etcd_endpoints;

  std::string pod_cidr = "10.2.0.0/16";
  std::string service_cidr = "10.3.0.0/24";
  std::string dns_service_ip = "10.3.0.10";
  std::string k8s_service_ip;  // derived: the first IP of service_cidr

  std::vector<Worker> workers;

  std::string key_algorithm = "rsa-2048";
  std::chrono::seconds ca_validity = std::chrono::hours(87600);
  std::chrono::seconds cert_validity = std::chrono::hours(8760);

  std::string signer_listen = "0.0.0.0:8443";
  // The CRL distribution point every leaf names and the signer certificate's name.
  std::string signer_url;  // default https://MASTER_HOST:8443
  // Every replica of the signing service, as clients try them in turn; default
  // [signer_url]. The signer certificate names each host.
  std::vector<std::string> signer_urls;
  std::string signer_store = "sqlite:/var/lib/kubeca/kubeca.db";
  // Whether cluster.yaml names them. Only then do the offline commands (init, issue, certs
  // renew) record in the store and give leaves the service's CRL distribution point.
  bool signer_url_named = false;
  bool signer_store_named = false;
  // Renewals over /v1/renew per identity within renew_window; more get 429.
  int renew_limit = 6;
  std::chrono::seconds renew_window = std::chrono::hours(1);

  // https://MASTER_HOST:6443 (modern) or https://MASTER_HOST (the seed's port 443).
  std::string apiserver_url() const;
  const Worker* find_worker(const std::string& name) const;
};

// Go-style durations as kubeadm takes them: "87600h", "1h30m", "90s"; "d" for days too.
std::chrono::seconds parse_duration(const std::string& text);
std::string format_duration(std::chrono::seconds d);

// Each throws InputError("FIELD: reason") on bad input.
Config parse_config_yaml(const std::string& text);
Config load_config(const std::string& yaml_path, const std::string& env_path);
void apply_env(Config& config, const std::string& env_text);
void validate(Config& config);         // also fills the derived fields
void validate_signer(Config& config);  // the signer section (config_signer.cc), by validate

}  // namespace kubeca

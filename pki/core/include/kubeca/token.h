// Bootstrap tokens: "[a-z0-9]{6}.[a-z0-9]{16}" (id.secret), as kubeadm's. Only a hash is kept.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kubeca/store.h"

namespace kubeca {

struct TokenParts {
  std::string id;
  std::string secret;
};

std::string generate_token();  // a fresh id.secret from the system RNG
std::optional<TokenParts> parse_token(const std::string& token);
std::string hash_secret(const std::string& secret);  // hex SHA-256
// Compares a secret with a stored hash in time independent of where they differ.
bool secret_matches(const std::string& secret, const std::string& stored_hash);

// The id of a well-formed token in an Authorization header ("Bearer ID.SECRET"), else "".
std::string bearer_token_id(const std::string& authorization);

// True for the profiles whose token hands out cluster-wide power (admin, apiserver*,
// front-proxy-client, signer, etcd-*, the control plane): all but kubelet and kube-proxy.
bool token_profile_privileged(const std::string& profile);

struct TokenRequest {
  std::string node;
  std::vector<std::string> ips;
  std::string profile = "kubelet";
  std::chrono::seconds ttl = std::chrono::hours(1);
  int uses = 1;
  bool allow_privileged = false;  // required for a privileged profile
};

// Checks the binding (InputError naming the field; a privileged profile without
// allow_privileged too), makes a token, stores its hash.
// Returns the token, to be shown once, and what was stored.
std::pair<std::string, TokenRecord> create_token(Store& store, const TokenRequest& request,
                                                 int64_t now);

// A token as the API and the CLI show it: never its secret or hash.
nlohmann::json token_json(const TokenRecord& t);

}  // namespace kubeca

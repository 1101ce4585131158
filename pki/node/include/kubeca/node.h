// The node side: `kubeca request` at boot and `kubeca renew` before expiry.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

namespace kubeca {

using Log = std::function<void(const std::string&)>;

struct NodeRequestOptions {
  std::string server;   // https://SIGNER:8443
  std::string token;    // id.secret
  std::string ca_hash;  // sha256:HEX of the CA's SubjectPublicKeyInfo
  std::filesystem::path out_dir;
  std::string name;  // the node name; its files are NAME.pem and NAME-key.pem
  std::string key_algorithm = "ecdsa-p256";
  std::string profile = "kubelet";
  std::string kubeconfig_out;  // empty: none
  std::string apiserver;       // for the kubeconfig; default https://SIGNER_HOST:6443
  int max_attempts = 8;
  std::chrono::milliseconds max_delay{30000};
  Log log;
};

struct NodeRequestResult {
  bool kept = false;  // a valid certificate with more than a third of its life was there
  std::filesystem::path cert, key, ca;
  std::string serial;
  std::string not_after;
};

// A bootstrap token from a file, as the units bootstrap lays down keep it off command
// lines: a regular file readable by its owner only (no group or other permission), holding
// one token and perhaps a newline. InputError (exit 2) naming `flag` otherwise.
std::string read_token_file(const std::string& flag, const std::filesystem::path& path);

// Throws InputError for bad options, std::runtime_error when the server refuses or the
// CA does not match the pin (nothing is written then).
NodeRequestResult node_request(const NodeRequestOptions& options);

struct RenewOptions {
  std::string server;
  std::filesystem::path ca_file, cert, key;
  bool rotate_key = false;
  bool force = false;    // renew now even when not yet due
  std::string exec;      // run with /bin/sh -c after each swap
  int max_attempts = 8;  // one-shot mode: tries while the server is unreachable
  std::chrono::milliseconds max_delay{30000};
  Log log;
};

struct RenewResult {
  bool renewed = false;
  std::string serial;
  std::chrono::system_clock::time_point next_due;
};

// When a certificate should be renewed: two thirds into its life, minus up to a tenth of
// its life at random so a fleet does not renew at once. Life counts from issuance (kubeca
// backdates notBefore by five minutes).
std::chrono::system_clock::time_point renewal_due(std::chrono::system_clock::time_point not_before,
                                                  std::chrono::system_clock::time_point not_after,
                                                  double jitter);

// Renews over mTLS when due (or forced); swaps the pair atomically and runs the hook.
// Throws std::runtime_error when the server refuses or stays unreachable.
RenewResult node_renew(const RenewOptions& options);

// Renews forever: sleeps until due, renews, retries with backoff while the server is
// unreachable, never deletes a working certificate. Returns when *stop becomes true, and
// throws when the server refuses for good (an expired or revoked certificate).
void renew_daemon(const RenewOptions& options, const std::atomic<bool>& stop);

}  // namespace kubeca

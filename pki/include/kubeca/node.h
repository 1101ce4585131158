// The node side: `kubeca request` at boot and `kubeca renew` before expiry.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

namespace kubeca {

using Log = std::function<void(const std::string&)>;

struct NodeRequestOptions {
  std::string server;      // https://SIGNER:8443
  std::string token;       // id.secret
  std::string ca_hash;     // sha256:HEX of the CA's SubjectPublicKeyInfo
  std::filesystem::path out_dir;
  std::string name;        // the node name; its files are NAME.pem and NAME-key.pem
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

// Throws InputError for bad options, std::runtime_error when the server refuses or the
// CA does not match the pin (nothing is written then).
NodeRequestResult node_request(const NodeRequestOptions& options);

// Writes a certificate and its key so that a crash at any point leaves a matching pair:
// both go to .new files first, then the key, then the certificate, are renamed into place.
void install_pair(const std::filesystem::path& cert, const std::filesystem::path& key,
                  const std::string& cert_pem, const std::string& key_pem);
// Finishes or discards what an interrupted install_pair left. Returns true if it did anything.
bool recover_pair(const std::filesystem::path& cert, const std::filesystem::path& key);

}  // namespace kubeca

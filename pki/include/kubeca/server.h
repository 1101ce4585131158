// `kubeca serve`: the HTTPS signing service (product.md, "HTTPS API").
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "kubeca/config.h"
#include "kubeca/store.h"

namespace kubeca {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8443;              // 0: any free port
  size_t threads = 64;          // the bound on connections served at once
  size_t max_body = 64 * 1024;  // larger bodies get 413
  std::chrono::seconds read_timeout{5};
  std::chrono::seconds write_timeout{5};
  std::chrono::seconds keep_alive_timeout{2};  // idle keep-alive connections are closed
  size_t keep_alive_max = 100;
  int max_failures = 10;  // failed token attempts from one address before 429
  std::chrono::seconds failure_window{60};
  std::chrono::seconds crl_lifetime{86400};  // nextUpdate - thisUpdate of each CRL
  std::string audit_log;  // a file (appended, one JSON line per decision); empty: stdout
};

class SigningServer {
 public:
  // Loads the CA from `pki_dir`; issues the signer certificate there when it is missing.
  SigningServer(const Config& config, const std::filesystem::path& pki_dir,
                std::unique_ptr<Store> store, const ServeOptions& options);
  ~SigningServer();

  int start();  // binds and serves on a background thread; returns the port
  void stop();  // stops accepting; requests in flight finish first
  void wait();  // until stopped
  bool running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kubeca

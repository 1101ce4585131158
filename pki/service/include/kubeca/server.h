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
  int port = 8443;                // 0: any free port
  size_t threads = 64;            // requests handled at once (signing, the store)
  size_t io_threads = 0;          // threads of the event loop; 0: one per core, at most 4
  size_t max_connections = 1024;  // at the cap, the oldest idle or slowest connection is shed
  size_t max_body = 64 * 1024;    // larger bodies get 413
  // A connection that has not finished its TLS handshake by then is closed.
  std::chrono::milliseconds handshake_timeout{5000};
  // Each request, headers and body (and the handshake, for a connection's first), or closed.
  std::chrono::milliseconds request_deadline{10000};
  std::chrono::milliseconds write_timeout{5000};
  std::chrono::milliseconds keep_alive_timeout{2000};  // idle keep-alive connections are closed
  size_t keep_alive_max = 100;
  int max_failures = 10;  // failed token attempts from one address before 429
  std::chrono::seconds failure_window{60};
  std::chrono::seconds crl_lifetime{86400};  // nextUpdate - thisUpdate of each CRL
  // The periodic work (kubeca/periodic.h): between rounds (0: the store's lease TTL / 3),
  // and how often its leader counts the store's certificates for the gauges.
  std::chrono::milliseconds periodic_every{0};
  std::chrono::seconds count_every{60};
  std::string audit_log;  // a file (appended, one JSON line per decision); empty: stdout
};

class SigningServer {
 public:
  // Loads the CA from `pki_dir`; issues the signer certificate there when it is missing or
  // due (Issuer::signer_due), and again while serving, at two thirds of its life.
  SigningServer(const Config& config, const std::filesystem::path& pki_dir,
                std::unique_ptr<Store> store, const ServeOptions& options);
  ~SigningServer();

  // Binds and serves on background threads; returns the port. Throws std::runtime_error
  // "cannot listen on HOST:PORT: address in use" when another process holds the port.
  int start();
  void stop();  // stops accepting; requests in flight finish first
  void wait();  // until stopped
  bool running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kubeca

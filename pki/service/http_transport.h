// The HTTPS transport of `kubeca serve`, on Boost.Beast and Boost.Asio with OpenSSL: a few
// I/O threads hold every connection as state, not as a thread, so a slow or silent client
// costs a few kilobytes and a timer. Requests that touch the store or sign run on a bounded
// pool of workers; everything about HTTP (routes, JSON, metrics) stays with the caller.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kubeca::http {

struct Request {
  std::string method;
  std::string target;     // as sent
  std::string path;       // percent-decoded; "" when bad_path
  bool bad_path = false;  // bad percent-encoding, not UTF-8, a NUL byte, not absolute
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string remote;                     // the peer's IP address
  std::vector<uint8_t> peer_certificate;  // DER; empty when the client sent none

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
  bool has_header(const std::string& lower_name) const { return headers.count(lower_name) > 0; }
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct TransportOptions {
  std::string host = "127.0.0.1";
  int port = 0;                   // 0: any free port
  size_t io_threads = 2;          // threads running the event loop
  size_t workers = 64;            // requests handled at once (crypto, store)
  size_t max_connections = 1024;  // at the cap, the oldest idle or slowest connection goes
  size_t max_header = 16 * 1024;
  size_t max_body = 64 * 1024;
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds request_deadline{10000};  // handshake + headers + body
  std::chrono::milliseconds keep_alive_timeout{2000};
  std::chrono::milliseconds write_timeout{5000};
  size_t keep_alive_max = 100;  // requests on one connection
};

struct Routes {
  // On an I/O thread, with the headers only: a refusal, or nullopt to read the body.
  std::function<std::optional<Response>(const Request&)> check;
  // True when `handle` is cheap enough for an I/O thread (no store, no signature).
  std::function<bool(const Request&)> cheap;
  // The answer; runs on a worker unless cheap. Must not throw.
  std::function<Response(const Request&)> handle;
  // An answer for a request that could not be read (malformed, too large headers).
  std::function<Response(int status, const std::string& why)> refuse;
};

class Transport {
 public:
  Transport(const TransportOptions& options, Routes routes);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // The TLS certificate chain and key (PEM) for connections accepted from now on; those
  // already open keep theirs. Throws std::runtime_error when they do not make a context.
  void set_credentials(const std::string& cert_pem, const std::string& key_pem);
  // Binds (SO_REUSEADDR, never SO_REUSEPORT) and listens with SOMAXCONN; returns the port.
  // Throws std::runtime_error("cannot listen on HOST:PORT: why").
  int listen();
  void start();  // runs the event loop on io_threads threads
  void stop();   // stops accepting, closes idle connections; requests in flight finish
  void wait();   // until every connection is closed and every thread has ended
  bool running() const;
  size_t connections() const;

  struct Impl;  // the event loop and its connections (http_transport.cc)

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace kubeca::http

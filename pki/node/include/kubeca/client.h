// Talking to `kubeca serve`: TLS verified against the cluster CA, optional client certificate.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kubeca {

struct HttpResult {
  int status = 0;  // 0: no HTTP answer (see transport_error)
  std::string body;
  std::string transport_error;
  bool retryable = true;        // a transport failure worth retrying (not a TLS trust failure)
  int retry_after = 0;          // seconds, from a Retry-After header; 0 when none
  nlohmann::json json() const;  // the body as JSON, or null
  // "the server's error message (code)" for a refusal, or the transport error.
  std::string describe() const;
};

class ApiClient {
 public:
  // urls: https://HOST:PORT, or several separated by commas (the replicas of one signer,
  // tried in turn when one cannot be reached or answers 5xx). ca_pem empty: the server is
  // NOT verified (only for fetching the CA before checking it against a pin).
  ApiClient(const std::string& urls, const std::string& ca_pem, const std::string& cert_pem = "",
            const std::string& key_pem = "");
  ~ApiClient();
  HttpResult get(const std::string& path, const std::string& accept = "");
  // retry: this body was sent before and its answer lost. Sent as `Kubeca-Retry: 1`, as is
  // every failover to the next replica, so the signer answers a certificate it already
  // issued for this key and token instead of spending another use.
  HttpResult post(const std::string& path, const nlohmann::json& body,
                  const std::string& bearer = "", bool retry = false);
  HttpResult del(const std::string& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The longest Retry-After a client waits out; a longer one is not retried.
constexpr std::chrono::seconds kMaxRetryAfter{60};

// Runs `attempt` until it gets an HTTP answer or a failure not worth retrying, sleeping 0.5 s, 1 s,
// 2 s ... (capped at max_delay) between tries; a 429 or 503 with Retry-After (up to
// kMaxRetryAfter) waits that long instead. `on_retry` hears each failure. Returns the last
// result.
HttpResult with_retries(const std::function<HttpResult()>& attempt, int max_attempts,
                        std::chrono::milliseconds max_delay,
                        const std::function<void(int, const HttpResult&)>& on_retry = {});

// "https://a:8443,https://b:8443" as its URLs; std::invalid_argument for one that is not
// https:// or empty.
std::vector<std::string> split_servers(const std::string& urls);

// The first certificate in a PEM bundle.
std::string first_certificate_pem(const std::string& pem);

}  // namespace kubeca

#include "kubeca/client.h"

#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <random>
#include <stdexcept>
#include <thread>

#include "kubeca/net.h"

namespace kubeca {

nlohmann::json HttpResult::json() const { return nlohmann::json::parse(body, nullptr, false); }

std::string HttpResult::describe() const {
  if (status == 0) return transport_error;
  const auto j = json();
  if (j.is_object() && j.contains("error")) {
    return "HTTP " + std::to_string(status) + ": " + j["error"].get<std::string>() + " (" +
           j.value("code", std::string("")) + ")";
  }
  return "HTTP " + std::to_string(status);
}

namespace {

struct Url {
  std::string host;
  int port = 443;
};

Url https_url(const std::string& url) {
  const auto parts = parse_url(url);
  if (!parts || parts->scheme != "https") {
    throw std::invalid_argument(url + " is not an https:// URL");
  }
  Url u;
  u.host = parts->host;
  if (!parts->port.empty()) u.port = std::stoi(parts->port);
  return u;
}

template <typename T, typename F>
T* from_pem(const std::string& pem, F read) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  T* out = read(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return out;
}

HttpResult convert(const httplib::Result& r) {
  HttpResult out;
  if (!r) {
    switch (r.error()) {
      case httplib::Error::SSLServerVerification:
        out.transport_error =
            "TLS: the server's certificate is not valid for this CA and address "
            "(expired, another CA, or another name)";
        out.retryable = false;
        break;
      case httplib::Error::SSLLoadingCerts:
        out.transport_error = "TLS: the CA or client certificate cannot be loaded";
        out.retryable = false;
        break;
      default:
        out.transport_error = "cannot reach the server: " + httplib::to_string(r.error());
    }
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  // Delay-seconds only (RFC 9110 also allows a date, which kubeca never sends).
  const std::string ra = r->get_header_value("Retry-After");
  if (!ra.empty() && ra.size() <= 9 && ra.find_first_not_of("0123456789") == std::string::npos) {
    out.retry_after = std::stoi(ra);
  }
  return out;
}

}  // namespace

namespace {

// A connection that never got as far as sending the request (the server's accept queue or
// all its workers busy) is tried again at once: even a POST cannot have been acted on.
template <typename F>
HttpResult send_once(F&& request) {
  httplib::Result r = request();
  for (int attempt = 1; attempt < 4 && !r; ++attempt) {
    const auto e = r.error();
    if (e != httplib::Error::Connection && e != httplib::Error::SSLConnection &&
        e != httplib::Error::ConnectionTimeout) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
    r = request();
  }
  return convert(r);
}

}  // namespace

struct ApiClient::Impl {
  std::unique_ptr<httplib::SSLClient> http;
  std::chrono::steady_clock::time_point last_used;

  // The server closes keep-alive connections idle for 2 s; one idle for a second is
  // dropped here rather than found dead half-way through a request.
  template <typename F>
  HttpResult send(F&& request) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_used > std::chrono::seconds(1)) http->stop();
    HttpResult r = send_once(std::forward<F>(request));
    last_used = std::chrono::steady_clock::now();
    return r;
  }
};

ApiClient::ApiClient(const std::string& url, const std::string& ca_pem, const std::string& cert_pem,
                     const std::string& key_pem)
    : impl_(std::make_unique<Impl>()) {
  const Url u = https_url(url);
  if (!cert_pem.empty()) {
    X509* cert = from_pem<X509>(cert_pem, PEM_read_bio_X509);
    EVP_PKEY* key = from_pem<EVP_PKEY>(key_pem, PEM_read_bio_PrivateKey);
    if (!cert || !key) {
      X509_free(cert);
      EVP_PKEY_free(key);
      throw std::runtime_error("the client certificate or key cannot be read");
    }
    impl_->http = std::make_unique<httplib::SSLClient>(u.host, u.port, cert, key);
    X509_free(cert);
    EVP_PKEY_free(key);
  } else {
    impl_->http = std::make_unique<httplib::SSLClient>(u.host, u.port);
  }
  auto& c = *impl_->http;
  if (!ca_pem.empty()) {
    X509_STORE* store = X509_STORE_new();
    BIO* bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
    int added = 0;
    while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      added += X509_STORE_add_cert(store, x);
      X509_free(x);
    }
    BIO_free(bio);
    if (!added) {
      X509_STORE_free(store);
      throw std::runtime_error("the CA bundle holds no certificate");
    }
    c.set_ca_cert_store(store);
    c.enable_server_certificate_verification(true);
  } else {
    c.enable_server_certificate_verification(false);
  }
  c.set_connection_timeout(std::chrono::seconds(5));
  c.set_read_timeout(std::chrono::seconds(15));
  c.set_write_timeout(std::chrono::seconds(15));
  c.set_keep_alive(true);
}

ApiClient::~ApiClient() = default;

HttpResult ApiClient::get(const std::string& path, const std::string& accept) {
  httplib::Headers h;
  if (!accept.empty()) h.emplace("Accept", accept);
  return impl_->send([&] { return impl_->http->Get(path.c_str(), h); });
}

HttpResult ApiClient::post(const std::string& path, const nlohmann::json& body,
                           const std::string& bearer) {
  httplib::Headers h;
  if (!bearer.empty()) h.emplace("Authorization", "Bearer " + bearer);
  const std::string data = body.dump();
  return impl_->send([&] { return impl_->http->Post(path.c_str(), h, data, "application/json"); });
}

HttpResult ApiClient::del(const std::string& path) {
  return impl_->send([&] { return impl_->http->Delete(path.c_str()); });
}

HttpResult with_retries(const std::function<HttpResult()>& attempt, int max_attempts,
                        std::chrono::milliseconds max_delay,
                        const std::function<void(int, const HttpResult&)>& on_retry) {
  std::chrono::milliseconds delay(500);
  std::mt19937 jitter(std::random_device{}());
  HttpResult r;
  for (int i = 1; i <= max_attempts; ++i) {
    r = attempt();
    if ((r.status != 0 && r.status != 503 && r.status != 429) || !r.retryable) return r;
    // Told to come back later than a client can wait: say so now rather than spin.
    if (r.status == 429 && (r.retry_after <= 0 || r.retry_after > kMaxRetryAfter.count())) {
      return r;
    }
    if (i == max_attempts) break;
    if (on_retry) on_retry(i, r);
    if (r.retry_after > 0 && r.retry_after <= kMaxRetryAfter.count()) {
      // The server said when; a little jitter so a crowd told the same moment spreads out.
      std::this_thread::sleep_for(std::chrono::seconds(r.retry_after) +
                                  std::chrono::milliseconds(jitter() % 250));
      continue;
    }
    const auto wait = std::min(delay, max_delay);
    std::this_thread::sleep_for(wait +
                                std::chrono::milliseconds(jitter() % (wait.count() / 4 + 1)));
    delay *= 2;
  }
  return r;
}

std::string first_certificate_pem(const std::string& pem) {
  const std::string end = "-----END CERTIFICATE-----";
  const auto b = pem.find("-----BEGIN CERTIFICATE-----");
  const auto e = pem.find(end, b == std::string::npos ? 0 : b);
  if (b == std::string::npos || e == std::string::npos) return "";
  return pem.substr(b, e + end.size() - b) + "\n";
}

}  // namespace kubeca

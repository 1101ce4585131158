#include "kubeca/client.h"

#include <httplib.h>
#include <netdb.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
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

// Why a TCP connection to host:port fails, in words: httplib says only "Connection".
std::string connect_cause(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) return std::string("the name does not resolve (") + ::gai_strerror(rc) + ")";
  std::string cause = "connection failed";
  for (addrinfo* a = res; a; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      cause = std::strerror(errno);
      continue;
    }
    int err = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 5000) <= 0) {
        err = ETIMEDOUT;
      } else {
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      }
    }
    ::close(fd);
    if (err == 0) {
      cause = "the connection was closed before an answer";
      break;
    }
    cause = std::strerror(err);
  }
  ::freeaddrinfo(res);
  return cause;
}

HttpResult convert(const httplib::Result& r, const Url& u) {
  HttpResult out;
  if (!r) {
    const std::string at = url_host(u.host) + ":" + std::to_string(u.port);
    switch (r.error()) {
      case httplib::Error::SSLServerVerification:
        out.transport_error = "TLS: the certificate of " + at +
                              " is not valid for this CA and address "
                              "(expired, another CA, or another name)";
        out.retryable = false;
        break;
      case httplib::Error::SSLLoadingCerts:
        out.transport_error = "TLS: the CA or client certificate cannot be loaded";
        out.retryable = false;
        break;
      case httplib::Error::Connection:
        out.transport_error = "cannot reach " + at + ": " + connect_cause(u.host, u.port);
        break;
      case httplib::Error::ConnectionTimeout:
        out.transport_error = "cannot reach " + at + ": no answer to connect within 5 s";
        break;
      case httplib::Error::SSLConnection:
        out.transport_error = "TLS handshake with " + at + " failed (is it kubeca serve?)";
        break;
      case httplib::Error::Read:
      case httplib::Error::Write:
        out.transport_error =
            "the connection to " + at + " broke (" + httplib::to_string(r.error()) + " failed)";
        break;
      default:
        out.transport_error = "cannot reach " + at + ": " + httplib::to_string(r.error());
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
HttpResult send_once(F&& request, const Url& u) {
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
  return convert(r, u);
}

}  // namespace

// One signer of the list: its address and a keep-alive connection to it.
struct Endpoint {
  Url url;
  std::unique_ptr<httplib::SSLClient> http;
  std::chrono::steady_clock::time_point last_used;
};

struct ApiClient::Impl {
  std::vector<Endpoint> servers;
  size_t current = 0;  // the one that answered last

  // Each request goes to the signer that answered last; when it cannot be reached or
  // answers 5xx, to the next one, each at most once. The server closes keep-alive
  // connections idle for 2 s; one idle for a second is dropped here rather than found dead
  // half-way through a request.
  template <typename F>
  HttpResult send(F&& request) {
    HttpResult r;
    for (size_t i = 0; i < servers.size(); ++i) {
      const size_t at = (current + i) % servers.size();
      Endpoint& e = servers[at];
      const auto now = std::chrono::steady_clock::now();
      if (now - e.last_used > std::chrono::seconds(1)) e.http->stop();
      r = send_once([&] { return request(*e.http, i > 0); }, e.url);
      e.last_used = std::chrono::steady_clock::now();
      if (r.status != 0 && r.status < 500) {
        current = at;
        return r;
      }
    }
    return r;
  }
};

namespace {

std::unique_ptr<httplib::SSLClient> make_client(const Url& u, const std::string& ca_pem,
                                                const std::string& cert_pem,
                                                const std::string& key_pem) {
  std::unique_ptr<httplib::SSLClient> http;
  if (!cert_pem.empty()) {
    X509* cert = from_pem<X509>(cert_pem, PEM_read_bio_X509);
    EVP_PKEY* key = from_pem<EVP_PKEY>(key_pem, PEM_read_bio_PrivateKey);
    if (!cert || !key) {
      X509_free(cert);
      EVP_PKEY_free(key);
      throw std::runtime_error("the client certificate or key cannot be read");
    }
    http = std::make_unique<httplib::SSLClient>(u.host, u.port, cert, key);
    X509_free(cert);
    EVP_PKEY_free(key);
  } else {
    http = std::make_unique<httplib::SSLClient>(u.host, u.port);
  }
  auto& c = *http;
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
  return http;
}

}  // namespace

std::vector<std::string> split_servers(const std::string& urls) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const auto comma = urls.find(',', start);
    std::string one = urls.substr(start, comma - start);
    if (one.empty())
      throw std::invalid_argument("an empty URL in the server list \"" + urls + "\"");
    https_url(one);
    out.push_back(std::move(one));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

ApiClient::ApiClient(const std::string& urls, const std::string& ca_pem,
                     const std::string& cert_pem, const std::string& key_pem)
    : impl_(std::make_unique<Impl>()) {
  // A signer that dies mid-request (a replica killed) must cost a failover, not the
  // process: OpenSSL writes to the socket with write(2), which raises SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  for (const auto& url : split_servers(urls)) {
    const Url u = https_url(url);
    impl_->servers.push_back({u, make_client(u, ca_pem, cert_pem, key_pem), {}});
  }
}

ApiClient::~ApiClient() = default;

HttpResult ApiClient::get(const std::string& path, const std::string& accept) {
  httplib::Headers h;
  if (!accept.empty()) h.emplace("Accept", accept);
  return impl_->send([&](httplib::SSLClient& c, bool) { return c.Get(path.c_str(), h); });
}

HttpResult ApiClient::post(const std::string& path, const nlohmann::json& body,
                           const std::string& bearer, bool retry) {
  httplib::Headers h;
  if (!bearer.empty()) h.emplace("Authorization", "Bearer " + bearer);
  const std::string data = body.dump();
  return impl_->send([&](httplib::SSLClient& c, bool failover) {
    httplib::Headers sent = h;
    if (retry || failover) sent.emplace("Kubeca-Retry", "1");
    return c.Post(path.c_str(), sent, data, "application/json");
  });
}

HttpResult ApiClient::del(const std::string& path) {
  return impl_->send([&](httplib::SSLClient& c, bool) { return c.Delete(path.c_str()); });
}

HttpResult with_retries(const std::function<HttpResult()>& attempt, int max_attempts,
                        std::chrono::milliseconds max_delay,
                        const std::function<void(int, const HttpResult&)>& on_retry) {
  std::chrono::milliseconds delay(500);
  std::mt19937 jitter(std::random_device{}());
  HttpResult r;
  max_attempts = std::max(max_attempts, 1);  // one try at least: a result is always a real one
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

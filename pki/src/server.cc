#include "kubeca/server.h"

#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "kubeca/issuer.h"
#include "kubeca/metrics.h"
#include "kubeca/pki.h"
#include "kubeca/token.h"

namespace kubeca {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::system_clock;

using Refusal = ServiceError;

std::unique_ptr<Botan::X509_Certificate> peer_certificate(const httplib::Request& req) {
  if (!req.ssl) return nullptr;
  X509* x = SSL_get1_peer_certificate(const_cast<SSL*>(req.ssl));
  if (!x) return nullptr;
  unsigned char* der = nullptr;
  const int len = i2d_X509(x, &der);
  X509_free(x);
  if (len <= 0) return nullptr;
  std::vector<uint8_t> bytes(der, der + len);
  OPENSSL_free(der);
  try {
    return std::make_unique<Botan::X509_Certificate>(bytes);
  } catch (const std::exception&) {
    return nullptr;
  }
}

}  // namespace

struct SigningServer::Impl {
  std::unique_ptr<Store> store;
  ServeOptions options;
  std::unique_ptr<Issuer> issuer;
  std::string signer_cert_pem, signer_key_pem;
  std::unique_ptr<httplib::SSLServer> http;
  std::thread thread;
  Metrics metrics;
  std::atomic<bool> ready{false};

  Impl(std::unique_ptr<Store> s, const ServeOptions& o) : store(std::move(s)), options(o) {}

  static Caller caller_of(const httplib::Request& req) {
    Caller c{req.remote_addr, std::nullopt};
    if (auto cert = peer_certificate(req)) c.certificate = std::move(*cert);
    return c;
  }

  static json parse_body(const httplib::Request& req) {
    try {
      return json::parse(req.body);
    } catch (const json::exception&) {
      throw Refusal{400, "malformed_json", "the body is not JSON"};
    }
  }

  static std::string string_field(const json& body, const char* name) {
    return body.contains(name) && body[name].is_string() ? body[name].get<std::string>() : "";
  }

  static json issued_json(const Issuance& out) {
    return {{"certificate", out.certificate},
            {"ca", out.ca},
            {"serial", out.serial},
            {"subject", out.subject},
            {"not_after", format_time(out.not_after)}};
  }

  void setup_routes();
  void send_error(httplib::Response& res, const Refusal& r) {
    res.status = r.status;
    if (r.retry_after > 0) res.set_header("Retry-After", std::to_string(r.retry_after));
    res.set_content(json{{"error", r.message}, {"code", r.code}}.dump(
                        -1, ' ', false, json::error_handler_t::replace) +
                        "\n",
                    "application/json");
  }
  void send_json(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n",
                    "application/json");
  }
};

void SigningServer::Impl::setup_routes() {
  auto& s = *http;
  // Each route: timing, metrics, refusals turned into the JSON error shape.
  auto route =
      [this](const std::string& endpoint,
             std::function<void(const httplib::Request&, httplib::Response&, std::string&)> fn) {
        return [this, endpoint, fn](const httplib::Request& req, httplib::Response& res) {
          const auto start = std::chrono::steady_clock::now();
          std::string profile;
          std::string result = "ok";
          try {
            fn(req, res, profile);
          } catch (const Refusal& r) {
            send_error(res, r);
            result = r.code;
            if (!r.profile.empty()) profile = r.profile;
          } catch (const std::exception& e) {
            std::cerr << "kubeca: " << endpoint << ": " << e.what() << "\n";
            send_error(res, {500, "internal", "internal error"});
            result = "internal";
          }
          const double secs =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          metrics.observe(endpoint, profile, result, secs);
        };
      };

  s.Get("/healthz", route("/healthz", [](const auto&, auto& res, auto&) {
          res.set_content("ok\n", "text/plain");
        }));
  s.Get("/readyz", route("/readyz", [this](const auto&, auto& res, auto&) {
          if (!ready || !issuer->store_healthy())
            throw Refusal{503, "not_ready", "the store does not answer"};
          res.set_content("ok\n", "text/plain");
        }));
  s.Get("/metrics", route("/metrics", [this](const auto&, auto& res, auto&) {
          res.set_content(metrics.render(unix_now()), "text/plain; version=0.0.4");
        }));
  s.Get("/v1/ca", route("/v1/ca", [this](const auto&, auto& res, auto&) {
          res.set_content(issuer->ca().certificate_pem(), "application/x-pem-file");
        }));
  s.Post("/v1/sign", route("/v1/sign", [this](const auto& req, auto& res, auto& profile) {
           SignRequest r;
           const std::string auth = req.get_header_value("Authorization");
           if (auth.rfind("Bearer ", 0) == 0) r.bearer = auth.substr(7);
           const Caller caller = caller_of(req);
           json body;
           try {
             body = parse_body(req);
           } catch (const Refusal& e) {
             r.body_error = e.message;  // reported after the token's own refusals
           }
           r.has_csr = body.contains("csr") && body["csr"].is_string();
           r.csr_pem = string_field(body, "csr");
           r.profile = string_field(body, "profile");
           const Issuance out = issuer->sign(caller, r);
           profile = out.profile;
           send_json(res, 201, issued_json(out));
         }));
  s.Post("/v1/renew", route("/v1/renew", [this](const auto& req, auto& res, auto& profile) {
           const Caller caller = caller_of(req);
           const json body = parse_body(req);
           const Issuance out = issuer->renew(
               caller, body.contains("csr") && body["csr"].is_string(), string_field(body, "csr"));
           profile = out.profile;
           send_json(res, 201, issued_json(out));
         }));
  s.Post("/v1/tokens", route("/v1/tokens", [this](const auto& req, auto& res, auto& profile) {
           const Caller caller = caller_of(req);
           issuer->require_admin(caller);
           const json body = parse_body(req);
           std::string token;
           TokenRecord t;
           try {
             t = issuer->create_token(caller, body.at("node").get<std::string>(),
                                      body.contains("ips")
                                          ? body["ips"].get<std::vector<std::string>>()
                                          : std::vector<std::string>{},
                                      body.value("profile", std::string("kubelet")),
                                      body.value("uses", 1), body.value("ttl", std::string("1h")),
                                      token, body.value("allow_privileged", false));
           } catch (const json::exception& e) {
             throw Refusal{400, "malformed_request", std::string("bad token request: ") + e.what()};
           }
           profile = t.profile;
           json out = token_json(t);
           out["token"] = token;
           send_json(res, 201, out);
         }));
  s.Get("/v1/tokens", route("/v1/tokens", [this](const auto& req, auto& res, auto&) {
          issuer->require_admin(caller_of(req));
          json out = json::array();
          for (const auto& t : issuer->list_tokens()) out.push_back(token_json(t));
          send_json(res, 200, out);
        }));
  s.Delete(R"(/v1/tokens/([a-z0-9]{6}))",
           route("/v1/tokens/ID", [this](const auto& req, auto& res, auto&) {
             const Caller caller = caller_of(req);
             issuer->require_admin(caller);
             const std::string id = req.matches[1];
             issuer->revoke_token(caller, id);
             send_json(res, 200, json{{"id", id}, {"revoked", true}});
           }));
  s.Get("/v1/certificates", route("/v1/certificates", [this](const auto& req, auto& res, auto&) {
          issuer->require_admin(caller_of(req));
          json out = json::array();
          for (const auto& c : issuer->list_certificates()) {
            out.push_back({{"serial", c.serial},
                           {"profile", c.profile},
                           {"subject", c.subject},
                           {"sans", c.sans},
                           {"not_before", format_time(Clock::from_time_t(c.not_before))},
                           {"not_after", format_time(Clock::from_time_t(c.not_after))},
                           {"status", c.status},
                           {"requester", c.requester}});
          }
          send_json(res, 200, out);
        }));

  s.Post("/v1/revoke", route("/v1/revoke", [this](const auto& req, auto& res, auto&) {
           const Caller caller = caller_of(req);
           issuer->require_admin(caller);
           const json body = parse_body(req);
           RevokeRequest r;
           r.serial = string_field(body, "serial");
           r.certificate = string_field(body, "certificate");
           if (body.contains("reason")) r.reason = string_field(body, "reason");
           if (const std::string node = string_field(body, "node"); !node.empty()) {
             json serials = json::array();
             for (const auto& c : issuer->revoke_node(caller, node, r.reason))
               serials.push_back(c.serial);
             return send_json(res, 200, {{"node", node}, {"revoked", serials}});
           }
           const CertRecord rec = issuer->revoke(caller, r);
           send_json(res, 200,
                     {{"serial", rec.serial},
                      {"status", rec.status},
                      {"reason", revocation_reason_name(rec.reason)},
                      {"revoked_at", format_time(Clock::from_time_t(rec.revoked_at))}});
         }));
  s.Get("/v1/crl", route("/v1/crl", [this](const auto& req, auto& res, auto&) {
          const Crl c = issuer->current_crl();
          if (req.get_header_value("Accept").find("application/x-pem-file") != std::string::npos) {
            res.set_content(c.pem(), "application/x-pem-file");
          } else {
            res.set_content(std::string(c.der.begin(), c.der.end()), "application/pkix-crl");
          }
        }));

  // Known paths and their methods: anything else is 404 or 405, before a body is read.
  static const std::map<std::string, std::set<std::string>> kRoutes = {
      {"/healthz", {"GET"}},           {"/readyz", {"GET"}},
      {"/metrics", {"GET"}},           {"/v1/ca", {"GET"}},
      {"/v1/sign", {"POST"}},          {"/v1/renew", {"POST"}},
      {"/v1/tokens", {"GET", "POST"}}, {"/v1/certificates", {"GET"}},
      {"/v1/revoke", {"POST"}},        {"/v1/crl", {"GET"}}};
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    auto refuse = [&](const Refusal& r) {
      send_error(res, r);
      // Labels come from a fixed set, never from the request.
      const bool known = kRoutes.count(req.path) || req.path.rfind("/v1/tokens/", 0) == 0;
      metrics.observe(!known                                  ? "other"
                      : req.path.rfind("/v1/tokens/", 0) == 0 ? "/v1/tokens/ID"
                                                              : req.path,
                      "", r.code, 0);
      return httplib::Server::HandlerResponse::Handled;
    };
    if (req.has_header("Transfer-Encoding")) {
      return refuse(
          {411, "length_required", "chunked bodies are not accepted; send Content-Length"});
    }
    if (req.has_header("Content-Length")) {
      const std::string len = req.get_header_value("Content-Length");
      if (len.size() > 12 || std::stoull("0" + len) > options.max_body) {
        return refuse(
            {413, "body_too_large",
             "the body is larger than " + std::to_string(options.max_body / 1024) + " KiB"});
      }
    }
    std::string path = req.path;
    if (path.rfind("/v1/tokens/", 0) == 0) {
      if (req.method != "DELETE")
        return refuse({405, "method_not_allowed", req.method + " is not allowed on " + path});
      return httplib::Server::HandlerResponse::Unhandled;
    }
    auto it = kRoutes.find(path);
    if (it == kRoutes.end()) return refuse({404, "not_found", "no such endpoint: " + path});
    if (!it->second.count(req.method)) {
      res.set_header("Allow", *it->second.begin());
      return refuse({405, "method_not_allowed", req.method + " is not allowed on " + path});
    }
    if (req.path == "/v1/sign") {
      const int wait =
          issuer->blocked(req.remote_addr, bearer_token_id(req.get_header_value("Authorization")));
      if (wait > 0) {
        return refuse({429, "too_many_failures",
                       "too many failed attempts with this token from this address; retry in " +
                           std::to_string(wait) + " s",
                       wait});
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    send_error(res, {res.status, res.status == 413 ? "body_too_large" : "http_error",
                     "HTTP error " + std::to_string(res.status)});
  });
}

SigningServer::SigningServer(const Config& config, const std::filesystem::path& pki_dir,
                             std::unique_ptr<Store> store, const ServeOptions& options)
    : impl_(std::make_unique<Impl>(std::move(store), options)) {
  Impl& m = *impl_;
  IssuerOptions io;
  io.max_failures = options.max_failures;
  io.failure_window = options.failure_window;
  io.crl_lifetime = options.crl_lifetime;
  io.audit_log = options.audit_log;
  io.metrics = &m.metrics;
  m.issuer = std::make_unique<Issuer>(config, pki_dir, *m.store, io);
  std::tie(m.signer_cert_pem, m.signer_key_pem) = m.issuer->signer_credentials();
}

SigningServer::~SigningServer() {
  stop();
  wait();
}

int SigningServer::start() {
  Impl& m = *impl_;
  m.http = std::make_unique<httplib::SSLServer>([&m](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    BIO* cb = BIO_new_mem_buf(m.signer_cert_pem.data(), static_cast<int>(m.signer_cert_pem.size()));
    X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
    BIO_free(cb);
    BIO* kb = BIO_new_mem_buf(m.signer_key_pem.data(), static_cast<int>(m.signer_key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
    BIO_free(kb);
    const bool ok = cert && key && SSL_CTX_use_certificate(&ctx, cert) == 1 &&
                    SSL_CTX_use_PrivateKey(&ctx, key) == 1 && SSL_CTX_check_private_key(&ctx) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    // Ask for a client certificate but let the handler judge it: a JSON 401 says more
    // than a failed handshake.
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
    static const unsigned char sid[] = "kubeca";
    SSL_CTX_set_session_id_context(&ctx, sid, sizeof sid - 1);
    return ok;
  });
  if (!m.http->is_valid())
    throw std::runtime_error("cannot set up TLS with the signer certificate");
  const size_t threads = m.options.threads;
  m.http->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // Answers go out as two writes (headers, body): without TCP_NODELAY the second waits
  // for the client's delayed ACK, about 40 ms on Linux, on every keep-alive request.
  m.http->set_tcp_nodelay(true);
  m.http->set_payload_max_length(m.options.max_body);
  m.http->set_read_timeout(m.options.read_timeout);
  m.http->set_write_timeout(m.options.write_timeout);
  m.http->set_keep_alive_timeout(m.options.keep_alive_timeout.count());
  m.http->set_keep_alive_max_count(m.options.keep_alive_max);
  m.setup_routes();
  int port = m.options.port;
  if (port == 0) {
    port = m.http->bind_to_any_port(m.options.host);
  } else if (!m.http->bind_to_port(m.options.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    throw std::runtime_error("cannot listen on " + m.options.host + ":" +
                             std::to_string(m.options.port) + " (in use, or not an address here)");
  }
  m.ready = true;
  m.thread = std::thread([&m] { m.http->listen_after_bind(); });
  return port;
}

void SigningServer::stop() {
  if (impl_->http) impl_->http->stop();
}

void SigningServer::wait() {
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool SigningServer::running() const { return impl_->http && impl_->http->is_running(); }

}  // namespace kubeca

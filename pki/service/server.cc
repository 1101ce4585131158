#include "kubeca/server.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "http_transport.h"
#include "kubeca/issuer.h"
#include "kubeca/metrics.h"
#include "kubeca/periodic.h"
#include "kubeca/pki.h"
#include "kubeca/token.h"

namespace kubeca {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::system_clock;
using http::Request;
using http::Response;

using Refusal = ServiceError;

std::optional<Botan::X509_Certificate> peer_certificate(const Request& req) {
  if (req.peer_certificate.empty()) return std::nullopt;
  try {
    return Botan::X509_Certificate(req.peer_certificate);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Response json_response(int status, const json& body) {
  Response res;
  res.status = status;
  res.content_type = "application/json";
  // Bytes that are not UTF-8 (a CSR's CN) are replaced: an answer never fails to encode.
  res.body = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return res;
}

Response error_response(const Refusal& r) {
  Response res = json_response(r.status, json{{"error", r.message}, {"code", r.code}});
  if (r.retry_after > 0) res.headers.emplace_back("Retry-After", std::to_string(r.retry_after));
  return res;
}

Response text(std::string body, std::string type = "text/plain") {
  Response res;
  res.content_type = std::move(type);
  res.body = std::move(body);
  return res;
}

// Known paths and their methods: anything else is 404 or 405, before a body is read.
const std::map<std::string, std::set<std::string>> kRoutes = {
    {"/healthz", {"GET"}},           {"/readyz", {"GET"}},
    {"/metrics", {"GET"}},           {"/v1/ca", {"GET"}},
    {"/v1/sign", {"POST"}},          {"/v1/renew", {"POST"}},
    {"/v1/tokens", {"GET", "POST"}}, {"/v1/certificates", {"GET"}},
    {"/v1/revoke", {"POST"}},        {"/v1/crl", {"GET"}},
    {"/v1/users", {"POST"}}};

// The metric label of a request: a route template, or "other"; never the request's text.
std::string endpoint_of(const Request& req) {
  if (req.bad_path) return "other";
  if (req.path.rfind("/v1/tokens/", 0) == 0) return "/v1/tokens/ID";
  return kRoutes.count(req.path) ? req.path : "other";
}

}  // namespace

struct SigningServer::Impl {
  using Handler = std::function<Response(const Request&, std::string& profile)>;

  std::unique_ptr<Store> store;
  ServeOptions options;
  std::unique_ptr<Issuer> issuer;
  std::vector<std::string> signer_names;  // the listen address, unless a wildcard
  std::string signer_cert_pem, signer_key_pem;
  std::unique_ptr<http::Transport> http;
  std::map<std::pair<std::string, std::string>, Handler> handlers;  // (method, path)
  Metrics metrics;
  // CRL and gauges, on the replica that leads; after `metrics` and `issuer`, which it uses,
  // so it is destroyed (and its thread joined) before them.
  std::unique_ptr<PeriodicWork> periodic;
  std::atomic<bool> ready{false};
  std::thread renewer;
  std::thread warmer;  // reads the store's live certificates for /metrics after the start
  std::mutex renew_mu;
  std::condition_variable renew_cv;
  bool stopping = false;

  Impl(std::unique_ptr<Store> s, const ServeOptions& o) : store(std::move(s)), options(o) {}

  static Caller caller_of(const Request& req) { return Caller{req.remote, peer_certificate(req)}; }

  static json parse_body(const Request& req) {
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
  http::Routes routes();
  std::optional<Response> check(const Request& req);
  int limited(const Request& req);
  Response handle(const Request& req);
  void renew_signer();
};

// Pre-routing, with the headers only: the refusal that saves reading the body.
std::optional<Response> SigningServer::Impl::check(const Request& req) {
  std::optional<Refusal> r;
  if (req.has_header("transfer-encoding")) {
    r = Refusal{411, "length_required", "chunked bodies are not accepted; send Content-Length"};
  } else if (const std::string len = req.header("content-length");
             !len.empty() && (len.size() > 12 || std::stoull("0" + len) > options.max_body)) {
    r = Refusal{413, "body_too_large",
                "the body is larger than " + std::to_string(options.max_body / 1024) + " KiB"};
  } else if (req.bad_path) {
    r = Refusal{400, "malformed_path", "the request path is not percent-encoded UTF-8"};
  } else if (req.path.rfind("/v1/tokens/", 0) == 0) {
    const std::string id = req.path.substr(std::string("/v1/tokens/").size());
    const bool token_id = id.size() == 6 && std::all_of(id.begin(), id.end(), [](char c) {
                            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                          });
    if (req.method != "DELETE") {
      r = Refusal{405, "method_not_allowed", req.method + " is not allowed on " + req.path};
    } else if (!token_id) {
      r = Refusal{404, "not_found", "no such endpoint: " + req.path};
    }
  } else if (auto it = kRoutes.find(req.path); it == kRoutes.end()) {
    r = Refusal{404, "not_found", "no such endpoint: " + req.path};
  } else if (!it->second.count(req.method)) {
    r = Refusal{405, "method_not_allowed", req.method + " is not allowed on " + req.path};
  } else if (const int wait = limited(req); wait > 0) {
    r = Refusal{429, "too_many_failures",
                "too many failed attempts with this token from this address; retry in " +
                    std::to_string(wait) + " s",
                wait};
  }
  if (!r) return std::nullopt;
  Response res = error_response(*r);
  if (r->status == 405 && kRoutes.count(req.path)) {
    res.headers.emplace_back("Allow", *kRoutes.at(req.path).begin());
  }
  metrics.observe(endpoint_of(req), "", r->code, 0);
  return res;
}

// The failure limiter, asked before the body is read: seconds to wait, 0 when none.
int SigningServer::Impl::limited(const Request& req) {
  if (req.path != "/v1/sign") return 0;
  return issuer->blocked(req.remote, bearer_token_id(req.header("authorization")));
}

// Each route: timing, metrics, refusals turned into the JSON error shape.
Response SigningServer::Impl::handle(const Request& req) {
  const auto start = std::chrono::steady_clock::now();
  const std::string endpoint = endpoint_of(req);
  std::string profile;
  std::string result = "ok";
  Response res;
  try {
    const bool token_path = endpoint == "/v1/tokens/ID";
    res = handlers.at({req.method, token_path ? endpoint : req.path})(req, profile);
  } catch (const Refusal& r) {
    res = error_response(r);
    result = r.code;
    if (!r.profile.empty()) profile = r.profile;
  } catch (const StoreUnavailable& e) {
    // Another replica, or this one a little later, may answer: nothing was half-written.
    std::cerr << "kubeca: " << endpoint << ": " << e.what() << "\n";
    res = error_response({503, "store_unavailable", "the store does not answer; retry"});
    result = "store_unavailable";
  } catch (const std::exception& e) {
    // The exception's text may name a file: it goes to the log, never to the client.
    std::cerr << "kubeca: " << endpoint << ": " << e.what() << "\n";
    res = error_response({500, "internal", "internal error"});
    result = "internal";
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics.observe(endpoint, profile, result, secs);
  return res;
}

http::Routes SigningServer::Impl::routes() {
  http::Routes r;
  r.check = [this](const Request& req) { return check(req); };
  r.cheap = [](const Request& req) { return req.path == "/healthz" || req.path == "/v1/ca"; };
  r.handle = [this](const Request& req) { return handle(req); };
  r.refuse = [this](int status, const std::string& why) {
    const std::string code = status == 413   ? "body_too_large"
                             : status == 431 ? "headers_too_large"
                             : status >= 500 ? "internal"
                                             : "malformed_request";
    metrics.observe("other", "", code, 0);
    return error_response({status, code, why});
  };
  return r;
}

void SigningServer::Impl::setup_routes() {
  auto on = [this](const char* method, const char* path, Handler h) {
    handlers[{method, path}] = std::move(h);
  };
  on("GET", "/healthz", [](const Request&, std::string&) { return text("ok\n"); });
  on("GET", "/readyz", [this](const Request&, std::string&) {
    if (!ready || !issuer->store_healthy())
      throw Refusal{503, "not_ready", "the store does not answer"};
    return text("ok\n");
  });
  on("GET", "/metrics", [this](const Request&, std::string&) {
    return text(metrics.render(unix_now()), "text/plain; version=0.0.4");
  });
  on("GET", "/v1/ca", [this](const Request&, std::string&) {
    return text(issuer->ca().certificate_pem(), "application/x-pem-file");
  });
  on("POST", "/v1/sign", [this](const Request& req, std::string& profile) {
    SignRequest r;
    const std::string auth = req.header("authorization");
    if (auth.rfind("Bearer ", 0) == 0) r.bearer = auth.substr(7);
    r.retry = req.header("kubeca-retry") == "1";
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
    return json_response(201, issued_json(out));
  });
  on("POST", "/v1/renew", [this](const Request& req, std::string& profile) {
    const Caller caller = caller_of(req);
    const json body = parse_body(req);
    const Issuance out = issuer->renew(caller, body.contains("csr") && body["csr"].is_string(),
                                       string_field(body, "csr"));
    profile = out.profile;
    return json_response(201, issued_json(out));
  });
  on("POST", "/v1/tokens", [this](const Request& req, std::string& profile) {
    const Caller caller = caller_of(req);
    issuer->require_admin(caller);
    const json body = parse_body(req);
    std::string token;
    TokenRecord t;
    try {
      t = issuer->create_token(caller, body.at("node").get<std::string>(),
                               body.contains("ips") ? body["ips"].get<std::vector<std::string>>()
                                                    : std::vector<std::string>{},
                               body.value("profile", std::string("kubelet")), body.value("uses", 1),
                               body.value("ttl", std::string("1h")), token,
                               body.value("allow_privileged", false));
    } catch (const json::exception& e) {
      throw Refusal{400, "malformed_request", std::string("bad token request: ") + e.what()};
    }
    profile = t.profile;
    json out = token_json(t);
    out["token"] = token;
    return json_response(201, out);
  });
  on("GET", "/v1/tokens", [this](const Request& req, std::string&) {
    issuer->require_admin(caller_of(req));
    json out = json::array();
    for (const auto& t : issuer->list_tokens()) out.push_back(token_json(t));
    return json_response(200, out);
  });
  on("DELETE", "/v1/tokens/ID", [this](const Request& req, std::string&) {
    const Caller caller = caller_of(req);
    issuer->require_admin(caller);
    const std::string id = req.path.substr(std::string("/v1/tokens/").size());
    issuer->revoke_token(caller, id);
    return json_response(200, json{{"id", id}, {"revoked", true}});
  });
  on("POST", "/v1/users", [this](const Request& req, std::string& profile) {
    UserSignRequest r;
    try {
      const json body = parse_body(req);
      const auto str = [&](const char* k) {
        if (body.contains(k) && !body[k].is_string()) throw Refusal{400, "", k};
        return string_field(body, k);
      };
      r.has_csr = body.contains("csr") && body["csr"].is_string();
      r.csr_pem = str("csr");
      r.name = str("name");
      r.ttl = body.contains("ttl") ? str("ttl") : "24h";
      if (body.contains("groups")) {
        if (!body["groups"].is_array()) throw Refusal{400, "", "groups"};
        for (const auto& g : body["groups"]) {
          if (!g.is_string()) throw Refusal{400, "", "groups"};
          r.groups.push_back(g.get<std::string>());
        }
      }
      if (body.contains("allow_privileged") && !body["allow_privileged"].is_boolean()) {
        throw Refusal{400, "", "allow_privileged"};
      }
      r.allow_privileged = body.value("allow_privileged", false);
    } catch (const Refusal& e) {
      r.body_error = e.code.empty() ? "\"" + e.message + "\" has the wrong type" : e.message;
    }
    const Issuance out = issuer->sign_user(caller_of(req), r);
    profile = out.profile;
    return json_response(201, issued_json(out));
  });
  on("GET", "/v1/certificates", [this](const Request& req, std::string&) {
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
    return json_response(200, out);
  });
  on("POST", "/v1/revoke", [this](const Request& req, std::string&) {
    const Caller caller = caller_of(req);
    issuer->require_admin(caller);
    const json body = parse_body(req);
    RevokeRequest r;
    r.serial = string_field(body, "serial");
    r.certificate = string_field(body, "certificate");
    if (body.contains("reason")) r.reason = string_field(body, "reason");
    if (const std::string node = string_field(body, "node"); !node.empty()) {
      json serials = json::array();
      for (const auto& c : issuer->revoke_node(caller, node, r.reason)) {
        serials.push_back(c.serial);
      }
      return json_response(200, {{"node", node}, {"revoked", serials}});
    }
    const CertRecord rec = issuer->revoke(caller, r);
    return json_response(200, {{"serial", rec.serial},
                               {"status", rec.status},
                               {"reason", revocation_reason_name(rec.reason)},
                               {"revoked_at", format_time(Clock::from_time_t(rec.revoked_at))}});
  });
  on("GET", "/v1/crl", [this](const Request& req, std::string&) {
    const Crl c = issuer->current_crl();
    if (req.header("accept").find("application/x-pem-file") != std::string::npos) {
      return text(c.pem(), "application/x-pem-file");
    }
    return text(std::string(c.der.begin(), c.der.end()), "application/pkix-crl");
  });
}

// The signer certificate, issued again at two thirds of its life while serving: new
// connections get the new one, open ones keep theirs.
void SigningServer::Impl::renew_signer() {
  std::unique_lock<std::mutex> lock(renew_mu);
  while (!stopping) {
    const auto due = Issuer::signer_renew_at(signer_cert_pem) - Clock::now();
    // Woken at least once a minute: a clock step must not make it miss the date.
    const auto wait =
        std::clamp<Clock::duration>(due, std::chrono::seconds(1), std::chrono::minutes(1));
    if (renew_cv.wait_for(lock, wait, [this] { return stopping; })) break;
    if (!issuer->signer_due(signer_cert_pem, signer_names)) continue;
    try {
      auto [cert, key] = issuer->signer_credentials(signer_names);
      http->set_credentials(cert, key);
      signer_cert_pem = cert;
    } catch (const std::exception& e) {
      std::cerr << "kubeca: renewing the signer certificate failed: " << e.what() << "\n";
    }
  }
}

SigningServer::SigningServer(const Config& config, const std::filesystem::path& pki_dir,
                             std::unique_ptr<Store> store, const ServeOptions& options)
    : impl_(std::make_unique<Impl>(std::move(store), options)) {
  Impl& m = *impl_;
  // As cpp-httplib's server did: a client in the same process (demo, tests) that writes to a
  // connection the server closed gets EPIPE instead of being killed.
  signal(SIGPIPE, SIG_IGN);
  IssuerOptions io;
  io.max_failures = options.max_failures;
  io.failure_window = options.failure_window;
  io.crl_lifetime = options.crl_lifetime;
  io.audit_log = options.audit_log;
  io.metrics = &m.metrics;
  m.issuer = std::make_unique<Issuer>(config, pki_dir, *m.store, io);
  PeriodicOptions po;
  po.period = options.periodic_every;
  po.count_every = options.count_every;
  m.periodic = std::make_unique<PeriodicWork>(*m.issuer, *m.store, &m.metrics, po);
  static const std::set<std::string> kWildcards = {"", "0.0.0.0", "::", "[::]"};
  if (!kWildcards.count(options.host)) m.signer_names.push_back(options.host);
  std::tie(m.signer_cert_pem, m.signer_key_pem) = m.issuer->signer_credentials(m.signer_names);
}

SigningServer::~SigningServer() {
  stop();
  wait();
}

int SigningServer::start() {
  Impl& m = *impl_;
  const ServeOptions& o = m.options;
  http::TransportOptions t;
  t.host = o.host;
  t.port = o.port;
  t.io_threads =
      o.io_threads ? o.io_threads : std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);
  t.workers = o.threads;
  t.max_connections = o.max_connections;
  t.max_body = o.max_body;
  t.handshake_timeout = o.handshake_timeout;
  t.request_deadline = o.request_deadline;
  t.keep_alive_timeout = o.keep_alive_timeout;
  t.write_timeout = o.write_timeout;
  t.keep_alive_max = o.keep_alive_max;
  m.setup_routes();
  m.http = std::make_unique<http::Transport>(t, m.routes());
  m.http->set_credentials(m.signer_cert_pem, m.signer_key_pem);
  const int port = m.http->listen();
  try {
    m.periodic->round();  // before the first request: the leader's CRL is made already
  } catch (const std::exception& e) {
    std::cerr << "kubeca: periodic work: " << e.what() << "\n";
  }
  m.periodic->start();
  m.ready = true;
  m.http->start();
  m.renewer = std::thread([&m] { m.renew_signer(); });
  m.warmer = std::thread([&m] { m.metrics.refresh(unix_now()); });
  return port;
}

void SigningServer::stop() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.renew_mu);
    m.stopping = true;
  }
  m.renew_cv.notify_all();
  if (m.periodic) m.periodic->stop();
  if (m.http) m.http->stop();
}

void SigningServer::wait() {
  Impl& m = *impl_;
  if (m.renewer.joinable()) m.renewer.join();
  if (m.warmer.joinable()) m.warmer.join();
  if (m.http) m.http->wait();
}

bool SigningServer::running() const { return impl_->http && impl_->http->running(); }

}  // namespace kubeca

#include "kubeca/server.h"

#include <botan/data_src.h>
#include <botan/pkcs10.h>
#include <botan/pkix_types.h>
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

#include "kubeca/ca.h"
#include "kubeca/crl.h"
#include "kubeca/csr.h"
#include "kubeca/fs.h"
#include "kubeca/keys.h"
#include "kubeca/net.h"
#include "kubeca/node.h"
#include "kubeca/pki.h"
#include "kubeca/token.h"

namespace kubeca {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::system_clock;

// A refusal that reaches the client as {"error", "code"} with its status.
struct Refusal {
  int status;
  std::string code;
  std::string message;
};

const double kBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

class Metrics {
 public:
  void observe(const std::string& endpoint, const std::string& profile, const std::string& result,
               double seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_[endpoint + "\x1f" + profile + "\x1f" + result];
    auto& h = histograms_[endpoint];
    h.resize(std::size(kBuckets) + 1);
    for (size_t i = 0; i < std::size(kBuckets); ++i) {
      if (seconds <= kBuckets[i]) ++h[i];
    }
    ++h.back();
    sums_[endpoint] += seconds;
  }
  void issued(const std::string& profile) {
    std::lock_guard<std::mutex> lock(mu_);
    ++issued_[profile];
  }
  std::string render() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    out += "# HELP kubeca_requests_total Requests by endpoint, profile and result.\n";
    out += "# TYPE kubeca_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
      const auto a = key.find('\x1f'), b = key.find('\x1f', a + 1);
      out += "kubeca_requests_total{endpoint=\"" + key.substr(0, a) + "\",profile=\"" +
             key.substr(a + 1, b - a - 1) + "\",result=\"" + key.substr(b + 1) + "\"} " +
             std::to_string(n) + "\n";
    }
    out += "# HELP kubeca_request_duration_seconds Request latency by endpoint.\n";
    out += "# TYPE kubeca_request_duration_seconds histogram\n";
    for (const auto& [endpoint, h] : histograms_) {
      const std::string l = "endpoint=\"" + endpoint + "\"";
      for (size_t i = 0; i < std::size(kBuckets); ++i) {
        char le[32];
        std::snprintf(le, sizeof le, "%g", kBuckets[i]);
        out += "kubeca_request_duration_seconds_bucket{" + l + ",le=\"" + le + "\"} " +
               std::to_string(h[i]) + "\n";
      }
      out += "kubeca_request_duration_seconds_bucket{" + l + ",le=\"+Inf\"} " +
             std::to_string(h.back()) + "\n";
      out += "kubeca_request_duration_seconds_sum{" + l + "} " +
             std::to_string(sums_.at(endpoint)) + "\n";
      out += "kubeca_request_duration_seconds_count{" + l + "} " + std::to_string(h.back()) + "\n";
    }
    out += "# HELP kubeca_certificates_issued_total Certificates issued since start.\n";
    out += "# TYPE kubeca_certificates_issued_total counter\n";
    for (const auto& [profile, n] : issued_) {
      out += "kubeca_certificates_issued_total{profile=\"" + profile + "\"} " + std::to_string(n) +
             "\n";
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> requests_;
  std::map<std::string, std::vector<uint64_t>> histograms_;
  std::map<std::string, double> sums_;
  std::map<std::string, uint64_t> issued_;
};

// Failed credential attempts per remote address, in a sliding window.
class FailureLimiter {
 public:
  FailureLimiter(int max, std::chrono::seconds window) : max_(max), window_(window) {}
  bool blocked(const std::string& addr) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& q = prune(addr);
    return static_cast<int>(q.size()) >= max_;
  }
  void fail(const std::string& addr) {
    std::lock_guard<std::mutex> lock(mu_);
    prune(addr).push_back(std::chrono::steady_clock::now());
  }

 private:
  std::deque<std::chrono::steady_clock::time_point>& prune(const std::string& addr) {
    auto& q = failures_[addr];
    const auto cutoff = std::chrono::steady_clock::now() - window_;
    while (!q.empty() && q.front() < cutoff) q.pop_front();
    return q;
  }
  int max_;
  std::chrono::seconds window_;
  std::mutex mu_;
  std::map<std::string, std::deque<std::chrono::steady_clock::time_point>> failures_;
};

struct ParsedCsr {
  std::unique_ptr<Csr> req;
  std::unique_ptr<Botan::Public_Key> key;
};

// Decoded with Botan, the self-signature checked once with OpenSSL (kubeca/csr.h says why).
ParsedCsr parse_csr(const json& body) {
  if (!body.contains("csr") || !body["csr"].is_string()) {
    throw Refusal{400, "missing_csr", "the body needs a \"csr\" field with a PEM CSR"};
  }
  const std::string pem = body["csr"].get<std::string>();
  if (pem.find("-----BEGIN CERTIFICATE REQUEST-----") == std::string::npos) {
    throw Refusal{400, "malformed_csr", "csr is not a PEM CERTIFICATE REQUEST"};
  }
  ParsedCsr out;
  try {
    out.req = std::make_unique<Csr>(Csr::from_pem(pem));
    out.key = out.req->subject_public_key();
  } catch (const std::exception& e) {
    throw Refusal{400, "malformed_csr", std::string("csr cannot be parsed: ") + e.what()};
  }
  // A bad self-signature is reported before a weak key, as when Botan checked it.
  if (!out.req->self_signature_ok()) {
    throw Refusal{400, "bad_csr_signature", "the CSR's self-signature does not verify"};
  }
  const std::string weak = weak_key_reason(*out.key);
  if (!weak.empty()) throw Refusal{403, "weak_key", weak};
  if (out.req->is_CA()) {
    throw Refusal{403, "ca_not_allowed", "the CSR asks for a CA certificate (CA:TRUE)"};
  }
  return out;
}

// A CSR may leave its subject and names empty, or repeat the ones it will get; asking for
// anything else is refused rather than silently dropped.
void check_csr_names(const Csr& req, const CertSpec& spec, const std::set<std::string>& extra_cns) {
  const auto& dn = req.subject_dn();
  for (const auto& [oid, value] : dn.dn_info()) {
    const std::string n = oid.to_formatted_string();
    const std::string v = value.value();
    if (n == "X520.Organization") {
      if (std::find(spec.organizations.begin(), spec.organizations.end(), v) ==
          spec.organizations.end()) {
        throw Refusal{403, v == "system:masters" ? "group_not_allowed" : "name_not_allowed",
                      "the CSR asks for O=" + v + ", which this credential does not grant"};
      }
    } else if (n == "X520.CommonName") {
      if (v != spec.common_name && !extra_cns.count(v)) {
        throw Refusal{403, "name_not_allowed",
                      "the CSR asks for CN=" + v + "; this credential is for " + spec.common_name};
      }
    } else {
      throw Refusal{403, "name_not_allowed",
                    "the CSR's subject has " + n + ", which is not allowed"};
    }
  }
  for (const auto& [type, value] : req.subject_alt_name().get_attributes()) {
    const auto& allowed = type == "DNS" ? spec.dns_names : spec.ip_addresses;
    if ((type != "DNS" && type != "IP") ||
        std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      throw Refusal{
          403, "name_not_allowed",
          "the CSR asks for " + type + ":" + value + ", which this credential does not grant"};
    }
  }
}

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
  Config config;
  std::filesystem::path pki_dir;
  std::unique_ptr<Store> store;
  ServeOptions options;
  std::unique_ptr<Ca> ca;
  std::map<Profile, std::unique_ptr<Ca>> other_cas;  // front-proxy-ca, etcd-ca when present
  std::string signer_cert_pem, signer_key_pem;
  std::unique_ptr<httplib::SSLServer> http;
  std::thread thread;
  Metrics metrics;
  FailureLimiter limiter;
  std::mutex audit_mu;
  std::ofstream audit_file;
  std::atomic<bool> ready{false};
  std::mutex crl_mu;
  Crl crl;
  std::set<std::string> crl_serials;  // what the cached CRL lists

  Impl(const Config& c, const std::filesystem::path& dir, std::unique_ptr<Store> s,
       const ServeOptions& o)
      : config(c),
        pki_dir(dir),
        store(std::move(s)),
        options(o),
        limiter(o.max_failures, o.failure_window) {}

  void audit(const httplib::Request& req, const std::string& action, const std::string& token_id,
             const std::string& profile, const std::string& subject, const std::string& serial,
             const std::string& result, const std::string& detail) {
    json line = {{"time", format_time(Clock::now())},
                 {"remote", req.remote_addr},
                 {"action", action},
                 {"token_id", token_id},
                 {"profile", profile},
                 {"subject", subject},
                 {"serial", serial},
                 {"result", result}};
    if (!detail.empty()) line["detail"] = detail;
    std::lock_guard<std::mutex> lock(audit_mu);
    if (audit_file.is_open()) {
      audit_file << line.dump() << "\n" << std::flush;
    } else {
      std::cout << line.dump() << "\n" << std::flush;
    }
  }

  const Ca& ca_for(Profile p) {
    const Profile issuer = issuer_of(p);
    if (issuer == Profile::kCa) return *ca;
    auto it = other_cas.find(issuer);
    if (it == other_cas.end()) {
      throw Refusal{
          503, "ca_missing",
          std::string("the CA for profile ") + to_string(p) + " is not in the PKI folder"};
    }
    return *it->second;
  }

  // Issues and records; `use` stores the record (and spends a token) atomically.
  json issue(const CertSpec& spec, const Botan::Public_Key& key, const std::string& requester,
             const std::function<TokenUse(const CertRecord&)>& use) {
    Botan::RandomNumberGenerator& rng = thread_rng();
    const Ca& signer = ca_for(spec.profile);
    for (int attempt = 0; attempt < 4; ++attempt) {
      const auto cert = signer.issue(spec, key, Clock::now(), random_serial(rng), rng);
      CertRecord rec = record_of(cert, to_string(spec.profile), requester);
      const TokenUse r = use(rec);
      if (r == TokenUse::kDuplicateSerial) continue;
      if (r != TokenUse::kOk)
        throw Refusal{401, std::string("token_") + to_string(r), token_message(r)};
      metrics.issued(rec.profile);
      return {{"certificate", rec.pem},
              {"ca", signer.certificate_pem()},
              {"serial", rec.serial},
              {"subject", rec.subject},
              {"not_after", format_time(cert.not_after().to_std_timepoint())}};
    }
    throw Refusal{500, "serial_collision", "could not find a free serial"};
  }

  static std::string token_message(TokenUse r) {
    switch (r) {
      case TokenUse::kUnknown:
        return "unknown token";
      case TokenUse::kRevoked:
        return "the token was revoked";
      case TokenUse::kExpired:
        return "the token has expired";
      case TokenUse::kUsedUp:
        return "the token has no uses left";
      default:
        return "token refused";
    }
  }

  // The caller's certificate, checked: issued by our CA, in its validity, not revoked.
  Botan::X509_Certificate client_identity(const httplib::Request& req) {
    auto cert = peer_certificate(req);
    if (!cert)
      throw Refusal{401, "client_certificate_required",
                    "this endpoint needs a client certificate (mTLS)"};
    if (!ca->issued(*cert)) {
      throw Refusal{401, "unknown_issuer", "the client certificate was not issued by this CA"};
    }
    const auto now = Clock::now();
    if (now > cert->not_after().to_std_timepoint()) {
      throw Refusal{401, "certificate_expired",
                    "the client certificate has expired; the node needs a new token"};
    }
    if (now < cert->not_before().to_std_timepoint()) {
      throw Refusal{401, "certificate_not_yet_valid", "the client certificate is not yet valid"};
    }
    if (auto rec = store->find_certificate(serial_hex(*cert)); rec && rec->status == "revoked") {
      throw Refusal{401, "certificate_revoked", "the client certificate has been revoked"};
    }
    return *cert;
  }

  void require_admin(const httplib::Request& req) {
    const auto cert = client_identity(req);
    const auto orgs = cert.subject_info("X520.Organization");
    if (std::find(orgs.begin(), orgs.end(), "system:masters") == orgs.end()) {
      throw Refusal{403, "admin_required",
                    "this endpoint needs an admin certificate (O=system:masters)"};
    }
  }

  json parse_body(const httplib::Request& req) {
    try {
      return json::parse(req.body);
    } catch (const json::exception&) {
      throw Refusal{400, "malformed_json", "the body is not JSON"};
    }
  }

  json sign(const httplib::Request& req, std::string& profile_out, std::string& token_id) {
    const std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Bearer ", 0) != 0) {
      limiter.fail(req.remote_addr);
      throw Refusal{401, "token_required", "Authorization: Bearer TOKEN is required"};
    }
    const auto parts = parse_token(auth.substr(7));
    if (!parts) {
      limiter.fail(req.remote_addr);
      throw Refusal{401, "token_malformed",
                    "the token is not of the form [a-z0-9]{6}.[a-z0-9]{16}"};
    }
    token_id = parts->id;
    const auto token = store->find_token(parts->id);
    if (!token || !secret_matches(parts->secret, token->secret_hash)) {
      limiter.fail(req.remote_addr);
      throw Refusal{401, "token_invalid", "invalid token"};
    }
    const int64_t now = unix_now();
    if (token->revoked) throw Refusal{401, "token_revoked", token_message(TokenUse::kRevoked)};
    if (now >= token->expires_at)
      throw Refusal{401, "token_expired", token_message(TokenUse::kExpired)};
    if (token->uses >= token->uses_allowed)
      throw Refusal{401, "token_used_up", token_message(TokenUse::kUsedUp)};

    const json body = parse_body(req);
    const std::string profile_name = body.contains("profile") && body["profile"].is_string()
                                         ? body["profile"].get<std::string>()
                                         : token->profile;
    profile_out = profile_name;
    if (profile_name != token->profile) {
      throw Refusal{403, "profile_not_allowed",
                    "the token is bound to profile " + token->profile + ", not " + profile_name};
    }
    const auto profile = parse_profile(profile_name);
    if (!profile || profile_is_ca(*profile)) {
      throw Refusal{403, "profile_not_allowed", "profile " + profile_name + " cannot be requested"};
    }
    ParsedCsr csr = parse_csr(body);
    CertSpec spec;
    try {
      spec = make_spec(config, *profile, Identity{token->node, token->ips, {}});
    } catch (const InputError& e) {
      throw Refusal{403, "profile_not_allowed", e.what()};
    }
    check_csr_names(*csr.req, spec, {token->node, "system:node:" + token->node});
    return issue(spec, *csr.key, "token:" + token->id, [&](const CertRecord& rec) {
      return store->use_token(token->id, rec, unix_now());
    });
  }

  json renew(const httplib::Request& req, std::string& profile_out) {
    const auto old = client_identity(req);
    const json body = parse_body(req);
    ParsedCsr csr = parse_csr(body);
    // The same identity as the certificate presented: subject, names and usages.
    const auto rec = store->find_certificate(serial_hex(old));
    const auto profile = rec ? parse_profile(rec->profile) : std::nullopt;
    CertSpec spec = identity_of(old, profile ? *profile : Profile::kKubelet);
    if (profile_is_ca(spec.profile) || issuer_of(spec.profile) != Profile::kCa) {
      throw Refusal{403, "profile_not_allowed", "only certificates of the cluster CA renew here"};
    }
    profile_out = to_string(spec.profile);
    check_csr_names(*csr.req, spec, {});
    return issue(spec, *csr.key, "renew:" + serial_hex(old), [&](const CertRecord& r) {
      return store->insert_certificate(r) ? TokenUse::kOk : TokenUse::kDuplicateSerial;
    });
  }

  json create_token(const httplib::Request& req) {
    const json body = parse_body(req);
    TokenRequest r;
    try {
      r.node = body.at("node").get<std::string>();
      if (body.contains("ips")) r.ips = body["ips"].get<std::vector<std::string>>();
      r.profile = body.value("profile", std::string("kubelet"));
      r.uses = body.value("uses", 1);
      r.ttl = parse_duration(body.value("ttl", std::string("1h")));
      const auto p = parse_profile(r.profile);
      if (p && !profile_is_ca(*p)) make_spec(config, *p, Identity{r.node, r.ips, {}});
      auto [token, t] = kubeca::create_token(*store, r, unix_now());
      json out = token_json(t);
      out["token"] = token;
      return out;
    } catch (const json::exception& e) {
      throw Refusal{400, "malformed_request", std::string("bad token request: ") + e.what()};
    } catch (const InputError& e) {
      throw Refusal{400, "malformed_request", e.what()};
    }
  }

  std::string metrics_text() {
    std::string out = metrics.render();
    const auto now = Clock::now();
    auto secs = [&](TimePoint t) {
      return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(t - now).count());
    };
    out += "# HELP kubeca_ca_expiry_seconds Seconds until the CA certificate expires.\n";
    out += "# TYPE kubeca_ca_expiry_seconds gauge\n";
    out +=
        "kubeca_ca_expiry_seconds " + secs(ca->certificate().not_after().to_std_timepoint()) + "\n";
    out +=
        "# HELP kubeca_certificate_expiry_seconds Seconds until each issued, unrevoked certificate "
        "expires.\n";
    out += "# TYPE kubeca_certificate_expiry_seconds gauge\n";
    const int64_t t = unix_now();
    for (const auto& c : store->list_certificates()) {
      if (c.status != "good" || c.not_after <= t) continue;
      out += "kubeca_certificate_expiry_seconds{serial=\"" + c.serial + "\",profile=\"" +
             c.profile + "\"} " + std::to_string(c.not_after - t) + "\n";
    }
    return out;
  }

  // The CRL, made again when the store's revocations changed (the CLI may revoke too) or
  // half its life has passed, so it is never served past its nextUpdate.
  Crl current_crl() {
    const auto records = store->list_certificates();
    std::set<std::string> revoked;
    for (const auto& r : records) {
      if (r.status == "revoked") revoked.insert(r.serial);
    }
    const auto now = Clock::now();
    std::lock_guard<std::mutex> lock(crl_mu);
    if (crl.der.empty() || revoked != crl_serials ||
        now - crl.this_update > (crl.next_update - crl.this_update) / 2) {
      crl = make_crl(*ca, records, now, options.crl_lifetime);
      crl_serials = revoked;
    }
    return crl;
  }

  json revoke(const httplib::Request& req) {
    const json body = parse_body(req);
    int reason = 0;
    if (body.contains("reason")) {
      const auto r = body["reason"].is_string()
                         ? parse_revocation_reason(body["reason"].get<std::string>())
                         : std::nullopt;
      if (!r) throw Refusal{400, "malformed_request", "reason: not an RFC 5280 reason name"};
      reason = *r;
    }
    const bool by_cert = body.contains("certificate") && body["certificate"].is_string();
    const bool by_serial = body.contains("serial") && body["serial"].is_string();
    if (!by_cert && !by_serial) {
      throw Refusal{400, "malformed_request", "give \"serial\" (hex) or \"certificate\" (PEM)"};
    }
    std::optional<CertRecord> rec;
    try {
      rec = revoke_certificate(*store, *ca, by_serial ? body["serial"].get<std::string>() : "",
                               by_cert ? body["certificate"].get<std::string>() : "", reason,
                               unix_now());
    } catch (const InputError& e) {
      throw Refusal{400, "malformed_certificate", e.what()};
    }
    if (!rec) {
      throw Refusal{
          404, "not_found",
          "no certificate with serial " + body.value("serial", std::string()) + " in the store"};
    }
    const std::string serial = rec->serial;
    current_crl();
    return {{"serial", serial},
            {"status", rec->status},
            {"reason", revocation_reason_name(rec->reason)},
            {"revoked_at", format_time(Clock::from_time_t(rec->revoked_at))}};
  }

  void setup_routes();
  void send_error(httplib::Response& res, const Refusal& r) {
    res.status = r.status;
    res.set_content(json{{"error", r.message}, {"code", r.code}}.dump() + "\n", "application/json");
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
          } catch (const std::exception& e) {
            send_error(res, {500, "internal", std::string("internal error: ") + e.what()});
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
          if (!ready || !store->healthy())
            throw Refusal{503, "not_ready", "the store does not answer"};
          res.set_content("ok\n", "text/plain");
        }));
  s.Get("/metrics", route("/metrics", [this](const auto&, auto& res, auto&) {
          res.set_content(metrics_text(), "text/plain; version=0.0.4");
        }));
  s.Get("/v1/ca", route("/v1/ca", [this](const auto&, auto& res, auto&) {
          res.set_content(ca->certificate_pem(), "application/x-pem-file");
        }));
  s.Post("/v1/sign", route("/v1/sign", [this](const auto& req, auto& res, auto& profile) {
           std::string token_id;
           try {
             json out = sign(req, profile, token_id);
             audit(req, "sign", token_id, profile, out["subject"], out["serial"], "issued", "");
             res.status = 201;
             res.set_content(out.dump() + "\n", "application/json");
           } catch (const Refusal& r) {
             audit(req, "sign", token_id, profile, "", "", "refused", r.code);
             throw;
           }
         }));
  s.Post("/v1/renew", route("/v1/renew", [this](const auto& req, auto& res, auto& profile) {
           try {
             json out = renew(req, profile);
             audit(req, "renew", "", profile, out["subject"], out["serial"], "issued", "");
             res.status = 201;
             res.set_content(out.dump() + "\n", "application/json");
           } catch (const Refusal& r) {
             audit(req, "renew", "", profile, "", "", "refused", r.code);
             throw;
           }
         }));
  s.Post("/v1/tokens", route("/v1/tokens", [this](const auto& req, auto& res, auto& profile) {
           require_admin(req);
           json out = create_token(req);
           profile = out["profile"];
           audit(req, "token-create", out["id"], profile, out["node"], "", "created", "");
           res.status = 201;
           res.set_content(out.dump() + "\n", "application/json");
         }));
  s.Get("/v1/tokens", route("/v1/tokens", [this](const auto& req, auto& res, auto&) {
          require_admin(req);
          json out = json::array();
          for (const auto& t : store->list_tokens()) out.push_back(token_json(t));
          res.set_content(out.dump() + "\n", "application/json");
        }));
  s.Delete(R"(/v1/tokens/([a-z0-9]{6}))",
           route("/v1/tokens/ID", [this](const auto& req, auto& res, auto&) {
             require_admin(req);
             const std::string id = req.matches[1];
             if (!store->revoke_token(id)) throw Refusal{404, "not_found", "no token " + id};
             audit(req, "token-revoke", id, "", "", "", "revoked", "");
             res.set_content(json{{"id", id}, {"revoked", true}}.dump() + "\n", "application/json");
           }));
  s.Get("/v1/certificates", route("/v1/certificates", [this](const auto& req, auto& res, auto&) {
          require_admin(req);
          json out = json::array();
          for (const auto& c : store->list_certificates()) {
            out.push_back({{"serial", c.serial},
                           {"profile", c.profile},
                           {"subject", c.subject},
                           {"sans", c.sans},
                           {"not_before", format_time(Clock::from_time_t(c.not_before))},
                           {"not_after", format_time(Clock::from_time_t(c.not_after))},
                           {"status", c.status},
                           {"requester", c.requester}});
          }
          res.set_content(out.dump() + "\n", "application/json");
        }));

  s.Post("/v1/revoke", route("/v1/revoke", [this](const auto& req, auto& res, auto&) {
           require_admin(req);
           json out = revoke(req);
           audit(req, "revoke", "", "", "", out["serial"], "revoked", out["reason"]);
           res.set_content(out.dump() + "\n", "application/json");
         }));
  s.Get("/v1/crl", route("/v1/crl", [this](const auto& req, auto& res, auto&) {
          const Crl c = current_crl();
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
      metrics.observe(req.path, "", r.code, 0);
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
    if (req.path == "/v1/sign" && limiter.blocked(req.remote_addr)) {
      return refuse(
          {429, "too_many_failures", "too many failed attempts from this address; wait and retry"});
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
    : impl_(std::make_unique<Impl>(config, pki_dir, std::move(store), options)) {
  Impl& m = *impl_;
  m.ca = load_ca(pki_dir, Profile::kCa, config.flavor);
  for (Profile p : {Profile::kFrontProxyCa, Profile::kEtcdCa}) {
    if (config.flavor != Flavor::kModern) break;
    const CertSpec spec = make_spec(config, p);
    if (file_exists(cert_path(pki_dir, spec.file)) && file_exists(key_path(pki_dir, spec.file))) {
      m.other_cas[p] = load_ca(pki_dir, p, config.flavor);
    }
  }
  const CertSpec signer = make_spec(config, Profile::kSigner);
  const auto cp = cert_path(pki_dir, signer.file), kp = key_path(pki_dir, signer.file);
  bool reissue = !file_exists(cp) || !file_exists(kp);
  if (!reissue) {
    // An expired signer certificate or one from an older CA would fail every client.
    const auto current = parse_certificate_pem(read_file(cp));
    reissue = !m.ca->issued(current) || current.not_after().to_std_timepoint() <= Clock::now();
    if (reissue) std::cerr << "kubeca: " << cp.string() << " is expired or not from this CA\n";
  }
  if (reissue) {
    Botan::RandomNumberGenerator& rng = thread_rng();
    const auto key = generate_key(*parse_key_algorithm(config.key_algorithm), rng);
    const auto cert = m.ca->issue(signer, *key, Clock::now(), random_serial(rng), rng);
    install_pair(cp, kp, to_pem(cert), private_key_pem(*key));
    std::cerr << "kubeca: issued the signer certificate " << cp.string() << "\n";
  }
  m.signer_cert_pem = read_file(cp);
  m.signer_key_pem = read_file(kp);
  m.ca->set_crl_url(config.signer_url + "/v1/crl");
  if (!options.audit_log.empty()) {
    m.audit_file.open(options.audit_log, std::ios::app);
    if (!m.audit_file) throw std::runtime_error("cannot open the audit log " + options.audit_log);
  }
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

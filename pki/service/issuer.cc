#include "kubeca/issuer.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "kubeca/csr.h"
#include "kubeca/fs.h"
#include "kubeca/keys.h"
#include "kubeca/limiter.h"
#include "kubeca/metrics.h"
#include "kubeca/node.h"
#include "kubeca/pki.h"
#include "kubeca/renew_policy.h"
#include "kubeca/token.h"

namespace kubeca {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::system_clock;

struct ParsedCsr {
  std::unique_ptr<Csr> req;
  std::unique_ptr<Botan::Public_Key> key;
};

// Decoded with Botan, the self-signature checked once with OpenSSL (kubeca/csr.h says why).
ParsedCsr parse_csr(bool has_csr, const std::string& pem) {
  if (!has_csr) {
    throw ServiceError{400, "missing_csr", "the body needs a \"csr\" field with a PEM CSR"};
  }
  if (pem.find("-----BEGIN CERTIFICATE REQUEST-----") == std::string::npos) {
    throw ServiceError{400, "malformed_csr", "csr is not a PEM CERTIFICATE REQUEST"};
  }
  ParsedCsr out;
  try {
    out.req = std::make_unique<Csr>(Csr::from_pem(pem));
    out.key = out.req->subject_public_key();
  } catch (const std::exception& e) {
    throw ServiceError{400, "malformed_csr", std::string("csr cannot be parsed: ") + e.what()};
  }
  // A bad self-signature is reported before a weak key, as when Botan checked it.
  if (!out.req->self_signature_ok()) {
    throw ServiceError{400, "bad_csr_signature", "the CSR's self-signature does not verify"};
  }
  const std::string weak = weak_key_reason(*out.key);
  if (!weak.empty()) throw ServiceError{403, "weak_key", weak};
  if (out.req->is_CA()) {
    throw ServiceError{403, "ca_not_allowed", "the CSR asks for a CA certificate (CA:TRUE)"};
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
        throw ServiceError{403, v == "system:masters" ? "group_not_allowed" : "name_not_allowed",
                           "the CSR asks for O=" + v + ", which this credential does not grant"};
      }
    } else if (n == "X520.CommonName") {
      if (v != spec.common_name && !extra_cns.count(v)) {
        throw ServiceError{
            403, "name_not_allowed",
            "the CSR asks for CN=" + v + "; this credential is for " + spec.common_name};
      }
    } else {
      throw ServiceError{403, "name_not_allowed",
                         "the CSR's subject has " + n + ", which is not allowed"};
    }
  }
  for (const auto& [type, value] : req.subject_alt_name().get_attributes()) {
    const auto& allowed = type == "DNS" ? spec.dns_names : spec.ip_addresses;
    if ((type != "DNS" && type != "IP") ||
        std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      throw ServiceError{
          403, "name_not_allowed",
          "the CSR asks for " + type + ":" + value + ", which this credential does not grant"};
    }
  }
}

std::string token_message(TokenUse r) {
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

}  // namespace

struct Issuer::Impl {
  Config config;
  std::filesystem::path pki_dir;
  Store& store;
  IssuerOptions options;
  std::unique_ptr<Ca> ca;
  std::map<Profile, std::unique_ptr<Ca>> other_cas;  // front-proxy-ca, etcd-ca when present
  FailureLimiter limiter;
  RenewLimiter renew_limiter;
  std::mutex audit_mu;
  std::ofstream audit_file;
  std::mutex crl_mu;
  Crl crl;

  Impl(const Config& c, const std::filesystem::path& dir, Store& s, const IssuerOptions& o)
      : config(c),
        pki_dir(dir),
        store(s),
        options(o),
        limiter(o.max_failures, o.failure_window, o.max_limiter_entries),
        renew_limiter(c.renew_limit, c.renew_window) {}

  void audit(const Caller& caller, const std::string& action, const std::string& token_id,
             const std::string& profile, const std::string& subject, const std::string& serial,
             const std::string& result, const std::string& detail, const std::string& by = "") {
    json line = {{"time", format_time(Clock::now())},
                 {"remote", caller.remote},
                 {"action", action},
                 {"token_id", token_id},
                 {"profile", profile},
                 {"subject", subject},
                 {"serial", serial},
                 {"result", result}};
    if (!detail.empty()) line["detail"] = detail;
    if (!by.empty()) line["by"] = by;  // the admin who asked
    const std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    std::lock_guard<std::mutex> lock(audit_mu);
    if (audit_file.is_open()) {
      audit_file << text << std::flush;
    } else {
      std::cout << text << std::flush;
    }
  }

  const Ca& ca_for(Profile p) {
    const Profile issuer = issuer_of(p);
    if (issuer == Profile::kCa) return *ca;
    auto it = other_cas.find(issuer);
    if (it == other_cas.end()) {
      throw ServiceError{
          503, "ca_missing",
          std::string("the CA for profile ") + to_string(p) + " is not in the PKI folder"};
    }
    return *it->second;
  }

  // Issues and records; `use` stores the record (and spends a token) atomically.
  Issuance issue(const CertSpec& spec, const Botan::Public_Key& key, const std::string& requester,
                 const std::string& node, const std::function<TokenUse(const CertRecord&)>& use) {
    Botan::RandomNumberGenerator& rng = thread_rng();
    const Ca& signer = ca_for(spec.profile);
    for (int attempt = 0; attempt < 4; ++attempt) {
      const IssuedCert cert = signer.issue_der(spec, key, Clock::now(), random_serial(rng), rng);
      CertRecord rec = record_of(cert, spec, key, to_string(spec.profile), requester, node);
      const TokenUse r = use(rec);
      if (r == TokenUse::kDuplicateSerial) continue;
      if (r != TokenUse::kOk)
        throw ServiceError{401, std::string("token_") + to_string(r), token_message(r)};
      if (options.metrics) options.metrics->certificate_issued(rec);
      return Issuance{rec.pem,       signer.certificate_pem(), rec.serial, rec.subject, rec.profile,
                      cert.not_after};
    }
    throw ServiceError{500, "serial_collision", "could not find a free serial"};
  }

  // The caller's certificate, checked: issued by our CA, in its validity, not revoked.
  const Botan::X509_Certificate& client_identity(const Caller& caller) {
    if (!caller.certificate)
      throw ServiceError{401, "client_certificate_required",
                         "this endpoint needs a client certificate (mTLS)"};
    const auto& cert = *caller.certificate;
    if (!ca->issued(cert)) {
      throw ServiceError{401, "unknown_issuer", "the client certificate was not issued by this CA"};
    }
    const auto now = Clock::now();
    if (now > cert.not_after().to_std_timepoint()) {
      throw ServiceError{401, "certificate_expired",
                         "the client certificate has expired; the node needs a new token"};
    }
    if (now < cert.not_before().to_std_timepoint()) {
      throw ServiceError{401, "certificate_not_yet_valid",
                         "the client certificate is not yet valid"};
    }
    if (auto rec = store.find_certificate(serial_hex(cert)); rec && rec->status == "revoked") {
      throw ServiceError{401, "certificate_revoked", "the client certificate has been revoked"};
    }
    if (key_revoked(key_hash_of(cert.subject_public_key_info()))) {
      throw ServiceError{401, "certificate_revoked",
                         "a certificate with the same key has been revoked; the key is barred"};
    }
    return cert;
  }

  // True when any certificate for this key was revoked: the key itself is not trusted.
  // One indexed lookup: a key reused for many certificates must not cost a read of each.
  bool key_revoked(const std::string& key_hash) { return store.key_revoked(key_hash); }

  Issuance issuance_of(const CertRecord& rec) {
    const auto cert = parse_certificate_pem(rec.pem);
    Issuance out{rec.pem,     ca_for(*parse_profile(rec.profile)).certificate_pem(),
                 rec.serial,  rec.subject,
                 rec.profile, cert.not_after().to_std_timepoint()};
    out.replay = true;
    return out;
  }

  // A certificate already issued to `requester` for this key, good and unexpired: what a
  // client that lost the answer gets when it asks again with the same key.
  std::optional<CertRecord> issued_before(const std::string& key_hash,
                                          const std::string& requester) {
    auto c = store.issued_for_key(key_hash, requester, unix_now());
    if (c && !parse_profile(c->profile)) return std::nullopt;
    return c;
  }

  // The token named by the Authorization header, checked; failures count for the limiter.
  TokenRecord check_token(const Caller& caller, const std::string& bearer, std::string& token_id,
                          bool* used_up = nullptr) {
    const auto named = parse_token(bearer);
    if (const int wait = limiter.wait(caller.remote, named ? named->id : "")) {
      if (named) token_id = named->id;
      throw ServiceError{429, "too_many_failures",
                         "too many failed attempts with this token from this address; retry in " +
                             std::to_string(wait) + " s",
                         wait};
    }
    if (bearer.empty()) {
      limiter.fail(caller.remote, "");
      throw ServiceError{401, "token_required", "Authorization: Bearer TOKEN is required"};
    }
    const auto parts = parse_token(bearer);
    if (!parts) {
      limiter.fail(caller.remote, "");
      throw ServiceError{401, "token_malformed",
                         "the token is not of the form [a-z0-9]{6}.[a-z0-9]{16}"};
    }
    token_id = parts->id;
    const auto token = store.find_token(parts->id);
    if (!token || !secret_matches(parts->secret, token->secret_hash)) {
      limiter.fail(caller.remote, parts->id);
      throw ServiceError{401, "token_invalid", "invalid token"};
    }
    const int64_t now = unix_now();
    if (token->revoked) throw ServiceError{401, "token_revoked", token_message(TokenUse::kRevoked)};
    if (now >= token->expires_at)
      throw ServiceError{401, "token_expired", token_message(TokenUse::kExpired)};
    if (token->uses >= token->uses_allowed) {
      if (!used_up) throw ServiceError{401, "token_used_up", token_message(TokenUse::kUsedUp)};
      *used_up = true;
    }
    return *token;
  }

  Issuance sign(const Caller& caller, const SignRequest& request, std::string& profile_out,
                std::string& token_id) {
    bool used_up = false;
    const TokenRecord token = check_token(caller, request.bearer, token_id, &used_up);
    profile_out = token.profile;  // checked with the token; what the body names is not
    if (!request.body_error.empty()) throw ServiceError{400, "malformed_json", request.body_error};
    const std::string profile_name = request.profile.empty() ? token.profile : request.profile;
    if (profile_name != token.profile) {
      throw ServiceError{
          403, "profile_not_allowed",
          "the token is bound to profile " + token.profile + ", not " + profile_name};
    }
    const auto profile = parse_profile(profile_name);
    if (!profile || profile_is_ca(*profile)) {
      throw ServiceError{403, "profile_not_allowed",
                         "profile " + profile_name + " cannot be requested"};
    }
    profile_out = token.profile;
    ParsedCsr csr = parse_csr(request.has_csr, request.csr_pem);
    CertSpec spec;
    try {
      spec = make_spec(config, *profile, Identity{token.node, token.ips, {}});
    } catch (const InputError& e) {
      throw ServiceError{403, "profile_not_allowed", e.what()};
    }
    check_csr_names(*csr.req, spec, {token.node, "system:node:" + token.node});
    const std::string key = key_hash_of(csr.key->subject_public_key());
    if (used_up || request.retry) {
      // A retry of a request whose answer was lost: the same key gets the same certificate.
      // Looked up for a token with uses left only when the client says it is a retry: a
      // key asking again on purpose (a benchmark's one CSR) gets a new certificate.
      if (auto prior = issued_before(key, "token:" + token.id)) return issuance_of(*prior);
      if (used_up) throw ServiceError{401, "token_used_up", token_message(TokenUse::kUsedUp)};
    }
    refuse_revoked_key(key);
    try {
      return issue(spec, *csr.key, "token:" + token.id, token.node, [&](const CertRecord& rec) {
        return store.use_token(token.id, rec, unix_now());
      });
    } catch (const ServiceError& e) {
      // A killed client's first request may finish while its retry is under way.
      if (e.code != "token_used_up") throw;
      if (auto prior = issued_before(key, "token:" + token.id)) return issuance_of(*prior);
      throw;
    }
  }

  void refuse_revoked_key(const std::string& key_hash) {
    if (key_revoked(key_hash)) {
      throw ServiceError{403, "key_revoked",
                         "a certificate for this key was revoked; make a new key"};
    }
  }

  // Today's policy for a renewal: the profile the store recorded (or the one the subject
  // shows, for a certificate the store never saw), validity from the current config.
  CertSpec renewal_spec(const Botan::X509_Certificate& old, const std::optional<CertRecord>& rec) {
    std::optional<Profile> profile;
    if (rec && !rec->profile.empty()) profile = parse_profile(rec->profile);
    if (!profile) profile = infer_profile(config, old);
    if (!profile) {
      throw ServiceError{403, "profile_not_allowed",
                         "the certificate matches no profile of this cluster; issue it again"};
    }
    if (*profile == Profile::kUser) {
      // Short-lived by design: renewing with itself would make a person's credential
      // last for ever after the admin who granted it moved on.
      throw ServiceError{403, "profile_not_allowed",
                         "a user certificate does not renew; ask an admin for a new one "
                         "(kubeca kubeconfig user)"};
    }
    CertSpec spec = identity_of(old, *profile);
    if (profile_is_ca(spec.profile) || issuer_of(spec.profile) != Profile::kCa) {
      throw ServiceError{403, "profile_not_allowed",
                         "only certificates of the cluster CA renew here"};
    }
    spec.validity = config.cert_validity;
    return spec;
  }

  Issuance renew(const Caller& caller, bool has_csr, const std::string& csr_pem,
                 std::string& profile_out) {
    const auto& old = client_identity(caller);
    ParsedCsr csr = parse_csr(has_csr, csr_pem);
    const std::string old_serial = serial_hex(old);
    const auto rec = store.find_certificate(old_serial);
    const CertSpec spec = renewal_spec(old, rec);
    profile_out = to_string(spec.profile);
    // The same identity as the certificate presented: subject, names and usages.
    check_csr_names(*csr.req, spec, {});
    const std::string key = key_hash_of(csr.key->subject_public_key());
    refuse_revoked_key(key);
    const std::string node = rec ? rec->node : "";
    const std::string identity = rec && !rec->identity.empty()
                                     ? rec->identity
                                     : record_of(old, profile_out, "", node).identity;
    // Only the newest certificate of an identity renews; this comes before the rate limit.
    const auto newest = store.newest_of_identity(identity);
    if (newest && newest->serial != old_serial) {
      if (auto prior = issued_before(key, "renew:" + old_serial)) return issuance_of(*prior);
      throw ServiceError{403, "certificate_superseded",
                         "a newer certificate of this identity exists (serial " + newest->serial +
                             "); renew with that one"};
    }
    if (const int wait = renew_limiter.take(identity)) {
      throw ServiceError{429, "renew_rate_limited",
                         "this identity renewed " + std::to_string(config.renew_limit) +
                             " times within " + format_duration(config.renew_window) +
                             "; retry later",
                         wait};
    }
    return issue(spec, *csr.key, "renew:" + old_serial, node, [&](const CertRecord& r) {
      return store.insert_certificate(r) ? TokenUse::kOk : TokenUse::kDuplicateSerial;
    });
  }

  // Records stored before the store knew keys and identities get them once, so a key
  // revoked back then is barred and an old certificate's renewals count as newer.
  void fill_identities() {
    for (const auto& r : store.certificates_without_identity()) {
      if (!r.key_hash.empty() || r.pem.empty()) continue;
      try {
        const CertRecord d = record_of(parse_certificate_pem(r.pem), r.profile, r.requester);
        store.fill_certificate_identity(r.serial, d.key_hash, d.node, d.identity);
      } catch (const std::exception& e) {
        std::cerr << "kubeca: certificate " << r.serial << " in the store: " << e.what() << "\n";
      }
    }
  }

  // The CRL every replica serves is the one published in the store (Store::publish_crl):
  // a request reads its number and fetches it only when that moved. A request makes one
  // only when none is published, or the published one is past three quarters of its life
  // (no leader refreshed it), so a CRL is never served past its nextUpdate.
  Crl current_crl() {
    const int64_t published = store.published_crl_number();
    const auto now = Clock::now();
    std::lock_guard<std::mutex> lock(crl_mu);
    if (published > crl.number) adopt_published();
    if (crl.der.empty() || now - crl.this_update >= (crl.next_update - crl.this_update) * 3 / 4) {
      publish_new(now);
    }
    return crl;
  }

  // The leader's round (and a revocation's): a new CRL when `force`, when none is published,
  // when the revocation count moved (a CLI revocation that did not publish), when half its
  // life has passed, or when its life is not this service's.
  void refresh_crl(bool force) {
    const int64_t revocations = store.revocation_count();
    const auto now = Clock::now();
    std::lock_guard<std::mutex> lock(crl_mu);
    adopt_published();
    const auto life = crl.next_update - crl.this_update;
    if (force || crl.der.empty() || revocations != crl.revocations ||
        now - crl.this_update >= life / 2 || life != options.crl_lifetime) {
      publish_new(now);
    }
  }

  // Under crl_mu. The published CRL when it is newer than the one held.
  void adopt_published() {
    const auto p = store.published_crl();
    if (!p || p->number <= crl.number) return;
    crl.der.assign(p->der.begin(), p->der.end());
    crl.number = p->number;
    crl.revocations = p->revocations;
    crl.this_update = Clock::from_time_t(p->this_update);
    crl.next_update = Clock::from_time_t(p->next_update);
  }

  // Under crl_mu. Makes the next CRL (its number from the store's counter) and publishes
  // it; when another replica published a higher one meanwhile, that one is served instead.
  void publish_new(TimePoint now) {
    Crl made = make_crl(*ca, store, now, options.crl_lifetime);
    if (store.publish_crl(published_of(made))) {
      crl = std::move(made);
    } else {
      adopt_published();
    }
  }
};

Issuer::Issuer(const Config& config, const std::filesystem::path& pki_dir, Store& store,
               const IssuerOptions& options)
    : impl_(std::make_unique<Impl>(config, pki_dir, store, options)) {
  Impl& m = *impl_;
  m.ca = load_ca(pki_dir, Profile::kCa, config.flavor);
  for (Profile p : {Profile::kFrontProxyCa, Profile::kEtcdCa}) {
    if (config.flavor != Flavor::kModern) break;
    const CertSpec spec = make_spec(config, p);
    if (file_exists(cert_path(pki_dir, spec.file)) && file_exists(key_path(pki_dir, spec.file))) {
      m.other_cas[p] = load_ca(pki_dir, p, config.flavor);
    }
  }
  try {
    m.fill_identities();
  } catch (const std::exception& e) {
    // Serve anyway: /readyz tells that the store does not answer.
    std::cerr << "kubeca: reading the store: " << e.what() << "\n";
  }
  m.ca->set_crl_url(config.signer_url + "/v1/crl");
  if (options.metrics) {
    options.metrics->set_ca_not_after(
        Clock::to_time_t(m.ca->certificate().not_after().to_std_timepoint()));
    // Read later (the server warms it up in the background), not before the first answer.
    options.metrics->follow_store(store);
  }
  if (!options.audit_log.empty()) {
    m.audit_file.open(options.audit_log, std::ios::app);
    if (!m.audit_file) throw std::runtime_error("cannot open the audit log " + options.audit_log);
  }
}

Issuer::~Issuer() = default;

Issuance Issuer::sign(const Caller& caller, const SignRequest& request) {
  std::string profile, token_id;
  try {
    Issuance out = impl_->sign(caller, request, profile, token_id);
    impl_->audit(caller, "sign", token_id, profile, out.subject, out.serial, "issued",
                 out.replay ? "replay" : "");
    return out;
  } catch (ServiceError& e) {
    impl_->audit(caller, "sign", token_id, profile, "", "", "refused", e.code);
    e.profile = profile;
    throw;
  }
}

Issuance Issuer::renew(const Caller& caller, bool has_csr, const std::string& csr_pem) {
  std::string profile;
  try {
    Issuance out = impl_->renew(caller, has_csr, csr_pem, profile);
    impl_->audit(caller, "renew", "", profile, out.subject, out.serial, "issued",
                 out.replay ? "replay" : "");
    return out;
  } catch (ServiceError& e) {
    impl_->audit(caller, "renew", "", profile, "", "", "refused", e.code);
    e.profile = profile;
    throw;
  }
}

void Issuer::require_admin(const Caller& caller) {
  const auto& cert = impl_->client_identity(caller);
  const auto orgs = cert.subject_info("X520.Organization");
  if (std::find(orgs.begin(), orgs.end(), "system:masters") == orgs.end()) {
    throw ServiceError{403, "admin_required",
                       "this endpoint needs an admin certificate (O=system:masters)"};
  }
}

Issuance Issuer::sign_user(const Caller& caller, const UserSignRequest& request) {
  Impl& m = *impl_;
  std::string by;
  try {
    require_admin(caller);
    const auto& admin = *caller.certificate;
    by = dn_text(admin.subject_dn()) + " (serial " + serial_hex(admin) + ")";
    if (!request.body_error.empty()) {
      throw ServiceError{400, "malformed_request", request.body_error};
    }
    CertSpec spec;
    try {
      UserRequest r{request.name, request.groups, parse_duration(request.ttl),
                    request.allow_privileged};
      spec = user_spec(m.config, r);
    } catch (const PrivilegedUser& e) {
      throw ServiceError{403, "privileged_profile", e.what()};
    } catch (const InputError& e) {
      throw ServiceError{400, "malformed_request", e.what()};
    }
    ParsedCsr csr = parse_csr(request.has_csr, request.csr_pem);
    check_csr_names(*csr.req, spec, {});
    m.refuse_revoked_key(key_hash_of(csr.key->subject_public_key()));
    Issuance out =
        m.issue(spec, *csr.key, "admin:" + serial_hex(admin), "", [&](const CertRecord& rec) {
          return m.store.insert_certificate(rec) ? TokenUse::kOk : TokenUse::kDuplicateSerial;
        });
    m.audit(caller, "user-sign", "", "user", out.subject, out.serial, "issued", "", by);
    return out;
  } catch (ServiceError& e) {
    m.audit(caller, "user-sign", "", "user", "", "", "refused", e.code, by);
    e.profile = "user";
    throw;
  }
}

TokenRecord Issuer::create_token(const Caller& caller, const std::string& node,
                                 const std::vector<std::string>& ips, const std::string& profile,
                                 int uses, const std::string& ttl, std::string& token_out,
                                 bool allow_privileged) {
  if (token_profile_privileged(profile) && !allow_privileged) {
    throw ServiceError{403, "privileged_profile",
                       "a token for profile " + profile +
                           " grants cluster-wide power; send \"allow_privileged\": true"};
  }
  TokenRequest r;
  r.node = node;
  r.ips = ips;
  r.profile = profile;
  r.uses = uses;
  r.allow_privileged = allow_privileged;
  try {
    r.ttl = parse_duration(ttl);
    const auto p = parse_profile(r.profile);
    if (p && !profile_is_ca(*p)) make_spec(impl_->config, *p, Identity{r.node, r.ips, {}});
    auto [token, t] = kubeca::create_token(impl_->store, r, unix_now());
    token_out = token;
    impl_->audit(caller, "token-create", t.id, t.profile, t.node, "", "created", "");
    return t;
  } catch (const InputError& e) {
    throw ServiceError{400, "malformed_request", e.what()};
  }
}

std::vector<TokenRecord> Issuer::list_tokens() { return impl_->store.list_tokens(); }

void Issuer::revoke_token(const Caller& caller, const std::string& id) {
  if (!impl_->store.revoke_token(id)) throw ServiceError{404, "not_found", "no token " + id};
  impl_->audit(caller, "token-revoke", id, "", "", "", "revoked", "");
}

std::vector<CertRecord> Issuer::list_certificates() { return impl_->store.list_certificates(); }

CertRecord Issuer::revoke(const Caller& caller, const RevokeRequest& request) {
  int reason = 0;
  if (request.reason) {
    const auto r = parse_revocation_reason(*request.reason);
    if (!r) throw ServiceError{400, "malformed_request", "reason: not an RFC 5280 reason name"};
    reason = *r;
  }
  if (request.serial.empty() && request.certificate.empty()) {
    throw ServiceError{400, "malformed_request", "give \"serial\" (hex) or \"certificate\" (PEM)"};
  }
  std::optional<CertRecord> rec;
  try {
    rec = revoke_certificate(impl_->store, *impl_->ca, request.serial, request.certificate, reason,
                             unix_now());
  } catch (const InputError& e) {
    throw ServiceError{400, "malformed_certificate", e.what()};
  }
  if (!rec) {
    throw ServiceError{404, "not_found", "no certificate with that serial in the store"};
  }
  if (impl_->options.metrics) impl_->options.metrics->certificate_revoked(*rec);
  impl_->refresh_crl(true);
  impl_->audit(caller, "revoke", "", "", "", rec->serial, "revoked",
               revocation_reason_name(rec->reason));
  return *rec;
}

std::vector<CertRecord> Issuer::revoke_node(const Caller& caller, const std::string& node,
                                            const std::optional<std::string>& reason_name) {
  int reason = 0;
  if (reason_name) {
    const auto r = parse_revocation_reason(*reason_name);
    if (!r) throw ServiceError{400, "malformed_request", "reason: not an RFC 5280 reason name"};
    reason = *r;
  }
  const auto revoked = kubeca::revoke_node(impl_->store, node, reason, unix_now());
  if (revoked.empty()) {
    throw ServiceError{404, "not_found", "no unexpired certificate of node " + node};
  }
  impl_->refresh_crl(true);
  for (const auto& rec : revoked) {
    impl_->audit(caller, "revoke", "", rec.profile, rec.subject, rec.serial, "revoked",
                 revocation_reason_name(rec.reason));
  }
  return revoked;
}

Crl Issuer::current_crl() { return impl_->current_crl(); }

void Issuer::refresh_crl(bool force) { impl_->refresh_crl(force); }

int Issuer::blocked(const std::string& remote, const std::string& token_id) {
  return impl_->limiter.wait(remote, token_id);
}

size_t Issuer::limiter_entries() { return impl_->limiter.size(); }

bool Issuer::store_healthy() { return impl_->store.healthy(); }

const Ca& Issuer::ca() const { return *impl_->ca; }

TimePoint Issuer::signer_renew_at(const std::string& cert_pem) {
  const auto cert = parse_certificate_pem(cert_pem);
  const TimePoint not_after = cert.not_after().to_std_timepoint();
  // Ca::issue backdates notBefore by five minutes; the life is what follows the issuance.
  auto life = not_after - cert.not_before().to_std_timepoint();
  if (life > std::chrono::minutes(5)) life -= std::chrono::minutes(5);
  return not_after - life / 3;
}

bool Issuer::signer_due(const std::string& cert_pem, const std::vector<std::string>& names) const {
  const Impl& m = *impl_;
  try {
    const auto cert = parse_certificate_pem(cert_pem);
    if (!m.ca->issued(cert) || Clock::now() >= signer_renew_at(cert_pem)) return true;
    const CertSpec want = make_spec(m.config, Profile::kSigner, Identity{"", {}, names});
    const CertSpec have = identity_of(cert, Profile::kSigner);
    auto has_all = [](const std::vector<std::string>& need, const std::vector<std::string>& got) {
      return std::all_of(need.begin(), need.end(), [&](const std::string& n) {
        return std::find(got.begin(), got.end(), n) != got.end();
      });
    };
    return have.common_name != want.common_name || !has_all(want.dns_names, have.dns_names) ||
           !has_all(want.ip_addresses, have.ip_addresses);
  } catch (const std::exception&) {
    return true;
  }
}

std::pair<std::string, std::string> Issuer::signer_credentials(
    const std::vector<std::string>& names) {
  Impl& m = *impl_;
  const CertSpec signer = make_spec(m.config, Profile::kSigner, Identity{"", {}, names});
  const auto cp = cert_path(m.pki_dir, signer.file), kp = key_path(m.pki_dir, signer.file);
  bool reissue = !file_exists(cp) || !file_exists(kp);
  if (!reissue) {
    // An expired signer certificate or one from an older CA would fail every client.
    reissue = signer_due(read_file(cp), names);
    if (reissue) std::cerr << "kubeca: the signer certificate is due for renewal\n";
  }
  if (reissue) {
    Botan::RandomNumberGenerator& rng = thread_rng();
    const auto key = generate_key(*parse_key_algorithm(m.config.key_algorithm), rng);
    const auto cert = m.ca->issue(signer, *key, Clock::now(), random_serial(rng), rng);
    install_pair(cp, kp, to_pem(cert), private_key_pem(*key));
    std::cerr << "kubeca: issued the signer certificate (serial " << serial_hex(cert) << ")\n";
  }
  return {read_file(cp), read_file(kp)};
}

}  // namespace kubeca

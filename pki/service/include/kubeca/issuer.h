// The signing service without its transport: sign with a token, renew with a certificate,
// tokens, revocation and the CRL, the failure limiter and the audit log. HTTP (server.h)
// turns requests into these calls; a test or a second transport can drive them directly.
#pragma once

#include <botan/x509cert.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kubeca/ca.h"
#include "kubeca/config.h"
#include "kubeca/crl.h"
#include "kubeca/store.h"

namespace kubeca {

// A refusal, as the client sees it: HTTP status, snake_case code, one-line message.
struct ServiceError {
  ServiceError(int s, std::string c, std::string m, int retry = 0)
      : status(s), code(std::move(c)), message(std::move(m)), retry_after(retry) {}
  int status;
  std::string code;
  std::string message;
  int retry_after = 0;  // seconds; sent as Retry-After when positive
  std::string profile;  // the profile asked for, once validated; "" before
};

// Who is asking: the remote address, the mTLS certificate when one was presented.
struct Caller {
  std::string remote;
  std::optional<Botan::X509_Certificate> certificate;
};

class Metrics;

struct IssuerOptions {
  int max_failures = 10;  // failed attempts with one token id from one address before 429
  std::chrono::seconds failure_window{60};
  size_t max_limiter_entries = 10000;        // (address, token id) pairs remembered, oldest evicted
  std::chrono::seconds crl_lifetime{86400};  // nextUpdate - thisUpdate of each CRL
  std::string audit_log;  // a file (appended, one JSON line per decision); empty: stdout
  // Told of every certificate issued or revoked; loaded from the store at start. Not owned.
  Metrics* metrics = nullptr;
};

struct SignRequest {
  std::string bearer;  // the Authorization header's token, "" when absent
  bool has_csr = false;
  std::string csr_pem;
  std::string profile;     // "" when the body names none
  std::string body_error;  // set when the body is not JSON: refused after the token checks
  bool retry = false;      // Kubeca-Retry: 1, this request's answer may have been lost
};

struct Issuance {
  std::string certificate;  // PEM
  std::string ca;           // PEM of the issuing CA
  std::string serial;
  std::string subject;
  std::string profile;
  TimePoint not_after;
  bool replay = false;  // a retry that got the certificate it was already given
};

// POST /v1/users: an admin asks for a person's certificate; the key stays with the admin.
struct UserSignRequest {
  bool has_csr = false;
  std::string csr_pem;
  std::string name;
  std::vector<std::string> groups;
  std::string ttl;  // a duration, "24h"
  bool allow_privileged = false;
  std::string
      body_error;  // set when the body is not JSON of this shape: refused after the admin check
};

struct RevokeRequest {
  std::string serial;       // hex, or ""
  std::string certificate;  // PEM, or ""
  std::optional<std::string> reason;
};

class Issuer {
 public:
  // Loads the CA (and front-proxy/etcd CAs when present) from `pki_dir`.
  Issuer(const Config& config, const std::filesystem::path& pki_dir, Store& store,
         const IssuerOptions& options);
  ~Issuer();

  // Each throws ServiceError on refusal, audits the decision, and changes nothing then.
  Issuance sign(const Caller& caller, const SignRequest& request);
  Issuance renew(const Caller& caller, bool has_csr, const std::string& csr_pem);
  // Admin calls: the caller's certificate must carry O=system:masters.
  void require_admin(const Caller& caller);
  // A user certificate (profile user) for an admin; recorded with the admin as requester,
  // audited with the admin's subject. Privileged names or groups need allow_privileged (403).
  Issuance sign_user(const Caller& caller, const UserSignRequest& request);
  // A privileged profile (token_profile_privileged) needs allow_privileged, else 403.
  TokenRecord create_token(const Caller& caller, const std::string& node,
                           const std::vector<std::string>& ips, const std::string& profile,
                           int uses, const std::string& ttl, std::string& token_out,
                           bool allow_privileged = false);
  std::vector<TokenRecord> list_tokens();
  void revoke_token(const Caller& caller, const std::string& id);
  std::vector<CertRecord> list_certificates();
  CertRecord revoke(const Caller& caller, const RevokeRequest& request);
  // Revokes every unexpired certificate of a node; returns them (none: 404).
  std::vector<CertRecord> revoke_node(const Caller& caller, const std::string& node,
                                      const std::optional<std::string>& reason);

  // The CRL every replica serves: the store's published one (made here only when none is,
  // or it is past three quarters of its life).
  Crl current_crl();
  // Makes and publishes a new CRL when `force`, when the store's revocation count moved or
  // half the CRL's life passed: the periodic work of the replica that leads (PeriodicWork).
  void refresh_crl(bool force = false);
  // Seconds `remote` must wait before trying token `token_id` again ("" for a missing or
  // malformed token); 0 when it may try now. The answer's Retry-After.
  int blocked(const std::string& remote, const std::string& token_id);
  size_t limiter_entries();  // (address, token id) pairs the failure limiter remembers
  bool store_healthy();

  const Ca& ca() const;
  // Issues the signer's own TLS certificate when missing or due (signer_due); returns
  // {certificate PEM, key PEM}. `names`: the listen address, when it is not a wildcard.
  std::pair<std::string, std::string> signer_credentials(
      const std::vector<std::string>& names = {});
  // True when the signer certificate must be issued again: not from this CA, unreadable,
  // past two thirds of its life, or without a name signer.url, the master or `names` give.
  bool signer_due(const std::string& cert_pem, const std::vector<std::string>& names = {}) const;
  // When a signer certificate reaches two thirds of its life.
  static TimePoint signer_renew_at(const std::string& cert_pem);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kubeca

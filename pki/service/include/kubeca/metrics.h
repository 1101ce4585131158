// The signing service's Prometheus metrics (docs/api.md, "Metrics"). Every label value comes
// from a set fixed in code (route templates, refusal codes, profile names): nothing a client
// sends can add a series, so the text stays small whatever it is sent. The certificate gauges
// are kept in memory: loaded from the store once, then moved by the Issuer's hooks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kubeca/store.h"

namespace kubeca {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One answered request. route: a route template ("/v1/tokens/ID"), anything else counts as
  // "other"; profile: a profile name once validated, else ""; result: "ok" or a refusal code,
  // any other value counts as "other".
  void observe(const std::string& route, const std::string& profile, const std::string& result,
               double seconds);

  // The store's certificates at start; revoked and expired ones are skipped.
  void load_certificates(const std::vector<CertRecord>& certs, int64_t now);
  // Follows `store`: its live certificates are read by the first refresh() (or render),
  // and again when another process (the CLI) has written to it since: the hooks only see
  // what this process does. Reads nothing now, so a large store does not delay the start.
  // `store` outlives this object.
  void follow_store(Store& store);
  // Reads the followed store when it was never read or changed outside; requests go on
  // meanwhile (the hooks do not wait for it).
  void refresh(int64_t now);
  // The whole store's certificates, counted again (the periodic work's leader does it), as
  // refresh() does: without blocking the hooks, what they report meanwhile applied after.
  void count_store(Store& store, int64_t now);
  // Whether this replica does the periodic work: its gauges are the ones to trust.
  void set_leader(bool leading);
  void certificate_issued(const CertRecord& cert);   // counts it and adds it to the live ones
  void certificate_revoked(const CertRecord& cert);  // idempotent
  void set_ca_not_after(int64_t unix_seconds);

  // Prometheus text format 0.0.4. Drops certificates that expired by `now` first.
  std::string render(int64_t now);

  static const std::vector<std::string>& routes();   // the route label values, "other" last
  static const std::vector<std::string>& results();  // "ok", the refusal codes, "other"

 private:
  void reload_locked(int64_t now);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kubeca

#include "kubeca/metrics.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <functional>
#include <mutex>
#include <set>
#include <tuple>
#include <utility>

#include "kubeca/profile.h"

namespace kubeca {

namespace {

const double kBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
constexpr size_t kBucketCount = std::size(kBuckets);

// Index of `value` in `set`, or of the last entry ("other") when it is not there.
size_t index_of(const std::vector<std::string>& set, const std::string& value) {
  const auto it = std::find(set.begin(), set.end(), value);
  return it == set.end() ? set.size() - 1 : static_cast<size_t>(it - set.begin());
}

// Profile label values: "" (not validated yet) then every profile name.
const std::vector<std::string>& profile_labels() {
  static const std::vector<std::string> labels = [] {
    std::vector<std::string> v{""};
    for (Profile p : all_profiles()) v.push_back(to_string(p));
    return v;
  }();
  return labels;
}

size_t profile_index(const std::string& name) {
  const auto p = parse_profile(name);
  return p ? index_of(profile_labels(), to_string(*p)) : 0;
}

struct Histogram {
  std::array<uint64_t, kBucketCount> buckets{};
  uint64_t count = 0;
  double sum = 0;
};

// A live certificate: its expiry, then a hash of its serial so two with the same expiry
// stay apart; 16 bytes, not the record.
using LiveCert = std::pair<int64_t, size_t>;

LiveCert live_key(const CertRecord& c) { return {c.not_after, std::hash<std::string>()(c.serial)}; }

std::string format_double(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

struct Metrics::Impl {
  std::mutex mu;
  // requests[route][profile][result]; a fixed block, never grown by a request.
  std::vector<uint64_t> requests;
  std::vector<Histogram> durations;      // by route
  std::vector<uint64_t> issued;          // by profile
  std::vector<std::set<LiveCert>> live;  // by profile, soonest first
  int64_t ca_not_after = 0;
  bool leader = false;
  // While a reload reads the store, the hooks' changes are also kept here (true: issued),
  // to be applied again over what it read: the reload holds no lock a request waits for.
  bool loading = false;
  std::vector<std::pair<bool, std::pair<size_t, LiveCert>>> during_load;
  // Serializes reloads and guards the two below; taken before `mu`, never inside it.
  std::mutex follow_mu;
  Store* store = nullptr;             // followed for changes made by other processes
  int64_t store_version = INT64_MIN;  // INT64_MIN: not loaded yet

  Impl()
      : requests(routes().size() * profile_labels().size() * results().size()),
        durations(routes().size()),
        issued(profile_labels().size()),
        live(profile_labels().size()) {}

  uint64_t& request(size_t route, size_t profile, size_t result) {
    return requests[(route * profile_labels().size() + profile) * results().size() + result];
  }

  void prune(int64_t now) {
    for (auto& s : live) {
      while (!s.empty() && s.begin()->first <= now) s.erase(s.begin());
    }
  }
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

const std::vector<std::string>& Metrics::routes() {
  static const std::vector<std::string> r = {
      "/healthz",         "/readyz",    "/metrics",      "/v1/ca",     "/v1/sign",
      "/v1/renew",        "/v1/tokens", "/v1/tokens/ID", "/v1/revoke", "/v1/crl",
      "/v1/certificates", "/v1/users",  "other"};
  return r;
}

const std::vector<std::string>& Metrics::results() {
  static const std::vector<std::string> r = {
      "ok",
      // 400
      "malformed_json", "missing_csr", "malformed_csr", "malformed_request",
      "malformed_certificate", "bad_csr_signature",
      // 401
      "token_required", "token_malformed", "token_invalid", "token_unknown", "token_expired",
      "token_revoked", "token_used_up", "client_certificate_required", "unknown_issuer",
      "certificate_expired", "certificate_not_yet_valid", "certificate_revoked",
      // 403
      "weak_key", "ca_not_allowed", "group_not_allowed", "name_not_allowed", "profile_not_allowed",
      "privileged_profile", "admin_required", "certificate_superseded", "key_revoked",
      // 404 .. 429
      "not_found", "method_not_allowed", "length_required", "body_too_large", "too_many_failures",
      "renew_rate_limited", "http_error", "malformed_path", "headers_too_large",
      // 5xx
      "internal", "serial_collision", "not_ready", "ca_missing", "store_unavailable",
      // anything else
      "other"};
  return r;
}

void Metrics::observe(const std::string& route, const std::string& profile,
                      const std::string& result, double seconds) {
  const size_t r = index_of(routes(), route);
  const size_t p = profile_index(profile);
  const size_t c = index_of(results(), result);
  std::lock_guard<std::mutex> lock(impl_->mu);
  ++impl_->request(r, p, c);
  Histogram& h = impl_->durations[r];
  for (size_t i = 0; i < kBucketCount; ++i) {
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::load_certificates(const std::vector<CertRecord>& certs, int64_t now) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (auto& s : impl_->live) s.clear();
  for (const auto& c : certs) {
    const size_t p = profile_index(c.profile);
    if (p == 0 || c.status != "good" || c.not_after <= now) continue;
    impl_->live[p].insert(live_key(c));
  }
}

void Metrics::follow_store(Store& store) {
  std::lock_guard<std::mutex> lock(impl_->follow_mu);
  impl_->store = &store;
  impl_->store_version = INT64_MIN;
}

// With follow_mu held. Reads the store without `mu`; the hooks that ran meanwhile are
// applied again in their order over what was read, so none is lost to the reload.
void Metrics::reload_locked(int64_t now) {
  Impl& m = *impl_;
  const int64_t version = m.store->outside_changes();
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.loading = true;
    m.during_load.clear();
  }
  std::vector<std::set<LiveCert>> live(profile_labels().size());
  try {
    m.store->visit_live_certificates(
        now, [&](const std::string& serial, const std::string& profile, int64_t not_after) {
          const size_t p = profile_index(profile);
          if (p != 0) live[p].insert({not_after, std::hash<std::string>()(serial)});
        });
  } catch (...) {
    std::lock_guard<std::mutex> lock(m.mu);
    m.loading = false;
    throw;
  }
  std::lock_guard<std::mutex> lock(m.mu);
  m.live = std::move(live);
  for (const auto& [issued, at] : m.during_load) {
    if (issued) {
      m.live[at.first].insert(at.second);
    } else {
      m.live[at.first].erase(at.second);
    }
  }
  m.during_load.clear();
  m.loading = false;
  m.store_version = version;
}

void Metrics::refresh(int64_t now) {
  std::lock_guard<std::mutex> follow(impl_->follow_mu);
  if (!impl_->store) return;
  // A store that cannot be read keeps the last figures; /readyz says why.
  try {
    if (impl_->store->outside_changes() != impl_->store_version) reload_locked(now);
  } catch (const std::exception&) {
  }
}

void Metrics::count_store(Store& store, int64_t now) {
  std::lock_guard<std::mutex> follow(impl_->follow_mu);
  impl_->store = &store;
  reload_locked(now);
}

void Metrics::set_leader(bool leading) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->leader = leading;
}

void Metrics::certificate_issued(const CertRecord& cert) {
  const size_t p = profile_index(cert.profile);
  if (p == 0) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  ++impl_->issued[p];
  impl_->live[p].insert(live_key(cert));
  if (impl_->loading) impl_->during_load.push_back({true, {p, live_key(cert)}});
}

void Metrics::certificate_revoked(const CertRecord& cert) {
  const size_t p = profile_index(cert.profile);
  if (p == 0) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->live[p].erase(live_key(cert));
  if (impl_->loading) impl_->during_load.push_back({false, {p, live_key(cert)}});
}

void Metrics::set_ca_not_after(int64_t unix_seconds) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->ca_not_after = unix_seconds;
}

std::string Metrics::render(int64_t now) {
  const auto& route = routes();
  const auto& profile = profile_labels();
  const auto& result = results();
  // The first time, and after another process wrote (rare: a CLI revocation, an offline
  // issue), the store's live certificates are read again.
  refresh(now);
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& m = *impl_;
  m.prune(now);
  std::string out;
  out.reserve(16 * 1024);
  out += "# HELP kubeca_requests_total Requests by endpoint, profile and result.\n";
  out += "# TYPE kubeca_requests_total counter\n";
  for (size_t r = 0; r < route.size(); ++r) {
    for (size_t p = 0; p < profile.size(); ++p) {
      for (size_t c = 0; c < result.size(); ++c) {
        const uint64_t n = m.request(r, p, c);
        if (n == 0) continue;
        out += "kubeca_requests_total{endpoint=\"" + route[r] + "\",profile=\"" + profile[p] +
               "\",result=\"" + result[c] + "\"} " + std::to_string(n) + "\n";
      }
    }
  }
  out += "# HELP kubeca_request_duration_seconds Request latency by endpoint.\n";
  out += "# TYPE kubeca_request_duration_seconds histogram\n";
  for (size_t r = 0; r < route.size(); ++r) {
    const Histogram& h = m.durations[r];
    if (h.count == 0) continue;
    const std::string l = "endpoint=\"" + route[r] + "\"";
    for (size_t i = 0; i < kBucketCount; ++i) {
      char le[32];
      std::snprintf(le, sizeof le, "%g", kBuckets[i]);
      out += "kubeca_request_duration_seconds_bucket{" + l + ",le=\"" + le + "\"} " +
             std::to_string(h.buckets[i]) + "\n";
    }
    out += "kubeca_request_duration_seconds_bucket{" + l + ",le=\"+Inf\"} " +
           std::to_string(h.count) + "\n";
    out += "kubeca_request_duration_seconds_sum{" + l + "} " + format_double(h.sum) + "\n";
    out += "kubeca_request_duration_seconds_count{" + l + "} " + std::to_string(h.count) + "\n";
  }
  out += "# HELP kubeca_certificates_issued_total Certificates issued since start, by profile.\n";
  out += "# TYPE kubeca_certificates_issued_total counter\n";
  for (size_t p = 1; p < profile.size(); ++p) {
    if (m.issued[p] == 0) continue;
    out += "kubeca_certificates_issued_total{profile=\"" + profile[p] + "\"} " +
           std::to_string(m.issued[p]) + "\n";
  }
  out +=
      "# HELP kubeca_periodic_leader 1 on the replica doing the periodic work (CRL, certificate "
      "gauges): its kubeca_certificates_live and soonest expiry count the whole store; another "
      "replica's count what it loaded at start and has issued or revoked since.\n";
  out += "# TYPE kubeca_periodic_leader gauge\n";
  out += std::string("kubeca_periodic_leader ") + (m.leader ? "1" : "0") + "\n";
  out += "# HELP kubeca_ca_expiry_seconds Seconds until the CA certificate expires.\n";
  out += "# TYPE kubeca_ca_expiry_seconds gauge\n";
  out += "kubeca_ca_expiry_seconds " + std::to_string(m.ca_not_after - now) + "\n";
  out +=
      "# HELP kubeca_certificates_live Certificates in the store neither revoked nor expired, "
      "by profile.\n";
  out += "# TYPE kubeca_certificates_live gauge\n";
  for (size_t p = 1; p < profile.size(); ++p) {
    if (m.live[p].empty()) continue;
    out += "kubeca_certificates_live{profile=\"" + profile[p] + "\"} " +
           std::to_string(m.live[p].size()) + "\n";
  }
  out +=
      "# HELP kubeca_certificate_soonest_expiry_seconds Seconds until the first live "
      "certificate of a profile expires.\n";
  out += "# TYPE kubeca_certificate_soonest_expiry_seconds gauge\n";
  for (size_t p = 1; p < profile.size(); ++p) {
    if (m.live[p].empty()) continue;
    out += "kubeca_certificate_soonest_expiry_seconds{profile=\"" + profile[p] + "\"} " +
           std::to_string(m.live[p].begin()->first - now) + "\n";
  }
  return out;
}

}  // namespace kubeca

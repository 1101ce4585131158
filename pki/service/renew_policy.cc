#include "kubeca/renew_policy.h"

#include <algorithm>

#include "kubeca/ca.h"

namespace kubeca {

int RenewLimiter::take(const std::string& identity) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  auto& q = renewals_[identity];
  while (!q.empty() && q.front() <= now - window_) q.pop_front();
  if (static_cast<int>(q.size()) >= max_) {
    const auto wait = std::chrono::duration_cast<std::chrono::seconds>(q.front() + window_ - now);
    return static_cast<int>(std::max<int64_t>(1, wait.count() + 1));
  }
  q.push_back(now);
  if (renewals_.size() > 4096) prune(now);
  return 0;
}

void RenewLimiter::prune(std::chrono::steady_clock::time_point now) {
  for (auto it = renewals_.begin(); it != renewals_.end();) {
    if (it->second.empty() || it->second.back() <= now - window_) {
      it = renewals_.erase(it);
    } else {
      ++it;
    }
  }
}

std::optional<Profile> infer_profile(const Config& config, const Botan::X509_Certificate& cert) {
  const CertSpec have = identity_of(cert);
  for (Profile p : all_profiles()) {
    if (profile_is_ca(p) || issuer_of(p) != Profile::kCa || p == Profile::kKubelet ||
        p == Profile::kSigner || p == Profile::kUser || !profile_in_flavor(p, config.flavor)) {
      continue;
    }
    const CertSpec spec = make_spec(config, p);
    if (spec.common_name == have.common_name && spec.organizations == have.organizations) return p;
  }
  const bool modern = config.flavor == Flavor::kModern;
  if (modern ? have.common_name.rfind("system:node:", 0) == 0 &&
                   have.organizations == std::vector<std::string>{"system:nodes"}
             : have.server_auth && have.client_auth && have.organizations.empty()) {
    return Profile::kKubelet;
  }
  return std::nullopt;
}

}  // namespace kubeca

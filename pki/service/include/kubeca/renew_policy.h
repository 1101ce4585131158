// Renewal policy the Issuer applies: renewals per identity in a sliding window, and the
// profile of a certificate the store never recorded.
#pragma once

#include <botan/x509cert.h>

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "kubeca/config.h"
#include "kubeca/profile.h"

namespace kubeca {

// Renewals per identity in a sliding window: one certificate must not mint thousands.
// Kept in memory by the running service; identities whose window is empty are dropped.
class RenewLimiter {
 public:
  RenewLimiter(int max, std::chrono::seconds window) : max_(max), window_(window) {}
  // 0 when this renewal may go ahead (and is counted); else seconds until one may.
  int take(const std::string& identity);

 private:
  void prune(std::chrono::steady_clock::time_point now);
  int max_;
  std::chrono::seconds window_;
  std::mutex mu_;
  std::map<std::string, std::deque<std::chrono::steady_clock::time_point>> renewals_;
};

// The profile of a certificate the store does not know (issued by `kubeca init`), from its
// subject: the fixed profiles by CN and O, then a kubelet by its shape; nullopt otherwise.
std::optional<Profile> infer_profile(const Config& config, const Botan::X509_Certificate& cert);

}  // namespace kubeca

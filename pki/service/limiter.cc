#include "kubeca/limiter.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace kubeca {

namespace {
std::string key(const std::string& addr, const std::string& id) { return addr + '\x1f' + id; }
}  // namespace

FailureLimiter::FailureLimiter(int max, std::chrono::seconds window, size_t max_entries)
    : max_(std::max(max, 1)), window_(window), max_entries_(std::max<size_t>(max_entries, 1)) {}

int FailureLimiter::wait(const std::string& addr, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = entries_.find(key(addr, id));
  if (it == entries_.end()) return 0;
  const auto now = std::chrono::steady_clock::now();
  prune(it->second, now);
  if (static_cast<int>(it->second.times.size()) < max_) return 0;
  // Rounded up: a client that comes back after Retry-After is let through.
  const auto left = it->second.times.front() + window_ - now;
  const auto secs = std::chrono::ceil<std::chrono::seconds>(left).count();
  return static_cast<int>(std::max<int64_t>(secs, 1));
}

void FailureLimiter::fail(const std::string& addr, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string k = key(addr, id);
  auto it = entries_.find(k);
  if (it == entries_.end()) {
    order_.push_back(k);
    it = entries_.emplace(k, Entry{{}, std::prev(order_.end())}).first;
  } else {
    order_.splice(order_.end(), order_, it->second.pos);
  }
  const auto now = std::chrono::steady_clock::now();
  auto& times = it->second.times;
  prune(it->second, now);
  times.push_back(now);
  if (static_cast<int>(times.size()) > max_) times.erase(times.begin());
  while (entries_.size() > max_entries_) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
}

size_t FailureLimiter::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

void FailureLimiter::prune(Entry& e, Time now) {
  const auto cutoff = now - window_;
  auto first = e.times.begin();
  while (first != e.times.end() && *first < cutoff) ++first;
  e.times.erase(e.times.begin(), first);
}

}  // namespace kubeca

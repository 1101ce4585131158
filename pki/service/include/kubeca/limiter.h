// The failure limiter of the signing service: failed token attempts per (remote address,
// token id) in a sliding window, with a bounded memory.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace kubeca {

// Keyed by address and token id so one client's bad tokens do not lock out the others behind
// the same address (a NAT); a missing or malformed token counts under the id "". Holds at most
// `max_entries` keys, the least recently failing evicted first, so no stream of fresh ids
// grows it without bound.
class FailureLimiter {
 public:
  FailureLimiter(int max, std::chrono::seconds window, size_t max_entries);

  // Seconds until (addr, id) may try again, rounded up; 0 when it may now.
  int wait(const std::string& addr, const std::string& id);
  void fail(const std::string& addr, const std::string& id);
  size_t size();  // keys held

 private:
  using Time = std::chrono::steady_clock::time_point;
  struct Entry {
    std::vector<Time> times;  // the last `max_` failures, oldest first
    std::list<std::string>::iterator pos;
  };
  void prune(Entry& e, Time now);

  int max_;
  std::chrono::seconds window_;
  size_t max_entries_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> order_;  // least recently failing first
};

}  // namespace kubeca

// Work spread over the cores: RSA keys and signatures cost milliseconds each.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace kubeca {

inline unsigned cpu_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

// Runs fn(i) for every i in [0, n) on up to `threads` threads, this one included. After a
// failure no new i starts; once all have stopped, the failure of the lowest i is rethrown
// (the one a sequential loop would have met first).
template <class Fn>
void parallel_for(size_t n, unsigned threads, const Fn& fn) {
  threads = static_cast<unsigned>(std::min<size_t>(std::max(1u, threads), n));
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  size_t error_at = n;
  std::exception_ptr error;
  auto work = [&] {
    for (size_t i; !failed && (i = next++) < n;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (i < error_at) error_at = i, error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // fewer threads, same work
    }
  }
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace kubeca

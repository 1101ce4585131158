// The work one replica does for all of them: a new CRL when one is due, and the certificate
// gauges counted from the whole store. It runs on the replica that holds the store's
// "periodic" lease (Store::lead); when that replica dies, another takes the lease within
// its TTL. A store one process owns always leads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "kubeca/issuer.h"
#include "kubeca/metrics.h"
#include "kubeca/store.h"

namespace kubeca {

struct PeriodicOptions {
  // Between rounds; 0: a third of the store's lease TTL (the lease is renewed each round),
  // or one second for a store one process owns.
  std::chrono::milliseconds period{0};
  // How often the leader counts the store's certificates for the gauges.
  std::chrono::seconds count_every{60};
};

class PeriodicWork {
 public:
  // `metrics` may be null. All three outlive this object.
  PeriodicWork(Issuer& issuer, Store& store, Metrics* metrics, PeriodicOptions options = {});
  ~PeriodicWork();
  PeriodicWork(const PeriodicWork&) = delete;
  PeriodicWork& operator=(const PeriodicWork&) = delete;

  void start();  // rounds on a thread of its own, one now, then every period
  // Joins the thread. The lease is not given back: the others see what a crash looks like
  // and take over within the TTL.
  void stop();
  // One round now: takes or keeps the lease; the leader refreshes the CRL (a new leader
  // always makes one) and, when due, the gauges. True when this replica leads.
  bool round();
  bool leading() const;
  std::chrono::milliseconds period() const { return period_; }

 private:
  void run();

  Issuer& issuer_;
  Store& store_;
  Metrics* metrics_;
  PeriodicOptions options_;
  std::chrono::milliseconds period_;
  std::chrono::steady_clock::time_point next_count_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool leading_ = false;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace kubeca

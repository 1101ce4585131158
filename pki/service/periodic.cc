#include "kubeca/periodic.h"

#include <iostream>

#include "kubeca/pki.h"

namespace kubeca {

namespace {

std::chrono::milliseconds period_for(const Store& store, std::chrono::milliseconds asked) {
  if (asked.count() > 0) return asked;
  const auto ttl = store.lease_ttl();
  if (ttl.count() == 0) return std::chrono::seconds(1);
  return std::chrono::duration_cast<std::chrono::milliseconds>(ttl) / 3;
}

}  // namespace

PeriodicWork::PeriodicWork(Issuer& issuer, Store& store, Metrics* metrics, PeriodicOptions options)
    : issuer_(issuer),
      store_(store),
      metrics_(metrics),
      options_(options),
      period_(period_for(store, options.period)) {}

PeriodicWork::~PeriodicWork() { stop(); }

void PeriodicWork::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void PeriodicWork::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  leading_ = false;
  if (metrics_) metrics_->set_leader(false);
}

bool PeriodicWork::leading() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leading_;
}

bool PeriodicWork::round() {
  bool was;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was = leading_;
  }
  bool now_leading = false;
  try {
    now_leading = store_.lead("periodic");
  } catch (...) {
    // The store does not answer: not the leader as far as this replica can tell.
    std::lock_guard<std::mutex> lock(mu_);
    leading_ = false;
    if (metrics_) metrics_->set_leader(false);
    throw;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    leading_ = now_leading;
  }
  if (metrics_) metrics_->set_leader(now_leading);
  if (now_leading != was) {
    std::cerr << "kubeca: this replica " << (now_leading ? "now does" : "no longer does")
              << " the periodic work (CRL, certificate gauges)\n";
  }
  if (!now_leading) return false;
  // A new leader makes a CRL at once: the one published may be its dead predecessor's.
  issuer_.refresh_crl(/*force=*/!was);
  const auto now = std::chrono::steady_clock::now();
  // A store one process owns has complete gauges already: its hooks see every issuance.
  const bool shared = store_.lease_ttl().count() > 0;
  if (metrics_ && shared && (!was || now >= next_count_)) {
    metrics_->count_store(store_, unix_now());
    next_count_ = now + options_.count_every;
  }
  return true;
}

void PeriodicWork::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    std::string error;
    try {
      round();
    } catch (const std::exception& e) {
      error = e.what();
    }
    lock.lock();
    // Said once per new error, not every round while the store is away.
    if (error != last_error_ && !error.empty()) {
      std::cerr << "kubeca: periodic work: " << error << "\n";
    }
    last_error_ = error;
    cv_.wait_for(lock, period_, [this] { return stopping_; });
  }
}

}  // namespace kubeca

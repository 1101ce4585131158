// Group commit for the etcd store: writes that arrive while a transaction is in flight wait
// and share the next one, as SQLite's group commit shares an fsync. Each etcd transaction is
// an HTTP request, a trip through etcd's JSON gateway and a raft entry applied on every
// member; a batch pays those once. A batch is all or nothing (etcd has no savepoints): when
// any compare fails, every write of it is told so and its caller tries again alone.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace kubeca::store_internal {

class TxnBatcher {
 public:
  using json = nlohmann::json;
  struct Write {
    std::vector<json> compares, puts;
    // The keys it puts: two writes of one key never share a batch (etcd refuses a
    // transaction that puts a key twice, and both would compare the same revision).
    std::vector<std::string> keys;
  };
  // Sends one transaction; the store's revision it made when it succeeded, else 0.
  using Send = std::function<int64_t(const std::vector<json>&, const std::vector<json>&)>;

  TxnBatcher(Send send, size_t max_writes) : send_(std::move(send)), max_(max_writes) {}

  // The revision made by the transaction `w` went in (the mod_revision of what it put); 0
  // when one of its compares (this write's or another's) failed and nothing was written.
  // Throws what Send threw.
  int64_t commit(const Write& w) {
    Pending p;
    p.write = &w;
    std::unique_lock<std::mutex> lock(mu_);
    queue_.push_back(&p);
    while (!p.done) {
      if (committing_) {
        cv_.wait(lock);
        continue;
      }
      committing_ = true;
      std::vector<Pending*> batch = take();
      lock.unlock();
      std::vector<json> compares, puts;
      for (const Pending* b : batch) {
        compares.insert(compares.end(), b->write->compares.begin(), b->write->compares.end());
        puts.insert(puts.end(), b->write->puts.begin(), b->write->puts.end());
      }
      int64_t revision = 0;
      std::exception_ptr error;
      try {
        revision = send_(compares, puts);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      for (Pending* b : batch) {
        b->done = true;
        b->revision = revision;
        b->error = error;
      }
      ++batches_;
      writes_ += batch.size();
      committing_ = false;
      cv_.notify_all();
    }
    if (p.error) std::rethrow_exception(p.error);
    return p.revision;
  }

  // Transactions sent and writes they carried: writes / batches is the batch size.
  std::pair<size_t, size_t> counts() {
    std::lock_guard<std::mutex> lock(mu_);
    return {batches_, writes_};
  }

 private:
  struct Pending {
    const Write* write = nullptr;
    bool done = false;
    int64_t revision = 0;
    std::exception_ptr error;
  };

  // Under mu_: the oldest queued writes, up to max_, none of them touching a key another
  // of them touches; the rest wait for the next batch.
  std::vector<Pending*> take() {
    std::vector<Pending*> batch, rest;
    std::set<std::string> keys;
    for (Pending* p : queue_) {
      bool clash = batch.size() >= max_;
      for (const auto& k : p->write->keys) clash = clash || keys.count(k);
      if (clash) {
        rest.push_back(p);
        continue;
      }
      keys.insert(p->write->keys.begin(), p->write->keys.end());
      batch.push_back(p);
    }
    queue_ = std::move(rest);
    return batch;
  }

  Send send_;
  size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending*> queue_;
  bool committing_ = false;
  size_t batches_ = 0, writes_ = 0;
};

}  // namespace kubeca::store_internal

// The etcd store's group commit, with a transaction sender of the test's own: writes that
// arrive while one transaction is in flight share the next, two writes of one key never
// share one, and a failed or throwing transaction fails every write it carried.
#include "../../pki/store/etcd_batch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace kubeca::store_internal {
namespace {

using json = nlohmann::json;

TxnBatcher::Write write_of(const std::string& key) {
  return {{json{{"key", key}}}, {json{{"put", key}}}, {key}};
}

TEST(TxnBatcherTest, ConcurrentWritesShareTransactionsAndEachKeyIsInOneAtATime) {
  std::mutex mu;
  std::vector<std::vector<std::string>> sent;
  int64_t revision = 0;
  TxnBatcher b(
      [&](const std::vector<json>& compares, const std::vector<json>& puts) -> int64_t {
        EXPECT_EQ(compares.size(), puts.size());
        std::vector<std::string> keys;
        for (const auto& p : puts) keys.push_back(p["put"]);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a consensus round
        std::lock_guard<std::mutex> lock(mu);
        sent.push_back(keys);
        return ++revision;
      },
      8);
  // 32 threads, 4 writes each; threads 2k and 2k+1 write the same keys.
  std::vector<std::thread> threads;
  std::atomic<int> committed{0};
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 4; ++i) {
        if (b.commit(write_of("k" + std::to_string(t / 2) + "-" + std::to_string(i))) > 0) {
          ++committed;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(committed, 128);
  size_t writes = 0;
  for (const auto& keys : sent) {
    EXPECT_LE(keys.size(), 8u);
    EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), keys.size())
        << "a key twice in one transaction";
    writes += keys.size();
  }
  EXPECT_EQ(writes, 128u);
  EXPECT_LT(sent.size(), 64u) << "writes did not share transactions";
  EXPECT_EQ(b.counts(), std::make_pair(sent.size(), size_t{128}));
}

TEST(TxnBatcherTest, AFailedTransactionFailsEveryWriteInItAndAThrowReachesEach) {
  std::atomic<int> calls{0};
  TxnBatcher fails(
      [&](const std::vector<json>&, const std::vector<json>&) -> int64_t {
        ++calls;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return 0;
      },
      16);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] { ok += fails.commit(write_of("f" + std::to_string(t))) > 0; });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 0);
  EXPECT_GE(calls, 1);

  TxnBatcher throws(
      [](const std::vector<json>&, const std::vector<json>&) -> int64_t {
        throw std::runtime_error("etcd unavailable");
      },
      16);
  EXPECT_THROW(throws.commit(write_of("x")), std::runtime_error);
  // The batcher is usable after a throw: the next write is sent too.
  EXPECT_THROW(throws.commit(write_of("y")), std::runtime_error);
  EXPECT_EQ(throws.counts().second, 2u);
}

}  // namespace
}  // namespace kubeca::store_internal

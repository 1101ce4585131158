// with_retries: what a client does with 429/503 and Retry-After.
#include "kubeca/client.h"

#include <gtest/gtest.h>

#include <chrono>

namespace kubeca {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

HttpResult answer(int status, int retry_after = 0) {
  HttpResult r;
  r.status = status;
  r.retry_after = retry_after;
  return r;
}

TEST(WithRetries, A429WithRetryAfterIsWaitedOutAndRetried) {
  int calls = 0;
  const auto start = steady_clock::now();
  const HttpResult r = with_retries([&] { return ++calls == 1 ? answer(429, 1) : answer(201); }, 4,
                                    milliseconds(100));
  const auto waited = steady_clock::now() - start;
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(calls, 2);
  EXPECT_GE(waited, milliseconds(1000)) << "Retry-After is longer than the backoff";
  EXPECT_LT(waited, milliseconds(3000));
}

TEST(WithRetries, A429TellingToWaitLongerThanAMinuteIsReturnedAtOnce) {
  int calls = 0;
  const auto start = steady_clock::now();
  const HttpResult r =
      with_retries([&] { return ++calls, answer(429, 3600); }, 4, milliseconds(10));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(calls, 1);
  EXPECT_LT(steady_clock::now() - start, milliseconds(500));
}

TEST(WithRetries, A429WithoutRetryAfterIsNotRetried) {
  int calls = 0;
  EXPECT_EQ(with_retries([&] { return ++calls, answer(429); }, 4, milliseconds(10)).status, 429);
  EXPECT_EQ(calls, 1);
}

TEST(WithRetries, RetriesStayWithinTheBudget) {
  int calls = 0;
  const HttpResult r = with_retries([&] { return ++calls, answer(429, 1); }, 2, milliseconds(10));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(calls, 2);
}

TEST(WithRetries, OtherRefusalsAreFinal) {
  int calls = 0;
  EXPECT_EQ(with_retries([&] { return ++calls, answer(401, 1); }, 4, milliseconds(10)).status, 401);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace kubeca

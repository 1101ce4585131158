// with_retries: what a client does with 429/503 and Retry-After; a signer that hangs up
// mid-request is a failed attempt, not a dead client.
#include "kubeca/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "test_support.h"

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

// A replica killed while a node sends its request: the socket closes under the client's
// write. OpenSSL writes with write(2), so without SIGPIPE ignored the node's process dies
// there (exit 141) instead of trying the next replica. The server here completes the TLS
// handshake, then hangs up and resets the connection while the client writes an 8 MB
// request, as a killed process's socket does.
TEST(ApiClient, ASignerDyingMidRequestIsAFailedAttemptNotADeadProcess) {
  const auto dir = test::make_temp_dir("kubeca-client-test");
  const std::string cert = (dir / "c.pem").string(), key = (dir / "k.pem").string();
  ASSERT_EQ(std::system(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                         "-subj /CN=127.0.0.1 -days 1 -keyout " +
                         key + " -out " + cert + " 2>/dev/null")
                            .c_str()),
            0);
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  ASSERT_EQ(SSL_CTX_use_certificate_file(ctx, cert.c_str(), SSL_FILETYPE_PEM), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM), 1);
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(listener, 8), 0);
  socklen_t len = sizeof a;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  std::thread server([&] {
    for (int i = 0; i < 2; ++i) {
      const int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      SSL* ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) == 1) {
        // FIN first, then a reset while the client is still writing: its socket, half
        // closed, takes the reset as EPIPE, which raises SIGPIPE.
        ::shutdown(fd, SHUT_WR);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      ::close(fd);  // unread data: the kernel resets the connection
      SSL_free(ssl);
    }
  });
  std::signal(SIGPIPE, SIG_DFL);  // as a new process has it
  ApiClient client("https://127.0.0.1:" + std::to_string(ntohs(a.sin_port)), "");
  const HttpResult r = client.post("/v1/sign", {{"csr", std::string(8 << 20, 'x')}}, "");
  EXPECT_EQ(r.status, 0);  // reached: the process lives, and the attempt failed
  EXPECT_TRUE(r.retryable);
  ::shutdown(listener, SHUT_RDWR);
  ::close(listener);
  server.join();
  SSL_CTX_free(ctx);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kubeca

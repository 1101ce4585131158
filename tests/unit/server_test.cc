// The signing service in-process on 127.0.0.1: load from many clients, and idle
// connections that must not starve it.
#include "kubeca/server.h"

#include <arpa/inet.h>
#include <botan/auto_rng.h>
#include <botan/x509_crl.h>
#include <botan/x509self.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "kubeca/ca.h"
#include "kubeca/client.h"
#include "kubeca/fs.h"
#include "kubeca/keys.h"
#include "kubeca/pki.h"
#include "kubeca/token.h"
#include "test_support.h"

namespace kubeca {
namespace {

namespace fs = std::filesystem;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::make_temp_dir("kubeca-server-test");
    config_.master_host = "127.0.0.1";
    config_.master_name = "m1";
    config_.workers = {{"n1", "127.0.0.2"}};
    config_.key_algorithm = "ecdsa-p256";
    config_.signer_url = "https://127.0.0.1:8443";
    validate(config_);
    init_pki(config_, dir_ / "pki", std::chrono::system_clock::now());
    store_url_ = "sqlite:" + (dir_ / "kubeca.db").string();
    ca_pem_ = read_file(dir_ / "pki" / "ca.pem");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<SigningServer> Start(ServeOptions o) {
    o.host = "127.0.0.1";
    o.port = 0;
    o.audit_log = (dir_ / "audit.log").string();
    auto s = std::make_unique<SigningServer>(config_, dir_ / "pki", open_store(store_url_), o);
    port_ = s->start();
    return s;
  }
  std::string Url() const { return "https://127.0.0.1:" + std::to_string(port_); }

  // A kubelet token for n1 with `uses` uses, straight into the store.
  std::pair<std::string, TokenRecord> Token(Store& store, int uses) {
    TokenRequest tr;
    tr.node = "n1";
    tr.ips = {"127.0.0.2"};
    tr.uses = uses;
    return create_token(store, tr, std::time(nullptr));
  }

  static std::string Csr(Botan::RandomNumberGenerator& rng) {
    auto key = generate_key(KeyAlgorithm::kEcdsaP256, rng);
    Botan::X509_Cert_Options opts;
    opts.common_name = "system:node:n1";
    return Botan::X509::create_cert_req(opts, *key, "SHA-256", rng).PEM_encode();
  }

  fs::path dir_;
  Config config_;
  std::string store_url_, ca_pem_;
  int port_ = 0;
};

TEST_F(ServerTest, ThousandSignsFromSixtyFourClientsAllSucceedWithUniqueSerials) {
  // Correctness under load, not deadlines: under ASan on a busy machine 64 signing workers
  // can starve the I/O threads past the 5 s handshake deadline.
  ServeOptions o;
  o.handshake_timeout = o.request_deadline = std::chrono::seconds(60);
  auto server = Start(o);
  auto store = open_store(store_url_);
  const auto [token, rec] = Token(*store, 1000);

  constexpr int kClients = 64, kTotal = 1000;
  std::atomic<int> next{0}, ok{0};
  std::mutex mu;
  std::set<std::string> serials;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      Botan::AutoSeeded_RNG rng;
      ApiClient api(Url(), ca_pem_);
      while (next++ < kTotal) {
        const auto r = api.post("/v1/sign", {{"csr", Csr(rng)}, {"profile", "kubelet"}}, token);
        std::lock_guard<std::mutex> lock(mu);
        if (r.status == 201) {
          ++ok;
          serials.insert(r.json()["serial"].get<std::string>());
        } else {
          failures.push_back(r.describe());
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  ASSERT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures.front();
  EXPECT_EQ(ok.load(), kTotal);
  EXPECT_EQ(serials.size(), static_cast<size_t>(kTotal));

  // The store agrees: every serial once, the token used exactly 1000 times.
  const auto certs = store->list_certificates();
  EXPECT_EQ(certs.size(), static_cast<size_t>(kTotal));
  std::set<std::string> stored;
  for (const auto& c : certs) stored.insert(c.serial);
  EXPECT_EQ(stored, serials);
  EXPECT_EQ(store->find_token(rec.id)->uses, kTotal);

  // One more is refused and stores nothing.
  Botan::AutoSeeded_RNG rng;
  ApiClient api(Url(), ca_pem_);
  const auto r = api.post("/v1/sign", {{"csr", Csr(rng)}}, token);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.json()["code"], "token_used_up");
  EXPECT_EQ(store->list_certificates().size(), static_cast<size_t>(kTotal));
}

TEST_F(ServerTest, IdleConnectionsCannotStarveTheService) {
  ServeOptions o;
  o.threads = 4;
  o.handshake_timeout = std::chrono::seconds(1);
  o.keep_alive_timeout = std::chrono::seconds(1);
  auto server = Start(o);

  // Twice as many silent TCP connections as there are threads: they never say a word.
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    idle.push_back(fd);
  }
  // And keep-alive clients that made one request and went quiet.
  std::vector<std::unique_ptr<ApiClient>> quiet;
  for (int i = 0; i < 4; ++i) {
    quiet.push_back(std::make_unique<ApiClient>(Url(), ca_pem_));
    EXPECT_EQ(quiet.back()->get("/healthz").status, 200);
  }

  const auto start = std::chrono::steady_clock::now();
  ApiClient fresh(Url(), ca_pem_);
  const auto r = fresh.get("/v1/ca");
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(waited, std::chrono::seconds(8)) << "a new client waited behind idle connections";

  // The server closed the silent connections on its own.
  for (int fd : idle) {
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[16];
    EXPECT_EQ(::recv(fd, buf, sizeof buf, 0), 0) << "an idle connection was kept open";
    ::close(fd);
  }
}

// A silent TCP connection to 127.0.0.1:port.
int Silent(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

TEST_F(ServerTest, AtTheConnectionCapTheOldestSilentConnectionsAreShed) {
  ServeOptions o;
  o.max_connections = 16;
  auto server = Start(o);  // the handshake timeout stays 5 s: shedding, not timing out
  std::vector<int> silent;
  for (int i = 0; i < 40; ++i) silent.push_back(Silent(port_));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // all accepted

  // A real client still gets in, at once.
  const auto start = std::chrono::steady_clock::now();
  ApiClient api(Url(), ca_pem_);
  EXPECT_EQ(api.get("/healthz").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));

  // The oldest silent connections were closed to make room, long before their timeout;
  // the newest are still open.
  auto closed = [](int fd) {
    timeval tv{0, 500000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[16];
    return ::recv(fd, buf, sizeof buf, 0) == 0;
  };
  EXPECT_TRUE(closed(silent.front()));
  EXPECT_TRUE(closed(silent[10]));
  EXPECT_FALSE(closed(silent.back()));
  for (int fd : silent) ::close(fd);
}

TEST_F(ServerTest, ASecondServerOnAHeldPortFailsNamingTheAddress) {
  auto first = Start({});
  ServeOptions o;
  o.host = "127.0.0.1";
  o.port = port_;
  o.audit_log = (dir_ / "audit2.log").string();
  SigningServer second(config_, dir_ / "pki", open_store(store_url_), o);
  try {
    second.start();
    FAIL() << "a second server listened on a port the first one holds";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot listen on 127.0.0.1:" + std::to_string(port_) + ": address in use");
  }
  ApiClient api(Url(), ca_pem_);
  EXPECT_EQ(api.get("/healthz").status, 200);
}

TEST_F(ServerTest, StopLetsTheRequestInFlightFinish) {
  auto server = Start({});
  auto store = open_store(store_url_);
  const auto [token, rec] = Token(*store, 50);
  std::atomic<int> ok{0}, other{0};
  std::thread load([&, tok = token] {
    Botan::AutoSeeded_RNG rng;
    ApiClient api(Url(), ca_pem_);
    for (int i = 0; i < 50; ++i) {
      const auto r = api.post("/v1/sign", {{"csr", Csr(rng)}}, tok);
      if (r.status != 201) {
        ++other;
        break;  // the service has stopped
      }
      ++ok;
    }
  });
  // Stop while the client is busy: once it has had a first answer, however slow the machine.
  for (int i = 0; i < 1000 && ok.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  server->stop();
  server->wait();
  load.join();
  // Every certificate a client got is in the store, and nothing else: no half-writes.
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(store->list_certificates().size(), static_cast<size_t>(ok.load()));
  EXPECT_EQ(store->find_token(rec.id)->uses, ok.load());
}

TEST_F(ServerTest, CrlIsMadeAgainBeforeItsNextUpdate) {
  ServeOptions o;
  o.crl_lifetime = std::chrono::seconds(2);
  auto server = Start(o);
  ApiClient api(Url(), ca_pem_);
  auto fetch = [&] {
    const auto r = api.get("/v1/crl");
    EXPECT_EQ(r.status, 200);
    return Botan::X509_CRL(std::vector<uint8_t>(r.body.begin(), r.body.end()));
  };
  const auto ca = parse_certificate_pem(ca_pem_);
  std::unique_ptr<Botan::Public_Key> ca_key(ca.subject_public_key());
  const auto first = fetch();
  EXPECT_TRUE(first.check_signature(*ca_key));
  // Served for less than half its life: the same CRL.
  EXPECT_EQ(fetch().this_update().to_std_timepoint(), first.this_update().to_std_timepoint());
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  const auto later = fetch();
  EXPECT_GT(later.this_update().to_std_timepoint(), first.this_update().to_std_timepoint());
  // What is served is never past its nextUpdate.
  EXPECT_GT(later.next_update().to_std_timepoint(), std::chrono::system_clock::now());
  EXPECT_TRUE(later.check_signature(*ca_key));
}

}  // namespace
}  // namespace kubeca

#include "kubeca/store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kubeca/config.h"
#include "local_etcd.h"

namespace kubeca {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kNow = 1'800'000'000;
constexpr int64_t kSchemaVersion = 4;  // the store's current schema
const std::string kPinA = "sha256:" + std::string(64, 'a');
const std::string kPinB = "sha256:" + std::string(64, 'b');

CertRecord make_cert(const std::string& serial, int64_t not_before = kNow) {
  CertRecord c;
  c.serial = serial;
  c.profile = "kubelet";
  c.subject = "CN=system:node:n1, O=system:nodes";
  c.sans = {"DNS:n1", "IP:10.0.0.1"};
  c.not_before = not_before;
  c.not_after = not_before + 86400;
  c.requester = "token:abc123";
  c.pem = "-----BEGIN CERTIFICATE-----\nMIIB" + serial + "\n-----END CERTIFICATE-----\n";
  c.key_hash = "k-" + serial;
  c.node = "n1";
  c.identity = "kubelet|n1";
  return c;
}

TokenRecord make_token(const std::string& id, int uses_allowed = 1) {
  TokenRecord t;
  t.id = id;
  t.secret_hash = std::string(64, 'a');
  t.node = "n1";
  t.ips = {"10.0.0.1", "fd00::1"};
  t.created_at = kNow - 60;
  t.expires_at = kNow + 3600;
  t.uses_allowed = uses_allowed;
  return t;
}

void expect_same(const CertRecord& a, const CertRecord& b) {
  EXPECT_EQ(a.serial, b.serial);
  EXPECT_EQ(a.profile, b.profile);
  EXPECT_EQ(a.subject, b.subject);
  EXPECT_EQ(a.sans, b.sans);
  EXPECT_EQ(a.not_before, b.not_before);
  EXPECT_EQ(a.not_after, b.not_after);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.requester, b.requester);
  EXPECT_EQ(a.pem, b.pem);
  EXPECT_EQ(a.revoked_at, b.revoked_at);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.key_hash, b.key_hash);
  EXPECT_EQ(a.node, b.node);
  EXPECT_EQ(a.identity, b.identity);
}

void expect_same(const TokenRecord& a, const TokenRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.secret_hash, b.secret_hash);
  EXPECT_EQ(a.node, b.node);
  EXPECT_EQ(a.ips, b.ips);
  EXPECT_EQ(a.profile, b.profile);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.expires_at, b.expires_at);
  EXPECT_EQ(a.uses_allowed, b.uses_allowed);
  EXPECT_EQ(a.uses, b.uses);
  EXPECT_EQ(a.revoked, b.revoked);
}

std::vector<std::string> serials(Store& store) {
  std::vector<std::string> out;
  for (const CertRecord& c : store.list_certificates()) out.push_back(c.serial);
  return out;
}

// A fresh folder under TMPDIR, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kubeca-store-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs fixed SQL on a database file behind the store's back, as another program would.
void raw_exec(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(h);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

int64_t raw_pragma(const fs::path& db, const std::string& pragma) {
  sqlite3* h = nullptr;
  EXPECT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(h, ("PRAGMA " + pragma).c_str(), -1, &s, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_step(s), SQLITE_ROW);
  int64_t v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(h);
  return v;
}

// Every Store behaviour, against each backend.
enum class Backend { kMemory, kSqliteMemory, kSqliteFile, kEtcd };

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kEtcd && !test::LocalEtcd::get().available()) {
      GTEST_SKIP() << "etcd is not installed (Debian: etcd-server)";
    }
    store_ = open_store(url());
  }

  std::string url() const {
    switch (GetParam()) {
      case Backend::kMemory:
        return "memory:";
      case Backend::kSqliteMemory:
        return "sqlite::memory:";
      case Backend::kSqliteFile:
        return "sqlite:" + (dir_.path() / "store.db").string();
      case Backend::kEtcd:
        return "etcd+http://" + test::LocalEtcd::get().endpoint() + "?prefix=/" +
               dir_.path().filename().string() + "/";
    }
    return "";
  }

  // Another Store on the same data when the backend is shared (a file, etcd), else null.
  std::unique_ptr<Store> open_peer() const {
    if (GetParam() == Backend::kSqliteFile || GetParam() == Backend::kEtcd) {
      return open_store(url());
    }
    return nullptr;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreTest, InsertFindListCertificates) {
  EXPECT_TRUE(store_->list_certificates().empty());
  EXPECT_TRUE(store_->insert_certificate(make_cert("0c", kNow + 10)));
  EXPECT_TRUE(store_->insert_certificate(make_cert("0b", kNow)));
  EXPECT_TRUE(store_->insert_certificate(make_cert("0a", kNow + 10)));

  // Ordered by not_before, then serial.
  EXPECT_EQ(serials(*store_), (std::vector<std::string>{"0b", "0a", "0c"}));
  auto found = store_->find_certificate("0a");
  ASSERT_TRUE(found.has_value());
  expect_same(*found, make_cert("0a", kNow + 10));
  EXPECT_FALSE(store_->find_certificate("0d").has_value());
  EXPECT_FALSE(store_->find_certificate("").has_value());
}

TEST_P(StoreTest, KeepsEveryFieldExactly) {
  CertRecord c = make_cert("ff01");
  // Separators a naive encoding would split on, quotes, non-ASCII and an empty entry.
  c.sans = {"DNS:a,b", "DNS:line\nbreak", "DNS:\"quoted\"", "DNS:ümlaut", ""};
  c.subject = "CN=it's, O=\"x\"";
  c.status = "revoked";
  c.revoked_at = kNow + 5;
  c.reason = 4;
  c.not_before = -1;  // before 1970 must survive as well
  c.not_after = int64_t{1} << 40;
  ASSERT_TRUE(store_->insert_certificate(c));
  expect_same(*store_->find_certificate("ff01"), c);

  CertRecord empty = make_cert("ff02");
  empty.sans.clear();
  empty.pem.clear();
  ASSERT_TRUE(store_->insert_certificate(empty));
  expect_same(*store_->find_certificate("ff02"), empty);

  TokenRecord t = make_token("tok001");
  t.ips.clear();
  t.profile = "kube-proxy";
  t.uses = 2;
  t.uses_allowed = 7;
  t.revoked = true;
  ASSERT_TRUE(store_->insert_token(t));
  expect_same(*store_->find_token("tok001"), t);
}

TEST_P(StoreTest, DuplicateSerialRefused) {
  ASSERT_TRUE(store_->insert_certificate(make_cert("0a")));
  CertRecord other = make_cert("0a", kNow + 99);
  other.subject = "CN=intruder";
  EXPECT_FALSE(store_->insert_certificate(other));
  EXPECT_EQ(store_->list_certificates().size(), 1u);
  EXPECT_EQ(store_->find_certificate("0a")->subject, make_cert("0a").subject);
}

TEST_P(StoreTest, RevokeCertificate) {
  ASSERT_TRUE(store_->insert_certificate(make_cert("0a")));
  ASSERT_TRUE(store_->insert_certificate(make_cert("0b")));
  EXPECT_FALSE(store_->revoke_certificate("0c", 1, kNow));
  EXPECT_FALSE(store_->find_certificate("0c").has_value());

  EXPECT_TRUE(store_->revoke_certificate("0a", 1, kNow + 5));
  auto a = store_->find_certificate("0a");
  EXPECT_EQ(a->status, "revoked");
  EXPECT_EQ(a->revoked_at, kNow + 5);
  EXPECT_EQ(a->reason, 1);

  // A second revoke is accepted but keeps the first time and reason.
  EXPECT_TRUE(store_->revoke_certificate("0a", 4, kNow + 50));
  a = store_->find_certificate("0a");
  EXPECT_EQ(a->status, "revoked");
  EXPECT_EQ(a->revoked_at, kNow + 5);
  EXPECT_EQ(a->reason, 1);

  auto b = store_->find_certificate("0b");
  EXPECT_EQ(b->status, "good");
  EXPECT_EQ(b->revoked_at, 0);
  EXPECT_EQ(b->reason, 0);
}

TEST_P(StoreTest, InsertFindListRevokeTokens) {
  EXPECT_TRUE(store_->list_tokens().empty());
  TokenRecord late = make_token("bbbbbb");
  late.created_at = kNow;
  TokenRecord early = make_token("cccccc", 3);
  early.created_at = kNow - 100;
  TokenRecord tie = make_token("aaaaaa");
  tie.created_at = kNow;
  ASSERT_TRUE(store_->insert_token(late));
  ASSERT_TRUE(store_->insert_token(early));
  ASSERT_TRUE(store_->insert_token(tie));

  std::vector<TokenRecord> all = store_->list_tokens();
  ASSERT_EQ(all.size(), 3u);
  // Ordered by created_at, then id.
  expect_same(all[0], early);
  expect_same(all[1], tie);
  expect_same(all[2], late);
  expect_same(*store_->find_token("cccccc"), early);
  EXPECT_FALSE(store_->find_token("dddddd").has_value());

  EXPECT_FALSE(store_->revoke_token("dddddd"));
  EXPECT_FALSE(store_->find_token("dddddd").has_value());
  EXPECT_TRUE(store_->revoke_token("bbbbbb"));
  EXPECT_TRUE(store_->find_token("bbbbbb")->revoked);
  EXPECT_TRUE(store_->revoke_token("bbbbbb"));
  EXPECT_TRUE(store_->find_token("bbbbbb")->revoked);
  EXPECT_FALSE(store_->find_token("aaaaaa")->revoked);
  EXPECT_FALSE(store_->find_token("cccccc")->revoked);
}

TEST_P(StoreTest, DuplicateTokenIdRefused) {
  ASSERT_TRUE(store_->insert_token(make_token("aaaaaa")));
  TokenRecord other = make_token("aaaaaa", 9);
  other.node = "intruder";
  EXPECT_FALSE(store_->insert_token(other));
  EXPECT_EQ(store_->list_tokens().size(), 1u);
  expect_same(*store_->find_token("aaaaaa"), make_token("aaaaaa"));
}

TEST_P(StoreTest, UseTokenCountsUsesAndStoresCertificate) {
  ASSERT_TRUE(store_->insert_token(make_token("aaaaaa", 2)));
  EXPECT_EQ(store_->use_token("aaaaaa", make_cert("01"), kNow), TokenUse::kOk);
  EXPECT_EQ(store_->find_token("aaaaaa")->uses, 1);
  expect_same(*store_->find_certificate("01"), make_cert("01"));

  // The last second before expiry still counts.
  EXPECT_EQ(store_->use_token("aaaaaa", make_cert("02"), kNow + 3599), TokenUse::kOk);
  EXPECT_EQ(store_->find_token("aaaaaa")->uses, 2);
  EXPECT_EQ(serials(*store_), (std::vector<std::string>{"01", "02"}));

  EXPECT_EQ(store_->use_token("aaaaaa", make_cert("03"), kNow), TokenUse::kUsedUp);
  EXPECT_EQ(store_->find_token("aaaaaa")->uses, 2);
  EXPECT_FALSE(store_->find_certificate("03").has_value());
}

struct Refusal {
  const char* name;
  TokenUse want;
  std::string id;
  std::string serial;
  int64_t now;
};

TEST_P(StoreTest, UseTokenRefusalsChangeNothing) {
  TokenRecord ok = make_token("okokok", 5);
  TokenRecord revoked = make_token("revokd", 5);
  revoked.revoked = true;
  TokenRecord used = make_token("usedup", 2);
  used.uses = 2;
  ASSERT_TRUE(store_->insert_token(ok));
  ASSERT_TRUE(store_->insert_token(revoked));
  ASSERT_TRUE(store_->insert_token(used));
  ASSERT_TRUE(store_->insert_certificate(make_cert("taken")));

  const int64_t expires = ok.expires_at;
  const std::vector<Refusal> cases = {
      {"unknown", TokenUse::kUnknown, "nonono", "new1", kNow},
      {"revoked", TokenUse::kRevoked, "revokd", "new1", kNow},
      {"expired at expires_at", TokenUse::kExpired, "okokok", "new1", expires},
      {"expired after", TokenUse::kExpired, "okokok", "new1", expires + 1000},
      {"used up", TokenUse::kUsedUp, "usedup", "new1", kNow},
      {"duplicate serial", TokenUse::kDuplicateSerial, "okokok", "taken", kNow},
  };
  for (const Refusal& c : cases) {
    SCOPED_TRACE(c.name);
    const std::vector<CertRecord> certs_before = store_->list_certificates();
    const std::vector<TokenRecord> tokens_before = store_->list_tokens();

    CertRecord cert = make_cert(c.serial, kNow + 1);
    cert.subject = "CN=must-not-be-stored";
    EXPECT_EQ(store_->use_token(c.id, cert, c.now), c.want);

    const std::vector<CertRecord> certs_after = store_->list_certificates();
    const std::vector<TokenRecord> tokens_after = store_->list_tokens();
    ASSERT_EQ(certs_after.size(), certs_before.size());
    for (size_t i = 0; i < certs_after.size(); ++i) expect_same(certs_after[i], certs_before[i]);
    ASSERT_EQ(tokens_after.size(), tokens_before.size());
    for (size_t i = 0; i < tokens_after.size(); ++i) {
      expect_same(tokens_after[i], tokens_before[i]);
    }
  }
  // The refusals above left the good token usable.
  EXPECT_EQ(store_->use_token("okokok", make_cert("new1"), kNow), TokenUse::kOk);
  EXPECT_EQ(store_->find_token("okokok")->uses, 1);
}

TEST_P(StoreTest, RevokedBeatsExpiredAndUsedUp) {
  TokenRecord t = make_token("aaaaaa", 1);
  t.uses = 1;
  t.revoked = true;
  ASSERT_TRUE(store_->insert_token(t));
  EXPECT_EQ(store_->use_token("aaaaaa", make_cert("01"), t.expires_at + 1), TokenUse::kRevoked);
  ASSERT_TRUE(store_->insert_token(make_token("bbbbbb", 0)));
  EXPECT_EQ(store_->use_token("bbbbbb", make_cert("01"), kNow + 999'999), TokenUse::kExpired);
}

TEST_P(StoreTest, Healthy) { EXPECT_TRUE(store_->healthy()); }

TEST_P(StoreTest, RecordCertificatesAddsOnlyTheNewOnes) {
  ASSERT_TRUE(store_->insert_certificate(make_cert("0b")));
  ASSERT_TRUE(store_->revoke_certificate("0b", 1, kNow));
  EXPECT_EQ(store_->record_certificates({make_cert("0a"), make_cert("0b"), make_cert("0c")}), 2u);
  EXPECT_EQ(serials(*store_), (std::vector<std::string>{"0a", "0b", "0c"}));
  // A known certificate keeps its record: a revocation is not undone by recording it again.
  EXPECT_EQ(store_->find_certificate("0b")->status, "revoked");
  EXPECT_EQ(store_->record_certificates({make_cert("0a")}), 0u);
  EXPECT_EQ(store_->record_certificates({}), 0u);
  if (auto peer = open_peer()) {
    EXPECT_EQ(serials(*peer), (std::vector<std::string>{"0a", "0b", "0c"}));
  }
}

TEST_P(StoreTest, BoundToTheFirstCa) {
  store_->bind_ca(kPinA);
  store_->bind_ca(kPinA);  // the same CA again: fine
  try {
    store_->bind_ca(kPinB);
    FAIL() << "a store of one CA was bound to another";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(kPinA), std::string::npos) << msg;
    EXPECT_NE(msg.find(kPinB), std::string::npos) << msg;
  }
  if (auto peer = open_peer()) {
    // The binding is in the file: another process sees it.
    EXPECT_THROW(peer->bind_ca(kPinB), InputError);
    peer->bind_ca(kPinA);
  }
}

// Runs fn(i) on n threads released together, so they really contend.
template <typename Fn>
void run_together(int n, Fn fn) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (!go) std::this_thread::yield();
      fn(i);
    });
  }
  while (ready < n) std::this_thread::yield();
  go = true;
  for (std::thread& t : threads) t.join();
}

TEST_P(StoreTest, LastUseRaceHasOneWinner) {
  constexpr int kThreads = 8;
  ASSERT_TRUE(store_->insert_token(make_token("aaaaaa", 1)));
  // On a file each thread gets its own connection, as separate processes would.
  std::vector<std::unique_ptr<Store>> peers(kThreads);
  for (auto& p : peers) p = open_peer();

  std::vector<TokenUse> got(kThreads, TokenUse::kUnknown);
  std::atomic<int> errors{0};
  run_together(kThreads, [&](int i) {
    Store& s = peers[i] ? *peers[i] : *store_;
    try {
      got[i] = s.use_token("aaaaaa", make_cert("s" + std::to_string(i)), kNow);
    } catch (const std::exception& e) {
      ++errors;
      ADD_FAILURE() << e.what();
    }
  });
  EXPECT_EQ(errors, 0);
  int ok = 0, used_up = 0;
  for (TokenUse u : got) {
    ok += u == TokenUse::kOk;
    used_up += u == TokenUse::kUsedUp;
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(used_up, kThreads - 1);
  EXPECT_EQ(store_->list_certificates().size(), 1u);
  EXPECT_EQ(store_->find_token("aaaaaa")->uses, 1);
}

TEST_P(StoreTest, UseRaceHonoursUsesAllowed) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 5;
  ASSERT_TRUE(store_->insert_token(make_token("aaaaaa", 13)));
  std::vector<std::unique_ptr<Store>> peers(kThreads);
  for (auto& p : peers) p = open_peer();

  std::atomic<int> ok{0}, used_up{0}, other{0};
  run_together(kThreads, [&](int i) {
    Store& s = peers[i] ? *peers[i] : *store_;
    for (int r = 0; r < kRounds; ++r) {
      try {
        TokenUse u =
            s.use_token("aaaaaa", make_cert(std::to_string(i) + "-" + std::to_string(r)), kNow);
        if (u == TokenUse::kOk) {
          ++ok;
        } else if (u == TokenUse::kUsedUp) {
          ++used_up;
        } else {
          ++other;
        }
      } catch (const std::exception& e) {
        ++other;
        ADD_FAILURE() << e.what();
      }
    }
  });
  EXPECT_EQ(ok, 13);
  EXPECT_EQ(used_up, kThreads * kRounds - 13);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(store_->list_certificates().size(), 13u);
  EXPECT_EQ(store_->find_token("aaaaaa")->uses, 13);
}

// Only the newest certificate of an identity renews: newest by not_before, then by the
// order of insertion (renewals within one second share a not_before).
TEST_P(StoreTest, NewestOfIdentity) {
  EXPECT_FALSE(store_->newest_of_identity("kubelet|n1"));
  CertRecord a = make_cert("0a", kNow), b = make_cert("0b", kNow + 10),
             c = make_cert("01", kNow + 10);
  CertRecord other = make_cert("ff", kNow + 100);
  other.identity = "kubelet|n2";
  ASSERT_TRUE(store_->insert_certificate(b));
  ASSERT_TRUE(store_->insert_certificate(a));  // older, stored later: still older
  EXPECT_EQ(store_->newest_of_identity("kubelet|n1")->serial, "0b");
  ASSERT_TRUE(store_->insert_certificate(c));  // same not_before as 0b, stored later
  ASSERT_TRUE(store_->insert_certificate(other));
  EXPECT_EQ(store_->newest_of_identity("kubelet|n1")->serial, "01");
  EXPECT_EQ(store_->newest_of_identity("kubelet|n2")->serial, "ff");
  // A certificate issued through a token counts as well.
  ASSERT_TRUE(store_->insert_token(make_token("tok001")));
  CertRecord d = make_cert("02", kNow + 20);
  ASSERT_EQ(store_->use_token("tok001", d, kNow), TokenUse::kOk);
  EXPECT_EQ(store_->newest_of_identity("kubelet|n1")->serial, "02");
}

TEST_P(StoreTest, CertificatesByKeyAndNode) {
  CertRecord a = make_cert("0a"), b = make_cert("0b", kNow + 1), c = make_cert("0c");
  b.key_hash = a.key_hash;
  c.node = "n2";
  for (const auto& r : {a, b, c}) ASSERT_TRUE(store_->insert_certificate(r));
  auto same_key = store_->certificates_with_key(a.key_hash);
  ASSERT_EQ(same_key.size(), 2u);
  EXPECT_EQ(same_key[0].serial, "0a");
  EXPECT_EQ(same_key[1].serial, "0b");
  EXPECT_TRUE(store_->certificates_with_key("nothing").empty());
  auto n1 = store_->certificates_of_node("n1");
  ASSERT_EQ(n1.size(), 2u);
  EXPECT_EQ(n1[0].serial, "0a");
  auto n2 = store_->certificates_of_node("n2");
  ASSERT_EQ(n2.size(), 1u);
  expect_same(n2[0], c);
}

// A key is barred once any of its certificates is revoked, however it was stored.
TEST_P(StoreTest, KeyRevoked) {
  CertRecord a = make_cert("0a"), b = make_cert("0b"), c = make_cert("0c");
  b.key_hash = a.key_hash;
  for (const auto& r : {a, b, c}) ASSERT_TRUE(store_->insert_certificate(r));
  EXPECT_FALSE(store_->key_revoked(a.key_hash));
  EXPECT_FALSE(store_->key_revoked("nothing"));
  ASSERT_TRUE(store_->revoke_certificate("0b", 1, kNow));
  EXPECT_TRUE(store_->key_revoked(a.key_hash));
  EXPECT_FALSE(store_->key_revoked(c.key_hash));
  // Stored already revoked (store migrate copies such records).
  CertRecord d = make_cert("0d");
  d.status = "revoked";
  ASSERT_EQ(store_->record_certificates({d}), 1u);
  EXPECT_TRUE(store_->key_revoked(d.key_hash));
  // Revoked before its key was known, the key filled in later.
  CertRecord e = make_cert("0e");
  e.key_hash = "";
  ASSERT_TRUE(store_->insert_certificate(e));
  ASSERT_TRUE(store_->revoke_certificate("0e", 1, kNow));
  ASSERT_TRUE(store_->fill_certificate_identity("0e", "k-late", "n1", "kubelet|n1"));
  EXPECT_TRUE(store_->key_revoked("k-late"));
  if (auto peer = open_peer()) {
    EXPECT_TRUE(peer->key_revoked(a.key_hash));
    EXPECT_FALSE(peer->key_revoked(c.key_hash));
  }
}

// The certificate a requester already got for a key: good, unexpired, the latest notAfter.
TEST_P(StoreTest, IssuedForKey) {
  CertRecord a = make_cert("0a", kNow), b = make_cert("0b", kNow + 100),
             c = make_cert("0c", kNow + 50), other = make_cert("0d", kNow + 200);
  b.key_hash = c.key_hash = other.key_hash = a.key_hash;
  other.requester = "renew:0a";
  for (const auto& r : {a, b, c, other}) ASSERT_TRUE(store_->insert_certificate(r));
  auto got = store_->issued_for_key(a.key_hash, a.requester, kNow);
  ASSERT_TRUE(got.has_value());
  expect_same(*got, b);
  EXPECT_EQ(store_->issued_for_key(a.key_hash, "renew:0a", kNow)->serial, "0d");
  EXPECT_FALSE(store_->issued_for_key(a.key_hash, "token:zzz999", kNow));
  EXPECT_FALSE(store_->issued_for_key("nothing", a.requester, kNow));
  // A revoked one is passed over, expired ones do not count.
  ASSERT_TRUE(store_->revoke_certificate("0b", 1, kNow));
  EXPECT_EQ(store_->issued_for_key(a.key_hash, a.requester, kNow)->serial, "0c");
  EXPECT_EQ(store_->issued_for_key(a.key_hash, a.requester, c.not_after - 1)->serial, "0c");
  EXPECT_FALSE(store_->issued_for_key(a.key_hash, a.requester, c.not_after));
  // Through a token use as well.
  ASSERT_TRUE(store_->insert_token(make_token("tok001")));
  CertRecord t = make_cert("0e", kNow + 300);
  t.key_hash = "k-token";
  t.requester = "token:tok001";
  ASSERT_EQ(store_->use_token("tok001", t, kNow), TokenUse::kOk);
  EXPECT_EQ(store_->issued_for_key("k-token", "token:tok001", kNow)->serial, "0e");
  if (auto peer = open_peer()) {
    EXPECT_EQ(peer->issued_for_key("k-token", "token:tok001", kNow)->serial, "0e");
  }
}

// One key reused for thousands of certificates (a benchmark's one CSR, a node that keeps
// its key): both key lookups stay a probe each. Reading every record of the key, as the
// issuer once did, takes seconds here (about 2,000 x 2,000 rows); indexed, milliseconds.
// etcd makes each insert durable on its own and answers slowly on a loaded machine: 100
// records there, and 10 lookups must take less time than one read of the key's records.
TEST_P(StoreTest, KeyLookupsStayCheapWithThousandsOfCertificatesPerKey) {
  const bool etcd = GetParam() == Backend::kEtcd;
  const int n = etcd ? 100 : 2000, lookups = etcd ? 10 : 2000;
  std::vector<CertRecord> batch;
  for (int i = 0; i < n; ++i) {
    CertRecord c = make_cert("1" + std::to_string(100000 + i), kNow + i);
    c.key_hash = "k-shared";
    batch.push_back(c);
  }
  ASSERT_EQ(store_->record_certificates(batch), static_cast<size_t>(n));
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (int i = 0; i < lookups; ++i) {
    ASSERT_FALSE(store_->key_revoked("k-shared"));
    ASSERT_EQ(store_->issued_for_key("k-shared", "token:abc123", kNow)->serial,
              batch.back().serial);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("%d lookups of each kind over %d certificates of one key: %.3f s\n", lookups, n,
              seconds);
  if (etcd) {
    const auto scan_start = Clock::now();
    ASSERT_EQ(store_->certificates_with_key("k-shared").size(), static_cast<size_t>(n));
    const double scan = std::chrono::duration<double>(Clock::now() - scan_start).count();
    std::printf("one read of the key's %d records: %.3f s\n", n, scan);
    EXPECT_LT(seconds, scan);
  } else {
    EXPECT_LT(seconds, 2.0);  // generous (sanitizers, a loaded machine): the scan is 20x over
  }
  ASSERT_TRUE(store_->revoke_certificate(batch[n / 2].serial, 1, kNow));
  EXPECT_TRUE(store_->key_revoked("k-shared"));
}

TEST_P(StoreTest, FillCertificateIdentityOnlyWhenMissing) {
  CertRecord old = make_cert("0a");
  old.key_hash = old.node = old.identity = "";
  ASSERT_TRUE(store_->insert_certificate(old));
  ASSERT_TRUE(store_->insert_certificate(make_cert("0b")));
  EXPECT_TRUE(store_->fill_certificate_identity("0a", "k", "n9", "id"));
  const auto a = store_->find_certificate("0a");
  EXPECT_EQ(a->key_hash, "k");
  EXPECT_EQ(a->node, "n9");
  EXPECT_EQ(a->identity, "id");
  EXPECT_FALSE(store_->fill_certificate_identity("0a", "x", "x", "x"));
  EXPECT_FALSE(store_->fill_certificate_identity("0b", "x", "x", "x"));
  EXPECT_FALSE(store_->fill_certificate_identity("99", "x", "x", "x"));
  EXPECT_EQ(store_->find_certificate("0b")->key_hash, "k-0b");
}

// The revocation count moves once per new revocation, never for a repeat or an unknown serial.
TEST_P(StoreTest, RevocationCount) {
  ASSERT_TRUE(store_->insert_certificate(make_cert("0a")));
  ASSERT_TRUE(store_->insert_certificate(make_cert("0b")));
  const int64_t start = store_->revocation_count();
  EXPECT_EQ(start, 0);
  ASSERT_TRUE(store_->revoke_certificate("0a", 1, kNow));
  EXPECT_EQ(store_->revocation_count(), 1);
  ASSERT_TRUE(store_->revoke_certificate("0a", 4, kNow + 50));
  EXPECT_FALSE(store_->revoke_certificate("99", 1, kNow));
  EXPECT_EQ(store_->revocation_count(), 1);
  EXPECT_EQ(store_->find_certificate("0a")->revoked_at, kNow);
  ASSERT_TRUE(store_->revoke_certificate("0b", 0, kNow + 60));
  EXPECT_EQ(store_->revocation_count(), 2);
  if (auto peer = open_peer()) {
    EXPECT_EQ(peer->revocation_count(), 2);
  }
}

// Every CRL takes a new number, strictly increasing, and reads the revoked records only.
TEST_P(StoreTest, NextCrlNumbersAndRevoked) {
  ASSERT_TRUE(store_->insert_certificate(make_cert("0a")));
  ASSERT_TRUE(store_->insert_certificate(make_cert("0b")));
  CrlBasis first = store_->next_crl();
  EXPECT_EQ(first.number, 1);
  EXPECT_TRUE(first.revoked.empty());
  ASSERT_TRUE(store_->revoke_certificate("0b", 1, kNow));
  CrlBasis second = store_->next_crl();
  EXPECT_EQ(second.number, 2);
  EXPECT_EQ(second.revocations, 1);
  ASSERT_EQ(second.revoked.size(), 1u);
  EXPECT_EQ(second.revoked[0].serial, "0b");
  EXPECT_EQ(second.revoked[0].revoked_at, kNow);
  if (auto peer = open_peer()) {
    EXPECT_EQ(peer->next_crl().number, 3);
  }
}

// The published CRL moves only forward: a lower or equal number changes nothing, and every
// field (the DER bytes included, zeros too) comes back as it went in.
TEST_P(StoreTest, PublishedCrlOnlyMovesForward) {
  EXPECT_EQ(store_->published_crl_number(), 0);
  EXPECT_FALSE(store_->published_crl());
  PublishedCrl c;
  c.number = 5;
  c.revocations = 2;
  c.this_update = kNow;
  c.next_update = kNow + 86400;
  c.der = std::string("\x30\x00\xff\x01", 4);
  EXPECT_TRUE(store_->publish_crl(c));
  PublishedCrl older = c;
  older.number = 4;
  older.der = "older";
  EXPECT_FALSE(store_->publish_crl(older));
  PublishedCrl same = c;
  same.der = "same";
  EXPECT_FALSE(store_->publish_crl(same));
  EXPECT_EQ(store_->published_crl_number(), 5);
  auto got = store_->published_crl();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->number, 5);
  EXPECT_EQ(got->revocations, 2);
  EXPECT_EQ(got->this_update, kNow);
  EXPECT_EQ(got->next_update, kNow + 86400);
  EXPECT_EQ(got->der, c.der);
  if (auto peer = open_peer()) {
    PublishedCrl newer = c;
    newer.number = 6;
    newer.der = "newer";
    EXPECT_TRUE(peer->publish_crl(newer));
    EXPECT_EQ(store_->published_crl_number(), 6);
    EXPECT_EQ(store_->published_crl()->der, "newer");
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values(Backend::kMemory, Backend::kSqliteMemory,
                                           Backend::kSqliteFile, Backend::kEtcd),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           switch (info.param) {
                             case Backend::kMemory:
                               return "Memory";
                             case Backend::kSqliteMemory:
                               return "SqliteMemory";
                             case Backend::kSqliteFile:
                               return "SqliteFile";
                             case Backend::kEtcd:
                               return "Etcd";
                           }
                           return "Unknown";
                         });

// What only a database file has: a schema on disk, sharing, locking, permissions.
class SqliteFileTest : public ::testing::Test {
 protected:
  fs::path db() const { return dir_.path() / "store.db"; }
  std::string url() const { return "sqlite:" + db().string(); }

  TempDir dir_;
};

TEST_F(SqliteFileTest, SchemaVersionAndWalSetOnOpen) {
  open_store(url());
  EXPECT_EQ(raw_pragma(db(), "user_version"), kSchemaVersion);
  EXPECT_EQ(raw_pragma(db(), "application_id"), 0x6b756263);
  // journal_mode is stored in the file once it is WAL; "wal" read back as text.
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db().c_str(), &h), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
  sqlite3_close(h);
}

TEST_F(SqliteFileTest, ConcurrentFirstOpensMigrateOnce) {
  // serve and a CLI command started together on a new file: both must come up.
  constexpr int kThreads = 6;
  std::vector<std::unique_ptr<Store>> stores(kThreads);
  std::atomic<int> errors{0};
  run_together(kThreads, [&](int i) {
    try {
      stores[i] = open_store(url());
      if (!stores[i]->insert_token(make_token("tok" + std::to_string(100 + i)))) ++errors;
    } catch (const std::exception& e) {
      ++errors;
      ADD_FAILURE() << e.what();
    }
  });
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(raw_pragma(db(), "user_version"), kSchemaVersion);
  ASSERT_TRUE(stores[0]);
  EXPECT_EQ(stores[0]->list_tokens().size(), static_cast<size_t>(kThreads));
}

TEST_F(SqliteFileTest, ReopenKeepsData) {
  {
    auto store = open_store(url());
    ASSERT_TRUE(store->insert_certificate(make_cert("0a")));
    ASSERT_TRUE(store->insert_token(make_token("aaaaaa", 2)));
    ASSERT_EQ(store->use_token("aaaaaa", make_cert("0b"), kNow), TokenUse::kOk);
    ASSERT_TRUE(store->revoke_certificate("0a", 5, kNow + 1));
  }
  auto store = open_store(url());
  EXPECT_EQ(raw_pragma(db(), "user_version"), kSchemaVersion);
  EXPECT_EQ(serials(*store), (std::vector<std::string>{"0a", "0b"}));
  EXPECT_EQ(store->find_certificate("0a")->status, "revoked");
  EXPECT_EQ(store->find_certificate("0a")->reason, 5);
  EXPECT_EQ(store->find_token("aaaaaa")->uses, 1);
  // The data still obeys the rules after a reopen.
  EXPECT_FALSE(store->insert_certificate(make_cert("0b")));
  EXPECT_EQ(store->use_token("aaaaaa", make_cert("0c"), kNow), TokenUse::kOk);
  EXPECT_EQ(store->use_token("aaaaaa", make_cert("0d"), kNow), TokenUse::kUsedUp);
}

TEST_F(SqliteFileTest, NewerSchemaRefused) {
  {
    auto store = open_store(url());
    ASSERT_TRUE(store->insert_certificate(make_cert("0a")));
  }
  raw_exec(db(), "PRAGMA user_version = 999");
  try {
    open_store(url());
    FAIL() << "a database from a newer kubeca was opened";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(db().string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("999"), std::string::npos) << msg;
    EXPECT_NE(msg.find("newer kubeca"), std::string::npos) << msg;
  }
  // Refusing must not have touched it.
  EXPECT_EQ(raw_pragma(db(), "user_version"), 999);
}

// The schema kubeca shipped as version 1, before the store knew its CA.
constexpr const char* kSchemaV1 =
    "CREATE TABLE certificates (serial TEXT PRIMARY KEY NOT NULL, profile TEXT NOT NULL,"
    " subject TEXT NOT NULL, sans TEXT NOT NULL, not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL, status TEXT NOT NULL, requester TEXT NOT NULL,"
    " pem TEXT NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0,"
    " reason INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX certificates_by_not_before ON certificates (not_before, serial);"
    "CREATE TABLE tokens (id TEXT PRIMARY KEY NOT NULL, secret_hash TEXT NOT NULL,"
    " node TEXT NOT NULL, ips TEXT NOT NULL, profile TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    " uses_allowed INTEGER NOT NULL, uses INTEGER NOT NULL DEFAULT 0,"
    " revoked INTEGER NOT NULL DEFAULT 0);"
    "PRAGMA user_version = 1; PRAGMA application_id = 1802855011;";

TEST_F(SqliteFileTest, VersionOneStoreMigratesAndGetsBound) {
  raw_exec(db(), kSchemaV1);
  raw_exec(db(),
           "INSERT INTO certificates VALUES ('0a', 'kubelet', 'CN=n1', '[\"DNS:n1\"]', 1, 2,"
           " 'revoked', 'cli', 'PEM', 3, 4);"
           "INSERT INTO tokens VALUES ('abcdef', 'h', 'n1', '[]', 'kubelet', 1, 2, 1, 0, 0);");
  {
    auto store = open_store(url(), OpenMode::kExisting);
    EXPECT_EQ(raw_pragma(db(), "user_version"), kSchemaVersion);
    // What version 1 held is all there.
    const auto c = store->find_certificate("0a");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->sans, std::vector<std::string>{"DNS:n1"});
    EXPECT_EQ(c->status, "revoked");
    EXPECT_EQ(c->reason, 4);
    EXPECT_EQ(store->find_token("abcdef")->node, "n1");
    // No CA yet: the first one to use it binds it.
    store->bind_ca(kPinA);
  }
  auto store = open_store(url(), OpenMode::kExisting);
  EXPECT_THROW(store->bind_ca(kPinB), InputError);
  store->bind_ca(kPinA);
}

TEST_F(SqliteFileTest, ExistingModeNeverCreates) {
  // A mistyped path: nothing made, not even its folder.
  const fs::path typo = dir_.path() / "typo" / "kubeca.db";
  for (const fs::path& p : {db(), typo}) {
    try {
      open_store("sqlite:" + p.string(), OpenMode::kExisting);
      FAIL() << "opened an absent store " << p;
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()),
                "no store at " + p.string() + " (kubeca serve or kubeca init creates it)");
    }
    EXPECT_FALSE(fs::exists(p));
  }
  EXPECT_FALSE(fs::exists(typo.parent_path()));
  // An empty file is no store either, and stays empty.
  std::ofstream(db()).close();
  EXPECT_THROW(open_store(url(), OpenMode::kExisting), InputError);
  EXPECT_EQ(fs::file_size(db()), 0u);
  // Once made, it opens.
  fs::remove(db());
  open_store(url(), OpenMode::kCreate)->insert_token(make_token("aaaaaa"));
  EXPECT_EQ(open_store(url(), OpenMode::kExisting)->list_tokens().size(), 1u);
}

TEST_F(SqliteFileTest, OtherProgramsDatabaseRefused) {
  raw_exec(db(), "PRAGMA application_id = 42; CREATE TABLE t (x INTEGER);");
  EXPECT_THROW(open_store(url()), std::runtime_error);
  EXPECT_EQ(raw_pragma(db(), "user_version"), 0);
}

TEST_F(SqliteFileTest, NotADatabaseRefused) {
  std::ofstream(db()) << std::string(4096, 'x');
  try {
    open_store(url());
    FAIL() << "a file of junk was opened as a store";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(url()), std::string::npos) << e.what();
  }
}

TEST_F(SqliteFileTest, CreatesPrivateFolderAndFile) {
  const fs::path nested = dir_.path() / "a" / "b";
  auto store = open_store("sqlite:" + (nested / "store.db").string());
  ASSERT_TRUE(store->insert_certificate(make_cert("0a")));
  struct stat st {};
  ASSERT_EQ(::stat(nested.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((dir_.path() / "a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((nested / "store.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((nested / "store.db-wal").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SqliteFileTest, ExistingFolderModeLeftAlone) {
  const fs::path shared = dir_.path() / "pki";
  fs::create_directory(shared);
  fs::permissions(shared, fs::perms(0755));
  open_store("sqlite:" + (shared / "store.db").string());
  struct stat st {};
  ASSERT_EQ(::stat(shared.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
}

TEST_F(SqliteFileTest, WaitsForAnotherWriter) {
  auto store = open_store(url());
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db().c_str(), &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  // Without a busy timeout the insert would fail at once with "database is locked".
  std::thread holder([h] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    sqlite3_exec(h, "COMMIT", nullptr, nullptr, nullptr);
  });
  try {
    EXPECT_TRUE(store->insert_certificate(make_cert("0a")));
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
  holder.join();
  sqlite3_close(h);
}

TEST_F(SqliteFileTest, ErrorNamesStoreAndOperation) {
  auto store = open_store(url());
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db().c_str(), &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  // Held past the 5 s busy timeout.
  try {
    store->insert_certificate(make_cert("0a"));
    ADD_FAILURE() << "insert went through a held write lock";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(url()), std::string::npos) << msg;
    EXPECT_NE(msg.find("inserting certificate 0a"), std::string::npos) << msg;
    EXPECT_NE(msg.find("database is locked"), std::string::npos) << msg;
  }
  sqlite3_exec(h, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(h);
  // The store recovers once the lock is gone.
  EXPECT_TRUE(store->insert_certificate(make_cert("0a")));
  EXPECT_TRUE(store->healthy());
}

TEST_F(SqliteFileTest, HealthyIsFalseOnAStoreWithTrashedPages) {
  // A readiness probe must see what a query of the tables would: reading the schema alone
  // said "healthy" on a file whose certificate pages were overwritten.
  {
    auto store = open_store(url());
    store->insert_token(make_token("tok001"));
    for (int i = 0; i < 300; ++i) {
      CertRecord c = make_cert("c" + std::to_string(1000 + i), kNow + i);
      c.pem += std::string(600, 'x');  // about a real certificate's size
      ASSERT_TRUE(store->insert_certificate(c));
    }
    EXPECT_TRUE(store->healthy());
  }
  const auto size = fs::file_size(db());
  ASSERT_GT(size, 64u * 4096);
  {
    // The middle third of the pages, overwritten as a failing disk or a stray dd would.
    std::fstream f(db(), std::ios::in | std::ios::out | std::ios::binary);
    const auto pages = size / 4096;
    f.seekp(static_cast<std::streamoff>(pages / 3 * 4096));
    std::string junk(pages / 3 * 4096, '\0');
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 2654435761u) >> 13);
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto store = open_store(url());  // the header page is intact: it opens
  EXPECT_FALSE(store->healthy());
  EXPECT_FALSE(store->healthy()) << "a later probe's slice must not clear it";
  EXPECT_THROW(store->list_certificates(), std::runtime_error);
}

TEST_F(SqliteFileTest, HealthReadsABoundedSliceAndWrapsAround) {
  auto store = open_store(url());
  for (int i = 0; i < 1200; ++i)
    ASSERT_TRUE(store->insert_certificate(make_cert(std::to_string(i))));
  for (int probe = 0; probe < 8; ++probe) EXPECT_TRUE(store->healthy()) << probe;
}

TEST_F(SqliteFileTest, TwoStoresSharedByThreads) {
  // Like `kubeca serve` and a CLI command at once: two Stores, several threads each.
  auto serve = open_store(url());
  auto cli = open_store(url());
  constexpr int kThreads = 6;
  constexpr int kOps = 40;
  std::atomic<int> errors{0};
  run_together(kThreads, [&](int i) {
    Store& s = i % 2 == 0 ? *serve : *cli;
    try {
      const std::string tid = "t" + std::to_string(i) + "xxxx";
      if (!s.insert_token(make_token(tid, kOps))) ++errors;
      for (int n = 0; n < kOps; ++n) {
        const std::string serial = std::to_string(i) + "-" + std::to_string(n);
        if (n % 2 == 0) {
          if (s.use_token(tid, make_cert(serial), kNow) != TokenUse::kOk) ++errors;
        } else {
          if (!s.insert_certificate(make_cert(serial))) ++errors;
          if (!s.revoke_certificate(serial, 1, kNow)) ++errors;
        }
        if (!s.find_certificate(serial)) ++errors;
        s.list_tokens();
        if (n % 10 == 0) s.list_certificates();
      }
    } catch (const std::exception& e) {
      ++errors;
      ADD_FAILURE() << e.what();
    }
  });
  EXPECT_EQ(errors, 0);
  for (Store* s : {serve.get(), cli.get()}) {
    std::vector<CertRecord> certs = s->list_certificates();
    EXPECT_EQ(certs.size(), static_cast<size_t>(kThreads * kOps));
    int revoked = 0;
    for (const CertRecord& c : certs) revoked += c.status == "revoked";
    EXPECT_EQ(revoked, kThreads * kOps / 2);
    for (const TokenRecord& t : s->list_tokens()) EXPECT_EQ(t.uses, kOps / 2) << t.id;
  }
}

// Group commit: writes from many threads share transactions; each write still returns only
// after its own commit, a failing write (a duplicate serial) fails alone, and every other
// write of its batch lands.
TEST_F(SqliteFileTest, ConcurrentWritesShareCommitsAndFailAlone) {
  auto store = open_store(url());
  ASSERT_TRUE(store->insert_certificate(make_cert("dup")));
  constexpr int kThreads = 16, kEach = 40;
  for (int t = 0; t < kThreads; ++t)
    ASSERT_TRUE(store->insert_token(make_token("tok" + std::to_string(100 + t), kEach)));
  std::atomic<int> ok{0}, dup{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string serial = std::to_string(t) + "-" + std::to_string(i);
        if (store->use_token("tok" + std::to_string(100 + t), make_cert(serial), kNow) ==
            TokenUse::kOk)
          ++ok;
        if (i % 10 == 0 && !store->insert_certificate(make_cert("dup"))) ++dup;
      }
    });
  }
  for (auto& th : threads) th.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(ok, kThreads * kEach);
  EXPECT_EQ(dup, kThreads * kEach / 10);
  // What another connection reads is what was acknowledged.
  auto peer = open_store(url());
  EXPECT_EQ(peer->list_certificates().size(), static_cast<size_t>(kThreads * kEach + 1));
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(peer->find_token("tok" + std::to_string(100 + t))->uses, kEach);
  std::cout << "group commit: " << kThreads * kEach << " token uses from " << kThreads
            << " threads in " << secs << " s (" << (kThreads * kEach) / secs << "/s)\n";
}

// A restart never hands out a CRL Number again: the counter is in the file.
TEST_F(SqliteFileTest, CrlNumberSurvivesReopen) {
  {
    auto store = open_store(url());
    EXPECT_EQ(store->next_crl().number, 1);
    EXPECT_EQ(store->next_crl().number, 2);
  }
  EXPECT_EQ(open_store(url())->next_crl().number, 3);
}

// A version-1 database moves to the new schema with its rows, its revocations counted.
TEST_F(SqliteFileTest, MigratesVersionOne) {
  raw_exec(db(),
           "CREATE TABLE certificates (serial TEXT PRIMARY KEY NOT NULL, profile TEXT NOT NULL,"
           " subject TEXT NOT NULL, sans TEXT NOT NULL, not_before INTEGER NOT NULL,"
           " not_after INTEGER NOT NULL, status TEXT NOT NULL, requester TEXT NOT NULL,"
           " pem TEXT NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0,"
           " reason INTEGER NOT NULL DEFAULT 0);"
           "CREATE INDEX certificates_by_not_before ON certificates (not_before, serial);"
           "CREATE TABLE tokens (id TEXT PRIMARY KEY NOT NULL, secret_hash TEXT NOT NULL,"
           " node TEXT NOT NULL, ips TEXT NOT NULL, profile TEXT NOT NULL,"
           " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
           " uses_allowed INTEGER NOT NULL, uses INTEGER NOT NULL DEFAULT 0,"
           " revoked INTEGER NOT NULL DEFAULT 0);"
           "INSERT INTO certificates VALUES ('0a', 'kubelet', 'CN=a', '[]', 1, 2, 'revoked',"
           " 'cli', 'pem', 5, 1);"
           "INSERT INTO certificates VALUES ('0b', 'kubelet', 'CN=b', '[]', 1, 2, 'good',"
           " 'cli', 'pem', 0, 0);"
           "PRAGMA user_version = 1; PRAGMA application_id = 1802855011;");
  auto store = open_store(url());
  EXPECT_EQ(raw_pragma(db(), "user_version"), kSchemaVersion);
  EXPECT_EQ(store->revocation_count(), 1);
  const auto a = store->find_certificate("0a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, "revoked");
  EXPECT_EQ(a->key_hash, "");
  EXPECT_EQ(store->next_crl().revoked.size(), 1u);
}

TEST(TokenUseTest, ToStringNamesEveryOutcome) {
  EXPECT_STREQ(to_string(TokenUse::kOk), "ok");
  EXPECT_STREQ(to_string(TokenUse::kUnknown), "unknown");
  EXPECT_STREQ(to_string(TokenUse::kRevoked), "revoked");
  EXPECT_STREQ(to_string(TokenUse::kExpired), "expired");
  EXPECT_STREQ(to_string(TokenUse::kUsedUp), "used_up");
  EXPECT_STREQ(to_string(TokenUse::kDuplicateSerial), "duplicate_serial");
}

TEST(OpenStoreTest, RefusesUnknownUrls) {
  for (const char* url :
       {"", "sqlite:", "memory", "/tmp/x.db", "etcd:", "etcd://", "etcd://127.0.0.1:2379",
        "etcd+http://127.0.0.1", "etcd+http://127.0.0.1:2379?nope=1", "etcd+http://h:1?prefix=x",
        "etcd+http://h:1?lease=1"}) {
    SCOPED_TRACE(url);
    EXPECT_THROW(open_store(url), std::runtime_error);
  }
}

// Replicas on one etcd: one leads a task at a time; a dead leader's task moves on within
// the lease's TTL.
TEST(EtcdLeaseTest, OneLeaderThenTakeoverAfterDeath) {
  auto& etcd = test::LocalEtcd::get();
  if (!etcd.available()) GTEST_SKIP() << "etcd is not installed";
  const std::string url = "etcd+http://" + etcd.endpoint() + "?prefix=/lease-test/&lease=2";
  auto a = open_store(url);
  auto b = open_store(url);
  EXPECT_TRUE(a->lead("crl"));
  EXPECT_FALSE(b->lead("crl"));
  EXPECT_TRUE(b->lead("metrics"));  // tasks are separate
  for (int i = 0; i < 4; ++i) {     // the leader keeps it while it keeps calling
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    EXPECT_TRUE(a->lead("crl"));
    EXPECT_FALSE(b->lead("crl"));
  }
  a.reset();  // dies without a word
  const auto start = std::chrono::steady_clock::now();
  while (!b->lead("crl") && std::chrono::steady_clock::now() - start < std::chrono::seconds(6)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(b->lead("crl"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

// etcd's store sends a transaction again to the next member when the first member's
// answer is lost (it died or timed out after committing). Finding its very record there, it
// counts the write done once: the token's use is not spent twice, and the caller does not
// issue a second certificate under a new serial. A different record under the serial, or a
// different token under the id, is still refused.
TEST(EtcdStoreTest, AWriteSentAgainAfterALostAnswerCountsOnce) {
  auto& etcd = test::LocalEtcd::get();
  if (!etcd.available()) GTEST_SKIP() << "etcd is not installed";
  auto store = open_store("etcd+http://" + etcd.endpoint() + "?prefix=/resend-test/");
  ASSERT_TRUE(store->insert_token(make_token("aaaaaa", 3)));
  EXPECT_TRUE(store->insert_token(make_token("aaaaaa", 3)));  // the same record again
  TokenRecord other = make_token("aaaaaa", 9);
  EXPECT_FALSE(store->insert_token(other));

  EXPECT_EQ(store->use_token("aaaaaa", make_cert("01"), kNow), TokenUse::kOk);
  EXPECT_EQ(store->use_token("aaaaaa", make_cert("01"), kNow), TokenUse::kOk);
  EXPECT_EQ(store->find_token("aaaaaa")->uses, 1);
  EXPECT_EQ(serials(*store), (std::vector<std::string>{"01"}));
  EXPECT_EQ(store->use_token("aaaaaa", make_cert("01", kNow + 5), kNow),
            TokenUse::kDuplicateSerial);
  EXPECT_EQ(store->find_token("aaaaaa")->uses, 1);

  EXPECT_TRUE(store->insert_certificate(make_cert("02")));
  EXPECT_TRUE(store->insert_certificate(make_cert("02")));
  EXPECT_FALSE(store->insert_certificate(make_cert("02", kNow + 5)));
  // The offline commands count as new only what was not there.
  EXPECT_EQ(store->record_certificates({make_cert("02"), make_cert("03")}), 1u);
  EXPECT_EQ(serials(*store), (std::vector<std::string>{"01", "02", "03"}));
}

TEST(OpenStoreTest, SingleProcessStoresAlwaysLead) {
  EXPECT_TRUE(open_store("memory:")->lead("crl"));
}

TEST(OpenStoreTest, InMemoryStoresAreSeparate) {
  for (const char* url : {"memory:", "sqlite::memory:"}) {
    SCOPED_TRACE(url);
    auto a = open_store(url);
    auto b = open_store(url);
    ASSERT_TRUE(a->insert_certificate(make_cert("0a")));
    EXPECT_FALSE(b->find_certificate("0a").has_value());
  }
}

}  // namespace
}  // namespace kubeca

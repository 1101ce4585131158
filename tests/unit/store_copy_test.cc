#include "kubeca/store_copy.h"

#include <gtest/gtest.h>

#include "kubeca/config.h"
#include "local_etcd.h"

namespace kubeca {
namespace {

CertRecord cert(const std::string& serial, const std::string& status = "good") {
  CertRecord c;
  c.serial = serial;
  c.profile = "kubelet";
  c.subject = "CN=system:node:n1, O=system:nodes";
  c.sans = {"DNS:n1", "IP:10.0.0.1"};
  c.not_before = 1'800'000'000;
  c.not_after = c.not_before + 3600;
  c.status = status;
  c.requester = "token:abcdef";
  c.pem = "PEM " + serial;
  if (status == "revoked") {
    c.revoked_at = c.not_before + 60;
    c.reason = 1;
  }
  return c;
}

TokenRecord token(const std::string& id, int uses, bool revoked) {
  TokenRecord t;
  t.id = id;
  t.secret_hash = std::string(64, 'b');
  t.node = "n1";
  t.ips = {"10.0.0.1"};
  t.created_at = 1'800'000'000;
  t.expires_at = t.created_at + 3600;
  t.uses_allowed = 3;
  t.uses = uses;
  t.revoked = revoked;
  return t;
}

class StoreCopyTest : public ::testing::Test {
 protected:
  std::filesystem::path dir_ = test::make_temp_dir("kubeca-copy");
  ~StoreCopyTest() override { std::filesystem::remove_all(dir_); }
  std::string sqlite(const std::string& name) { return "sqlite:" + (dir_ / name).string(); }
};

void fill(Store& s) {
  ASSERT_TRUE(s.insert_certificate(cert("0a")));
  ASSERT_TRUE(s.insert_certificate(cert("0b", "revoked")));
  ASSERT_TRUE(s.insert_token(token("aaaaaa", 2, false)));
  ASSERT_TRUE(s.insert_token(token("bbbbbb", 0, true)));
}

TEST_F(StoreCopyTest, SqliteToEtcdAndBackKeepsEveryRecord) {
  auto& etcd = test::LocalEtcd::get();
  if (!etcd.available()) GTEST_SKIP() << "etcd is not installed";
  auto src = open_store(sqlite("a.db"));
  fill(*src);
  auto mid =
      open_store("etcd+http://" + etcd.endpoint() + "?prefix=/" + dir_.filename().string() + "/");
  size_t last = 0;
  const auto n = copy_store(*src, *mid, [&](size_t done, size_t total) {
    EXPECT_EQ(done, last + 1);
    EXPECT_EQ(total, 4u);
    last = done;
  });
  EXPECT_EQ(n.certificates, 2u);
  EXPECT_EQ(n.revoked, 1u);
  EXPECT_EQ(n.tokens, 2u);
  auto back = open_store(sqlite("b.db"));
  copy_store(*mid, *back);
  const auto c = back->find_certificate("0b");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, "revoked");
  EXPECT_EQ(c->revoked_at, 1'800'000'060);
  EXPECT_EQ(c->reason, 1);
  const auto t = back->find_token("aaaaaa");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->uses, 2);
  EXPECT_TRUE(back->find_token("bbbbbb")->revoked);
  EXPECT_EQ(back->list_certificates().size(), 2u);
}

TEST_F(StoreCopyTest, NonEmptyTargetRefusedAndUntouched) {
  auto src = open_store("memory:");
  fill(*src);
  auto dst = open_store(sqlite("c.db"));
  ASSERT_TRUE(dst->insert_certificate(cert("ff")));
  EXPECT_THROW(copy_store(*src, *dst), InputError);
  EXPECT_EQ(dst->list_certificates().size(), 1u);
  EXPECT_TRUE(dst->list_tokens().empty());
}

}  // namespace
}  // namespace kubeca

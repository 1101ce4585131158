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
  for (int i = 0; i < 5; ++i) s.next_crl();
  PublishedCrl crl;
  crl.number = 5;
  crl.revocations = 1;
  crl.this_update = 1'800'000'100;
  crl.next_update = crl.this_update + 86400;
  crl.der = std::string("\x30\x03\x02\x01\x05", 5);
  ASSERT_TRUE(s.publish_crl(crl));
}

// The CRL Number only goes up across a migration, and the CRL served moves with the records.
void expect_crl_moved(Store& s) {
  const auto crl = s.published_crl();
  ASSERT_TRUE(crl);
  EXPECT_EQ(crl->number, 5);
  EXPECT_EQ(crl->der, std::string("\x30\x03\x02\x01\x05", 5));
  EXPECT_GT(s.next_crl().number, 5);
}

TEST_F(StoreCopyTest, TheCrlNumberOnlyGoesUpAcrossMigrations) {
  auto src = open_store("memory:");
  fill(*src);
  auto dst = open_store(sqlite("c.db"));
  EXPECT_GE(copy_store(*src, *dst).crl_number, 5);
  expect_crl_moved(*dst);
  dst->raise_crl_number(2);  // never lowers it
  EXPECT_GT(dst->next_crl().number, 7);
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
  expect_crl_moved(*mid);
  expect_crl_moved(*back);
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

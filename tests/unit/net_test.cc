// IP addresses and CIDR ranges as the cluster config uses them, IPv4 and IPv6.
#include "kubeca/net.h"

#include <gtest/gtest.h>

#include <string>

namespace kubeca {
namespace {

IpAddress Ip(const std::string& text) {
  auto ip = parse_ip(text);
  EXPECT_TRUE(ip.has_value()) << text;
  return ip.value_or(IpAddress{});
}

Cidr Range(const std::string& text) {
  auto c = parse_cidr(text);
  EXPECT_TRUE(c.has_value()) << text;
  return c.value_or(Cidr{});
}

TEST(ParseIp, Ipv4) {
  const IpAddress ip = Ip("10.3.0.1");
  EXPECT_FALSE(ip.v6);
  EXPECT_EQ(ip.bits(), 32);
  EXPECT_EQ(ip.bytes[0], 10);
  EXPECT_EQ(ip.bytes[1], 3);
  EXPECT_EQ(ip.bytes[2], 0);
  EXPECT_EQ(ip.bytes[3], 1);
  EXPECT_EQ(ip.str(), "10.3.0.1");
}

TEST(ParseIp, Ipv6IsNormalized) {
  const IpAddress ip = Ip("FD00:0:0:0:0:0:0:000A");
  EXPECT_TRUE(ip.v6);
  EXPECT_EQ(ip.bits(), 128);
  EXPECT_EQ(ip.bytes[0], 0xfd);
  EXPECT_EQ(ip.bytes[15], 0x0a);
  EXPECT_EQ(ip.str(), "fd00::a");
  EXPECT_EQ(Ip("::1").str(), "::1");
  EXPECT_EQ(Ip("::1"), Ip("0:0:0:0:0:0:0:1"));
}

TEST(ParseIp, RejectsWhatIsNotAnAddress) {
  for (const char* bad : {"", "10.3.0", "10.3.0.256", "10.3.0.1/32", " 10.3.0.1", "10.3.0.1 ",
                          "coreos1", "fd00:::1", "fd00::g", "1.2.3.4.5", "010.3.0.1x"}) {
    EXPECT_FALSE(parse_ip(bad).has_value()) << bad;
  }
}

TEST(ParseIp, FamiliesNeverCompareEqual) {
  // ::ffff:10.3.0.1 is an IPv6 address, not the IPv4 one.
  EXPECT_NE(Ip("::ffff:10.3.0.1"), Ip("10.3.0.1"));
  EXPECT_NE(Ip("10.3.0.1"), Ip("10.3.0.2"));
}

TEST(ParseCidr, Ipv4) {
  bool host_bits = true;
  auto c = parse_cidr("10.2.0.0/16", &host_bits);
  ASSERT_TRUE(c);
  EXPECT_FALSE(host_bits);
  EXPECT_EQ(c->prefix, 16);
  EXPECT_EQ(c->host_bits(), 16);
  EXPECT_EQ(c->network.str(), "10.2.0.0");
  EXPECT_EQ(c->str(), "10.2.0.0/16");
}

TEST(ParseCidr, HostBitsAreReportedAndCleared) {
  bool host_bits = false;
  auto c = parse_cidr("10.3.0.5/24", &host_bits);
  ASSERT_TRUE(c);
  EXPECT_TRUE(host_bits);
  EXPECT_EQ(c->str(), "10.3.0.0/24");

  host_bits = false;
  c = parse_cidr("fd00:10:96::1/112", &host_bits);
  ASSERT_TRUE(c);
  EXPECT_TRUE(host_bits);
  EXPECT_EQ(c->str(), "fd00:10:96::/112");

  host_bits = true;
  c = parse_cidr("10.3.0.5/32", &host_bits);
  ASSERT_TRUE(c);
  EXPECT_FALSE(host_bits);
}

TEST(ParseCidr, Ipv6) {
  bool host_bits = true;
  auto c = parse_cidr("fd00:10:96::/112", &host_bits);
  ASSERT_TRUE(c);
  EXPECT_FALSE(host_bits);
  EXPECT_TRUE(c->network.v6);
  EXPECT_EQ(c->prefix, 112);
  EXPECT_EQ(c->host_bits(), 16);
  EXPECT_EQ(Range("::/0").host_bits(), 128);
}

TEST(ParseCidr, RejectsMalformedRanges) {
  for (const char* bad :
       {"", "10.2.0.0", "10.2.0.0/", "/16", "10.2.0.0/33", "10.2.0.0/-1", "10.2.0.0/1a",
        "10.2.0.0/1000", "10.2.0/16", "banana/16", "10.2.0.0/16/1", "fd00::/129", "10.2.0.0 /16"}) {
    EXPECT_FALSE(parse_cidr(bad).has_value()) << bad;
  }
}

TEST(Cidr, ContainsIpv4) {
  const Cidr services = Range("10.3.0.0/24");
  EXPECT_TRUE(services.contains(Ip("10.3.0.0")));
  EXPECT_TRUE(services.contains(Ip("10.3.0.1")));
  EXPECT_TRUE(services.contains(Ip("10.3.0.255")));
  EXPECT_FALSE(services.contains(Ip("10.3.1.0")));
  EXPECT_FALSE(services.contains(Ip("10.2.255.255")));
  EXPECT_FALSE(services.contains(Ip("::ffff:10.3.0.1")));  // another family
  EXPECT_TRUE(Range("0.0.0.0/0").contains(Ip("192.168.24.11")));
  EXPECT_TRUE(Range("192.168.24.11/32").contains(Ip("192.168.24.11")));
  EXPECT_FALSE(Range("192.168.24.11/32").contains(Ip("192.168.24.12")));
}

TEST(Cidr, ContainsIpv6) {
  const Cidr services = Range("fd00:10:96::/112");
  EXPECT_TRUE(services.contains(Ip("fd00:10:96::a")));
  EXPECT_TRUE(services.contains(Ip("fd00:10:96::ffff")));
  EXPECT_FALSE(services.contains(Ip("fd00:10:96::1:0")));
  EXPECT_FALSE(services.contains(Ip("10.3.0.1")));
  // A prefix that does not end on a byte boundary.
  const Cidr odd = Range("fd00:10:96::/109");
  EXPECT_TRUE(odd.contains(Ip("fd00:10:96::7:ffff")));
  EXPECT_FALSE(odd.contains(Ip("fd00:10:96::8:0")));
}

TEST(Cidr, Overlaps) {
  const Cidr pods = Range("10.2.0.0/16");
  EXPECT_FALSE(pods.overlaps(Range("10.3.0.0/24")));
  EXPECT_FALSE(Range("10.3.0.0/24").overlaps(pods));
  EXPECT_TRUE(pods.overlaps(Range("10.2.128.0/24")));  // inside
  EXPECT_TRUE(Range("10.2.128.0/24").overlaps(pods));
  EXPECT_TRUE(pods.overlaps(Range("10.0.0.0/8")));  // around
  EXPECT_TRUE(pods.overlaps(pods));
  EXPECT_FALSE(Range("10.2.0.0/24").overlaps(Range("10.2.1.0/24")));  // adjacent
  EXPECT_TRUE(Range("fd00::/64").overlaps(Range("fd00::/112")));
  EXPECT_FALSE(Range("fd00::/64").overlaps(Range("fd00:0:0:1::/64")));
  EXPECT_FALSE(Range("0.0.0.0/0").overlaps(Range("::/0")));  // families never overlap
}

TEST(Cidr, FirstHostAndLast) {
  EXPECT_EQ(Range("10.3.0.0/24").first_host().str(), "10.3.0.1");
  EXPECT_EQ(Range("10.3.0.0/24").last().str(), "10.3.0.255");
  EXPECT_EQ(Range("10.16.0.0/12").first_host().str(), "10.16.0.1");
  EXPECT_EQ(Range("10.16.0.0/12").last().str(), "10.31.255.255");
  EXPECT_EQ(Range("10.3.0.0/23").last().str(), "10.3.1.255");
  EXPECT_EQ(Range("fd00:10:96::/112").first_host().str(), "fd00:10:96::1");
  EXPECT_EQ(Range("fd00:10:96::/112").last().str(), "fd00:10:96::ffff");
  EXPECT_EQ(Range("fd00:10:96::/109").last().str(), "fd00:10:96::7:ffff");
}

TEST(IsDnsName, AcceptsRfc1123Names) {
  for (const char* good : {"coreos1", "kubernetes.default.svc.cluster.local", "a", "0", "a-b",
                           "node-1.example.com", "123", "x1.y2"}) {
    EXPECT_TRUE(is_dns_name(good)) << good;
  }
  EXPECT_TRUE(is_dns_name(std::string(63, 'a')));
  EXPECT_TRUE(is_dns_name(std::string(63, 'a') + "." + std::string(63, 'b')));
}

TEST(IsDnsName, RejectsWhatIsUnsafeAsAFileName) {
  for (const char* bad : {"",
                          ".",
                          "..",
                          "../etc",
                          "a/b",
                          "/etc",
                          "a..b",
                          ".a",
                          "a.",
                          "-a",
                          "a-",
                          "a.-b",
                          "Coreos1",
                          "core_os",
                          "a b",
                          "a\nb",
                          "*.example.com",
                          "a:b",
                          "a\\b",
                          "10.3.0.1/24"}) {
    EXPECT_FALSE(is_dns_name(bad)) << bad;
  }
  EXPECT_FALSE(is_dns_name(std::string(64, 'a')));  // label too long
  std::string long_name;
  while (long_name.size() < 254) long_name += "abcdefg.";
  long_name += "x";
  EXPECT_FALSE(is_dns_name(long_name));  // name too long
}

}  // namespace
}  // namespace kubeca

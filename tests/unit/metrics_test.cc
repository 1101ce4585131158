// Metrics: labels only from fixed sets, valid Prometheus text, certificate gauges kept from
// hooks rather than read from the store.
#include "kubeca/metrics.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "kubeca/profile.h"

namespace kubeca {
namespace {

constexpr int64_t kNow = 1'800'000'000;

CertRecord cert(const std::string& serial, const std::string& profile, int64_t not_after) {
  CertRecord c;
  c.serial = serial;
  c.profile = profile;
  c.not_before = kNow - 60;
  c.not_after = not_after;
  return c;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Every line is a comment or NAME{LABELS} VALUE with label values from the fixed sets.
void expect_valid(const std::string& text) {
  const std::regex sample(
      R"(^([a-z_]+)(\{([a-z_]+="[^"\\\n]*"(,[a-z_]+="[^"\\\n]*")*)\})? (-?[0-9.e+-]+)$)");
  const std::regex label(R"x(([a-z_]+)="([^"]*)")x");
  std::set<std::string> routes(Metrics::routes().begin(), Metrics::routes().end());
  std::set<std::string> results(Metrics::results().begin(), Metrics::results().end());
  std::set<std::string> profiles{""};
  for (Profile p : all_profiles()) profiles.insert(to_string(p));
  ASSERT_FALSE(text.empty());
  ASSERT_EQ(text.back(), '\n');
  for (const auto& l : lines_of(text)) {
    if (l.rfind("# HELP ", 0) == 0 || l.rfind("# TYPE ", 0) == 0) continue;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(l, m, sample)) << l;
    const std::string labels = m[3];
    for (std::sregex_iterator it(labels.begin(), labels.end(), label), end; it != end; ++it) {
      const std::string name = (*it)[1], value = (*it)[2];
      if (name == "endpoint") {
        EXPECT_TRUE(routes.count(value)) << l;
      }
      if (name == "result") {
        EXPECT_TRUE(results.count(value)) << l;
      }
      if (name == "profile") {
        EXPECT_TRUE(profiles.count(value)) << l;
      }
      if (name == "le") {
        EXPECT_TRUE(std::regex_match(value, std::regex(R"([0-9.]+|\+Inf)"))) << l;
      }
      EXPECT_TRUE(name == "endpoint" || name == "result" || name == "profile" || name == "le") << l;
    }
  }
}

TEST(Metrics, WhatAClientSendsNeverBecomesALabel) {
  Metrics m;
  const std::string injection = "/x\"} 1\nkubeca_ca_expiry_seconds -1\n#";
  m.observe(injection, injection, injection, 0.01);
  m.observe("/v1/sign", "no-such-profile\"}", "weird_code\n", 0.02);
  for (int i = 0; i < 5000; ++i) {
    m.observe("/random/" + std::to_string(i), "p" + std::to_string(i), "not_found", 0.001);
  }
  const std::string text = m.render(kNow);
  expect_valid(text);
  EXPECT_EQ(text.find("\nkubeca_ca_expiry_seconds -1\n"), std::string::npos);
  EXPECT_EQ(text.find("no-such-profile"), std::string::npos);
  EXPECT_NE(text.find("kubeca_requests_total{endpoint=\"other\",profile=\"\",result=\"other\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("kubeca_requests_total{endpoint=\"other\",profile=\"\",result=\"not_found\"} 5000"),
      std::string::npos);
  EXPECT_NE(
      text.find("kubeca_requests_total{endpoint=\"/v1/sign\",profile=\"\",result=\"other\"} 1"),
      std::string::npos);
  EXPECT_LT(text.size(), 8u * 1024);
}

TEST(Metrics, EveryRouteAndResultAtOnceStaysUnder80KiB) {
  // A bound above the worst case a client could reach: every route with every result, for
  // one profile (no route can produce every result). 13 routes since /v1/users: 67 KiB.
  Metrics m;
  for (const auto& r : Metrics::routes()) {
    for (const auto& c : Metrics::results()) m.observe(r, "kubelet", c, 0.3);
  }
  for (Profile p : all_profiles()) m.certificate_issued(cert(to_string(p), to_string(p), kNow + 9));
  const std::string text = m.render(kNow);
  expect_valid(text);
  EXPECT_LT(text.size(), 80u * 1024);
  std::cout << "every route with every result: " << text.size() << " bytes\n";
}

TEST(Metrics, HistogramIsCumulativeWithSumAndCount) {
  Metrics m;
  m.observe("/v1/sign", "kubelet", "ok", 0.003);
  m.observe("/v1/sign", "kubelet", "ok", 0.3);
  m.observe("/v1/sign", "kubelet", "weak_key", 7);
  const std::string t = m.render(kNow);
  auto has = [&](const std::string& s) { return t.find(s + "\n") != std::string::npos; };
  EXPECT_TRUE(has("kubeca_request_duration_seconds_bucket{endpoint=\"/v1/sign\",le=\"0.001\"} 0"));
  EXPECT_TRUE(has("kubeca_request_duration_seconds_bucket{endpoint=\"/v1/sign\",le=\"0.005\"} 1"));
  EXPECT_TRUE(has("kubeca_request_duration_seconds_bucket{endpoint=\"/v1/sign\",le=\"0.5\"} 2"));
  EXPECT_TRUE(has("kubeca_request_duration_seconds_bucket{endpoint=\"/v1/sign\",le=\"5\"} 2"));
  EXPECT_TRUE(has("kubeca_request_duration_seconds_bucket{endpoint=\"/v1/sign\",le=\"+Inf\"} 3"));
  EXPECT_TRUE(has("kubeca_request_duration_seconds_count{endpoint=\"/v1/sign\"} 3"));
  const std::string sum = "kubeca_request_duration_seconds_sum{endpoint=\"/v1/sign\"} ";
  const auto at = t.find(sum);
  ASSERT_NE(at, std::string::npos);
  EXPECT_NEAR(std::stod(t.substr(at + sum.size())), 7.303, 1e-9);
  EXPECT_TRUE(
      has("kubeca_requests_total{endpoint=\"/v1/sign\",profile=\"kubelet\",result=\"ok\"} 2"));
}

TEST(Metrics, SoonestExpiryAndLiveCountPerProfileFollowIssueRevokeAndTime) {
  Metrics m;
  m.set_ca_not_after(kNow + 1000);
  CertRecord revoked = cert("03", "kubelet", kNow + 50);
  revoked.status = "revoked";
  m.load_certificates({cert("01", "kubelet", kNow + 100), cert("02", "kubelet", kNow + 300),
                       revoked, cert("04", "admin", kNow + 5000), cert("05", "kubelet", kNow - 1),
                       cert("06", "", kNow + 10)},
                      kNow);
  auto value = [&](const std::string& text, const std::string& series) -> std::string {
    const auto at = text.find("\n" + series + " ");
    if (at == std::string::npos) return "absent";
    const auto start = at + series.size() + 2;
    return text.substr(start, text.find('\n', start) - start);
  };
  std::string t = m.render(kNow);
  expect_valid(t);
  EXPECT_EQ(value(t, "kubeca_ca_expiry_seconds"), "1000");
  EXPECT_EQ(value(t, "kubeca_certificates_live{profile=\"kubelet\"}"), "2");
  EXPECT_EQ(value(t, "kubeca_certificate_soonest_expiry_seconds{profile=\"kubelet\"}"), "100");
  EXPECT_EQ(value(t, "kubeca_certificates_live{profile=\"admin\"}"), "1");
  EXPECT_EQ(value(t, "kubeca_certificate_soonest_expiry_seconds{profile=\"admin\"}"), "5000");
  EXPECT_EQ(t.find("serial"), std::string::npos);

  // Issued: counted, live, and now the soonest.
  m.certificate_issued(cert("07", "kubelet", kNow + 20));
  t = m.render(kNow);
  EXPECT_EQ(value(t, "kubeca_certificates_issued_total{profile=\"kubelet\"}"), "1");
  EXPECT_EQ(value(t, "kubeca_certificates_live{profile=\"kubelet\"}"), "3");
  EXPECT_EQ(value(t, "kubeca_certificate_soonest_expiry_seconds{profile=\"kubelet\"}"), "20");

  // Revoked, twice: counted once.
  m.certificate_revoked(cert("07", "kubelet", kNow + 20));
  m.certificate_revoked(cert("07", "kubelet", kNow + 20));
  t = m.render(kNow);
  EXPECT_EQ(value(t, "kubeca_certificates_live{profile=\"kubelet\"}"), "2");
  EXPECT_EQ(value(t, "kubeca_certificate_soonest_expiry_seconds{profile=\"kubelet\"}"), "100");

  // Time passes: the soonest expires and the next one takes its place.
  t = m.render(kNow + 150);
  EXPECT_EQ(value(t, "kubeca_certificates_live{profile=\"kubelet\"}"), "1");
  EXPECT_EQ(value(t, "kubeca_certificate_soonest_expiry_seconds{profile=\"kubelet\"}"), "150");
  t = m.render(kNow + 400);
  EXPECT_EQ(value(t, "kubeca_certificates_live{profile=\"kubelet\"}"), "absent");
  EXPECT_EQ(value(t, "kubeca_certificates_live{profile=\"admin\"}"), "1");
  expect_valid(t);
}

TEST(Metrics, EveryDocumentedRefusalCodeHasItsOwnLabel) {
  // docs/api.md's refusal table is the list of codes; each must be a result label, not "other".
  std::ifstream in(std::string(KUBECA_TEST_DATA) + "/../../docs/api.md");
  ASSERT_TRUE(in) << "docs/api.md";
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto start = doc.find("## Refusals");
  ASSERT_NE(start, std::string::npos);
  const std::string table = doc.substr(start, doc.find("\n## ", start + 1) - start);
  const std::set<std::string> results(Metrics::results().begin(), Metrics::results().end());
  const std::regex row(R"(^\| [0-9]{3} \| (.*?) \|)");
  const std::regex code("`([a-z_]+)`");
  int codes = 0;
  for (const auto& l : lines_of(table)) {
    std::smatch m;
    if (!std::regex_search(l, m, row)) continue;
    const std::string cell = m[1];
    for (std::sregex_iterator it(cell.begin(), cell.end(), code), end; it != end; ++it) {
      ++codes;
      EXPECT_TRUE(results.count((*it)[1])) << (*it)[1] << " is documented but not a label";
    }
  }
  EXPECT_GT(codes, 25);
}

}  // namespace
}  // namespace kubeca

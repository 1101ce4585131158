// `bootstrap apply` against a stand-in API server on 127.0.0.1 (there is no real one here);
// the etcd steps run against a real etcd in tests/integration/bootstrap_etcd.sh.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "kubeca/apply.h"

namespace kubeca {
namespace {

using nlohmann::json;

class FakeApi {
 public:
  explicit FakeApi(int unready_answers) : unready_(unready_answers) {
    server_.Get("/version", [this](const httplib::Request&, httplib::Response& res) {
      if (version_calls_++ < unready_) {
        res.status = 503;
        return;
      }
      res.set_content(R"({"major":"1","minor":"2","gitVersion":"v1.2.3+coreos.0"})",
                      "application/json");
    });
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      posts_.push_back({req.path, json::parse(req.body)});
      const bool exists = posts_.back().second["metadata"]["name"] == "kube-system";
      res.status = exists ? 409 : 201;
      res.set_content(exists ? R"({"kind":"Status","reason":"AlreadyExists"})" : req.body,
                      "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeApi() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int version_calls() const { return version_calls_; }
  std::vector<std::pair<std::string, json>> posts() {
    std::lock_guard<std::mutex> lock(mu_);
    return posts_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  int unready_;
  std::atomic<int> version_calls_{0};
  std::mutex mu_;
  std::vector<std::pair<std::string, json>> posts_;
};

Config coreos() {
  Config c = parse_config_yaml(R"(
cluster: {flavor: coreos-2016}
master: {host: 192.168.24.11, name: coreos1}
network: {pod_cidr: 10.2.0.0/16, service_cidr: 10.3.0.0/24, dns_service_ip: 10.3.0.10}
)");
  validate(c);
  return c;
}

TEST(BootstrapApply, FlannelConfigIsTheSeedsValue) {
  EXPECT_EQ(flannel_network_config(coreos()),
            R"({"Network":"10.2.0.0/16","Backend":{"Type":"vxlan"}})");
  EXPECT_STREQ(kFlannelKey, "/coreos.com/network/config");
}

TEST(BootstrapApply, WaitsForTheApiThenCreatesTheSeedsNamespaces) {
  FakeApi api(2);
  ApplyOptions o;
  o.etcd = false;
  o.apiserver = api.url();
  o.poll_interval = std::chrono::milliseconds(20);
  o.api_timeout = std::chrono::seconds(10);
  std::vector<std::string> seen;
  const auto steps =
      bootstrap_apply(coreos(), o, [&](const ApplyStep& s) { seen.push_back(s.what); });
  EXPECT_EQ(api.version_calls(), 3) << "two 503s, then ready";
  const auto posts = api.posts();
  ASSERT_EQ(posts.size(), 3u);
  EXPECT_EQ(posts[0].first, "/api/v1/namespaces");
  EXPECT_EQ(
      posts[0].second,
      json::parse(R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"kube-system"}})"));
  EXPECT_EQ(posts[1].second["metadata"]["name"], "calico-system");
  // The seed posts to 127.0.01 (a typo); we post to the API server we were given.
  EXPECT_EQ(posts[2].first, "/apis/extensions/v1beta1/namespaces/default/thirdpartyresources");
  EXPECT_EQ(posts[2].second["kind"], "ThirdPartyResource");
  EXPECT_EQ(posts[2].second["metadata"]["name"], "network-policy.net.alpha.kubernetes.io");
  EXPECT_EQ(posts[2].second["versions"][0]["name"], "v1alpha1");
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[1].what, "namespace kube-system");
  EXPECT_EQ(steps[1].result, "exists (left as is)") << "409 AlreadyExists is success";
  EXPECT_EQ(steps[2].result, "created");
  EXPECT_EQ(seen.size(), steps.size());
}

TEST(BootstrapApply, ModernCreatesOnlyKubeSystem) {
  FakeApi api(0);
  Config c = coreos();
  c.flavor = Flavor::kModern;
  ApplyOptions o;
  o.etcd = false;
  o.apiserver = api.url();
  bootstrap_apply(c, o);
  const auto posts = api.posts();
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(posts[0].second["metadata"]["name"], "kube-system");
}

TEST(BootstrapApply, GivesUpWhenTheApiNeverAnswers) {
  FakeApi api(1000000);
  ApplyOptions o;
  o.etcd = false;
  o.apiserver = api.url();
  o.poll_interval = std::chrono::milliseconds(20);
  o.api_timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  try {
    bootstrap_apply(coreos(), o);
    FAIL() << "the API never answered";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("did not answer /version"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("HTTP 503"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_GE(api.version_calls(), 3);
  EXPECT_TRUE(api.posts().empty());
}

TEST(BootstrapApply, NoEtcdAnsweringIsAnError) {
  ApplyOptions o;
  o.namespaces = false;
  o.etcd_endpoints = {"http://127.0.0.1:1"};
  EXPECT_THROW(bootstrap_apply(coreos(), o), std::runtime_error);
}

}  // namespace
}  // namespace kubeca

// Certificate profiles: make_spec gives product.md's table, for both flavors.
#include "kubeca/profile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "kubeca/config.h"
#include "kubeca/pki.h"
#include "test_support.h"

namespace kubeca {
namespace {

using Strings = std::vector<std::string>;

Config SeedConfig(Flavor flavor) {
  Config c = parse_config_yaml(R"(
cluster: {name: kubernetes, domain: cluster.local}
master: {host: 192.168.24.11, name: coreos1, extra_sans: [api.example.com, 203.0.113.7, "FD00::0010"]}
network: {pod_cidr: 10.2.0.0/16, service_cidr: 10.3.0.0/24, dns_service_ip: 10.3.0.10}
workers:
  - {name: coreos2, ip: 192.168.24.12}
  - {name: coreos3, ip: 192.168.24.13}
pki: {key_algorithm: ecdsa-p256, ca_validity: 87600h, cert_validity: 8760h}
)");
  c.flavor = flavor;
  validate(c);
  return c;
}

using test::Sorted;

// One row of product.md's profile table, as make_spec should give it.
struct Row {
  Profile profile;
  Identity id;
  std::string cn;
  Strings orgs;
  bool server, client;
  Strings dns, ips;
  std::string file;
};

void ExpectRow(const Config& c, const Row& r) {
  SCOPED_TRACE(std::string(to_string(r.profile)) + " " + r.id.name + " in " + to_string(c.flavor));
  const CertSpec s = make_spec(c, r.profile, r.id);
  EXPECT_EQ(s.profile, r.profile);
  EXPECT_EQ(s.common_name, r.cn);
  EXPECT_EQ(s.organizations, r.orgs);
  EXPECT_EQ(s.server_auth, r.server);
  EXPECT_EQ(s.client_auth, r.client);
  EXPECT_EQ(Sorted(s.dns_names), Sorted(r.dns));
  EXPECT_EQ(Sorted(s.ip_addresses), Sorted(r.ips));
  EXPECT_EQ(s.file, r.file);
  EXPECT_EQ(s.seed_usages, c.flavor == Flavor::kCoreos2016);
  EXPECT_EQ(s.validity, profile_is_ca(r.profile) ? c.ca_validity : c.cert_validity);
}

const Strings kApiserverDns = {"kubernetes",
                               "kubernetes.default",
                               "kubernetes.default.svc",
                               "kubernetes.default.svc.cluster.local",
                               "coreos1",
                               "api.example.com"};
const Strings kApiserverIps = {"10.3.0.1", "192.168.24.11", "203.0.113.7", "fd00::10"};
const Strings kEtcdDns = {"localhost", "coreos1"};
const Strings kEtcdIps = {"127.0.0.1", "::1", "192.168.24.11"};

TEST(MakeSpec, ModernTable) {
  const Config c = SeedConfig(Flavor::kModern);
  const Identity coreos2{"coreos2", {}, {}};
  const std::vector<Row> rows = {
      {Profile::kCa, {}, "kubernetes-ca", {}, false, false, {}, {}, "ca"},
      {Profile::kApiserver,
       {},
       "kube-apiserver",
       {},
       true,
       false,
       kApiserverDns,
       kApiserverIps,
       "apiserver"},
      {Profile::kKubelet,
       coreos2,
       "system:node:coreos2",
       {"system:nodes"},
       true,
       true,
       {"coreos2"},
       {"192.168.24.12"},
       "kubelet-coreos2"},
      {Profile::kKubelet,
       {"coreos1", {}, {}},
       "system:node:coreos1",
       {"system:nodes"},
       true,
       true,
       {"coreos1"},
       {"192.168.24.11"},
       "kubelet-coreos1"},  // the master's own kubelet
      {Profile::kAdmin, {}, "kubernetes-admin", {"system:masters"}, false, true, {}, {}, "admin"},
      {Profile::kKubeProxy, {}, "system:kube-proxy", {}, false, true, {}, {}, "kube-proxy"},
      {Profile::kControllerManager,
       {},
       "system:kube-controller-manager",
       {},
       false,
       true,
       {},
       {},
       "controller-manager"},
      {Profile::kScheduler, {}, "system:kube-scheduler", {}, false, true, {}, {}, "scheduler"},
      {Profile::kApiserverKubeletClient,
       {},
       "kube-apiserver-kubelet-client",
       {"system:masters"},
       false,
       true,
       {},
       {},
       "apiserver-kubelet-client"},
      {Profile::kFrontProxyCa, {}, "front-proxy-ca", {}, false, false, {}, {}, "front-proxy-ca"},
      {Profile::kFrontProxyClient,
       {},
       "front-proxy-client",
       {},
       false,
       true,
       {},
       {},
       "front-proxy-client"},
      {Profile::kEtcdCa, {}, "etcd-ca", {}, false, false, {}, {}, "etcd/ca"},
      {Profile::kEtcdServer, {}, "coreos1", {}, true, true, kEtcdDns, kEtcdIps, "etcd/server"},
      {Profile::kEtcdPeer, {}, "coreos1", {}, true, true, kEtcdDns, kEtcdIps, "etcd/peer"},
      {Profile::kEtcdHealthcheckClient,
       {},
       "kube-etcd-healthcheck-client",
       {},
       false,
       true,
       {},
       {},
       "etcd/healthcheck-client"},
      {Profile::kApiserverEtcdClient,
       {},
       "kube-apiserver-etcd-client",
       {},
       false,
       true,
       {},
       {},
       "apiserver-etcd-client"},
      {Profile::kSigner, {}, "kubeca", {}, true, false, {"coreos1"}, {"192.168.24.11"}, "signer"},
  };
  std::set<Profile> covered;
  for (const auto& r : rows) {
    ExpectRow(c, r);
    covered.insert(r.profile);
  }
  // user has no fixed row: user_spec makes it from a request (UserSpec below).
  EXPECT_EQ(covered.size() + 1, all_profiles().size()) << "every profile has a row";
}

TEST(MakeSpec, CoreOs2016TableKeepsTheSeedsNames) {
  const Config c = SeedConfig(Flavor::kCoreos2016);
  const std::vector<Row> rows = {
      {Profile::kCa, {}, "kube-ca", {}, false, false, {}, {}, "ca"},
      {Profile::kApiserver,
       {},
       "kube-apiserver",
       {},
       true,
       false,
       kApiserverDns,
       kApiserverIps,
       "apiserver"},
      {Profile::kKubelet,
       {"coreos2", {}, {}},
       "coreos2",
       {},
       true,
       true,
       {"coreos2"},
       {"192.168.24.12"},
       "coreos2-worker"},
      {Profile::kAdmin, {}, "kube-admin", {}, false, true, {}, {}, "admin"},
      {Profile::kSigner, {}, "kubeca", {}, true, false, {"coreos1"}, {"192.168.24.11"}, "signer"},
  };
  for (const auto& r : rows) ExpectRow(c, r);
}

TEST(MakeSpec, CoreOs2016HasOnlyTheSeedsProfiles) {
  const Config c = SeedConfig(Flavor::kCoreos2016);
  // And people's certificates, which either flavor's API server reads alike.
  const std::set<Profile> seed = {Profile::kCa,    Profile::kApiserver, Profile::kKubelet,
                                  Profile::kAdmin, Profile::kSigner,    Profile::kUser};
  for (Profile p : all_profiles()) {
    SCOPED_TRACE(to_string(p));
    EXPECT_EQ(profile_in_flavor(p, Flavor::kCoreos2016), seed.count(p) > 0);
    EXPECT_TRUE(profile_in_flavor(p, Flavor::kModern));
    if (seed.count(p)) continue;
    try {
      make_spec(c, p);
      ADD_FAILURE() << "no error";
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()),
                std::string("profile ") + to_string(p) +
                    " does not exist in flavor coreos-2016 (the seed has ca, apiserver, kubelet, "
                    "admin and signer)");
    }
  }
}

TEST(MakeSpec, SignerAddsTheSignerUrlHost) {
  Config c = SeedConfig(Flavor::kModern);
  c.signer_url = "https://ca.example.com:8443";
  const CertSpec s = make_spec(c, Profile::kSigner);
  EXPECT_EQ(Sorted(s.dns_names), Sorted({"coreos1", "ca.example.com"}));
  EXPECT_EQ(s.ip_addresses, Strings{"192.168.24.11"});
  c.signer_url = "https://[fd00::5]:8443";
  EXPECT_EQ(Sorted(make_spec(c, Profile::kSigner).ip_addresses),
            Sorted({"192.168.24.11", "fd00::5"}));
}

TEST(MakeSpec, SignerNamesEveryReplicaOfSignerUrls) {
  Config c = parse_config_yaml(R"(
master: {host: 192.168.24.11, name: coreos1}
signer:
  url: https://ca.example.com:8443
  urls: [https://m1.example.com:8443, https://10.0.0.2:8443, "https://[fd00::3]:9443",
         https://ca.example.com:8443]
)");
  validate(c);
  const CertSpec s = make_spec(c, Profile::kSigner);
  EXPECT_EQ(Sorted(s.dns_names), Sorted({"coreos1", "ca.example.com", "m1.example.com"}));
  EXPECT_EQ(Sorted(s.ip_addresses), Sorted({"192.168.24.11", "10.0.0.2", "fd00::3"}));
  // Only the signer: no other profile picks up the replicas' names.
  const CertSpec api = make_spec(c, Profile::kApiserver);
  for (const auto& d : api.dns_names) EXPECT_NE(d, "m1.example.com");
  for (const auto& ip : api.ip_addresses) EXPECT_NE(ip, "10.0.0.2");
}

TEST(MakeSpec, DomainGoesIntoTheApiserverName) {
  Config c = SeedConfig(Flavor::kModern);
  c.domain = "example.internal";
  const CertSpec s = make_spec(c, Profile::kApiserver);
  EXPECT_NE(
      std::find(s.dns_names.begin(), s.dns_names.end(), "kubernetes.default.svc.example.internal"),
      s.dns_names.end());
  EXPECT_EQ(
      std::find(s.dns_names.begin(), s.dns_names.end(), "kubernetes.default.svc.cluster.local"),
      s.dns_names.end());
}

TEST(MakeSpec, KubeletIdentity) {
  const Config c = SeedConfig(Flavor::kModern);
  // A node outside the config: its IPs and extra names come from the request.
  const CertSpec n9 =
      make_spec(c, Profile::kKubelet, {"n9", {"192.168.24.19", "FD00::19"}, {"n9.example.com"}});
  EXPECT_EQ(n9.common_name, "system:node:n9");
  EXPECT_EQ(Sorted(n9.dns_names), Sorted({"n9", "n9.example.com"}));
  EXPECT_EQ(Sorted(n9.ip_addresses), Sorted({"192.168.24.19", "fd00::19"}));
  EXPECT_EQ(n9.file, "kubelet-n9");
  // Given IPs replace the configured one.
  EXPECT_EQ(make_spec(c, Profile::kKubelet, {"coreos2", {"192.168.24.99"}, {}}).ip_addresses,
            Strings{"192.168.24.99"});
  EXPECT_EQ(describe(make_spec(c, Profile::kKubelet, {"coreos2", {}, {}})),
            "O=system:nodes, CN=system:node:coreos2, DNS:coreos2, IP:192.168.24.12");
}

TEST(MakeSpec, IdentityErrors) {
  const Config c = SeedConfig(Flavor::kModern);
  auto error = [&](Profile p, const Identity& id) -> std::string {
    try {
      make_spec(c, p, id);
    } catch (const InputError& e) {
      return e.what();
    }
    return "OK";
  };
  EXPECT_EQ(error(Profile::kKubelet, {}), "profile kubelet needs --name");
  EXPECT_EQ(error(Profile::kKubelet, {"n9", {}, {}}),
            R"(profile kubelet for "n9" needs --ip (the node is not in the config's workers))");
  EXPECT_EQ(error(Profile::kKubelet, {"../n9", {"192.168.24.19"}, {}}),
            R"(--name: "../n9" is not a valid DNS name)");
  EXPECT_EQ(error(Profile::kKubelet, {"n9/x", {"192.168.24.19"}, {}}),
            R"(--name: "n9/x" is not a valid DNS name)");
  EXPECT_EQ(error(Profile::kKubelet, {"n9", {"192.168.24.300"}, {}}),
            R"(--ip: "192.168.24.300" is not an IP address)");
  EXPECT_EQ(error(Profile::kAdmin, {"", {}, {"a..b"}}), R"(--dns: "a..b" is not a valid DNS name)");
  EXPECT_EQ(error(Profile::kEtcdServer, {"Etcd2", {}, {}}),
            R"(--name: "Etcd2" is not a valid DNS name)");
}

TEST(MakeSpec, EtcdMemberOtherThanTheMaster) {
  const Config c = SeedConfig(Flavor::kModern);
  const CertSpec s = make_spec(c, Profile::kEtcdPeer, {"etcd2", {"192.168.24.22"}, {}});
  EXPECT_EQ(s.common_name, "etcd2");
  EXPECT_EQ(Sorted(s.dns_names), Sorted({"localhost", "etcd2"}));
  EXPECT_EQ(Sorted(s.ip_addresses), Sorted({"127.0.0.1", "::1", "192.168.24.22"}));
  EXPECT_EQ(s.file, "etcd/peer-etcd2");
  EXPECT_TRUE(s.server_auth && s.client_auth);
}

TEST(MakeSpec, ExtraNamesForClientProfiles) {
  const Config c = SeedConfig(Flavor::kModern);
  const CertSpec s = make_spec(c, Profile::kAdmin, {"", {"10.0.0.1"}, {"ops.example.com"}});
  EXPECT_EQ(s.dns_names, Strings{"ops.example.com"});
  EXPECT_EQ(s.ip_addresses, Strings{"10.0.0.1"});
  EXPECT_EQ(s.common_name, "kubernetes-admin");  // the subject never comes from the request
}

TEST(Profiles, NamesRoundTrip) {
  const Strings names = {"ca",
                         "apiserver",
                         "kubelet",
                         "admin",
                         "kube-proxy",
                         "controller-manager",
                         "scheduler",
                         "apiserver-kubelet-client",
                         "front-proxy-ca",
                         "front-proxy-client",
                         "etcd-ca",
                         "etcd-server",
                         "etcd-peer",
                         "etcd-healthcheck-client",
                         "apiserver-etcd-client",
                         "signer",
                         "user"};
  ASSERT_EQ(all_profiles().size(), names.size());
  for (const auto& n : names) {
    auto p = parse_profile(n);
    ASSERT_TRUE(p) << n;
    EXPECT_EQ(to_string(*p), n);
  }
  EXPECT_FALSE(parse_profile("root"));
  EXPECT_FALSE(parse_profile("Kubelet"));
  EXPECT_FALSE(parse_profile(""));
}

TEST(Profiles, CasAndIssuers) {
  for (Profile p : all_profiles()) {
    SCOPED_TRACE(to_string(p));
    const std::string n = to_string(p);
    const bool ca = n == "ca" || n == "front-proxy-ca" || n == "etcd-ca";
    EXPECT_EQ(profile_is_ca(p), ca);
    const Profile expected = n.rfind("front-proxy", 0) == 0 ? Profile::kFrontProxyCa
                             : n.rfind("etcd", 0) == 0 || n == "apiserver-etcd-client"
                                 ? Profile::kEtcdCa
                                 : Profile::kCa;
    EXPECT_EQ(issuer_of(p), expected);
  }
}

Strings Files(const std::vector<CertSpec>& specs) {
  Strings out;
  for (const auto& s : specs) out.push_back(s.file);
  return out;
}

TEST(PlannedCertificates, Modern) {
  const auto specs = planned_certificates(SeedConfig(Flavor::kModern));
  EXPECT_EQ(
      Sorted(Files(specs)),
      Sorted({"ca", "front-proxy-ca", "etcd/ca", "apiserver", "admin", "signer", "kubelet-coreos1",
              "kubelet-coreos2", "kubelet-coreos3", "kube-proxy", "controller-manager", "scheduler",
              "apiserver-kubelet-client", "front-proxy-client", "etcd/server", "etcd/peer",
              "etcd/healthcheck-client", "apiserver-etcd-client"}));
  // CAs first: init issues in this order.
  size_t last_ca = 0, first_leaf = specs.size();
  for (size_t i = 0; i < specs.size(); ++i) {
    if (profile_is_ca(specs[i].profile)) last_ca = i;
    if (!profile_is_ca(specs[i].profile)) first_leaf = std::min(first_leaf, i);
  }
  EXPECT_LT(last_ca, first_leaf);
}

TEST(PlannedCertificates, CoreOs2016IsTheSeedsFileSet) {
  const auto specs = planned_certificates(SeedConfig(Flavor::kCoreos2016));
  EXPECT_EQ(Sorted(Files(specs)),
            Sorted({"ca", "apiserver", "admin", "signer", "coreos2-worker", "coreos3-worker"}));
  EXPECT_EQ(specs.front().profile, Profile::kCa);
}

}  // namespace
}  // namespace kubeca

namespace kubeca {
namespace {

std::string UserError(const Config& c, const UserRequest& r) {
  try {
    user_spec(c, r);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(UserSpec, NameGroupsClientAuthOnlyAndTheTtl) {
  const Config c = SeedConfig(Flavor::kModern);
  const CertSpec s = user_spec(c, {"alice@example.com", {"devs", "qa"}, std::chrono::hours(24)});
  EXPECT_EQ(s.profile, Profile::kUser);
  EXPECT_EQ(s.common_name, "alice@example.com");
  EXPECT_EQ(s.organizations, (Strings{"devs", "qa"}));
  EXPECT_TRUE(s.client_auth);
  EXPECT_FALSE(s.server_auth);
  EXPECT_TRUE(s.dns_names.empty() && s.ip_addresses.empty());
  EXPECT_EQ(s.validity, std::chrono::hours(24));
  EXPECT_EQ(to_string(Profile::kUser), std::string("user"));
  EXPECT_THROW(make_spec(c, Profile::kUser), InputError) << "only user_spec makes one";
}

TEST(UserSpec, BadValuesAreRefusedNamingTheFlag) {
  const Config c = SeedConfig(Flavor::kModern);
  const auto h = std::chrono::hours(1);
  EXPECT_NE(UserError(c, {"", {}, h}).find("--name"), std::string::npos);
  EXPECT_NE(UserError(c, {"a,O=system:masters", {}, h}).find("--name"), std::string::npos);
  EXPECT_NE(UserError(c, {"a b", {}, h}).find("--name"), std::string::npos);
  EXPECT_NE(UserError(c, {"-a", {}, h}).find("--name"), std::string::npos);
  EXPECT_NE(UserError(c, {std::string(65, 'a'), {}, h}).find("--name"), std::string::npos);
  EXPECT_EQ(UserError(c, {std::string(64, 'a'), {}, h}), "");
  EXPECT_NE(UserError(c, {"a", {"x/y"}, h}).find("--group"), std::string::npos);
  EXPECT_NE(UserError(c, {"a", {"g", "g"}, h}).find("given twice"), std::string::npos);
  EXPECT_NE(UserError(c, {"a", {}, std::chrono::seconds(59)}).find("--ttl"), std::string::npos);
  EXPECT_NE(
      UserError(c, {"a", {}, c.cert_validity + std::chrono::seconds(1)}).find("pki.cert_validity"),
      std::string::npos);
  EXPECT_EQ(UserError(c, {"a", {}, c.cert_validity}), "");
}

TEST(UserSpec, SystemNamesAndGroupsNeedAllowPrivileged) {
  const Config c = SeedConfig(Flavor::kModern);
  const auto h = std::chrono::hours(1);
  for (const UserRequest& r :
       {UserRequest{"root", {"system:masters"}, h}, UserRequest{"n", {"devs", "system:nodes"}, h},
        UserRequest{"system:node:n1", {}, h}}) {
    SCOPED_TRACE(r.name);
    EXPECT_THROW(user_spec(c, r), PrivilegedUser);
    UserRequest allowed = r;
    allowed.allow_privileged = true;
    EXPECT_NO_THROW(user_spec(c, allowed));
  }
  EXPECT_NE(UserError(c, {"root", {"system:masters"}, h}).find("--allow-privileged"),
            std::string::npos);
}

}  // namespace
}  // namespace kubeca

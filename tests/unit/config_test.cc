// The cluster configuration: every validation rule of product.md, with the bad value and the
// exact one-line error it gets; the seed's env file; the shipped examples.
#include "kubeca/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace kubeca {
namespace {

namespace fs = std::filesystem;

const fs::path kExamples = fs::path(KUBECA_TEST_DATA) / ".." / ".." / "examples";

// A valid modern cluster, the seed's values.
const char kBase[] = R"(cluster:
  name: kubernetes
  domain: cluster.local
  flavor: modern
master:
  host: 192.168.24.11
  name: coreos1
  extra_sans: [api.example.com, 203.0.113.7]
etcd:
  endpoints: [http://192.168.24.11:2379, http://192.168.24.12:2379]
network:
  pod_cidr: 10.2.0.0/16
  service_cidr: 10.3.0.0/24
  dns_service_ip: 10.3.0.10
workers:
  - {name: coreos2, ip: 192.168.24.12}
  - {name: coreos3, ip: 192.168.24.13}
pki:
  key_algorithm: ecdsa-p256
  ca_validity: 87600h
  cert_validity: 8760h
signer:
  listen: 0.0.0.0:8443
  url: https://192.168.24.11:8443
  store: sqlite:/var/lib/kubeca/kubeca.db
)";

// kBase with `from` (which must occur exactly once) replaced by `to`.
std::string With(const std::string& from, const std::string& to, std::string yaml = kBase) {
  const auto at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << "not in the YAML: " << from;
  EXPECT_EQ(yaml.find(from, at + 1), std::string::npos) << "twice in the YAML: " << from;
  if (at != std::string::npos) yaml.replace(at, from.size(), to);
  return yaml;
}

// The InputError parse + validate gives, or "OK".
std::string ErrorOf(const std::string& yaml) {
  try {
    Config c = parse_config_yaml(yaml);
    validate(c);
  } catch (const InputError& e) {
    return e.what();
  }
  return "OK";
}

Config Valid(const std::string& yaml) {
  Config c = parse_config_yaml(yaml);
  validate(c);
  return c;
}

struct Case {
  std::string from, to, error;
};

void ExpectErrors(const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.from + " -> " + c.to);
    const std::string error = ErrorOf(With(c.from, c.to));
    EXPECT_EQ(error, c.error);
    EXPECT_EQ(error.find('\n'), std::string::npos) << "an error is one line";
  }
}

void ExpectValid(const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.from + " -> " + c.to);
    EXPECT_EQ(ErrorOf(With(c.from, c.to)), "OK");
  }
}

TEST(Config, BaseIsValidAndParsedFieldByField) {
  const Config c = Valid(kBase);
  EXPECT_EQ(c.cluster_name, "kubernetes");
  EXPECT_EQ(c.domain, "cluster.local");
  EXPECT_EQ(c.flavor, Flavor::kModern);
  EXPECT_EQ(c.master_host, "192.168.24.11");
  EXPECT_EQ(c.master_name, "coreos1");
  EXPECT_EQ(c.extra_sans, (std::vector<std::string>{"api.example.com", "203.0.113.7"}));
  EXPECT_EQ(c.etcd_endpoints,
            (std::vector<std::string>{"http://192.168.24.11:2379", "http://192.168.24.12:2379"}));
  EXPECT_EQ(c.pod_cidr, "10.2.0.0/16");
  EXPECT_EQ(c.service_cidr, "10.3.0.0/24");
  EXPECT_EQ(c.dns_service_ip, "10.3.0.10");
  EXPECT_EQ(c.k8s_service_ip, "10.3.0.1");  // derived: the first IP of the service range
  ASSERT_EQ(c.workers.size(), 2u);
  EXPECT_EQ(c.workers[0].name, "coreos2");
  EXPECT_EQ(c.workers[0].ip, "192.168.24.12");
  EXPECT_EQ(c.workers[1].name, "coreos3");
  EXPECT_EQ(c.workers[1].ip, "192.168.24.13");
  EXPECT_EQ(c.key_algorithm, "ecdsa-p256");
  EXPECT_EQ(c.ca_validity, std::chrono::hours(87600));
  EXPECT_EQ(c.cert_validity, std::chrono::hours(8760));
  EXPECT_EQ(c.signer_listen, "0.0.0.0:8443");
  EXPECT_EQ(c.signer_url, "https://192.168.24.11:8443");
  EXPECT_EQ(c.signer_store, "sqlite:/var/lib/kubeca/kubeca.db");
  EXPECT_TRUE(c.signer_url_named);
  EXPECT_TRUE(c.signer_store_named);
  EXPECT_EQ(c.apiserver_url(), "https://192.168.24.11:6443");
  ASSERT_NE(c.find_worker("coreos3"), nullptr);
  EXPECT_EQ(c.find_worker("coreos3")->ip, "192.168.24.13");
  EXPECT_EQ(c.find_worker("coreos9"), nullptr);
}

TEST(Config, DefaultsAreFilledByValidate) {
  const Config c = Valid("master: {host: 192.168.24.11}\n");
  EXPECT_EQ(c.master_name, "master");
  EXPECT_EQ(c.pod_cidr, "10.2.0.0/16");
  EXPECT_EQ(c.service_cidr, "10.3.0.0/24");
  EXPECT_EQ(c.dns_service_ip, "10.3.0.10");
  EXPECT_EQ(c.k8s_service_ip, "10.3.0.1");
  EXPECT_EQ(c.etcd_endpoints, std::vector<std::string>{"http://192.168.24.11:2379"});
  EXPECT_EQ(c.signer_url, "https://192.168.24.11:8443");
  // Defaults, not named: offline commands neither record nor name a CRL.
  EXPECT_FALSE(c.signer_url_named);
  EXPECT_FALSE(c.signer_store_named);
  EXPECT_EQ(c.key_algorithm, "rsa-2048");
  EXPECT_TRUE(c.workers.empty());
}

TEST(Config, ApiserverUrlFollowsTheFlavor) {
  EXPECT_EQ(Valid(With("flavor: modern", "flavor: coreos-2016")).apiserver_url(),
            "https://192.168.24.11");  // the seed's --secure-port=443
  const Config v6 = Valid(With("host: 192.168.24.11", "host: fd00::11"));
  EXPECT_EQ(v6.apiserver_url(), "https://[fd00::11]:6443");
  EXPECT_EQ(v6.signer_url, "https://192.168.24.11:8443");  // given in the YAML
}

TEST(ConfigValidation, CidrsParse) {
  ExpectErrors({
      {"pod_cidr: 10.2.0.0/16", "pod_cidr: 10.2.0.0/33",
       R"(network.pod_cidr: "10.2.0.0/33" is not a CIDR range like 10.2.0.0/16)"},
      {"pod_cidr: 10.2.0.0/16", "pod_cidr: 10.2.0.0",
       R"(network.pod_cidr: "10.2.0.0" is not a CIDR range like 10.2.0.0/16)"},
      {"service_cidr: 10.3.0.0/24", "service_cidr: ten/24",
       R"(network.service_cidr: "ten/24" is not a CIDR range like 10.2.0.0/16)"},
      {"service_cidr: 10.3.0.0/24", "service_cidr: 10.3.0.0/",
       R"(network.service_cidr: "10.3.0.0/" is not a CIDR range like 10.2.0.0/16)"},
  });
}

TEST(ConfigValidation, CidrsHaveZeroHostBits) {
  ExpectErrors({
      {"pod_cidr: 10.2.0.0/16", "pod_cidr: 10.2.0.1/16",
       R"(network.pod_cidr: "10.2.0.1/16" has host bits set (did you mean 10.2.0.0/16?))"},
      {"service_cidr: 10.3.0.0/24", "service_cidr: 10.3.0.1/24",
       R"(network.service_cidr: "10.3.0.1/24" has host bits set (did you mean 10.3.0.0/24?))"},
  });
}

TEST(ConfigValidation, PodAndServiceRangesDoNotOverlap) {
  ExpectErrors({
      {"service_cidr: 10.3.0.0/24", "service_cidr: 10.2.3.0/24",
       "network.service_cidr: 10.2.3.0/24 overlaps network.pod_cidr 10.2.0.0/16"},
      {"pod_cidr: 10.2.0.0/16", "pod_cidr: 10.0.0.0/8",
       "network.service_cidr: 10.3.0.0/24 overlaps network.pod_cidr 10.0.0.0/8"},
      {"pod_cidr: 10.2.0.0/16", "pod_cidr: 10.3.0.0/24",
       "network.service_cidr: 10.3.0.0/24 overlaps network.pod_cidr 10.3.0.0/24"},
  });
  // Adjacent ranges do not overlap.
  ExpectValid({{"pod_cidr: 10.2.0.0/16", "pod_cidr: 10.3.1.0/24", ""}});
}

TEST(ConfigValidation, ServiceRangeIsNoLargerThanSlash12) {
  ExpectErrors({
      {"service_cidr: 10.3.0.0/24", "service_cidr: 10.32.0.0/11",
       "network.service_cidr: 10.32.0.0/11 is larger than /12 (the API server's limit)"},
  });
  EXPECT_EQ(ErrorOf(With("dns_service_ip: 10.3.0.10", "dns_service_ip: 10.16.0.10",
                         With("service_cidr: 10.3.0.0/24", "service_cidr: 10.16.0.0/12"))),
            "OK");
  // IPv6: the same 20 host bits, /108.
  const std::string v6 = With("dns_service_ip: 10.3.0.10", "dns_service_ip: fd00:10:96::a",
                              With("pod_cidr: 10.2.0.0/16", "pod_cidr: fd00:10:244::/56"));
  EXPECT_EQ(ErrorOf(With("service_cidr: 10.3.0.0/24", "service_cidr: fd00:10:96::/107", v6)),
            "network.service_cidr: fd00:10:96::/107 is larger than /108 (the API server's limit)");
  const Config c = Valid(With("service_cidr: 10.3.0.0/24", "service_cidr: fd00:10:96::/108", v6));
  EXPECT_EQ(c.k8s_service_ip, "fd00:10:96::1");
}

TEST(ConfigValidation, K8sServiceIpIfGivenIsTheFirstIp) {
  const std::string dns = "dns_service_ip: 10.3.0.10";
  ExpectErrors({
      {dns, dns + "\n  k8s_service_ip: 10.3.0.2",
       "network.k8s_service_ip: 10.3.0.2 must be the first IP of 10.3.0.0/24, 10.3.0.1"},
      {dns, dns + "\n  k8s_service_ip: 10.3.0.0",
       "network.k8s_service_ip: 10.3.0.0 must be the first IP of 10.3.0.0/24, 10.3.0.1"},
      {dns, dns + "\n  k8s_service_ip: kubernetes",
       R"(network.k8s_service_ip: "kubernetes" is not an IP address)"},
  });
  EXPECT_EQ(Valid(With(dns, dns + "\n  k8s_service_ip: 10.3.0.1")).k8s_service_ip, "10.3.0.1");
  EXPECT_EQ(Valid(With("service_cidr: 10.3.0.0/24", "service_cidr: 10.3.0.128/25",
                       With(dns, "dns_service_ip: 10.3.0.138")))
                .k8s_service_ip,
            "10.3.0.129");
}

TEST(ConfigValidation, DnsIpIsInsideTheServiceRangeAndNotReserved) {
  const std::string dns = "dns_service_ip: 10.3.0.10";
  const std::string reserved =
      " is the network, first or broadcast address of 10.3.0.0/24; pick "
      "another, such as the tenth";
  ExpectErrors({
      {dns, "dns_service_ip: 10.4.0.10",
       "network.dns_service_ip: 10.4.0.10 is outside network.service_cidr 10.3.0.0/24"},
      {dns, "dns_service_ip: 10.2.0.10",
       "network.dns_service_ip: 10.2.0.10 is outside network.service_cidr 10.3.0.0/24"},
      {dns, "dns_service_ip: fd00::a",
       "network.dns_service_ip: fd00::a is outside network.service_cidr 10.3.0.0/24"},
      {dns, "dns_service_ip: 10.3.0.0", "network.dns_service_ip: 10.3.0.0" + reserved},
      {dns, "dns_service_ip: 10.3.0.1", "network.dns_service_ip: 10.3.0.1" + reserved},
      {dns, "dns_service_ip: 10.3.0.255", "network.dns_service_ip: 10.3.0.255" + reserved},
      {dns, "dns_service_ip: dns", R"(network.dns_service_ip: "dns" is not an IP address)"},
  });
  ExpectValid({{dns, "dns_service_ip: 10.3.0.2", ""}, {dns, "dns_service_ip: 10.3.0.254", ""}});
}

TEST(ConfigValidation, MasterEtcdAndWorkerIpsLieOutsideBothRanges) {
  ExpectErrors({
      {"host: 192.168.24.11", "host: 10.2.0.5",
       "master.host: 10.2.0.5 lies inside network.pod_cidr 10.2.0.0/16"},
      {"host: 192.168.24.11", "host: 10.3.0.20",
       "master.host: 10.3.0.20 lies inside network.service_cidr 10.3.0.0/24"},
      {"http://192.168.24.12:2379]", "http://10.3.0.20:2379]",
       "etcd.endpoints[1]: 10.3.0.20 lies inside network.service_cidr 10.3.0.0/24"},
      {"http://192.168.24.12:2379]", "https://10.2.7.7]",
       "etcd.endpoints[1]: 10.2.7.7 lies inside network.pod_cidr 10.2.0.0/16"},
      {"http://192.168.24.12:2379]", "192.168.24.12:2379]",
       R"(etcd.endpoints[1]: "192.168.24.12:2379" is not an http:// or https:// URL)"},
      {"ip: 192.168.24.13", "ip: 10.2.1.1",
       "workers[1].ip: 10.2.1.1 lies inside network.pod_cidr 10.2.0.0/16"},
      {"ip: 192.168.24.13", "ip: 10.3.0.77",
       "workers[1].ip: 10.3.0.77 lies inside network.service_cidr 10.3.0.0/24"},
  });
  // Host names in etcd endpoints are not checked against the ranges.
  ExpectValid({{"http://192.168.24.12:2379]", "https://etcd.example.com:2379]", ""}});
}

TEST(ConfigValidation, WorkerNamesAndIpsAreUnique) {
  ExpectErrors({
      {"name: coreos3", "name: coreos2", R"(workers[1].name: "coreos2" is used twice)"},
      {"ip: 192.168.24.13", "ip: 192.168.24.12", "workers[1].ip: 192.168.24.12 is used twice"},
      // The master's kubelet has the same files a worker of that name would have.
      {"name: coreos2", "name: coreos1", R"(workers[0].name: "coreos1" is used twice)"},
      {"ip: 192.168.24.12}", "ip: 192.168.24.11}", "workers[0].ip: 192.168.24.11 is used twice"},
  });
}

TEST(ConfigValidation, NamesAreDnsNamesSafeAsFileNames) {
  const std::string why = R"(" is not a valid DNS name (lower-case letters, digits, '-' and '.'))";
  ExpectErrors({
      {"name: coreos2", "name: ../etc", R"(workers[0].name: "../etc)" + why},
      {"name: coreos2", "name: a/b", R"(workers[0].name: "a/b)" + why},
      {"name: coreos2", "name: Coreos2", R"(workers[0].name: "Coreos2)" + why},
      {"name: coreos2", "name: core_os2", R"(workers[0].name: "core_os2)" + why},
      {"name: coreos1", "name: x..y", R"(master.name: "x..y)" + why},
      {"name: coreos1", "name: /etc/passwd", R"(master.name: "/etc/passwd)" + why},
      {"name: kubernetes", "name: my cluster", R"(cluster.name: "my cluster)" + why},
      {"domain: cluster.local", "domain: cluster..local",
       R"(cluster.domain: "cluster..local)" + why},
      {"[api.example.com, 203.0.113.7]", "[api.example.com, bad/name]",
       R"(master.extra_sans[1]: "bad/name)" + why},
  });
}

TEST(ConfigValidation, RequiredValues) {
  ExpectErrors({
      {"  host: 192.168.24.11\n", "", "master.host: is required (the seed's MASTER_HOST)"},
      {"host: 192.168.24.11", "host: coreos1", R"(master.host: "coreos1" is not an IP address)"},
      {"{name: coreos3, ip: 192.168.24.13}", "{name: coreos3}", "workers[1].ip: is required"},
      {"{name: coreos3, ip: 192.168.24.13}", "{ip: 192.168.24.13}", "workers[1].name: is required"},
      {"{name: coreos3, ip: 192.168.24.13}", "{name: coreos3, ip: node3}",
       R"(workers[1].ip: "node3" is not an IP address)"},
  });
  EXPECT_EQ(ErrorOf(""), "master.host: is required (the seed's MASTER_HOST)");
}

TEST(ConfigValidation, UnknownFieldsAndWrongShapes) {
  ExpectErrors({
      {"name: kubernetes", "nmae: kubernetes", "cluster.nmae: unknown field"},
      {"pki:", "nodes: {}\npki:", "nodes: unknown section"},
      {"{name: coreos3, ip: 192.168.24.13}", "{name: coreos3, ip: 192.168.24.13, role: x}",
       "workers[1].role: unknown field"},
      {"  dns_service_ip: 10.3.0.10", "  dns_service_ip: 10.3.0.10\n  dns_ip: 10.3.0.10",
       "network.dns_ip: unknown field"},
      {"flavor: modern", "flavor: vintage",
       R"(cluster.flavor: "vintage" is not a flavor (modern or coreos-2016))"},
      {"name: kubernetes", "name: [a, b]", "cluster.name: must be a single value"},
      {"extra_sans: [api.example.com, 203.0.113.7]", "extra_sans: {a: b}",
       "master.extra_sans: must be a list"},
      {"  - {name: coreos2, ip: 192.168.24.12}\n  - {name: coreos3, ip: 192.168.24.13}\n",
       "  coreos2: 192.168.24.12\n", "workers: must be a list of {name, ip}"},
      {"  - {name: coreos3, ip: 192.168.24.13}", "  - coreos3",
       "workers[1]: must be a mapping with name and ip"},
  });
  EXPECT_EQ(ErrorOf("master: 192.168.24.11\n"), "master: must be a mapping");
}

TEST(ConfigValidation, KeyAlgorithm) {
  const std::string why = R"(" is not one of rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, )"
                          "ecdsa-p384, ed25519";
  ExpectErrors({
      {"key_algorithm: ecdsa-p256", "key_algorithm: rsa-1024",
       R"(pki.key_algorithm: "rsa-1024)" + why},
      {"key_algorithm: ecdsa-p256", "key_algorithm: RSA-2048",
       R"(pki.key_algorithm: "RSA-2048)" + why},
      {"key_algorithm: ecdsa-p256", "key_algorithm: ecdsa-p521",
       R"(pki.key_algorithm: "ecdsa-p521)" + why},
  });
  for (const char* a :
       {"rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384", "ed25519"}) {
    EXPECT_EQ(
        Valid(With("key_algorithm: ecdsa-p256", std::string("key_algorithm: ") + a)).key_algorithm,
        a);
  }
}

TEST(ConfigValidation, Durations) {
  ExpectErrors({
      {"ca_validity: 87600h", "ca_validity: 10y",
       R"(pki.ca_validity: duration "10y" has unknown unit 'y' (use d, h, m or s))"},
      {"cert_validity: 8760h", "cert_validity: h",
       R"(pki.cert_validity: duration "h" is not like 8760h, 30m or 90s)"},
      {"cert_validity: 8760h", "cert_validity: 8760",
       R"(pki.cert_validity: duration "8760" is not like 8760h, 30m or 90s)"},
      {"cert_validity: 8760h", "cert_validity: -1h",
       R"(pki.cert_validity: duration "-1h" is not like 8760h, 30m or 90s)"},
      {"cert_validity: 8760h", "cert_validity: 0h",
       R"(pki.cert_validity: duration "0h" must be positive)"},
      {"cert_validity: 8760h", R"(cert_validity: "")", "pki.cert_validity: empty duration"},
      // Larger would overflow the clock: the CA's notAfter used to wrap into the past.
      {"ca_validity: 87600h", "ca_validity: 9999999h",
       R"(pki.ca_validity: duration "9999999h" is longer than 100 years (876000h))"},
      {"cert_validity: 8760h", "cert_validity: 87601h",
       "pki.cert_validity: is longer than pki.ca_validity"},
  });
  const Config c = Valid(With("cert_validity: 8760h", "cert_validity: 1d12h30m15s"));
  EXPECT_EQ(c.cert_validity, std::chrono::seconds(86400 + 12 * 3600 + 30 * 60 + 15));
}

TEST(ParseDuration, UnitsAndLimits) {
  EXPECT_EQ(parse_duration("87600h"), std::chrono::hours(87600));
  EXPECT_EQ(parse_duration("1h30m"), std::chrono::minutes(90));
  EXPECT_EQ(parse_duration("90s"), std::chrono::seconds(90));
  EXPECT_EQ(parse_duration("2d"), std::chrono::hours(48));
  EXPECT_EQ(parse_duration("876000h"), std::chrono::hours(876000));  // 100 years: the limit
  EXPECT_THROW(parse_duration("876001h"), InputError);
  EXPECT_THROW(parse_duration("999999999d999999999d"), InputError);
  EXPECT_THROW(parse_duration("1234567890s"), InputError);  // more than 9 digits
  EXPECT_THROW(parse_duration("1.5h"), InputError);
  EXPECT_THROW(parse_duration("1h "), InputError);
  EXPECT_EQ(format_duration(std::chrono::hours(8760)), "1y");
  EXPECT_EQ(format_duration(std::chrono::hours(48)), "2d");
  EXPECT_EQ(format_duration(std::chrono::minutes(90)), "1h");
  EXPECT_EQ(format_duration(std::chrono::seconds(-120)), "-2m");
}

TEST(ConfigValidation, Signer) {
  ExpectErrors({
      {"url: https://192.168.24.11:8443", "url: http://192.168.24.11:8443",
       R"(signer.url: "http://192.168.24.11:8443" must be an https:// URL)"},
      {"store: sqlite:/var/lib/kubeca/kubeca.db", "store: mysql://db",
       R"(signer.store: "mysql://db" must be sqlite:PATH or etcd:URL[,URL...])"},
  });
}

TEST(ConfigValidation, SignerUrls) {
  const std::string url = "url: https://192.168.24.11:8443";
  auto urls = [&](const std::string& list) { return url + "\n  urls: " + list; };
  ExpectErrors({
      {url, urls("[https://m1:8443, http://m2:8443]"),
       R"(signer.urls[1]: "http://m2:8443" must be an https:// URL)"},
      {url, urls("[m1:8443]"), R"(signer.urls[0]: "m1:8443" must be an https:// URL)"},
      {url, urls("[https://:8443]"), R"(signer.urls[0]: "https://:8443" has no host)"},
      {url, urls("[https://m1]"),
       R"(signer.urls[0]: "https://m1" has no port (https://HOST:PORT))"},
      {url, urls("[https://m1:0]"),
       R"(signer.urls[0]: "https://m1:0": port "0" is not a number from 1 to 65535)"},
      {url, urls("[https://m1:99999]"),
       R"(signer.urls[0]: "https://m1:99999": port "99999" is not a number from 1 to 65535)"},
      {url, urls("[https://m1:8443/v1]"),
       R"(signer.urls[0]: "https://m1:8443/v1" must be https://HOST:PORT, without a path)"},
      {url, urls("[https://m_1:8443]"),
       R"(signer.urls[0]: "https://m_1:8443": "m_1" is neither an IP address nor a DNS name)"},
      {url, urls("[https://m1:8443, https://m1:8443/]"),
       R"(signer.urls[1]: "https://m1:8443/" is listed twice)"},
      {url, urls("[\"https://[fd00::1]:8443\", \"https://[fd00:0::1]:8443\"]"),
       R"(signer.urls[1]: "https://[fd00:0::1]:8443" is listed twice)"},
      {url, urls("{a: b}"), "signer.urls: must be a list"},
      // signer.url is the default replica: it follows the same rules.
      {url, "url: https://192.168.24.11",
       R"(signer.url: "https://192.168.24.11" has no port (https://HOST:PORT))"},
  });
  ExpectValid({
      {url,
       urls("[https://m1:8443, https://m2:8443, \"https://[fd00::3]:8443\", "
            "https://10.0.0.4:9443/]"),
       ""},
      {url, urls("https://m1:8443,https://m2:8443"), ""},  // a comma-separated string
  });
  const Config c = Valid(With(url, urls("[https://m1.example.com:8443, https://10.0.0.2:8443]")));
  EXPECT_EQ(c.signer_urls,
            (std::vector<std::string>{"https://m1.example.com:8443", "https://10.0.0.2:8443"}));
  EXPECT_EQ(c.signer_url, "https://192.168.24.11:8443");  // the CRL's URL stays its own
  EXPECT_EQ(Valid(kBase).signer_urls, std::vector<std::string>{"https://192.168.24.11:8443"});
  Config plain = parse_config_yaml(With(url, "# no url"));  // the default URL
  validate(plain);
  EXPECT_EQ(plain.signer_urls, std::vector<std::string>{"https://192.168.24.11:8443"});
}

TEST(ConfigValidation, MalformedYamlNamesTheLine) {
  EXPECT_EQ(ErrorOf("cluster:\n  name: x\n\tdomain: y\n"),
            "cluster.yaml: line 3: illegal tab when looking for indentation");
  EXPECT_EQ(ErrorOf("master: {host: 192.168.24.11\n"),
            "cluster.yaml: line 2: end of map flow not found");
  EXPECT_EQ(ErrorOf("- master\n- network\n"), "cluster.yaml: the top level must be a mapping");
}

// Files on disk for load_config, removed at the end.
class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("kubeca-config-test"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::string LoadError(const std::string& yaml, const std::string& env) {
    try {
      load_config(yaml, env);
    } catch (const InputError& e) {
      return e.what();
    }
    return "OK";
  }
  fs::path dir_;
};

const char kSeedEnv[] = R"(# The seed's deployment options.
MASTER_HOST=192.168.24.11
ETCD_ENDPOINTS=http://192.168.24.11:2379,http://192.168.24.12:2379,http://192.168.24.13:2379,http://192.168.24.14:2379
POD_NETWORK=10.2.0.0/16
SERVICE_IP_RANGE=10.3.0.0/24
K8S_SERVICE_IP=10.3.0.1
DNS_SERVICE_IP=10.3.0.10
WORKER_IP=192.168.24.{12,13,14}
WORKER_FQDN=coreos{2,3,4}
)";

void ExpectSeedWorkers(const Config& c) {
  ASSERT_EQ(c.workers.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(c.workers[i].name, "coreos" + std::to_string(i + 2));
    EXPECT_EQ(c.workers[i].ip, "192.168.24." + std::to_string(i + 12));
  }
}

TEST(ApplyEnv, SeedVariablesWithBraceLists) {
  Config c;
  apply_env(c, kSeedEnv);
  EXPECT_EQ(c.master_host, "192.168.24.11");
  EXPECT_EQ(c.etcd_endpoints,
            (std::vector<std::string>{"http://192.168.24.11:2379", "http://192.168.24.12:2379",
                                      "http://192.168.24.13:2379", "http://192.168.24.14:2379"}));
  EXPECT_EQ(c.pod_cidr, "10.2.0.0/16");
  EXPECT_EQ(c.service_cidr, "10.3.0.0/24");
  EXPECT_EQ(c.k8s_service_ip, "10.3.0.1");
  EXPECT_EQ(c.dns_service_ip, "10.3.0.10");
  ExpectSeedWorkers(c);
  validate(c);
  EXPECT_EQ(c.k8s_service_ip, "10.3.0.1");
}

TEST(ApplyEnv, ShellSyntax) {
  Config c;
  apply_env(c,
            "  # comment\n\nexport MASTER_HOST=\"192.168.24.11\"\nMASTER_NAME='coreos1'\r\n"
            "WORKER_IP=192.168.24.12,192.168.24.13\nWORKER_FQDN=coreos2 coreos3\n"
            "CLUSTER_DOMAIN=example.local\n");
  EXPECT_EQ(c.master_host, "192.168.24.11");
  EXPECT_EQ(c.master_name, "coreos1");
  EXPECT_EQ(c.domain, "example.local");
  ASSERT_EQ(c.workers.size(), 2u);
  EXPECT_EQ(c.workers[1].name, "coreos3");
  EXPECT_EQ(c.workers[1].ip, "192.168.24.13");
}

TEST(ApplyEnv, Errors) {
  auto error = [](const std::string& text) -> std::string {
    Config c;
    try {
      apply_env(c, text);
    } catch (const InputError& e) {
      return e.what();
    }
    return "OK";
  };
  EXPECT_EQ(error("WORKER_IP=192.168.24.{12,13,14}\nWORKER_FQDN=coreos{2,3}\n"),
            "WORKER_FQDN: 2 names for 3 WORKER_IP addresses");
  EXPECT_EQ(error("WORKER_IP=192.168.24.12\n"), "WORKER_FQDN: 0 names for 1 WORKER_IP addresses");
  EXPECT_EQ(error("MASTER_HOST=192.168.24.11\nMASTR_HOST=1.2.3.4\n"),
            "MASTR_HOST: unknown variable in env file");
  EXPECT_EQ(error("MASTER_HOST=192.168.24.11\nPOD_NETWORK\n"),
            "env file: line 2: expected NAME=VALUE");
  EXPECT_EQ(error("=10.2.0.0/16\n"), "env file: line 1: expected NAME=VALUE");
}

TEST_F(ConfigFiles, EnvFileAloneValidates) {
  const Config c = load_config("", Write("seed.env", kSeedEnv));
  EXPECT_EQ(c.flavor, Flavor::kModern);
  EXPECT_EQ(c.k8s_service_ip, "10.3.0.1");
  ExpectSeedWorkers(c);
}

TEST_F(ConfigFiles, EnvFileOverridesTheYaml) {
  const Config c = load_config(Write("cluster.yaml", kBase),
                               Write("e.env",
                                     "DNS_SERVICE_IP=10.3.0.53\nWORKER_IP=192.168.24.20\n"
                                     "WORKER_FQDN=coreos9\n"));
  EXPECT_EQ(c.dns_service_ip, "10.3.0.53");
  ASSERT_EQ(c.workers.size(), 1u);
  EXPECT_EQ(c.workers[0].name, "coreos9");
  EXPECT_EQ(c.master_name, "coreos1");  // from the YAML
}

TEST_F(ConfigFiles, ErrorsNameTheEnvVariableTheValueCameFrom) {
  const std::string env = Write("bad.env", std::string(kSeedEnv) + "K8S_SERVICE_IP=10.3.0.2\n");
  EXPECT_EQ(LoadError("", env),
            "K8S_SERVICE_IP (network.k8s_service_ip): 10.3.0.2 must be the first IP of "
            "10.3.0.0/24, 10.3.0.1");
  EXPECT_EQ(LoadError("", Write("w.env", std::string(kSeedEnv) + "WORKER_IP=192.168.24.{12,13}\n"
                                                                 "WORKER_FQDN=coreos{2,2}\n")),
            R"(WORKER_FQDN (workers[1].name): "coreos2" is used twice)");
  EXPECT_EQ(LoadError("", Write("s.env", std::string(kSeedEnv) + "POD_NETWORK=10.3.0.0/16\n")),
            "SERVICE_IP_RANGE (network.service_cidr): 10.3.0.0/24 overlaps network.pod_cidr "
            "10.3.0.0/16");
  // A value from the YAML keeps the YAML field name.
  EXPECT_EQ(
      LoadError(Write("c.yaml", With("dns_service_ip: 10.3.0.10", "dns_service_ip: 10.9.0.1")),
                Write("m.env", "MASTER_HOST=192.168.24.11\n")),
      "network.dns_service_ip: 10.9.0.1 is outside network.service_cidr 10.3.0.0/24");
}

TEST_F(ConfigFiles, MalformedYamlNamesTheFileAndLine) {
  const std::string path = Write("broken.yaml", "cluster:\n  name: x\n\tdomain: y\n");
  EXPECT_EQ(LoadError(path, ""), path + ": line 3: illegal tab when looking for indentation");
  EXPECT_NE(LoadError((dir_ / "missing.yaml").string(), "").find("missing.yaml"),
            std::string::npos);
}

TEST(Examples, CoreOs2016) {
  const Config c = load_config((kExamples / "coreos-2016.yaml").string(), "");
  EXPECT_EQ(c.flavor, Flavor::kCoreos2016);
  EXPECT_EQ(c.master_host, "192.168.24.11");
  EXPECT_EQ(c.master_name, "coreos1");
  EXPECT_EQ(c.k8s_service_ip, "10.3.0.1");
  EXPECT_EQ(c.key_algorithm, "rsa-2048");
  EXPECT_EQ(c.ca_validity, std::chrono::hours(240000));  // openssl req -x509 -days 10000
  EXPECT_EQ(c.cert_validity, std::chrono::hours(8760));  // openssl x509 -days 365
  EXPECT_EQ(c.etcd_endpoints.size(), 4u);
  ExpectSeedWorkers(c);
}

TEST(Examples, Modern) {
  const Config c = load_config((kExamples / "modern.yaml").string(), "");
  EXPECT_EQ(c.flavor, Flavor::kModern);
  EXPECT_EQ(c.apiserver_url(), "https://192.168.24.11:6443");
  EXPECT_EQ(c.dns_service_ip, "10.3.0.10");
  ExpectSeedWorkers(c);
}

TEST(Examples, SeedEnv) {
  const Config c = load_config("", (kExamples / "seed.env").string());
  EXPECT_EQ(c.master_host, "192.168.24.11");
  EXPECT_EQ(c.master_name, "coreos1");
  EXPECT_EQ(c.pod_cidr, "10.2.0.0/16");
  EXPECT_EQ(c.service_cidr, "10.3.0.0/24");
  EXPECT_EQ(c.k8s_service_ip, "10.3.0.1");
  EXPECT_EQ(c.dns_service_ip, "10.3.0.10");
  EXPECT_EQ(c.etcd_endpoints.size(), 4u);
  ExpectSeedWorkers(c);
}

}  // namespace
}  // namespace kubeca

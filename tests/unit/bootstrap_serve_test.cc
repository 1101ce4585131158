// What `bootstrap master` lays down for the signing service (modern flavor): the hardened
// kubeca-serve.service, its config and PKI copies, and the node units that list every
// replica of signer.urls. The service itself runs in integration.bootstrap_serve.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "kubeca/bootstrap.h"
#include "kubeca/config.h"
#include "kubeca/fs.h"
#include "kubeca/pki.h"
#include "test_support.h"

namespace kubeca {
namespace {

namespace fs = std::filesystem;

const char kYaml[] = R"(cluster: {name: test, flavor: modern}
master: {host: 192.168.24.11, name: m1}
etcd: {endpoints: [https://192.168.24.11:2379]}
workers: [{name: w1, ip: 192.168.24.12}]
pki: {key_algorithm: ecdsa-p256}
signer:
  url: https://ca.example.com:8443
  urls: [https://m1.example.com:8443, https://10.0.0.2:8443, https://ca.example.com:8443]
)";

Config Parse(const std::string& yaml) {
  Config c = parse_config_yaml(yaml);
  validate(c);
  return c;
}

class BootstrapServe : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new fs::path(test::make_temp_dir("kubeca-bootstrap-serve"));
    init_pki(Parse(kYaml), *pki_, std::chrono::system_clock::now());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*pki_);
    delete pki_;
  }
  static std::map<std::string, HostFile> Plan(const std::string& yaml, Role role,
                                              const std::string& node = "",
                                              const std::string& given = "-") {
    BootstrapRequest r;
    r.role = role;
    r.node = node;
    r.pki = *pki_;
    r.config_yaml = given == "-" ? yaml : given;
    std::map<std::string, HostFile> out;
    for (auto& f : plan_files(Parse(yaml), r)) out[f.path] = f;
    return out;
  }
  // The unit's [Service] lines, "Key=value".
  static std::vector<std::string> Lines(const std::string& unit) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t nl; (nl = unit.find('\n', start)) != std::string::npos; start = nl + 1) {
      const std::string line = unit.substr(start, nl - start);
      if (!line.empty() && line[0] != '#') out.push_back(line);
    }
    return out;
  }
  static bool Has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }
  static fs::path* pki_;
};
fs::path* BootstrapServe::pki_ = nullptr;

const char kServe[] = "/etc/systemd/system/kubeca-serve.service";

TEST_F(BootstrapServe, ModernMasterGetsAHardenedServeUnitWithItsConfigAndPki) {
  const auto files = Plan(kYaml, Role::kMaster);
  ASSERT_TRUE(files.count(kServe));
  const auto lines = Lines(files.at(kServe).content);
  for (const char* want :
       {"ExecStart=/usr/local/bin/kubeca serve --config /etc/kubeca/cluster.yaml --pki "
        "/etc/kubeca/pki",
        "Restart=on-failure", "User=root", "CapabilityBoundingSet=", "NoNewPrivileges=yes",
        "ProtectSystem=strict", "ReadWritePaths=/etc/kubeca/pki", "PrivateTmp=yes",
        "StateDirectory=kubeca", "StateDirectoryMode=0700", "WantedBy=multi-user.target"}) {
    EXPECT_TRUE(Has(lines, want)) << want << " in\n" << files.at(kServe).content;
  }
  // The config serve reads is the operator's file, byte for byte, and private.
  EXPECT_EQ(files.at("/etc/kubeca/cluster.yaml").content, kYaml);
  EXPECT_EQ(files.at("/etc/kubeca/cluster.yaml").mode, 0600u);
  for (const char* f : {"ca", "signer"}) {
    const std::string cert = std::string("/etc/kubeca/pki/") + f + ".pem";
    const std::string key = std::string("/etc/kubeca/pki/") + f + "-key.pem";
    EXPECT_EQ(files.at(cert).content, read_file(*pki_ / (std::string(f) + ".pem")));
    EXPECT_EQ(files.at(key).content, read_file(*pki_ / (std::string(f) + "-key.pem")));
    EXPECT_EQ(files.at(key).mode, 0600u);
  }
}

TEST_F(BootstrapServe, TheStoreDecidesWhichFoldersServeMayWrite) {
  auto with_store = [](const std::string& store) {
    return std::string(kYaml) + "  store: \"" + store + "\"\n";
  };
  const std::string etcd =
      "etcd://192.168.24.11:2379,192.168.24.12:2379?ca=/etc/kubernetes/pki/etcd/ca.crt"
      "&cert=/etc/kubernetes/pki/apiserver-etcd-client.crt"
      "&key=/etc/kubernetes/pki/apiserver-etcd-client.key";
  auto files = Plan(with_store(etcd), Role::kMaster);
  auto lines = Lines(files.at(kServe).content);
  EXPECT_NE(files.at("/etc/kubeca/cluster.yaml").content.find(etcd), std::string::npos);
  for (const auto& l : lines) {
    EXPECT_EQ(l.rfind("StateDirectory", 0), std::string::npos) << l;
    if (l.rfind("ReadWritePaths=", 0) == 0) {
      EXPECT_EQ(l, "ReadWritePaths=/etc/kubeca/pki");
    }
  }
  lines = Lines(Plan(with_store("sqlite:/srv/ca/kubeca.db"), Role::kMaster).at(kServe).content);
  EXPECT_TRUE(Has(lines, "ReadWritePaths=/srv/ca"));
  EXPECT_FALSE(Has(lines, "StateDirectory=kubeca"));
  lines = Lines(
      Plan(with_store("sqlite:/var/lib/kubeca/ha/kubeca.db"), Role::kMaster).at(kServe).content);
  EXPECT_TRUE(Has(lines, "StateDirectory=kubeca/ha"));
  try {
    Plan(with_store("sqlite:kubeca.db"), Role::kMaster);
    ADD_FAILURE() << "a relative store path was accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "signer.store: \"sqlite:kubeca.db\" must be an absolute path for "
              "kubeca-serve.service on the master");
  }
}

TEST_F(BootstrapServe, WithoutTheConfigFileTheMasterIsRefused) {
  try {
    Plan(kYaml, Role::kMaster, "", "");
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "--config: bootstrap master (flavor modern) copies cluster.yaml to "
              "/etc/kubeca/cluster.yaml for kubeca-serve.service; an --env-file alone is not "
              "enough");
  }
  // --flavor modern over a coreos-2016 file: serve would read the other flavor.
  std::string seed_file = kYaml;
  seed_file.replace(seed_file.find("modern"), 6, "coreos-2016");
  try {
    Plan(kYaml, Role::kMaster, "", seed_file);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "--flavor: modern is not the flavor of the --config file, which the master's "
              "kubeca-serve.service reads from /etc/kubeca/cluster.yaml; set cluster.flavor "
              "there");
  }
  // A worker runs no signer: it needs no copy of the config; nor does the seed's master.
  EXPECT_FALSE(Plan(kYaml, Role::kWorker, "w1", "").count(kServe));
  std::string coreos = kYaml;
  coreos.replace(coreos.find("modern"), 6, "coreos-2016");
  const auto seed = Plan(coreos, Role::kMaster, "", "");
  EXPECT_FALSE(seed.count(kServe));
  EXPECT_FALSE(seed.count("/etc/kubeca/cluster.yaml"));
}

TEST_F(BootstrapServe, NodeUnitsListEveryReplica) {
  const std::string servers =
      "--server https://m1.example.com:8443,https://10.0.0.2:8443,https://ca.example.com:8443 ";
  for (const auto& [role, node] :
       std::vector<std::pair<Role, std::string>>{{Role::kMaster, ""}, {Role::kWorker, "w1"}}) {
    const auto files = Plan(kYaml, role, node);
    for (const char* unit : {"/etc/systemd/system/kubeca-request.service",
                             "/etc/systemd/system/kubeca-renew.service"}) {
      EXPECT_NE(files.at(unit).content.find(servers), std::string::npos) << unit << ":\n"
                                                                         << files.at(unit).content;
    }
    EXPECT_EQ(files.count("/etc/kubeca/pki/ca-key.pem"), role == Role::kMaster ? 1u : 0u);
  }
}

}  // namespace
}  // namespace kubeca

#include "kubeca/kubeconfig.h"

#include <botan/base64.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>

#include "kubeca/fs.h"
#include "test_support.h"

namespace kubeca {
namespace {

std::string decode(const YAML::Node& n) {
  const auto bytes = Botan::base64_decode(n.as<std::string>());
  return std::string(bytes.begin(), bytes.end());
}

std::string pem(const std::string& label, size_t size, char fill) {
  std::string body;
  for (size_t i = 0; i < size; ++i) body += (i % 64 == 63) ? '\n' : fill;
  return "-----BEGIN " + label + "-----\n" + body + "\n-----END " + label + "-----\n";
}

KubeconfigSpec spec(const std::string& cluster, const std::string& user) {
  return {cluster,
          "https://10.0.0.1:6443",
          pem("CERTIFICATE", 900, 'A'),
          user,
          pem("CERTIFICATE", 700, 'B'),
          pem("PRIVATE KEY", 1700, 'C'),
          "",
          "",
          ""};
}

TEST(Kubeconfig, EmbeddedDataDecodesToThePems) {
  const KubeconfigSpec s = spec("kubernetes", "system:node:w1");
  const std::string doc = render_kubeconfig(s);
  const YAML::Node root = YAML::Load(doc);
  EXPECT_EQ(root["kind"].as<std::string>(), "Config");
  EXPECT_EQ(root["current-context"].as<std::string>(), "system:node:w1@kubernetes");
  const YAML::Node cluster = root["clusters"][0]["cluster"];
  EXPECT_EQ(cluster["server"].as<std::string>(), "https://10.0.0.1:6443");
  EXPECT_EQ(decode(cluster["certificate-authority-data"]), s.ca_pem);
  const YAML::Node user = root["users"][0]["user"];
  EXPECT_EQ(decode(user["client-certificate-data"]), s.client_cert_pem);
  EXPECT_EQ(decode(user["client-key-data"]), s.client_key_pem);
  EXPECT_EQ(doc.find("kubeca-blob"), std::string::npos);
  EXPECT_EQ(render_kubeconfig(s), doc);  // deterministic
}

TEST(Kubeconfig, NamesThatNeedQuotingStayIntact) {
  // Names are emitted by yaml-cpp (quoted as needed); only the base64 blobs are put in after.
  const KubeconfigSpec s = spec("kubeca-blob: x", "kubeca-blob");
  const YAML::Node root = YAML::Load(render_kubeconfig(s));
  EXPECT_EQ(root["clusters"][0]["name"].as<std::string>(), "kubeca-blob: x");
  EXPECT_EQ(root["users"][0]["name"].as<std::string>(), "kubeca-blob");
  EXPECT_EQ(decode(root["clusters"][0]["cluster"]["certificate-authority-data"]), s.ca_pem);
  EXPECT_EQ(decode(root["users"][0]["user"]["client-key-data"]), s.client_key_pem);
}

TEST(Kubeconfig, EmptyDataIsAnEmptyStringNotNull) {
  KubeconfigSpec s = spec("kubernetes", "admin");
  s.ca_pem = "";
  const std::string doc = render_kubeconfig(s);
  EXPECT_NE(doc.find("certificate-authority-data: \"\"\n"), std::string::npos) << doc;
  const YAML::Node ca = YAML::Load(doc)["clusters"][0]["cluster"]["certificate-authority-data"];
  EXPECT_TRUE(ca.IsScalar());
  EXPECT_EQ(ca.as<std::string>(), "");
  EXPECT_EQ(decode(YAML::Load(doc)["users"][0]["user"]["client-key-data"]), s.client_key_pem);
}

TEST(Kubeconfig, FileReferencesReadBack) {
  const std::filesystem::path dir = test::make_temp_dir("kubeca-kubeconfig-test");
  KubeconfigSpec s = spec("kubernetes", "system:node:w1");
  write_file_atomic(dir / "ca.pem", s.ca_pem);
  write_file_atomic(dir / "w1.pem", s.client_cert_pem);
  write_file_atomic(dir / "w1-key.pem", s.client_key_pem, 0600);
  s.ca_file = "ca.pem";
  s.client_cert_file = "w1.pem";
  s.client_key_file = "w1-key.pem";
  const std::string doc = render_kubeconfig(s);
  EXPECT_EQ(doc.find("-data"), std::string::npos);
  write_file_atomic(dir / "kubelet.conf", doc, 0600);
  const KubeconfigCredentials c = read_kubeconfig((dir / "kubelet.conf").string());
  EXPECT_EQ(c.server, "https://10.0.0.1:6443");
  EXPECT_EQ(c.ca_pem, s.ca_pem);
  EXPECT_EQ(c.client_cert_pem, s.client_cert_pem);
  EXPECT_EQ(c.client_key_pem, s.client_key_pem);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kubeca

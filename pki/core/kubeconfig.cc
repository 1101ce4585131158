#include "kubeca/kubeconfig.h"

#include <botan/base64.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "kubeca/config.h"
#include "kubeca/fs.h"

namespace kubeca {

namespace {
std::string b64(const std::string& s) {
  return Botan::base64_encode(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// yaml-cpp scans every scalar it emits to choose a style: for the three base64 blobs that was
// most of the time init spent on kubeconfigs. Base64 is always emitted plain (its alphabet has
// no YAML indicator), so the emitter gets a short stand-in and the blob goes in afterwards.
constexpr const char* kBlob = "kubeca-blob";
// An empty blob goes through the emitter, which quotes it ("") where a bare key would be null.
std::string blob_or_stand_in(const std::string& pem) { return pem.empty() ? "" : kBlob; }
void put_blob(std::string& doc, const std::string& key, const std::string& pem) {
  if (pem.empty()) return;
  const std::string stand_in = key + ": " + kBlob + "\n";
  const size_t at = doc.find(stand_in);
  if (at == std::string::npos) throw std::logic_error("kubeconfig: no " + key + " stand-in");
  doc.replace(at, stand_in.size(), key + ": " + b64(pem) + "\n");
}
}  // namespace

std::string render_kubeconfig(const KubeconfigSpec& s) {
  const std::string context = s.user + "@" + s.cluster_name;
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "apiVersion" << YAML::Value << "v1";
  out << YAML::Key << "kind" << YAML::Value << "Config";
  out << YAML::Key << "clusters" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << s.cluster_name;
  out << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
  if (s.ca_file.empty()) {
    out << YAML::Key << "certificate-authority-data" << YAML::Value << blob_or_stand_in(s.ca_pem);
  } else {
    out << YAML::Key << "certificate-authority" << YAML::Value << s.ca_file;
  }
  out << YAML::Key << "server" << YAML::Value << s.server;
  out << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  out << YAML::Key << "contexts" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << context;
  out << YAML::Key << "context" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "cluster" << YAML::Value << s.cluster_name;
  out << YAML::Key << "user" << YAML::Value << s.user;
  out << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  out << YAML::Key << "current-context" << YAML::Value << context;
  out << YAML::Key << "preferences" << YAML::Value << YAML::BeginMap << YAML::EndMap;
  out << YAML::Key << "users" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << s.user;
  out << YAML::Key << "user" << YAML::Value << YAML::BeginMap;
  if (s.client_cert_file.empty()) {
    out << YAML::Key << "client-certificate-data" << YAML::Value
        << blob_or_stand_in(s.client_cert_pem);
    out << YAML::Key << "client-key-data" << YAML::Value << blob_or_stand_in(s.client_key_pem);
  } else {
    out << YAML::Key << "client-certificate" << YAML::Value << s.client_cert_file;
    out << YAML::Key << "client-key" << YAML::Value << s.client_key_file;
  }
  out << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  out << YAML::EndMap;
  std::string doc = std::string(out.c_str()) + "\n";
  if (s.ca_file.empty()) put_blob(doc, "certificate-authority-data", s.ca_pem);
  if (s.client_cert_file.empty()) {
    put_blob(doc, "client-certificate-data", s.client_cert_pem);
    put_blob(doc, "client-key-data", s.client_key_pem);
  }
  return doc;
}

KubeconfigCredentials read_kubeconfig(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw InputError(path + ": " + e.what());
  }
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  auto find = [&](const char* list, const std::string& name) -> YAML::Node {
    for (const auto& item : root[list]) {
      if (item["name"] && item["name"].as<std::string>() == name) return item;
    }
    throw InputError(path + ": no " + std::string(list) + " entry named \"" + name + "\"");
  };
  auto data = [&](const YAML::Node& n, const std::string& key) -> std::string {
    if (n[key + "-data"]) {
      const auto bytes = Botan::base64_decode(n[key + "-data"].as<std::string>());
      return std::string(bytes.begin(), bytes.end());
    }
    if (n[key]) {
      std::filesystem::path p = n[key].as<std::string>();
      return read_file(p.is_absolute() ? p : base / p);
    }
    return "";
  };
  try {
    const std::string current = root["current-context"].as<std::string>("");
    if (current.empty()) throw InputError(path + ": no current-context");
    const YAML::Node ctx = find("contexts", current)["context"];
    const YAML::Node cluster = find("clusters", ctx["cluster"].as<std::string>())["cluster"];
    const YAML::Node user = find("users", ctx["user"].as<std::string>())["user"];
    KubeconfigCredentials c;
    c.server = cluster["server"].as<std::string>("");
    c.ca_pem = data(cluster, "certificate-authority");
    c.client_cert_pem = data(user, "client-certificate");
    c.client_key_pem = data(user, "client-key");
    return c;
  } catch (const YAML::Exception& e) {
    throw InputError(path + ": " + e.what());
  }
}

}  // namespace kubeca

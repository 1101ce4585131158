#include "kubeca/apply.h"

#include <botan/base64.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "kubeca/fs.h"

namespace kubeca {

namespace fs = std::filesystem;
using nlohmann::json;

std::string flannel_network_config(const Config& config) {
  return "{\"Network\":\"" + config.pod_cidr + "\",\"Backend\":{\"Type\":\"vxlan\"}}";
}

namespace {

struct Tls {
  fs::path ca, cert, key;
};

// A client for base_url ("http://127.0.0.1:2379"); https uses the CA and client pair.
std::unique_ptr<httplib::Client> client_for(const std::string& base_url, const Tls& tls) {
  std::unique_ptr<httplib::Client> c;
  if (base_url.rfind("https://", 0) == 0) {
    for (const auto& p : {tls.ca, tls.cert, tls.key}) {
      if (p.empty() || !file_exists(p)) {
        throw InputError(base_url + " is https: --pki must hold " +
                         (p.empty() ? std::string("the client credentials") : p.string()));
      }
    }
    c = std::make_unique<httplib::Client>(base_url, tls.cert.string(), tls.key.string());
    c->set_ca_cert_path(tls.ca.string());
    c->enable_server_certificate_verification(true);
  } else {
    c = std::make_unique<httplib::Client>(base_url);
  }
  c->set_connection_timeout(3);
  c->set_read_timeout(10);
  c->set_write_timeout(10);
  return c;
}

std::string strip_path(std::string url) {
  const size_t scheme = url.find("://");
  const size_t slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return slash == std::string::npos ? url : url.substr(0, slash);
}

std::string form_escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

std::string b64(const std::string& s) {
  return Botan::base64_encode(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// etcd v2 keys API: PUT with prevExist=false creates or answers 412 "Key already exists".
bool put_if_absent_v2(httplib::Client& c, const std::string& key, const std::string& value) {
  auto res = c.Put(("/v2/keys" + key + "?prevExist=false").c_str(), "value=" + form_escape(value),
                   "application/x-www-form-urlencoded");
  if (!res) throw std::runtime_error(httplib::to_string(res.error()));
  if (res->status == 201) return true;
  if (res->status == 412) return false;
  throw std::runtime_error("etcd v2 answered " + std::to_string(res->status) + ": " + res->body +
                           (res->status == 404 ? " (is etcd running with --enable-v2?)" : ""));
}

// etcd v3 JSON gateway: a transaction that puts only while the key's create revision is 0.
bool put_if_absent_v3(httplib::Client& c, const std::string& key, const std::string& value) {
  const json txn = {
      {"compare",
       {{{"key", b64(key)}, {"result", "EQUAL"}, {"target", "CREATE"}, {"create_revision", "0"}}}},
      {"success", {{{"request_put", {{"key", b64(key)}, {"value", b64(value)}}}}}}};
  auto res = c.Post("/v3/kv/txn", txn.dump(), "application/json");
  if (!res) throw std::runtime_error(httplib::to_string(res.error()));
  if (res->status != 200) {
    throw std::runtime_error("etcd v3 answered " + std::to_string(res->status) + ": " + res->body);
  }
  const json body = json::parse(res->body, nullptr, false);
  if (body.is_discarded()) throw std::runtime_error("etcd v3 answered with no JSON: " + res->body);
  return body.value("succeeded", false);  // proto3 JSON leaves false out
}

void wait_for_api(httplib::Client& c, const std::string& url, const ApplyOptions& o) {
  const auto deadline = std::chrono::steady_clock::now() + o.api_timeout;
  std::string last = "no answer";
  for (;;) {
    if (auto res = c.Get("/version")) {
      if (res->status == 200) return;
      last = "HTTP " + std::to_string(res->status);
    } else {
      last = httplib::to_string(res.error());
    }
    if (std::chrono::steady_clock::now() + o.poll_interval > deadline) break;
    std::this_thread::sleep_for(o.poll_interval);
  }
  throw std::runtime_error("the API server at " + url + " did not answer /version within " +
                           std::to_string(o.api_timeout.count() / 1000) + "s (last: " + last + ")");
}

// POST that treats 409 AlreadyExists as success: re-running apply is harmless.
std::string create(httplib::Client& c, const std::string& path, const json& body) {
  auto res = c.Post(path.c_str(), body.dump(), "application/json");
  if (!res) throw std::runtime_error("POST " + path + ": " + httplib::to_string(res.error()));
  if (res->status == 200 || res->status == 201 || res->status == 202) return "created";
  if (res->status == 409) return "exists (left as is)";
  throw std::runtime_error("POST " + path + " answered " + std::to_string(res->status) + ": " +
                           res->body);
}

}  // namespace

std::vector<ApplyStep> bootstrap_apply(const Config& config, const ApplyOptions& o,
                                       const std::function<void(const ApplyStep&)>& on_step) {
  const bool modern = config.flavor == Flavor::kModern;
  std::vector<ApplyStep> steps;
  auto done = [&](const std::string& what, const std::string& result) {
    steps.push_back({what, result});
    if (on_step) on_step(steps.back());
  };

  if (o.etcd) {
    const auto endpoints = o.etcd_endpoints.empty() ? config.etcd_endpoints : o.etcd_endpoints;
    const Tls tls = modern ? Tls{o.pki / "etcd/ca.pem", o.pki / "apiserver-etcd-client.pem",
                                 o.pki / "apiserver-etcd-client-key.pem"}
                           : Tls{o.pki / "ca.pem", o.pki / "admin.pem", o.pki / "admin-key.pem"};
    const std::string value = flannel_network_config(config);
    std::string errors;
    bool written = false, ok = false;
    for (const auto& url : endpoints) {
      try {
        auto c = client_for(strip_path(url), tls);
        written = modern ? put_if_absent_v3(*c, kFlannelKey, value)
                         : put_if_absent_v2(*c, kFlannelKey, value);
        ok = true;
        break;
      } catch (const InputError&) {
        throw;
      } catch (const std::exception& e) {
        // httplib says only "Read" when etcd drops a client certificate it does not trust:
        // name the credentials used so the operator can check them.
        const bool https = url.rfind("https://", 0) == 0;
        errors +=
            (errors.empty() ? "" : "; ") + url + ": " + e.what() +
            (https ? " (client certificate " + tls.cert.string() + ", CA " + tls.ca.string() + ")"
                   : "");
      }
    }
    if (!ok)
      throw std::runtime_error("flannel network config: no etcd endpoint took it: " + errors);
    done(std::string("flannel network config ") + kFlannelKey +
             (modern ? " (etcd v3)" : " (etcd v2)"),
         written ? "created " + value : "exists (left as is)");
  }

  if (o.namespaces) {
    const std::string api = !o.apiserver.empty() ? o.apiserver
                            : modern             ? config.apiserver_url()
                                                 : "http://127.0.0.1:8080";
    auto c = client_for(strip_path(api),
                        Tls{o.pki / "ca.pem", o.pki / "admin.pem", o.pki / "admin-key.pem"});
    wait_for_api(*c, api, o);
    done("API server " + api, "answers /version");
    std::vector<std::string> names{"kube-system"};
    if (!modern) names.push_back("calico-system");
    for (const auto& name : names) {
      done("namespace " + name,
           create(*c, "/api/v1/namespaces",
                  {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}}));
    }
    if (!modern) {
      // The seed's network policy API (Kubernetes 1.2): a ThirdPartyResource.
      done("thirdpartyresource network-policy.net.alpha.kubernetes.io",
           create(*c, "/apis/extensions/v1beta1/namespaces/default/thirdpartyresources",
                  {{"kind", "ThirdPartyResource"},
                   {"apiVersion", "extensions/v1beta1"},
                   {"metadata", {{"name", "network-policy.net.alpha.kubernetes.io"}}},
                   {"description", "Specification for a network isolation policy"},
                   {"versions", {{{"name", "v1alpha1"}}}}}));
    }
  }
  return steps;
}

}  // namespace kubeca

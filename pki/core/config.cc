#include "kubeca/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "kubeca/fs.h"
#include "kubeca/net.h"

namespace kubeca {

const char* to_string(Flavor f) { return f == Flavor::kModern ? "modern" : "coreos-2016"; }

std::string Config::apiserver_url() const {
  const std::string host = url_host(master_host);
  return flavor == Flavor::kModern ? "https://" + host + ":6443" : "https://" + host;
}

const Worker* Config::find_worker(const std::string& name) const {
  for (const auto& w : workers) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

namespace {

[[noreturn]] void bad(const std::string& field, const std::string& why) {
  throw InputError(field + ": " + why);
}

std::string q(const std::string& s) { return "\"" + s + "\""; }

constexpr long long kMaxDurationSeconds = 100LL * 365 * 86400;

}  // namespace

std::chrono::seconds parse_duration(const std::string& text) {
  if (text.empty()) throw InputError("empty duration");
  long long total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (start == i || i == text.size() || i - start > 9) {
      throw InputError("duration " + q(text) + " is not like 8760h, 30m or 90s");
    }
    long long n = std::stoll(text.substr(start, i - start));
    switch (text[i]) {
      case 'd':
        total += n * 86400;
        break;
      case 'h':
        total += n * 3600;
        break;
      case 'm':
        total += n * 60;
        break;
      case 's':
        total += n;
        break;
      default:
        throw InputError("duration " + q(text) + " has unknown unit '" + std::string(1, text[i]) +
                         "' (use d, h, m or s)");
    }
    // Beyond this, now + duration overflows the clock and the certificate dates wrap.
    if (total > kMaxDurationSeconds) {
      throw InputError("duration " + q(text) + " is longer than 100 years (876000h)");
    }
    ++i;
  }
  if (total <= 0) throw InputError("duration " + q(text) + " must be positive");
  return std::chrono::seconds(total);
}

std::string format_duration(std::chrono::seconds d) {
  long long s = d.count();
  std::string out = s < 0 ? "-" : "";
  if (s < 0) s = -s;
  if (s >= 86400 * 365) return out + std::to_string(s / (86400 * 365)) + "y";
  if (s >= 86400) return out + std::to_string(s / 86400) + "d";
  if (s >= 3600) return out + std::to_string(s / 3600) + "h";
  if (s >= 60) return out + std::to_string(s / 60) + "m";
  return out + std::to_string(s) + "s";
}

namespace {

std::string scalar(const YAML::Node& n, const std::string& field) {
  if (!n.IsScalar()) bad(field, "must be a single value");
  return n.Scalar();
}

std::vector<std::string> string_list(const YAML::Node& n, const std::string& field) {
  std::vector<std::string> out;
  if (n.IsNull()) return out;
  if (n.IsScalar()) {  // a comma-separated string, as the seed writes ETCD_ENDPOINTS
    std::stringstream ss(n.Scalar());
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (!item.empty()) out.push_back(item);
    }
    return out;
  }
  if (!n.IsSequence()) bad(field, "must be a list");
  for (size_t i = 0; i < n.size(); ++i)
    out.push_back(scalar(n[i], field + "[" + std::to_string(i) + "]"));
  return out;
}

using Setter = std::function<void(Config&, const YAML::Node&, const std::string&)>;

void read_section(Config& c, const YAML::Node& node, const std::string& section,
                  const std::map<std::string, Setter>& fields) {
  if (!node.IsMap()) bad(section, "must be a mapping");
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const std::string field = section + "." + key;
    auto it = fields.find(key);
    if (it == fields.end()) bad(field, "unknown field");
    it->second(c, kv.second, field);
  }
}

Setter str(std::string Config::*member) {
  return
      [member](Config& c, const YAML::Node& n, const std::string& f) { c.*member = scalar(n, f); };
}

Setter list(std::vector<std::string> Config::*member) {
  return [member](Config& c, const YAML::Node& n, const std::string& f) {
    c.*member = string_list(n, f);
  };
}

Setter duration(std::chrono::seconds Config::*member) {
  return [member](Config& c, const YAML::Node& n, const std::string& f) {
    try {
      c.*member = parse_duration(scalar(n, f));
    } catch (const InputError& e) {
      bad(f, e.what());
    }
  };
}

Flavor parse_flavor(const std::string& s, const std::string& field) {
  if (s == "modern") return Flavor::kModern;
  if (s == "coreos-2016") return Flavor::kCoreos2016;
  bad(field, q(s) + " is not a flavor (modern or coreos-2016)");
}

}  // namespace

Config parse_config_yaml(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw InputError("cluster.yaml: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  Config c;
  if (root.IsNull()) return c;
  if (!root.IsMap()) throw InputError("cluster.yaml: the top level must be a mapping");
  const std::map<std::string, std::map<std::string, Setter>> sections = {
      {"cluster",
       {{"name", str(&Config::cluster_name)},
        {"domain", str(&Config::domain)},
        {"flavor", [](Config& c, const YAML::Node& n,
                      const std::string& f) { c.flavor = parse_flavor(scalar(n, f), f); }}}},
      {"master",
       {{"host", str(&Config::master_host)},
        {"name", str(&Config::master_name)},
        {"extra_sans", list(&Config::extra_sans)}}},
      {"etcd", {{"endpoints", list(&Config::etcd_endpoints)}}},
      {"network",
       {{"pod_cidr", str(&Config::pod_cidr)},
        {"service_cidr", str(&Config::service_cidr)},
        {"dns_service_ip", str(&Config::dns_service_ip)},
        {"k8s_service_ip", str(&Config::k8s_service_ip)}}},
      {"pki",
       {{"key_algorithm", str(&Config::key_algorithm)},
        {"ca_validity", duration(&Config::ca_validity)},
        {"cert_validity", duration(&Config::cert_validity)}}},
      {"signer",
       {{"listen", str(&Config::signer_listen)},
        {"url",
         [](Config& c, const YAML::Node& n, const std::string& f) {
           c.signer_url = scalar(n, f);
           c.signer_url_named = true;
         }},
        {"urls", list(&Config::signer_urls)},
        {"store",
         [](Config& c, const YAML::Node& n, const std::string& f) {
           c.signer_store = scalar(n, f);
           c.signer_store_named = true;
         }},
        {"renew_limit",
         [](Config& c, const YAML::Node& n, const std::string& f) {
           const std::string v = scalar(n, f);
           if (v.empty() || v.size() > 6 ||
               v.find_first_not_of("0123456789") != std::string::npos || std::stoi(v) < 1) {
             bad(f, q(v) + " is not a whole number from 1 to 999999");
           }
           c.renew_limit = std::stoi(v);
         }},
        {"renew_window", duration(&Config::renew_window)}}},
  };
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    if (key == "workers") {
      const YAML::Node& ws = kv.second;
      if (ws.IsNull()) continue;
      if (!ws.IsSequence()) bad("workers", "must be a list of {name, ip}");
      for (size_t i = 0; i < ws.size(); ++i) {
        const std::string f = "workers[" + std::to_string(i) + "]";
        if (!ws[i].IsMap()) bad(f, "must be a mapping with name and ip");
        Worker w;
        for (const auto& wkv : ws[i]) {
          const std::string wk = wkv.first.Scalar();
          if (wk == "name") {
            w.name = scalar(wkv.second, f + ".name");
          } else if (wk == "ip") {
            w.ip = scalar(wkv.second, f + ".ip");
          } else {
            bad(f + "." + wk, "unknown field");
          }
        }
        c.workers.push_back(w);
      }
      continue;
    }
    auto it = sections.find(key);
    if (it == sections.end()) bad(key, "unknown section");
    read_section(c, kv.second, key, it->second);
  }
  return c;
}

namespace {

// The seed writes lists as shell brace expansions: 192.168.24.{12,13,14}.
std::vector<std::string> expand_list(const std::string& value) {
  std::vector<std::string> out;
  auto open = value.find('{');
  auto close = value.find('}', open == std::string::npos ? 0 : open);
  if (open != std::string::npos && close != std::string::npos) {
    const std::string pre = value.substr(0, open), post = value.substr(close + 1);
    std::stringstream ss(value.substr(open + 1, close - open - 1));
    std::string item;
    while (std::getline(ss, item, ',')) out.push_back(pre + item + post);
    return out;
  }
  std::string item;
  for (char ch : value) {
    if (ch == ',' || ch == ' ') {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else {
      item += ch;
    }
  }
  if (!item.empty()) out.push_back(item);
  return out;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::map<std::string, std::string> parse_env(const std::string& env_text) {
  std::map<std::string, std::string> vars;
  std::stringstream ss(env_text);
  std::string line;
  int lineno = 0;
  while (std::getline(ss, line)) {
    ++lineno;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("export ", 0) == 0) line = trim(line.substr(7));
    auto eq = line.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw InputError("env file: line " + std::to_string(lineno) + ": expected NAME=VALUE");
    }
    std::string value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value[0] == '"' || value[0] == '\'') && value.back() == value[0]) {
      value = value.substr(1, value.size() - 2);
    }
    vars[line.substr(0, eq)] = value;
  }
  return vars;
}

// The seed variable behind a config field ("workers[1].ip" -> WORKER_IP), or "".
std::string env_name_of(const std::string& field) {
  static const std::pair<const char*, const char*> kFields[] = {
      {"master.host", "MASTER_HOST"},
      {"master.name", "MASTER_NAME"},
      {"cluster.domain", "CLUSTER_DOMAIN"},
      {"etcd.endpoints", "ETCD_ENDPOINTS"},
      {"network.pod_cidr", "POD_NETWORK"},
      {"network.service_cidr", "SERVICE_IP_RANGE"},
      {"network.k8s_service_ip", "K8S_SERVICE_IP"},
      {"network.dns_service_ip", "DNS_SERVICE_IP"},
  };
  for (const auto& [prefix, var] : kFields) {
    if (field == prefix || field.rfind(std::string(prefix) + "[", 0) == 0) return var;
  }
  if (field.rfind("workers[", 0) == 0) {
    const std::string leaf = field.substr(field.rfind('.') + 1);
    if (leaf == "ip") return "WORKER_IP";
    if (leaf == "name") return "WORKER_FQDN";
  }
  return "";
}

}  // namespace

void apply_env(Config& c, const std::string& env_text) {
  std::map<std::string, std::string> vars = parse_env(env_text);
  static const std::set<std::string> known = {
      "MASTER_HOST",    "MASTER_NAME",    "ETCD_ENDPOINTS", "POD_NETWORK", "SERVICE_IP_RANGE",
      "K8S_SERVICE_IP", "DNS_SERVICE_IP", "WORKER_IP",      "WORKER_FQDN", "CLUSTER_DOMAIN"};
  for (const auto& [k, v] : vars) {
    if (!known.count(k)) bad(k, "unknown variable in env file");
  }
  auto get = [&](const char* k, std::string& out) {
    if (vars.count(k)) out = vars[k];
  };
  get("MASTER_HOST", c.master_host);
  get("MASTER_NAME", c.master_name);
  get("POD_NETWORK", c.pod_cidr);
  get("SERVICE_IP_RANGE", c.service_cidr);
  get("K8S_SERVICE_IP", c.k8s_service_ip);
  get("DNS_SERVICE_IP", c.dns_service_ip);
  get("CLUSTER_DOMAIN", c.domain);
  if (vars.count("ETCD_ENDPOINTS")) c.etcd_endpoints = expand_list(vars["ETCD_ENDPOINTS"]);
  if (vars.count("WORKER_IP") || vars.count("WORKER_FQDN")) {
    auto ips = expand_list(vars["WORKER_IP"]);
    auto names = expand_list(vars["WORKER_FQDN"]);
    if (ips.size() != names.size()) {
      bad("WORKER_FQDN", std::to_string(names.size()) + " names for " + std::to_string(ips.size()) +
                             " WORKER_IP addresses");
    }
    c.workers.clear();
    for (size_t i = 0; i < ips.size(); ++i) c.workers.push_back({names[i], ips[i]});
  }
}

Config load_config(const std::string& yaml_path, const std::string& env_path) {
  Config c;
  std::map<std::string, std::string> env_vars;
  if (!yaml_path.empty()) {
    std::string text;
    try {
      text = read_file(yaml_path);
    } catch (const std::exception& e) {
      throw InputError(e.what());
    }
    try {
      c = parse_config_yaml(text);
    } catch (const InputError& e) {
      // Name the file the operator gave rather than the generic "cluster.yaml".
      const std::string msg = e.what(), generic = "cluster.yaml: ";
      if (msg.rfind(generic, 0) != 0) throw;
      throw InputError(yaml_path + ": " + msg.substr(generic.size()));
    }
  }
  if (!env_path.empty()) {
    std::string text;
    try {
      text = read_file(env_path);
    } catch (const std::exception& e) {
      throw InputError(e.what());
    }
    apply_env(c, text);
    env_vars = parse_env(text);
  }
  try {
    validate(c);
  } catch (const InputError& e) {
    // A value the env file gave: name its variable, which is what the operator wrote.
    const std::string msg = e.what();
    const std::string field = msg.substr(0, msg.find(": "));
    const std::string var = env_name_of(field);
    if (var.empty() || !env_vars.count(var)) throw;
    throw InputError(var + " (" + field + ")" + msg.substr(field.size()));
  }
  return c;
}

namespace {

IpAddress need_ip(const std::string& value, const std::string& field) {
  auto ip = parse_ip(value);
  if (!ip) bad(field, q(value) + " is not an IP address");
  return *ip;
}

Cidr need_cidr(const std::string& value, const std::string& field) {
  bool host_bits = false;
  auto c = parse_cidr(value, &host_bits);
  if (!c) bad(field, q(value) + " is not a CIDR range like 10.2.0.0/16");
  if (host_bits) bad(field, q(value) + " has host bits set (did you mean " + c->str() + "?)");
  return *c;
}

void need_dns_name(const std::string& value, const std::string& field) {
  if (!is_dns_name(value)) {
    bad(field, q(value) + " is not a valid DNS name (lower-case letters, digits, '-' and '.')");
  }
}

}  // namespace

void validate(Config& c) {
  need_dns_name(c.cluster_name, "cluster.name");
  need_dns_name(c.domain, "cluster.domain");
  if (c.master_host.empty()) bad("master.host", "is required (the seed's MASTER_HOST)");
  const IpAddress master = need_ip(c.master_host, "master.host");
  need_dns_name(c.master_name, "master.name");
  for (size_t i = 0; i < c.extra_sans.size(); ++i) {
    const std::string& s = c.extra_sans[i];
    if (!parse_ip(s)) need_dns_name(s, "master.extra_sans[" + std::to_string(i) + "]");
  }

  const Cidr pods = need_cidr(c.pod_cidr, "network.pod_cidr");
  const Cidr services = need_cidr(c.service_cidr, "network.service_cidr");
  if (pods.overlaps(services)) {
    bad("network.service_cidr", c.service_cidr + " overlaps network.pod_cidr " + c.pod_cidr);
  }
  if (services.host_bits() > 20) {
    bad("network.service_cidr", c.service_cidr + " is larger than /" +
                                    std::to_string(services.network.bits() - 20) +
                                    " (the API server's limit)");
  }
  const IpAddress first = services.first_host();
  if (!c.k8s_service_ip.empty()) {
    if (need_ip(c.k8s_service_ip, "network.k8s_service_ip") != first) {
      bad("network.k8s_service_ip",
          c.k8s_service_ip + " must be the first IP of " + c.service_cidr + ", " + first.str());
    }
  }
  c.k8s_service_ip = first.str();
  const IpAddress dns = need_ip(c.dns_service_ip, "network.dns_service_ip");
  if (!services.contains(dns)) {
    bad("network.dns_service_ip",
        c.dns_service_ip + " is outside network.service_cidr " + c.service_cidr);
  }
  if (dns == services.network || dns == first || (!dns.v6 && dns == services.last())) {
    bad("network.dns_service_ip", c.dns_service_ip +
                                      " is the network, first or broadcast address of " +
                                      c.service_cidr + "; pick another, such as the tenth");
  }

  auto outside = [&](const IpAddress& ip, const std::string& value, const std::string& field) {
    if (pods.contains(ip)) bad(field, value + " lies inside network.pod_cidr " + c.pod_cidr);
    if (services.contains(ip)) {
      bad(field, value + " lies inside network.service_cidr " + c.service_cidr);
    }
  };
  outside(master, c.master_host, "master.host");

  for (size_t i = 0; i < c.etcd_endpoints.size(); ++i) {
    const std::string f = "etcd.endpoints[" + std::to_string(i) + "]";
    const std::string& url = c.etcd_endpoints[i];
    const auto parts = parse_url(url);
    if (!parts || (parts->scheme != "http" && parts->scheme != "https")) {
      bad(f, q(url) + " is not an http:// or https:// URL");
    }
    const std::string& host = parts->host;
    if (auto ip = parse_ip(host)) outside(*ip, host, f);
  }
  if (c.etcd_endpoints.empty()) c.etcd_endpoints.push_back("http://" + c.master_host + ":2379");

  std::set<std::string> names{c.master_name}, ips{master.str()};
  for (size_t i = 0; i < c.workers.size(); ++i) {
    const std::string f = "workers[" + std::to_string(i) + "]";
    const Worker& w = c.workers[i];
    if (w.name.empty()) bad(f + ".name", "is required");
    need_dns_name(w.name, f + ".name");
    if (w.ip.empty()) bad(f + ".ip", "is required");
    const IpAddress ip = need_ip(w.ip, f + ".ip");
    outside(ip, w.ip, f + ".ip");
    if (!names.insert(w.name).second) bad(f + ".name", q(w.name) + " is used twice");
    if (!ips.insert(ip.str()).second) bad(f + ".ip", w.ip + " is used twice");
  }

  static const std::set<std::string> algorithms = {"rsa-2048",   "rsa-3072",   "rsa-4096",
                                                   "ecdsa-p256", "ecdsa-p384", "ed25519"};
  if (!algorithms.count(c.key_algorithm)) {
    bad("pki.key_algorithm", q(c.key_algorithm) +
                                 " is not one of rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, "
                                 "ecdsa-p384, ed25519");
  }
  if (c.cert_validity > c.ca_validity) {
    bad("pki.cert_validity", "is longer than pki.ca_validity");
  }
  if (c.renew_window.count() < 1) bad("signer.renew_window", "must be at least 1s");
  validate_signer(c);
}

}  // namespace kubeca

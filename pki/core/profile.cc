#include "kubeca/profile.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

#include "kubeca/net.h"

namespace kubeca {

namespace {

struct ProfileInfo {
  Profile p;
  const char* name;
  bool in_coreos;
};

constexpr ProfileInfo kProfiles[] = {
    {Profile::kCa, "ca", true},
    {Profile::kApiserver, "apiserver", true},
    {Profile::kKubelet, "kubelet", true},
    {Profile::kAdmin, "admin", true},
    {Profile::kKubeProxy, "kube-proxy", false},
    {Profile::kControllerManager, "controller-manager", false},
    {Profile::kScheduler, "scheduler", false},
    {Profile::kApiserverKubeletClient, "apiserver-kubelet-client", false},
    {Profile::kFrontProxyCa, "front-proxy-ca", false},
    {Profile::kFrontProxyClient, "front-proxy-client", false},
    {Profile::kEtcdCa, "etcd-ca", false},
    {Profile::kEtcdServer, "etcd-server", false},
    {Profile::kEtcdPeer, "etcd-peer", false},
    {Profile::kEtcdHealthcheckClient, "etcd-healthcheck-client", false},
    {Profile::kApiserverEtcdClient, "apiserver-etcd-client", false},
    {Profile::kSigner, "signer", true},
    {Profile::kUser, "user", true},
};

const ProfileInfo& info(Profile p) {
  for (const auto& i : kProfiles) {
    if (i.p == p) return i;
  }
  throw std::logic_error("unknown profile");
}

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (!s.empty() && std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

void add_san(CertSpec& s, const std::string& value) {
  if (parse_ip(value)) {
    add_unique(s.ip_addresses, parse_ip(value)->str());
  } else {
    add_unique(s.dns_names, value);
  }
}

}  // namespace

std::optional<Profile> parse_profile(const std::string& name) {
  for (const auto& i : kProfiles) {
    if (name == i.name) return i.p;
  }
  return std::nullopt;
}

const char* to_string(Profile p) { return info(p).name; }

const std::vector<Profile>& all_profiles() {
  static const std::vector<Profile> all = [] {
    std::vector<Profile> v;
    for (const auto& i : kProfiles) v.push_back(i.p);
    return v;
  }();
  return all;
}

bool profile_in_flavor(Profile p, Flavor f) { return f == Flavor::kModern || info(p).in_coreos; }

bool profile_is_ca(Profile p) {
  return p == Profile::kCa || p == Profile::kFrontProxyCa || p == Profile::kEtcdCa;
}

Profile issuer_of(Profile p) {
  switch (p) {
    case Profile::kFrontProxyCa:
    case Profile::kFrontProxyClient:
      return Profile::kFrontProxyCa;
    case Profile::kEtcdCa:
    case Profile::kEtcdServer:
    case Profile::kEtcdPeer:
    case Profile::kEtcdHealthcheckClient:
    case Profile::kApiserverEtcdClient:
      return Profile::kEtcdCa;
    default:
      return Profile::kCa;
  }
}

CertSpec make_spec(const Config& c, Profile p, const Identity& id) {
  const bool coreos = c.flavor == Flavor::kCoreos2016;
  if (!profile_in_flavor(p, c.flavor)) {
    throw InputError(std::string("profile ") + to_string(p) +
                     " does not exist in flavor coreos-2016 (the seed has ca, apiserver, "
                     "kubelet, admin and signer)");
  }
  CertSpec s;
  s.profile = p;
  s.validity = profile_is_ca(p) ? c.ca_validity : c.cert_validity;
  s.seed_usages = coreos;
  auto need_name = [&] {
    if (id.name.empty()) {
      throw InputError(std::string("profile ") + to_string(p) + " needs --name");
    }
    if (!is_dns_name(id.name)) {
      throw InputError("--name: \"" + id.name + "\" is not a valid DNS name");
    }
  };
  for (const auto& ip : id.ips) {
    if (!parse_ip(ip)) throw InputError("--ip: \"" + ip + "\" is not an IP address");
  }
  for (const auto& d : id.dns) {
    if (!is_dns_name(d)) throw InputError("--dns: \"" + d + "\" is not a valid DNS name");
  }
  switch (p) {
    case Profile::kCa:
      s.common_name = coreos ? "kube-ca" : "kubernetes-ca";
      s.file = "ca";
      break;
    case Profile::kApiserver:
      s.common_name = "kube-apiserver";
      s.server_auth = true;
      s.file = "apiserver";
      for (const char* n : {"kubernetes", "kubernetes.default", "kubernetes.default.svc"}) {
        add_san(s, n);
      }
      add_san(s, "kubernetes.default.svc." + c.domain);
      add_san(s, c.master_name);
      add_san(s, c.k8s_service_ip);
      add_san(s, c.master_host);
      for (const auto& e : c.extra_sans) add_san(s, e);
      break;
    case Profile::kKubelet: {
      need_name();
      std::vector<std::string> ips = id.ips;
      if (ips.empty()) {
        if (const Worker* w = c.find_worker(id.name)) ips.push_back(w->ip);
        if (id.name == c.master_name) ips.push_back(c.master_host);
      }
      if (ips.empty()) {
        throw InputError("profile kubelet for \"" + id.name +
                         "\" needs --ip (the node is not in the config's workers)");
      }
      s.common_name = coreos ? id.name : "system:node:" + id.name;
      if (!coreos) s.organizations = {"system:nodes"};
      s.server_auth = s.client_auth = true;
      add_san(s, id.name);
      for (const auto& ip : ips) add_san(s, ip);
      s.file = coreos ? id.name + "-worker" : "kubelet-" + id.name;
      break;
    }
    case Profile::kAdmin:
      s.common_name = coreos ? "kube-admin" : "kubernetes-admin";
      if (!coreos) s.organizations = {"system:masters"};
      s.client_auth = true;
      s.file = "admin";
      break;
    case Profile::kKubeProxy:
      s.common_name = "system:kube-proxy";
      s.client_auth = true;
      s.file = "kube-proxy";
      break;
    case Profile::kControllerManager:
      s.common_name = "system:kube-controller-manager";
      s.client_auth = true;
      s.file = "controller-manager";
      break;
    case Profile::kScheduler:
      s.common_name = "system:kube-scheduler";
      s.client_auth = true;
      s.file = "scheduler";
      break;
    case Profile::kApiserverKubeletClient:
      s.common_name = "kube-apiserver-kubelet-client";
      s.organizations = {"system:masters"};
      s.client_auth = true;
      s.file = "apiserver-kubelet-client";
      break;
    case Profile::kFrontProxyCa:
      s.common_name = "front-proxy-ca";
      s.file = "front-proxy-ca";
      break;
    case Profile::kFrontProxyClient:
      s.common_name = "front-proxy-client";
      s.client_auth = true;
      s.file = "front-proxy-client";
      break;
    case Profile::kEtcdCa:
      s.common_name = "etcd-ca";
      s.file = "etcd/ca";
      break;
    case Profile::kEtcdServer:
    case Profile::kEtcdPeer: {
      const bool server = p == Profile::kEtcdServer;
      const std::string name = id.name.empty() ? c.master_name : id.name;
      if (!id.name.empty()) need_name();
      std::vector<std::string> ips = id.ips;
      if (ips.empty() && name == c.master_name) ips.push_back(c.master_host);
      s.common_name = name;
      // kubeadm gives the etcd server clientAuth too: etcd's own gRPC gateway dials itself
      // with this certificate when client auth is on (etcd-io/etcd#9785).
      s.server_auth = true;
      s.client_auth = true;
      add_san(s, "localhost");
      add_san(s, name);
      add_san(s, "127.0.0.1");
      add_san(s, "::1");
      for (const auto& ip : ips) add_san(s, ip);
      s.file = std::string("etcd/") + (server ? "server" : "peer");
      if (name != c.master_name) s.file += "-" + name;
      break;
    }
    case Profile::kEtcdHealthcheckClient:
      s.common_name = "kube-etcd-healthcheck-client";
      s.client_auth = true;
      s.file = "etcd/healthcheck-client";
      break;
    case Profile::kApiserverEtcdClient:
      s.common_name = "kube-apiserver-etcd-client";
      s.client_auth = true;
      s.file = "apiserver-etcd-client";
      break;
    case Profile::kSigner:
      s.common_name = "kubeca";
      s.server_auth = true;
      s.file = "signer";
      add_san(s, c.master_name);
      add_san(s, c.master_host);
      // A client may reach any replica: each one's host is a name of the certificate.
      for (const auto& url : c.signer_urls) {
        if (const auto u = parse_url(url)) add_san(s, u->host);
      }
      if (const auto u = parse_url(c.signer_url)) add_san(s, u->host);
      break;
    case Profile::kUser:
      throw InputError("profile user is made by `kubeca kubeconfig user` (--name, --group, --ttl)");
  }
  for (const auto& d : id.dns) add_san(s, d);
  if (p != Profile::kKubelet && p != Profile::kEtcdServer && p != Profile::kEtcdPeer) {
    for (const auto& ip : id.ips) add_san(s, ip);
  }
  return s;
}

namespace {

// A name or group as Kubernetes reads it from a certificate: plain, bounded, no separators
// that could be read as more than one value (commas, slashes, spaces) or as markup.
void check_user_word(const std::string& flag, const std::string& v) {
  const bool ok =
      !v.empty() && v.size() <= 64 && std::isalnum(static_cast<unsigned char>(v[0])) &&
      std::all_of(v.begin(), v.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || std::strchr("._@:+-", ch) != nullptr;
      });
  if (!ok) {
    // Shown escaped: a newline or a terminal escape in it stays on the one error line.
    std::string shown;
    for (unsigned char ch : v.substr(0, 80)) {
      if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
        shown += static_cast<char>(ch);
      } else {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", ch);
        shown += hex;
      }
    }
    if (v.size() > 80) shown += "...";
    throw InputError(flag + ": \"" + shown +
                     "\" is not a valid name (1 to 64 characters: letters, digits and . _ @ : + -, "
                     "starting with a letter or digit)");
  }
}

}  // namespace

void check_user_request(const UserRequest& r) {
  check_user_word("--name", r.name);
  std::vector<std::string> seen;
  for (const auto& g : r.groups) {
    check_user_word("--group", g);
    if (std::find(seen.begin(), seen.end(), g) != seen.end()) {
      throw InputError("--group: \"" + g + "\" is given twice");
    }
    seen.push_back(g);
  }
  if (r.ttl < std::chrono::minutes(1)) {
    throw InputError("--ttl: " + format_duration(r.ttl) + " is too short (at least 1m)");
  }
  if (r.allow_privileged) return;
  for (const auto& g : r.groups) {
    if (g == "system:masters") {
      throw PrivilegedUser(
          "--group system:masters makes a cluster administrator that RBAC cannot restrain; add "
          "--allow-privileged if that is meant");
    }
    if (g.rfind("system:", 0) == 0) {
      throw PrivilegedUser("--group " + g +
                           " is one of Kubernetes' own groups; add --allow-privileged if that is "
                           "meant");
    }
  }
  if (r.name.rfind("system:", 0) == 0) {
    throw PrivilegedUser("--name " + r.name +
                         " speaks for a part of the cluster; add --allow-privileged if that is "
                         "meant");
  }
}

CertSpec user_spec(const Config& c, const UserRequest& r) {
  check_user_request(r);
  if (r.ttl > c.cert_validity) {
    throw InputError("--ttl: " + format_duration(r.ttl) + " is longer than pki.cert_validity (" +
                     format_duration(c.cert_validity) + "); user credentials are short-lived");
  }
  CertSpec s;
  s.profile = Profile::kUser;
  s.common_name = r.name;
  s.organizations = r.groups;
  s.client_auth = true;
  s.seed_usages = c.flavor == Flavor::kCoreos2016;  // as every leaf of that flavor
  s.validity = r.ttl;
  s.file = "user-" + r.name;
  return s;
}

std::string describe(const CertSpec& s) {
  // The subject in the order the certificate carries it (O before CN), as dn_text and
  // openssl print it: one order wherever kubeca shows a subject.
  std::string out;
  for (const auto& o : s.organizations) out += "O=" + o + ", ";
  out += "CN=" + s.common_name;
  for (const auto& d : s.dns_names) out += ", DNS:" + d;
  for (const auto& ip : s.ip_addresses) out += ", IP:" + ip;
  return out;
}

}  // namespace kubeca

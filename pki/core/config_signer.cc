// The signer section of cluster.yaml: where the service listens, the URL certificates name
// (signer.url), the replicas clients try (signer.urls), and the store.
#include <set>
#include <string>

#include "kubeca/config.h"
#include "kubeca/net.h"

namespace kubeca {

namespace {

[[noreturn]] void bad(const std::string& field, const std::string& why) {
  throw InputError(field + ": " + why);
}

std::string q(const std::string& s) { return "\"" + s + "\""; }

// https://HOST:PORT[/]: a host clients can name (an IP or a DNS name) and a port.
void need_replica_url(const std::string& url, const std::string& field) {
  const auto u = parse_url(url);
  if (!u || u->scheme != "https") bad(field, q(url) + " must be an https:// URL");
  const auto path = url.find('/', url.find("://") + 3);
  if (path != std::string::npos && path + 1 != url.size()) {
    bad(field, q(url) + " must be https://HOST:PORT, without a path");
  }
  if (u->host.empty()) bad(field, q(url) + " has no host");
  if (!parse_ip(u->host) && !is_dns_name(u->host)) {
    bad(field, q(url) + ": " + q(u->host) + " is neither an IP address nor a DNS name");
  }
  const std::string& port = u->port;
  if (port.empty()) bad(field, q(url) + " has no port (https://HOST:PORT)");
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535) {
    bad(field, q(url) + ": port " + q(port) + " is not a number from 1 to 65535");
  }
}

// The same replica twice, however written (a trailing slash, an IPv6 spelling).
std::string replica_key(const std::string& url) {
  const auto u = parse_url(url);
  const auto ip = parse_ip(u->host);
  return (ip ? ip->str() : u->host) + " " + u->port;
}

}  // namespace

void validate_signer(Config& c) {
  if (c.signer_url.empty()) {
    c.signer_url = "https://" + url_host(c.master_host) + ":8443";
  }
  need_replica_url(c.signer_url, "signer.url");
  if (c.signer_urls.empty()) c.signer_urls.push_back(c.signer_url);
  std::set<std::string> seen;
  for (size_t i = 0; i < c.signer_urls.size(); ++i) {
    const std::string f = "signer.urls[" + std::to_string(i) + "]";
    need_replica_url(c.signer_urls[i], f);
    if (!seen.insert(replica_key(c.signer_urls[i])).second) {
      bad(f, q(c.signer_urls[i]) + " is listed twice");
    }
  }
  if (c.signer_store.rfind("sqlite:", 0) != 0 && c.signer_store.rfind("etcd:", 0) != 0) {
    bad("signer.store", q(c.signer_store) + " must be sqlite:PATH or etcd:URL[,URL...]");
  }
}

}  // namespace kubeca

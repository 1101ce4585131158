// IP addresses and CIDR ranges, IPv4 and IPv6, as the cluster config uses them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace kubeca {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4 uses the first 4.

  int bits() const { return v6 ? 128 : 32; }
  std::string str() const;
  bool operator==(const IpAddress& o) const { return v6 == o.v6 && bytes == o.bytes; }
  bool operator!=(const IpAddress& o) const { return !(*this == o); }
};

// Parses "10.3.0.1" or "fd00::1"; nullopt when it is not an address.
std::optional<IpAddress> parse_ip(const std::string& text);

struct Cidr {
  IpAddress network;
  int prefix = 0;

  int host_bits() const { return network.bits() - prefix; }
  bool contains(const IpAddress& ip) const;
  bool overlaps(const Cidr& other) const;
  IpAddress first_host() const;  // network + 1: the seed's K8S_SERVICE_IP
  IpAddress last() const;        // the broadcast address in IPv4
  std::string str() const;
};

// Parses "10.2.0.0/16". Host bits set are reported through `host_bits_set`
// (the range is still returned, with host bits cleared) so callers can name the fix.
std::optional<Cidr> parse_cidr(const std::string& text, bool* host_bits_set = nullptr);

// scheme://host[:port][/path], with IPv6 hosts in brackets. The host comes back without
// brackets, the port empty when absent; nullopt when there is no "://".
struct UrlParts {
  std::string scheme, host, port;
};
std::optional<UrlParts> parse_url(const std::string& url);
// A host as it goes into a URL: IPv6 addresses in brackets.
std::string url_host(const std::string& host);

// A DNS name (RFC 1123 labels) that is also safe as a file name.
bool is_dns_name(const std::string& name);

}  // namespace kubeca

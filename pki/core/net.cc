#include "kubeca/net.h"

#include <arpa/inet.h>

#include <cctype>

namespace kubeca {

std::string IpAddress::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<IpAddress> parse_ip(const std::string& text) {
  IpAddress ip;
  if (inet_pton(AF_INET, text.c_str(), ip.bytes.data()) == 1) return ip;
  ip.v6 = true;
  if (inet_pton(AF_INET6, text.c_str(), ip.bytes.data()) == 1) return ip;
  return std::nullopt;
}

namespace {

bool bit(const IpAddress& ip, int i) { return (ip.bytes[i / 8] >> (7 - i % 8)) & 1; }

IpAddress with_host_bits(const IpAddress& ip, int prefix, bool one) {
  IpAddress out = ip;
  for (int i = prefix; i < ip.bits(); ++i) {
    uint8_t mask = uint8_t(1u << (7 - i % 8));
    if (one) {
      out.bytes[i / 8] |= mask;
    } else {
      out.bytes[i / 8] &= uint8_t(~mask);
    }
  }
  return out;
}

}  // namespace

bool Cidr::contains(const IpAddress& ip) const {
  if (ip.v6 != network.v6) return false;
  for (int i = 0; i < prefix; ++i) {
    if (bit(ip, i) != bit(network, i)) return false;
  }
  return true;
}

bool Cidr::overlaps(const Cidr& other) const {
  return contains(other.network) || other.contains(network);
}

IpAddress Cidr::first_host() const {
  IpAddress ip = network;
  for (int i = ip.bits() / 8 - 1; i >= 0; --i) {
    if (++ip.bytes[i] != 0) break;
  }
  return ip;
}

IpAddress Cidr::last() const { return with_host_bits(network, prefix, true); }

std::string Cidr::str() const { return network.str() + "/" + std::to_string(prefix); }

std::optional<Cidr> parse_cidr(const std::string& text, bool* host_bits_set) {
  auto slash = text.find('/');
  if (slash == std::string::npos || slash + 1 >= text.size()) return std::nullopt;
  auto ip = parse_ip(text.substr(0, slash));
  if (!ip) return std::nullopt;
  const std::string len = text.substr(slash + 1);
  if (len.size() > 3) return std::nullopt;
  for (char c : len) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  int prefix = std::stoi(len);
  if (prefix > ip->bits()) return std::nullopt;
  Cidr c{with_host_bits(*ip, prefix, false), prefix};
  if (host_bits_set) *host_bits_set = c.network != *ip;
  return c;
}

std::optional<UrlParts> parse_url(const std::string& url) {
  const size_t sep = url.find("://");
  if (sep == std::string::npos) return std::nullopt;
  UrlParts u;
  u.scheme = url.substr(0, sep);
  std::string rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find(']');
    u.host = rest.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    rest = close == std::string::npos ? "" : rest.substr(close + 1);
    if (rest.rfind(':', 0) == 0) u.port = rest.substr(1);
  } else {
    const size_t colon = rest.rfind(':');
    u.host = rest.substr(0, colon);
    if (colon != std::string::npos) u.port = rest.substr(colon + 1);
  }
  return u;
}

std::string url_host(const std::string& host) {
  const auto ip = parse_ip(host);
  return ip && ip->v6 ? "[" + host + "]" : host;
}

bool is_dns_name(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    const size_t len = dot - start;
    if (len == 0 || len > 63) return false;
    for (size_t i = start; i < dot; ++i) {
      const char c = name[i];
      const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
      if (!alnum && !(c == '-' && i != start && i + 1 != dot)) return false;
    }
    start = dot + 1;
    if (dot == name.size()) break;
  }
  return true;
}

}  // namespace kubeca

#include "kubeca/token.h"

#include <botan/hash.h>
#include <botan/hex.h>
#include <botan/mem_ops.h>

#include "kubeca/config.h"
#include "kubeca/keys.h"
#include "kubeca/net.h"
#include "kubeca/pki.h"
#include "kubeca/profile.h"

namespace kubeca {

namespace {
constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";

std::string random_chars(Botan::RandomNumberGenerator& rng, size_t n) {
  std::string out;
  while (out.size() < n) {
    uint8_t b = rng.next_byte();
    if (b < 252) out += kAlphabet[b % 36];  // 252 = 7 * 36: no modulo bias
  }
  return out;
}

bool valid_part(const std::string& s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}
}  // namespace

std::string generate_token() {
  Botan::RandomNumberGenerator& rng = thread_rng();
  return random_chars(rng, 6) + "." + random_chars(rng, 16);
}

std::optional<TokenParts> parse_token(const std::string& token) {
  if (token.size() != 23 || token[6] != '.') return std::nullopt;
  TokenParts p{token.substr(0, 6), token.substr(7)};
  if (!valid_part(p.id, 6) || !valid_part(p.secret, 16)) return std::nullopt;
  return p;
}

std::string hash_secret(const std::string& secret) {
  auto sha = Botan::HashFunction::create_or_throw("SHA-256");
  return Botan::hex_encode(sha->process(secret), false);
}

bool secret_matches(const std::string& secret, const std::string& stored_hash) {
  const std::string h = hash_secret(secret);
  if (h.size() != stored_hash.size()) return false;
  return Botan::constant_time_compare(reinterpret_cast<const uint8_t*>(h.data()),
                                      reinterpret_cast<const uint8_t*>(stored_hash.data()),
                                      h.size());
}

std::string bearer_token_id(const std::string& authorization) {
  if (authorization.rfind("Bearer ", 0) != 0) return "";
  const auto parts = parse_token(authorization.substr(7));
  return parts ? parts->id : "";
}

bool token_profile_privileged(const std::string& profile) {
  const auto p = parse_profile(profile);
  return !p || (*p != Profile::kKubelet && *p != Profile::kKubeProxy);
}

std::pair<std::string, TokenRecord> create_token(Store& store, const TokenRequest& r, int64_t now) {
  if (!is_dns_name(r.node)) throw InputError("node: \"" + r.node + "\" is not a valid DNS name");
  for (const auto& ip : r.ips) {
    if (!parse_ip(ip)) throw InputError("ip: \"" + ip + "\" is not an IP address");
  }
  const auto p = parse_profile(r.profile);
  if (!p || profile_is_ca(*p)) {
    throw InputError("profile: \"" + r.profile + "\" cannot be granted by a token");
  }
  if (*p == Profile::kUser) {
    throw InputError(
        "profile: user credentials are made by an admin (`kubeca kubeconfig user`), never by a "
        "token");
  }
  if (token_profile_privileged(r.profile) && !r.allow_privileged) {
    throw InputError("profile: a token for " + r.profile +
                     " grants cluster-wide power; give --allow-privileged if that is meant");
  }
  if (*p == Profile::kKubelet && r.ips.empty()) {
    throw InputError("ip: a kubelet token needs the node's IP (--ip)");
  }
  if (r.uses < 1 || r.uses > 1000000) throw InputError("uses: must be between 1 and 1000000");
  if (r.ttl.count() <= 0 || r.ttl > std::chrono::hours(24 * 365)) {
    throw InputError("ttl: must be positive and at most a year");
  }
  TokenRecord t;
  t.node = r.node;
  t.ips = r.ips;
  t.profile = r.profile;
  t.uses_allowed = r.uses;
  t.created_at = now;
  t.expires_at = now + r.ttl.count();
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::string token = generate_token();
    const auto parts = parse_token(token);
    t.id = parts->id;
    t.secret_hash = hash_secret(parts->secret);
    if (store.insert_token(t)) return {token, t};
  }
  throw std::runtime_error("could not find a free token id");
}

nlohmann::json token_json(const TokenRecord& t) {
  auto when = [](int64_t s) { return format_time(std::chrono::system_clock::from_time_t(s)); };
  return {{"id", t.id},
          {"node", t.node},
          {"ips", t.ips},
          {"profile", t.profile},
          {"uses", t.uses},
          {"uses_allowed", t.uses_allowed},
          {"revoked", t.revoked},
          {"created_at", when(t.created_at)},
          {"expires_at", when(t.expires_at)}};
}

}  // namespace kubeca

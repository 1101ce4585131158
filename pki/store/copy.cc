#include <map>
#include <stdexcept>
#include <tuple>

#include "kubeca/config.h"
#include "kubeca/store_copy.h"

namespace kubeca {

namespace {

auto cert_tuple(const CertRecord& c) {
  return std::tie(c.serial, c.profile, c.subject, c.sans, c.not_before, c.not_after, c.status,
                  c.requester, c.pem, c.revoked_at, c.reason);
}
auto token_tuple(const TokenRecord& t) {
  return std::tie(t.id, t.secret_hash, t.node, t.ips, t.profile, t.created_at, t.expires_at,
                  t.uses_allowed, t.uses, t.revoked);
}

}  // namespace

CopyCounts copy_store(Store& from, Store& to, const std::function<void(size_t, size_t)>& progress) {
  if (!to.list_certificates().empty() || !to.list_tokens().empty()) {
    throw InputError("the target store is not empty; kubeca never merges two signers' records");
  }
  const auto certs = from.list_certificates();
  const auto tokens = from.list_tokens();
  const size_t total = certs.size() + tokens.size();
  size_t done = 0;
  CopyCounts n;
  for (const auto& c : certs) {
    if (!to.insert_certificate(c)) {
      throw std::runtime_error("certificate " + c.serial + " appeared in the target meanwhile");
    }
    ++n.certificates;
    if (c.status == "revoked") ++n.revoked;
    if (progress) progress(++done, total);
  }
  for (const auto& t : tokens) {
    if (!to.insert_token(t)) {
      throw std::runtime_error("token " + t.id + " appeared in the target meanwhile");
    }
    ++n.tokens;
    if (progress) progress(++done, total);
  }
  // The CRL Number only increases: the target goes on above every number the source took
  // (taking one more there costs nothing; the source is being left), and serves its CRL.
  n.crl_number = from.next_crl().number;
  to.raise_crl_number(n.crl_number);
  if (const auto crl = from.published_crl()) to.publish_crl(*crl);
  if (to.next_crl().number <= n.crl_number) {
    throw std::runtime_error("the target's CRL number did not move past the source's");
  }
  // Read back: what the target holds is what the source held, field by field.
  std::map<std::string, CertRecord> copied;
  for (auto& c : to.list_certificates()) copied.emplace(c.serial, std::move(c));
  for (const auto& c : certs) {
    auto it = copied.find(c.serial);
    if (it == copied.end() || cert_tuple(it->second) != cert_tuple(c)) {
      throw std::runtime_error("certificate " + c.serial + " differs in the target after copying");
    }
  }
  std::map<std::string, TokenRecord> copied_tokens;
  for (auto& t : to.list_tokens()) copied_tokens.emplace(t.id, std::move(t));
  for (const auto& t : tokens) {
    auto it = copied_tokens.find(t.id);
    if (it == copied_tokens.end() || token_tuple(it->second) != token_tuple(t)) {
      throw std::runtime_error("token " + t.id + " differs in the target after copying");
    }
  }
  return n;
}

}  // namespace kubeca

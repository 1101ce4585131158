// What the store backends share: the token checks, the list orders, bind_ca's refusal, and
// the constructors open_store picks from.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kubeca/store.h"

namespace kubeca::store_internal {

// The checks use_token makes, in the order it makes them; shared so every store agrees.
TokenUse check_token(bool revoked, int64_t expires_at, int uses_allowed, int uses, int64_t now);

bool cert_order(const CertRecord& a, const CertRecord& b);
bool token_order(const TokenRecord& a, const TokenRecord& b);

// bind_ca's refusal, the same for every store.
void check_ca(const std::string& url, const std::string& bound, const std::string& pin);

// A published CRL as one text value (JSON, the DER in base64), for the SQLite and etcd stores.
std::string crl_text(const PublishedCrl& crl);
PublishedCrl crl_of_text(const std::string& text);

std::unique_ptr<Store> make_memory_store();
// `path` is a file name or ":memory:"; `url` names the store in errors. Without `create`,
// a file removed since open_store checked it is not made again.
std::unique_ptr<Store> make_sqlite_store(const std::string& path, const std::string& url,
                                         bool create);

}  // namespace kubeca::store_internal

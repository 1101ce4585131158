// etcd:// — the store shared by several `kubeca serve` replicas, on the cluster's own etcd,
// through etcd's v3 JSON gateway (/v3/kv/range, /v3/kv/txn) over cpp-httplib.
//
// Layout under the prefix (default /kubeca/): certs/SERIAL and tokens/ID hold one JSON
// record each, with "v" the record's schema version. Every write that must not race (a
// token's use with its certificate, a revocation) is one transaction that compares the
// mod_revision it read, and is retried when another replica got there first.
#include <botan/base64.h>
#include <botan/hash.h>
#include <botan/hex.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <tuple>

#include "etcd_batch.h"
#include "kubeca/config.h"
#include "kubeca/net.h"
#include "kubeca/store.h"
#include "store_internal.h"

namespace kubeca {

namespace {

using json = nlohmann::json;

constexpr int kRecordVersion = 1;
constexpr int kMaxConflicts = 64;  // transaction retries before giving up on a hot key
constexpr int kPage = 500;         // keys per range request when listing
constexpr int64_t kUntilBase = 999'999'999'999'999'999;  // 19 digits, past any notAfter

std::string b64(const std::string& s) {
  return Botan::base64_encode(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
std::string unb64(const std::string& s) {
  const auto v = Botan::base64_decode(s);
  return std::string(v.begin(), v.end());
}
// The smallest key after every key that starts with `prefix` (etcd's range_end).
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<unsigned char>(prefix.back()) < 0xff) {
      prefix.back() = static_cast<char>(prefix.back() + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}
int64_t num(const json& j, const char* name) {
  if (!j.contains(name)) return 0;  // the gateway leaves zero values out
  const auto& v = j[name];
  return v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>();
}

json cert_json(const CertRecord& c) {
  return {{"v", kRecordVersion},
          {"serial", c.serial},
          {"profile", c.profile},
          {"subject", c.subject},
          {"sans", c.sans},
          {"not_before", c.not_before},
          {"not_after", c.not_after},
          {"status", c.status},
          {"requester", c.requester},
          {"pem", c.pem},
          {"revoked_at", c.revoked_at},
          {"reason", c.reason},
          {"key_hash", c.key_hash},
          {"node", c.node},
          {"identity", c.identity}};
}
CertRecord cert_of(const json& j) {
  CertRecord c;
  c.serial = j.at("serial");
  c.profile = j.at("profile");
  c.subject = j.at("subject");
  c.sans = j.at("sans").get<std::vector<std::string>>();
  c.not_before = j.at("not_before");
  c.not_after = j.at("not_after");
  c.status = j.at("status");
  c.requester = j.at("requester");
  c.pem = j.at("pem");
  c.revoked_at = j.value("revoked_at", int64_t{0});
  c.key_hash = j.value("key_hash", std::string());
  c.node = j.value("node", std::string());
  c.identity = j.value("identity", std::string());
  c.reason = j.value("reason", 0);
  return c;
}
json put_op(const std::string& key, const std::string& value) {
  return {{"request_put", {{"key", b64(key)}, {"value", b64(value)}}}};
}
json range_op(const std::string& key, const std::string& range_end = "") {
  json r = {{"key", b64(key)}};
  if (!range_end.empty()) r["range_end"] = b64(range_end);
  return {{"request_range", r}};
}
json absent(const std::string& key) {
  return {{"key", b64(key)}, {"result", "EQUAL"}, {"target", "CREATE"}, {"create_revision", "0"}};
}
json unchanged(const std::string& key, int64_t mod_revision) {
  if (mod_revision == 0) return absent(key);
  return {{"key", b64(key)},
          {"result", "EQUAL"},
          {"target", "MOD"},
          {"mod_revision", std::to_string(mod_revision)}};
}
// The kvs of the n-th response of a transaction.
json txn_kvs(const json& r, size_t n) {
  const auto& responses = r.value("responses", json::array());
  if (responses.size() <= n || !responses[n].contains("response_range")) return json::array();
  return responses[n]["response_range"].value("kvs", json::array());
}
std::string sha256_hex(const std::string& s) {
  auto h = Botan::HashFunction::create_or_throw("SHA-256");
  return Botan::hex_encode(h->process(s), false);
}

json token_json_record(const TokenRecord& t) {
  return {{"v", kRecordVersion},
          {"id", t.id},
          {"secret_hash", t.secret_hash},
          {"node", t.node},
          {"ips", t.ips},
          {"profile", t.profile},
          {"created_at", t.created_at},
          {"expires_at", t.expires_at},
          {"uses_allowed", t.uses_allowed},
          {"uses", t.uses},
          {"revoked", t.revoked}};
}
TokenRecord token_of(const json& j) {
  TokenRecord t;
  t.id = j.at("id");
  t.secret_hash = j.at("secret_hash");
  t.node = j.at("node");
  t.ips = j.at("ips").get<std::vector<std::string>>();
  t.profile = j.at("profile");
  t.created_at = j.at("created_at");
  t.expires_at = j.at("expires_at");
  t.uses_allowed = j.at("uses_allowed");
  t.uses = j.at("uses");
  t.revoked = j.at("revoked");
  return t;
}

struct Endpoint {
  std::string scheme, host, port;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const auto p = s.find(sep, start);
    out.push_back(s.substr(start, p - start));
    if (p == std::string::npos) return out;
    start = p + 1;
  }
}

struct EtcdUrl {
  std::vector<Endpoint> endpoints;
  std::string prefix = "/kubeca/";
  std::string ca, cert, key;  // TLS files (https endpoints)
  int lease_ttl = 10;         // seconds a dead replica keeps its periodic tasks
  int batch = 16;             // writes per shared transaction; 1: each write alone
};

// etcd://H:P[,H:P...][?ca=F&cert=F&key=F&prefix=P]  TLS with client certificates
// etcd+http://H:P[,...][?prefix=P]                   plain HTTP (tests, loopback only)
// etcd:https://H:P[,https://H:P...][?...]            the form cluster.yaml shows
EtcdUrl parse_etcd_url(const std::string& url) {
  EtcdUrl out;
  std::string rest, scheme = "https";
  if (url.rfind("etcd://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("etcd+http://", 0) == 0) {
    rest = url.substr(12);
    scheme = "http";
  } else if (url.rfind("etcd:", 0) == 0) {
    rest = url.substr(5);
    scheme.clear();  // each endpoint names its own
  } else {
    throw std::runtime_error("not an etcd store URL: " + url);
  }
  std::string query;
  if (const auto q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  for (const auto& item : split(query, '&')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    const std::string k = item.substr(0, eq),
                      v = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (k == "ca") {
      out.ca = v;
    } else if (k == "cert") {
      out.cert = v;
    } else if (k == "key") {
      out.key = v;
    } else if (k == "prefix") {
      out.prefix = v;
    } else if (k == "lease") {
      out.lease_ttl = std::atoi(v.c_str());
      if (out.lease_ttl < 2 || out.lease_ttl > 300) {
        throw std::runtime_error("store URL " + url + ": lease must be 2 to 300 seconds");
      }
    } else if (k == "batch") {
      out.batch = std::atoi(v.c_str());
      // Each write puts up to five keys; etcd allows 128 operations per transaction.
      if (out.batch < 1 || out.batch > 16) {
        throw std::runtime_error("store URL " + url + ": batch must be 1 to 16 writes");
      }
    } else {
      throw std::runtime_error("store URL " + url + ": unknown parameter \"" + k +
                               "\" (ca, cert, key, prefix, lease, batch)");
    }
  }
  if (out.prefix.empty() || out.prefix.front() != '/') {
    throw std::runtime_error("store URL " + url + ": prefix must start with /");
  }
  if (out.prefix.back() != '/') out.prefix += '/';
  for (const auto& item : split(rest, ',')) {
    const std::string full = scheme.empty() ? item : scheme + "://" + item;
    const auto u = parse_url(full);
    if (!u || (u->scheme != "http" && u->scheme != "https") || u->host.empty() || u->port.empty()) {
      throw std::runtime_error("store URL " + url + ": \"" + item + "\" is not HOST:PORT");
    }
    out.endpoints.push_back({u->scheme, u->host, u->port});
  }
  if (out.endpoints.empty()) throw std::runtime_error("store URL " + url + " names no endpoint");
  for (const auto& e : out.endpoints) {
    if (e.scheme == "https" && (out.ca.empty() || out.cert.empty() || out.key.empty())) {
      throw std::runtime_error("store URL " + url +
                               ": TLS needs ?ca=ETCD_CA&cert=CLIENT_CERT&key=CLIENT_KEY");
    }
  }
  return out;
}

class EtcdStore : public Store {
 public:
  explicit EtcdStore(const std::string& url) : url_(url), cfg_(parse_etcd_url(url)) {}

  // In a shared transaction; alone when that one failed (maybe for another write).
  bool insert_certificate(const CertRecord& cert) override {
    const std::string ck = cert_key(cert.serial);
    if (batcher_.commit({{absent(ck)}, cert_puts(cert), {ck}})) return true;
    return put_certificate(cert) != Put::kTaken;
  }

  // Each record is its own create-if-absent transaction: etcd has made it durable on a
  // quorum when the answer comes, before the caller writes the certificate's file.
  size_t record_certificates(const std::vector<CertRecord>& certs) override {
    size_t added = 0;
    for (const auto& c : certs) added += put_certificate(c) == Put::kNew ? 1 : 0;
    return added;
  }

  std::optional<CertRecord> find_certificate(const std::string& serial) override {
    const auto kv = get(cert_key(serial));
    if (!kv) return std::nullopt;
    return cert_of(json::parse(kv->value));
  }

  std::vector<CertRecord> list_certificates() override {
    std::vector<CertRecord> out;
    for (const auto& kv : range_prefix(cfg_.prefix + "certs/")) {
      out.push_back(cert_of(json::parse(kv.value)));
    }
    std::sort(out.begin(), out.end(), [](const CertRecord& a, const CertRecord& b) {
      return std::tie(a.not_before, a.serial) < std::tie(b.not_before, b.serial);
    });
    return out;
  }

  // The record, its copy under revoked/ (what a CRL lists) and the revocation counter, in
  // one transaction.
  bool revoke_certificate(const std::string& serial, int reason, int64_t now) override {
    const std::string counter = cfg_.prefix + "meta/revocations";
    for (int i = 0; i < kMaxConflicts; ++i) {
      const auto kv = get(cert_key(serial));
      if (!kv) return false;
      CertRecord c = cert_of(json::parse(kv->value));
      if (c.status == "revoked") return true;  // the first time and reason stay
      c.status = "revoked";
      c.revoked_at = now;
      c.reason = reason;
      const auto n = get(counter);
      const int64_t count = n ? std::stoll(n->value) : 0;
      const std::string record = cert_json(c).dump();
      const json r =
          txn({unchanged(kv->key, kv->mod_revision), unchanged(counter, n ? n->mod_revision : 0)},
              {put_op(kv->key, record), put_op(revoked_key(serial), record),
               put_op(counter, std::to_string(count + 1)), put_op(revoked_key_mark(c), "")});
      if (r.value("succeeded", false)) return true;
    }
    throw StoreUnavailable("etcd store: revoking " + serial + " kept conflicting");
  }

  std::optional<CertRecord> newest_of_identity(const std::string& identity) override {
    std::optional<CertRecord> best;
    int64_t best_created = 0;
    for (const auto& [c, created] : indexed("ident/" + sha256_hex(identity) + "/")) {
      if (c.identity != identity) continue;
      if (!best || std::tie(c.not_before, created) > std::tie(best->not_before, best_created)) {
        best = c;
        best_created = created;
      }
    }
    return best;
  }

  std::vector<CertRecord> certificates_with_key(const std::string& key_hash) override {
    return records(indexed("key/" + key_hash + "/"));
  }

  // One marker per revoked certificate under idx/revkey/HASH/, so the answer is a range of
  // at most one key, however many certificates the key has.
  bool key_revoked(const std::string& key_hash) override {
    mark_old_revocations();
    const std::string prefix = cfg_.prefix + "idx/revkey/" + key_hash + "/";
    const json r = call("/v3/kv/range", {{"key", b64(prefix)},
                                         {"range_end", b64(prefix_end(prefix))},
                                         {"limit", 1},
                                         {"keys_only", true}});
    return r.contains("kvs") && !r["kvs"].empty();
  }

  // idx/keyreq/HASH/SHA256(requester)/UNTIL/SERIAL, UNTIL counting down as notAfter goes
  // up, so etcd's own key order (no sort, which would read the whole range) walks from the
  // latest notAfter, a page at a time, until a good one or an expired one. Records stored by
  // a kubeca without this index are found by the key's index, only when this one has none.
  std::optional<CertRecord> issued_for_key(const std::string& key_hash,
                                           const std::string& requester, int64_t now) override {
    const std::string prefix =
        cfg_.prefix + "idx/keyreq/" + key_hash + "/" + sha256_hex(requester) + "/";
    const std::string end = prefix_end(prefix);
    std::string from = prefix;
    bool any = false;
    for (;;) {
      const json r =
          call("/v3/kv/range",
               {{"key", b64(from)}, {"range_end", b64(end)}, {"limit", 16}, {"keys_only", true}});
      if (!r.contains("kvs") || r["kvs"].empty()) break;
      for (const auto& j : r["kvs"]) {
        any = true;
        from = unb64(j.at("key"));
        const std::string rest = from.substr(prefix.size());  // UNTIL/SERIAL
        const auto slash = rest.find('/');
        if (slash == std::string::npos || kUntilBase - std::stoll(rest.substr(0, slash)) <= now) {
          return std::nullopt;
        }
        if (const auto rec = get(cert_key(rest.substr(slash + 1)))) {
          CertRecord c = cert_of(json::parse(rec->value));
          if (c.status == "good" && c.requester == requester) return c;
        }
      }
      if (!r.value("more", false)) break;
      from += std::string(1, '\0');
    }
    if (any) return std::nullopt;
    for (auto& c : records(indexed("key/" + key_hash + "/"))) {
      if (c.requester == requester && c.status == "good" && c.not_after > now) return c;
    }
    return std::nullopt;
  }

  std::vector<CertRecord> certificates_of_node(const std::string& node) override {
    return records(indexed("node/" + node + "/"));
  }

  bool fill_certificate_identity(const std::string& serial, const std::string& key_hash,
                                 const std::string& node, const std::string& identity) override {
    for (int i = 0; i < kMaxConflicts; ++i) {
      const auto kv = get(cert_key(serial));
      if (!kv) return false;
      CertRecord c = cert_of(json::parse(kv->value));
      if (!c.key_hash.empty()) return false;
      c.key_hash = key_hash;
      c.node = node;
      c.identity = identity;
      if (txn({unchanged(kv->key, kv->mod_revision)}, cert_puts(c)).value("succeeded", false)) {
        return true;
      }
    }
    throw StoreUnavailable("etcd store: filling " + serial + " kept conflicting");
  }

  int64_t revocation_count() override {
    const auto n = get(cfg_.prefix + "meta/revocations");
    return n ? std::stoll(n->value) : 0;
  }

  // The next CRL Number, the revoked records and the revocation count, in one transaction.
  CrlBasis next_crl() override {
    const std::string number = cfg_.prefix + "meta/crl_number";
    const std::string revoked = cfg_.prefix + "revoked/";
    for (int i = 0; i < kMaxConflicts; ++i) {
      const auto n = get(number);
      const int64_t next = (n ? std::stoll(n->value) : 0) + 1;
      const json r =
          txn({unchanged(number, n ? n->mod_revision : 0)},
              {put_op(number, std::to_string(next)), range_op(revoked, prefix_end(revoked)),
               range_op(cfg_.prefix + "meta/revocations")});
      if (!r.value("succeeded", false)) continue;
      CrlBasis out;
      out.number = next;
      for (const auto& kv : txn_kvs(r, 1)) {
        out.revoked.push_back(cert_of(json::parse(unb64(kv.value("value", std::string())))));
      }
      const auto counter = txn_kvs(r, 2);
      if (!counter.empty()) out.revocations = std::stoll(unb64(counter[0].value("value", "0")));
      return out;
    }
    throw StoreUnavailable("etcd store: the CRL number kept conflicting");
  }

  void raise_crl_number(int64_t number) override {
    put_if_higher("meta/crl_number", number, {}, "the CRL number");
  }

  // crl/current holds the CRL, meta/crl_published its number: a replica that has the CRL
  // reads only the number. Put together, only over a lower number.
  bool publish_crl(const PublishedCrl& crl) override {
    return put_if_higher("meta/crl_published", crl.number,
                         {put_op(cfg_.prefix + "crl/current", store_internal::crl_text(crl))},
                         "publishing the CRL");
  }

  // Puts `number` under the counter `name` (below the prefix), with `also` in the same
  // transaction, unless the counter is already at or above it: false then, nothing written.
  bool put_if_higher(const std::string& name, int64_t number, std::vector<json> also,
                     const std::string& what) {
    const std::string key = cfg_.prefix + name;
    also.push_back(put_op(key, std::to_string(number)));
    for (int i = 0; i < kMaxConflicts; ++i) {
      const auto n = get(key);
      if (n && std::stoll(n->value) >= number) return false;
      if (txn({unchanged(key, n ? n->mod_revision : 0)}, also).value("succeeded", false)) {
        return true;
      }
    }
    throw StoreUnavailable("etcd store: " + what + " kept conflicting");
  }

  int64_t published_crl_number() override {
    const auto n = get(cfg_.prefix + "meta/crl_published");
    return n ? std::stoll(n->value) : 0;
  }

  std::optional<PublishedCrl> published_crl() override {
    const auto kv = get(cfg_.prefix + "crl/current");
    if (!kv) return std::nullopt;
    return store_internal::crl_of_text(kv->value);
  }

  bool insert_token(const TokenRecord& token) override {
    return create(token_key(token.id), token_json_record(token).dump());
  }

  // A token as the member at hand has it (a serializable read: no consensus round). What
  // was read is kept for use_token, whose transaction compares its revision anyway.
  std::optional<TokenRecord> find_token(const std::string& id) override {
    auto kv = get(token_key(id), /*serializable=*/true);
    // Not on this member yet (made a moment ago through another): ask the leader.
    if (!kv) kv = get(token_key(id));
    if (!kv) return std::nullopt;
    remember(*kv);
    return token_of(json::parse(kv->value));
  }

  std::vector<TokenRecord> list_tokens() override {
    std::vector<TokenRecord> out;
    for (const auto& kv : range_prefix(cfg_.prefix + "tokens/")) {
      out.push_back(token_of(json::parse(kv.value)));
    }
    std::sort(out.begin(), out.end(), [](const TokenRecord& a, const TokenRecord& b) {
      return std::tie(a.created_at, a.id) < std::tie(b.created_at, b.id);
    });
    return out;
  }

  bool revoke_token(const std::string& id) override {
    for (int i = 0; i < kMaxConflicts; ++i) {
      const auto kv = get(token_key(id));
      if (!kv) return false;
      TokenRecord t = token_of(json::parse(kv->value));
      if (t.revoked) return true;
      t.revoked = true;
      if (put_if_unchanged(kv->key, kv->mod_revision, token_json_record(t).dump())) return true;
    }
    throw std::runtime_error("etcd store: revoking token " + id + " kept conflicting");
  }

  // The token's use and the certificate in one transaction: it succeeds only if the token
  // is as read (no other replica spent a use meanwhile) and the serial is new. First in a
  // transaction shared with other requests (TxnBatcher), with the token as find_token read
  // it; when that failed, alone, with the token as etcd has it now.
  TokenUse use_token(const std::string& id, const CertRecord& cert, int64_t now) override {
    const std::string tk = token_key(id), ck = cert_key(cert.serial);
    if (const auto kv = recall(tk)) {
      TokenRecord t = token_of(json::parse(kv->value));
      if (const TokenUse u = token_refusal(t, now); u != TokenUse::kOk) return u;
      ++t.uses;
      const std::string value = token_json_record(t).dump();
      std::vector<json> ops = cert_puts(cert);
      ops.push_back(put_op(tk, value));
      if (const int64_t rev =
              batcher_.commit({{unchanged(tk, kv->mod_revision), absent(ck)}, ops, {tk, ck}})) {
        remember({tk, value, rev, kv->create_revision});  // this token's next use skips a read
        return TokenUse::kOk;
      }
    }
    for (int i = 0; i < kMaxConflicts; ++i) {
      const auto kv = get(tk);
      if (!kv) return TokenUse::kUnknown;
      TokenRecord t = token_of(json::parse(kv->value));
      if (const TokenUse u = token_refusal(t, now); u != TokenUse::kOk) return u;
      ++t.uses;
      const std::string value = token_json_record(t).dump();
      std::vector<json> ops = cert_puts(cert);
      ops.push_back(put_op(tk, value));
      const json r = txn({unchanged(tk, kv->mod_revision), absent(ck)}, ops, {range_op(ck)});
      if (r.value("succeeded", false)) {
        remember({tk, value, num(r.at("header"), "revision"), kv->create_revision});
        return TokenUse::kOk;
      }
      const json held = txn_kvs(r, 0);
      if (!held.empty()) {
        // This very record: a transaction (this one, or the shared one above) was sent again
        // after an answer was lost, and the first send had committed, the token's use with it.
        return value_of(held) == cert_json(cert).dump() ? TokenUse::kOk
                                                        : TokenUse::kDuplicateSerial;
      }
      // Another replica used the token first: read it again.
    }
    throw std::runtime_error("etcd store: token " + id + " kept conflicting");
  }

  // A lease of cfg_.lease_ttl seconds, kept alive by the calls; the task's key lives on it, so
  // a replica that dies frees the task within the TTL.
  bool lead(const std::string& task) override {
    std::lock_guard<std::mutex> lock(lease_mu_);
    const auto now = std::chrono::steady_clock::now();
    if (lease_id_ && now - lease_renewed_ >= std::chrono::seconds(cfg_.lease_ttl) / 3) {
      const json r = call("/v3/lease/keepalive", {{"ID", std::to_string(lease_id_)}});
      const json& result = r.contains("result") ? r["result"] : r;
      if (num(result, "TTL") > 0) {
        lease_renewed_ = now;
      } else {
        lease_id_ = 0;  // expired: another replica may hold the task by now
      }
    }
    if (!lease_id_) {
      const json r = call("/v3/lease/grant", {{"TTL", cfg_.lease_ttl}});
      lease_id_ = num(r, "ID");
      lease_renewed_ = now;
      if (!lease_id_) throw StoreUnavailable("etcd store " + url_ + ": no lease granted");
    }
    const std::string key = cfg_.prefix + "leaders/" + task;
    const std::string me = std::to_string(lease_id_);
    json put = put_op(key, me);
    put["request_put"]["lease"] = me;  // the key goes when the lease does
    const json r = txn({absent(key)}, {put}, {range_op(key)});
    if (r.value("succeeded", false)) return true;
    const json kvs = txn_kvs(r, 0);
    return !kvs.empty() && unb64(kvs[0].value("value", std::string())) == me;
  }

  std::chrono::seconds lease_ttl() const override { return std::chrono::seconds(cfg_.lease_ttl); }

  void bind_ca(const std::string& pin) override {
    const std::string key = cfg_.prefix + "meta/ca_pin";
    if (create(key, pin)) return;
    const auto kv = get(key);
    const std::string bound = kv ? kv->value : "";
    if (bound == pin) return;
    throw InputError("store " + url_ + " belongs to the CA " + bound + ", not to this CA " + pin +
                     "; give the --pki of that CA, or another store for this one");
  }

  bool healthy() override {
    try {
      call("/v3/kv/range", {{"key", b64(cfg_.prefix + "meta/schema")}});
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

 private:
  struct Kv {
    std::string key, value;
    int64_t mod_revision = 0;
    int64_t create_revision = 0;
  };

  std::string cert_key(const std::string& serial) const { return cfg_.prefix + "certs/" + serial; }
  std::string revoked_key(const std::string& serial) const {
    return cfg_.prefix + "revoked/" + serial;
  }

  // A certificate's record and its index keys (by identity, key and node), to be put
  // together so that an index never names a record that is not there.
  std::vector<json> cert_puts(const CertRecord& c) const {
    std::vector<json> ops{put_op(cert_key(c.serial), cert_json(c).dump())};
    const std::string idx = cfg_.prefix + "idx/";
    if (!c.identity.empty()) {
      ops.push_back(put_op(idx + "ident/" + sha256_hex(c.identity) + "/" + c.serial, ""));
    }
    if (!c.key_hash.empty()) {
      ops.push_back(put_op(idx + "key/" + c.key_hash + "/" + c.serial, ""));
      ops.push_back(put_op(key_requester_key(c), ""));
      if (c.status == "revoked") ops.push_back(put_op(revoked_key_mark(c), ""));
    }
    if (!c.node.empty()) ops.push_back(put_op(idx + "node/" + c.node + "/" + c.serial, ""));
    return ops;
  }

  // Under idx/keyreq/: kUntilBase - notAfter as 19 digits, so the latest sorts first.
  std::string key_requester_key(const CertRecord& c) const {
    std::string until =
        std::to_string(kUntilBase - std::clamp<int64_t>(c.not_after, 0, kUntilBase));
    until.insert(0, 19 - until.size(), '0');
    return cfg_.prefix + "idx/keyreq/" + c.key_hash + "/" + sha256_hex(c.requester) + "/" + until +
           "/" + c.serial;
  }
  std::string revoked_key_mark(const CertRecord& c) const {
    return cfg_.prefix + "idx/revkey/" + c.key_hash + "/" + c.serial;
  }

  // Revocations made by a kubeca that wrote no idx/revkey/ markers get theirs, once per
  // process, before the first answer: a barred key stays barred. Reads revoked/ (what a CRL
  // lists) and writes only the markers missing.
  void mark_old_revocations() {
    if (revkeys_checked_.load()) return;
    std::lock_guard<std::mutex> lock(revkey_mu_);
    if (revkeys_checked_.load()) return;
    std::set<std::string> have;
    for (const auto& kv : range_prefix(cfg_.prefix + "idx/revkey/")) have.insert(kv.key);
    std::vector<json> ops;
    auto flush = [&] {
      if (!ops.empty()) txn({}, ops);
      ops.clear();
    };
    for (const auto& kv : range_prefix(cfg_.prefix + "revoked/")) {
      CertRecord c = cert_of(json::parse(kv.value));
      if (c.key_hash.empty()) {  // revoked before its key was filled in: the record has it
        if (const auto rec = get(cert_key(c.serial))) c = cert_of(json::parse(rec->value));
      }
      if (c.key_hash.empty() || have.count(revoked_key_mark(c))) continue;
      ops.push_back(put_op(revoked_key_mark(c), ""));
      if (ops.size() == 100) flush();  // etcd's default limit is 128 operations a transaction
    }
    flush();
    revkeys_checked_ = true;
  }

  // The records an index prefix (under idx/) names, with each record's create revision
  // (the order in which they were stored).
  std::vector<std::pair<CertRecord, int64_t>> indexed(const std::string& index) {
    std::vector<std::pair<CertRecord, int64_t>> out;
    const std::string prefix = cfg_.prefix + "idx/" + index;
    for (const auto& kv : range_prefix(prefix)) {
      if (const auto rec = get(cert_key(kv.key.substr(prefix.size())))) {
        out.emplace_back(cert_of(json::parse(rec->value)), rec->create_revision);
      }
    }
    return out;
  }
  static std::vector<CertRecord> records(std::vector<std::pair<CertRecord, int64_t>> in) {
    std::vector<CertRecord> out;
    for (auto& [c, created] : in) out.push_back(std::move(c));
    std::sort(out.begin(), out.end(), [](const CertRecord& a, const CertRecord& b) {
      return std::tie(a.not_before, a.serial) < std::tie(b.not_before, b.serial);
    });
    return out;
  }

  json txn(const std::vector<json>& compare, const std::vector<json>& success,
           const std::vector<json>& failure = {}) {
    json body = {{"compare", json(compare)}, {"success", json(success)}};
    if (!failure.empty()) body["failure"] = json(failure);
    return call("/v3/kv/txn", body);
  }
  std::string token_key(const std::string& id) const { return cfg_.prefix + "tokens/" + id; }

  static Kv kv_of(const json& j) {
    return {unb64(j.at("key")), unb64(j.value("value", std::string())), num(j, "mod_revision"),
            num(j, "create_revision")};
  }

  std::optional<Kv> get(const std::string& key, bool serializable = false) {
    json req = {{"key", b64(key)}};
    if (serializable) req["serializable"] = true;
    const json r = call("/v3/kv/range", req);
    if (!r.contains("kvs") || r["kvs"].empty()) return std::nullopt;
    return kv_of(r["kvs"][0]);
  }

  // Recently read or written tokens, bounded: a token's next use can skip its read. A read
  // from a member that is behind never replaces a newer revision.
  void remember(const Kv& kv) {
    std::lock_guard<std::mutex> lock(mu_);
    if (recent_.size() >= 4096) recent_.clear();
    auto& held = recent_[kv.key];
    if (kv.mod_revision >= held.mod_revision) held = kv;
  }
  std::optional<Kv> recall(const std::string& key) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = recent_.find(key);
      if (it != recent_.end()) {
        Kv kv = std::move(it->second);
        recent_.erase(it);
        return kv;
      }
    }
    return get(key);
  }

  std::vector<Kv> range_prefix(const std::string& prefix) {
    std::vector<Kv> out;
    const std::string end = prefix_end(prefix);
    std::string from = prefix;
    int64_t revision = 0;  // every page from the first page's revision: one consistent view
    for (;;) {
      json req = {{"key", b64(from)}, {"range_end", b64(end)}, {"limit", kPage}};
      if (revision) req["revision"] = std::to_string(revision);
      const json r = call("/v3/kv/range", req);
      if (!revision) revision = num(r.at("header"), "revision");
      if (!r.contains("kvs")) break;
      for (const auto& kv : r["kvs"]) out.push_back(kv_of(kv));
      if (!r.value("more", false)) break;
      from = out.back().key + std::string(1, '\0');
    }
    return out;
  }

  // Put::kOurs: the key holds this very value, which only a lost answer explains (the
  // values carry random serials and secrets' hashes): call() sent the transaction again
  // to the next member after the first one committed it and died or timed out.
  enum class Put { kNew, kOurs, kTaken };
  Put put_new(const std::string& key, const std::vector<json>& ops, const std::string& value) {
    const json r = txn({absent(key)}, ops, {range_op(key)});
    if (r.value("succeeded", false)) return Put::kNew;
    return value_of(txn_kvs(r, 0)) == value ? Put::kOurs : Put::kTaken;
  }
  Put put_certificate(const CertRecord& c) {
    return put_new(cert_key(c.serial), cert_puts(c), cert_json(c).dump());
  }
  static std::string value_of(const json& kvs) {
    return kvs.empty() ? std::string() : unb64(kvs[0].value("value", std::string()));
  }

  bool create(const std::string& key, const std::string& value) {
    return put_new(key, {put_op(key, value)}, value) != Put::kTaken;
  }

  bool put_if_unchanged(const std::string& key, int64_t mod_revision, const std::string& value) {
    return txn({unchanged(key, mod_revision)}, {put_op(key, value)}).value("succeeded", false);
  }

  // One request, to the endpoint that answered last, then to each other in turn.
  json call(const std::string& path, const json& body) {
    const std::string text = body.dump();
    std::string errors;
    const size_t n = cfg_.endpoints.size();
    const size_t first = preferred_.load();
    for (size_t i = 0; i < n; ++i) {
      const size_t e = (first + i) % n;
      auto client = take(e);
      auto res = client->Post(path.c_str(), text, "application/json");
      if (res && res->status == 200) {
        give(e, std::move(client));
        preferred_ = e;
        return json::parse(res->body);
      }
      const auto& ep = cfg_.endpoints[e];
      errors += (errors.empty() ? "" : "; ") + ep.host + ":" + ep.port + ": " +
                (res ? "HTTP " + std::to_string(res->status) + " " + res->body.substr(0, 200)
                     : httplib::to_string(res.error()));
    }
    throw StoreUnavailable("etcd store " + url_ + " unavailable: " + errors);
  }

  std::unique_ptr<httplib::Client> take(size_t e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& idle = idle_[e];
      if (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    const auto& ep = cfg_.endpoints[e];
    std::unique_ptr<httplib::Client> c;
    if (ep.scheme == "https") {
      c = std::make_unique<httplib::Client>("https://" + url_host(ep.host) + ":" + ep.port,
                                            cfg_.cert, cfg_.key);
      c->set_ca_cert_path(cfg_.ca.c_str());
      c->enable_server_certificate_verification(true);
    } else {
      c = std::make_unique<httplib::Client>("http://" + url_host(ep.host) + ":" + ep.port);
    }
    c->set_keep_alive(true);
    // A request goes out as headers then body: with Nagle's algorithm the body waits for
    // etcd's delayed ACK of the headers.
    c->set_tcp_nodelay(true);
    c->set_connection_timeout(std::chrono::seconds(2));
    c->set_read_timeout(std::chrono::seconds(5));
    c->set_write_timeout(std::chrono::seconds(5));
    return c;
  }

  void give(size_t e, std::unique_ptr<httplib::Client> c) {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_[e].size() < 16) idle_[e].push_back(std::move(c));
  }

  static TokenUse token_refusal(const TokenRecord& t, int64_t now) {
    return store_internal::check_token(t.revoked, t.expires_at, t.uses_allowed, t.uses, now);
  }

  std::string url_;
  EtcdUrl cfg_;
  std::mutex lease_mu_;
  int64_t lease_id_ = 0;
  std::chrono::steady_clock::time_point lease_renewed_;
  std::atomic<size_t> preferred_{0};
  std::mutex mu_;
  std::map<size_t, std::vector<std::unique_ptr<httplib::Client>>> idle_;
  std::map<std::string, Kv> recent_;  // guarded by mu_
  std::mutex revkey_mu_;
  std::atomic<bool> revkeys_checked_{false};  // mark_old_revocations has run
  // Up to cfg_.batch writes per transaction.
  store_internal::TxnBatcher batcher_{
      [this](const std::vector<json>& compares, const std::vector<json>& puts) -> int64_t {
        const json r = txn(compares, puts);
        return r.value("succeeded", false) ? num(r.at("header"), "revision") : 0;
      },
      static_cast<size_t>(cfg_.batch)};
};

}  // namespace

std::unique_ptr<Store> open_etcd_store(const std::string& url) {
  return std::make_unique<EtcdStore>(url);
}

}  // namespace kubeca

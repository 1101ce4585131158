// sqlite:PATH: the embedded store of one master (WAL, synchronous=FULL, group commit).
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "kubeca/config.h"
#include "kubeca/store.h"
#include "store_internal.h"
namespace kubeca {

namespace {

using namespace store_internal;

// Rows of each table a health check reads (about 512 KiB of certificates).
constexpr int64_t kHealthSlice = 512;

// How long a writer waits for another (serve and the CLI share the file).
constexpr std::chrono::milliseconds kBusyTimeout{5000};

// Written into the header so a database of another program is never migrated into ours.
constexpr int kApplicationId = 0x6b756263;  // "kubc"

// Migration N (1-based) takes the schema from version N-1 to N. Append; never edit a step
// that has shipped, since databases out there already ran it.
const char* const kMigrations[] = {
    // 1: the first schema.
    "CREATE TABLE certificates ("
    "  serial TEXT PRIMARY KEY NOT NULL,"
    "  profile TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  sans TEXT NOT NULL,"  // JSON array of strings
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  requester TEXT NOT NULL,"
    "  pem TEXT NOT NULL,"
    "  revoked_at INTEGER NOT NULL DEFAULT 0,"
    "  reason INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX certificates_by_not_before ON certificates (not_before, serial);"
    "CREATE TABLE tokens ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  secret_hash TEXT NOT NULL,"
    "  node TEXT NOT NULL,"
    "  ips TEXT NOT NULL,"  // JSON array of strings
    "  profile TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  uses_allowed INTEGER NOT NULL,"
    "  uses INTEGER NOT NULL DEFAULT 0,"
    "  revoked INTEGER NOT NULL DEFAULT 0"
    ");",
    // 2: facts about the store itself; "ca_pin" names the CA it belongs to (bind_ca).
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY NOT NULL,"
    "  value TEXT NOT NULL"
    ");",
    // 3: what renewal and revocation policy needs: the key and identity of each certificate,
    // the node it belongs to, and counters for revocations and CRL Numbers.
    "ALTER TABLE certificates ADD COLUMN key_hash TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE certificates ADD COLUMN node TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE certificates ADD COLUMN identity TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX certificates_by_key ON certificates (key_hash);"
    "CREATE INDEX certificates_by_node ON certificates (node);"
    "CREATE INDEX certificates_by_identity ON certificates (identity, not_before);"
    "CREATE INDEX certificates_by_status ON certificates (status);"
    "CREATE TABLE counters (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);"
    "INSERT INTO counters (name, value) VALUES ('crl_number', 0), ('revocations', "
    "  (SELECT count(*) FROM certificates WHERE status = 'revoked'));",
    // 4: key lookups that stop at the first row they need: a key reused for thousands of
    // certificates (a node that keeps its key, a benchmark's one CSR) costs one probe, not a
    // read of each. (key_hash, status) also serves every lookup by key_hash alone.
    "DROP INDEX certificates_by_key;"
    "CREATE INDEX certificates_by_key_status ON certificates (key_hash, status);"
    "CREATE INDEX certificates_by_key_requester ON certificates (key_hash, requester, not_after);",
};
constexpr int kSchemaVersion = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));

constexpr const char* kCertColumns =
    "serial, profile, subject, sans, not_before, not_after, status, requester, pem, "
    "revoked_at, reason, key_hash, node, identity";
constexpr const char* kTokenColumns =
    "id, secret_hash, node, ips, profile, created_at, expires_at, uses_allowed, uses, revoked";

std::string to_json(const std::vector<std::string>& v) { return nlohmann::json(v).dump(); }

class SqliteStore : public Store {
 public:
  // `path` is a file name or ":memory:"; `url` names the store in errors. Without `create`,
  // a file removed since open_store checked it is not made again.
  SqliteStore(const std::string& path, std::string url, bool create) : url_(std::move(url)) {
    const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      throw std::runtime_error("cannot open store " + url_ + ": " + msg);
    }
    try {
      // Set before anything else touches the file: serve and the CLI share it.
      sqlite3_busy_timeout(db_, static_cast<int>(kBusyTimeout.count()));
      exec("PRAGMA foreign_keys = ON", "enabling foreign keys");
      set_wal();
      // FULL: a commit is on the disk before a certificate is handed out; with NORMAL a
      // power loss could roll back an issued certificate and give its token the use back.
      exec("PRAGMA synchronous = FULL", "setting synchronous mode");
      migrate();
    } catch (...) {
      finalize_and_close();
      throw;
    }
  }

  ~SqliteStore() override { finalize_and_close(); }

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  bool insert_certificate(const CertRecord& cert) override {
    bool ok = false;
    const std::string what = "inserting certificate " + cert.serial;
    group_commit(what, [&] { ok = insert_cert_locked(cert, what); });
    return ok;
  }

  size_t record_certificates(const std::vector<CertRecord>& certs) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string what = "recording " + std::to_string(certs.size()) + " certificates";
    // synchronous = FULL syncs the log at this COMMIT: the records are on disk before the
    // caller writes the files. serve's commits keep NORMAL (durable on a process crash).
    exec("PRAGMA synchronous = FULL", what);
    size_t added = 0;
    try {
      Transaction txn(*this, what);
      for (const auto& c : certs) added += insert_cert_locked(c, what) ? 1 : 0;
      txn.commit();
    } catch (...) {
      sqlite3_exec(db_, "PRAGMA synchronous = NORMAL", nullptr, nullptr, nullptr);
      throw;
    }
    exec("PRAGMA synchronous = NORMAL", what);
    return added;
  }

  std::optional<CertRecord> find_certificate(const std::string& serial) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string what = "reading certificate " + serial;
    Stmt s = prepare(std::string("SELECT ") + kCertColumns + " FROM certificates WHERE serial = ?1",
                     what);
    s.bind(1, serial);
    if (!s.step()) return std::nullopt;
    return read_cert(s);
  }

  std::vector<CertRecord> list_certificates() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s = prepare(
        std::string("SELECT ") + kCertColumns + " FROM certificates ORDER BY not_before, serial",
        "listing certificates");
    std::vector<CertRecord> out;
    while (s.step()) out.push_back(read_cert(s));
    return out;
  }

  bool revoke_certificate(const std::string& serial, int reason, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string what = "revoking certificate " + serial;
    Transaction txn(*this, what);
    {
      // Counted only when the certificate was not revoked yet; in the same transaction.
      Stmt s = prepare(
          "UPDATE counters SET value = value + 1 WHERE name = 'revocations' AND EXISTS"
          " (SELECT 1 FROM certificates WHERE serial = ?1 AND status != 'revoked')",
          what);
      s.bind(1, serial);
      s.step();
    }
    // One statement so two revokers cannot interleave: the first time and reason stay.
    // The row counts as changed even when already revoked, which tells "known" from "unknown".
    Stmt s = prepare(
        "UPDATE certificates SET"
        " revoked_at = CASE WHEN status = 'revoked' THEN revoked_at ELSE ?2 END,"
        " reason = CASE WHEN status = 'revoked' THEN reason ELSE ?3 END,"
        " status = 'revoked'"
        " WHERE serial = ?1",
        "revoking certificate " + serial);
    s.bind(1, serial);
    s.bind(2, now);
    s.bind(3, static_cast<int64_t>(reason));
    s.step();
    const bool known = sqlite3_changes(db_) == 1;
    txn.commit();
    return known;
  }

  std::optional<CertRecord> newest_of_identity(const std::string& identity) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s = prepare(std::string("SELECT ") + kCertColumns +
                         " FROM certificates WHERE identity = ?1"
                         " ORDER BY not_before DESC, rowid DESC LIMIT 1",
                     "reading the newest certificate of an identity");
    s.bind(1, identity);
    if (!s.step()) return std::nullopt;
    return read_cert(s);
  }

  std::vector<CertRecord> certificates_with_key(const std::string& key_hash) override {
    return select_certs("key_hash", key_hash, "reading certificates by key");
  }

  bool key_revoked(const std::string& key_hash) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s = prepare(
        "SELECT 1 FROM certificates INDEXED BY certificates_by_key_status"
        " WHERE key_hash = ?1 AND status = 'revoked' LIMIT 1",
        "reading revocations of a key");
    s.bind(1, key_hash);
    return s.step();
  }

  std::optional<CertRecord> issued_for_key(const std::string& key_hash,
                                           const std::string& requester, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s = prepare(std::string("SELECT ") + kCertColumns +
                         " FROM certificates INDEXED BY certificates_by_key_requester"
                         " WHERE key_hash = ?1 AND requester = ?2 AND not_after > ?3"
                         " AND status = 'good' ORDER BY not_after DESC, rowid DESC LIMIT 1",
                     "reading the certificate issued for a key");
    s.bind(1, key_hash);
    s.bind(2, requester);
    s.bind(3, now);
    if (!s.step()) return std::nullopt;
    return read_cert(s);
  }

  std::vector<CertRecord> certificates_of_node(const std::string& node) override {
    return select_certs("node", node, "reading certificates of node " + node);
  }

  bool fill_certificate_identity(const std::string& serial, const std::string& key_hash,
                                 const std::string& node, const std::string& identity) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s = prepare(
        "UPDATE certificates SET key_hash = ?2, node = ?3, identity = ?4"
        " WHERE serial = ?1 AND key_hash = ''",
        "filling in certificate " + serial);
    s.bind(1, serial);
    s.bind(2, key_hash);
    s.bind(3, node);
    s.bind(4, identity);
    s.step();
    return sqlite3_changes(db_) == 1;
  }

  // By the key_hash index: a store filled in long ago costs one index probe at start.
  std::vector<CertRecord> certificates_without_identity() override {
    return select_certs("key_hash", "", "reading certificates stored without a key hash");
  }

  // In slices of rowids, the lock released between them: a start-up scan of a large store
  // does not hold up the requests being answered meanwhile.
  void visit_live_certificates(int64_t now, const LiveVisitor& fn) override {
    struct Row {
      std::string serial, profile;
      int64_t not_after;
    };
    std::vector<Row> rows;
    for (int64_t after = 0;;) {
      rows.clear();
      {
        std::lock_guard<std::mutex> lock(mu_);
        Stmt s = prepare(
            "SELECT rowid, serial, profile, not_after FROM certificates NOT INDEXED WHERE rowid > "
            "?1"
            " AND status = 'good' AND not_after > ?2 ORDER BY rowid LIMIT 2048",
            "reading the live certificates");
        s.bind(1, after);
        s.bind(2, now);
        while (s.step()) {
          after = s.int64(0);
          rows.push_back({s.text(1), s.text(2), s.int64(3)});
        }
      }
      for (const auto& r : rows) fn(r.serial, r.profile, r.not_after);
      if (rows.size() < 2048) return;
    }
  }

  int64_t revocation_count() override {
    std::lock_guard<std::mutex> lock(mu_);
    return counter("revocations", "reading the revocation count");
  }

  void raise_crl_number(int64_t number) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string what = "raising the CRL number";
    Stmt s = prepare("UPDATE counters SET value = max(value, ?1) WHERE name = 'crl_number'", what);
    s.bind(1, number);
    s.step();
  }

  CrlBasis next_crl() override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string what = "taking the next CRL number";
    Transaction txn(*this, what);
    {
      Stmt s = prepare("UPDATE counters SET value = value + 1 WHERE name = 'crl_number'", what);
      s.step();
    }
    CrlBasis b;
    b.number = counter("crl_number", what);
    b.revocations = counter("revocations", what);
    {
      Stmt s =
          prepare(std::string("SELECT ") + kCertColumns +
                      " FROM certificates WHERE status = 'revoked' ORDER BY not_before, serial",
                  what);
      while (s.step()) b.revoked.push_back(read_cert(s));
    }
    txn.commit();
    return b;
  }

  bool insert_token(const TokenRecord& t) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s = prepare(std::string("INSERT INTO tokens (") + kTokenColumns +
                         ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                         " ON CONFLICT (id) DO NOTHING",
                     "inserting token " + t.id);
    s.bind(1, t.id);
    s.bind(2, t.secret_hash);
    s.bind(3, t.node);
    s.bind(4, to_json(t.ips));
    s.bind(5, t.profile);
    s.bind(6, t.created_at);
    s.bind(7, t.expires_at);
    s.bind(8, static_cast<int64_t>(t.uses_allowed));
    s.bind(9, static_cast<int64_t>(t.uses));
    s.bind(10, static_cast<int64_t>(t.revoked ? 1 : 0));
    s.step();
    return sqlite3_changes(db_) == 1;
  }

  std::optional<TokenRecord> find_token(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s = prepare(std::string("SELECT ") + kTokenColumns + " FROM tokens WHERE id = ?1",
                     "reading token " + id);
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_token(s);
  }

  std::vector<TokenRecord> list_tokens() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s =
        prepare(std::string("SELECT ") + kTokenColumns + " FROM tokens ORDER BY created_at, id",
                "listing tokens");
    std::vector<TokenRecord> out;
    while (s.step()) out.push_back(read_token(s));
    return out;
  }

  bool revoke_token(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s = prepare("UPDATE tokens SET revoked = 1 WHERE id = ?1", "revoking token " + id);
    s.bind(1, id);
    s.step();
    return sqlite3_changes(db_) == 1;
  }

  TokenUse use_token(const std::string& id, const CertRecord& cert, int64_t now) override {
    TokenUse u = TokenUse::kUnknown;
    group_commit("using token " + id, [&] { u = use_token_locked(id, cert, now); });
    return u;
  }

  int64_t outside_changes() override {
    std::lock_guard<std::mutex> lock(mu_);
    return pragma_int("PRAGMA data_version", "reading the data version");
  }

  // Run on every readiness probe, so bounded: the schema, the next kHealthSlice rows of each
  // table (wrapping around, so the whole store is read every N / kHealthSlice probes) and a
  // root-to-leaf path through each index. Once any query met a corrupt page, false until
  // restart: a damaged file does not heal, and the next probe's slice may miss the damage.
  bool healthy() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (corrupt_) return false;
    try {
      const std::string what = "checking health";
      Stmt schema = prepare("SELECT count(*) FROM sqlite_master", what);
      if (!schema.step() || schema.int64(0) == 0) return false;
      std::string serial, id;
      health_certs_ = read_slice(std::string("SELECT rowid, ") + kCertColumns +
                                     " FROM certificates WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                                 health_certs_, serial);
      health_tokens_ = read_slice(std::string("SELECT rowid, ") + kTokenColumns +
                                      " FROM tokens WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                                  health_tokens_, id);
      for (const auto& [sql, key] : {std::pair<const char*, std::string>{
                                         "SELECT 1 FROM certificates WHERE serial = ?1", serial},
                                     {"SELECT 1 FROM tokens WHERE id = ?1", id}}) {
        Stmt s = prepare(sql, what);
        s.bind(1, key);
        s.step();
      }
      Stmt newest = prepare("SELECT max(not_before) FROM certificates", what);  // the index's edge
      newest.step();
      return !corrupt_;
    } catch (const std::exception&) {
      return false;
    }
  }

  // The CRL in meta: "crl" (crl_text) and its number in "crl_published", so a request for
  // the CRL reads one short row while it has not changed.
  bool publish_crl(const PublishedCrl& crl) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string what = "publishing CRL " + std::to_string(crl.number);
    Transaction txn(*this, what);
    if (meta_number("crl_published", what) >= crl.number) return false;
    for (const auto& [k, v] : {std::pair<std::string, std::string>{"crl", crl_text(crl)},
                               {"crl_published", std::to_string(crl.number)}}) {
      Stmt s = prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", what);
      s.bind(1, k);
      s.bind(2, v);
      s.step();
    }
    txn.commit();
    return true;
  }

  int64_t published_crl_number() override {
    std::lock_guard<std::mutex> lock(mu_);
    return meta_number("crl_published", "reading the published CRL number");
  }

  std::optional<PublishedCrl> published_crl() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s = prepare("SELECT value FROM meta WHERE key = 'crl'", "reading the published CRL");
    if (!s.step()) return std::nullopt;
    return crl_of_text(s.text(0));
  }

  void bind_ca(const std::string& pin) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string what = "binding the store to CA " + pin;
    if (auto bound = read_ca_pin(what)) return check_ca(url_, *bound, pin);
    // Not bound yet: under the write lock, since another process may bind it first.
    Transaction txn(*this, what);
    if (auto bound = read_ca_pin(what)) return check_ca(url_, *bound, pin);
    {
      Stmt s = prepare("INSERT INTO meta (key, value) VALUES ('ca_pin', ?1)", what);
      s.bind(1, pin);
      s.step();
    }
    txn.commit();
  }

 private:
  // A cached prepared statement; resets itself (and drops its bindings) when it goes out of
  // scope so the next user starts clean and no read stays open across a COMMIT.
  class Stmt {
   public:
    Stmt(SqliteStore& store, sqlite3_stmt* s, std::string what)
        : store_(store), s_(s), what_(std::move(what)) {}
    ~Stmt() {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    void bind(int i, const std::string& v) {
      check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    }
    void bind(int i, int64_t v) { check(sqlite3_bind_int64(s_, i, v)); }

    // True when a row is ready; false when done.
    bool step() {
      int rc = sqlite3_step(s_);
      if (rc == SQLITE_ROW) return true;
      if (rc == SQLITE_DONE) return false;
      store_.fail(what_);
    }
    // The raw result, for the caller that handles SQLITE_BUSY itself.
    int step_rc() { return sqlite3_step(s_); }

    std::string text(int col) const {
      const unsigned char* p = sqlite3_column_text(s_, col);
      if (p == nullptr) return "";
      return std::string(reinterpret_cast<const char*>(p),
                         static_cast<size_t>(sqlite3_column_bytes(s_, col)));
    }
    int64_t int64(int col) const { return sqlite3_column_int64(s_, col); }
    const std::string& what() const { return what_; }
    sqlite3_stmt* raw() const { return s_; }

   private:
    void check(int rc) {
      if (rc != SQLITE_OK) store_.fail(what_);
    }
    SqliteStore& store_;
    sqlite3_stmt* s_;
    std::string what_;
  };

  // BEGIN IMMEDIATE now; ROLLBACK on scope exit unless committed.
  class Transaction {
   public:
    Transaction(SqliteStore& store, std::string what) : store_(store), what_(std::move(what)) {
      store_.run("BEGIN IMMEDIATE", what_);
    }
    ~Transaction() {
      // Some errors (SQLITE_FULL, SQLITE_IOERR, ...) already rolled back.
      if (!done_ && !sqlite3_get_autocommit(store_.db_)) {
        sqlite3_exec(store_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
      }
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    void commit() {
      store_.run("COMMIT", what_);
      done_ = true;
    }

   private:
    SqliteStore& store_;
    std::string what_;
    bool done_ = false;
  };

  // In the batch's transaction (BEGIN IMMEDIATE: two users of the last use cannot both read
  // "one left", and a read-then-write upgrade never fails with SQLITE_BUSY_SNAPSHOT).
  TokenUse use_token_locked(const std::string& id, const CertRecord& cert, int64_t now) {
    const std::string what = "using token " + id;
    TokenUse u;
    {
      Stmt s =
          prepare("SELECT revoked, expires_at, uses_allowed, uses FROM tokens WHERE id = ?1", what);
      s.bind(1, id);
      if (!s.step()) return TokenUse::kUnknown;
      u = check_token(s.int64(0) != 0, s.int64(1), static_cast<int>(s.int64(2)),
                      static_cast<int>(s.int64(3)), now);
    }
    if (u != TokenUse::kOk) return u;
    if (!insert_cert_locked(cert, what)) return TokenUse::kDuplicateSerial;
    Stmt s = prepare("UPDATE tokens SET uses = uses + 1 WHERE id = ?1", what);
    s.bind(1, id);
    s.step();
    return TokenUse::kOk;
  }

  // Group commit: a write that issues a certificate returns only once its transaction is on
  // the disk (synchronous=FULL), and the writes that arrive while one commit is being synced
  // share the next transaction, so one fsync pays for many certificates. Each runs in a
  // savepoint of its own: one that throws changes nothing and fails alone.
  struct Pending {
    std::string what;
    std::function<void()> op;
    std::exception_ptr error;
    bool done = false;
  };

  void group_commit(std::string what, std::function<void()> op) {
    Pending me{std::move(what), std::move(op), nullptr, false};
    std::unique_lock<std::mutex> lock(batch_mu_);
    queue_.push_back(&me);
    while (!me.done) {
      if (committing_) {
        batch_cv_.wait(lock);
        continue;
      }
      committing_ = true;
      std::vector<Pending*> batch;
      batch.swap(queue_);
      lock.unlock();
      run_batch(batch);
      lock.lock();
      committing_ = false;
      batch_cv_.notify_all();
    }
    if (me.error) std::rethrow_exception(me.error);
  }

  void run_batch(const std::vector<Pending*>& batch) {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      std::string what = batch.front()->what;
      if (batch.size() > 1) what += " (with " + std::to_string(batch.size() - 1) + " more writes)";
      Transaction txn(*this, what);
      for (Pending* p : batch) {
        run("SAVEPOINT op", p->what);
        try {
          p->op();
          run("RELEASE op", p->what);
        } catch (...) {
          p->error = std::current_exception();
          run("ROLLBACK TO op", p->what);
          run("RELEASE op", p->what);
        }
      }
      txn.commit();
    } catch (...) {
      // Nothing of the batch is on the disk: every write in it fails.
      for (Pending* p : batch) {
        if (!p->error) p->error = std::current_exception();
      }
    }
    for (Pending* p : batch) p->done = true;
  }

  [[noreturn]] void fail(const std::string& what) const {
    const int code = sqlite3_errcode(db_) & 0xff;
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) corrupt_ = true;
    throw std::runtime_error("store " + url_ + ": " + what + ": " + sqlite3_errmsg(db_));
  }

  // For fixed SQL only (pragmas, BEGIN/COMMIT, migrations); values always go through Stmt.
  void exec(const char* sql, const std::string& what) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(what);
  }

  // A fixed statement that returns no rows (BEGIN, COMMIT, SAVEPOINT...), prepared once:
  // sqlite3_exec would parse it again on every issuance.
  void run(const char* sql, const std::string& what) {
    Stmt s = prepare(sql, what);
    while (s.step()) {
    }
  }

  Stmt prepare(const std::string& sql, std::string what) {
    sqlite3_stmt*& s = stmts_[sql];
    if (s == nullptr) {
      int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                  SQLITE_PREPARE_PERSISTENT, &s, nullptr);
      if (rc != SQLITE_OK) {
        sqlite3_finalize(s);
        stmts_.erase(sql);
        fail(what);
      }
    }
    return Stmt(*this, s, std::move(what));
  }

  // Reads up to kHealthSlice rows after rowid `after`, every column; returns where the next
  // slice starts (0 again after the last row). `last_key` gets the first column of the last row.
  int64_t read_slice(const std::string& sql, int64_t after, std::string& last_key) {
    Stmt s = prepare(sql, "checking health");
    s.bind(1, after);
    s.bind(2, kHealthSlice);
    int64_t n = 0, rowid = 0;
    while (s.step()) {
      ++n;
      rowid = s.int64(0);
      last_key = s.text(1);
      for (int c = 2; c < sqlite3_column_count(s.raw()); ++c) s.text(c);
    }
    return n < kHealthSlice ? 0 : rowid;
  }

  int64_t pragma_int(const char* sql, const std::string& what) {
    Stmt s = prepare(sql, what);
    if (!s.step()) fail(what);
    return s.int64(0);
  }

  void set_wal() {
    // Switching a new file to WAL needs an exclusive lock, and SQLite answers SQLITE_BUSY
    // without calling the busy handler when two processes open the same new file at once.
    const auto deadline = std::chrono::steady_clock::now() + kBusyTimeout;
    std::string mode;
    for (;;) {
      Stmt s = prepare("PRAGMA journal_mode = WAL", "enabling WAL");
      int rc = s.step_rc();
      if (rc == SQLITE_ROW) {
        mode = s.text(0);
        break;
      }
      if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) {
        fail(s.what());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // An in-memory database keeps "memory": there is no file for a log beside it.
    if (mode != "wal" && mode != "memory") {
      throw std::runtime_error("store " + url_ + ": cannot enable WAL, journal mode is " + mode);
    }
  }

  void migrate() {
    const int64_t app_id = pragma_int("PRAGMA application_id", "reading the application id");
    if (app_id != 0 && app_id != kApplicationId) {
      throw std::runtime_error("store " + url_ +
                               " is not a kubeca database (it belongs to another program); "
                               "point --store at a new file");
    }
    auto version = [this] { return pragma_int("PRAGMA user_version", "reading schema version"); };
    auto check_not_newer = [this](int64_t v) {
      if (v > kSchemaVersion) {
        throw std::runtime_error("store " + url_ + " has schema version " + std::to_string(v) +
                                 " but this kubeca knows up to version " +
                                 std::to_string(kSchemaVersion) +
                                 "; use a newer kubeca with this database");
      }
    };
    int64_t v = version();
    check_not_newer(v);
    while (v < kSchemaVersion) {
      const std::string what = "migrating schema to version " + std::to_string(v + 1);
      Transaction txn(*this, what);
      // Another process may have migrated while we waited for the write lock.
      v = version();
      check_not_newer(v);
      if (v == kSchemaVersion) break;
      exec(kMigrations[v], what);
      // PRAGMA takes no bound parameters; both numbers are constants of this file.
      const std::string bump = "PRAGMA user_version = " + std::to_string(v + 1) +
                               "; PRAGMA application_id = " + std::to_string(kApplicationId);
      exec(bump.c_str(), what);
      txn.commit();
      ++v;
    }
  }

  std::optional<std::string> read_ca_pin(const std::string& what) {
    Stmt s = prepare("SELECT value FROM meta WHERE key = 'ca_pin'", what);
    if (!s.step()) return std::nullopt;
    return s.text(0);
  }

  int64_t meta_number(const char* key, const std::string& what) {
    Stmt s = prepare("SELECT value FROM meta WHERE key = ?1", what);
    s.bind(1, std::string(key));
    return s.step() ? std::stoll(s.text(0)) : 0;
  }

  int64_t counter(const char* name, const std::string& what) {
    Stmt s = prepare("SELECT value FROM counters WHERE name = ?1", what);
    s.bind(1, std::string(name));
    if (!s.step()) fail(what);
    return s.int64(0);
  }

  // `column` is one of this file's constants, never input.
  std::vector<CertRecord> select_certs(const char* column, const std::string& value,
                                       const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s = prepare(std::string("SELECT ") + kCertColumns + " FROM certificates WHERE " + column +
                         " = ?1 ORDER BY not_before, serial",
                     what);
    s.bind(1, value);
    std::vector<CertRecord> out;
    while (s.step()) out.push_back(read_cert(s));
    return out;
  }

  bool insert_cert_locked(const CertRecord& c, const std::string& what) {
    Stmt s = prepare(std::string("INSERT INTO certificates (") + kCertColumns +
                         ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                         " ON CONFLICT (serial) DO NOTHING",
                     what);
    s.bind(1, c.serial);
    s.bind(2, c.profile);
    s.bind(3, c.subject);
    s.bind(4, to_json(c.sans));
    s.bind(5, c.not_before);
    s.bind(6, c.not_after);
    s.bind(7, c.status);
    s.bind(8, c.requester);
    s.bind(9, c.pem);
    s.bind(10, c.revoked_at);
    s.bind(11, static_cast<int64_t>(c.reason));
    s.bind(12, c.key_hash);
    s.bind(13, c.node);
    s.bind(14, c.identity);
    s.step();
    return sqlite3_changes(db_) == 1;
  }

  std::vector<std::string> from_json(const std::string& text, const std::string& where) const {
    try {
      return nlohmann::json::parse(text).get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error("store " + url_ + ": " + where + " is not a JSON list: " + e.what());
    }
  }

  CertRecord read_cert(const Stmt& s) const {
    CertRecord c;
    c.serial = s.text(0);
    c.profile = s.text(1);
    c.subject = s.text(2);
    c.sans = from_json(s.text(3), "SANs of certificate " + c.serial);
    c.not_before = s.int64(4);
    c.not_after = s.int64(5);
    c.status = s.text(6);
    c.requester = s.text(7);
    c.pem = s.text(8);
    c.revoked_at = s.int64(9);
    c.reason = static_cast<int>(s.int64(10));
    c.key_hash = s.text(11);
    c.node = s.text(12);
    c.identity = s.text(13);
    return c;
  }

  TokenRecord read_token(const Stmt& s) const {
    TokenRecord t;
    t.id = s.text(0);
    t.secret_hash = s.text(1);
    t.node = s.text(2);
    t.ips = from_json(s.text(3), "IPs of token " + t.id);
    t.profile = s.text(4);
    t.created_at = s.int64(5);
    t.expires_at = s.int64(6);
    t.uses_allowed = static_cast<int>(s.int64(7));
    t.uses = static_cast<int>(s.int64(8));
    t.revoked = s.int64(9) != 0;
    return t;
  }

  void finalize_and_close() {
    for (auto& [sql, s] : stmts_) sqlite3_finalize(s);
    stmts_.clear();
    sqlite3_close(db_);
    db_ = nullptr;
  }

  std::string url_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;  // one connection, one user at a time
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;
  mutable std::atomic<bool> corrupt_{false};      // a query met SQLITE_CORRUPT or SQLITE_NOTADB
  int64_t health_certs_ = 0, health_tokens_ = 0;  // where the next health slice starts
  std::mutex batch_mu_;                           // guards queue_ and committing_
  std::condition_variable batch_cv_;
  std::vector<Pending*> queue_;
  bool committing_ = false;
};

}  // namespace

std::unique_ptr<Store> store_internal::make_sqlite_store(const std::string& path,
                                                         const std::string& url, bool create) {
  return std::make_unique<SqliteStore>(path, url, create);
}

}  // namespace kubeca

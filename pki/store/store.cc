// The store's URL forms and what every backend shares; one file per backend beside it
// (memory.cc, sqlite.cc, etcd.cc).
#include "kubeca/store.h"

#include <botan/base64.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <tuple>

#include "kubeca/config.h"
#include "store_internal.h"

namespace kubeca {

std::string store_internal::crl_text(const PublishedCrl& crl) {
  return nlohmann::json{
      {"v", 1},
      {"number", crl.number},
      {"revocations", crl.revocations},
      {"this_update", crl.this_update},
      {"next_update", crl.next_update},
      {"der",
       Botan::base64_encode(reinterpret_cast<const uint8_t*>(crl.der.data()), crl.der.size())}}
      .dump();
}

PublishedCrl store_internal::crl_of_text(const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  PublishedCrl c;
  c.number = j.at("number");
  c.revocations = j.at("revocations");
  c.this_update = j.at("this_update");
  c.next_update = j.at("next_update");
  const auto der = Botan::base64_decode(j.at("der").get<std::string>());
  c.der.assign(der.begin(), der.end());
  return c;
}

const char* to_string(TokenUse u) {
  switch (u) {
    case TokenUse::kOk:
      return "ok";
    case TokenUse::kUnknown:
      return "unknown";
    case TokenUse::kRevoked:
      return "revoked";
    case TokenUse::kExpired:
      return "expired";
    case TokenUse::kUsedUp:
      return "used_up";
    case TokenUse::kDuplicateSerial:
      return "duplicate_serial";
  }
  return "invalid";
}

namespace store_internal {

TokenUse check_token(bool revoked, int64_t expires_at, int uses_allowed, int uses, int64_t now) {
  if (revoked) return TokenUse::kRevoked;
  if (now >= expires_at) return TokenUse::kExpired;
  if (uses >= uses_allowed) return TokenUse::kUsedUp;
  return TokenUse::kOk;
}

bool cert_order(const CertRecord& a, const CertRecord& b) {
  return std::tie(a.not_before, a.serial) < std::tie(b.not_before, b.serial);
}

bool token_order(const TokenRecord& a, const TokenRecord& b) {
  return std::tie(a.created_at, a.id) < std::tie(b.created_at, b.id);
}

void check_ca(const std::string& url, const std::string& bound, const std::string& pin) {
  if (bound == pin) return;
  throw InputError("store " + url + " belongs to the CA " + bound + ", not to this CA " + pin +
                   "; give the --pki of that CA, or another store for this one");
}

}  // namespace store_internal

namespace {

// Creates the missing folders of `dir` with mode 0700: the store holds token hashes.
void make_private_dirs(const std::filesystem::path& dir) {
  if (dir.empty()) return;
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) return;
  make_private_dirs(dir.parent_path());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw std::runtime_error("cannot create folder " + dir.string() + ": " + std::strerror(errno));
  }
}

// Creates an absent database file as 0600; SQLite gives its -wal and -shm files the same mode.
void make_private_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
  } else if (errno != EEXIST) {
    throw std::runtime_error("cannot create " + path.string() + ": " + std::strerror(errno));
  }
}

}  // namespace

std::unique_ptr<Store> open_store(const std::string& url, OpenMode mode) {
  if (url == "memory:") return store_internal::make_memory_store();
  if (url == "sqlite::memory:") return store_internal::make_sqlite_store(":memory:", url, true);
  const std::string scheme = "sqlite:";
  if (url.compare(0, scheme.size(), scheme) == 0) {
    const std::filesystem::path path = url.substr(scheme.size());
    if (path.empty()) {
      throw std::runtime_error("store URL " + url + " has no path; use sqlite:PATH");
    }
    if (mode == OpenMode::kExisting) {
      // An empty file is no store either: SQLite would make one in it.
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
        throw InputError("no store at " + path.string() +
                         " (kubeca serve or kubeca init creates it)");
      }
      return store_internal::make_sqlite_store(path.string(), url, false);
    }
    try {
      make_private_dirs(path.parent_path());
      make_private_file(path);
    } catch (const std::exception& e) {
      throw std::runtime_error("cannot open store " + url + ": " + e.what());
    }
    return store_internal::make_sqlite_store(path.string(), url, true);
  }
  if (url.rfind("etcd:", 0) == 0 || url.rfind("etcd+http:", 0) == 0) return open_etcd_store(url);
  throw std::runtime_error("unsupported store URL \"" + url +
                           "\"; use sqlite:PATH, sqlite::memory: or memory:");
}

}  // namespace kubeca

// A certificate and its key, swapped together so that a crash leaves a matching pair.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>

#include "kubeca/fs.h"

namespace kubeca {

namespace fs = std::filesystem;

namespace {

// The pair lives in a hidden folder of versions beside the files; NAME.pem and NAME-key.pem
// are symlinks through "current", and "current" is switched with one rename, so the pair a
// reader sees always matches, whenever the process is killed.
fs::path versions_of(const fs::path& cert) {
  return cert.parent_path() / ("." + cert.filename().string() + ".d");
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::string new_version(const fs::path& store, const std::string& cert_pem,
                        const std::string& key_pem) {
  std::random_device rd;
  const std::string name =
      "v" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + "-" +
      std::to_string(rd() % 100000);
  fs::create_directory(store / name);
  fs::permissions(store / name, fs::perms::owner_all, fs::perm_options::replace);  // a key's
  write_file_atomic(store / name / "key.pem", key_pem, 0600);
  write_file_atomic(store / name / "cert.pem", cert_pem, 0644);
  return name;
}

// Atomically makes `link` a symlink to `target`, whatever `link` was.
void replace_with_symlink(const fs::path& link, const fs::path& target) {
  const fs::path tmp = link.string() + ".tmp-link";
  fs::remove(tmp);
  fs::create_symlink(target, tmp);
  fs::rename(tmp, link);
}

bool points_into(const fs::path& link, const fs::path& store) {
  return fs::is_symlink(link) &&
         fs::read_symlink(link).begin()->string() == store.filename().string();
}

}  // namespace

void install_pair(const fs::path& cert_in, const fs::path& key_in, const std::string& cert_pem,
                  const std::string& key_pem) {
  const fs::path cert = cert_in.parent_path().empty() ? "." / cert_in : cert_in;
  const fs::path key = key_in.parent_path().empty() ? "." / key_in : key_in;
  if (fs::absolute(cert).parent_path() != fs::absolute(key).parent_path()) {
    // Versions need one folder; apart, the key goes first so a crash leaves it reusable.
    write_file_atomic(key, key_pem, 0600);
    write_file_atomic(cert, cert_pem, 0644);
    return;
  }
  const fs::path store = versions_of(cert);
  fs::create_directories(store);
  fs::permissions(store, fs::perms::owner_all, fs::perm_options::replace);
  const fs::path cert_link = fs::path(store.filename()) / "current" / "cert.pem";
  const fs::path key_link = fs::path(store.filename()) / "current" / "key.pem";
  auto switch_to = [&](const std::string& version) {
    replace_with_symlink(store / "current", version);
    fsync_dir(store);
  };
  const bool linked = points_into(cert, store) && points_into(key, store);
  if (!linked && file_exists(cert) && file_exists(key)) {
    // Plain files: first move the pair they hold behind the links, unchanged.
    switch_to(new_version(store, read_file(cert), read_file(key)));
    replace_with_symlink(cert, cert_link);
    replace_with_symlink(key, key_link);
  }
  const std::string previous =
      fs::is_symlink(store / "current") ? fs::read_symlink(store / "current").string() : "";
  switch_to(new_version(store, cert_pem, key_pem));
  if (!points_into(key, store)) replace_with_symlink(key, key_link);
  if (!points_into(cert, store)) replace_with_symlink(cert, cert_link);
  fsync_dir(cert.parent_path());
  // Keep the previous version for a rollback by hand; drop older ones.
  const std::string current = fs::read_symlink(store / "current").string();
  for (const auto& e : fs::directory_iterator(store)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && !e.is_symlink() && n != current && n != previous)
      fs::remove_all(e.path());
  }
}

bool recover_pair(const fs::path& cert, const fs::path& key) {
  bool did = false;
  for (const fs::path& p :
       {fs::path(cert.string() + ".tmp-link"), fs::path(key.string() + ".tmp-link")}) {
    if (fs::is_symlink(p) || file_exists(p)) {
      fs::remove(p);
      did = true;
    }
  }
  const fs::path store = versions_of(cert.parent_path().empty() ? "." / cert : cert);
  if (!fs::is_directory(store) || !fs::is_symlink(store / "current")) return did;
  const std::string current = fs::read_symlink(store / "current").string();
  std::vector<std::string> others;
  for (const auto& e : fs::directory_iterator(store)) {
    const std::string n = e.path().filename().string();
    if (n == "current.tmp-link" || (!e.is_symlink() && e.is_directory() && n != current)) {
      others.push_back(n);
    }
  }
  std::sort(others.begin(), others.end());
  // Versions newer than current were never switched to: a run that stopped half-way.
  for (const auto& n : others) {
    if (n == "current.tmp-link" || n > current) {
      fs::remove_all(store / n);
      did = true;
    }
  }
  return did;
}

}  // namespace kubeca

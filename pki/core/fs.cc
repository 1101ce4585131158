#include "kubeca/fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "kubeca/config.h"

namespace kubeca {

namespace {

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& p) {
  throw std::runtime_error(what + " " + p.string() + ": " + std::strerror(errno));
}

void write_all(int fd, const std::string& data, const std::filesystem::path& p) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", p);
    }
    off += static_cast<size_t>(n);
  }
}

// Writes `data` to a new temporary file beside `path`, created with the final mode so a key
// is never readable by others, not even briefly. Returns the temporary's path; with `sync`
// its data is on disk when this returns.
std::filesystem::path write_temporary(const std::filesystem::path& path, const std::string& data,
                                      unsigned mode, bool sync) {
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::filesystem::create_directories(dir);
  // The pid and a counter make clashes rare (pids repeat across containers); O_EXCL settles
  // them: an existing name is skipped, never opened.
  static std::atomic<uint64_t> counter{0};
  const std::string prefix = "." + path.filename().string() + ".tmp" + std::to_string(::getpid());
  std::filesystem::path tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    tmp = dir / (prefix + std::to_string(counter++));
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && (errno != EEXIST || attempt == 100)) fail("cannot create", tmp);
  }
  try {
    write_all(fd, data, tmp);
    if (::fchmod(fd, mode) != 0) fail("cannot chmod", tmp);
    if (sync && ::fsync(fd) != 0) fail("cannot fsync", tmp);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    fail("cannot write", tmp);
  }
  return tmp;
}

void rename_into(const std::filesystem::path& tmp, const std::filesystem::path& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    fail("cannot rename into", path);
  }
}

int open_dir(const std::filesystem::path& dir) {
  return ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

// fsync of a folder: 0, or the errno of the open or the fsync.
int fsync_dir(const std::filesystem::path& dir) {
  const int dfd = open_dir(dir);
  if (dfd < 0) return errno;
  const int rc = ::fsync(dfd) == 0 ? 0 : errno;
  ::close(dfd);
  return rc;
}

// A batch's order depends on its folder syncs, so there a failed one is an error. EINVAL is
// a file system without folder fsync, where there is nothing more to do.
void sync_dir_or_throw(const std::filesystem::path& dir) {
  const int rc = fsync_dir(dir);
  if (rc != 0 && rc != EINVAL) {
    errno = rc;
    fail("cannot sync the folder", dir);
  }
}

// A temporary's name as write_temporary makes it: ".NAME.tmp" and digits.
bool is_temporary_name(const std::string& name) {
  const size_t at = name.rfind(".tmp");
  if (name.size() < 2 || name[0] != '.' || at == std::string::npos || at == 0) return false;
  const std::string digits = name.substr(at + 4);
  return !digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

void write_file_atomic(const std::filesystem::path& path, const std::string& data, unsigned mode) {
  check_output_file("output", path);
  rename_into(write_temporary(path, data, mode, true), path);
  (void)fsync_dir(path.parent_path());
}

void write_files_atomic(const std::vector<std::vector<FileWrite>>& groups,
                        const std::function<void()>& on_file) {
  // What a killed writer left in these folders goes first; callers hold the folder's lock
  // (FolderLock), so no other kubeca is writing there.
  std::set<std::filesystem::path> folders;
  for (const auto& g : groups) {
    for (const auto& f : g) folders.insert(f.path.parent_path());
  }
  for (const auto& dir : folders) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir.empty() ? "." : dir, ec)) {
      if (is_temporary_name(e.path().filename().string()) && e.is_regular_file(ec)) {
        ::unlink(e.path().c_str());
      }
    }
  }
  std::vector<std::vector<std::filesystem::path>> temps(groups.size());
  auto remove_temps = [&] {
    for (const auto& g : temps) {
      for (const auto& t : g) ::unlink(t.c_str());
    }
  };
  try {
    for (size_t g = 0; g < groups.size(); ++g) {
      for (const auto& f : groups[g]) {
        temps[g].push_back(write_temporary(f.path, f.data, f.mode, false));
        if (on_file) on_file();
      }
    }
    // One flush per file system for every file: an fsync each costs a device flush each.
    std::set<dev_t> flushed;
    for (const auto& d : folders) {
      int dfd = open_dir(d);
      if (dfd < 0) fail("cannot open", d);
      struct stat st {};
      int rc = ::fstat(dfd, &st);
      if (rc == 0 && flushed.insert(st.st_dev).second) rc = ::syncfs(dfd);
      const int saved = errno;
      ::close(dfd);
      if (rc != 0) {
        errno = saved;
        fail("cannot sync the file system of", d);
      }
    }
  } catch (...) {
    remove_temps();
    throw;
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    for (size_t i = 0; i < groups[g].size(); ++i) {
      try {
        rename_into(temps[g][i], groups[g][i].path);
      } catch (...) {
        remove_temps();                                    // the ones not renamed yet
        for (const auto& d : folders) (void)fsync_dir(d);  // what did land stays landed
        throw;
      }
    }
    // This group's names are on disk before the next group's renames begin.
    for (const auto& d : folders) sync_dir_or_throw(d);
  }
}

void create_private_directories(const std::filesystem::path& dir) {
  std::error_code ec;
  if (dir.empty() || std::filesystem::is_directory(dir, ec)) return;
  create_private_directories(dir.parent_path());
  if (::mkdir(dir.c_str(), 0700) == 0) {
    if (::chmod(dir.c_str(), 0700) != 0) fail("cannot chmod", dir);  // the umask had its say
  } else if (errno != EEXIST) {
    fail("cannot create", dir);
  }
}

FolderLock::FolderLock(const std::filesystem::path& dir) {
  create_private_directories(dir);
  fd_ = open_dir(dir);
  if (fd_ < 0) fail("cannot open", dir);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int saved = errno;
    ::close(fd_);
    if (saved == EWOULDBLOCK) {
      throw std::runtime_error("another kubeca is writing " + dir.string() +
                               "; wait for it to finish and run this again");
    }
    errno = saved;
    fail("cannot lock", dir);
  }
}

FolderLock::~FolderLock() { ::close(fd_); }

bool is_stdout(const std::filesystem::path& path) { return path == "-"; }

namespace {

std::string kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a folder";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

}  // namespace

void check_output_file(const std::string& flag, const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;  // absent (or a dangling symlink): made anew
  if (S_ISREG(st.st_mode)) return;
  throw InputError(flag + ": " + path.string() + " is " + kind_of(st.st_mode) +
                   ", not a regular file; refusing to replace it");
}

void check_output_dir(const std::string& flag, const std::filesystem::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return;
  throw InputError(flag + ": " + dir.string() + " is not a folder (it is " +
                   (S_ISREG(st.st_mode) ? std::string("a file") : kind_of(st.st_mode)) + ")");
}

void check_replace(const std::string& flag, const std::filesystem::path& path,
                   const std::string& data, bool force) {
  check_output_file(flag, path);
  if (force || !file_exists(path) || read_file(path) == data) return;
  throw InputError(flag + ": " + path.string() +
                   " exists with other content; choose another path or add --force to replace it");
}

bool write_output(const std::string& flag, const std::filesystem::path& path,
                  const std::string& data, unsigned mode, bool force) {
  if (is_stdout(path)) {
    std::cout.write(data.data(), static_cast<std::streamsize>(data.size()));
    std::cout.flush();
    if (!std::cout) throw std::runtime_error("cannot write to standard output");
    return true;
  }
  check_replace(flag, path, data, force);
  if (file_exists(path) && read_file(path) == data) return false;
  write_file_atomic(path, data, mode);
  return true;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string() + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

}  // namespace kubeca
